"""Evaluation through lm-eval's Python API, with per-item outcomes and a cache for base models.

Every item's outcome is kept: doc id, doc and prompt hashes (lm-eval's own), whether it was correct,
and its score. Aggregates are derived from items, never stored on their own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import statistics
import sys
from dataclasses import asdict, dataclass, field

from bench.store import JsonCache, stable_hash
from bench.task import Resolved

EVAL_BATCH_SIZE = 64
LIMIT_SEED = "forgetbench-limit-v1"   # --limit subsets depend on the task only: same items for every run
GENERATION_ONLY = ("backend", "max_new_tokens", "temperature", "samples_per_problem", "chat_template")


@dataclass(frozen=True)
class EvalSettings:
    backend: str = "hf"                # generation backend for generation tasks: hf | vllm
    batch_size: int | str = EVAL_BATCH_SIZE      # "auto": lm-eval's automatic batch size (GPU)
    num_fewshot: int = 0
    limit: int | None = None           # a fixed random subset of N items per task
    task_limits: dict = field(default_factory=dict)   # per-task overrides of `limit` (presets)
    max_new_tokens: int = 1024         # generation tasks
    temperature: float = 0.0           # 0: greedy
    samples_per_problem: int = 1       # pass@1 averaged over this many samples
    chat_template: bool = True         # format generation prompts with the model's chat template

    def __post_init__(self):
        from bench.errors import UserError
        if any(n is not None and n < 1 for n in [self.limit, *self.task_limits.values()]):
            raise UserError("--limit must be at least 1.")
        if self.temperature < 0 or self.samples_per_problem < 1 or self.max_new_tokens < 1:
            raise UserError("Evaluation needs temperature >= 0, samples >= 1 and max new tokens >= 1.")
        if self.temperature == 0 and self.samples_per_problem > 1:
            raise UserError("Several samples per problem need a temperature above 0 (greedy decoding "
                            "gives the same answer every time).")
        if self.backend not in {"hf", "vllm"}:
            raise UserError(f"Unknown generation backend {self.backend!r}: choose hf or vllm.")

    def to_dict(self) -> dict:
        import lm_eval
        return {**asdict(self), "lm_eval": lm_eval.__version__}

    def limit_for(self, task: str) -> int | None:
        return self.task_limits.get(task, self.limit)

    def for_task(self, task) -> dict:
        """The settings that decide one task's results: its own item limit, not every task's; decoding
        settings only for the tasks forgetbench generates or scores itself."""
        skip = {"limit", "task_limits"} | (set() if task.generative else set(GENERATION_ONLY))
        return {**{k: v for k, v in self.to_dict().items() if k not in skip}, "limit": self.limit_for(task.name)}


def subset_indices(task: str, n: int, limit: int | None) -> list[int] | None:
    """A fixed random subset of `limit` of a task's `n` items (sorted), or None for all of them."""
    if limit is None or limit >= n:
        return None
    return sorted(random.Random(f"{LIMIT_SEED}:{task}").sample(range(n), limit))


def _quiet() -> None:
    for name in ("lm_eval", "lm-eval", "datasets", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_lm_eval(model, tokenizer, tasks: list[Resolved], settings: EvalSettings) -> dict[str, list[dict]]:
    """Evaluate an in-memory model on lm-eval tasks; returns task name -> per-item outcomes."""
    _quiet()
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager, get_task_dict

    includes = [str(r.include) for r in tasks if r.include is not None]
    builtin = any(r.include is None for r in tasks)
    tm = TaskManager(include_path=list(dict.fromkeys(includes)) or None, include_defaults=builtin)
    missing = [r.name for r in tasks if r.name not in tm.all_tasks]
    if missing:  # a YAML that fails to parse is skipped by lm-eval at DEBUG level; never let that pass
        raise RuntimeError(f"lm-eval could not load the task definitions {missing} from {includes}")
    samples = None
    if any(settings.limit_for(r.task.name) is not None for r in tasks):
        loaded = get_task_dict([r.name for r in tasks], tm)
        samples = {}
        for r in tasks:
            n = len(list(loaded[r.name].eval_docs))
            idx = subset_indices(r.task.name, n, settings.limit_for(r.task.name))
            samples[r.name] = idx if idx is not None else list(range(n))
    with contextlib.redirect_stdout(sys.stderr):   # lm-eval prints (e.g. the auto batch size) to stdout
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size,
                  device=str(next(model.parameters()).device), add_bos_token=True)
        res = lm_eval.simple_evaluate(model=lm, tasks=[r.name for r in tasks], task_manager=tm, samples=samples,
                                      num_fewshot=settings.num_fewshot, log_samples=True, bootstrap_iters=0,
                                      random_seed=0, numpy_random_seed=1234, torch_random_seed=1234,
                                      fewshot_random_seed=1234, verbosity="ERROR")
    out = {}
    for r in tasks:
        t = r.task
        records = [x for x in res["samples"][r.name] if x["filter"] == t.filter]
        if not records:
            raise RuntimeError(f"lm-eval produced no records for task {r.name} with filter {t.filter!r}")
        out[t.name] = sorted((_item(x, t.metric) for x in records), key=lambda x: x["doc_id"])
    return out


def _item(record: dict, metric: str) -> dict:
    score = float(record[metric])
    return {"doc_id": int(record["doc_id"]), "doc_hash": record["doc_hash"],
            "prompt_hash": record["prompt_hash"], "correct": bool(score >= 0.5 if math.isfinite(score) else False),
            "score": score, "prompt": record["arguments"][0][0]}


def evaluate(model, tokenizer, tasks: list[Resolved], settings: EvalSettings,
             cache_fingerprint: str | None = None) -> dict[str, list[dict]]:
    """Per-item outcomes for each task. With `cache_fingerprint` (a base model's content hash), results are
    cached per task and reused by every run on that base. Freshly evaluated items also carry their
    prompt text ("prompt", for the answer-class probe); it is never cached or stored."""
    cache = JsonCache("evals")
    keys = {r.task.name: stable_hash({"model": cache_fingerprint, "task": r.task.name, "run_as": r.name,
                                      "metric": r.task.metric, "filter": r.task.filter,
                                      "content": r.content_hash, "settings": settings.for_task(r.task)}, 24)
            for r in tasks}
    out: dict[str, list[dict]] = {}
    todo = []
    for r in tasks:
        hit = cache.get(keys[r.task.name]) if cache_fingerprint else None
        if hit is not None:
            out[r.task.name] = hit
        else:
            todo.append(r)
    fresh: dict[str, list[dict]] = {}
    ll = [r for r in todo if not r.task.generative]
    if ll:
        fresh |= run_lm_eval(model, tokenizer, ll, settings)
    gen = [r for r in todo if r.task.generative]
    if gen:
        from bench.reasoning import evaluate_generation
        fresh |= evaluate_generation(model, tokenizer, gen, settings)
    for name, items in fresh.items():
        if cache_fingerprint:
            cache.put(keys[name], [{k: v for k, v in it.items() if k != "prompt"} for it in items])
        out[name] = items
    return out

def accuracy(items: list[dict]) -> float:
    return sum(i["score"] for i in items) / len(items)


def compare(base: list[dict], tuned: list[dict], task: str) -> dict:
    """base / tuned / delta / n for one task, after checking that the items and prompts are the same, with
    the paired evidence for the delta: its standard error over items and, for right/wrong items, the flips
    (right -> wrong is forgetting, wrong -> right backward transfer) and the exact McNemar p-value; for
    real-valued scores a paired t-test."""
    if [(i["doc_id"], i["doc_hash"], i["prompt_hash"]) for i in base] != \
       [(i["doc_id"], i["doc_hash"], i["prompt_hash"]) for i in tuned]:
        raise RuntimeError(f"Base and tuned evaluations of {task} are not on the same items and prompts; "
                           "refusing to compare them.")
    b, t = accuracy(base), accuracy(tuned)
    out = {"base": b, "tuned": t, "delta": t - b, "n": len(base)}
    diffs = [y["score"] - x["score"] for x, y in zip(base, tuned)]
    if len(diffs) > 1:
        out["delta_se"] = statistics.stdev(diffs) / math.sqrt(len(diffs))
    if all(i["score"] in (0.0, 1.0) for i in base + tuned):
        out |= flip_test(*flips(base, tuned))
    elif len(diffs) > 1:
        from scipy.stats import ttest_1samp
        p = ttest_1samp(diffs, 0.0).pvalue
        out["p_paired_t"] = float(p) if math.isfinite(p) else 1.0
    return out


def flips(base: list[dict], tuned: list[dict]) -> tuple[int, int]:
    """(right -> wrong, wrong -> right) over paired items scored 0 or 1."""
    from leaderboard.stats import discordant
    return discordant({i: x["score"] == 1.0 for i, x in enumerate(base)},
                      {i: y["score"] == 1.0 for i, y in enumerate(tuned)})


def flip_test(right_to_wrong: int, wrong_to_right: int) -> dict:
    from leaderboard.stats import mcnemar_exact
    return {"flips": {"right_to_wrong": right_to_wrong, "wrong_to_right": wrong_to_right},
            "p_mcnemar": mcnemar_exact(right_to_wrong, wrong_to_right)}
