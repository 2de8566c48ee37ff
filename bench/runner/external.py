"""`bench eval`: a checkpoint fine-tuned anywhere (TRL, one's own loop), evaluated on a track's items with the
track's settings, against the model it was tuned from when given; with `out`, kept as a run folder the
leaderboard shows as an "external" row beside the registry's methods."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

from forgetbench.core.console import log
from forgetbench.core.environment import versions
from forgetbench.core.errors import UserError
from forgetbench.core.store import stable_hash
from forgetbench.runner.evaluation_plan import plan_evaluations, target_and_suites
from forgetbench.runner.record import build_record, load_record, provenance, weight_change, write_run
from forgetbench.runner.request import EvalRequest, KLRequest
from forgetbench.runner.stages import measure
from forgetbench.toolbox.model_sources import locate, resolve_model


def evaluate(request: EvalRequest) -> tuple[dict, Path | None]:
    """The checkpoint's record, and its run folder (None without `out`: the record is then only printed)."""
    start = time.perf_counter()
    for name in filter(None, (request.model, request.base)):     # both names checked before either model loads
        locate(name)
    tgt, suite_list = target_and_suites(request.target, list(request.suites) or None, request.include_path)
    if request.out is not None and tgt is None:
        raise UserError("bench eval --out keeps a leaderboard row, which needs a target: add --target or --preset.")
    suites = [s.name for s in suite_list]
    where = None
    if request.out is not None:
        spec = external_spec(request, target=tgt.name, suites=suites)
        where = request.out / f"{request.name}-s{spec['seed']}-{stable_hash(spec, 12)}"
        if (where / "result.json").exists():
            log(f"already done: {where}")
            return load_record(where), where
    eval_plan = plan_evaluations(tgt, suite_list, request.data_dir)
    code = versions()
    tuned = resolve_model(request.model, request.placement)
    # --model-args (an adapter, a revision) describe the checkpoint evaluated, not its base
    base = resolve_model(request.base, replace(request.placement, model_args=())) if request.base else None
    if where is not None:
        check_tuned_from(base.model, tuned.model, names=(request.model, request.base))
    measured = measure(base, tuned.model, tuned.tokenizer, eval_plan=eval_plan, settings=request.eval,
                       kl=request.kl if base else None, data_dir=request.data_dir)
    prov = provenance(code=code, base=base, eval_plan=eval_plan, items=measured.items, eval_settings=request.eval,
                      data_dir=request.data_dir, include_path=request.include_path)
    prov |= {"model_fingerprint": tuned.fingerprint, "base_fingerprint": base.fingerprint if base else None}
    if where is None:
        spec = {"model": request.model, "base": request.base, "target": tgt.name if tgt else None, "suites": suites,
                "eval": request.eval.to_dict()}
        record, _ = build_record(kind="eval", run_id=f"eval-{stable_hash(spec, 12)}", spec=spec, provenance=prov,
                                 measured=measured, eval_settings=request.eval,
                                 wall_seconds=time.perf_counter() - start)
        return record, None
    measured.metrics["weight_change"] = weight_change(base.model, tuned.model)
    record, files = build_record(kind="external", run_id=where.name, spec=spec, provenance=prov, measured=measured,
                                 eval_settings=request.eval, wall_seconds=time.perf_counter() - start)
    write_run(where, record, files)
    return load_record(where), where


def external_spec(request: EvalRequest, *, target: str, suites: list[str]) -> dict:
    """An outside checkpoint's spec in a trained run's shape: "model" is the base (a track is the runs of one
    base), the row's method is its name, and nothing was trained here (no hyperparameters, budget or data)."""
    device, dtype = request.placement.resolved()
    spec = {"method": request.name, "model": request.base, "checkpoint": request.model, "target": target,
            "suites": suites, "seed": request.seed, "params": {}, "budget": {}, "data": None,
            "eval": request.eval.to_dict(), "kl": asdict(request.kl),
            "placement": {"device": device.split(":")[0], "dtype": dtype}}
    if request.placement.model_args:       # they describe the checkpoint (an adapter, a revision), not its base
        spec["checkpoint_args"] = dict(request.placement.model_args)
    return spec


def check_tuned_from(base, tuned, *, names: tuple[str, str]) -> None:
    """An outside checkpoint is compared with its base weight by weight: the same parameters, of the same shapes."""
    want = {n: tuple(p.shape) for n, p in base.named_parameters()}
    got = {n: tuple(p.shape) for n, p in tuned.named_parameters()}
    if want != got:
        odd = sorted(set(want) ^ set(got)) or [n for n in want if want[n] != got[n]]
        raise UserError(f"{names[0]} does not have the parameters of its base {names[1]} ({len(odd)} differ, e.g. "
                        f"{odd[0]}): it cannot have been fine-tuned from it. Pass the model it was tuned from as "
                        "--base (a PEFT adapter: --model BASE --model-args peft=ADAPTER_DIR).")


def kl_between(request: KLRequest) -> dict:
    """`bench kl`'s KL section: KL(base || model) by Monte Carlo on samples from the base (runner.kl)."""
    from forgetbench.runner.kl import estimate

    for name in (request.base, request.model):       # both names checked before either model loads
        locate(name)
    base, tuned = resolve_model(request.base, request.placement), resolve_model(request.model, request.placement)
    if base.tokenizer.get_vocab() != tuned.tokenizer.get_vocab():
        raise UserError(f"{request.base} and {request.model} have different vocabularies; KL between them is "
                        "undefined.")
    kl, _ = estimate(base, tuned.model, request.settings)
    return kl
