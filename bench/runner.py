"""The flow of a run: spec -> base model -> method data -> training -> finalize -> evaluation -> KL -> record."""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from bench import evaluation
from bench.errors import UserError
from bench.evaluation import EvalSettings
from bench.kl import KLSettings
from bench.kl import estimate as kl_estimate
from bench.store import atomic_dir, atomic_write_json, read_json, stable_hash
from bench.task import Suite, Target, suites, targets

SCHEMA_VERSION = 1
DEFAULT_TARGET = "micro-cipher"


@dataclass(frozen=True)
class RunSpec:
    method: str
    model: str = "micro"
    target: str = DEFAULT_TARGET
    suites: tuple[str, ...] = ()
    seed: int = 0
    params: dict = field(default_factory=dict)       # the method's full hyperparameters (defaults filled in)
    budget: dict = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    kl: dict = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return f"{self.method}-s{self.seed}-{stable_hash(asdict(self), 12)}"


def _log(msg: str) -> None:
    print(f"forgetbench: {msg}", file=sys.stderr, flush=True)


def versions() -> dict:
    import lm_eval
    import transformers
    from importlib.metadata import version
    return {"forgetbench": version("forgetbench"), "torch": torch.__version__,
            "transformers": transformers.__version__, "lm_eval": lm_eval.__version__,
            "python": platform.python_version()}


def resolve_target_and_suites(target: str | None, suite_names: list[str] | None) -> tuple[Target | None, list[Suite]]:
    tgt = targets.get(target) if target else None
    names = list(suite_names) if suite_names else list(tgt.default_suites if tgt else ())
    if not names and tgt is None:
        raise UserError("Nothing to evaluate: give --suite or --target.")
    return tgt, [suites.get(n) for n in dict.fromkeys(names)]


def assess(base, tuned_model, tokenizer, target: Target | None, suite_list: list[Suite],
           settings: EvalSettings, kl: KLSettings | None) -> tuple[dict, list[dict]]:
    """Evaluate the tuned model (and the base model, cached) on target and suites; KL if a base is given.

    Returns the record's metric sections and the per-item outcomes of both models."""
    tasks = ([(target.eval, target.include_path)] if target else []) + \
            [(t, s.include_path) for s in suite_list for t in s.tasks]
    _log(f"evaluating on {', '.join(t.name for t, _ in tasks)}")
    tuned_items = evaluation.evaluate(tuned_model, tokenizer, tasks, settings)
    base_items = (evaluation.evaluate(base.model, base.tokenizer, tasks, settings, base.fingerprint)
                  if base is not None else None)
    items = [{"model": who, "task": task, **it}
             for who, res in (("base", base_items), ("tuned", tuned_items)) if res
             for task, rows in res.items() for it in rows]

    def section(task_name: str) -> dict:
        if base_items is None:
            return {"tuned": evaluation.accuracy(tuned_items[task_name]), "n": len(tuned_items[task_name])}
        return evaluation.compare(base_items[task_name], tuned_items[task_name], task_name)

    out: dict = {}
    if target:
        out["target"] = {"name": target.name, "task": target.eval.name, **section(target.eval.name)}
    out["suites"] = {}
    for s in suite_list:
        per_task = {t.name: section(t.name) for t in s.tasks}
        agg = {k: sum(v[k] for v in per_task.values()) / len(per_task)
               for k in ("base", "tuned", "delta") if all(k in v for v in per_task.values())}
        out["suites"][s.name] = {**agg, "n": sum(v["n"] for v in per_task.values()),
                                 "average_over": sorted(per_task), "tasks": per_task}
    if base is not None and kl is not None:
        _log(f"estimating KL(base || tuned) on {kl.samples} base samples")
        out["kl"] = kl_estimate(base, tuned_model, kl)
    return out, items


def write_run(run_dir: Path, record: dict, items: list[dict], model=None, tokenizer=None) -> None:
    """Record, items (and the tuned model, if asked) land together or not at all."""
    with atomic_dir(run_dir) as tmp:
        if model is not None:
            model.save_pretrained(tmp / "model")
            tokenizer.save_pretrained(tmp / "model")
        (tmp / "items.jsonl").write_text("".join(json.dumps(i, sort_keys=True) + "\n" for i in items))
        atomic_write_json(tmp / "result.json", record)


def load_record(run_dir: Path) -> dict:
    return read_json(Path(run_dir) / "result.json", "result record")


def run(method_name: str, overrides: dict[str, str], model: str = "micro", target: str | None = None,
        suite_names: list[str] | None = None, seed: int = 0, out: Path = Path("runs"),
        eval_settings: EvalSettings = EvalSettings(), kl: KLSettings = KLSettings(),
        budget: dict[str, str] | None = None, save_model: bool = False) -> tuple[dict, Path]:
    """Run one (method, model, target, suites, seed); returns (record, run folder). Reuses a finished run."""
    from transformers import set_seed

    from bench.method import Context, build_method
    from bench.models import resolve_model
    from bench.training import train

    start = time.perf_counter()
    method = build_method(method_name, overrides)
    tgt, suite_list = resolve_target_and_suites(target or DEFAULT_TARGET, suite_names)
    budget_ = tgt.budget.updated(budget or {})
    spec = RunSpec(method_name, model, tgt.name, tuple(s.name for s in suite_list), seed, method.params(),
                   budget_.to_dict(), eval_settings.to_dict(), asdict(kl))
    run_dir = Path(out) / spec.run_id
    if (run_dir / "result.json").exists():
        _log(f"already done: {run_dir}")
        return load_record(run_dir), run_dir

    base = resolve_model(model)
    ctx = Context(base, tgt, seed)
    set_seed(seed)
    _log(f"{method_name}: building the training mixture")
    mixture = method.mixture(ctx)
    rows = [r for part in mixture.values() for r in part]
    if not rows:
        raise UserError(f"Method {method_name!r} produced no training data.")
    tuned = base.trainable_copy()
    method.trainable(tuned)
    set_seed(seed)
    _log(f"{method_name}: training on {len(rows)} examples")
    stats = train(tuned, rows, lambda m, b: method.loss(m, b, ctx), budget_, seed, base.tokenizer.pad_token_id)
    tuned = method.finalize(tuned, base.model)
    n_trainable = sum(p.numel() for p in tuned.parameters() if p.requires_grad)
    metrics, items = assess(base, tuned, base.tokenizer, tgt, suite_list, eval_settings, kl)
    record = {
        "schema_version": SCHEMA_VERSION, "kind": "run", "run_id": spec.run_id, "spec": asdict(spec),
        "provenance": {**versions(), "base_fingerprint": base.fingerprint, "device": "cpu" if not
                       torch.cuda.is_available() else torch.cuda.get_device_name(),
                       "dtype": str(next(tuned.parameters()).dtype).removeprefix("torch."),
                       "start_token": {"id": base.start_token_id, "why": base.start_token_reason}},
        **metrics,
        "training": {**stats, "trainable_parameters": n_trainable,
                     "mixture": {k: {"examples": len(v), "tokens": sum(len(r["input_ids"]) for r in v)}
                                 for k, v in mixture.items()}, **ctx.notes},
        "items": "items.jsonl",
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    write_run(run_dir, record, items, *((tuned, base.tokenizer) if save_model else ()))
    return record, run_dir
