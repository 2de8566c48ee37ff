"""Evaluation through lm-eval's Python API, with per-item outcomes and a cache for base models.

Every item's outcome is kept: doc id, doc and prompt hashes (lm-eval's own), whether it was correct,
and its score. Aggregates are derived from items, never stored on their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from forgetbench.core.errors import UserError
from forgetbench.core.settings import EvalSettings, subset_indices
from forgetbench.core.store import JsonCache, hash_files, locked, stable_hash
from forgetbench.records.aggregate import sections
from forgetbench.runner.reasoning import evaluate_generation
from forgetbench.task import Resolved
from forgetbench.toolbox import verify
from forgetbench.toolbox.models import tokenizer_adds_bos

if TYPE_CHECKING:
    from forgetbench.runner.evaluation_plan import EvalPlan

def _quiet() -> None:
    for name in ("lm_eval", "lm-eval", "datasets", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_lm_eval(model, tokenizer, tasks: list[Resolved],
                settings: EvalSettings) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """Evaluate an in-memory model on lm-eval tasks; returns task name -> per-item outcomes, and task name -> the
    part of lm-eval's own output (simple_evaluate's results, configs, samples) that is that task's.

    A task may be an lm-eval group (MMLU on the hub: 57 subject tasks under 4 subgroups): its items are its
    leaf tasks' items in leaf-name order, numbered consecutively, and --limit draws from all of them at once.

    Inputs begin with a BOS token exactly when the model's own convention says (ModelHandle.adds_bos, which the
    tokenizer is made to follow when the model loads), as training examples and KL's prompts do: HFLM passes its
    add_bos_token on as the tokenizer's add_special_tokens, so True would add nothing where the tokenizer adds no
    BOS (SmolLM2) yet reads as if it did, and lm-eval loading the same tokenizer by path with add_bos_token=True
    would prepend one (transformers rebuilds its post-processor)."""
    _quiet()
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    includes = [str(r.include) for r in tasks if r.include is not None]
    builtin = any(r.include is None for r in tasks)
    tm = TaskManager(include_path=list(dict.fromkeys(includes)) or None, include_defaults=builtin)
    missing = [r.name for r in tasks if r.name not in tm.all_tasks]
    if missing:  # a YAML that fails to parse is skipped by lm-eval at DEBUG level; never let that pass
        raise RuntimeError(f"lm-eval could not load the task definitions {missing} from {includes}")
    leaves = {r.name: _leaves(tm, r.name) for r in tasks}     # task -> {leaf name: (lm-eval Task, item count)}
    _refuse_shared_leaves(leaves)
    chosen = {}                                                 # leaf -> its drawn items (None: all of them)
    for r in tasks:
        sizes = {leaf: n for leaf, (_, n) in leaves[r.name].items()}
        chosen |= _leaf_samples(subset_indices(r.task.subset_key, sum(sizes.values()),
                                               settings.limit_for(r.task.name)), sizes)
    samples = {leaf: idx for leaf, idx in chosen.items() if idx is not None} or None   # absent: every item
    with contextlib.redirect_stdout(sys.stderr):   # lm-eval prints (e.g. the auto batch size) to stdout
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size,
                  device=str(next(model.parameters()).device), add_bos_token=tokenizer_adds_bos(tokenizer))
        run = [task for r in tasks for leaf, (task, _) in leaves[r.name].items() if leaf in chosen]
        res = lm_eval.simple_evaluate(model=lm, tasks=run, task_manager=tm, samples=samples,
                                      num_fewshot=settings.num_fewshot, log_samples=True, bootstrap_iters=0,
                                      random_seed=0, numpy_random_seed=1234, torch_random_seed=1234,
                                      fewshot_random_seed=1234, verbosity="ERROR")
    out = {}
    for r in tasks:
        t, items, offset = r.task, [], 0
        for leaf, (_, n) in leaves[r.name].items():
            records = [x for x in res["samples"].get(leaf, []) if x["filter"] == t.filter]
            if leaf in chosen and not records:
                raise RuntimeError(f"lm-eval produced no records for task {leaf} with filter {t.filter!r}")
            items += [_item(x, t.metric, offset) for x in records]
            offset += n
        out[r.name] = sorted(items, key=lambda x: x["doc_id"])
    return out, {r.name: _lm_eval_output(res, [leaf for leaf in leaves[r.name] if leaf in chosen]) for r in tasks}


OUTPUT_SECTIONS = ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "samples")


def _lm_eval_output(res: dict, leaves: list[str]) -> dict:
    """simple_evaluate's output restricted to one task's leaves, as JSON (what EvaluationTracker writes)."""
    from lm_eval.utils import handle_non_serializable
    part = {k: {leaf: res[k][leaf] for leaf in leaves if leaf in res.get(k, {})} for k in OUTPUT_SECTIONS}
    return json.loads(json.dumps(part, default=handle_non_serializable))


def generation_output(r: Resolved, items: list[dict], settings: EvalSettings) -> dict:
    """A task forgetbench scores itself (runner/reasoning.py) in lm-eval's output shape, so the same tools read it:
    one sample per item with its prompt, responses, reference and score."""
    metric, kind = r.task.metric, ("loglikelihood" if r.task.scoring == "likelihood" else "generate_until")
    gen = {"max_gen_toks": settings.max_new_tokens, "temperature": settings.temperature,
           "repeats": settings.samples_per_problem}
    samples = [{"doc_id": it["doc_id"], "doc_hash": it["doc_hash"], "prompt_hash": it["prompt_hash"],
                "target": str(it.get("reference", "")), "target_hash": stable_hash(str(it.get("reference", "")), 16),
                "arguments": [[it.get("prompt", ""), gen]], "resps": [it.get("completions", [])],
                "filtered_resps": it.get("completions", [it["score"]]), "filter": "none", "metrics": [metric],
                metric: it["score"]} for it in items]
    mean = sum(it["score"] for it in items) / len(items)
    return {"results": {r.name: {"alias": r.name, f"{metric},none": mean}},
            "configs": {r.name: {"task": r.name, "output_type": kind, "metric_list": [{"metric": metric}],
                                 "scored_by": "forgetbench (runner/reasoning.py), not lm-eval", "generation": gen}},
            "versions": {r.name: None}, "n-shot": {r.name: 0}, "higher_is_better": {r.name: {metric: True}},
            "n-samples": {r.name: {"original": len(items), "effective": len(items)}}, "samples": {r.name: samples}}


def _leaves(tm, name: str) -> dict:
    """The lm-eval tasks `name` stands for (itself, or a group's leaf tasks, by name) with their item counts."""
    tasks = tm.load([name])["tasks"]
    return {leaf: (tasks[leaf], len(list(tasks[leaf].eval_docs))) for leaf in sorted(tasks)}


def _refuse_shared_leaves(leaves: dict[str, dict]) -> None:
    """lm-eval runs a task name once: two requested tasks that share a leaf (a group and one of its subjects)
    would get one draw of items between them."""
    owner: dict[str, str] = {}
    for name, parts in leaves.items():
        for leaf in parts:
            if leaf in owner:
                raise UserError(f"Tasks {owner[leaf]} and {name} both contain lm-eval's {leaf}: evaluate them in "
                                "separate runs.")
            owner[leaf] = name


def _leaf_samples(keep: list[int] | None, sizes: dict[str, int]) -> dict[str, list[int] | None]:
    """Indices into the concatenation of the leaves (None: all) as per-leaf indices (None: all of that leaf);
    a leaf with none of its items drawn is left out."""
    if keep is None:
        return dict.fromkeys(sizes)
    out, offset = {}, 0
    for leaf, n in sizes.items():
        idx = [i - offset for i in keep if offset <= i < offset + n]
        if idx:
            out[leaf] = idx
        offset += n
    return out


def _item(record: dict, metric: str, offset: int = 0) -> dict:
    score = float(record[metric])
    return {"doc_id": offset + int(record["doc_id"]), "doc_hash": record["doc_hash"],
            "prompt_hash": record["prompt_hash"], "correct": bool(score >= 0.5 if math.isfinite(score) else False),
            "score": score, "prompt": record["arguments"][0][0]}


def evaluate(model, tokenizer, tasks: list[Resolved], settings: EvalSettings,
             cache_fingerprint: str | None = None) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """Per-item outcomes for each task, and each task's output in lm-eval's shape (lm-eval's own for its tasks).
    With `cache_fingerprint` (a base model's content hash), both are cached per task and reused by every run on
    that base. Freshly evaluated items also carry their prompt text ("prompt", for the answer-class probe); it is
    never cached or stored in items (lm-eval's samples keep the prompts)."""
    cache = JsonCache("evals")
    # the verifiers' code is part of what an outcome is: a fixed check must not reuse outcomes of the old one
    checks = hash_files([Path(verify.__file__)], Path(verify.__file__).parent)
    keys = {r.name: stable_hash({"model": cache_fingerprint, "task": r.task.name, "run_as": r.name,
                                      "metric": r.task.metric, "filter": r.task.filter, "checks": checks,
                                      "content": r.content_hash, "settings": settings.for_task(r.task)}, 24)
            for r in tasks}
    # Processes sharing a cache evaluate a base model once: one holds the lock, the others then read its entries.
    with locked(cache.path(stable_hash(sorted(keys.values()), 24))) if cache_fingerprint else contextlib.nullcontext():
        return _evaluate(model, tokenizer, tasks, settings, cache=cache if cache_fingerprint else None, keys=keys)


def _evaluate(model, tokenizer, tasks: list[Resolved], settings: EvalSettings, *, cache: JsonCache | None,
              keys: dict[str, str]) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    out: dict[str, list[dict]] = {}
    outputs: dict[str, dict] = {}
    todo = []
    for r in tasks:
        # the lm-eval output under its own key, so entries cached before it was kept are recomputed, not half used
        hit = cache.get(keys[r.name]) if cache else None
        lm = cache.get(f"{keys[r.name]}-lm_eval") if hit is not None else None
        if lm is not None:
            out[r.name], outputs[r.name] = hit, lm
        else:
            todo.append(r)
    fresh: dict[str, list[dict]] = {}
    ll = [r for r in todo if not r.task.generative]
    if ll:
        items, lm = run_lm_eval(model, tokenizer, ll, settings)
        fresh |= items
        outputs |= lm
    gen = [r for r in todo if r.task.generative]
    if gen:
        items = evaluate_generation(model, tokenizer, gen, settings)
        fresh |= items
        outputs |= {r.name: generation_output(r, items[r.name], settings) for r in gen}
    for name, items in fresh.items():
        if cache:
            cache.put(keys[name], [{k: v for k, v in it.items() if k != "prompt"} for it in items])
            cache.put(f"{keys[name]}-lm_eval", outputs[name])
        out[name] = items
    return out, outputs


def assess(base, tuned_model, tokenizer, plan: EvalPlan,
           settings: EvalSettings) -> tuple[dict, list[dict], dict, dict[str, dict]]:
    """Evaluate the tuned model (and the base model, cached by its fingerprint, when given) on the plan's target
    and suites. Returns the record's `target` and `suites` sections, the per-item outcomes of both models, the
    tuned model's prompt texts per task (for the answer-class probe; never stored), and per model ("base",
    "tuned") each task's output in lm-eval's shape."""
    tuned_items, outputs = evaluate(tuned_model, tokenizer, plan.ready, settings)
    outputs = {"tuned": outputs}
    base_items = None
    if base is not None:
        base_items, outputs["base"] = evaluate(base.model, base.tokenizer, plan.ready, settings, base.fingerprint)
    prompts = {task: [it.pop("prompt", None) for it in rows] for task, rows in tuned_items.items()}
    for rows in (base_items or {}).values():
        for it in rows:
            it.pop("prompt", None)
    items = [{"model": who, "task": task, **it}
             for who, res in (("base", base_items), ("tuned", tuned_items)) if res
             for task, rows in res.items() for it in rows]
    # Results go under the name of the task actually run: a registered task that ran as lm-eval's own (hub)
    # definition is a different benchmark from its local variant (e.g. fb_medqa has 5 options, medqa_4options 4).
    ran = {r.task.name: r.name for r in plan.ready}
    own = plan.target_tasks
    # a preserved suite never counts the target's own evaluation (gsm8k is in both in smollm2-cpu)
    counted = {s.name: [ran[t.name] for t in s.tasks if t.name not in plan.missing and t.name not in own]
               for s in plan.suites}
    suites = {s.name: {"average_over": counted[s.name],
                       "missing": {t.name: plan.missing[t.name] for t in s.tasks if t.name in plan.missing},
                       "excluded_as_target": [ran[t.name] for t in s.tasks if t.name in own]}
              for s in plan.suites}
    target = (plan.target.name, [ran[t.name] for t in plan.target.evals]) if plan.target else None
    out = sections(items, metric={r.name: r.task.metric for r in plan.ready}, target=target, suites=suites)
    return out, items, prompts, outputs


def lm_eval_files(outputs: dict[str, dict[str, dict]], models: dict[str, str],
                  settings: EvalSettings) -> dict[str, str]:
    """Each model's evaluation as lm-eval writes it (results_<date>.json and samples_<task>_<date>.jsonl, through
    lm-eval's EvaluationTracker), by path: lm_eval/<base|tuned>/<model>/... `models`: who -> model name."""
    from lm_eval.loggers import EvaluationTracker

    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for who, per_task in sorted(outputs.items()):
            tracker = EvaluationTracker(output_path=str(Path(tmp) / who))
            tracker.general_config_tracker.log_experiment_args(
                model_source="hf", model_args=f"pretrained={models[who]}", system_instruction=None,
                chat_template=None, fewshot_as_multiturn=False)
            merged = {k: {n: v for task in per_task.values() for n, v in task[k].items()} for k in OUTPUT_SECTIONS}
            samples = json.loads(json.dumps(merged.pop("samples")))   # the tracker rewrites samples in place
            config = {"model": "hf", "model_args": f"pretrained={models[who]}", "batch_size": settings.batch_size,
                      "limit": settings.limit, "bootstrap_iters": 0, "random_seed": 0, "numpy_seed": 1234,
                      "torch_seed": 1234, "fewshot_seed": 1234}
            tracker.save_results_aggregated(results={**merged, "config": config}, samples=samples)
            for name, rows in samples.items():
                tracker.save_results_samples(task_name=name, samples=rows)
            written = sorted(p for p in Path(tmp, who).rglob("*") if p.is_file())
            # the tracker logs a failure and carries on: a missing file is found here instead
            if len([p for p in written if p.name.startswith("samples_")]) != len(samples) or \
                    not any(p.name.startswith("results_") for p in written):
                raise RuntimeError(f"lm-eval's EvaluationTracker did not write every file for {who} ({written})")
            files |= {f"lm_eval/{p.relative_to(tmp)}": p.read_text(encoding="utf-8") for p in written}
    return files
