"""Experiment trackers (`--report-to`): the Trainer's own integrations log every step's training loss, and at the
end of a run its headline numbers (target and suite deltas, suite average, KL) go to the same trackers. With
`--hub-push ORG/NAME` a finished run folder's record, items and lm-eval files also go to that Hugging Face dataset
repository, under the run id (lm-eval's files keep lm-eval's layout: <base|tuned>/<model>/results_*.json ...).

TensorBoard writes under `<out>/trackers/<run id>/` (beside the run folders, never inside one: a run folder holds
only what its digest covers); W&B and MLflow go where their own settings say (WANDB_MODE=offline, MLflow's
tracking URI). Trackers decide no number: `--report-to` is not in a run's spec.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from forgetbench.core.errors import FieldError

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
            raise FieldError("report_to", f"choose none or any of {', '.join(TRACKERS)} (comma-separated).", value=name)
        packages, hint = TRACKERS[name]
        if not any(importlib.util.find_spec(p) for p in packages):
            raise FieldError("report_to", f"needs {' or '.join(packages)}: {hint}.", value=name)
    return tuple(dict.fromkeys(names))


def hub_repo(text: str | None) -> str | None:
    """--hub-push ORG/NAME, checked before any work: a repository id, a token, and the hub not switched off."""
    if text is None:
        return None
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        raise FieldError("hub_push", "give a dataset repository id, ORG/NAME.", value=repr(text))
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise FieldError("hub_push", "the hub is switched off (HF_HUB_OFFLINE=1, the CLI's default); set "
                         "HF_HUB_OFFLINE=0 to push.", value=text)
    from huggingface_hub import get_token
    if not get_token():
        raise FieldError("hub_push", "no Hugging Face token; set HF_TOKEN or run `hf auth login`.", value=text)
    return text


@dataclass(frozen=True)
class Report:
    to: tuple[str, ...]
    out: Path                       # the runs folder
    name: str                       # the run id: the trackers' run name
    hub: str | None = None          # --hub-push: the dataset repository a finished run folder goes to

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
        from forgetbench.core.store import warn
        try:
            self._final(record)
        except Exception as e:  # noqa: BLE001 - any tracker's failure, reported, never raised
            warn(f"--report-to: the final numbers did not reach the trackers ({type(e).__name__}: {e}); they are "
                 f"in {folder / 'result.json'}.")
        if self.hub is None:
            return
        try:
            push(folder, self.hub)
        except Exception as e:  # noqa: BLE001 - the same: the run is written, the push is reported
            warn(f"--hub-push: {folder} did not reach {self.hub} ({type(e).__name__}: {e}); push it again with "
                 f"`hf upload {self.hub} {folder} {folder.name} --repo-type dataset`.")

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


def push(folder: Path, repo: str) -> None:
    """A run folder's record, items and lm-eval files (not a saved model) to a private dataset repository."""
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo(repo_id=repo, repo_type="dataset", private=True, exist_ok=True)
    api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=str(folder), path_in_repo=folder.name,
                      allow_patterns=["result.json", "items.jsonl", "lm_eval/**"],
                      commit_message=f"forgetbench run {folder.name}")


def _writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from tensorboardX import SummaryWriter
    return SummaryWriter(log_dir=str(folder))


def headline(record: dict) -> dict[str, float]:
    """What a tracker's chart of runs compares (records.outcome.Outcome.headline)."""
    from forgetbench.records.outcome import Outcome
    return Outcome.of(record).headline()
