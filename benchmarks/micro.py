"""Wall time of `bench` on the micro world, where it goes, and what a busy machine does to it.

    python benchmarks/micro.py [--out benchmarks/micro.json] [--skip-scratch]

Everything runs as the user runs it (`python -m forgetbench.cli ...` in a subprocess, default threads) with a fresh
cache: the first run evaluates the base model and draws its samples; later runs reuse them. Each record's
`stage_seconds` attributes the run's own time; `startup` is the rest of the process's wall time (interpreter,
imports, argument checks). The contention figure reruns the cached naive_sft run while one competing process
keeps one core busy (a spinning Python loop, like a second job on a 2-core machine); the ratio compares it
with the same run alone. KL scoring is compared with its floor, a bare forward pass of both models over the
same tokens. Prints a summary and writes the JSON (figures go into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["naive_sft", "context_free", "contextual_synthetic", "pretrain_replay", "explicit_kl"]


def bench(args: list[str], env: dict, expect: int = 0) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "forgetbench.cli", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    if out.returncode != expect:
        raise RuntimeError(f"bench {' '.join(args)} exited {out.returncode}: {out.stderr[-2000:]}")
    return time.perf_counter() - t, out.stdout


def run(method: str, env: dict, out: Path, *extra: str) -> dict:
    wall, stdout = bench(["run", "--method", method, "--out", str(out), "--json", *extra], env)
    record = json.loads(stdout.splitlines()[-1])
    stages = dict(record.get("stage_seconds", {}))
    stages["startup"] = round(wall - record["wall_seconds"], 3)
    return {"wall_s": round(wall, 2), "stages_s": stages}


def with_a_busy_core(fn):
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        return fn()
    finally:
        hog.kill()
        hog.wait()


def kl_scoring_ratio(repeats: int = 5) -> dict:
    """score_pair (two models, float32 log-softmax, exact KL) against bare forwards over the same tokens."""
    import torch
    from forgetbench.core.settings import KLSettings
    from forgetbench.runner.kl import base_samples, score_pair
    from forgetbench.toolbox.encoding import pad
    from forgetbench.toolbox.model_sources import resolve_model

    h = resolve_model("micro")
    tuned = h.trainable_copy().eval()
    prompts, gen = base_samples(h, KLSettings())
    rows = [p + g for p, g in zip(prompts, gen)]
    batches = [pad(rows[s:s + 64], h.tokenizer.pad_token_id) for s in range(0, len(rows), 64)]

    def bare():
        with torch.no_grad():
            for ids, mask in batches:
                h.model(input_ids=ids, attention_mask=mask)
                tuned(input_ids=ids, attention_mask=mask)

    def scored():
        score_pair(h.model, tuned, prompts, gen, h.tokenizer.pad_token_id, 64)

    times = {}
    for name, fn in (("bare_forward_s", bare), ("kl_scoring_s", scored)):
        fn()
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        times[name] = round((time.perf_counter() - t) / repeats, 4)
    return {"samples": len(rows), "tokens": sum(map(len, rows)), **times,
            "ratio": round(times["kl_scoring_s"] / times["bare_forward_s"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "micro.json"))
    ap.add_argument("--skip-scratch", action="store_true", help="skip pretraining the micro base from scratch")
    args = ap.parse_args()
    from forgetbench.core.environment import machine
    from forgetbench.core.threads import available_cores

    with tempfile.TemporaryDirectory(prefix="forgetbench-bench-") as tmp:
        env = {**os.environ, "FORGETBENCH_CACHE": str(Path(tmp) / "cache")}
        env.pop("FORGETBENCH_THREADS", None)
        runs = Path(tmp) / "runs"
        result: dict = {"machine": f"{machine()}, {available_cores()} cores", "python": sys.version.split()[0]}
        result["unknown_method_s"] = round(bench(["run", "--method", "nosuch"], env, expect=2)[0], 2)
        result["methods_table_s"] = round(bench(["methods"], env)[0], 2)
        result["first_run"] = run("naive_sft", env, runs / "first")
        result["cached_run"] = run("naive_sft", env, runs / "second")
        result["already_done_s"] = round(bench(["run", "--method", "naive_sft", "--out", str(runs / "second")],
                                               env)[0], 2)
        result["busy_core_cached_run"] = with_a_busy_core(lambda: run("naive_sft", env, runs / "busy"))
        result["busy_core_slowdown"] = round(result["busy_core_cached_run"]["wall_s"]
                                             / result["cached_run"]["wall_s"], 2)
        result["methods"] = {m: run(m, env, runs / "methods", "--seed", "1") for m in METHODS}
        if not args.skip_scratch:
            result["scratch_first_run"] = run("naive_sft", env, runs / "scratch", "--model", "micro-scratch")
        os.environ["FORGETBENCH_CACHE"] = env["FORGETBENCH_CACHE"]
        result["kl"] = kl_scoring_ratio()
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
