"""GStreamer plug-in (packaging/gstreamer): ldmzdec, ldmzenc, the typefinder, seeking, install."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.formats import LdmzFile

GST_DIR = Path(__file__).resolve().parent.parent / "packaging" / "gstreamer"
SR, SECONDS = 16000, 2.0  # not the model's 22.05 kHz: the decoder resamples back
TIMEOUT = 180


def _run(args: list[str], env: dict[str, str], timeout: int = TIMEOUT,
         ) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def _out(r: subprocess.CompletedProcess) -> str:
    return f"rc={r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


@pytest.fixture(scope="module")
def gst_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for GStreamer tools that loads the plug-in from the source tree."""
    if shutil.which("gst-launch-1.0") is None or shutil.which("gst-inspect-1.0") is None:
        pytest.skip("gst-launch-1.0 is not installed (Debian: gstreamer1.0-tools)")
    env = {**os.environ, "GST_PLUGIN_PATH": str(GST_DIR), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1",  # as conftest: on a busy machine threads only spin
           # a registry of its own: no stale cache, no other Python plug-ins
           "GST_REGISTRY": str(tmp_path_factory.mktemp("gst") / "registry.bin")}
    if sys.prefix != sys.base_prefix:  # the venv running the tests is the one to decode with
        env["LDMZ_VENV"] = sys.prefix
    r = _run(["gst-inspect-1.0", "python"], env)
    if r.returncode != 0:
        pytest.skip("GStreamer's Python plug-in loader is not installed (Debian: "
                    "gstreamer1.0-python3-plugin-loader, python3-gst-1.0)")
    r = _run(["gst-inspect-1.0", "ldmzdec"], env)
    assert r.returncode == 0, "the plug-in did not register ldmzdec\n" + _out(r)
    return env


def _audio() -> np.ndarray:
    """Stereo: a warbling tone left, the same at half level right (channel order shows)."""
    t = np.arange(int(SECONDS * SR)) / SR
    x = 0.4 * np.sin(2 * np.pi * 330 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return np.stack([x, 0.5 * x]).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """song.ldmz: default settings; fast.ldmz: Griffin-Lim vocoder, 0.5 s chunks, a title."""
    from ldmz.codec.api import encode
    from ldmz.codec.params import EncodeParams

    d = tmp_path_factory.mktemp("ldmz")
    audio = _audio()
    encode(audio, SR).save(d / "song.ldmz")
    encode(audio, SR, EncodeParams(vocoder="griffinlim", chunk_seconds=0.5),
           tags={"title": "Warble", "artist": "ldmz tests"}).save(d / "fast.ldmz")
    sf.write(d / "in.wav", audio.T, SR, subtype="FLOAT")
    return {"song": d / "song.ldmz", "fast": d / "fast.ldmz", "wav": d / "in.wav", "dir": d}


def _decode(src: Path, dst: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return _run(["gst-launch-1.0", "-q", "filesrc", f"location={src}", "!", "ldmzdec", "!",
                 "audioconvert", "!", "wavenc", "!", "filesink", f"location={dst}"], env)


def _check_wav(wav: Path, ldmz: Path) -> np.ndarray:
    h = LdmzFile.load(ldmz, lazy=True).header
    info = sf.info(wav)
    assert (info.samplerate, info.channels) == (h.source.sample_rate, h.source.channels)
    tol = math.ceil(h.mel.hop_length * h.source.sample_rate / h.mel.sample_rate)  # one hop
    assert abs(info.frames - h.source.samples) <= tol, (info.frames, h.source.samples)
    y, _ = sf.read(wav, dtype="float32", always_2d=True)
    return y


def test_gst_launch_decodes_to_wav(gst_env: dict[str, str], files: dict[str, Path],
                                   tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    r = _decode(files["song"], out, gst_env)
    assert r.returncode == 0, _out(r)
    y = _check_wav(out, files["song"])
    rms = np.sqrt(np.mean(y ** 2, axis=0))
    assert rms[0] > 0.005, rms  # not silence
    assert 0.4 < rms[1] / rms[0] < 0.6, rms  # interleaved in the right order (right = left / 2)


def test_typefinder_and_discoverer(gst_env: dict[str, str], files: dict[str, Path]) -> None:
    r = _run(["gst-typefind-1.0", str(files["fast"])], gst_env)
    assert r.returncode == 0 and "audio/x-ldmz" in r.stdout, _out(r)
    if shutil.which("gst-discoverer-1.0") is None:  # in gstreamer1.0-plugins-base-apps
        pytest.fail("gst-discoverer-1.0 is missing: install gstreamer1.0-plugins-base-apps")
    r = _run(["gst-discoverer-1.0", "-v", "-t", "120", str(files["fast"])], gst_env)
    assert r.returncode == 0, _out(r)
    for want in ("Duration: 0:00:02.000", "Seekable: yes", "audio/x-ldmz", "Channels: 2",
                 "Sample rate: 16000", "title: Warble", "artist: ldmz tests"):
        assert want in r.stdout, f"{want!r} missing\n" + _out(r)


SEEK_SCRIPT = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
p = Gst.parse_launch(f"filesrc location={sys.argv[1]} ! ldmzdec name=d ! fakesink sync=false")
bufs = []
def probe(pad, info):
    b = info.get_buffer()
    bufs.append((b.pts, b.duration, b.get_size() // 8))
    return Gst.PadProbeReturn.OK
p.get_by_name("d").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
bus = p.get_bus()
done = Gst.MessageType.ASYNC_DONE | Gst.MessageType.ERROR
p.set_state(Gst.State.PAUSED)
assert bus.timed_pop_filtered(120 * Gst.SECOND, done).type == Gst.MessageType.ASYNC_DONE
q = Gst.Query.new_seeking(Gst.Format.TIME)
assert p.query(q) and q.parse_seeking()[1], "not seekable"
bufs.clear()
assert p.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH, int(float(sys.argv[2]) * Gst.SECOND))
assert bus.timed_pop_filtered(120 * Gst.SECOND, done).type == Gst.MessageType.ASYNC_DONE
p.set_state(Gst.State.PLAYING)
msg = bus.timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
assert msg.type == Gst.MessageType.EOS, msg.parse_error()
p.set_state(Gst.State.NULL)
for (t0, d0, _), (t1, _, _) in zip(bufs, bufs[1:]):
    assert t0 + d0 == t1, "gap"
print(bufs[0][0], bufs[-1][0] + bufs[-1][1], sum(n for _, _, n in bufs))
"""


@pytest.mark.parametrize("name", ["fast", "song"])  # Griffin-Lim, and the default vocoder
def test_flushing_seek_restarts_at_target(gst_env: dict[str, str], files: dict[str, Path],
                                          tmp_path: Path, name: str) -> None:
    py = Path("/usr/bin/python3")  # the Python of python3-gst-1.0, which the loader requires
    if not py.exists():
        pytest.skip("no /usr/bin/python3 with python3-gst-1.0 to drive a seek")
    script = tmp_path / "seek.py"
    script.write_text(SEEK_SCRIPT)
    r = _run([str(py), str(script), str(files[name]), "1.25"], gst_env)
    assert r.returncode == 0, _out(r)
    first, end, samples = (int(v) for v in r.stdout.split()[-3:])
    assert first == 1_250_000_000 and end == 2_000_000_000, (first, end)
    assert samples == round((SECONDS - 1.25) * SR)


def test_ldmzenc_round_trip(gst_env: dict[str, str], files: dict[str, Path],
                            tmp_path: Path) -> None:
    enc = tmp_path / "enc.ldmz"
    r = _run(["gst-launch-1.0", "-q", "filesrc", f"location={files['wav']}", "!", "wavparse",
              "!", "audioconvert", "!", "ldmzenc", "bits=4", "vocoder=griffinlim", "!",
              "filesink", f"location={enc}"], gst_env)
    assert r.returncode == 0, _out(r)
    h = LdmzFile.load(enc).header  # checks every checksum
    assert (h.source.sample_rate, h.source.channels, h.source.samples) == (SR, 2, SECONDS * SR)
    assert max(h.quantizer.bits) == 4 and h.vocoder == "griffinlim"
    out = tmp_path / "out.wav"
    r = _decode(enc, out, gst_env)
    assert r.returncode == 0, _out(r)
    y = _check_wav(out, enc)
    from ldmz.codec.api import decode  # the plug-in gives what the library gives

    ref, _ = decode(LdmzFile.load(enc))
    np.testing.assert_allclose(y.T, ref, atol=1e-4)


def test_damaged_file_fails_with_a_readable_error(gst_env: dict[str, str],
                                                  files: dict[str, Path],
                                                  tmp_path: Path) -> None:
    data = bytearray(files["song"].read_bytes())
    data[-5] ^= 0xFF  # inside the last chunk
    cases = {"damaged.ldmz": (bytes(data), "checksum"),
             "short.ldmz": (bytes(data[:-40]), "truncated"),
             "noise.ldmz": (bytes(range(256)) * 4, "not an ldmz file")}
    for name, (blob, why) in cases.items():
        (tmp_path / name).write_bytes(blob)
        r = _decode(tmp_path / name, tmp_path / "x.wav", gst_env)
        text = r.stdout + r.stderr
        assert r.returncode != 0, _out(r)
        line = next((s for s in text.splitlines() if s.startswith("ERROR: from element")), "")
        assert why in line and name in line, _out(r)
        assert "Traceback" not in text, _out(r)


@pytest.fixture
def user_venv(tmp_path: Path) -> tuple[Path, Path]:
    """(venv, its site-packages): a fresh venv that sees this one's packages (ldmz, torch)
    through a .pth, so install.sh can write into it without touching the venv running the tests."""
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # addsitedir, not a bare path: the .pth files there (an editable ldmz's finder) must run too
    deps = sysconfig.get_path("purelib")
    (site / "ldmz-deps.pth").write_text(f"import site; site.addsitedir({deps!r})\n")
    return venv, site


def test_install_script_puts_plugin_where_the_loader_looks(gst_env: dict[str, str],
                                                           files: dict[str, Path],
                                                           user_venv: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    env = {k: v for k, v in gst_env.items() if k != "GST_PLUGIN_PATH"}
    env["HOME"] = str(tmp_path)
    env["GST_REGISTRY"] = str(tmp_path / "registry.bin")
    env["LDMZ_VENV"] = str(user_venv[0])
    r = _run(["sh", str(GST_DIR / "install.sh")], env)
    assert r.returncode == 0, _out(r)
    dest = tmp_path / ".gstreamer-1.0" / "plugins" / "python"
    assert (dest / "ldmz_gst.venv").read_text().strip() == str(Path(env["LDMZ_VENV"]).resolve())
    env.pop("LDMZ_VENV")  # the installed copy must find the venv on its own
    r = _run(["gst-inspect-1.0", "ldmzenc"], env)
    assert r.returncode == 0 and "ldmz encoder" in r.stdout, _out(r)
    (tmp_path / "noise.ldmz").write_bytes(b"RIFF" * 100)  # ldmz itself must load to say so
    r = _decode(tmp_path / "noise.ldmz", tmp_path / "x.wav", env)
    assert r.returncode != 0 and "noise.ldmz: not an ldmz file" in r.stderr, _out(r)
    for _ in range(3):  # the installed plug-in, the default vocoder's file, repeatedly
        r = _run(["gst-discoverer-1.0", str(files["song"])], env, timeout=60)
        assert r.returncode == 0 and "Duration: 0:00:02.000" in r.stdout, _out(r)


def test_discoverer_answers_from_the_header(gst_env: dict[str, str],
                                            files: dict[str, Path]) -> None:
    """The default vocoder's file, repeatedly, with discoverer's default 10 s timeout: the
    header alone answers (no model load, no decode), and every run exits cleanly."""
    if shutil.which("gst-discoverer-1.0") is None:
        pytest.fail("gst-discoverer-1.0 is missing: install gstreamer1.0-plugins-base-apps")
    for _ in range(5):
        r = _run(["gst-discoverer-1.0", "-v", str(files["song"])], gst_env, timeout=60)
        assert r.returncode == 0 and "Done discovering" in r.stdout, _out(r)
        for want in ("Duration: 0:00:02.000", "Channels: 2", "Sample rate: 16000",
                     "container format: ldmz"):
            assert want in r.stdout, f"{want!r} missing\n" + _out(r)
        assert "Timeout" not in r.stdout + r.stderr, _out(r)


PLAY_SCRIPT = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
p = Gst.ElementFactory.make("playbin")
p.set_property("uri", Gst.filename_to_uri(sys.argv[1]))
p.set_property("audio-sink", Gst.parse_bin_from_description(
    "audioconvert ! audio/x-raw,format=F32LE ! fakesink name=out sync=true", True))
seen = {"samples": 0, "late": None}
def probe(pad, info):
    b = info.get_buffer()
    if seen["late"] is None:  # running time of the first sample vs the clock, when pushed
        seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0).parse_segment()
        el = pad.get_parent_element()
        now = el.get_clock().get_time() - el.get_base_time()
        seen["late"] = now - seg.to_running_time(Gst.Format.TIME, b.pts)
    seen["samples"] += b.get_size() // 4 // 2
    return Gst.PadProbeReturn.OK
def added(bin_, sub, el):
    if el.get_factory() and el.get_factory().get_name() == "ldmzdec":
        el.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
p.connect("deep-element-added", added)
p.set_state(Gst.State.PLAYING)
msg = p.get_bus().timed_pop_filtered(300 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
assert msg is not None and msg.type == Gst.MessageType.EOS, msg and msg.parse_error()
p.set_state(Gst.State.NULL)
print(seen["samples"], seen["late"])
"""


def test_playbin_and_gst_play_with_the_default_vocoder(gst_env: dict[str, str],
                                                       files: dict[str, Path],
                                                       tmp_path: Path) -> None:
    """playbin twice and gst-play once on the default vocoder's file: every sample arrives, and
    the first one is not late (the model loads after preroll; the segment moves instead)."""
    py = Path("/usr/bin/python3")
    if not py.exists():
        pytest.skip("no /usr/bin/python3 with python3-gst-1.0 to drive playbin")
    script = tmp_path / "play.py"
    script.write_text(PLAY_SCRIPT)
    for _ in range(2):
        r = _run([str(py), str(script), str(files["song"])], gst_env)
        assert r.returncode == 0, _out(r)
        samples, late = (int(v) for v in r.stdout.split()[-2:])
        assert samples == SECONDS * SR and late <= 0, (samples, late)
    if shutil.which("gst-play-1.0") is None:
        pytest.fail("gst-play-1.0 is missing: install gstreamer1.0-plugins-base-apps")
    r = _run(["gst-play-1.0", "--no-interactive", "-q", "--audiosink=fakesink sync=true",
              str(files["song"])], gst_env)
    assert r.returncode == 0 and "ERROR" not in r.stdout + r.stderr, _out(r)


def test_ldmzdec_checks_the_magic_and_buffers_only_the_declared_bytes(
        gst_env: dict[str, str], files: dict[str, Path], tmp_path: Path) -> None:
    def fd_pipeline(shell_input: str, tail: str, extra: str = "") -> subprocess.CompletedProcess:
        cmd = (f"{shell_input} | gst-launch-1.0 -q fdsrc fd=0 ! audio/x-ldmz ! ldmzdec {extra} "
               f"! {tail}")
        return _run(["sh", "-c", cmd], gst_env, timeout=120)

    # an endless stream of zeros is refused at its first bytes (it used to be buffered forever)
    r = fd_pipeline("cat /dev/zero", "fakesink")
    assert r.returncode != 0 and "not an ldmz file" in r.stdout + r.stderr, _out(r)
    # a file followed by an endless stream: only the bytes its header declares are read
    out = tmp_path / "out.wav"
    r = fd_pipeline(f"cat {files['fast']} /dev/zero",
                    f"audioconvert ! wavenc ! filesink location={out}")
    assert r.returncode == 0, _out(r)
    _check_wav(out, files["fast"])
    # a header that declares more than max-bytes is refused before the rest is buffered
    r = fd_pipeline(f"cat {files['fast']}", "fakesink", "max-bytes=1024")
    assert r.returncode != 0 and "max-bytes" in r.stdout + r.stderr, _out(r)


def test_activated_venv_shell_still_loads_the_plugin(gst_env: dict[str, str],
                                                     files: dict[str, Path],
                                                     user_venv: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """A shell with a venv activated (its bin/ first on PATH) runs gst-launch … ldmzdec."""
    venv, site = user_venv
    env = {k: v for k, v in gst_env.items() if k != "GST_PLUGIN_PATH"}
    env.update(HOME=str(tmp_path), LDMZ_VENV=str(venv), VIRTUAL_ENV=str(venv),
               GST_REGISTRY=str(tmp_path / "registry.bin"))
    r = _run(["sh", str(GST_DIR / "install.sh")], env)
    assert r.returncode == 0 and (site / "ldmz_gst_gi.pth").exists(), _out(r)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"  # what `source venv/bin/activate` does
    out = tmp_path / "out.wav"
    r = _decode(files["fast"], out, env)
    assert r.returncode == 0, _out(r)
    _check_wav(out, files["fast"])
    (site / "ldmz_gst_gi.pth").unlink()  # the control: without it, the loader loses gi
    env["GST_REGISTRY"] = str(tmp_path / "registry2.bin")
    r = _run(["gst-inspect-1.0", "ldmzdec"], env)
    assert r.returncode != 0 and "pygobject initialization failed" in r.stderr, _out(r)
