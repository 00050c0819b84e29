"""`ldmz help [CMD]` and `ldmz completion SHELL`: help, completion and the man page, all generated
from the one argparse parser (completion by shtab, the manual page by argparse-manpage)."""

from __future__ import annotations

import argparse
import re
import sys

SHELLS = ("bash", "zsh", "tcsh")
# the roff requests argparse-manpage writes; any other line starting with "." is text
_ROFF = re.compile(r"\.(TH|SH|SS|TP|B|I|BR|RB|RS|RE|PP|IP|br|nf|fi|HP|sp|P|IR|RI|BI|IB)\b")
# positional metavariables that name files (completed as paths) and folders
FILE_METAVARS = {"IN", "FILE", "REF", "DEG", "CORPUS_DIR"}
FILE_OPTIONS = {"--output", "--config", "--data", "--out", "--model", "--finetune-decoder"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `help` and `completion`."""
    from ldmz.codec.cli import COMMANDS, sub_parser

    h = sub_parser(sub, "help", help="show the help of a command (or the manual page)",
                   description="Show the help of COMMAND, or of ldmz itself; --man prints the "
                               "whole manual page as roff, generated from the same parser.",
                   examples=[("ldmz help decode", "every option of `ldmz decode`"),
                             ("ldmz help --man > ldmz.1", "the manual page, for man -l ldmz.1")])
    h.add_argument("topic", nargs="?", metavar="COMMAND",
                   choices=[c for c in COMMANDS if c != "help"],
                   help="the command to explain (default: ldmz itself)")
    h.add_argument("--man", action="store_true",
                   help="print the manual page (roff) instead; needs argparse-manpage")
    h.set_defaults(run=run_help)
    c = sub_parser(sub, "completion", help="print a shell completion script (bash, zsh, tcsh)",
                   description="Print the tab-completion script for SHELL, generated from the "
                               "parser by shtab. packaging/install-shell.sh installs it (and the "
                               "man page) where bash, zsh and man look.",
                   examples=[("ldmz completion bash > ~/.local/share/bash-completion/completions"
                              "/ldmz", "bash, loaded on first use"),
                             ("ldmz completion zsh > ~/.zfunc/_ldmz",
                              "zsh (with ~/.zfunc on $fpath)")])
    c.add_argument("shell", choices=SHELLS, metavar="SHELL", help="one of: " + ", ".join(SHELLS))
    c.set_defaults(run=run_completion)


def _root() -> argparse.ArgumentParser:
    from ldmz.codec.cli import build_parser

    return build_parser()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def run_help(args: argparse.Namespace) -> int:
    """Print the help of a command, or the manual page."""
    parser = _root()
    if args.man:
        try:
            sys.stdout.write(man_page(parser))
        except ImportError as e:
            print(f"ldmz help: {e}", file=sys.stderr)
            return 1
        return 0
    target = _subparsers(parser)[args.topic] if args.topic else parser
    target.print_help()
    return 0


def completion(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell``, with file arguments completed as paths."""
    try:
        import shtab
    except ImportError:
        raise ImportError("shell completion needs shtab: pip install 'ldmz[shell]'") from None
    for p in (parser, *_subparsers(parser).values()):
        for a in p._actions:
            if a.metavar in FILE_METAVARS or set(a.option_strings) & FILE_OPTIONS:
                a.complete = shtab.FILE  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell)


def man_page(parser: argparse.ArgumentParser) -> str:
    """The manual page ldmz(1) in roff, with every sub-command's options and examples."""
    try:
        from argparse_manpage.manpage import Manpage
    except ImportError:
        raise ImportError("the manual page needs argparse-manpage: "
                          "pip install 'ldmz[shell]'") from None
    from ldmz import __version__

    page = Manpage(parser)
    page.source = f"ldmz {__version__}"
    page.description = "neural audio codec on AudioLDM2-style mel VAE latents"
    page.manual = "ldmz manual"
    return str(page)


def run_completion(args: argparse.Namespace) -> int:
    """Print the completion script."""
    try:
        sys.stdout.write(completion(_root(), args.shell))
    except ImportError as e:
        print(f"ldmz completion: {e}", file=sys.stderr)
        return 1
    return 0
