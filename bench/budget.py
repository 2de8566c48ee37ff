"""The training budget of a run: plain settings, importable without torch or transformers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from bench.errors import UserError
from bench.settings import typed_fields


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
        if new.epochs <= 0 or new.lr <= 0 or new.batch_size < 1 or new.examples < 0 or new.warmup_ratio < 0 \
                or new.weight_decay < 0 or new.max_grad_norm <= 0:
            raise UserError("--budget needs epochs > 0, lr > 0, batch_size >= 1, examples >= 0, warmup_ratio >= 0, "
                            "weight_decay >= 0 and max_grad_norm > 0.")
        return new
