"""`ldmz encode` and `ldmz decode`: batch conversion with progress, --force and atomic writes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from ldmz.codec.audio_io import AUDIO_SUFFIXES
from ldmz.codec.params import DecodeParams, EncodeParams


def _defaults(cls: type) -> dict:
    return {f.name: f.default for f in fields(cls)}


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return v

    parse.__name__ = kind.__name__
    return parse


def _vocoder(text: str) -> str:
    """A built-in vocoder name, an installed plug-in's, or "" (the default)."""
    from ldmz.codec.vocoders import VocoderError, check_vocoder  # no torch import

    if text:
        try:
            check_vocoder(text)
        except VocoderError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


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
    pe.add_argument("--chunk-seconds", type=_positive(float), default=e["chunk_seconds"],
                    metavar="S", help=f"seconds per chunk ({e['chunk_seconds']:g})")
    pe.add_argument("--vocoder", default=e["vocoder"], type=_vocoder, metavar="NAME",
                    help="default vocoder stored in the file: hifigan, universal, griffinlim "
                         "or an installed plug-in (default: the model's own)")
    for tag in ("title", "artist", "comment"):
        pe.add_argument(f"--{tag}", help=f"{tag} tag (UTF-8)")
    pe.set_defaults(run=run_encode)
    pd = sub.add_parser("decode", help=".ldmz -> audio (WAV, or FLAC by suffix)")
    _common(pd)
    pd.add_argument("--vocoder", default=d["vocoder"], type=_vocoder, metavar="NAME",
                    help="hifigan (the model's own), universal, griffinlim or an installed "
                         "plug-in (`ldmz plugins`; default: the file's)")
    pd.add_argument("--sr", type=_positive(int), default=d["sr"],
                    help="output rate (default: source's)")
    pd.add_argument("--model", default=d["model"], help="decode with this model instead")
    pd.add_argument("--griffinlim-iters", type=_positive(int), default=d["griffinlim_iters"])
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
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in suffixes and q.is_file())
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


def message(src: Path, e: BaseException) -> str:
    """One line naming the file, what went wrong and what to do about it."""
    from ldmz.formats import FormatError, LdmzError, VersionError

    text = " ".join(str(e).split())
    if isinstance(e, VersionError):
        text += "; read it with an ldmz that supports that version, or re-encode it"
    elif isinstance(e, FormatError):
        text += "; the file is damaged or not a .ldmz file: re-encode it from the source audio"
    elif isinstance(e, OSError) and not isinstance(e, LdmzError | FileExistsError) \
            and e.filename:
        text = f"{e.filename}: {e.strerror or text}; check the path and its permissions"
    elif isinstance(e, MemoryError):
        text = "out of memory; try --chunk-seconds smaller or free some memory"
    elif not isinstance(e, LdmzError | OSError | ValueError):
        text = f"failed ({type(e).__name__}: {text}); please report this with the file"
    return text if str(src) in text or isinstance(e, FileExistsError) else f"{src}: {text}"


def _batch(args: argparse.Namespace, suffixes: set[str], out_suffix: str, convert) -> int:  # noqa: ANN001
    from tqdm import tqdm

    files = _collect(args.inputs, args.recursive, suffixes)
    if not files:
        raise FileNotFoundError(f"{', '.join(args.inputs)}: no {'/'.join(sorted(suffixes))} "
                                f"files there")
    many = len(files) > 1 or any(Path(s).is_dir() for s in args.inputs)
    out = Path(args.output) if args.output else None
    if many and out is not None and not out.is_dir() and out.suffix.lower() in (
            out_suffix, ".ldmz", ".wav", ".flac"):
        raise NotADirectoryError(f"{out}: -o names a file, but there are several inputs; "
                                 f"give a folder")
    failed = 0
    bar = tqdm(files, unit="file", disable=args.quiet or len(files) < 2, file=sys.stderr)
    for src in bar:
        dst = _target(src, args.output, out_suffix, many)
        try:
            if dst.exists() and not args.force:
                raise FileExistsError(f"{dst}: already exists (use --force to overwrite)")
            if dst.resolve() == src.resolve():
                raise FileExistsError(f"{dst}: output would replace its input; use -o")
            convert(src, dst)
        except Exception as e:  # noqa: BLE001 - one line per bad file, then go on
            failed += 1
            tqdm.write(message(src, e), file=sys.stderr)
    return 1 if failed else 0


def _bar(args: argparse.Namespace, what: str):  # noqa: ANN202 - (callback, close)
    from tqdm import tqdm

    if args.quiet or not sys.stderr.isatty():
        return None, lambda: None
    bar = tqdm(total=0, unit="win", desc=what, leave=False, file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


def encode_params(args: argparse.Namespace) -> EncodeParams:
    """The EncodeParams that parsed `ldmz encode` arguments ask for."""
    return EncodeParams(model=args.model, bits=args.bits, chunk_seconds=args.chunk_seconds,
                        vocoder=args.vocoder, device=args.device, offline=args.offline)


def decode_params(args: argparse.Namespace) -> DecodeParams:
    """The DecodeParams that parsed `ldmz decode` arguments ask for."""
    return DecodeParams(vocoder=args.vocoder, sr=args.sr, griffinlim_iters=args.griffinlim_iters,
                        precision=args.precision, device=args.device, model=args.model,
                        offline=args.offline)


def run_encode(args: argparse.Namespace) -> int:
    """Encode every input; a bad file is reported and skipped; rc 1 if any failed."""
    from ldmz.codec.api import encode_file

    params = encode_params(args)
    tags = {k: getattr(args, k) for k in ("title", "artist", "comment") if getattr(args, k)}

    def convert(src: Path, dst: Path) -> None:
        progress, close = _bar(args, src.name)
        try:
            f = encode_file(src, params, tags, progress)
        finally:
            close()
        f.save(dst, overwrite=args.force)

    return _batch(args, set(AUDIO_SUFFIXES), ".ldmz", convert)


def run_decode(args: argparse.Namespace) -> int:
    """Decode every input; a damaged file is reported and skipped; rc 1 if any failed."""
    from ldmz.codec.api import decode_stream
    from ldmz.codec.audio_io import write_audio_stream
    from ldmz.formats import LdmzFile

    params = decode_params(args)

    def convert(src: Path, dst: Path) -> None:
        if dst.suffix.lower() not in (".wav", ".flac"):
            raise ValueError(f"{dst}: can only write .wav or .flac; change the output suffix")
        progress, close = _bar(args, src.name)
        try:
            st = decode_stream(LdmzFile.load(src), params, progress=progress)
            write_audio_stream(dst, st, st.sample_rate, st.channels, overwrite=args.force)
        finally:
            close()

    return _batch(args, {".ldmz"}, "." + args.format, convert)
