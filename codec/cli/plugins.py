"""`ldmz plugins`: list installed vocoder and model plug-ins and where each comes from; no torch."""

from __future__ import annotations

import argparse
import json
import sys

from ldmz.codec.plugins import GROUPS, discover


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `plugins` sub-command."""
    from ldmz.codec.cli import sub_parser

    p = sub_parser(
        sub, "plugins", help="list installed vocoder/model plug-ins (entry points)",
        description="List the vocoders and models that installed packages register under the "
                    "entry-point groups ldmz.vocoders and ldmz.models, with the distribution "
                    "each comes from; a broken one is shown with its error.",
        examples=[("ldmz plugins", "what --vocoder and --model can name besides the built-ins"),
                  ("ldmz plugins --json --no-load", "without importing them")])
    p.add_argument("--json", action="store_true", help="one JSON object: {group: [plug-in, ...]}")
    p.add_argument("--no-load", action="store_true",
                   help="list entry points without importing them (no load errors are found)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """List every plug-in; a broken one is shown with its error and does not fail the command."""
    found = {g: discover(g, load=not getattr(args, "no_load", False)) for g in GROUPS}
    if args.json:
        json.dump({g: [p.to_dict() for p in ps] for g, ps in found.items()}, sys.stdout,
                  indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    for i, (group, plugins) in enumerate(found.items()):
        if i:
            print()
        print(f"{group}: {len(plugins) or 'none'}")
        for p in plugins:
            dist = f"{p.dist or '?'} {p.dist_version or ''}".rstrip()
            status = "ok" if p.ok else "BROKEN"
            print(f"  {p.name} = {p.value}  [{status}]")
            print(f"      from {dist} ({p.path or 'unknown location'})")
            if not p.ok:
                print(f"      error: {p.error}")
    return 0
