"""Experiment trackers (`--report-to`): the Trainer's own integrations log every step's training loss, and at the
end of a run its headline numbers (target and suite deltas, suite average, KL) go to the same trackers.

TensorBoard writes under `<out>/trackers/<run id>/` (beside the run folders, never inside one: a run folder holds
only what its digest covers); W&B and MLflow go where their own settings say (WANDB_MODE=offline, MLflow's
tracking URI). Trackers decide no number: `--report-to` is not in a run's spec.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UserError

# tracker -> (the packages any of which it needs, how to install one)
TRACKERS = {"tensorboard": (("tensorboardX", "tensorboard"), "pip install tensorboardX"),
            "wandb": (("wandb",), "pip install wandb"), "mlflow": (("mlflow",), "pip install mlflow")}


def parse(text: str | None) -> tuple[str, ...]:
    """--report-to "none" | "tensorboard,wandb" ...: the trackers, each checked to be installed."""
    names = [n.strip() for n in (text or "none").split(",") if n.strip()]
    if names == ["none"]:
        return ()
    for name in names:
        if name not in TRACKERS:
            raise UserError(f"--report-to {name}: choose none or any of {', '.join(TRACKERS)} (comma-separated).")
        packages, hint = TRACKERS[name]
        if not any(importlib.util.find_spec(p) for p in packages):
            raise UserError(f"--report-to {name} needs {' or '.join(packages)}: {hint}.")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Report:
    to: tuple[str, ...]
    out: Path                       # the runs folder
    name: str                       # the run id: the trackers' run name

    @property
    def folder(self) -> Path:
        return self.out / "trackers" / self.name

    def trainer_arguments(self) -> dict:
        """TrainingArguments: log every step to the trackers (TensorBoard through `callbacks`, in our folder)."""
        return {"report_to": [t for t in self.to if t != "tensorboard"], "logging_strategy": "steps",
                "logging_steps": 1, "run_name": self.name}

    def callbacks(self) -> list:
        if "tensorboard" not in self.to:
            return []
        from transformers.integrations import TensorBoardCallback
        return [TensorBoardCallback(tb_writer=_writer(self.folder))]

    def final(self, record: dict, folder: Path) -> None:
        """A finished run's headline numbers, to every tracker, at the step training ended on. Called once the run
        is written to `folder`: a tracker that fails here costs the run nothing, and a warning says so."""
        from bench.store import warn
        try:
            self._final(record)
        except Exception as e:  # noqa: BLE001 - any tracker's failure, reported, never raised
            warn(f"--report-to: the final numbers did not reach the trackers ({type(e).__name__}: {e}); they are "
                 f"in {folder / 'result.json'}.")

    def _final(self, record: dict) -> None:
        values = headline(record)
        step = record.get("training", {}).get("steps", 0)
        if "tensorboard" in self.to:
            writer = _writer(self.folder)
            for key, value in values.items():
                writer.add_scalar(f"forgetbench/{key}", value, step)
            writer.close()
        if "wandb" in self.to:
            import wandb
            run = wandb.run or wandb.init(name=self.name)
            run.log({f"forgetbench/{k}": v for k, v in values.items()})
            run.finish()
        if "mlflow" in self.to:
            import mlflow
            # the Trainer's run has ended: reopen the latest run of this name (a new one if training logged none)
            found = mlflow.search_runs(filter_string=f"attributes.run_name = '{self.name}'", max_results=1,
                                       order_by=["attributes.start_time DESC"], output_format="list")
            with mlflow.start_run(**({"run_id": found[0].info.run_id} if found else {"run_name": self.name})):
                mlflow.log_metrics({f"forgetbench.{k}": v for k, v in values.items()}, step=step)


def _writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from tensorboardX import SummaryWriter
    return SummaryWriter(log_dir=str(folder))


def headline(record: dict) -> dict[str, float]:
    """target_delta, <suite>_delta, suite_average_delta, kl, kl_target: what a tracker's chart of runs compares."""
    out = {}
    if "target" in record:
        out["target_delta"] = record["target"]["delta"]
    suites = {name: s["delta"] for name, s in record.get("suites", {}).items()}
    out |= {f"{name}_delta": d for name, d in sorted(suites.items())}
    if suites:
        out["suite_average_delta"] = sum(suites.values()) / len(suites)
    for key in ("kl", "kl_target"):
        if key in record:
            out[key] = record[key]["token_exact"]["mean"]
    return out
