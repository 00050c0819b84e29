"""`ldmz eval` (reference vs degraded audio or .ldmz) and `ldmz demo` (the bundled example)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example.flac"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `eval` and `demo`."""
    p = sub.add_parser("eval", help="objective quality of degraded audio (or .ldmz) vs a reference")
    p.add_argument("reference", metavar="REF")
    p.add_argument("degraded", nargs="+", metavar="DEG", help="audio files or .ldmz files")
    p.add_argument("--vocoder", default="", help="vocoder for .ldmz inputs (default: file's)")
    p.add_argument("--json", action="store_true", help="one JSON object per DEG")
    p.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (slow)")
    p.add_argument("--align", choices=("auto", "yes", "no"), default="auto",
                   help="delay-compensate DEG by cross-correlation: auto = audio files yes, "
                        ".ldmz no (decoded .ldmz is sample-aligned); use `no` for WAVs "
                        "decoded from .ldmz, whose phase-free output fools cross-correlation")
    p.set_defaults(run=run_eval)
    d = sub.add_parser("demo", help="encode, decode and measure the bundled example (or FILE)")
    d.add_argument("file", nargs="?", default=str(EXAMPLE))
    d.add_argument("--bits", type=int, default=None)
    d.add_argument("--model", default=None)
    d.add_argument("--vocoder", default="")
    d.add_argument("--out", default="demo-out", help="folder for the .ldmz and decoded WAV")
    d.set_defaults(run=run_demo)


def _degraded(path: str, vocoder: str):  # noqa: ANN202 - (audio, sr, bitrate or None)
    from ldmz.codec.audio_io import read_audio

    if path.lower().endswith(".ldmz"):
        from ldmz.codec.api import decode
        from ldmz.codec.params import DecodeParams
        from ldmz.formats import LdmzFile

        f = LdmzFile.load(path)
        audio, sr = decode(f, DecodeParams(vocoder=vocoder))
        return audio, sr, os.path.getsize(path) * 8 / f.header.duration / 1000
    audio, sr = read_audio(path)
    return audio, sr, None


def run_eval(args: argparse.Namespace) -> int:
    """Compare each DEG with REF and print the metrics (each with its better direction)."""
    from ldmz.codec.audio_io import read_audio
    from ldmz.codec.metrics import CompareParams, compare

    ref, ref_sr = read_audio(args.reference)
    rc = 0
    for path in args.degraded:
        try:
            deg, sr, kbps = _degraded(path, args.vocoder)
            # a decoded .ldmz is sample-aligned by construction; cross-correlation misplaces
            # phase-free vocoder output, so only other audio is delay-compensated
            align = (not path.lower().endswith(".ldmz")) if args.align == "auto" \
                else args.align == "yes"
            rep = compare(ref, ref_sr, deg, sr,
                          CompareParams(visqol=not args.no_visqol, align=align))
        except Exception as e:  # noqa: BLE001 - one line per failing file, then go on
            from ldmz.formats import LdmzError

            if not isinstance(e, (LdmzError, OSError, ValueError)):
                raise
            print(f"{path}: {e}" if path not in str(e) else str(e), file=sys.stderr)
            rc = 1
            continue
        if args.json:
            print(json.dumps({"reference": args.reference, "degraded": path,
                              "bitrate_kbps": kbps, **rep.to_dict()}))
        else:
            head = f"{path} vs {args.reference}"
            print(head + (f"  ({kbps:.2f} kbps)" if kbps else ""))
            print(rep.format_table())
    return rc


def run_demo(args: argparse.Namespace) -> int:
    """Encode FILE, decode it, print bitrate, compression, speed and quality."""
    from ldmz.codec.api import decode, encode
    from ldmz.codec.audio_io import read_audio, write_audio
    from ldmz.codec.metrics import CompareParams, compare
    from ldmz.codec.params import DecodeParams, EncodeParams

    src = Path(args.file)
    audio, sr = read_audio(src)
    ep = EncodeParams()
    ep = EncodeParams(model=args.model or ep.model, bits=args.bits or ep.bits)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    f = encode(audio, sr, ep, {"title": src.stem})
    t_enc = time.perf_counter() - t0
    ldmz_path = out / (src.stem + ".ldmz")
    f.save(ldmz_path, overwrite=True)
    t0 = time.perf_counter()
    y, ysr = decode(f, DecodeParams(vocoder=args.vocoder))
    t_dec = time.perf_counter() - t0
    write_audio(out / (src.stem + ".decoded.wav"), y, ysr, overwrite=True)
    size = ldmz_path.stat().st_size
    dur = audio.shape[1] / sr
    print(f"{src}: {dur:.2f} s, {audio.shape[0]} ch @ {sr} Hz")
    print(f"  model {f.header.model.id}, bits {ep.bits} -> {ldmz_path} ({size} bytes)")
    print(f"  bitrate {size * 8 / dur / 1000:.2f} kbps, compression "
          f"{sr * audio.shape[0] * 16 * dur / (size * 8):.0f}:1 vs 16-bit PCM")
    print(f"  encode {t_enc:.2f} s ({dur / t_enc:.2f}x real time), decode {t_dec:.2f} s "
          f"({dur / t_dec:.2f}x real time, vocoder {args.vocoder or f.header.vocoder})")
    print(compare(audio, sr, y, ysr, CompareParams(align=False)).format_table())
    return 0
