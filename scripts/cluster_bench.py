"""Ray against `ldmz encode -r` at the same cores: overhead, worker memory, kill-and-resume.

Run: ``python scripts/cluster_bench.py SRC --work DIR [--cpus 2] [--threads T] [--repeats 1]
[--kill-after 40]``. Back to back, ``--repeats`` times: the single-process batch encode
(`ldmz encode -r SRC -o ...`, a subprocess with ``--threads`` torch threads, default ``--cpus``),
then the same files on a local Ray cluster of ``--cpus`` CPUs (one encoder actor per CPU, one
torch thread each) that this script starts once, on 127.0.0.1, before the first Ray run (its
start-up is reported apart). Wall time, CPU seconds (the process tree) and load averages are
recorded for every run: on a shared machine the figures only mean something next to the load.
Then a driver is killed (SIGKILL) after ``--kill-after`` outputs (0: skip), the run is started
again, and every output is checked to have been written exactly once. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LDMZ = [sys.executable, "-m", "ldmz"]


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _tree_cpu() -> float:
    """CPU seconds of this process and all its descendants, alive or reaped by them."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d.name)] = int(f[1])
        cpu[int(d.name)] = sum(int(x) for x in f[11:15]) / tick  # utime stime cutime cstime
    me, total = os.getpid(), 0.0
    for pid in cpu:
        p = pid
        while p > 1 and p != me:
            p = parent.get(p, 0)
        if p == me:
            total += cpu[pid]
    return total


def _baseline(src: Path, out: Path, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([*LDMZ, "encode", "-r", str(src), "-o", str(out), "-q"], env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "rc": p.returncode, "cpu": (after.ru_utime + after.ru_stime)
            - (before.ru_utime + before.ru_stime), "peak_mb": after.ru_maxrss / 1024,
            "files": len(list(out.rglob("*.ldmz"))),
            "errors": len([ln for ln in p.stderr.splitlines() if ln.strip()])}


def _ray_run(src: Path, out: Path) -> dict:
    from ldmz.codec.cluster.pipeline import encode_dataset

    c0, t0 = _tree_cpu(), time.perf_counter()
    s = encode_dataset([str(src)], out, ray="", cpus_per_worker=1)
    wall, cpu = time.perf_counter() - t0, _tree_cpu() - c0
    mem = {pid: [(n, round(rss), round(peak)) for n, rss, peak in v]
           for pid, v in s.workers.items()}
    return {"wall": wall, "cpu": cpu, "summary": s.line(), "encoded": s.encoded, "failed": s.failed,
            "errors": s.errors, "audio_s": s.audio_seconds, "stages": s.stage_seconds,
            "workers": mem}


def _stamps(dst: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(dst).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in dst.rglob("*.ldmz")}


def _kill_resume(src: Path, dst: Path, address: str, kill_after: int) -> dict:
    code = ("import sys; from ldmz.codec.cluster.pipeline import encode_dataset; "
            f"encode_dataset([{str(src)!r}], {str(dst)!r}, ray={address!r})")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    while len(list(dst.rglob("*.ldmz"))) < kill_after and p.poll() is None:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)  # the driver and anything it started itself
    p.wait()
    time.sleep(2)  # the cluster notices the dead driver and stops its actors
    before = _stamps(dst)
    from ldmz.codec.cluster.pipeline import encode_dataset

    s = encode_dataset([str(src)], dst, ray="")  # resumes on the same cluster
    after = _stamps(dst)
    rewritten = [k for k in before if after.get(k) != before[k]]
    return {"outputs_at_kill": len(before), "encoded_after": s.encoded,
            "skipped": s.skipped, "adopted": s.adopted, "failed": s.failed,
            "rewritten": rewritten, "outputs_final": len(after),
            "journal_left": (dst / ".manifest.journal.jsonl").exists()}


def main() -> None:
    """Run the measurements and print the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads of the single-process encode (default: --cpus)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--kill-after", type=int, default=40)
    a = ap.parse_args()
    import ray

    a.work.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    state = tempfile.mkdtemp(prefix="rayb", dir="/tmp")
    started = False
    for i in range(a.repeats):
        b = {"load_before": _load()}
        b.update(_baseline(a.src, a.work / f"single{i}", a.threads or a.cpus))
        b["load_after"] = _load()
        results.append({"variant": "single", **b})
        print(json.dumps(results[-1]), file=sys.stderr)
        if not started:
            t0 = time.perf_counter()
            ray.init(num_cpus=a.cpus, _node_ip_address="127.0.0.1", _temp_dir=state,
                     include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            results.append({"variant": "ray start", "wall": time.perf_counter() - t0})
            started = True
        r = {"load_before": _load()}
        r.update(_ray_run(a.src, a.work / f"ray{i}"))
        r["load_after"] = _load()
        results.append({"variant": "ray", **r})
        print(json.dumps(results[-1])[:2000], file=sys.stderr)
    if a.kill_after:
        address = ray.get_runtime_context().gcs_address
        kr = _kill_resume(a.src, a.work / "killed", address, a.kill_after)
        results.append({"variant": "kill-resume", **kr})
        print(json.dumps(kr), file=sys.stderr)
    ray.shutdown()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
