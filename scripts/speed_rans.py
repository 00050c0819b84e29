"""Speed of entropy coding on one thread: encode, entropy decode and latent decode (+ VAE).

    python scripts/speed_rans.py AUDIO [--model ldmz-small] [--quality Q]

Real-time factor = seconds of audio / seconds of compute, best of 3 (> 1 is faster than real
time), from wall time and from the process's CPU time (one thread: on a loaded shared machine
the CPU time is the fairer measure; the load average is printed too).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def best(fn, n: int = 3) -> tuple[float, float]:  # noqa: ANN001 - a callable
    """Fastest of ``n`` calls: (wall seconds, CPU seconds)."""
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main() -> None:
    """Command line."""
    import torch

    from ldmz.codec.api import decode_mel, encode
    from ldmz.codec.audio_io import read_audio
    from ldmz.codec.models import load_model
    from ldmz.codec.params import EncodeParams
    from ldmz.formats import LdmzFile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("audio")
    ap.add_argument("--model", default="ldmz-small")
    ap.add_argument("--quality", type=int, default=-1)
    a = ap.parse_args()
    torch.set_num_threads(1)
    audio, sr = read_audio(a.audio)
    audio = audio.mean(0, keepdims=True)
    secs = audio.shape[1] / sr
    model = load_model(a.model, "cpu")
    params = EncodeParams(model=a.model, coding="rans", quality=a.quality)
    f = encode(audio, sr, params)
    data = f.to_bytes()
    t_enc = best(lambda: encode(audio, sr, params).to_bytes())
    g = LdmzFile.from_bytes(data)
    g.use_tables(model.tables)
    t_ent = best(lambda: [g.read_chunk(i) for i in range(len(g.header.chunks))])

    def latent_decode() -> None:
        h = LdmzFile.from_bytes(data)
        decode_mel(h, 0, model)

    t_dec = best(latent_decode)
    kbps = len(data) * 8 / secs / 1000
    print(f"{a.audio}: {secs:.1f} s, quality {f.header.quantizer.quality}, {kbps:.2f} kbps, "
          f"load average {os.getloadavg()[0]:.1f}")
    for what, (w, c) in (("encode (mel + VAE encoder + rANS)", t_enc),
                         ("entropy decode alone", t_ent),
                         ("latent decode (rANS + VAE decoder)", t_dec)):
        print(f"  {what:38s} {secs / w:7.1f}x real time (wall), {secs / c:7.1f}x (CPU time)")
    print(f"  bits/value per chunk {np.round(f.chunk_bits_per_value(), 3).tolist()}")


if __name__ == "__main__":
    main()
