"""The training loop: a transformers Trainer whose loss is asked of the method.

Using Trainer (not a bespoke loop) keeps the path to several GPUs, mixed precision and gradient
checkpointing open without a rewrite; the method only ever sees `loss(model, batch, ctx)`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import transformers
from transformers import Trainer, TrainingArguments

from bench.data import Collator, ListDataset


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

    def updated(self, overrides: dict[str, str]) -> Budget:
        """A copy with `--budget key=value` overrides applied (typed like the fields)."""
        from dataclasses import fields, replace

        from bench.errors import UserError, did_you_mean
        types = {f.name: {"float": float, "int": int, "str": str, "bool": _bool}[f.type] for f in fields(self)}
        out = {}
        for key, value in overrides.items():
            if key not in types:
                raise UserError(f"Unknown budget field {key!r}.{did_you_mean(key, types)} "
                                f"Accepted: {', '.join(sorted(types))}.")
            try:
                out[key] = types[key](value) if isinstance(value, str) else types[key](str(value))
            except ValueError:
                raise UserError(f"--budget {key}={value}: {key} must be a {types[key].__name__}.") from None
        new = replace(self, **out)
        if new.epochs <= 0 or new.lr <= 0 or new.batch_size < 1 or new.examples < 0:
            raise UserError("--budget needs epochs > 0, lr > 0, batch_size >= 1 and examples >= 0.")
        return new


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


_bool.__name__ = "bool"


class HookTrainer(Trainer):
    """Trainer whose loss comes from a callable `loss_fn(model, batch) -> scalar tensor`."""

    def __init__(self, *args, loss_fn: Callable, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.loss_history: list[float] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.loss_fn(model, inputs)
        self.loss_history.append(float(loss.detach()))
        return (loss, None) if return_outputs else loss


def train(model: torch.nn.Module, rows: list[dict], loss_fn: Callable, budget: Budget, seed: int,
          pad_id: int, shuffle: bool = True) -> dict:
    """Train `model` in place; returns statistics for the result record."""
    transformers.logging.set_verbosity_error()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    start = time.perf_counter()
    bf16 = next(model.parameters()).dtype == torch.bfloat16
    if budget.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    with tempfile.TemporaryDirectory(prefix="forgetbench-train-") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=budget.batch_size,
            num_train_epochs=budget.epochs, learning_rate=budget.lr, lr_scheduler_type=budget.scheduler,
            warmup_steps=budget.warmup_ratio, weight_decay=budget.weight_decay,
            max_grad_norm=budget.max_grad_norm, seed=seed, data_seed=seed, save_strategy="no",
            report_to=[], logging_strategy="no", dataloader_num_workers=0, use_cpu=next(model.parameters()).device.type == "cpu",
            remove_unused_columns=False, disable_tqdm=False, bf16=bf16,
        )
        trainer = HookTrainer(model=model, args=args, train_dataset=ListDataset(rows),
                              data_collator=Collator(pad_id), loss_fn=loss_fn)
        if not shuffle:
            trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(trainer.train_dataset)
        with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its summary dict to stdout
            trainer.train()
    if budget.gradient_checkpointing:
        model.gradient_checkpointing_disable()
        model.config.use_cache = True
    hist = trainer.loss_history
    tail = hist[-max(1, len(hist) // 10):]
    model.eval()
    return {"steps": trainer.state.global_step, "examples": len(rows),
            "tokens": sum(len(r["input_ids"]) for r in rows),
            "loss_first": hist[0] if hist else None, "loss_last_10pct": sum(tail) / len(tail) if hist else None,
            "precision": "bf16" if bf16 else str(next(model.parameters()).dtype).removeprefix("torch."),
            "seconds": round(time.perf_counter() - start, 2)}
