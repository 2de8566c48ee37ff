"""A run in stages, each callable on its own (the CLI calls them in order; a sweep executor calls the same):

    plan_run(request)                -> RunPlan    every value checked, run ids known; nothing loaded
    prepare(run_plan)                -> Prepared   base model, method context, method.prepare, training mixture
    train_stage(prepared)            -> Trained    the tuned model and the training statistics
    evaluate_variant(prepared, trained, i)         one variant finalized, evaluated (target, suites, KL, probe)
    build_record(...)                -> record, its files (items, lm-eval's)   (runner.record; `bench eval` too)
    write_run(folder, record, files)               atomically: all of it or nothing (runner.record)

`run(request)` chains them and reuses finished runs. The request itself is assembled in runner.request.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forgetbench.core.budget import Budget
from forgetbench.core.console import log
from forgetbench.core.environment import versions
from forgetbench.core.errors import FieldError, UserError
from forgetbench.core.settings import EvalSettings, KLSettings
from forgetbench.core.store import stable_hash
from forgetbench.method import Method, build_method, methods
from forgetbench.runner.evaluation_plan import EvalPlan, plan_evaluations, target_and_suites
from forgetbench.runner.record import Measured, build_record, load_record, provenance, weight_change, write_run
from forgetbench.runner.request import RunRequest, RunSpec
from forgetbench.task import Target
from forgetbench.toolbox.device import rank, world_size
from forgetbench.toolbox.model_sources import bos_convention, locate, resolve_model

if TYPE_CHECKING:
    from forgetbench.method import Context
    from forgetbench.toolbox.models import ModelHandle


@dataclass
class RunPlan:
    """A checked request: the method built, the evaluations planned, one spec and folder per variant."""

    request: RunRequest
    method: Method
    variants: list[Method]
    target: Target
    eval_plan: EvalPlan
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
    evals = plan_evaluations(tgt, suite_list, request.data_dir)
    if request.train_file is not None and not Path(request.train_file).is_file():
        raise FieldError("train_file", "no such file.", value=request.train_file)
    pairs = tgt.train_pairs(request.data_dir, request.train_file)   # fails early, with a clear message, when absent
    device, dtype = request.placement.resolved()
    adds_bos, _ = bos_convention(request.model, request.placement)
    variants = method.variants()
    specs = [RunSpec(method=methods.canonical(request.method), model=request.model, target=tgt.name,
                     suites=tuple(s.name for s in suite_list), seed=request.seed, params=v.params(),
                     budget=budget.to_dict(), eval=request.eval.to_dict(), kl=asdict(request.kl),
                     data=stable_hash([evals.content_hash, pairs], 16),
                     placement={"device": device.split(":")[0], "dtype": dtype,
                                # only when given, so that every earlier run keeps its id
                                **({"model_args": dict(request.placement.model_args)}
                                   if request.placement.model_args else {}),
                                # only when the model's inputs get no BOS: a run whose model prepends one (micro)
                                # keeps its id, from when forgetbench passed lm-eval add_bos_token=True for all
                                **({} if adds_bos else {"bos": False})})
             for v in variants]
    return RunPlan(request=request, method=method, variants=variants, target=tgt, eval_plan=evals, budget=budget,
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


def measure(base: ModelHandle | None, tuned_model, tokenizer, *, eval_plan: EvalPlan, settings: EvalSettings,
            kl: KLSettings | None, data_dir: Path | None, watch: Stopwatch | None = None) -> Measured:
    """The record's metric sections for one tuned model, in three stages: target and suites per item (paired with
    the base model when given), KL(base || tuned) context-free and on the target's held-out prompts, and the
    answer-class probe (both with a base model)."""
    from forgetbench.runner import evaluation

    watch = watch or Stopwatch()
    log(f"evaluating on {', '.join(r.name for r in eval_plan.ready)}"
        + (f" (missing: {', '.join(eval_plan.missing)})" if eval_plan.missing else ""))
    metrics, items, prompts, outputs = evaluation.assess(base, tuned_model, tokenizer, eval_plan, settings)
    watch.lap("evaluate")
    if base is not None and kl is not None:
        metrics |= kl_stage(base, tuned_model, kl=kl, target=eval_plan.target, data_dir=data_dir, items=items)
        watch.lap("kl")
    if base is not None and eval_plan.target is not None:
        metrics["answer_class_shift"], rows = probe_stage(base, tuned_model, target=eval_plan.target,
                                                          suite_sections=metrics["suites"], prompts=prompts)
        items += rows
        watch.lap("probe")
    return Measured(metrics, items, outputs)


def kl_stage(base: ModelHandle, tuned_model, *, kl: KLSettings, target: Target | None, data_dir: Path | None,
             items: list[dict]) -> dict:
    """The record's KL sections: context-free (`kl`) and, with a target, on its held-out prompts (`kl_target`);
    their per-sample rows are appended to `items`."""
    from forgetbench.runner.kl import estimate

    log(f"estimating KL(base || tuned) on {kl.samples} base samples")
    sections, rows = {}, []
    sections["kl"], rows = estimate(base, tuned_model, kl)
    items += rows
    if target is not None:
        texts = target.test_prompts(data_dir)
        log(f"estimating KL(base || tuned) on {min(kl.target_prompts, len(texts))} target prompts")
        sections["kl_target"], rows = estimate(base, tuned_model, kl, target=(texts, target.chat))
        items += rows
    return sections


def probe_stage(base: ModelHandle, tuned_model, *, target: Target, suite_sections: dict,
                prompts: dict) -> tuple[dict, list[dict]]:
    """The answer-class probe: how much next-token mass moved to the target's answer class after the preserved
    suites' prompts."""
    if target.answer_class is None:
        return {"answer_class": None, "why": f"target {target.name} declares no answer class"}, []
    from forgetbench.runner.probe import answer_class_shift
    preserved = sorted({t for s in suite_sections.values() for t in s["average_over"]})
    texts = {t: [x for x in prompts[t] if x is not None] for t in preserved}
    log(f"probing next-token mass on {target.answer_class[0]} after preserved-suite prompts")
    return answer_class_shift(base.model, tuned_model, base.tokenizer, texts, target.answer_class,
                              base.start_token_id)


def evaluate_variant(prepared: Prepared, trained: Trained, index: int, *,
                     watch: Stopwatch | None = None) -> tuple[Measured, object]:
    """Finalize variant `index` from the trained model and measure it. The last variant may consume the
    trained model; earlier ones work on a copy."""
    run_plan, base = prepared.run_plan, prepared.base
    variant = run_plan.variants[index]
    if len(run_plan.variants) > 1:
        log(f"{run_plan.request.method}: variant {index + 1}/{len(run_plan.variants)}: {variant.params()}")
    last = index == len(run_plan.variants) - 1
    final = variant.finalize(trained.model if last else copy.deepcopy(trained.model), base.model)
    measured = measure(base, final, base.tokenizer, eval_plan=run_plan.eval_plan, settings=run_plan.request.eval,
                       kl=run_plan.request.kl, data_dir=run_plan.request.data_dir, watch=watch)
    measured.metrics["weight_change"] = weight_change(base.model, final)
    return measured, final


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
            provenance=provenance(code=run_plan.code, base=prepared.base, eval_plan=run_plan.eval_plan,
                                  items=measured.items, eval_settings=request.eval, data_dir=request.data_dir,
                                  include_path=request.include_path),
            sweep=request.sweep_tag)
        write(run_dir, record, files, *((final, prepared.base.tokenizer) if request.save_model else ()))
        if (report := _report(request, spec.run_id)) is not None:
            report.final(record, run_dir)
        watch.lap("write")
        results.append((record, run_dir))
    return results
