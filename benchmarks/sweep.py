"""Sweep executors on this machine: the wall time of `bench sweep` with `local` (one process), `local --jobs N`
and `ray` for growing numbers of runs, and what Ray adds per task.

    python benchmarks/sweep.py [--runs 2,4,8] [--jobs 2] [--out benchmarks/sweep.json]

Each sweep is naive_sft on the micro world at its default budget, seeds 0..K-1 (configuration 0 only), into a
fresh folder, with the base model's evaluations already cached (a first run warms the cache). Wall time is the
whole `bench sweep` process as a user runs it (a local Ray cluster started and stopped inside it). Run it on an
otherwise idle machine: runs side by side share the cores.

Ray's own overhead: a task that does no work but returns a payload the size of a micro run's records and
per-item files, submitted one at a time (latency) and all at once (throughput), against calling the same
function in this process; and the time to start and stop a local cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = str(Path(sys.executable).parent / "bench")


def sweep_seconds(executor: list[str], runs: int, root: Path) -> dict:
    out = root / f"{'-'.join(executor) or 'serial'}-{runs}"
    seeds = ",".join(map(str, range(runs)))
    argv = [BENCH, "sweep", "--methods", "naive_sft", "--configs", "1", "--seeds", seeds, "--out", str(out),
            *executor]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    per_run = [json.loads(p.read_text())["wall_seconds"] for p in out.glob("*/result.json")]
    return {"executor": " ".join(executor) or "local", "runs": runs, "wall_seconds": round(wall, 1),
            "sum_of_run_seconds": round(sum(per_run), 1), "mean_run_seconds": round(sum(per_run) / len(per_run), 1)}


def _noop(payload_bytes: int) -> str:
    return "x" * payload_bytes


def ray_overhead(tasks: int = 40, payload: int = 300_000) -> dict:
    import ray

    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    started = time.perf_counter() - start
    task = ray.remote(num_cpus=1)(_noop)
    ray.get(task.remote(payload))                      # workers up before timing
    t = time.perf_counter()
    for _ in range(tasks):
        ray.get(task.remote(payload))
    latency = (time.perf_counter() - t) / tasks
    t = time.perf_counter()
    ray.get([task.remote(payload) for _ in range(tasks)])
    throughput = (time.perf_counter() - t) / tasks
    t = time.perf_counter()
    for _ in range(tasks):
        _noop(payload)
    local = (time.perf_counter() - t) / tasks
    t = time.perf_counter()
    ray.shutdown()
    stopped = time.perf_counter() - t
    return {"payload_bytes": payload, "tasks": tasks, "cluster_start_seconds": round(started, 2),
            "cluster_stop_seconds": round(stopped, 2), "task_latency_ms": round(1000 * latency, 2),
            "task_seconds_all_at_once_ms": round(1000 * throughput, 2), "in_process_ms": round(1000 * local, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="2,4,8")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "sweep.json"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.runs.split(",")]
    root = Path(tempfile.mkdtemp(prefix="forgetbench-sweep-bench-"))
    try:
        subprocess.run([BENCH, "run", "--method", "naive_sft", "--seed", "99", "--out", str(root / "warm")],
                       capture_output=True, check=True)
        results = {"machine": os.uname().machine, "cores": len(os.sched_getaffinity(0)), "sweeps": [],
                   "ray_overhead": ray_overhead()}
        for n in sizes:
            for executor in ([], ["--jobs", str(args.jobs)], ["--executor", "ray"]):
                row = sweep_seconds(executor, n, root)
                print(json.dumps(row), flush=True)
                results["sweeps"].append(row)
        print(json.dumps(results["ray_overhead"]))
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
