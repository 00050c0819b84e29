"""Running `ldmz bench`: (clip, row) jobs in worker processes, timed and measured; aggregation."""

from __future__ import annotations

import ctypes
import datetime
import os
import platform
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ldmz.codec.bench.plan import (
    BenchParams,
    BenchResult,
    Clip,
    Plan,
    load_models,
    make_context,
    tag,
    warm_up,
)
from ldmz.codec.bench.rows import RUNNERS, Output, Row


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise OSError(f"no {key} in /proc/self/status")


class PeakRSS:
    """Growth of this process's peak resident memory over a block, in MB (Linux; else None).

    Hands freed heap back to the kernel (glibc ``malloc_trim``), resets the kernel's high-water
    mark (``/proc/self/clear_refs`` = 5), and on exit reads ``VmHWM - VmRSS(at entry)``, so every
    allocation (torch's, numpy's, the vocoder's) counts; loaded models are the baseline.
    """

    def __enter__(self) -> PeakRSS:
        self.mb: float | None = None
        try:
            _trim()
            Path("/proc/self/clear_refs").write_text("5")
            self._base: int | None = _status_kb("VmRSS")
        except OSError:
            self._base = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._base is not None:
            self.mb = max(0, _status_kb("VmHWM") - self._base) / 1024


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _trim() -> None:
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _record(row: Row, clip: Clip, out: Output | None, mem: float | None, metrics: dict[str, Any],
            error: str = "") -> dict[str, Any]:
    rec = {"group": row.group, "row": row.label, "model": tag(row.model) if row.model else "",
           "vocoder": row.vocoder, "bits": row.bits or "", "category": clip.category,
           "clip": clip.name, "seconds": clip.seconds, "kbps": None, "enc_s": None,
           "dec_s": None, "enc_rtf": None, "dec_rtf": None, "peak_mem_mb": mem, **metrics,
           "metrics_s": None, "error": error}
    if out is not None:
        rec.update(kbps=out.kbps, enc_s=out.enc_s, dec_s=out.dec_s,
                   enc_rtf=clip.seconds / max(out.enc_s, 1e-9),
                   dec_rtf=clip.seconds / max(out.dec_s, 1e-9))
        if out.child_mb is not None:
            rec["peak_mem_mb"] = out.child_mb
    return rec


def execute(row: Row, clip: Clip, plan_: Plan) -> tuple[dict[str, Any], Output | None]:
    """Run ``row`` on ``clip``, timed and memory-measured; a failure becomes the ``error``."""
    names = plan_.metric_names
    try:
        with PeakRSS() as mem:
            out = RUNNERS[row.kind](row, clip.audio, clip.sr, plan_.ctx)
    except Exception as e:  # noqa: BLE001 - one failing (row, clip) must not stop the bench
        return _record(row, clip, None, None, dict.fromkeys(names),
                       f"{type(e).__name__}: {e}"), None
    return _record(row, clip, out, mem.mb, dict.fromkeys(names)), out


def measure(ref: np.ndarray, ref_sr: int, deg: np.ndarray, deg_sr: int, names: list[str],
            visqol: bool, align: bool = False) -> dict[str, float | None]:
    """The quality metrics ``names`` of ``deg`` against ``ref``, and ``metrics_s`` (seconds).

    ``align`` searches the delay by waveform cross-correlation. The bench aligns only Opus and
    MP3: ldmz decodes and copy-syntheses are sample-aligned by construction, and on their
    phase-free output the correlation peak lands tens of ms off (seen: +1258 and -5057 samples
    on a rock clip), which doubled its log-mel L1.
    """
    from ldmz.codec.metrics import CompareParams, compare

    t0 = time.perf_counter()
    rep = compare(ref, ref_sr, deg, deg_sr, CompareParams(visqol=visqol, align=align),
                  names=names)
    return {**{n: rep.get(n).value for n in names}, "metrics_s": time.perf_counter() - t0}


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def aggregate(records: list[dict[str, Any]], rows: list[Row],
              metrics: list[str]) -> list[dict[str, Any]]:
    """Mean over clips per (row, category), and over all clips (category ``all``)."""
    cats = list(dict.fromkeys(r["category"] for r in records))
    out = []
    for row in rows:
        mine = [r for r in records if r["row"] == row.label and not r["error"]]
        for cat in [*cats, "all"]:
            rs = [r for r in mine if cat in ("all", r["category"])]
            if not rs:
                continue
            secs = sum(r["seconds"] for r in rs)
            mem = [r["peak_mem_mb"] for r in rs if r["peak_mem_mb"] is not None]
            out.append({
                "group": row.group, "row": row.label, "model": rs[0]["model"],
                "vocoder": row.vocoder, "bits": row.bits or "", "category": cat,
                "clips": len(rs), "seconds": secs, "kbps": _mean([r["kbps"] for r in rs]),
                "enc_rtf": secs / max(sum(r["enc_s"] for r in rs), 1e-9),
                "dec_rtf": secs / max(sum(r["dec_s"] for r in rs), 1e-9),
                "peak_mem_mb": max(mem) if mem else None,
                **{m: _mean([r[m] for r in rs]) for m in metrics}})
    return out


def machine(workers: int = 0, threads: int = 1) -> dict[str, str]:
    """Where and when the bench ran."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": f"{cpu}, {os.cpu_count()} cores", "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": f"{torch.__version__}, {threads} thread(s) per process",
            "workers": str(workers)}


_WORKER: dict[str, Any] = {}  # a worker process's Plan (no clips or rows) and scratch folder


def _init_worker(params: BenchParams, model_names: list[str], threads: int) -> None:
    """Worker start-up: one torch thread, its own models, scratch folder and a warm vocoder."""
    import torch

    torch.set_num_threads(threads)
    models = load_models(model_names, [])
    _WORKER["tmp"] = tempfile.TemporaryDirectory(prefix="ldmz-bench-")
    ctx = make_context(params, models)
    ctx.scratch = Path(_WORKER["tmp"].name)
    _WORKER["plan"] = Plan(params, [], [], [], ctx)
    warm_up(params)


def job(row: Row, clip: Clip, keep: bool, plan_: Plan | None = None
        ) -> tuple[dict[str, Any], tuple[np.ndarray, int] | None]:
    """Run and score one (row, clip): the record, and the decoded audio when ``keep``."""
    plan_ = plan_ or _WORKER["plan"]
    rec, out = execute(row, clip, plan_)
    if out is None:
        return rec, None
    try:
        rec.update(measure(clip.audio, clip.sr, out.audio, out.sr, plan_.metric_names,
                           plan_.params.visqol, align=row.kind in ("opus", "mp3")))
    except Exception as e:  # noqa: BLE001 - a metric crash fails this run only
        rec["error"] = f"metrics: {type(e).__name__}: {e}"
    return rec, ((out.audio, out.sr) if keep else None)


def run(plan_: Plan, progress: Callable[[str], None] | None = None,
        workers: int | None = None) -> BenchResult:
    """Run every (clip, row) of ``plan_``; ``progress(description)`` is called as each finishes.

    ``workers`` processes (default: one per core) each take whole (clip, row) jobs with one
    torch thread (``params.threads``): single-threaded jobs use the cores fully and, unlike
    OpenMP threads, do not stall when other programs load the machine (two OpenMP threads ran
    3x slower than one beside a training job here). ``workers=0`` runs everything here.
    """
    import torch

    workers = (os.cpu_count() or 1) if workers is None else workers
    p = plan_.params
    t0 = time.perf_counter()
    speech = next((c for c in plan_.clips if c.category == "speech"), plan_.clips[0])
    keep: dict[str, tuple[np.ndarray, int]] = {"original": (speech.audio, speech.sr)}
    wanted = (plan_.default_label, plan_.opus_label)
    jobs = [(row, clip, clip is speech and row.label in wanted)
            for clip in plan_.clips for row in plan_.rows]
    results: list[tuple[dict[str, Any], tuple[np.ndarray, int] | None]] = []

    def done(res: tuple[dict[str, Any], tuple[np.ndarray, int] | None]) -> None:
        results.append(res)
        if progress:
            progress(f"{res[0]['row']} | {res[0]['clip']}")

    if workers:
        threads = p.threads or 1
        with ProcessPoolExecutor(workers, get_context("spawn"), initializer=_init_worker,
                                 initargs=(p, list(plan_.ctx.models), threads)) as pool:
            for fut in as_completed([pool.submit(job, *j) for j in jobs]):
                done(fut.result())
    else:
        threads = p.threads or 1
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        warm_up(p)
        try:
            with tempfile.TemporaryDirectory(prefix="ldmz-bench-") as tmp:
                plan_.ctx.scratch = Path(tmp)
                for j in jobs:
                    done(job(*j, plan_))
        finally:
            torch.set_num_threads(before)
    order = {(r.label, c.name): i for i, (r, c, _) in enumerate(jobs)}
    results.sort(key=lambda res: order[res[0]["row"], res[0]["clip"]])
    for rec, audio in results:
        if audio is not None:
            keep[rec["row"]] = audio
    records = [rec for rec, _ in results]
    return BenchResult(plan_, records, aggregate(records, plan_.rows, plan_.metric_names), keep,
                       time.perf_counter() - t0, machine(workers, threads), speech.name)
