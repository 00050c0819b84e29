"""`ldmz train`: train (or resume) the embedded model; the trainer is imported only here."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `train`."""
    p = sub.add_parser("train", help="train or resume ldmz-small (see MODEL_CARD.md)")
    p.add_argument("--config", help="JSON training config (default: built-in defaults)")
    p.add_argument("--steps", type=int, help="override the config's total steps")
    p.add_argument("--install", action="store_true",
                   help="copy the trained model into the package as ldmz-small afterwards")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run training to the configured step count, resuming from the run folder's checkpoint."""
    from dataclasses import replace

    from ldmz.codec.train.trainer import TrainConfig, train

    cfg = TrainConfig.load(args.config)
    if args.steps:
        cfg = replace(cfg, steps=args.steps)
    if not Path(cfg.manifest).exists():
        print(f"{cfg.manifest}: no training manifest; run scripts/prepare_training_data.py "
              f"first", file=sys.stderr)
        return 1
    out = train(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.install:
        from ldmz.codec.models import EMBEDDED_DIR

        dst = EMBEDDED_DIR / "ldmz-small"
        dst.mkdir(parents=True, exist_ok=True)
        for f in (out / "model").iterdir():
            shutil.copy2(f, dst / f.name)
    return 0
