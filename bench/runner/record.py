"""A run's record: how far the weights moved, where the numbers came from, the record and its files, written
atomically; and a finished run's record read back with every check the leaderboard makes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forgetbench.core import threads
from forgetbench.core.settings import EvalSettings
from forgetbench.core.store import atomic_dir, atomic_write_json
from forgetbench.records.schema import SCHEMA_VERSION, items_hash, items_text, load_run_folder
from forgetbench.runner.evaluation_plan import EvalPlan

if TYPE_CHECKING:
    from forgetbench.toolbox.models import ModelHandle


@dataclass
class Measured:
    metrics: dict                  # the record's sections: target, suites, kl, kl_target, answer_class_shift
    items: list[dict]              # their per-item rows (items.jsonl)
    outputs: dict                  # "base"/"tuned" -> task -> its output in lm-eval's shape (runner.evaluation)


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


def provenance(*, code: dict, base: ModelHandle | None, eval_plan: EvalPlan, items: list[dict],
               eval_settings: EvalSettings, data_dir: Path | None, include_path: Path | None = None) -> dict:
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
                     for r in eval_plan.ready}}
    if include_path is not None:        # where --include-path's task YAMLs were (their content: the tasks' hashes)
        out["include_path"] = str(include_path)
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
