"""The flow of a run: spec -> base model -> method data -> training -> finalize -> evaluation -> KL -> record."""

from __future__ import annotations

import copy
import hashlib
import math
import platform
import subprocess
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
from bench.models import Placement, resolve_model
from bench.schema import SCHEMA_VERSION, items_hash, items_text, validate
from bench.store import atomic_dir, atomic_write_json, read_json, stable_hash
from bench.task import Resolved, Suite, Target, resolve, suites, targets

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
    data: str = ""                                   # hash of the training data and every evaluated task's files
    placement: dict = field(default_factory=dict)    # device and dtype

    @property
    def run_id(self) -> str:
        return f"{self.method}-s{self.seed}-{stable_hash(asdict(self), 12)}"


def _log(msg: str) -> None:
    print(f"forgetbench: {msg}", file=sys.stderr, flush=True)


def project_commit() -> str | None:
    """The git commit of the forgetbench source that ran (with "-dirty" for uncommitted changes), or None
    outside a git checkout (an installed wheel)."""
    root = Path(__file__).resolve().parents[1]
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.split()
        if Path(top[0]).resolve() != root:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None
    return top[1] + ("-dirty" if dirty else "")


def versions() -> dict:
    import lm_eval
    import transformers
    from importlib.metadata import version
    return {"forgetbench": version("forgetbench"), "commit": project_commit(), "torch": torch.__version__,
            "transformers": transformers.__version__, "lm_eval": lm_eval.__version__,
            "python": platform.python_version()}


def resolve_target_and_suites(target: str | None, suite_names: list[str] | None) -> tuple[Target | None, list[Suite]]:
    tgt = targets.get(target) if target else None
    names = list(suite_names) if suite_names else list(tgt.default_suites if tgt else ())
    if not names and tgt is None:
        raise UserError("Nothing to evaluate: give --suite or --target.")
    return tgt, [suites.get(n) for n in dict.fromkeys(names)]


@dataclass
class Plan:
    """The evaluations of a run after checking which tasks can run here."""

    target: Target | None
    suites: list[Suite]
    ready: list[Resolved]
    missing: dict[str, str]

    @property
    def target_tasks(self) -> set[str]:
        """The target's own evaluations: never counted in a preserved suite."""
        return {t.name for t in self.target.evals} if self.target else set()

    @property
    def content_hash(self) -> str:
        return stable_hash(sorted((r.task.name, r.name, r.content_hash) for r in self.ready), 16)


def plan(target: Target | None, suite_list: list[Suite], data_dir: Path | None) -> Plan:
    """Resolve every evaluation; the target's must all be available, a suite needs at least one task."""
    tasks = ([(t, target.include_path) for t in target.evals] if target else []) + \
            [(t, s.include_path) for s in suite_list for t in s.tasks]
    ready, missing = resolve(tasks, data_dir)
    if target:
        absent = {t.name: missing[t.name] for t in target.evals if t.name in missing}
        if absent:
            raise UserError(f"Target {target.name}'s evaluation cannot run: "
                            + "; ".join(f"{k}: {v}" for k, v in absent.items()))
    p = Plan(target, suite_list, ready, missing)
    for s in suite_list:
        if all(t.name in missing or t.name in p.target_tasks for t in s.tasks):
            raise UserError(f"Suite {s.name}: none of its tasks can run here ("
                            + "; ".join(f"{t.name}: {missing.get(t.name, 'the target itself')}" for t in s.tasks)
                            + ").")
    return p


def assess(base, tuned_model, tokenizer, p: Plan, settings: EvalSettings,
           kl: KLSettings | None) -> tuple[dict, list[dict]]:
    """Evaluate the tuned model (and the base model, cached) on target and suites; KL if a base is given.

    Returns the record's metric sections and the per-item outcomes of both models."""
    _log(f"evaluating on {', '.join(r.name for r in p.ready)}"
         + (f" (missing: {', '.join(p.missing)})" if p.missing else ""))
    tuned_items = evaluation.evaluate(tuned_model, tokenizer, p.ready, settings)
    base_items = (evaluation.evaluate(base.model, base.tokenizer, p.ready, settings, base.fingerprint)
                  if base is not None else None)
    prompts = {task: [it.pop("prompt", None) for it in rows] for task, rows in tuned_items.items()}
    for rows in (base_items or {}).values():
        for it in rows:
            it.pop("prompt", None)
    items = [{"model": who, "task": task, **it}
             for who, res in (("base", base_items), ("tuned", tuned_items)) if res
             for task, rows in res.items() for it in rows]
    metric = {r.task.name: r.task.metric for r in p.ready}

    def section(task_name: str) -> dict:
        if base_items is None:
            out = {"tuned": evaluation.accuracy(tuned_items[task_name]), "n": len(tuned_items[task_name])}
        else:
            out = evaluation.compare(base_items[task_name], tuned_items[task_name], task_name)
        return {"metric": metric[task_name], **out}

    out: dict = {}
    if p.target:
        per_task = {t.name: section(t.name) for t in p.target.evals}
        head = p.target.evals[0].name
        out["target"] = {"name": p.target.name, "task": head, **per_task[head], "tasks": per_task}
    out["suites"] = {}
    own = p.target_tasks
    for s in p.suites:
        # a preserved suite never counts the target's own evaluation (gsm8k is in both in smollm2-cpu)
        per_task = {t.name: section(t.name) for t in s.tasks if t.name not in p.missing and t.name not in own}
        agg = {k: sum(v[k] for v in per_task.values()) / len(per_task)
               for k in ("base", "tuned", "delta") if all(k in v for v in per_task.values())}
        if all("delta_se" in v for v in per_task.values()):    # the mean of independent task deltas
            agg["delta_se"] = math.sqrt(sum(v["delta_se"] ** 2 for v in per_task.values())) / len(per_task)
        if all("flips" in v for v in per_task.values()):       # McNemar on the flips pooled over tasks
            agg |= evaluation.flip_test(*(sum(v["flips"][k] for v in per_task.values())
                                          for k in ("right_to_wrong", "wrong_to_right")))
        out["suites"][s.name] = {**agg, "n": sum(v["n"] for v in per_task.values()),
                                 "average_over": sorted(per_task),
                                 "missing": {t.name: p.missing[t.name] for t in s.tasks if t.name in p.missing},
                                 "excluded_as_target": sorted(t.name for t in s.tasks if t.name in own),
                                 "tasks": per_task}
    if base is not None and kl is not None:
        _log(f"estimating KL(base || tuned) on {kl.samples} base samples")
        out["kl"] = kl_estimate(base, tuned_model, kl)
    if base is not None and p.target is not None:
        out["answer_class_shift"] = _probe(base, tuned_model, tokenizer, p, out["suites"], prompts)
    return out, items


def _probe(base, tuned_model, tokenizer, p: Plan, suite_sections: dict, prompts: dict) -> dict:
    if p.target.answer_class is None:
        return {"answer_class": None, "why": f"target {p.target.name} declares no answer class"}
    from bench.probe import answer_class_shift
    preserved = sorted({t for s in suite_sections.values() for t in s["average_over"]})
    texts = {t: [x for x in prompts[t] if x is not None] for t in preserved}
    _log(f"probing next-token mass on {p.target.answer_class[0]} after preserved-suite prompts")
    return answer_class_shift(base.model, tuned_model, tokenizer, texts, p.target.answer_class, base.start_token_id)


def write_run(run_dir: Path, record: dict, text: str, model=None, tokenizer=None) -> None:
    """Record, per-item file (and the tuned model, if asked) land together or not at all."""
    with atomic_dir(run_dir) as tmp:
        if model is not None:
            model.save_pretrained(tmp / "model")
            tokenizer.save_pretrained(tmp / "model")
        (tmp / record["items"]).write_text(text)
        atomic_write_json(tmp / "result.json", record)


def load_record(run_dir: Path) -> dict:
    path = Path(run_dir) / "result.json"
    record = read_json(path, "result record")
    validate(record, path)
    return record


def run(method_name: str, overrides: dict[str, str], model: str = "micro", target: str | None = None,
        suite_names: list[str] | None = None, seed: int = 0, out: Path = Path("runs"),
        eval_settings: EvalSettings = EvalSettings(), kl: KLSettings = KLSettings(),
        budget: dict[str, str] | None = None, save_model: bool = False, data_dir: Path | None = None,
        train_file: Path | None = None, placement: Placement = Placement()) -> list[tuple[dict, Path]]:
    """Run one (method, model, target, suites, seed): train once, then evaluate every variant the method
    asks for (one for most methods; WiSE-FT's alpha grid). Returns (record, run folder) per variant;
    finished ones are reused."""
    from transformers import set_seed

    from bench.method import Context, build_method, trainable_count
    from bench.training import train, trainable_names

    start = time.perf_counter()
    code = versions()              # before any work: the commit whose code is running
    method = build_method(method_name, overrides)
    tgt, suite_list = resolve_target_and_suites(target or DEFAULT_TARGET, suite_names)
    budget_ = tgt.budget.updated(budget or {})
    p = plan(tgt, suite_list, data_dir)
    if train_file is not None and not Path(train_file).is_file():
        raise UserError(f"--train-file {train_file}: no such file.")
    pairs = tgt.train_pairs(data_dir, train_file)          # fails early, with a clear message, when absent
    device, dtype = placement.resolved()
    variants = method.variants()
    specs = [RunSpec(method_name, model, tgt.name, tuple(s.name for s in suite_list), seed, v.params(),
                     budget_.to_dict(), eval_settings.to_dict(), asdict(kl), stable_hash([p.content_hash, pairs], 16),
                     {"device": device.split(":")[0], "dtype": str(dtype).removeprefix("torch.")}) for v in variants]
    dirs = [Path(out) / s.run_id for s in specs]
    if all((d / "result.json").exists() for d in dirs):
        for d in dirs:
            _log(f"already done: {d}")
        return [(load_record(d), d) for d in dirs]

    _log(f"loading {model}")
    base = resolve_model(model, placement)
    ctx = Context(base, tgt, seed, pairs, data_dir, budget_.examples, eval_settings.backend)
    set_seed(seed)
    _log(f"{method_name}: building the training mixture")
    mixture = method.mixture(ctx)
    rows = [r for part in mixture.values() for r in part]
    if not rows:
        raise UserError(f"Method {method_name!r} produced no training data.")
    tuned = base.trainable_copy()
    try:
        tuned = method.trainable(tuned) or tuned
    except ValueError as e:
        raise UserError(f"Method {method_name!r} on {model}: {e}.") from None
    n_trainable = trainable_count(tuned)
    if n_trainable == 0:
        raise UserError(f"Method {method_name!r} leaves no parameter of {model} trainable (its selection matches "
                        "none of this model's parameter names).")
    trains = trainable_names(tuned)
    n_base = sum(p.numel() for p in base.model.parameters())
    set_seed(seed)
    _log(f"{method_name}: training on {len(rows)} examples ({n_trainable / n_base:.1%} of the parameters train)")
    stats = train(tuned, rows, lambda m, b: method.loss(m, b, ctx), budget_, seed, base.tokenizer.pad_token_id)
    gen_backend = {"backend": eval_settings.backend}
    if eval_settings.backend == "vllm":
        from importlib.metadata import version
        gen_backend["vllm"] = version("vllm")
    results = []
    for i, (variant, spec, run_dir) in enumerate(zip(variants, specs, dirs)):
        if (run_dir / "result.json").exists():
            results.append((load_record(run_dir), run_dir))
            continue
        if len(variants) > 1:
            _log(f"{method_name}: variant {i + 1}/{len(variants)}: {variant.params()}")
        final = variant.finalize(copy.deepcopy(tuned) if i < len(variants) - 1 else tuned, base.model)
        metrics, items = assess(base, final, base.tokenizer, p, eval_settings, kl)
        text = items_text(items)
        record = {
            "schema_version": SCHEMA_VERSION, "kind": "run", "run_id": spec.run_id, "spec": asdict(spec),
            "provenance": {**code, "base_fingerprint": base.fingerprint,
                           "device": "cpu" if base.device == "cpu" else torch.cuda.get_device_name(),
                           "dtype": base.dtype, "generation": gen_backend,
                           "data_dir": str(data_dir) if data_dir else None,
                           "tasks": {r.task.name: {"run_as": r.name, "content_hash": r.content_hash,
                                                   "items_hash": items_hash([i for i in items if i["task"] == r.task.name
                                                                             and i["model"] == "tuned"])}
                                     for r in p.ready},
                           "start_token": {"id": base.start_token_id, "why": base.start_token_reason}},
            **metrics,
            "training": {**stats, "trainable_parameters": n_trainable, "trainable_share": n_trainable / n_base,
                         "trainable_tensors": trains, "shared_with": [s.run_id for s in specs if s is not spec],
                         "target_pairs": len(ctx.target_pairs),
                         "mixture": {k: {"examples": len(v), "tokens": sum(len(r["input_ids"]) for r in v)}
                                     for k, v in mixture.items()}, **ctx.notes},
            "items": "items.jsonl",
            "items_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "wall_seconds": round(time.perf_counter() - start, 2),
        }
        write_run(run_dir, record, text, *((final, base.tokenizer) if save_model else ()))
        results.append((record, run_dir))
    return results
