"""Wall time of `bench run` on the micro world, and KL scoring cost relative to a bare forward pass.

    python benchmarks/micro.py [--out BENCH_DIR]

Uses a fresh cache, so the first run includes pretraining the micro base model. Prints a Markdown table
(paste into BENCHMARKS.md) and writes benchmarks/micro.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ["naive_sft", "context_free", "contextual_synthetic", "pretrain_replay", "explicit_kl"]


def timed_run(method: str, env: dict, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", "run", "--method", method, "--out", str(out), "--json"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def kl_scoring_ratio(repeats: int = 5) -> dict:
    """Time score_pair (two models, float32 log-softmax, exact KL) against bare forwards over the same tokens."""
    import torch

    from bench.kl import KLSettings, base_samples, score_pair
    from tasks.micro.world import base_model

    h = base_model()
    tuned = h.trainable_copy().eval()
    prompts, gen = base_samples(h, KLSettings())
    rows = [p + g for p, g in zip(prompts, gen)]
    batches = []   # padded per batch of 64, exactly as score_pair pads
    for s in range(0, len(rows), 64):
        chunk = rows[s:s + 64]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), h.tokenizer.pad_token_id)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(chunk):
            ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r), 1
        batches.append((ids, mask))

    def bare():
        with torch.no_grad():
            for ids, mask in batches:
                h.model(input_ids=ids, attention_mask=mask)
                tuned(input_ids=ids, attention_mask=mask)

    def scored():
        score_pair(h.model, tuned, prompts, gen, h.tokenizer.pad_token_id, 64)

    best = {}
    for name, fn in (("bare", bare), ("scored", scored)):
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        best[name] = min(times)
    return {"samples": len(rows), "tokens": sum(len(g) for g in gen), "bare_forward_s": best["bare"],
            "kl_scoring_s": best["scored"], "ratio": best["scored"] / best["bare"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--kl-only", action="store_true", help="only the KL scoring ratio (uses the cache in --out)")
    args = ap.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="forgetbench-bench-"))
    env = dict(os.environ, FORGETBENCH_CACHE=str(work / "cache"))
    os.environ["FORGETBENCH_CACHE"] = env["FORGETBENCH_CACHE"]
    if args.kl_only:
        print(json.dumps(kl_scoring_ratio(), indent=1))
        return
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads default",
           "first_run_s": timed_run("naive_sft", env, work / "runs1")}
    res["second_run_s"] = timed_run("naive_sft", env, work / "runs2")
    res["methods_s"] = {m: timed_run(m, env, work / "runs3") for m in METHODS}
    res["kl"] = kl_scoring_ratio()
    Path(__file__).with_name("micro.json").write_text(json.dumps(res, indent=1) + "\n")
    print("| measurement | seconds | target |\n|---|---|---|")
    print(f"| first `bench run` (pretraining included), naive_sft | {res['first_run_s']:.1f} | ≤ 120 |")
    print(f"| second `bench run` (base cached), naive_sft | {res['second_run_s']:.1f} | ≤ 60 |")
    for m, s in res["methods_s"].items():
        print(f"| `bench run --method {m}` | {s:.1f} | ≤ 60 |")
    k = res["kl"]
    print(f"\nKL scoring of {k['samples']} base samples ({k['tokens']} scored tokens): "
          f"{k['kl_scoring_s'] * 1000:.0f} ms vs bare forward of both models {k['bare_forward_s'] * 1000:.0f} ms "
          f"= **{k['ratio']:.2f}x** the floor.")


if __name__ == "__main__":
    main()
