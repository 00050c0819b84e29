"""The `ldmz` command: build_parser() and main(argv); each sub-command lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# sub-command -> module under ldmz.codec with add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "info": "ldmz.codec.cli.info",
    "encode": "ldmz.codec.cli.convert",
    "decode": "ldmz.codec.cli.convert",
    "eval": "ldmz.codec.cli.evaluate",
    "demo": "ldmz.codec.cli.evaluate",
    "train": "ldmz.codec.cli.train",
    "bench": "ldmz.codec.cli.bench",
    "plugins": "ldmz.codec.cli.plugins",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command (modules are imported here, torch is not)."""
    from ldmz import __version__

    p = argparse.ArgumentParser(
        prog="ldmz",
        description="Neural audio codec on AudioLDM2-style mel VAE latents.",
        epilog="`ldmz FILE...` converts by suffix: audio -> .ldmz, .ldmz -> .wav.",
    )
    p.add_argument("--version", action="version", version=f"ldmz {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(mod).add_parser(sub)
    return p


def _infer_command(argv: list[str]) -> list[str]:
    """`ldmz IN...` without a sub-command: pick encode or decode from the first file's suffix."""
    if not argv or argv[0].startswith("-") or argv[0] in COMMANDS or argv[0] == "help":
        return argv
    first = next((a for a in argv if not a.startswith("-")), "")
    return ["decode" if first.lower().endswith(".ldmz") else "encode", *argv]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]) and return the exit code."""
    from ldmz.formats import LdmzError

    args_list = _infer_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except (LdmzError, OSError) as e:
        print(f"ldmz {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ldmz: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
