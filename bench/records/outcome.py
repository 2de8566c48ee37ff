"""A run's outcome, read once from its record: the one typed view of what a run did that the API returns, sweeps
print, trackers log and the leaderboard's predictors compare. The suite average is computed here and only here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Outcome:
    """One evaluated model: a run's result (one per setting a method evaluates) or an outside checkpoint's. Deltas
    are tuned minus base, as fractions (not percentage points); None where the record has no such part."""

    run_id: str | None
    method: str | None
    seed: int | None
    folder: Path | None                         # the run folder (result.json, items.jsonl)
    target_delta: float | None
    suites: dict[str, float]                    # suite -> delta (the mean of its tasks' deltas)
    suite_average: float | None                 # the mean of the suite deltas (the leaderboard's forgetting number)
    kl: float | None                            # KL(base || tuned), nats per sequence (token-exact estimator)
    kl_se: float | None                         # its standard error over the samples
    kl_target: float | None                     # the same on the target's held-out prompts
    weight_change: float | None                 # ||theta - theta_base||_2 over every parameter
    probe_shift: float | None                   # the answer-class probe: tuned - base next-token mass on it
    train_loss: float | None                    # the target training loss at the end (mean of the last tenth)
    wall_seconds: float | None
    train_tokens: int | None                    # tokens in the training mixture (one pass)
    record: dict = field(repr=False)            # the whole record (records/schema.py)

    @classmethod
    def of(cls, record: dict, folder: Path | None = None) -> Outcome:
        suites = {name: s["delta"] for name, s in sorted(record.get("suites", {}).items()) if "delta" in s}
        spec = record.get("spec", {})
        return cls(run_id=record.get("run_id"), method=spec.get("method"), seed=spec.get("seed"),
                   folder=folder, target_delta=record.get("target", {}).get("delta"), suites=suites,
                   suite_average=sum(suites.values()) / len(suites) if suites else None,
                   kl=_kl(record, "kl"), kl_se=_kl(record, "kl", "se"), kl_target=_kl(record, "kl_target"),
                   weight_change=record.get("weight_change", {}).get("l2"),
                   probe_shift=record.get("answer_class_shift", {}).get("delta"),
                   train_loss=record.get("training", {}).get("loss_last_10pct"),
                   wall_seconds=record.get("wall_seconds"),
                   train_tokens=record.get("training", {}).get("tokens"), record=record)

    def headline(self) -> dict[str, float]:
        """target_delta, <suite>_delta, suite_average_delta, kl, kl_target: what a tracker's chart of runs compares."""
        out = {} if self.target_delta is None else {"target_delta": self.target_delta}
        out |= {f"{name}_delta": d for name, d in self.suites.items()}
        if self.suite_average is not None:
            out["suite_average_delta"] = self.suite_average
        return out | {k: v for k, v in (("kl", self.kl), ("kl_target", self.kl_target)) if v is not None}


def _kl(record: dict, section: str, statistic: str = "mean") -> float | None:
    return record.get(section, {}).get("token_exact", {}).get(statistic)
