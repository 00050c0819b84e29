"""`ldmz encode SRC... -o DST --ray [ADDRESS]`: a whole dataset on Ray, with a manifest."""

from __future__ import annotations

import argparse
import os
import sys

from ldmz.codec.cli import number


def _address(text: str) -> str:
    if text and ":" not in text and text != "auto" and os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a file or folder, not a Ray address: put "
                                         f"--ray after the inputs, or write --ray=ADDRESS")
    return text


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """The --ray options of `ldmz encode`."""
    g = p.add_argument_group(
        "cluster (pip install 'ldmz[cluster]')",
        "With --ray, SRC folders are walked recursively (local paths or pyarrow.fs URIs such as "
        "s3://bucket/audio), -o DST is required and gets the same relative layout plus "
        "DST/manifest.parquet; a re-run skips files already done.")
    g.add_argument("--ray", nargs="?", const="", default=None, type=_address, metavar="ADDRESS",
                   help="encode on Ray: the cluster at ADDRESS (host:port, or `auto`), else "
                        "RAY_ADDRESS, else a new local cluster on 127.0.0.1")
    g.add_argument("--workers", type=number(int, zero_ok=True), default=0, metavar="N",
                   help="encoder actors (default: as many as the cluster's CPUs or GPUs allow)")
    g.add_argument("--cpus-per-worker", type=number(float, zero_ok=True), default=1.0, metavar="C",
                   help="CPUs (and torch threads) per encoder actor (1)")
    g.add_argument("--gpus-per-worker", type=number(float, zero_ok=True), default=0.0, metavar="G",
                   help="GPUs per encoder actor, e.g. 1 or 0.5 (0: CPU)")


def run_cluster(args: argparse.Namespace) -> int:
    """Run `ldmz encode --ray`; bad inputs are listed in the manifest; rc 1 if any failed."""
    from tqdm import tqdm

    from ldmz.codec.cli.convert import TAG_OPTIONS, encode_params
    from ldmz.codec.cluster import require
    from ldmz.codec.cluster.pipeline import encode_dataset
    from ldmz.codec.errors import UsageError

    require("ray", "--ray")
    if not args.output:
        raise UsageError("--ray needs -o DST, the folder for the outputs and the manifest")
    params = encode_params(args)
    if args.gpus_per_worker and params.device == "auto":
        params = type(params)(**{**params.__dict__, "device": "cuda"})
    tags = {k: getattr(args, k) for k in TAG_OPTIONS if getattr(args, k)}
    bar = tqdm(total=0, unit="file", disable=args.quiet, file=sys.stderr, dynamic_ncols=True)

    def progress(p) -> None:  # noqa: ANN001 - pipeline.Progress
        bar.total, bar.n = p.total, p.done
        rate = p.audio_seconds / max(p.elapsed, 1e-9)
        bar.set_postfix_str(f"{rate:.3g} audio h/h, {p.failed} failed", refresh=True)

    try:
        s = encode_dataset(args.inputs, args.output, params, tags=tags,
                           source_tags=not args.no_source_tags, ray=args.ray,
                           workers=int(args.workers), cpus_per_worker=args.cpus_per_worker,
                           gpus_per_worker=args.gpus_per_worker, force=args.force,
                           progress=progress)
    finally:
        bar.close()
    for e in s.errors[:20]:
        print(e, file=sys.stderr)
    if len(s.errors) > 20:
        print(f"... {len(s.errors) - 20} more errors in the manifest", file=sys.stderr)
    print(s.line(), file=sys.stderr)
    return 1 if s.failed else 0
