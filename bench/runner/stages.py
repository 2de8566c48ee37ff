"""A run in stages, each callable on its own (the CLI calls them in order; a sweep executor calls the same):

    plan_run(request)                -> RunPlan    every value checked, run ids known; nothing loaded
    prepare(run_plan)                -> Prepared   base model, method context, method.prepare, training mixture
    train_stage(prepared)            -> Trained    the tuned model and the training statistics
    evaluate_variant(prepared, trained, i)         one variant finalized, evaluated (target, suites, KL, probe)
    build_record(...)                -> record, its files (items, lm-eval's)   (shared with `bench eval`)
    write_run(folder, record, files)               atomically: all of it or nothing

`run(request)` chains them and reuses finished runs.
"""

from __future__ import annotations

import copy
import hashlib
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from forgetbench.core import threads
from forgetbench.core.budget import Budget
from forgetbench.core.environment import versions
from forgetbench.core.errors import UserError
from forgetbench.core.settings import EvalSettings, KLSettings
from forgetbench.core.store import atomic_dir, atomic_write_json, stable_hash
from forgetbench.method import Method, build_method, methods
from forgetbench.records.schema import SCHEMA_VERSION, items_hash, items_text, load_run_folder
from forgetbench.runner.evaluation_plan import Plan, plan, target_and_suites
from forgetbench.task import Target
from forgetbench.toolbox.device import Placement, rank, world_size
from forgetbench.toolbox.model_sources import locate, resolve_model

if TYPE_CHECKING:
    from forgetbench.method import Context
    from forgetbench.toolbox.models import ModelHandle


@dataclass(frozen=True)
class RunSpec:
    """What decides a run's numbers; its hash is the run's id."""

    method: str
    model: str
    target: str
    suites: tuple[str, ...]
    seed: int
    params: dict                    # the method's full hyperparameters (defaults filled in)
    budget: dict
    eval: dict
    kl: dict
    data: str                       # hash of the training data and every evaluated task's files
    placement: dict                 # device and dtype
    include_path: str | None = None     # lm-eval task YAMLs of one's own (--include-path)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["include_path"] is None:     # recorded only when given, so that every earlier run keeps its id
            del d["include_path"]
        return d

    @property
    def run_id(self) -> str:
        return f"{self.method}-s{self.seed}-{stable_hash(self.to_dict(), 12)}"


@dataclass(frozen=True)
class RunRequest:
    """What a caller asks for: names and settings, before anything is checked or loaded."""

    method: str
    model: str
    target: str
    suites: tuple[str, ...] = ()
    seed: int = 0
    overrides: dict = field(default_factory=dict)      # --set key=value
    budget: dict = field(default_factory=dict)         # --budget key=value (over the target's budget)
    eval: EvalSettings = EvalSettings()
    kl: KLSettings = KLSettings()
    data_dir: Path | None = None
    train_file: Path | None = None
    include_path: Path | None = None                   # lm-eval task YAMLs for --suite lm_eval:TASK
    placement: Placement = Placement()
    out: Path = Path("runs")
    save_model: bool = False
    sweep: dict | None = None                          # the sweep and configuration this run belongs to (not in
                                                       # the run id: a run is the same whichever sweep asks)
    report_to: tuple[str, ...] = ()                    # experiment trackers (runner.tracking; not in the run id)
    hub_push: str | None = None                        # a dataset repository for the finished run (neither)


@dataclass
class RunPlan:
    """A checked request: the method built, the evaluations planned, one spec and folder per variant."""

    request: RunRequest
    method: Method
    variants: list[Method]
    target: Target
    evals: Plan
    budget: Budget
    pairs: list[dict]
    specs: list[RunSpec]
    dirs: list[Path]
    code: dict                      # provenance of the code, taken when the run starts

    @property
    def done(self) -> bool:
        return all((d / "result.json").exists() for d in self.dirs)


@dataclass
class Prepared:
    run_plan: RunPlan
    base: ModelHandle
    ctx: Context
    mixture: dict[str, list[dict]]


@dataclass
class Trained:
    model: object                   # the tuned model, before finalize
    stats: dict                     # the record's training section


def log(msg: str) -> None:
    print(f"forgetbench: {msg}", file=sys.stderr, flush=True)


def plan_run(request: RunRequest) -> RunPlan:
    """Check every name and value of the request and compute its run ids, without loading a model."""
    method = build_method(request.method, request.overrides)
    locate(request.model)
    tgt, suite_list = target_and_suites(request.target, list(request.suites), request.include_path)
    if tgt.test_prompts is None:
        raise UserError(f"Target {tgt.name!r} declares no held-out prompts (test_prompts), so KL on its prompts "
                        "cannot be measured; its registration must give them.")
    budget = tgt.budget.updated(request.budget)
    processes = world_size()
    if budget.batch_size % processes:
        raise UserError(f"The batch size {budget.batch_size} does not split over {processes} processes; give a "
                        f"multiple of {processes} (--budget batch_size=N): the global batch is the budget's.")
    evals = plan(tgt, suite_list, request.data_dir)
    if request.train_file is not None and not Path(request.train_file).is_file():
        raise UserError(f"--train-file {request.train_file}: no such file.")
    pairs = tgt.train_pairs(request.data_dir, request.train_file)   # fails early, with a clear message, when absent
    device, dtype = request.placement.resolved()
    variants = method.variants()
    specs = [RunSpec(method=methods.canonical(request.method), model=request.model, target=tgt.name,
                     suites=tuple(s.name for s in suite_list), seed=request.seed, params=v.params(),
                     budget=budget.to_dict(), eval=request.eval.to_dict(), kl=asdict(request.kl),
                     data=stable_hash([evals.content_hash, pairs], 16),
                     placement={"device": device.split(":")[0], "dtype": dtype,
                                # only when given, so that every earlier run keeps its id
                                **({"model_args": dict(request.placement.model_args)}
                                   if request.placement.model_args else {})},
                     include_path=str(request.include_path) if request.include_path else None)
             for v in variants]
    return RunPlan(request=request, method=method, variants=variants, target=tgt, evals=evals, budget=budget,
                   pairs=pairs, specs=specs, dirs=[Path(request.out) / s.run_id for s in specs], code=versions())


def prepare(run_plan: RunPlan) -> Prepared:
    """Load the base model, give the method its context and one-off preparation, build the training mixture."""
    from forgetbench.method import Context
    from transformers import set_seed

    req = run_plan.request
    log(f"loading {req.model}")
    base = resolve_model(req.model, req.placement)
    ctx = Context(base=base, target=run_plan.target, seed=req.seed, pairs=run_plan.pairs, data_dir=req.data_dir,
                  examples=run_plan.budget.examples, backend=req.eval.backend)
    set_seed(req.seed)
    log(f"{req.method}: preparing and building the training mixture")
    run_plan.method.prepare(ctx)
    mixture = run_plan.method.mixture(ctx)
    if not any(mixture.values()):
        raise UserError(f"Method {req.method!r} produced no training data.")
    return Prepared(run_plan=run_plan, base=base, ctx=ctx, mixture=mixture)


def train_stage(prepared: Prepared) -> Trained:
    """Fine-tune a copy of the base model with the method's trainable selection and loss."""
    from forgetbench.method import trainable_count, with_trainable
    from forgetbench.toolbox.training import TrainingStats, count_passes, over_processes, train, trainable_names
    from transformers import set_seed

    run_plan, base, ctx = prepared.run_plan, prepared.base, prepared.ctx
    name, method = run_plan.request.method, run_plan.method
    try:
        tuned = with_trainable(method, base.trainable_copy())
    except ValueError as e:
        raise UserError(f"Method {name!r} on {base.name}: {e}.") from None
    n_trainable = trainable_count(tuned)
    if n_trainable == 0:
        raise UserError(f"Method {name!r} leaves no parameter of {base.name} trainable (its selection matches "
                        "none of this model's parameter names).")
    n_base = sum(p.numel() for p in base.model.parameters())
    rows = [r for part in prepared.mixture.values() for r in part]
    seed = run_plan.request.seed
    set_seed(seed)
    log(f"{name}: training on {len(rows)} examples ({n_trainable / n_base:.1%} of the parameters train)")
    with count_passes() as passes:
        stats = method.fit(tuned, ctx, run_plan.budget, seed)         # a method's own trainer, if it has one
        if stats is None:
            stats = train(tuned, rows, lambda m, b: method.loss(m, b, ctx), run_plan.budget, seed,
                          base.tokenizer.pad_token_id, report=_report(run_plan.request, run_plan.specs[0].run_id))
    if not isinstance(stats, TrainingStats):
        raise TypeError(f"Method {name!r}: fit returned {type(stats).__name__}, not "
                        "forgetbench.toolbox.training.TrainingStats (or None, for the engine's Trainer)")
    stats = stats.record()                  # the record's training section: the trainer's part, then the engine's
    summed = over_processes(list(passes.values()), mean=False)      # every process's share of each batch
    stats |= {"passes": dict(zip(passes, map(int, summed))),
              "trainable_parameters": n_trainable, "trainable_share": n_trainable / n_base,
              "trainable_tensors": trainable_names(tuned), "target_pairs": len(ctx.target_pairs),
              "mixture": {k: {"examples": len(v), "tokens": sum(len(r["input_ids"]) for r in v)}
                          for k, v in prepared.mixture.items()}}
    return Trained(model=tuned, stats=stats)


def _report(request: RunRequest, name: str):
    if not request.report_to and not request.hub_push:
        return None
    from forgetbench.runner.tracking import Report
    return Report(request.report_to, Path(request.out), name, request.hub_push)


class Stopwatch:
    """Wall seconds per named stage, for the record (where a run's time goes, and what a sweep will cost)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + now - self._last, 3)
        self._last = now


@dataclass
class Measured:
    metrics: dict                  # the record's sections: target, suites, kl, kl_target, answer_class_shift
    items: list[dict]              # their per-item rows (items.jsonl)
    outputs: dict                  # "base"/"tuned" -> task -> its output in lm-eval's shape (runner.evaluation)


def measure(base: ModelHandle | None, tuned_model, tokenizer, *, evals: Plan, settings: EvalSettings,
            kl: KLSettings | None, data_dir: Path | None, watch: Stopwatch | None = None) -> Measured:
    """The record's metric sections for one tuned model: target and suites (per item, paired with the base
    model when given), KL(base || tuned) context-free and on the target's held-out prompts, and the answer-class
    probe (with a base model)."""
    from forgetbench.runner import evaluation

    watch = watch or Stopwatch()
    log(f"evaluating on {', '.join(r.name for r in evals.ready)}"
        + (f" (missing: {', '.join(evals.missing)})" if evals.missing else ""))
    metrics, items, prompts, outputs = evaluation.assess(base, tuned_model, tokenizer, evals, settings)
    watch.lap("evaluate")
    if base is not None and kl is not None:
        from forgetbench.runner.kl import estimate
        log(f"estimating KL(base || tuned) on {kl.samples} base samples")
        metrics["kl"], rows = estimate(base, tuned_model, kl)
        items += rows
        if evals.target is not None:
            texts = evals.target.test_prompts(data_dir)
            log(f"estimating KL(base || tuned) on {min(kl.target_prompts, len(texts))} target prompts")
            metrics["kl_target"], rows = estimate(base, tuned_model, kl, target=(texts, evals.target.chat))
            items += rows
        watch.lap("kl")
    if base is not None and evals.target is not None:
        metrics["answer_class_shift"], rows = _probe(base, tuned_model, tokenizer, evals, metrics["suites"], prompts)
        items += rows
        watch.lap("probe")
    return Measured(metrics, items, outputs)


def _probe(base: ModelHandle, tuned_model, tokenizer, evals: Plan, suite_sections: dict,
           prompts: dict) -> tuple[dict, list[dict]]:
    if evals.target.answer_class is None:
        return {"answer_class": None, "why": f"target {evals.target.name} declares no answer class"}, []
    from forgetbench.runner.probe import answer_class_shift
    preserved = sorted({t for s in suite_sections.values() for t in s["average_over"]})
    texts = {t: [x for x in prompts[t] if x is not None] for t in preserved}
    log(f"probing next-token mass on {evals.target.answer_class[0]} after preserved-suite prompts")
    return answer_class_shift(base.model, tuned_model, tokenizer, texts, evals.target.answer_class, base.start_token_id)


def evaluate_variant(prepared: Prepared, trained: Trained, index: int, *,
                     watch: Stopwatch | None = None) -> tuple[dict, list[dict], object]:
    """Finalize variant `index` from the trained model and measure it. The last variant may consume the
    trained model; earlier ones work on a copy."""
    run_plan, base = prepared.run_plan, prepared.base
    variant = run_plan.variants[index]
    if len(run_plan.variants) > 1:
        log(f"{run_plan.request.method}: variant {index + 1}/{len(run_plan.variants)}: {variant.params()}")
    last = index == len(run_plan.variants) - 1
    final = variant.finalize(trained.model if last else copy.deepcopy(trained.model), base.model)
    measured = measure(base, final, base.tokenizer, evals=run_plan.evals, settings=run_plan.request.eval,
                       kl=run_plan.request.kl, data_dir=run_plan.request.data_dir, watch=watch)
    measured.metrics["weight_change"] = weight_change(base.model, final)
    return measured, final


def check_tuned_from(base, tuned, *, names: tuple[str, str]) -> None:
    """An outside checkpoint is compared with its base weight by weight: the same parameters, of the same shapes."""
    want = {n: tuple(p.shape) for n, p in base.named_parameters()}
    got = {n: tuple(p.shape) for n, p in tuned.named_parameters()}
    if want != got:
        odd = sorted(set(want) ^ set(got)) or [n for n in want if want[n] != got[n]]
        raise UserError(f"{names[0]} does not have the parameters of its base {names[1]} ({len(odd)} differ, e.g. "
                        f"{odd[0]}): it cannot have been fine-tuned from it. Pass the model it was tuned from as "
                        "--base (a PEFT adapter: --model BASE --model-args peft=ADAPTER_DIR).")


def weight_change(base, tuned) -> dict:
    """How far the final weights moved from the base: the L2 norm of the update over every parameter (float64),
    and relative to the base weights' norm (a predictor of forgetting the leaderboard compares with the KLs)."""
    import torch

    start = dict(base.named_parameters())
    update = norm = 0.0
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            b = start[name].detach().double()
            update += float(((p.detach().double() - b) ** 2).sum())
            norm += float((b ** 2).sum())
    return {"l2": update ** 0.5, "relative": (update / norm) ** 0.5, "parameters": "all"}


def provenance(*, code: dict, base: ModelHandle | None, evals: Plan, items: list[dict], eval_settings: EvalSettings,
               data_dir: Path | None) -> dict:
    """Where the numbers came from: code, base model, device, generation backend, and each task's data."""
    import torch

    backend = {"backend": eval_settings.backend}
    if eval_settings.backend == "vllm":
        from importlib.metadata import version
        backend["vllm"] = version("vllm")
    tuned = [i for i in items if i["model"] == "tuned"]
    out = {**code, "generation": backend, "data_dir": str(data_dir) if data_dir else None, "threads": threads.current(),
           "tasks": {r.name: {"registered_as": r.task.name, "content_hash": r.content_hash,
                              "items_hash": items_hash([i for i in tuned if i["task"] == r.name])}
                     for r in evals.ready}}
    if base is not None:
        out |= {"base_fingerprint": base.fingerprint, "dtype": base.dtype,
                "device": "cpu" if base.device == "cpu" else torch.cuda.get_device_name(),
                "start_token": {"id": base.start_token_id, "why": base.start_token_reason}}
    return out


def build_record(*, kind: str, run_id: str, spec: dict, provenance: dict, measured: Measured, eval_settings,
                 training: dict | None = None, wall_seconds: float | None = None,
                 stage_seconds: dict | None = None, sweep: dict | None = None) -> tuple[dict, dict[str, str]]:
    """The result record and the run folder's other files by path (the per-item file, and each model's
    evaluation as lm-eval writes it, each with its sha256 in the record): one builder for `bench run` and
    `bench eval` (kind "eval": printed only, so without lm-eval's files)."""
    from forgetbench.runner.evaluation import lm_eval_files

    text = items_text(measured.items)
    # a plain `bench eval` record is printed, never written: it has no folder for lm-eval's files
    outputs = {} if kind == "eval" else lm_eval_files(
        measured.outputs, {"base": spec["model"], "tuned": spec.get("checkpoint", run_id)}, eval_settings)
    record = {"schema_version": SCHEMA_VERSION, "kind": kind, "run_id": run_id, "spec": spec,
              "provenance": provenance, **measured.metrics, "items": "items.jsonl",
              "items_sha256": hashlib.sha256(text.encode()).hexdigest()}
    if outputs:
        record["lm_eval_outputs"] = {p: hashlib.sha256(t.encode()).hexdigest() for p, t in sorted(outputs.items())}
    if training is not None:
        record["training"] = training
    if wall_seconds is not None:
        record["wall_seconds"] = round(wall_seconds, 2)
    if stage_seconds is not None:
        record["stage_seconds"] = dict(stage_seconds)
    if sweep is not None:
        record["sweep"] = dict(sweep)
    return record, {record["items"]: text, **outputs}


def write_run(run_dir: Path, record: dict, files: dict[str, str], model=None, tokenizer=None) -> None:
    """Record, per-item file, lm-eval's files (and the tuned model, if asked) land together or not at all."""
    with atomic_dir(run_dir) as tmp:
        if model is not None:
            model.save_pretrained(tmp / "model")
            tokenizer.save_pretrained(tmp / "model")
        for path, text in files.items():
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / path).write_text(text, encoding="utf-8")
        atomic_write_json(tmp / "result.json", record)


def load_record(run_dir: Path) -> dict:
    """A finished run's record, with every check the leaderboard makes (its numbers recomputed from its items)."""
    return load_run_folder(run_dir)[0]


def run(request: RunRequest, *, write=None) -> list[tuple[dict, Path]]:
    """Run one (method, model, target, suites, seed): train once, then evaluate every variant the method
    asks for (one for most methods; WiSE-FT's alpha grid). Returns (record, run folder) per variant;
    finished ones are reused. `write(folder, record, files[, model, tokenizer])` stores each result
    (a sweep worker passes one that hands the results back to its driver instead)."""
    start = time.perf_counter()
    write = write or write_run         # looked up when called, so a test (or a caller) may replace write_run
    watch = Stopwatch()
    run_plan = plan_run(request)
    if run_plan.done:
        for d in run_plan.dirs:
            log(f"already done: {d}")
        return [(load_record(d), d) for d in run_plan.dirs]
    watch.lap("plan")
    prepared = prepare(run_plan)
    watch.lap("prepare")
    trained = train_stage(prepared)
    watch.lap("train")
    if rank() != 0:
        return []       # a distributed run: every process trains its share; the first one evaluates and writes
    results = []
    for i, (spec, run_dir) in enumerate(zip(run_plan.specs, run_plan.dirs)):
        if (run_dir / "result.json").exists():
            results.append((load_record(run_dir), run_dir))
            continue
        measured, final = evaluate_variant(prepared, trained, i, watch=watch)
        training = {**trained.stats, "shared_with": [s.run_id for s in run_plan.specs if s is not spec],
                    **prepared.ctx.notes}
        record, files = build_record(
            kind="run", run_id=spec.run_id, spec=spec.to_dict(), measured=measured, eval_settings=request.eval,
            training=training, wall_seconds=time.perf_counter() - start, stage_seconds=watch.seconds,
            provenance=provenance(code=run_plan.code, base=prepared.base, evals=run_plan.evals,
                                  items=measured.items, eval_settings=request.eval, data_dir=request.data_dir),
            sweep=request.sweep)
        write(run_dir, record, files, *((final, prepared.base.tokenizer) if request.save_model else ()))
        if (report := _report(request, spec.run_id)) is not None:
            report.final(record, run_dir)
        watch.lap("write")
        results.append((record, run_dir))
    return results
