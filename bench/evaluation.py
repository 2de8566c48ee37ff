"""Evaluation through lm-eval's Python API, with per-item outcomes and a cache for base models.

Every item's outcome is kept: doc id, doc and prompt hashes (lm-eval's own), whether it was correct,
and its score. Aggregates are derived from items, never stored on their own.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from bench.store import JsonCache, hash_files, stable_hash
from bench.task import EvalTask

EVAL_BATCH_SIZE = 64


@dataclass(frozen=True)
class EvalSettings:
    backend: str = "hf"
    batch_size: int = EVAL_BATCH_SIZE
    num_fewshot: int = 0

    def to_dict(self) -> dict:
        import lm_eval
        return {"backend": self.backend, "batch_size": self.batch_size, "num_fewshot": self.num_fewshot,
                "lm_eval": lm_eval.__version__}


def _quiet() -> None:
    for name in ("lm_eval", "lm-eval", "datasets", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _task_files_hash(include_path: Path) -> str:
    return hash_files([p for p in Path(include_path).rglob("*") if p.suffix in {".yaml", ".py"}],
                      Path(include_path))


def run_lm_eval(model, tokenizer, tasks: list[EvalTask], include_paths: list[Path],
                settings: EvalSettings) -> dict[str, list[dict]]:
    """Evaluate an in-memory model on lm-eval tasks; returns task name -> per-item outcomes."""
    _quiet()
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=[str(p) for p in dict.fromkeys(include_paths)], include_defaults=False)
    missing = [t.name for t in tasks if t.name not in tm.all_tasks]
    if missing:  # a YAML that fails to parse is skipped by lm-eval at DEBUG level; never let that pass
        raise RuntimeError(f"lm-eval could not load the task definitions {missing} from {include_paths}")
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size,
              device=str(next(model.parameters()).device), add_bos_token=True)
    res = lm_eval.simple_evaluate(model=lm, tasks=[t.name for t in tasks], task_manager=tm,
                                  num_fewshot=settings.num_fewshot, log_samples=True, bootstrap_iters=0,
                                  random_seed=0, numpy_random_seed=1234, torch_random_seed=1234,
                                  fewshot_random_seed=1234, verbosity="ERROR")
    out = {}
    for t in tasks:
        records = [r for r in res["samples"][t.name] if r["filter"] == t.filter]
        if not records:
            raise RuntimeError(f"lm-eval produced no records for task {t.name} with filter {t.filter!r}")
        out[t.name] = sorted((_item(r, t.metric) for r in records), key=lambda r: r["doc_id"])
    return out


def _item(record: dict, metric: str) -> dict:
    score = float(record[metric])
    return {"doc_id": int(record["doc_id"]), "doc_hash": record["doc_hash"],
            "prompt_hash": record["prompt_hash"], "correct": bool(score >= 0.5 if math.isfinite(score) else False),
            "score": score}


def evaluate(model, tokenizer, tasks: list[tuple[EvalTask, Path]], settings: EvalSettings,
             cache_fingerprint: str | None = None) -> dict[str, list[dict]]:
    """Per-item outcomes for each task. With `cache_fingerprint` (a base model's content hash), results are
    cached per task and reused by every run on that base."""
    cache = JsonCache("evals")
    keys = {t.name: stable_hash({"model": cache_fingerprint, "task": t.name, "metric": t.metric,
                                 "filter": t.filter, "files": _task_files_hash(p),
                                 "settings": settings.to_dict()}, 24)
            for t, p in tasks}
    out: dict[str, list[dict]] = {}
    todo = []
    for t, p in tasks:
        hit = cache.get(keys[t.name]) if cache_fingerprint else None
        if hit is not None:
            out[t.name] = hit
        else:
            todo.append((t, p))
    if todo:
        fresh = run_lm_eval(model, tokenizer, [t for t, _ in todo], [p for _, p in todo], settings)
        for name, items in fresh.items():
            if cache_fingerprint:
                cache.put(keys[name], items)
            out[name] = items
    return out


def accuracy(items: list[dict]) -> float:
    return sum(i["score"] for i in items) / len(items)


def compare(base: list[dict], tuned: list[dict], task: str) -> dict:
    """base / tuned / delta / n for one task, after checking that the items and prompts are the same."""
    if [(i["doc_id"], i["doc_hash"], i["prompt_hash"]) for i in base] != \
       [(i["doc_id"], i["doc_hash"], i["prompt_hash"]) for i in tuned]:
        raise RuntimeError(f"Base and tuned evaluations of {task} are not on the same items and prompts; "
                           "refusing to compare them.")
    b, t = accuracy(base), accuracy(tuned)
    return {"base": b, "tuned": t, "delta": t - b, "n": len(base)}
