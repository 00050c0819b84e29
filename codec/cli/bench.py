"""`ldmz bench CORPUS_DIR`: the rate-quality-speed matrix, written as Markdown, CSV and PNG."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `bench`."""
    from ldmz.codec.bench.plan import METRIC_CHOICES, NORMALIZATIONS, BenchParams
    from ldmz.codec.cli import sub_parser

    d = BenchParams()
    p = sub_parser(
        sub, "bench", help="benchmark models, vocoders, bit depths, Opus and MP3 on a corpus",
        description="Run every available model x vocoder x bit depth, Opus and MP3 at matched "
                    "rates, vocoder ceilings, front-end normalizations and a post-filter over "
                    "CORPUS_DIR/<category>/*.flac; write results.md, results.csv, "
                    "results_clips.csv and PNG plots.",
        examples=[("ldmz bench bench/corpus --out results/", "the full matrix"),
                  ("ldmz bench bench/corpus --quick --bits 2", "a smoke test in minutes")])
    p.add_argument("corpus", metavar="CORPUS_DIR",
                   help="folder of <category>/*.flac clips")
    p.add_argument("--out", default="bench-results", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("-f", "--force", action="store_true",
                   help="overwrite the reports of an earlier run in --out")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--quick", action="store_true",
                   help="one short clip per category and a reduced sweep (smoke test)")
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="model names or folders (default: every available model)")
    p.add_argument("--visqol", action="store_true",
                   help="also compute ViSQOL (slow; off by default, as in `ldmz eval`)")
    p.add_argument("--bits", nargs="+", type=int, default=list(d.bits), metavar="N",
                   help="bit depths to run (default: %(default)s)")
    p.add_argument("--quality", nargs="*", type=int, default=[], metavar="Q",
                   help="entropy-coded rows at these qualities (models with entropy tables)")
    p.add_argument("--groups", nargs="*", default=[], metavar="GROUP",
                   help="run only these row groups: default vocoder bits quality normalization "
                        "postfilter ceiling classic (default: all)")
    p.add_argument("--opus", nargs="+", type=float, default=list(d.opus_kbps), metavar="KBPS",
                   help="Opus bitrates to compare (default: %(default)s)")
    p.add_argument("--mp3", nargs="+", type=float, default=list(d.mp3_kbps), metavar="KBPS",
                   help="MP3 bitrates to compare (default: %(default)s)")
    p.add_argument("--normalizations", nargs="*", default=list(NORMALIZATIONS),
                   choices=NORMALIZATIONS, help="front-end normalizations to compare "
                                                "(default: all)")
    p.add_argument("--postfilter", default=d.postfilter, choices=("gauss", "median", ""),
                   help="post-filter row ('' for none; default: %(default)s)")
    p.add_argument("--precision", default=d.precision, choices=("bf16", "fp32"),
                   help="VAE decoder + HiFi-GAN precision (default: %(default)s)")
    p.add_argument("--griffinlim-iters", type=int, default=d.griffinlim_iters, metavar="N",
                   help="Griffin-Lim iterations (default: %(default)s)")
    p.add_argument("--max-seconds", type=float, default=0.0, metavar="SECONDS",
                   help="cut clips to this length (default: whole clips)")
    p.add_argument("--keep-channels", action="store_true",
                   help="code every channel (default: mix clips to mono, which halves the time "
                        "of stereo clips; their rate then leaves out format 2.1's inter-channel "
                        "prediction)")
    p.add_argument("--metrics", nargs="+", default=list(d.metrics), choices=METRIC_CHOICES,
                   help="quality metrics (default: %(default)s; --visqol adds ViSQOL)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes running (clip, row) jobs (default: one per core; 0: inline)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch threads per process (default: 1)")
    p.add_argument("--rows", nargs="+", default=[], metavar="GLOB",
                   help="run only the rows whose label matches one of these shell-style "
                        "patterns, e.g. 'ldmz-small · * · 2 bit' 'ceiling: * 80-mel*'")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Plan, run with a progress bar, write the outputs and print where they are."""
    from pathlib import Path

    from tqdm import tqdm

    from ldmz.codec.bench.plan import BenchParams, plan
    from ldmz.codec.bench.report import REPORTS, write_all
    from ldmz.codec.bench.run import run as run_bench
    from ldmz.codec.cli import plural
    from ldmz.codec.errors import UsageError

    if not 1 <= min(args.bits) <= max(args.bits) <= 8:
        raise UsageError("--bits must lie in 1..8")
    old = [Path(args.out) / n for n in REPORTS if (Path(args.out) / n).exists()]
    if old and not args.force:  # refused before hours of work, not after
        raise FileExistsError(f"{old[0]}: already exists (use --force to overwrite the "
                              f"reports in {args.out})")
    params = BenchParams(
        models=tuple(args.models or ()), bits=tuple(args.bits), opus_kbps=tuple(args.opus),
        mp3_kbps=tuple(args.mp3), normalizations=tuple(args.normalizations),
        postfilter=args.postfilter, precision=args.precision,
        griffinlim_iters=args.griffinlim_iters, visqol=args.visqol, quick=args.quick,
        max_seconds=args.max_seconds, mono=not args.keep_channels, threads=args.threads,
        metrics=tuple(args.metrics), qualities=tuple(args.quality), groups=tuple(args.groups),
        rows=tuple(args.rows))
    pl = plan(args.corpus, params)
    with tqdm(total=pl.jobs, unit="run", dynamic_ncols=True,
              disable=True if args.quiet else None) as bar:
        def step(desc: str) -> None:
            bar.set_postfix_str(desc[-60:], refresh=False)
            bar.update()

        res = run_bench(pl, step, args.workers)
    for label, why in pl.skipped:
        print(f"skipped {label}: {why}")
    failed = sum(1 for r in res.records if r["error"])
    for path in write_all(res, args.out):
        print(path)
    print(f"{plural(pl.jobs, 'run')} ({failed} failed) on {plural(len(pl.clips), 'clip')} in "
          f"{res.runtime_s / 60:.1f} min")
    return 0
