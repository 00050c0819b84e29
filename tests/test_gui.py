"""The desktop app, offscreen: opening files, the worker round trip, playback, seeking, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Before Qt and PortAudio start: offscreen Qt, and an ALSA "null" default output device so
# playback runs through the real sounddevice/PortAudio stack on machines without a sound card.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_XDG = tempfile.mkdtemp(prefix="ldmz-test-xdg-")
os.makedirs(os.path.join(_XDG, "alsa"))
with open(os.path.join(_XDG, "alsa", "asoundrc"), "w") as _f:
    _f.write("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
os.environ["XDG_CONFIG_HOME"] = _XDG

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from ldmz.codec.params import DecodeParams, EncodeParams  # noqa: E402
from ldmz.formats import LdmzFile  # noqa: E402
from ldmz.gui import analysis, crash, jobs  # noqa: E402
from ldmz.gui.mainwindow import MainWindow  # noqa: E402
from ldmz.gui.playback import Player  # noqa: E402
from ldmz.gui.settings import AppSettings, ViewParams  # noqa: E402

SR = 22050
MEL = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "win_length": 1024, "n_mels": 80,
       "fmin": 0.0, "fmax": 8000.0, "log_floor": 1e-05, "frontend": "hifigan"}


class FakeStream:
    """Stands in for sounddevice.OutputStream; pull() runs the callback like the audio thread."""

    def __init__(self, samplerate: int, channels: int, dtype: str, callback: object,
                 device: str = "") -> None:
        self.sr, self.channels, self.callback, self.device = samplerate, channels, callback, device
        self.active = self.closed = False

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        self.closed = True

    def pull(self, frames: int) -> np.ndarray:
        out = np.full((frames, self.channels), np.nan, np.float32)
        self.callback(out, frames, None, None)
        return out


class FakeFactory:
    def __init__(self) -> None:
        self.streams: list[FakeStream] = []

    def __call__(self, **kw: object) -> FakeStream:
        self.streams.append(FakeStream(**kw))
        return self.streams[-1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from ldmz.codec.models.patchvae import PatchVAE
    from ldmz.codec.train.trainer import export

    folder = tmp_path_factory.mktemp("model") / "tiny"
    torch.manual_seed(0)
    export(PatchVAE(), folder)
    (folder / "ldmz.json").write_text(json.dumps({"mel": MEL, "vocoder": "hifigan"}))
    return folder


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = np.arange(int(1.5 * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * np.random.default_rng(0).normal(size=t.size)
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    sf.write(path, x.astype(np.float32), SR, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def ldmz_path(tiny_model: Path, wav: Path) -> Path:
    from ldmz.codec.api import encode
    from ldmz.codec.audio_io import read_audio

    audio, sr = read_audio(wav)
    f = encode(audio, sr, EncodeParams(model=str(tiny_model)), tags={"title": "Tone"})
    path = wav.with_name("tone.ldmz")
    f.save(path)
    return path


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every message box, captured instead of shown; questions answer Yes / Discard."""
    seen: list[tuple[str, str]] = []

    def record(kind: str) -> object:
        def box(parent: object, title: str, text: str, buttons: object = None,
                *a: object) -> object:
            seen.append((kind, text))
            for answer in (QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Discard):
                if buttons is not None and buttons & answer:
                    return answer
            return QMessageBox.StandardButton.Ok
        return staticmethod(box)

    for kind in ("warning", "critical", "question"):
        monkeypatch.setattr(QMessageBox, kind, record(kind))
    return seen


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    s = AppSettings(str(tmp_path / "ldmz-gui.ini"))
    s.set_decode_params(DecodeParams(vocoder="griffinlim", griffinlim_iters=8))
    return s


@pytest.fixture
def factory() -> FakeFactory:
    return FakeFactory()


@pytest.fixture
def win(qtbot: object, settings: AppSettings, dialogs: list, factory: FakeFactory) -> MainWindow:
    w = MainWindow(settings, Player(stream_factory=factory))
    qtbot.addWidget(w)
    w.show()
    return w


def idle(qtbot: object, w: MainWindow, timeout: int = 40000) -> None:
    qtbot.waitUntil(lambda: not w.tasks.busy(), timeout=timeout)


def test_open_wav_fills_plots(qtbot: object, win: MainWindow, wav: Path, dialogs: list) -> None:
    assert win.open_path(wav)
    idle(qtbot, win)
    n = sf.info(wav).frames
    pane = win.views.panes[0]
    xs, ys = pane.wave_curve.getOriginalDataset()
    assert len(ys) == len(xs) == n and xs[-1] == pytest.approx((n - 1) / SR, rel=1e-6)
    spec = analysis.spectrogram(ys, SR, win.view_params.n_fft, win.view_params.spectrogram)
    assert pane.image.image.shape == spec.db.shape
    assert pane.side.spec.frames * pane.side.spec.dt == pytest.approx(n / SR, abs=0.1)
    assert win.views.panes[1].side is None and win.views.diff_spec is None
    assert win.views.x_range() == pytest.approx((0, n / SR), abs=1e-3)
    assert "tone.wav" in win.windowTitle() and not win.isWindowModified()
    assert win.player.length == n and dialogs == []


def test_open_ldmz_shows_header_and_decodes(qtbot: object, win: MainWindow, ldmz_path: Path,
                                            dialogs: list, tiny_model: Path) -> None:
    win.codec.model.setCurrentText(str(tiny_model))  # a file names no folder: the user picks it
    assert win.open_path(ldmz_path)  # read and verified in the worker, not this thread
    qtbot.waitUntil(lambda: win.ldmz is not None, timeout=20000)
    info = dict(win.info.pairs)  # shown before the background decode
    assert info["Reconstruction"] == "not decoded yet"
    header = LdmzFile.load(ldmz_path).header
    q = header.quantizer.bits
    bits = str(q[0]) if len(set(q)) == 1 else "/".join(map(str, q))
    assert info["Model"] == header.model.id and info["Bits"].startswith(bits)
    assert info["Tag title"] == "Tone" and "kbps" in info["Bitrate"]
    assert win.tags.tags()["title"] == "Tone"
    idle(qtbot, win)
    assert dialogs == []
    pane = win.views.panes[1]
    assert len(pane.wave_curve.getOriginalDataset()[1]) == header.source.samples
    assert win.views.panes[0].side is None and pane.image.image is not None
    values = win.metrics.values()
    assert float(values["Bitrate"]) > 0 and values["Quality metrics"] == "n/a"
    # say which vocoder made what is on screen (the settings fixture decodes with Griffin-Lim)
    assert dict(win.info.pairs)["Reconstruction"] == "decoded with the griffinlim vocoder"
    assert pane.title.text.endswith("· griffinlim vocoder"), pane.title.text


def test_opening_ldmz_does_not_import_torch(ldmz_path: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from ldmz.gui.mainwindow import MainWindow\n"
        "from ldmz.gui.settings import AppSettings\n"
        "MainWindow.decode_again = lambda self: None\n"
        f"s = AppSettings({str(tmp_path / 's.ini')!r})\n"
        "w = MainWindow(s)\n"
        f"assert w.open_path({str(ldmz_path)!r})\n"
        "import time\n"
        "t = time.time()\n"
        "while w.ldmz is None and time.time() - t < 30:\n"
        "    app.processEvents()\n"
        "    time.sleep(0.01)\n"
        "assert dict(w.info.pairs)['Tag title'] == 'Tone'\n"
        "print('torch' in sys.modules)\n"
        "w.close()\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_compress_round_trip_updates_metrics_and_saves(
        qtbot: object, win: MainWindow, wav: Path, tiny_model: Path, tmp_path: Path,
        dialogs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    win.open_path(wav)
    idle(qtbot, win)
    win.codec.model.setCurrentText(str(tiny_model))
    assert win.enc.model == str(tiny_model) and win.dec.vocoder == "griffinlim"
    win.actions_["compress"].trigger()
    idle(qtbot, win, 60000)
    assert dialogs == []
    values = win.metrics.values()
    for name in ("Bitrate", "Compression ratio", "SNR", "SI-SDR", "Mel distance", "STOI · speech"):
        float(values[name])  # a number, not n/a
    assert win.metrics.item(2, 3).text() in ("↑ higher", "↓ lower")
    assert win.isWindowModified()
    n = sf.info(wav).frames
    assert len(win.views.panes[1].wave_curve.getOriginalDataset()[1]) == n
    assert win.views.diff_spec is not None and win.player.has(0) and win.player.has(1)

    target = tmp_path / "out"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "ldmz files (*.ldmz)")))
    win.tags.edits["artist"].setText("Someone")
    win.save_ldmz()
    saved = LdmzFile.load(target.with_suffix(".ldmz")).header
    assert saved.tags["artist"] == "Someone" and saved.tags["title"] == "tone"
    assert not win.isWindowModified() and "out.ldmz" in win.windowTitle()
    win.save_ldmz()  # exists: asks first (answered Yes), then replaces atomically
    assert [k for k, _ in dialogs] == ["question"]

    wav_out = tmp_path / "decoded.flac"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(wav_out), "FLAC (*.flac)")))
    win.export_audio()
    assert sf.info(wav_out).frames == n
    png = tmp_path / "view.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(png), "PNG (*.png)")))
    win.export_png()
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_codec_panel_coding_choice(qtbot: object, win: MainWindow, wav: Path, tiny_model: Path,
                                   tmp_path: Path, dialogs: list) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("rans_tests",
                                                  Path(__file__).with_name("test_codec_rans.py"))
    assert spec is not None and spec.loader is not None
    rans_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rans_tests)
    model = rans_tests._with_tables(tiny_model, tmp_path / "tiny-ec", default=2)
    panel = win.codec
    # the default: the entropy coding at the tables' default quality; bits greyed out
    assert panel.coding.currentData() == "auto" and panel.quality.value() == -1
    assert not panel.bits.isEnabled() and panel.quality.isEnabled()
    win.open_path(wav)
    idle(qtbot, win)
    panel.model.setCurrentText(str(model))
    win.actions_["compress"].trigger()
    idle(qtbot, win, 60000)
    assert dialogs == [] and win.ldmz is not None
    assert win.ldmz.entropy_coded and win.ldmz.header.quantizer.quality == 2
    assert win.ldmz.to_bytes()[4] == 2  # format 2
    # an explicit quality level reaches the encoder
    panel.quality.setValue(0)
    win.actions_["compress"].trigger()
    idle(qtbot, win, 60000)
    assert win.ldmz.entropy_coded and win.ldmz.header.quantizer.quality == 0
    # affine: format 1 with the chosen bits; quality greyed out
    panel.coding.setCurrentIndex(panel.coding.findData("affine"))
    assert panel.bits.isEnabled() and not panel.quality.isEnabled()
    panel.bits.setValue(5)
    assert win.enc.coding == "affine" and win.enc.bits == 5
    win.actions_["compress"].trigger()
    idle(qtbot, win, 60000)
    assert dialogs == []
    assert not win.ldmz.entropy_coded and win.ldmz.to_bytes()[4] == 1
    assert max(win.ldmz.header.quantizer.bits) == 5
    # persisted as plain values and shown again by a new window
    saved = AppSettings(win.settings.store.path).encode_params()
    assert (saved.coding, saved.bits, saved.quality) == ("affine", 5, 0)
    w2 = MainWindow(AppSettings(win.settings.store.path), Player(stream_factory=FakeFactory()))
    qtbot.addWidget(w2)
    assert w2.codec.coding.currentData() == "affine" and w2.codec.bits.isEnabled()
    assert w2.codec.quality.value() == 0


def test_ab_switch_keeps_position_without_gap(qtbot: object, factory: FakeFactory) -> None:
    a = np.arange(1000, dtype=np.float32)[None] / 1000
    b = -a
    player = Player(stream_factory=factory)
    player.set_sources(a, b, 1000)
    player.select(0)
    assert player.play()
    stream = factory.streams[-1]
    assert stream.active and stream.channels == 1
    assert np.array_equal(stream.pull(100)[:, 0], a[0, :100])
    player.select(1)  # the very next block comes from B, at the same position
    assert np.array_equal(stream.pull(100)[:, 0], b[0, 100:200])
    assert player.position == pytest.approx(0.2)
    player.pause()
    player.select(0)
    assert player.position == pytest.approx(0.2) and player.state == "paused"
    player.play()
    assert np.array_equal(stream.pull(50)[:, 0], a[0, 200:250])
    out = stream.pull(900)  # past the end: zeros, then the player stops itself
    assert np.all(out[750:] == 0)
    qtbot.waitUntil(lambda: player.state == "stopped", timeout=2000)


def test_ab_in_window_keeps_position(qtbot: object, win: MainWindow, wav: Path,
                                     tiny_model: Path, factory: FakeFactory) -> None:
    win.open_path(wav)
    idle(qtbot, win)
    win.codec.model.setCurrentText(str(tiny_model))
    win.compress()
    idle(qtbot, win, 60000)
    win.seek(0.7)
    win.toggle_play()
    factory.streams[-1].pull(441)
    pos = win.player.position
    win.actions_["ab"].trigger()
    assert win.player.selected == 1 and win.player.position == pos
    assert win.actions_["ab"].isChecked()
    win.toggle_play()
    assert win.player.state == "paused" and win.player.position == pytest.approx(0.72)


def test_real_sounddevice_stream(qtbot: object) -> None:
    sd = pytest.importorskip("sounddevice")
    try:
        sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError):
        pytest.skip("no audio output device (install libportaudio2; ALSA null device)")
    player = Player()
    assert player.probe() and player.available
    t = np.arange(SR) / SR
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    player.set_sources(tone, -tone, SR)
    assert player.play() and player.state == "playing"
    player.select(1)
    qtbot.waitUntil(lambda: player.state == "stopped", timeout=20000)
    assert player.position == pytest.approx(1.0) and player.selected == 1
    player.close()


def test_no_audio_device_is_a_status_message(qtbot: object, settings: AppSettings, wav: Path,
                                             dialogs: list,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import ldmz.gui.playback as pb

    monkeypatch.setattr(pb, "default_stream_factory",
                        lambda: (None, "No audio device: playback is off"))
    w = MainWindow(settings, Player())
    qtbot.addWidget(w)
    w.open_path(wav)
    idle(qtbot, w)
    w.toggle_play()
    assert w.status.audio.text() == "No audio device: playback is off"
    assert w.player.state == "stopped" and dialogs == []


def test_seek_and_click_move_the_playhead(qtbot: object, win: MainWindow, wav: Path) -> None:
    win.open_path(wav)
    idle(qtbot, win)
    win.seek(0.5)
    assert all(h.value() == pytest.approx(0.5, abs=1e-4) for h in win.views.heads)
    assert win.player.position == pytest.approx(0.5, abs=1e-4)
    assert win.time_label.text().strip() == "0:00.500"
    spec = win.views.panes[0].spec
    scene = spec.vb.mapViewToScene(QPointF(1.0, spec.vb.viewRange()[1][0] + 1.0))
    qtbot.mouseClick(win.views.viewport(), Qt.MouseButton.LeftButton,
                     pos=win.views.mapFromScene(scene))
    qtbot.waitUntil(lambda: abs(win.views.playhead() - 1.0) < 0.02, timeout=2000)
    assert win.player.position == pytest.approx(1.0, abs=0.02)


def test_space_toggles_play(qtbot: object, win: MainWindow, wav: Path) -> None:
    win.open_path(wav)
    idle(qtbot, win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=2000)
    qtbot.keyClick(win.views, Qt.Key.Key_Space)
    assert win.player.state == "playing"
    qtbot.keyClick(win.views, Qt.Key.Key_Space)
    assert win.player.state == "paused"


def test_damaged_files_show_one_dialog(qtbot: object, win: MainWindow, ldmz_path: Path,
                                       tmp_path: Path, dialogs: list) -> None:
    bad = tmp_path / "bad.ldmz"
    bad.write_bytes(ldmz_path.read_bytes()[:-7])
    win.open_path(bad)
    idle(qtbot, win)
    garbage = tmp_path / "noise.ldmz"
    garbage.write_bytes(b"RIFF" + bytes(100))
    win.open_path(garbage)
    idle(qtbot, win)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    win.open_path(broken)
    idle(qtbot, win)
    assert [k for k, _ in dialogs] == ["warning"] * 3
    assert "bad.ldmz" in dialogs[0][1] and "truncated" in dialogs[0][1]
    assert "not an ldmz file" in dialogs[1][1] and "broken.wav" in dialogs[2][1]
    assert all(text.endswith(".") and "\n" not in text for _, text in dialogs)
    assert win.orig is None and win.ldmz is None


def test_missing_model_is_a_dialog(qtbot: object, win: MainWindow, wav: Path,
                                   dialogs: list) -> None:
    win.open_path(wav)
    idle(qtbot, win)
    win.codec.model.setCurrentText("no-such-model")
    win.compress()
    idle(qtbot, win)
    assert len(dialogs) == 1 and "no-such-model" in dialogs[0][1]
    assert win.coded is None


def test_settings_persist(tmp_path: Path, qtbot: object, dialogs: list) -> None:
    path = str(tmp_path / "s.ini")
    enc = EncodeParams(model="cvssp/audioldm2", bits=3, chunk_seconds=5.5, vocoder="universal",
                       device="cpu", offline=True)
    dec = DecodeParams(vocoder="griffinlim", sr=16000, griffinlim_iters=64, precision="bf16",
                       device="cpu", model="m", offline=True)
    view = ViewParams(spectrogram="linear", log_freq=False, n_fft=4096, db_floor=-90.0,
                      colormap="viridis")
    s = AppSettings(path)
    assert s.encode_params() == EncodeParams() and s.view_params() == ViewParams()
    s.set_encode_params(enc)
    s.set_decode_params(dec)
    s.set_view_params(view)
    s2 = AppSettings(path)
    assert (s2.encode_params(), s2.decode_params(), s2.view_params()) == (enc, dec, view)
    w = MainWindow(s2, Player(stream_factory=FakeFactory()))
    qtbot.addWidget(w)
    assert w.codec.bits.value() == 3 and w.view_controls.window.currentData() == 4096
    w.codec.bits.setValue(6)
    w.view_controls.cmap.setCurrentText("magma")
    s3 = AppSettings(path)
    assert s3.encode_params().bits == 6 and s3.view_params().colormap == "magma"


def test_recent_files(tmp_path: Path, wav: Path) -> None:
    s = AppSettings(str(tmp_path / "s.ini"))
    s.add_recent(wav)
    s.add_recent(tmp_path / "gone.wav")
    s.add_recent(wav)
    assert s.recent_files() == [str(wav)]


def test_crash_hook_writes_a_log(dialogs: list, monkeypatch: pytest.MonkeyPatch,
                                 tmp_path: Path, qapp: object) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        crash.excepthook(RuntimeError, e, e.__traceback__)
    logs = list(crash.log_dir().glob("crash-*.log"))
    assert len(logs) == 1 and "RuntimeError: boom" in logs[0].read_text()
    assert dialogs[0][0] == "critical" and str(logs[0]) in dialogs[0][1]


def test_worker_cancel_drops_the_result(qtbot: object) -> None:
    from ldmz.gui.worker import TaskPool

    pool = TaskPool()
    got: list[object] = []

    def job(report: object) -> str:
        for i in range(1000):
            report(i, 1000, "spinning")
            import time
            time.sleep(0.002)
        return "done"

    pool.start("x", job, got.append, got.append)
    pool.cancel("x")
    assert not pool.busy()
    qtbot.waitUntil(lambda: not pool._alive, timeout=5000)  # the thread ended early
    pool.start("x", lambda r: 42, got.append, got.append)
    qtbot.waitUntil(lambda: not pool._alive, timeout=5000)
    assert got == [42]
    pool.shutdown()


def test_analysis_scales() -> None:
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    for kind, log in (("mel", True), ("linear", False), ("linear", True)):
        s = analysis.spectrogram(x, SR, 2048, kind, log)
        row = int(np.argmax(s.db[s.frames // 2]))
        y = s.y0 + (row + 0.5) * (s.y1 - s.y0) / s.db.shape[1]
        assert analysis.y_to_hz(y, s.scale) == pytest.approx(1000, rel=0.06)
        assert -6 < s.db.max() < 1
    d = analysis.difference(s, s, -100.0)
    assert d is not None and not d.db.any()


def test_retag_keeps_the_latents(ldmz_path: Path) -> None:
    f = LdmzFile.load(ldmz_path)
    g = jobs.retag(f, {"title": "", "artist": "A", "comment": "c"})
    assert g.header.tags == {"artist": "A", "comment": "c"}
    assert np.array_equal(g.latents(), f.latents())


def test_drop_opens_the_file(qtbot: object, win: MainWindow, wav: Path) -> None:
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(wav))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)
    idle(qtbot, win)
    assert win.orig is not None and win.orig.path == str(wav)
    assert win.settings.recent_files()[0] == str(wav)


def test_view_controls_and_readout(qtbot: object, win: MainWindow, wav: Path) -> None:
    win.open_path(wav)
    idle(qtbot, win)
    c = win.view_controls
    c.kind.setCurrentIndex(c.kind.findData("linear"))
    c.window.setCurrentIndex(c.window.findData(512))
    qtbot.waitUntil(lambda: win.views.panes[0].side.spec.scale == "log", timeout=5000)
    idle(qtbot, win)
    img = win.views.panes[0].image.image
    assert img.shape[1] == analysis.LOG_ROWS and win.view_params.n_fft == 512
    c.log_freq.setChecked(False)
    qtbot.waitUntil(lambda: win.views.panes[0].side.spec.scale == "linear", timeout=5000)
    assert win.views.panes[0].side.spec.db.shape[1] == 257
    c.floor.setValue(-70)
    assert win.views.spec_bar.levels() == (-70, 0)
    spec = win.views.panes[0].spec
    pos = spec.vb.mapViewToScene(QPointF(0.5, 440.0))
    text = win.views.describe(("spec", spec, 0), pos)
    assert text.startswith("Original   t 0.500 s   f 44") and text.endswith(" dB")
    level = float(text.split()[-2])
    assert -40 < level < 0  # the 440 Hz tone at -10 dBFS


def test_original_for_comparison_measures(qtbot: object, win: MainWindow, ldmz_path: Path,
                                          wav: Path, dialogs: list, tiny_model: Path) -> None:
    win.codec.model.setCurrentText(str(tiny_model))
    win.open_path(ldmz_path)
    idle(qtbot, win)
    assert win.metrics.values()["Quality metrics"] == "n/a"
    win.open_path(wav, as_original=True)
    qtbot.waitUntil(lambda: "SNR" in win.metrics.values(), timeout=30000)
    idle(qtbot, win)
    assert float(win.metrics.values()["STOI · speech"]) <= 1 and win.views.diff_spec is not None
    assert "tone.ldmz" in win.windowTitle() and dialogs == []


def test_many_signal_emits_are_survivable(qapp: object) -> None:
    from PySide6.QtCore import QObject, Signal

    class Pinger(QObject):
        ping = Signal()

    p = Pinger()
    for _ in range(5000):  # PySide6 6.12.0 (excluded in pyproject) dropped a ref to True
        p.ping.emit()
    assert sys.getrefcount(True) > 1000


PAYLOAD_WRITER = """
import os, sys
from PySide6.QtCore import QSettings
class Payload:
    def __reduce__(self):
        return (os.mkdir, (sys.argv[2],))
s = QSettings(sys.argv[1], QSettings.Format.IniFormat)
s.setValue("decode/vocoder", Payload())
s.setValue("view/n_fft", Payload())
s.setValue("files/recent", Payload())
s.sync()
"""
QSETTINGS_READER = """
import sys
from PySide6.QtCore import QSettings
s = QSettings(sys.argv[1], QSettings.Format.IniFormat)
print(s.value("decode/vocoder"))
"""


def test_settings_never_unpickle(tmp_path: Path) -> None:
    ini, marker = tmp_path / "ldmz-gui.ini", tmp_path / "payload-ran"

    def run(code: str) -> None:
        subprocess.run([sys.executable, "-c", code, str(ini), str(marker)], check=True,
                       capture_output=True, timeout=60, env=dict(os.environ,
                                                                 QT_QPA_PLATFORM="offscreen"))

    run(PAYLOAD_WRITER)
    assert "@Variant(" in ini.read_text(errors="replace") and not marker.exists()
    s = AppSettings(ini)
    assert (s.decode_params(), s.view_params(), s.recent_files()) == (
        DecodeParams(), ViewParams(), [])
    assert not marker.exists()  # read as plain strings: nothing was unpickled
    s.set_encode_params(EncodeParams(bits=5))
    assert AppSettings(ini).encode_params().bits == 5 and not marker.exists()
    ini.unlink()
    run(PAYLOAD_WRITER)
    run(QSETTINGS_READER)  # the control: QSettings itself runs the payload
    assert marker.is_dir()


def test_version_and_open_filter(capsys: pytest.CaptureFixture) -> None:
    from ldmz import __version__
    from ldmz.codec.audio_io import AUDIO_SUFFIXES
    from ldmz.gui import app, files

    with pytest.raises(SystemExit) as e:
        app.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"ldmz-gui {__version__}"
    flt = files.open_filter()
    for suffix in (".ldmz", ".opus", ".m4a", *AUDIO_SUFFIXES):
        assert f"*{suffix}" in flt.split(";;")[0]


def test_discard_prompt_offers_save(qtbot: object, win: MainWindow, wav: Path, tiny_model: Path,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    win.open_path(wav)
    idle(qtbot, win)
    win.codec.model.setCurrentText(str(tiny_model))
    win.compress()
    idle(qtbot, win)
    assert win.isWindowModified()
    asked: list[object] = []

    def question(parent: object, title: str, text: str, buttons: object, default: object
                 ) -> object:
        asked.append(buttons)
        return QMessageBox.StandardButton.Save

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    target = tmp_path / "kept.ldmz"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    assert win.open_path(wav)  # Save, then go on
    assert asked and asked[0] & QMessageBox.StandardButton.Save
    assert asked[0] & QMessageBox.StandardButton.Discard and target.exists()
    idle(qtbot, win)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    win.set_modified(True)
    assert not win.open_path(wav)  # Save chosen, then the save dialog cancelled: stay


def test_gui_metrics_are_ldmz_eval_metrics(qtbot: object, win: MainWindow, ldmz_path: Path,
                                           wav: Path, capsys: pytest.CaptureFixture,
                                           tiny_model: Path) -> None:
    from ldmz.codec.cli import main as cli_main

    # as `ldmz eval --vocoder griffinlim --model FOLDER` decodes (a file names no folder)
    win.dec = DecodeParams(vocoder="griffinlim", model=str(tiny_model))
    win.open_path(ldmz_path)
    idle(qtbot, win)
    win.open_path(wav, as_original=True)
    qtbot.waitUntil(lambda: "SNR" in win.metrics.values(), timeout=30000)
    idle(qtbot, win)
    gui = {m.name: m.value for m in win.coded.report.metrics}
    capsys.readouterr()
    assert cli_main(["eval", str(wav), str(ldmz_path), "--json", "--vocoder", "griffinlim",
                     "--model", str(tiny_model)]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["delay_samples"] == win.coded.report.delay_samples == 0
    for m in cli["metrics"]:
        if m["name"] in ("snr", "si_sdr", "mel_l1", "stoi"):
            assert gui[m["name"]] == pytest.approx(m["value"], abs=1e-6), m["name"]


@pytest.fixture(scope="module")
def stereo_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """440 Hz on the left, 3 kHz at a quarter of the level on the right."""
    t = np.arange(int(1.0 * SR)) / SR
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.125 * np.sin(2 * np.pi * 3000 * t)])
    path = tmp_path_factory.mktemp("stereo") / "stereo.wav"
    sf.write(path, x.T.astype(np.float32), SR, subtype="FLOAT")
    return path


def test_stereo_lanes_channel_choice_axes_and_frequency_zoom(
        qtbot: object, win: MainWindow, stereo_wav: Path) -> None:
    win.open_path(stereo_wav)
    idle(qtbot, win)
    pane = win.views.panes[0]
    assert len(pane.wave_curves) == 2 and len(pane.env_curves) == 2
    left, right = (c.getOriginalDataset()[1] for c in pane.wave_curves)
    audio, _ = sf.read(stereo_wav, dtype="float32", always_2d=True)
    np.testing.assert_allclose(left - 1, audio[:, 0], atol=1e-6)  # lane L centred at +1
    np.testing.assert_allclose(right + 1, audio[:, 1], atol=1e-6)  # lane R centred at -1
    ticks = pane.wave.getAxis("left")._tickLevels[0]
    assert [name for _, name in ticks] == ["L", "R"]
    assert pane.wave.getAxis("left").labelText == "Channels (±1 each)"
    assert pane.spec.getAxis("left").labelText == "Frequency (Hz)"
    assert pane.spec.getAxis("bottom").labelText == "Time"
    assert pane.spec.getAxis("bottom").labelUnits == "s"
    assert pane.side.channel == "L+R mix"
    # the readout names the lane under the mouse
    vb = pane.wave.vb
    for y, name in ((1.0, "   L   "), (-1.0, "   R   ")):
        text = win.views.describe(("wave", pane.wave, 0), vb.mapViewToScene(QPointF(0.5, y)))
        assert name in text, text

    def band_db(side: object, hz: float) -> float:
        spec = side.spec
        y = float(analysis.hz_to_y(hz, spec.scale))
        row = int((y - spec.y0) / (spec.y1 - spec.y0) * spec.db.shape[1])
        return float(spec.db[:, row].mean())

    p = win.view_controls
    p.channel.setCurrentIndex(p.channel.findData(1))  # the right channel only
    qtbot.waitUntil(lambda: win.views.panes[0].side.channel == "R", timeout=20000)
    idle(qtbot, win)
    side = win.views.panes[0].side
    assert band_db(side, 3000) - band_db(side, 440) > 20  # R holds the 3 kHz tone, not 440 Hz
    p.channel.setCurrentIndex(p.channel.findData(0))
    qtbot.waitUntil(lambda: win.views.panes[0].side.channel == "L", timeout=20000)
    idle(qtbot, win)
    side = win.views.panes[0].side
    assert band_db(side, 440) - band_db(side, 3000) > 20
    p.max_hz.setCurrentIndex(p.max_hz.findData(4000.0))  # frequency zoom
    top = win.views.panes[0].spec.viewRange()[1][1]
    assert top == pytest.approx(float(analysis.hz_to_y(4000.0, side.spec.scale)), abs=1e-3)
    assert win.settings.view_params().max_hz == 4000.0
    assert win.settings.view_params().channel == 0


class _Drag:
    """What pyqtgraph hands mouseDragEvent, for a Shift+drag between two scene points."""

    def __init__(self, start: QPointF, end: QPointF, finish: bool) -> None:
        self.start, self.end, self.finish = start, end, finish

    def button(self) -> Qt.MouseButton:
        return Qt.MouseButton.LeftButton

    def modifiers(self) -> Qt.KeyboardModifier:
        return Qt.KeyboardModifier.ShiftModifier

    def buttonDownScenePos(self) -> QPointF:
        return self.start

    def scenePos(self) -> QPointF:
        return self.end

    def isFinish(self) -> bool:
        return self.finish

    def accept(self) -> None:
        pass


def test_selection_plays_the_region_and_loops(qtbot: object, win: MainWindow, wav: Path,
                                              factory: FakeFactory) -> None:
    win.open_path(wav)
    idle(qtbot, win)
    vb = win.views.panes[0].spec.vb
    a, b = (vb.mapViewToScene(QPointF(t, vb.viewRange()[1][0] + 1)) for t in (0.5, 0.6))
    vb.mouseDragEvent(_Drag(a, b, True))  # Shift+drag on a spectrogram
    lo, hi = win.views.selection()
    assert (lo, hi) == (pytest.approx(0.5, abs=2e-3), pytest.approx(0.6, abs=2e-3))
    assert all(s.isVisible() for s in win.views.selections)
    assert win.player.region == (pytest.approx(lo, abs=1e-4), pytest.approx(hi, abs=1e-4))
    assert win.actions_["play_selection"].isEnabled()
    win.play_selection()
    assert win.player.state == "playing" and win.player.position == pytest.approx(lo, abs=1e-4)
    stream = factory.streams[-1]
    orig = win.player._bufs[0][:, 0]
    n = round((hi - lo) * SR)
    start = round(lo * SR)
    got = stream.pull(n + 500)[:, 0]
    np.testing.assert_array_equal(got[:n], orig[start:start + n])
    assert np.all(got[n:] == 0)  # stops at the end of the selection
    qtbot.waitUntil(lambda: win.player.state == "stopped", timeout=5000)
    win.actions_["loop"].trigger()
    assert win.player.loop and win.actions_["loop"].isChecked()
    win.toggle_play()  # from the start of the selection again
    got = stream.pull(2 * n + 100)[:, 0] if factory.streams[-1] is stream else \
        factory.streams[-1].pull(2 * n + 100)[:, 0]
    np.testing.assert_array_equal(got[:n], orig[start:start + n])
    np.testing.assert_array_equal(got[n:2 * n], orig[start:start + n])  # looped
    win.toggle_play()
    win.clear_selection()
    assert win.player.region is None and win.views.selection() is None


def test_no_sound_card_disables_play_and_device_picker(
        qtbot: object, settings: AppSettings, wav: Path, dialogs: list,
        monkeypatch: pytest.MonkeyPatch, factory: FakeFactory) -> None:
    import ldmz.gui.playback as pb

    monkeypatch.setattr(pb, "default_stream_factory",
                        lambda: (None, "No audio device: playback is off"))
    w = MainWindow(settings, Player())
    qtbot.addWidget(w)
    w.player.probe()
    play = w.actions_["play"]
    assert not play.isEnabled() and "No audio device" in play.toolTip()
    w.fill_device_menu()
    items = w.device_menu.actions()
    assert len(items) == 1 and not items[0].isEnabled() and "No audio device" in items[0].text()
    # with devices: a picker in the Playback menu, remembered, used by the next stream
    w2 = MainWindow(settings, Player(stream_factory=factory, devices=lambda: ["Speakers",
                                                                              "HDMI"]))
    qtbot.addWidget(w2)
    assert w2.actions_["play"].isEnabled()
    w2.fill_device_menu()
    labels = [a.text() for a in w2.device_menu.actions()]
    assert labels == ["System default", "Speakers", "HDMI"]
    assert w2.device_menu.actions()[0].isChecked()
    w2.device_menu.actions()[2].trigger()
    assert w2.player.device == "HDMI" and settings.output_device() == "HDMI"
    w2.open_path(wav)
    idle(qtbot, w2)
    w2.toggle_play()
    assert factory.streams[-1].device == "HDMI"
    w2.toggle_play()
    assert MainWindow(settings, Player(stream_factory=factory)).player.device == "HDMI"


def test_model_loading_is_shown_once(qtbot: object, win: MainWindow, ldmz_path: Path,
                                     tiny_model: Path) -> None:
    from ldmz.codec.models import registry

    stages: list[str] = []
    win.status.progress = lambda d, t, stage: stages.append(stage)  # type: ignore[method-assign]
    jobs._loaded.clear()
    win.dec = DecodeParams(vocoder="griffinlim", griffinlim_iters=8, model=str(tiny_model))
    win.open_path(ldmz_path)
    idle(qtbot, win)
    assert "Loading the model (once per session)" in stages
    misses = registry.load_model.cache_info().misses
    stages.clear()
    win.decode_again()
    idle(qtbot, win)
    assert "Loading the model (once per session)" not in stages and "Decoding" in stages
    assert registry.load_model.cache_info().misses == misses  # the loaded model was reused


def _forged(src: Path, dst: Path, edit: object) -> Path:
    """``src`` with its header edited (and the header CRC made right again), at ``dst``."""
    import msgpack

    from ldmz.formats.chunks import crc32
    from ldmz.formats.container import PREAMBLE

    data = src.read_bytes()
    hlen = PREAMBLE.unpack(data[:16])[4]
    h = LdmzFile.load(src).header.to_dict()
    edit(h)  # type: ignore[operator]
    hb = msgpack.packb(h, use_bin_type=True)
    head = data[:8] + len(hb).to_bytes(4, "little")
    dst.write_bytes(head + crc32(head, hb).to_bytes(4, "little") + hb + data[16 + hlen:])
    return dst


def test_hostile_files_cost_what_their_audio_costs_in_the_app(
        qtbot: object, win: MainWindow, wav: Path, tiny_model: Path, tmp_path: Path,
        dialogs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14 in the app: what a header claims is refused in the worker with one dialog, and
    a file asking for one huge decode window decodes in the model's windows, at the cost of
    its audio."""
    import tracemalloc

    from ldmz.codec import api
    from ldmz.codec.api import encode
    from ldmz.codec.audio_io import read_audio
    from ldmz.codec.models import load_model

    model = load_model(str(tiny_model), "cpu")
    monkeypatch.setattr(api, "model_window", lambda m: 4)  # latent frames per VAE call
    seen: list[int] = []
    cls = type(model.vae)
    real = cls.decode
    monkeypatch.setattr(cls, "decode", lambda self, z, *a, **k: seen.append(z.shape[2])
                        or real(self, z, *a, **k))

    audio, sr = read_audio(wav)
    audio = np.tile(audio, 3)  # 4.5 s: more latent frames than one model window holds
    win.enc = EncodeParams(model=str(tiny_model))  # the folder is the user's choice here
    win.dec = DecodeParams(vocoder="griffinlim", griffinlim_iters=8)
    normal = tmp_path / "normal.ldmz"
    encode(audio, sr, EncodeParams(model=str(tiny_model))).save(normal)
    huge = tmp_path / "huge.ldmz"  # frames_per_chunk far beyond the model's window
    encode(audio, sr, EncodeParams(model=str(tiny_model), chunk_seconds=3000.0)).save(huge)
    assert LdmzFile.load(huge).header.latent.frames_per_chunk > 50000

    def peak_decoding(path: Path) -> int:
        win.open_path(path)
        tracemalloc.start()
        idle(qtbot, win)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert win.coded is not None and dialogs == [], dialogs
        return peak

    peak_decoding(normal)  # the model loads once: measure warm decodes only
    base = peak_decoding(normal)
    peak = peak_decoding(huge)
    print(f"traced peak while decoding: normal {base >> 10} KiB, huge window {peak >> 10} KiB")
    assert peak < 2 * base + (16 << 20)
    frames = LdmzFile.load(huge).header.latent.frames
    assert frames > 4 + 2 * model.context  # so one window over the whole file would show
    assert seen and max(seen) <= 4 + 2 * model.context  # the model's window, not the file's
    cases = {"gain": lambda h: h["source"].update(gain=[1e300]),
             "rate": lambda h: h["source"].update(sample_rate=10_000_000),
             "frames": lambda h: h["latent"].update(frames=64 * h["latent"]["frames"])}
    for name, edit in cases.items():
        dialogs.clear()
        bad = _forged(normal, tmp_path / f"{name}.ldmz", edit)
        win.open_path(bad)
        idle(qtbot, win)
        assert len(dialogs) == 1 and f"{name}.ldmz" in dialogs[0][1], (name, dialogs)
