"""Thread settings vs a busy machine: micro training steps per second, alone and beside a competing process.

    python benchmarks/threads.py [--steps 60] [--model micro|smollm2-135m] [--out benchmarks/threads-MODEL.json]

Each configuration runs in a fresh process (OpenMP reads its settings when it starts): the same fixed workload
(forward + backward + AdamW, batch 32 of micro-cipher examples on the micro model, or batch 4 of 128 tokens on
SmolLM2-135M), timed alone
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
from forgetbench.core import threads
threads.configure(int(os.environ["FB_BENCH_THREADS"]))
import torch
from forgetbench.toolbox.encoding import Collator
from forgetbench.toolbox.losses import cross_entropy
from forgetbench.task import targets
from forgetbench.method import Context
from forgetbench.toolbox.model_sources import resolve_model
base = resolve_model(sys.argv[2])
threads.configure(int(os.environ["FB_BENCH_THREADS"]))   # the model's own preference does not apply here
if sys.argv[2] == "micro":
    ctx = Context(base=base, target=targets.get("micro-cipher"), seed=0)
    batch = Collator(base.tokenizer.pad_token_id)(ctx.target_examples[:32])
else:
    ids = torch.randint(100, 40000, (4, 128), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
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


def seconds_per_step(env: dict, steps: int, model: str) -> float:
    out = subprocess.run([sys.executable, "-c", WORKLOAD, str(steps), model], env={**os.environ, **env}, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--model", default="micro")
    ap.add_argument("--configs", default="", help="comma-separated substrings of the configurations to run")
    ap.add_argument("--out", default=None, help="default: benchmarks/threads-MODEL.json")
    args = ap.parse_args()
    results = {}
    chosen = {n: e for n, e in CONFIGS.items() if not args.configs or any(c in n for c in args.configs.split(","))}
    for name, env in chosen.items():
        alone = seconds_per_step(env, args.steps, args.model)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            busy = seconds_per_step(env, args.steps, args.model)
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
    out = Path(args.out or ROOT / "benchmarks" / f"threads-{args.model}.json")
    out.write_text(json.dumps({"cores": os.cpu_count(), "model": args.model, "steps": args.steps,
                                          "results": results},
                                         indent=1) + "\n")


if __name__ == "__main__":
    main()
