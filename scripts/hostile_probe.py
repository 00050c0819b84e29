"""Make hostile .ldmz files (valid CRCs, legitimate-looking headers) and time `ldmz info` and
`ldmz decode` on each, with peak RSS, next to a valid file of the same audio duration.

    python scripts/hostile_probe.py OUT_DIR [--seconds 30]

Prints one Markdown table row per (file, command). Uses the embedded ldmz-small model and one
torch thread. Not a test: the hostile suite (tests/test_hostile.py) checks the mechanisms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np


def _forge(data: bytes, edit) -> bytes:  # noqa: ANN001 - edit(header dict)
    from ldmz.formats.chunks import crc32
    from ldmz.formats.container import PREAMBLE

    hlen = PREAMBLE.unpack(data[:16])[4]
    h = msgpack.unpackb(data[16:16 + hlen], raw=False)
    edit(h)
    hb = msgpack.packb(h, use_bin_type=True)
    head = PREAMBLE.pack(b"LDMZ", 1, 0, 0, len(hb), 0)[:12]
    return head + crc32(head, hb).to_bytes(4, "little") + hb + data[16 + hlen:]


def make(out: Path, seconds: float) -> dict[str, Path]:
    """Write the valid and hostile files into ``out``; return name -> path."""
    from ldmz.codec.api import encode
    from ldmz.codec.audio_io import read_audio
    from ldmz.codec.params import EncodeParams
    from ldmz.formats import pack_latents

    x, sr = read_audio(Path(__file__).resolve().parents[1] / "examples" / "example.flac")
    x = np.tile(x[:1], int(np.ceil(seconds * sr / x.shape[1])))[:, :int(seconds * sr)]
    files = {}
    valid = encode(x, sr, EncodeParams())
    files["valid"] = out / "valid.ldmz"
    valid.save(files["valid"], overwrite=True)
    big = encode(x, sr, EncodeParams(chunk_seconds=3000.0))  # frames_per_chunk 64600
    files["frames_per_chunk=64600"] = out / "fpc.ldmz"
    big.save(files["frames_per_chunk=64600"], overwrite=True)
    h = valid.header
    z = valid.latents()
    twice = pack_latents(np.concatenate([z, z], axis=2), model=h.model, mel=h.mel,
                         source=h.source, bits=2, frames_per_chunk=h.latent.frames_per_chunk,
                         time_downsample=h.latent.time_downsample, vocoder=h.vocoder)
    files["latent frames = 2x samples"] = out / "twice.ldmz"
    twice.save(files["latent frames = 2x samples"], overwrite=True)
    data = valid.to_bytes()
    forged = {
        "source.samples = 2^28": lambda d: d["source"].update(samples=1 << 28),
        "source.sample_rate = 10 MHz": lambda d: d["source"].update(sample_rate=10_000_000),
        "source.gain = 1e300": lambda d: d["source"].update(gain=[1e300]),
        "q_step = 1e30": lambda d: d["chunks"][0]["q_step"][0].__setitem__(0, 1e30),
        "model.id = a folder": lambda d: d["model"].update(id=str(out)),
        "frames 64x samples": lambda d: d["source"].update(samples=d["source"]["samples"] // 64),
    }
    for i, (name, edit) in enumerate(forged.items()):
        files[name] = out / f"forged{i}.ldmz"
        files[name].write_bytes(_forge(data, edit))
    # many chunks declaring large, highly compressible payloads: 16 channels of float16 zeros
    lat, n = h.latent, int(seconds * 10 * h.source.sample_rate)
    src = type(h.source)(h.source.sample_rate, 16, n, (0.0,) * 16)
    need = -(-max(-(-n * h.mel.sample_rate // h.source.sample_rate), h.mel.n_fft)
             // (h.mel.hop_length * lat.time_downsample))
    zeros = np.zeros((16, lat.channels, need, lat.freq_bins), np.float32)
    wide = pack_latents(zeros, model=h.model, mel=h.mel, source=src, bits="float16",
                        frames_per_chunk=lat.frames_per_chunk,
                        time_downsample=lat.time_downsample, vocoder=h.vocoder)
    name = f"16 ch float16 zeros, {seconds * 10 / 60:.0f} min"
    files[name] = out / "wide.ldmz"
    wide.save(files[name], overwrite=True)
    return files


def measure(argv: list[str], timeout: float = 900) -> tuple[float, float, int]:
    """(seconds, peak RSS MB, exit code) of one `ldmz` run, by /usr/bin/time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", sys.executable, "-c",
                        "from ldmz.codec.cli import entry; entry()", *argv],
                       capture_output=True, timeout=timeout, env=env, text=True)
    dt, kb = r.stderr.strip().splitlines()[-1].split()[-2:]
    return float(dt), int(kb) / 1024, r.returncode


def main() -> None:
    """Make the files, run info and decode on each, print a Markdown table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = make(out, args.seconds)
    print("| file | size | command | time s | peak RSS MB | exit |")
    print("|---|---|---|---|---|---|")
    for name, path in files.items():
        size = path.stat().st_size
        for cmd in (["info", str(path)], ["decode", str(path), "-q", "--force", "-o",
                                           str(out / "out.wav")]):
            dt, mb, rc = measure(cmd)
            print(f"| {name} | {size / 1000:.1f} kB | {cmd[0]} | {dt:.2f} | {mb:.0f} | {rc} |",
                  flush=True)


if __name__ == "__main__":
    main()
