"""Thread settings vs a busy machine: micro training steps per second, alone and beside a competing process.

    python benchmarks/threads.py [--steps 60] [--out benchmarks/threads.json]

Each configuration runs in a fresh process (OpenMP reads its settings when it starts): the same fixed workload
(forward + backward + AdamW on the shipped micro base model, batch 32 of micro-cipher examples), timed alone
and then while one competing process keeps one core busy (a spinning Python loop, like a second job on a
2-core machine). The ratio busy / alone is the slowdown a run suffers when another process takes a core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOAD = r"""
import os, sys, time
from bench import threads
threads.configure(int(os.environ["FB_BENCH_THREADS"]))
import torch
from bench.data import Collator
from bench.losses import cross_entropy
from bench.task import targets
from bench.method import Context
from tasks.micro.world import base_model
base = base_model()
ctx = Context(base=base, target=targets.get("micro-cipher"), seed=0)
rows = ctx.target_examples[:32]
batch = Collator(base.tokenizer.pad_token_id)(rows)
model = base.trainable_copy()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
def step():
    opt.zero_grad()
    cross_entropy(model, batch).backward()
    opt.step()
for _ in range(5):
    step()
n = int(sys.argv[1]); t = time.perf_counter()
for _ in range(n):
    step()
print((time.perf_counter() - t) / n)
"""

CONFIGS = {
    "2 threads, active wait (torch default)": {"FB_BENCH_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"},
    "2 threads, passive wait": {"FB_BENCH_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
    "2 threads, spin 10k then sleep": {"FB_BENCH_THREADS": "2", "OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"},
    "2 threads, spin 100k then sleep": {"FB_BENCH_THREADS": "2", "OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "100000"},
    "2 threads, libgomp default spin": {"FB_BENCH_THREADS": "2", "OMP_WAIT_POLICY": ""},
    "1 thread": {"FB_BENCH_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
}


def seconds_per_step(env: dict, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", WORKLOAD, str(steps)], env={**os.environ, **env}, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "threads.json"))
    args = ap.parse_args()
    results = {}
    for name, env in CONFIGS.items():
        alone = seconds_per_step(env, args.steps)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            busy = seconds_per_step(env, args.steps)
        finally:
            hog.kill()
            hog.wait()
        results[name] = {"alone_s_per_step": round(alone, 4), "busy_s_per_step": round(busy, 4),
                         "slowdown": round(busy / alone, 2)}
        print(f"{name:42s} alone {alone * 1e3:7.1f} ms/step   one core taken {busy * 1e3:7.1f} ms/step   "
              f"x{busy / alone:.2f}", flush=True)
    fastest = min(r["alone_s_per_step"] for r in results.values())
    for r in results.values():
        r["alone_vs_fastest"] = round(r["alone_s_per_step"] / fastest, 2)
    Path(args.out).write_text(json.dumps({"cores": os.cpu_count(), "steps": args.steps, "results": results},
                                         indent=1) + "\n")


if __name__ == "__main__":
    main()
