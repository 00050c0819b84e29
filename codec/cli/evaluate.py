"""`ldmz eval` (reference vs degraded audio or .ldmz) and `ldmz demo` (the bundled example)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example.flac"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `eval` and `demo`."""
    from ldmz.codec.cli import sub_parser

    p = sub_parser(
        sub, "eval", help="objective quality of degraded audio (or .ldmz) vs a reference",
        description="Compare each DEG with REF: SNR, SI-SDR, LSD, log-mel L1, multi-resolution "
                    "STFT, PESQ and STOI (speech metrics), and ViSQOL with --visqol. A .ldmz "
                    "DEG is decoded first. A warning says when the durations differ.",
        examples=[("ldmz eval song.wav song.ldmz", "the codec's loss on one file"),
                  ("ldmz eval ref.wav a.wav b.wav --json --visqol", "several files, with ViSQOL")])
    p.add_argument("reference", metavar="REF", help="the reference audio file")
    p.add_argument("degraded", nargs="+", metavar="DEG", help="audio files or .ldmz files")
    p.add_argument("--vocoder", default="", metavar="NAME",
                   help="vocoder for .ldmz inputs (default: the file's)")
    p.add_argument("--model", default="", metavar="NAME",
                   help="model name or folder for .ldmz inputs (default: the one each names)")
    p.add_argument("--json", action="store_true", help="one JSON object per DEG")
    p.add_argument("--visqol", action="store_true",
                   help="also compute ViSQOL (slow; off by default, as in `ldmz bench`)")
    p.add_argument("--no-visqol", action="store_true", help=argparse.SUPPRESS)  # the old default
    p.add_argument("--align", choices=("auto", "yes", "no"), default="auto",
                   help="delay-compensate DEG by cross-correlation: auto = audio files yes, "
                        ".ldmz no (decoded .ldmz is sample-aligned); use `no` for WAVs "
                        "decoded from .ldmz, whose phase-free output fools cross-correlation")
    p.set_defaults(run=run_eval)
    d = sub_parser(
        sub, "demo", help="encode, decode and measure the bundled example (or FILE)",
        description="Encode FILE (default: the bundled example), decode it, and print the "
                    "bitrate, compression, speed and quality; the .ldmz and the decoded WAV "
                    "go to --out.",
        examples=[("ldmz demo", "the bundled example"),
                  ("ldmz demo my.flac --bits 3 --vocoder griffinlim",
                   "your audio, other settings")])
    d.add_argument("file", nargs="?", default=str(EXAMPLE), metavar="FILE",
                   help="audio to try (default: the bundled example)")
    d.add_argument("--bits", type=int, default=None, choices=range(1, 9), metavar="N",
                   help="affine coding (format 1) with N bits on the widest latent channel, "
                        "1..8 (default: the encoder's default coding)")
    d.add_argument("--model", default=None, metavar="NAME",
                   help="model name or folder (default: the encoder's)")
    d.add_argument("--vocoder", default="", metavar="NAME",
                   help="vocoder for the decode (default: the file's)")
    d.add_argument("--out", default="demo-out", metavar="DIR",
                   help="folder for the .ldmz and decoded WAV (default: %(default)s)")
    d.add_argument("-f", "--force", action="store_true",
                   help="overwrite the .ldmz and WAV already in --out")
    d.set_defaults(run=run_demo)


def _degraded(path: str, vocoder: str,
              model: str = "") -> tuple[np.ndarray, int, float | None]:
    from ldmz.codec.audio_io import check_audio, read_audio

    if path.lower().endswith(".ldmz"):
        from ldmz.codec.api import decode
        from ldmz.codec.params import DecodeParams
        from ldmz.formats import LdmzFile

        with LdmzFile.load(path, lazy=True) as f:
            audio, sr = decode(f, DecodeParams(vocoder=vocoder, model=model))
            rate = f.header.bitrate_kbps(f.file_size)
        return check_audio(audio, path), sr, rate
    audio, sr = read_audio(path)
    return check_audio(audio, path), sr, None


def run_eval(args: argparse.Namespace) -> int:
    """Compare each DEG with REF and print the metrics (each with its better direction)."""
    from ldmz.codec.audio_io import check_audio, read_audio
    from ldmz.codec.metrics import CompareParams, compare
    from ldmz.formats.printable import printable

    ref, ref_sr = read_audio(args.reference)
    ref = check_audio(ref, args.reference)  # a bad reference is blamed on the reference
    ref_s = ref.shape[-1] / ref_sr
    rc = 0
    for path in args.degraded:
        try:
            deg, sr, kbps = _degraded(path, args.vocoder, args.model)
            # a decoded .ldmz is sample-aligned by construction; cross-correlation misplaces
            # phase-free vocoder output, so only other audio is delay-compensated
            align = (not path.lower().endswith(".ldmz")) if args.align == "auto" \
                else args.align == "yes"
            rep = compare(ref, ref_sr, deg, sr,
                          CompareParams(visqol=args.visqol and not args.no_visqol, align=align))
        except Exception as e:  # one line per failing file, then go on
            from ldmz.formats import LdmzError

            if not isinstance(e, (LdmzError, OSError, ValueError)):
                raise
            print(printable(f"{path}: {e}" if path not in str(e) else str(e)), file=sys.stderr)
            rc = 1
            continue
        deg_s = deg.shape[-1] / sr
        if abs(deg_s - ref_s) > 0.001:  # a millisecond: more than rounding between rates
            print(f"warning: {path} lasts {deg_s:.3f} s, {args.reference} {ref_s:.3f} s: the "
                  f"metrics cover the common {min(deg_s, ref_s):.3f} s; check that these are "
                  f"the same recording", file=sys.stderr)
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
    ep = EncodeParams(model=args.model or ep.model, bits=args.bits or ep.bits,
                      coding="affine" if args.bits else ep.coding)  # --bits: format 1
    out = Path(args.out)
    ldmz_path, wav_path = out / (src.stem + ".ldmz"), out / (src.stem + ".decoded.wav")
    for p in (ldmz_path, wav_path):  # refuse before the work, not after it
        if p.exists() and not args.force:
            raise FileExistsError(f"{p}: already exists (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    f = encode(audio, sr, ep, {"title": src.stem})
    t_enc = time.perf_counter() - t0
    f.save(ldmz_path, overwrite=args.force)
    t0 = time.perf_counter()
    y, ysr = decode(f, DecodeParams(vocoder=args.vocoder, model=ep.model))
    t_dec = time.perf_counter() - t0
    write_audio(wav_path, y, ysr, overwrite=args.force)
    size = ldmz_path.stat().st_size
    dur = audio.shape[1] / sr
    print(f"{src}: {dur:.2f} s, {audio.shape[0]} ch @ {sr} Hz")
    q = f.header.quantizer
    coding = f"quality {q.quality} (rans)" if q.mode == "rans" else f"bits {ep.bits}"
    print(f"  model {f.header.model.id}, {coding} -> {ldmz_path} ({size} bytes)")
    print(f"  bitrate {f.header.bitrate_kbps(size):.2f} kbps, compression "
          f"{f.header.compression_ratio(size):.0f}:1 vs 16-bit PCM")
    print(f"  encode {t_enc:.2f} s ({dur / t_enc:.2f}x real time), decode {t_dec:.2f} s "
          f"({dur / t_dec:.2f}x real time, vocoder {args.vocoder or f.header.vocoder})")
    print(compare(audio, sr, y, ysr, CompareParams(align=False)).format_table())
    return 0
