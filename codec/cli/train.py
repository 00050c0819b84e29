"""`ldmz train`: train the embedded model or ldmzvoc, or fine-tune a model's decoder."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ldmz.codec.errors import ModelError, TrainError, UsageError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `train`."""
    from ldmz.codec.cli import sub_parser

    p = sub_parser(
        sub, "train", help="train or resume ldmz-small, or fine-tune a model's decoder",
        description="Train (or resume) ldmz-small; with --finetune-decoder NAME, fine-tune only "
                    "the decoder of model NAME (the encoder is frozen, so its latents stay valid).",
        examples=[("ldmz train --config configs/ldmz-small.json --install",
                   "(re)train the embedded model"),
                  ("ldmz train --finetune-decoder ldmz-small --data data/manifest.csv "
                   "--out runs/ft", "fine-tune a decoder"),
                  ("ldmz train --config configs/vocoder.json --install",
                   "train (or resume) the ldmzvoc vocoder and ship its weights")])
    p.add_argument("--config", metavar="FILE",
                   help="JSON config (default: built-in defaults); a config with \"task\": "
                        "\"vocoder\" trains the ldmzvoc vocoder (configs/vocoder.json)")
    p.add_argument("--steps", type=int, metavar="N", help="override the config's total steps")
    p.add_argument("--install", action="store_true",
                   help="copy the trained model into the package afterwards (ldmz-small, or "
                        "ldmzvoc's last weights for a vocoder config)")
    p.add_argument("--finetune-decoder", metavar="NAME",
                   help="fine-tune the decoder of this model (registered name or model folder)")
    p.add_argument("--data", metavar="MANIFEST",
                   help="manifest.csv (path,split,category) for --finetune-decoder "
                        "(default data/manifest.csv)")
    p.add_argument("--out", metavar="DIR", help="run folder for --finetune-decoder "
                   "(default runs/finetune-NAME) or a vocoder config; resumes from DIR/last.pt")
    p.add_argument("--device", metavar="DEVICE",
                   help="auto, cpu or cuda (--finetune-decoder; default auto)")
    p.add_argument("--offline", action="store_true",
                   help="use only the Hugging Face cache for a registered base model")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run training to the configured step count, resuming from the run folder's checkpoint."""
    if args.finetune_decoder:
        return run_finetune(args)
    if args.config and _config_task(args.config) == "vocoder":
        return run_vocoder(args)
    if args.data or args.out or args.device or args.offline:
        raise UsageError("--data, --out, --device and --offline go with --finetune-decoder; "
                         "set manifest/out in --config to train ldmz-small")
    from dataclasses import replace

    from ldmz.codec.train.trainer import TrainConfig, train

    cfg = TrainConfig.load(args.config)
    if args.steps:
        cfg = replace(cfg, steps=args.steps)
    if not Path(cfg.manifest).exists():
        raise TrainError(f"{cfg.manifest}: no training manifest; run "
                         f"scripts/prepare_training_data.py first")
    out = train(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.install:
        from ldmz.codec.models import EMBEDDED_DIR

        dst = EMBEDDED_DIR / "ldmz-small"
        dst.mkdir(parents=True, exist_ok=True)
        for f in (out / "model").iterdir():
            shutil.copy2(f, dst / f.name)
    return 0


def _config_task(path: str) -> str:
    """The ``task`` key of a JSON config ("" when absent; bad JSON is a ConfigError)."""
    from ldmz.codec.params import _read_json

    task = _read_json(path).get("task", "")
    return task if isinstance(task, str) else ""


def run_vocoder(args: argparse.Namespace) -> int:
    """Train (or resume) ldmzvoc from a ``"task": "vocoder"`` config; --install ships it."""
    if args.data or args.device or args.offline:
        raise UsageError("a vocoder config names its data folder (\"data\") and device; "
                         "drop --data, --device and --offline")
    from ldmz.codec.train.vocoder import VocoderTrainConfig, train

    cfg = VocoderTrainConfig.load(args.config, steps=args.steps, out=args.out)
    out = train(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.install:
        from ldmz.codec.models.ldmzvoc import WEIGHTS_DIR

        WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
        for f in (out / "model").iterdir():  # the last step; best/ (by val PESQ) stays beside
            shutil.copy2(f, WEIGHTS_DIR / f.name)
    print(out)
    return 0


def _known_model(name: str) -> bool:
    from ldmz.codec import plugins
    from ldmz.codec.models import available_models

    return (name in available_models() or Path(name).expanduser().is_dir()
            or name in plugins.names(plugins.MODELS))


def run_finetune(args: argparse.Namespace) -> int:
    """Fine-tune (or resume) the decoder of ``--finetune-decoder MODEL``; exports DIR/model."""
    name = args.finetune_decoder
    if args.install:
        raise UsageError("--install is for ldmz-small training; load the fine-tuned model "
                         "with --model DIR/model instead")
    if not _known_model(name):
        from ldmz.codec.models import available_models

        raise ModelError(f"'{name}' is not a registered model ({', '.join(available_models())}) "
                         f"nor a folder; pass --finetune-decoder with one of those names or a "
                         f"folder in diffusers layout")
    from ldmz.codec.train.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig.load(args.config, base=name, manifest=args.data, out=args.out,
                              steps=args.steps, device=args.device, offline=args.offline or None)
    try:
        out = finetune(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    except ModelError as e:  # e.g. a registered model missing from the cache
        raise ModelError(str(e).replace("--model", "--finetune-decoder")) from e
    print(out / "model")
    return 0
