"""What checking digests costs a run on SmolLM2-135M (2 CPU cores), against what the run spends anyway.

    python benchmarks/integrity.py [--out benchmarks/integrity.json] [--runs runs/smollm2-135m]

Every figure is measured in this process, after one warm-up read of each file (so the page cache holds them, as
it does for a run that just loaded the model). Costs per run:
- seal: the content hash of the cached dequantised model folder, which `load_cached` compares with its seal. The
  baseline is loading that folder (`load_folder` without the hash is not an option: the hash is the fingerprint
  every record carries), so the figure is the hash's share of the load, and the extra over the previous version
  is zero (it hashed the same files for the fingerprint).
- cache entries: reading and checking the largest sample and base-evaluation entries (more than a run reads)
  against a plain json.loads of the same bytes.
- task folders: rendering the zero-shot suite's task folder again and comparing it with the cached one.
- record: reading one SmolLM2 run folder with every check (`load_run_folder`: schema, checksum, every number
  recomputed from the items) against reading its two files and parsing them; paid per record read (the
  leaderboard, a rerun's "already done"), not per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int = 5) -> float:
    """Median wall seconds of `fn()` over `repeat` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def seal_cost() -> dict:
    from forgetbench.core.store import cache_dir, hash_files, sealed_digest
    from forgetbench.toolbox.model_sources import resolve_model
    from forgetbench.toolbox.models import load_folder, model_files

    resolve_model("smollm2-135m")                    # builds and seals the cached folder if needed
    folder = next(p for p in (cache_dir() / "gguf").iterdir() if p.is_dir() and p.name.lower().startswith("smollm2")
                  and sealed_digest(p))
    files = model_files(folder)
    return {"folder_bytes": sum(f.stat().st_size for f in files),
            "hash_seconds": timed(lambda: hash_files(files, folder)),
            "load_seconds": timed(lambda: load_folder(folder, "smollm2-135m"), repeat=3)}


def cache_cost(kind: str, n: int) -> dict:
    """The `n` largest entries of one cache kind: an upper bound on what one run reads of it."""
    from forgetbench.core.store import JsonCache, cache_dir

    cache = JsonCache(kind)
    entries = [p for p in sorted((cache_dir() / kind).glob("*.json"), key=lambda p: p.stat().st_size, reverse=True)
               if cache.get(p.stem, quiet=True) is not None][:n]            # this version's entries only
    raw = [p.read_bytes().partition(b"\n")[2] for p in entries]
    return {"entries": len(entries), "bytes": sum(len(b) for b in raw),
            "checked_seconds": timed(lambda: [cache.get(p.stem) for p in entries]),
            "plain_seconds": timed(lambda: [json.loads(b) for b in raw])}


def task_cost(data_dir: Path) -> dict:
    from forgetbench.task import _render, suites
    include = suites.get("zeroshot").include_path
    _render(include, data_dir)
    return {"render_and_compare_seconds": timed(lambda: _render(include, data_dir))}


def record_cost(runs: Path) -> dict:
    from forgetbench.records.schema import load_run_folder
    folder = next(p.parent for p in sorted(runs.glob("*/result.json")))

    def plain():
        json.loads((folder / "result.json").read_text())
        [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    return {"folder": folder.name, "items": sum(1 for _ in open(folder / "items.jsonl")),
            "checked_seconds": timed(lambda: load_run_folder(folder)), "plain_seconds": timed(plain)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "integrity.json"))
    ap.add_argument("--runs", default=str(ROOT / "runs" / "smollm2-135m"))
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    from forgetbench.core import threads
    threads.configure()
    out = {"seal": seal_cost(), "samples": cache_cost("samples", 3), "evals": cache_cost("evals", 10),
           "tasks": task_cost(Path(args.data_dir)), "record": record_cost(Path(args.runs))}
    # a run reads its cache entries and renders its task folders; the seal's hash was paid before (fingerprint)
    checks = sum(out[k]["checked_seconds"] - out[k]["plain_seconds"] for k in ("samples", "evals"))
    out["extra_seconds_per_run"] = checks + out["tasks"]["render_and_compare_seconds"]
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
