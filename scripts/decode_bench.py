"""Peak memory of `ldmz decode` per vocoder and duration, and ldmzdec's first-buffer latency.

Run: ``python scripts/decode_bench.py [--seconds 60 600] [--vocoders ldmzvoc universal
griffinlim] [--gst-plays 4] [--out FILE.md]``. Prints a Markdown report (issue 12's decode
targets: peak RSS <= 400 MB at any duration; ldmzdec's first buffer <= 0.3 s after PLAYING,
the model already loaded).

- Memory: a stereo 44.1 kHz signal (tones and noise) of each duration is encoded with the
  embedded model at the defaults, then each vocoder decodes it in a fresh `ldmz decode`
  process (to a float WAV) whose peak RSS (VmHWM) and wall time are reported.
- Latency: ``/usr/bin/python3`` (the Python of python3-gst-1.0) plays the shortest file
  through ``filesrc ! ldmzdec ! fakesink sync=false`` several times in one process; the first
  play loads torch and the models, the later ones show the first-buffer delay after
  PLAYING with everything loaded. Skipped where GStreamer's Python loader is missing. The
  plug-in imports the ldmz of ``LDMZ_VENV`` (default: this interpreter's venv).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHILD = r"""
import sys, time
from pathlib import Path
from ldmz.codec.cli import main
t = time.perf_counter()
rc = main(sys.argv[1:] + ["-q", "--force"])
hwm = Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]
print(rc, time.perf_counter() - t, hwm)
"""
GST_CHILD = r"""
import sys, time
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
path, voc, plays = sys.argv[1], sys.argv[2], int(sys.argv[3])
for play in range(plays):
    p = Gst.parse_launch(f"filesrc location={path} ! ldmzdec name=d vocoder={voc} "
                         "! fakesink sync=false")
    got = []
    def probe(pad, info):
        if not got:
            got.append(time.perf_counter())
        return Gst.PadProbeReturn.OK
    p.get_by_name("d").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
    bus = p.get_bus()
    p.set_state(Gst.State.PAUSED)
    m = bus.timed_pop_filtered(120 * Gst.SECOND,
                               Gst.MessageType.ASYNC_DONE | Gst.MessageType.ERROR)
    if m is None or m.type != Gst.MessageType.ASYNC_DONE:
        sys.exit(f"preroll failed: {m.parse_error() if m else 'timeout'}")
    t0 = time.perf_counter()
    p.set_state(Gst.State.PLAYING)
    while not got:
        m = bus.timed_pop_filtered(5 * Gst.MSECOND, Gst.MessageType.ERROR)
        if m is not None:
            sys.exit(f"error: {m.parse_error()}")
        if time.perf_counter() - t0 > 120:
            sys.exit("no buffer within 120 s")
    print("first", got[0] - t0, flush=True)
    p.set_state(Gst.State.NULL)
"""


def make_file(seconds: float, work: Path) -> Path:
    """Encode ``seconds`` of stereo 44.1 kHz test audio with the defaults; return the .ldmz."""
    import soundfile as sf

    sr, wav = 44100, work / f"in{seconds:g}.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(wav, "w", sr, 2, subtype="PCM_16") as f:
        for _ in range(int(seconds)):  # one second at a time
            t = np.arange(sr) / sr
            x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
            f.write(np.stack([x, x[::-1]], 1) + 0.01 * rng.standard_normal((sr, 2)))
    out = wav.with_suffix(".ldmz")
    subprocess.run([sys.executable, "-m", "ldmz", "encode", str(wav), "-o", str(out), "-q"],
                   check=True)
    wav.unlink()
    return out


def decode_peak(path: Path, vocoder: str, work: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of ``ldmz decode PATH --vocoder VOCODER`` in a child."""
    r = subprocess.run([sys.executable, "-c", CHILD, "decode", str(path), "-o",
                        str(work / "out.wav"), "--vocoder", vocoder],
                       capture_output=True, text=True, check=True)
    rc, secs, kb = r.stdout.split()[-3:]
    if rc != "0":
        raise RuntimeError(r.stderr)
    (work / "out.wav").unlink(missing_ok=True)
    return int(kb) / 1024, float(secs)


def gst_first_buffers(path: Path, vocoder: str, plays: int) -> list[float] | str:
    """First-buffer delays after PLAYING (s), one per play in one process, or why not."""
    py = Path("/usr/bin/python3")
    if not py.exists() or shutil.which("gst-inspect-1.0") is None:
        return "no /usr/bin/python3 or GStreamer tools"
    env = {**os.environ, "GST_PLUGIN_PATH": str(ROOT / "packaging" / "gstreamer"),
           "LDMZ_VENV": os.environ.get("LDMZ_VENV", sys.prefix)}
    with tempfile.TemporaryDirectory() as reg:
        env["GST_REGISTRY"] = str(Path(reg) / "registry.bin")
        r = subprocess.run([str(py), "-c", GST_CHILD, str(path), vocoder, str(plays)],
                           capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        return (r.stderr.strip().splitlines() or ["failed"])[-1]
    return [float(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("first")]


def main() -> None:
    """Run the measurements and print the Markdown report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[60.0, 600.0])
    ap.add_argument("--vocoders", nargs="+", default=["ldmzvoc", "universal", "griffinlim"])
    ap.add_argument("--gst-plays", type=int, default=4, help="0: skip the GStreamer latency")
    ap.add_argument("--out", help="also write the report here")
    args = ap.parse_args()
    t0, load0 = time.time(), os.getloadavg()
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
    lines = [f"## ldmz decode memory and ldmzdec latency, {when} UTC", ""]
    rows = ["| vocoder | " + " | ".join(f"{s:g} s: peak RSS, wall" for s in args.seconds)
            + " |", "|---|" + "---|" * len(args.seconds)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = {s: make_file(s, work) for s in args.seconds}
        for v in args.vocoders:
            cells = [decode_peak(files[s], v, work) for s in args.seconds]
            rows.append(f"| {v} | " + " | ".join(f"{mb:.0f} MB, {secs:.0f} s"
                                                 for mb, secs in cells) + " |")
            print(rows[-1], file=sys.stderr)
        gst = {v: gst_first_buffers(files[min(args.seconds)], v, args.gst_plays)
               for v in args.vocoders if args.gst_plays > 0}
    lines += ["Peak RSS (VmHWM) of `ldmz decode FILE --vocoder V` (stereo 44.1 kHz, embedded "
              "model, default settings, float WAV out):", "", *rows, ""]
    if gst:
        lines += ["ldmzdec first buffer after PLAYING (`filesrc ! ldmzdec ! fakesink "
                  "sync=false`, one process; play 1 loads torch and the models):", "",
                  "| vocoder | play 1 (cold) | later plays (models loaded) |", "|---|---|---|"]
        for v, r in gst.items():
            if isinstance(r, str):
                lines.append(f"| {v} | {r} | |")
            else:
                warm = ", ".join(f"{x:.2f}" for x in r[1:])
                lines.append(f"| {v} | {r[0]:.2f} s | {warm} s |")
        lines.append("")
    lines.append(f"Load average {load0[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
                 f"end; {os.cpu_count()} logical CPUs; OMP_NUM_THREADS="
                 f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; {time.time() - t0:.0f} s.")
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
