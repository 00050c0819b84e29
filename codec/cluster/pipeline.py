"""Encode a dataset: plan against the manifest, run in-process or as a Ray Data pipeline, record.

Ray Data pipeline: ``from_items(files)`` -> ``map(read_row)`` (tasks: skip check, audio decode)
-> ``map_batches(Encoder)`` (an actor pool; each actor loads the model once, on CPU or a GPU)
-> rows streamed back to the driver, which journals them and writes manifest.parquet.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ldmz.codec.cluster import manifest, require
from ldmz.codec.cluster.listing import list_sources
from ldmz.codec.cluster.work import Encoder, output_rel, read_row, settings_json
from ldmz.codec.params import EncodeParams

FILES_PER_BLOCK = 8  # inputs per read task and per actor call: small, so little audio is in flight
FLUSH_SECONDS = 1.0  # journal flush interval
_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # write_atomic's temporary files


@dataclass
class Progress:
    """Where a run stands: files finished (of ``total``), audio seconds encoded, seconds spent."""

    done: int
    total: int
    failed: int
    audio_seconds: float
    elapsed: float


@dataclass
class Summary:
    """The outcome of a run; ``workers`` maps a worker pid to (files, rss MB, peak MB) samples."""

    total: int
    encoded: int
    skipped: int
    adopted: int
    failed: int
    audio_seconds: float
    seconds: float
    manifest: Path
    errors: list[str] = field(default_factory=list)
    workers: dict[int, list[tuple[int, float, float]]] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        t = max(self.seconds, 1e-9)
        return (f"{self.encoded} encoded, {self.skipped + self.adopted} already done, "
                f"{self.failed} failed of {self.total} files; {self.audio_seconds / 3600:.2f} h "
                f"of audio in {self.seconds:.1f} s ({self.encoded / t:.2f} files/s, "
                f"{self.audio_seconds / t:.3g} audio h/h); manifest: {self.manifest}")


def _plan(inputs: Sequence[str], dst: Path, settings: str, force: bool, source_tags: bool,
          old: Mapping[str, dict]) -> tuple[list[dict], dict[str, dict]]:
    """Rows to run, and error rows for inputs whose outputs would collide."""
    from ldmz.codec.audio_io import AUDIO_SUFFIXES

    todo: list[dict] = []
    bad: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for s in list_sources(inputs, AUDIO_SUFFIXES):
        out = output_rel(s.rel)
        if out in owner or s.rel in bad:
            bad[s.rel] = manifest.blank(
                path=s.rel, output=out, status="error", settings=settings,
                error=f"{s.uri}: its output {out} is also that of {owner.get(out, s.rel)}; "
                      f"rename one of them")
            continue
        owner[out] = s.uri
        prev = old.get(s.rel)
        match = (prev is not None and not force and prev["status"] == "ok"
                 and prev["settings"] == settings and prev["source_bytes"] == s.size
                 and prev["source_mtime_ns"] == s.mtime_ns)
        todo.append({"path": s.rel, "uri": s.uri, "out": str(dst / out), "output": out,
                     "source_bytes": s.size, "source_mtime_ns": s.mtime_ns,
                     "expect_sha256": prev["sha256"] if prev is not None and match else "",
                     "source_tags": source_tags})
    return todo, bad


def _local(todo: list[dict], enc_kwargs: dict) -> Iterator[dict]:
    enc = Encoder(**enc_kwargs)
    for r in todo:
        yield enc.encode_row(read_row(r))


def _ray(todo: list[dict], enc_kwargs: dict, workers: int, cpus: float,
         gpus: float) -> Iterator[dict]:
    ray = require("ray", "--ray")
    rd = require("ray.data", "--ray")
    if not workers:
        res = ray.cluster_resources()
        workers = max(1, int(res.get("GPU", 0) // gpus if gpus else res.get("CPU", 1) // cpus))
    ctx = rd.DataContext.get_current()
    ctx.enable_progress_bars = False  # the caller draws one bar over files
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    blocks = max(1, math.ceil(len(todo) / FILES_PER_BLOCK), min(len(todo), workers))
    ds = rd.from_items(todo, override_num_blocks=blocks)
    # Reads take no CPU slot (the actors hold them all); at most `workers` run at once.
    ds = ds.map(read_row, num_cpus=0, compute=rd.TaskPoolStrategy(size=workers))
    ds = ds.map_batches(Encoder, fn_constructor_kwargs=enc_kwargs, batch_size=FILES_PER_BLOCK,
                        compute=rd.ActorPoolStrategy(size=workers), num_cpus=cpus,
                        num_gpus=gpus or None)
    yield from ds.iter_rows()


def _connect(address: str, init_kwargs: Mapping) -> bool:
    """ray.init unless already connected; True if this call started the connection."""
    ray = require("ray", "--ray")
    if ray.is_initialized():
        return False
    kw = {"log_to_driver": False, "include_dashboard": False, "logging_level": logging.ERROR,
          **init_kwargs}
    if not address and not os.environ.get("RAY_ADDRESS"):
        kw.setdefault("_node_ip_address", "127.0.0.1")  # a new local cluster: loopback only
    ray.init(address=address or None, **kw)
    return True


def _clean_temp(dst: Path) -> None:
    """Remove the temporary files of writes that a killed run left behind."""
    for folder, _, files in os.walk(dst):
        for name in files:
            if _TEMP.match(name):
                Path(folder, name).unlink(missing_ok=True)


def encode_dataset(inputs: Sequence[str], dst: str | os.PathLike,
                   params: EncodeParams = EncodeParams(), *,
                   tags: Mapping[str, str] | None = None, source_tags: bool = True,
                   ray: str | None = None,
                   workers: int = 0, cpus_per_worker: float = 1, gpus_per_worker: float = 0,
                   force: bool = False, progress: Callable[[Progress], None] | None = None,
                   ray_init: Mapping | None = None) -> Summary:
    """Encode every audio file under ``inputs`` to ``dst`` with the relative layout kept.

    ``ray`` None runs in this process; "" uses Ray (RAY_ADDRESS, or a new local cluster on
    127.0.0.1); otherwise it is the address of a running cluster. Each file gets the source's
    tags (unless ``source_tags`` is false) updated by ``tags``, as `ldmz encode` does. Outputs
    that exist and match DST/manifest.parquet are skipped; bad inputs are recorded with their
    error.
    """
    t0 = time.perf_counter()
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    if (dst / manifest.JOURNAL).exists():
        _clean_temp(dst)
    old = manifest.load(dst)
    settings = settings_json(params, tags, source_tags)
    todo, bad = _plan(inputs, dst, settings, force, source_tags, old)
    rows = {**old, **bad}
    enc_kwargs = {"params": asdict(params), "tags": dict(tags) if tags else None,
                  "force": force, "threads": int(cpus_per_worker) if ray is not None else 0,
                  "source_tags": source_tags}
    started = False
    if ray is not None:
        require("ray", "--ray")
        started = _connect(ray, ray_init or {})
    s = Summary(total=len(todo) + len(bad), encoded=0, skipped=0, adopted=0, failed=len(bad),
                audio_seconds=0.0, seconds=0.0, manifest=dst / manifest.MANIFEST,
                errors=[r["error"] for r in bad.values()])
    stages = {"read_s": 0.0, "encode_s": 0.0, "write_s": 0.0}
    journal = manifest.Journal(dst)
    pending: list[dict] = []
    last = time.perf_counter()
    finished = False
    try:
        results = (_local(todo, enc_kwargs) if ray is None else
                   _ray(todo, enc_kwargs, workers, cpus_per_worker, gpus_per_worker))
        for n, r in enumerate(results, 1):
            if r["state"] == "skip":
                s.skipped += 1
            else:
                row = manifest.blank(**r)
                rows[row["path"]] = row
                pending.append(row)
                s.failed += row["status"] == "error"
                s.adopted += r["state"] == "adopted"
                s.encoded += r["state"] == "todo"
                s.audio_seconds += row["duration"] if r["state"] == "todo" else 0.0
                if row["error"]:
                    s.errors.append(row["error"])
                for k in stages:
                    stages[k] += float(r[k])
                s.workers.setdefault(int(r["pid"]), []).append(
                    (len(s.workers.get(int(r["pid"]), [])) + 1, float(r["rss_mb"]),
                     float(r["peak_mb"])))
            if time.perf_counter() - last > FLUSH_SECONDS:
                journal.append(pending)
                pending, last = [], time.perf_counter()
            if progress:
                progress(Progress(n + len(bad), s.total, s.failed, s.audio_seconds,
                                  time.perf_counter() - t0))
        journal.append(pending)
        pending = []
        manifest.save(dst, rows)
        finished = True
    finally:
        if pending:
            journal.append(pending)
        journal.close(remove=finished)
        if started:
            require("ray", "--ray").shutdown()
    s.seconds = time.perf_counter() - t0
    s.stage_seconds = stages
    return s
