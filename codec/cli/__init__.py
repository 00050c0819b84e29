"""The `ldmz` command: build_parser() and main(argv); each sub-command lives in its own module."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence

# sub-command -> module under ldmz.codec with add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "encode": "ldmz.codec.cli.convert",
    "decode": "ldmz.codec.cli.convert",
    "info": "ldmz.codec.cli.info",
    "eval": "ldmz.codec.cli.evaluate",
    "demo": "ldmz.codec.cli.evaluate",
    "bench": "ldmz.codec.cli.bench",
    "train": "ldmz.codec.cli.train",
    "plugins": "ldmz.codec.cli.plugins",
    "completion": "ldmz.codec.cli.shell",
    "help": "ldmz.codec.cli.shell",
}

EPILOG = """examples:
  ldmz song.flac                  encode to song.ldmz (the direction follows the suffix)
  ldmz song.ldmz                  decode to song.ldmz.wav (never onto the encode's source)
  ldmz help encode                the options of one command

`ldmz FILE...` without a command encodes audio and decodes .ldmz files."""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks; shows defaults where the help text asks for them."""


def sub_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str,
               description: str, examples: Sequence[tuple[str, str]]) -> argparse.ArgumentParser:
    """A sub-command parser with a description and an examples epilog (command, what it does)."""
    col = 40
    epilog = "examples:\n" + "\n".join(
        f"  {cmd:<{col}}{what}" if len(cmd) < col else f"  {cmd}\n  {'':<{col}}{what}"
        for cmd, what in examples)
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=Formatter)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command (modules are imported here, torch is not)."""
    from ldmz import __version__

    p = argparse.ArgumentParser(
        prog="ldmz", formatter_class=Formatter,
        description="Neural audio codec on AudioLDM2-style mel VAE latents.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"ldmz {__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(mod).add_parser(sub)
    return p


def number(kind: type[int] | type[float], *, zero_ok: bool = False,
           noun: str = "a number") -> Callable[[str], float]:
    """An argparse type: ``kind(text)``, greater than 0 (or 0 and more with ``zero_ok``)."""

    def parse(text: str) -> float:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if zero_ok and not v >= 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
        if not zero_ok and not v > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return v

    parse.__name__ = kind.__name__
    return parse


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 chunk``, ``2 chunks``."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def _looks_like_file(word: str) -> bool:
    return word == "-" or os.path.sep in word or "." in word or os.path.exists(word)


def _infer_command(argv: list[str]) -> list[str]:
    """`ldmz IN...` without a sub-command: pick encode or decode from the first file's suffix.

    A word that is neither a command nor looks like a file (``ldmz ecnode``) is kept as the
    command, so the parser can say which command was meant.
    """
    if not argv or argv[0].startswith("-") or argv[0] in COMMANDS:
        return argv
    if not _looks_like_file(argv[0]):
        return argv
    first = next((a for a in argv if not a.startswith("-") or a == "-"), "")
    return ["decode" if first.lower().endswith(".ldmz") else "encode", *argv]


def _unknown_command(parser: argparse.ArgumentParser, word: str) -> int:
    near = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.5)
    hint = f"; did you mean `ldmz {near[0]}`?" if near else \
        f"; the commands are {', '.join(COMMANDS)} (or give a file)"
    parser.print_usage(sys.stderr)
    print(f"ldmz: error: '{word}' is not an ldmz command nor an existing file{hint}",
          file=sys.stderr)
    return 2


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse; an unknown option is reported with the usage of its sub-command, not ldmz's."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        owner = subs.choices.get(args.command or "", parser)
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _quiet_broken_pipe() -> int:
    """stdout's reader went away (``ldmz info | head``): stop quietly, as cat does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush is silent
    except (OSError, ValueError, AttributeError):
        pass
    return 141  # 128 + SIGPIPE, as the shell reports a process killed by it


# Libraries' own chatter (Hugging Face, diffusers, transformers) is off: one line per problem.
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
             "DIFFUSERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
             "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: unwind like an exception, so partial outputs are removed; exit 143."""
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """ldmz's own warnings (AudioWarning) as one plain line each; other libraries' held back."""
    from ldmz.codec.errors import AudioWarning
    from ldmz.formats.printable import printable

    def show(message: object, category: type, *rest: object, **kw: object) -> None:
        print(f"warning: {printable(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", AudioWarning)
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    try:
        old = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]) and return the exit code."""
    args_list = _infer_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    if args_list and not args_list[0].startswith("-") and args_list[0] not in COMMANDS:
        return _unknown_command(parser, args_list[0])
    args = _parse(parser, args_list)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    try:
        with _sigterm_unwinds(), _one_line_warnings():
            return int(args.run(args))
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print("ldmz: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - main owns every message: one line, never a traceback
        return report(f"ldmz {args.command}", e)


def _one_line(e: BaseException) -> str:
    """The error's message on one line; an OSError as 'FILE: reason'."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        text = f"{e.filename}: {e.strerror}"
    else:
        text = str(e) or type(e).__name__
    from ldmz.formats.printable import printable

    return printable(" ".join(text.split()))


def report(prefix: str, e: Exception) -> int:
    """Print ``e`` as one line on stderr (after its traceback with LDMZ_DEBUG=1); the exit code.

    ldmz's own errors and OSErrors are the user's to fix (exit 1, 2 for a usage error); anything
    else is a bug in ldmz, said so (exit 70).
    """
    from ldmz.codec.errors import LdmzError, UsageError

    if os.environ.get("LDMZ_DEBUG", "") not in ("", "0"):
        traceback.print_exception(e, file=sys.stderr)
    if isinstance(e, (LdmzError, OSError)):
        print(f"{prefix}: {_one_line(e)}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    print(f"{prefix}: internal error ({type(e).__name__}: {_one_line(e)}); rerun with "
          f"LDMZ_DEBUG=1 for the traceback and report it", file=sys.stderr)
    return 70


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
