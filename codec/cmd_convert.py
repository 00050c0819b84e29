"""`ldmz encode` and `ldmz decode`: batch conversion with progress, --force and atomic writes."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from ldmz.codec.params import DecodeParams, EncodeParams

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".m4a"}


def _defaults(cls: type) -> dict:
    return {f.name: f.default for f in fields(cls)}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN")
    p.add_argument("-o", "--output", metavar="OUT_or_DIR",
                   help="output file (one input) or folder (default: next to each input)")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into folders")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--offline", action="store_true",
                   help="use only the local Hugging Face cache (also HF_HUB_OFFLINE=1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `encode` and `decode`."""
    e, d = _defaults(EncodeParams), _defaults(DecodeParams)
    pe = sub.add_parser("encode", help="audio -> .ldmz")
    _common(pe)
    pe.add_argument("--model", default=e["model"], help=f"model name or folder ({e['model']})")
    pe.add_argument("--bits", type=int, default=e["bits"], choices=range(1, 9), metavar="B",
                    help=f"bits of the widest latent channel, 1..8 ({e['bits']})")
    pe.add_argument("--chunk-seconds", type=float, default=e["chunk_seconds"], metavar="S")
    pe.add_argument("--vocoder", default=e["vocoder"], help="default vocoder stored in the file")
    for tag in ("title", "artist", "comment"):
        pe.add_argument(f"--{tag}", help=f"{tag} tag (UTF-8)")
    pe.set_defaults(run=run_encode)
    pd = sub.add_parser("decode", help=".ldmz -> audio (WAV, or FLAC by suffix)")
    _common(pd)
    pd.add_argument("--vocoder", default=d["vocoder"],
                    choices=("", "hifigan", "universal", "griffinlim"),
                    help="hifigan (the model's own), universal or griffinlim (default: file's)")
    pd.add_argument("--sr", type=int, default=d["sr"], help="output rate (default: source's)")
    pd.add_argument("--model", default=d["model"], help="decode with this model instead")
    pd.add_argument("--griffinlim-iters", type=int, default=d["griffinlim_iters"])
    pd.add_argument("--precision", choices=("fp32", "bf16"), default=d["precision"])
    pd.add_argument("--format", choices=("wav", "flac"), default="wav",
                    help="output format when -o is a folder or absent")
    pd.set_defaults(run=run_decode)


def _collect(inputs: list[str], recursive: bool, suffixes: set[str]) -> list[Path]:
    out = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            if not recursive:
                raise IsADirectoryError(f"{p}: is a folder (use -r to convert its files)")
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in suffixes)
        else:
            out.append(p)
    return out


def _target(src: Path, output: str | None, suffix: str, many: bool) -> Path:
    if output is None:
        return src.with_suffix(suffix)
    o = Path(output)
    if o.is_dir() or many or output.endswith(("/", "\\")):
        o.mkdir(parents=True, exist_ok=True)
        return o / (src.stem + suffix)
    return o


def _batch(args: argparse.Namespace, suffixes: set[str], out_suffix: str, convert) -> int:  # noqa: ANN001
    from tqdm import tqdm

    from ldmz.formats import LdmzError

    files = _collect(args.inputs, args.recursive, suffixes)
    many = len(files) > 1
    failed = 0
    bar = tqdm(files, unit="file", disable=args.quiet or not many, file=sys.stderr)
    for src in bar:
        dst = _target(src, args.output, out_suffix, many)
        try:
            if dst.exists() and not args.force:
                raise FileExistsError(f"{dst}: already exists (use --force to overwrite)")
            convert(src, dst)
        except (LdmzError, OSError, ValueError) as e:
            failed += 1
            msg = str(e) if str(src) in str(e) or isinstance(e, FileExistsError) else f"{src}: {e}"
            tqdm.write(msg, file=sys.stderr)
    return 1 if failed else 0


def run_encode(args: argparse.Namespace) -> int:
    """Encode every input; a bad file is reported and skipped; rc 1 if any failed."""
    from ldmz.codec.api import encode
    from ldmz.codec.audio_io import check_audio, read_audio

    params = EncodeParams(model=args.model, bits=args.bits, chunk_seconds=args.chunk_seconds,
                          vocoder=args.vocoder, device=args.device, offline=args.offline)
    tags = {k: getattr(args, k) for k in ("title", "artist", "comment") if getattr(args, k)}

    def convert(src: Path, dst: Path) -> None:
        audio, sr = read_audio(src)
        f = encode(check_audio(audio, str(src)), sr, params, tags)
        f.save(dst, overwrite=args.force)

    return _batch(args, AUDIO_SUFFIXES, ".ldmz", convert)


def run_decode(args: argparse.Namespace) -> int:
    """Decode every input; a damaged file is reported and skipped; rc 1 if any failed."""
    from ldmz.codec.api import decode
    from ldmz.codec.audio_io import write_audio
    from ldmz.formats import LdmzFile

    params = DecodeParams(vocoder=args.vocoder, sr=args.sr, griffinlim_iters=args.griffinlim_iters,
                          precision=args.precision, device=args.device, model=args.model,
                          offline=args.offline)

    def convert(src: Path, dst: Path) -> None:
        audio, sr = decode(LdmzFile.load(src), params)
        write_audio(dst, audio, sr, overwrite=args.force)

    return _batch(args, {".ldmz"}, "." + args.format, convert)
