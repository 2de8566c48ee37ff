"""The training budget of a run: plain settings, importable without torch or transformers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from forgetbench.core.errors import FieldError, did_you_mean
from forgetbench.core.settings import typed_fields

# transformers' SchedulerType values that its Trainer runs with the settings a budget has. Written out rather than
# read from transformers, whose import takes seconds (and imports torch); a test checks them against it. Left out:
# reduce_lr_on_plateau and greedy (they need an evaluation during training), cosine_with_min_lr,
# cosine_warmup_with_min_lr and warmup_stable_decay (they need scheduler arguments a budget does not carry).
SCHEDULERS = ("constant", "constant_with_warmup", "cosine", "cosine_with_restarts", "inverse_sqrt", "linear",
              "polynomial")


@dataclass(frozen=True)
class Budget:
    """How much training a run gets; the same for every method on a target."""

    epochs: float = 6.0            # passes over the (mixed) training set
    lr: float = 1e-3
    batch_size: int = 32
    scheduler: str = "constant"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    examples: int = 0              # train on a fixed random subset of this many target examples (0: all)
    gradient_checkpointing: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def updated(self, overrides: dict) -> Budget:
        """A copy with `--budget key=value` overrides applied (typed like the fields; finite numbers only)."""
        new = replace(self, **typed_fields(Budget, overrides, "--budget", "The training budget", noun="field"))
        new.check()
        return new

    def check(self) -> None:
        if self.epochs <= 0 or self.lr <= 0 or self.batch_size < 1 or self.examples < 0 or self.weight_decay < 0 \
                or self.max_grad_norm <= 0:
            raise FieldError("budget", "needs epochs > 0, lr > 0, batch_size >= 1, examples >= 0, weight_decay >= 0 "
                             "and max_grad_norm > 0.")
        # Not 1: the Trainer takes the ratio as its warmup_steps, which it reads as a step count from 1 up.
        if not 0 <= self.warmup_ratio < 1:
            raise FieldError("budget", "the share of the steps that warm up must be at least 0 and below 1.",
                             key="warmup_ratio", value=self.warmup_ratio)
        if self.scheduler not in SCHEDULERS:
            raise FieldError("budget", f"unknown learning-rate schedule.{did_you_mean(self.scheduler, SCHEDULERS)} "
                             f"Accepted: {', '.join(SCHEDULERS)}.", key="scheduler", value=self.scheduler)
