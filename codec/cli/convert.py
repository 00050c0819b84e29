"""`ldmz encode` and `ldmz decode`: batch conversion with progress, --force and atomic writes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

from ldmz.codec.audio_io import AUDIO_SUFFIXES, SAMPLE_FORMATS
from ldmz.codec.cli import number
from ldmz.codec.cli.cluster import add_cluster_options
from ldmz.codec.errors import ParamError
from ldmz.codec.params import AFFINE_MODEL, DEFAULT_MODEL, DecodeParams, EncodeParams

TAG_OPTIONS = ("title", "artist", "album", "genre", "comment")  # as ldmzenc (GStreamer) takes
STDIO = Path("-")  # `-`: standard input as IN, standard output as -o (./- is a file named -)


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls)}


def _vocoder(text: str) -> str:
    """A built-in vocoder name, an installed plug-in's, or "" (the default)."""
    from ldmz.codec.errors import VocoderError
    from ldmz.codec.vocoders import check_vocoder  # no torch import

    if text:
        try:
            check_vocoder(text)
        except VocoderError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _common(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN",
                   help=f"input files ({what}), folders (with -r), or - for standard input")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (one input), folder, or - for standard output "
                        "(default: next to each input)")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into folders")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the model runs (default: %(default)s, a GPU when torch sees one)")
    p.add_argument("--offline", action="store_true",
                   help="use only the local Hugging Face cache (also HF_HUB_OFFLINE=1)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no line per file, no progress bar (progress shows only on a terminal)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `encode` and `decode`."""
    from ldmz.codec.cli import sub_parser
    from ldmz.codec.cli.sink import PEAK_MODES

    e, d = _defaults(EncodeParams), _defaults(DecodeParams)
    pe = sub_parser(
        sub, "encode", help="encode audio to .ldmz",
        description="Encode audio (WAV, FLAC, Ogg, MP3, Opus, AIFF, M4A; any rate and channel "
                    "count) to .ldmz. The source's tags are carried into the header. One line "
                    "per file reports duration, size, bitrate and speed.",
        examples=[("ldmz encode song.flac", "-> song.ldmz, tags included"),
                  ("ffmpeg -i in.m4a -f wav - | ldmz encode - -o in.ldmz --artist 'X'",
                   "from a pipe, setting a tag")])
    _common(pe, "audio")
    pe.add_argument("--model", default=e["model"], metavar="NAME",
                    help=f"model name or folder (default: {DEFAULT_MODEL}; with --bits "
                         f"{AFFINE_MODEL})")
    rate = pe.add_mutually_exclusive_group()
    rate.add_argument("--bits", type=int, default=None, choices=range(1, 9), metavar="N",
                      help=f"affine coding (format 1) with N bits on the widest latent channel, "
                           f"1..8 (the default before entropy coding was {e['bits']})")
    rate.add_argument("--quality", type=number(int, zero_ok=True, noun="an integer"),
                      default=None, metavar="Q",
                      help="entropy coding (format 2) at quality Q of the model's tables, "
                           "0 = smallest (default: the tables' default)")
    rate.add_argument("--kbps", type=number(float), default=None, metavar="K",
                      help="entropy coding at the highest quality whose file stays within K "
                           "kbps, header included")
    pe.add_argument("--chunk-seconds", type=number(float), default=e["chunk_seconds"],
                    metavar="SECONDS", help="seconds per chunk, the unit of seeking and of "
                                            "damage (default: %(default)g)")
    pe.add_argument("--vocoder", default=e["vocoder"], type=_vocoder, metavar="NAME",
                    help="default vocoder stored in the file: hifigan, universal, griffinlim, "
                         "ldmzvoc or an installed plug-in (default: the model's own)")
    for tag in TAG_OPTIONS:
        pe.add_argument(f"--{tag}", metavar="TEXT",
                        help=f"set the {tag} tag (UTF-8; replaces the source's)")
    pe.add_argument("--no-source-tags", action="store_true",
                    help="do not carry the source's tags (FLAC/Vorbis comments, ID3, WAV INFO)")
    add_cluster_options(pe)
    pe.set_defaults(run=run_encode)
    pd = sub_parser(
        sub, "decode", help="decode .ldmz to audio (WAV, or FLAC by suffix)",
        description="Decode .ldmz files to WAV (32-bit float by default: nothing clips) or "
                    "FLAC. Without -o, song.ldmz becomes song.ldmz.wav, so a decode never "
                    "lands on the audio the file was encoded from. Tags are written back. The "
                    "peak is measured: integer output that would clip is lowered to "
                    f"{-1:d} dBFS (--peak), and overs kept in float are reported.",
        examples=[("ldmz decode song.ldmz", "-> song.ldmz.wav (float WAV, tags kept)"),
                  ("ldmz decode song.ldmz -o - | aplay", "play from a pipe"),
                  ("ldmz decode --salvage broken.ldmz -o saved.flac",
                   "damaged chunks become named silences")])
    _common(pd, ".ldmz")
    pd.add_argument("--vocoder", default=d["vocoder"], type=_vocoder, metavar="NAME",
                    help="hifigan (the model's own), universal, griffinlim, ldmzvoc (ours, fast) "
                         "or an installed plug-in (`ldmz plugins`; default: the file's)")
    pd.add_argument("--sr", type=number(int), default=d["sr"], metavar="RATE",
                    help="output sample rate in Hz (default: the source's)")
    pd.add_argument("--model", default=d["model"], metavar="NAME",
                    help="decode with this model (name or folder) instead of the file's")
    pd.add_argument("--griffinlim-iters", type=number(int), default=d["griffinlim_iters"],
                    metavar="N", help="Griffin-Lim iterations (default: %(default)s)")
    pd.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=d["precision"],
                    help="VAE decoder and vocoder precision; auto: bf16 only where the CPU has "
                         "native bf16 and the bench measured it within 0.02 PESQ of fp32, else "
                         "fp32 (default: %(default)s)")
    pd.add_argument("--format", choices=("wav", "flac"), default="wav",
                    help="container when -o is a folder, - or absent (default: %(default)s)")
    pd.add_argument("--sample-format", choices=tuple(SAMPLE_FORMATS), default=None,
                    help="f32 (float), s24 or s16 (default: f32 for WAV, s24 for FLAC, which "
                         "has no float)")
    pd.add_argument("--peak", choices=PEAK_MODES, default="auto",
                    help="auto: lower integer output that would clip to -1 dBFS, keep float "
                         "as decoded; keep: never change the level (integer output clips); "
                         "normalize: scale every file to a -1 dBFS peak (default: %(default)s)")
    pd.add_argument("--salvage", action="store_true",
                    help="decode a damaged file: intact chunks as usual, damaged ones as "
                         "silence, each named on stderr (as flac -F)")
    pd.set_defaults(run=run_decode)


def _collect(inputs: list[str], recursive: bool,
             suffixes: set[str]) -> tuple[list[Path], list[tuple[Path, Exception]]]:
    """The files to convert, and the inputs that are bad as given (a folder without -r)."""
    out: list[Path] = []
    bad: list[tuple[Path, Exception]] = []
    for s in inputs:
        p = Path(s)
        if s == "-":
            out.append(STDIO)
        elif p.is_dir():
            if not recursive:
                bad.append((p, IsADirectoryError(f"{p}: is a folder (use -r to convert its "
                                                 f"files)")))
                continue
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in suffixes and q.is_file())
        else:
            out.append(p)
    return out, bad


def _clashes(pairs: list[tuple[Path, Path]]) -> dict[Path, Exception]:
    """Inputs whose outputs would be the same file (``a/x.wav`` and ``b/x.wav`` into one -o)."""
    by_target: dict[str, list[Path]] = {}
    for src, dst in pairs:
        by_target.setdefault(os.path.normcase(os.path.abspath(dst)), []).append(src)
    bad: dict[Path, Exception] = {}
    for key, srcs in by_target.items():
        for src in srcs[1:] if len(srcs) > 1 else ():
            bad[src] = FileExistsError(
                f"{src}: its output {key} would also be written from {srcs[0]}; convert them "
                f"into separate folders (-o) or rename one")
        if len(srcs) > 1:
            bad[srcs[0]] = FileExistsError(
                f"{srcs[0]}: its output {key} would also be written from "
                f"{', '.join(map(str, srcs[1:]))}; convert them into separate folders (-o) or "
                f"rename one")
    return bad


def _target(src: Path, output: str | None, suffix: str, many: bool) -> Path | None:
    """Where ``src`` goes (None: standard output). A decode keeps the whole input name
    (song.ldmz -> song.ldmz.wav), so it never aims at the audio the encode came from."""
    name = src.name + suffix if suffix != ".ldmz" else src.stem + suffix
    if output == "-" or (output is None and src == STDIO):
        return None
    if output is None:
        return src.with_name(name)
    o = Path(output)
    if o.is_dir() or many or output.endswith(("/", "\\")):
        o.mkdir(parents=True, exist_ok=True)
        return o / name
    return o


def message(src: Path, e: BaseException, command: str = "") -> str:
    """One line naming the file, what went wrong and what to do about it (printable)."""
    from ldmz.codec.audio_io import FULL_DISK
    from ldmz.formats import FormatError, LdmzError, VersionError
    from ldmz.formats.printable import printable

    text = " ".join(str(e).split())
    if isinstance(e, VersionError):
        text += "; read it with an ldmz that supports that version, or re-encode it"
    elif isinstance(e, FormatError) and "chunk" in text:
        text += "; `ldmz decode --salvage` decodes the intact chunks, or re-encode it"
    elif isinstance(e, FormatError):
        text += "; the file is damaged or not a .ldmz file: re-encode it from the source audio"
    elif isinstance(e, OSError) and e.errno in FULL_DISK:
        where = e.filename or src
        text = f"{where}: disk full ({e.strerror or text}); free some space or write elsewhere"
    elif isinstance(e, OSError) and not isinstance(e, LdmzError | FileExistsError) \
            and e.filename:
        text = f"{e.filename}: {e.strerror or text}; check the path and its permissions"
    elif isinstance(e, MemoryError):
        text = "out of memory" + ("; try a smaller --chunk-seconds" if command == "encode"
                                  else "") + ", or free some memory"
    elif not isinstance(e, LdmzError | OSError | ValueError):
        text = f"failed ({type(e).__name__}: {text}); please report this with the file"
    return printable(text if str(src) in text or isinstance(e, FileExistsError)
                     else f"{src}: {text}")


def _exists(src: Path, dst: Path) -> str:
    """Why ``dst`` is refused; --force is suggested only where it cannot destroy a source."""
    return f"{dst}: already exists (use --force to overwrite)"


def _suffix_ok(dst: Path, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse a target whose suffix says another format, before --force is ever suggested."""
    if dst.suffix.lower() not in suffixes:
        raise ParamError(f"{dst}: {what} writes {' or '.join(suffixes)} files; change the output "
                         f"suffix")


def _batch(args: argparse.Namespace, suffixes: set[str], out_suffix: str,
           convert: Callable[[Path, Path | None], None],
           exists: Callable[[Path, Path], str] = _exists) -> int:
    from tqdm import tqdm

    from ldmz.formats.printable import printable

    files, bad = _collect(args.inputs, args.recursive, suffixes)
    for src, e in bad:  # one bad input (a folder without -r): reported, the rest still run
        tqdm.write(message(src, e, args.command), file=sys.stderr)
    if not files:
        if bad:
            return 1
        raise FileNotFoundError(printable(f"{', '.join(args.inputs)}: no "
                                          f"{'/'.join(sorted(suffixes))} files there"))
    many = len(files) > 1 or any(Path(s).is_dir() for s in args.inputs)
    if args.output == "-" and many:
        raise ParamError("-o -: standard output takes one input; give a folder for several")
    out = Path(args.output) if args.output else None
    if many and out is not None and not out.is_dir() and out.suffix.lower() in (
            out_suffix, ".ldmz", ".wav", ".flac"):
        raise NotADirectoryError(f"{out}: -o names a file, but there are several inputs; "
                                 f"give a folder")
    pairs = [(src, _target(src, args.output, out_suffix, many)) for src in files]
    clash = _clashes([(s, d) for s, d in pairs if d is not None])  # refused up front, by name
    failed = len(bad)
    bar = tqdm(pairs, unit="file", file=sys.stderr,
               disable=True if args.quiet or len(files) < 2 else None)  # None: a TTY only
    for src, dst in bar:
        try:
            if src in clash:
                raise clash[src]
            if dst is None and sys.stdout.isatty():
                raise ParamError(f"{src}: will not write binary data to a terminal; give "
                                 f"-o FILE or pipe the output")
            if dst is not None:
                _suffix_ok(dst, (out_suffix,) if out_suffix == ".ldmz" else (".wav", ".flac"),
                           args.command)
            if dst is not None and dst.exists() and not args.force:
                raise FileExistsError(exists(src, dst))
            if dst is not None and src != STDIO and dst.resolve() == src.resolve():
                raise FileExistsError(f"{dst}: output would replace its input; use -o")
            convert(src, dst)
        except BrokenPipeError:
            raise
        except Exception as e:  # noqa: BLE001 - one line per bad file, then go on
            failed += 1
            tqdm.write(message(src, e, args.command), file=sys.stderr)
    return 1 if failed else 0


def _bar(args: argparse.Namespace, what: str
         ) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    from tqdm import tqdm

    if args.quiet or not sys.stderr.isatty():
        return None, lambda: None
    bar = tqdm(total=0, unit="win", desc=what, leave=False, file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


def _say(args: argparse.Namespace, line: str, always: bool = False) -> None:
    """A line on stderr (where progress goes too; stdout may be carrying audio)."""
    if always or not args.quiet:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)


def _size(n: int) -> str:
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n} B"


def done_line(src: Path, dst: Path | None, seconds: float, size: int, kbps: float | None,
              elapsed: float, extra: str = "") -> str:
    """``IN -> OUT: duration, size, bitrate, speed``: one line per converted file."""
    speed = f"{seconds / elapsed:.1f}x real time" if elapsed > 0 else "-"
    rate = f"{kbps:.2f} kbps" if kbps is not None else "- kbps"
    return f"{src} -> {dst or '-'}: {seconds:.2f} s, {_size(size)}, {rate}, {speed}{extra}"


def encode_params(args: argparse.Namespace) -> EncodeParams:
    """The EncodeParams that parsed `ldmz encode` arguments ask for."""
    e = EncodeParams()
    coding = "affine" if args.bits is not None else (
        "rans" if args.quality is not None or args.kbps is not None else e.coding)
    return EncodeParams(model=args.model, bits=args.bits or e.bits,
                        chunk_seconds=args.chunk_seconds, coding=coding,
                        quality=e.quality if args.quality is None else args.quality,
                        kbps=args.kbps or 0.0, vocoder=args.vocoder, device=args.device,
                        offline=args.offline)


def decode_params(args: argparse.Namespace) -> DecodeParams:
    """The DecodeParams that parsed `ldmz decode` arguments ask for."""
    return DecodeParams(vocoder=args.vocoder, sr=args.sr, griffinlim_iters=args.griffinlim_iters,
                        precision=args.precision, device=args.device, model=args.model,
                        offline=args.offline)


def one_malloc_arena() -> None:
    """Ask glibc for one malloc arena (no-op elsewhere). torch's worker threads otherwise get
    arenas of their own, each keeping freed tensors' memory: `ldmz decode` with the universal
    HiFi-GAN on two threads peaked 16 MB lower with one arena (428 -> 412 MB, measured)."""
    from ldmz.codec.vocoders import glibc

    mallopt = getattr(glibc(), "mallopt", None)  # not glibc (musl has no mallopt): its defaults
    if mallopt is not None:
        mallopt(-8, 1)  # M_ARENA_MAX


def _check_device(device: str) -> None:
    """Refuse an absent CUDA device once, before any file (one line, not one per file)."""
    if device != "auto":
        from ldmz.codec.models import resolve_device

        resolve_device(device)


def run_encode(args: argparse.Namespace) -> int:
    """Encode every input; a bad file is reported and skipped; rc 1 if any failed."""
    if args.ray is not None:
        from ldmz.codec.cli.cluster import run_cluster

        return run_cluster(args)
    import io
    import time

    from ldmz.codec.api import encode, encode_file
    from ldmz.codec.audio_io import read_audio_bytes, read_tags

    _check_device(args.device)
    params = encode_params(args)
    given = {k: getattr(args, k) for k in TAG_OPTIONS if getattr(args, k)}

    def convert(src: Path, dst: Path | None) -> None:
        from ldmz.codec.models import ModelError, load_model

        try:  # cached, so the speed leaves loading out; a bad model is reported by encode,
            load_model(params.model_name(), params.device, params.offline or None)
        except ModelError:  # after the audio it cannot read (that message comes first)
            pass
        progress, close = _bar(args, src.name)
        t0 = time.perf_counter()
        try:
            if src == STDIO:
                data = sys.stdin.buffer.read()
                tags = {} if args.no_source_tags else read_tags(io.BytesIO(data))
                audio, sr = read_audio_bytes(data)
                f = encode(audio, sr, params, {**tags, **given}, progress)
            else:
                tags = {} if args.no_source_tags else read_tags(src)
                f = encode_file(src, params, {**tags, **given}, progress)
        finally:
            close()
        blob = f.to_bytes()
        if dst is None:
            sys.stdout.buffer.write(blob)
            sys.stdout.buffer.flush()
        else:
            f.save(dst, overwrite=args.force)
        dur = f.header.duration
        kbps = f.header.bitrate_kbps(len(blob))
        _say(args, done_line(src, dst, dur, len(blob), kbps, time.perf_counter() - t0))

    return _batch(args, set(AUDIO_SUFFIXES), ".ldmz", convert)


def _decode_exists(src: Path, dst: Path) -> str:
    """A target with the length, rate and channels of the file's source may be that source,
    unless ldmz wrote it (a decode names ldmz in its software tag)."""
    try:
        import soundfile as sf

        from ldmz.formats import LdmzFile

        with LdmzFile.load(src, lazy=True) as lf:
            s = lf.header.source
        with sf.SoundFile(str(dst)) as i:
            ours = (i.software or "").startswith("ldmz ")
            shape = (i.frames, i.samplerate, i.channels)
        if not ours and shape == (s.samples, s.sample_rate, s.channels):
            return (f"{dst}: already exists, with the length, rate and channels of the audio "
                    f"{src.name} was made from: it may be the original; decode to another "
                    f"name with -o")
    except Exception:  # noqa: BLE001 - not audio, or src unreadable: the plain message
        pass
    return _exists(src, dst)


def run_decode(args: argparse.Namespace) -> int:
    """Decode every input; a damaged file is reported and skipped; rc 1 if any failed."""
    import time

    from ldmz import __version__
    from ldmz.codec.api import decode_stream
    from ldmz.codec.audio_io import TAG_KEYS, WRITTEN_BY
    from ldmz.codec.cli.salvage import Salvaged, damaged_chunks, open_damaged
    from ldmz.codec.cli.sink import peak_notes, write_decoded
    from ldmz.formats import LdmzFile

    _check_device(args.device)
    params = decode_params(args)
    one_malloc_arena()

    def convert(src: Path, dst: Path | None) -> None:
        container = args.format if dst is None else dst.suffix.lower().lstrip(".")
        sample_format = args.sample_format or ("f32" if container == "wav" else "s24")
        t0 = time.perf_counter()
        where = sys.stdin.buffer if src == STDIO else src
        f: LdmzFile | Salvaged
        if args.salvage:
            f = open_damaged(where, str(src))
            damage = damaged_chunks(f)
            f = Salvaged(f, damage) if damage else f
        else:
            f, damage = LdmzFile.load(where, lazy=True), []  # chunks checked as they are read
        progress, close = _bar(args, src.name)
        try:
            t_load = time.perf_counter()
            # a Salvaged file reads like an LdmzFile (header, name, read_chunk)
            st = decode_stream(cast(LdmzFile, f), params, progress=progress)  # loads the models
            t0 += time.perf_counter() - t_load  # speed counts decoding, not loading
            mute = f.mute_spans(st.sample_rate) if isinstance(f, Salvaged) else []
            tags = {k: v for k, v in f.header.tags.items() if k in TAG_KEYS}
            tags[WRITTEN_BY] = f"ldmz {__version__}"
            w = write_decoded(dst, st, st.sample_rate, st.channels, container=container,
                              sample_format=sample_format, peak=args.peak, tags=tags,
                              mute=mute, overwrite=args.force, total=st.samples)
        finally:
            close()
        for d in damage:
            _say(args, f"{src}: {d.describe()}: filled with silence", always=True)
        for line in peak_notes(str(dst or "-"), w, sample_format):
            _say(args, line, always=True)
        h = f.header
        size = src.stat().st_size if src != STDIO else 0
        kbps = h.bitrate_kbps(size) if size else None
        _say(args, done_line(src, dst, h.duration, w.bytes, kbps, time.perf_counter() - t0,
                             f", peak {w.peak_db:+.1f} dBFS"))

    return _batch(args, {".ldmz"}, "." + args.format, convert, _decode_exists)
