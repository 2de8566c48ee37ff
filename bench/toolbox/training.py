"""The training loop: a transformers Trainer whose loss is asked of the method.

Using Trainer (not a bespoke loop) keeps the path to several GPUs, mixed precision and gradient
checkpointing open without a rewrite; the method only ever sees `loss(model, batch, ctx)`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import torch
import transformers
from forgetbench.core.budget import Budget
from forgetbench.core.store import scratch_dir
from forgetbench.toolbox.device import world_size
from forgetbench.toolbox.encoding import Collator
from transformers import Trainer, TrainingArguments


class Unmeasured(enum.Enum):
    """A statistic a trainer does not measure: left out of the record (None is a measurement: e.g. no loss)."""

    UNMEASURED = "unmeasured"


UNMEASURED = Unmeasured.UNMEASURED


@dataclass(frozen=True, kw_only=True)
class TrainingStats:
    """What a trainer reports for the result record's `training` section: the engine's Trainer (`train`) measures
    every field; a method's own trainer (`Method.fit`) what it knows, the rest UNMEASURED, and its own statistics in
    `extra` (GRPO's rewards, self-SFT's rounds). The engine adds what it measures around any trainer (passes,
    trainable parameters, the mixture). `record()` is the section's trainer part, fields in this order."""

    steps: int                                          # optimizer steps
    examples: int                                       # training examples (each epoch's: once)
    tokens: int | Unmeasured = UNMEASURED               # their tokens, padding excluded
    loss_first: float | None | Unmeasured = UNMEASURED  # the first step's training loss (None: no step)
    loss_last_10pct: float | None | Unmeasured = UNMEASURED     # the mean over the last tenth of the steps
    loss_curve: tuple[float, ...] | Unmeasured = UNMEASURED     # every step's training loss
    processes: int | Unmeasured = UNMEASURED            # data-parallel processes
    precision: str | Unmeasured = UNMEASURED            # bf16, float32, ...
    seconds: float                                      # the trainer's wall time
    extra: Mapping[str, object] = field(default_factory=dict)  # the trainer's own statistics, recorded as they are

    def __post_init__(self):
        if clash := sorted(set(self.extra) & {f.name for f in fields(self)}):
            raise ValueError(f"TrainingStats.extra repeats the field(s) {', '.join(clash)}; set them as fields")

    def record(self) -> dict:
        """The statistics as the record has them: measured fields in order (a curve as a list), then `extra`."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not UNMEASURED:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out | dict(self.extra)


def trainable_names(model) -> list[str]:
    """The base model's parameter names that training can change: trainable parameters, with adapter
    (peft LoRA) parameters mapped to the weight they are merged into."""
    names = set()
    for name, p in model.named_parameters():
        if p.requires_grad:
            name = name.removeprefix("base_model.model.")
            name = re.sub(r"\.lora_(A|B|embedding_A|embedding_B)(\.[^.]+)?(\.weight)?$", ".weight", name)
            names.add(name.replace(".base_layer.", "."))
    return sorted(names)


@contextlib.contextmanager
def count_passes():
    """Tokens (padding included) through whole language models while inside: with gradients on a model in training
    mode (a forward and a backward pass) and without (reference forwards, e.g. a frozen base model's logits). A
    whole model is a module with an `lm_head` child called with input_ids (an adapter wrapper is not: its inner
    model is, so each pass counts once)."""
    counts = {"forward_backward_tokens": 0, "forward_only_tokens": 0}

    def hook(module, args, kwargs, output):
        ids = kwargs.get("input_ids")
        if ids is not None and "lm_head" in module._modules:
            grad = torch.is_grad_enabled() and module.training
            counts["forward_backward_tokens" if grad else "forward_only_tokens"] += ids.numel()

    handle = torch.nn.modules.module.register_module_forward_hook(hook, with_kwargs=True)
    try:
        yield counts
    finally:
        handle.remove()


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


def over_processes(values: list[float], *, mean: bool) -> list[float]:
    """Element-wise sum (or mean) of `values` over the processes of a distributed run; `values` as they are when
    run plainly. Per-step losses are averaged (each process has its share of every global batch and DDP averages
    their gradients, so the mean is the step's loss); token counts are summed."""
    if world_size() == 1 or not torch.distributed.is_initialized():
        return values
    # NCCL (several GPUs) reduces only tensors on the GPU; gloo (CPU) only on the CPU
    device = f"cuda:{torch.cuda.current_device()}" if torch.distributed.get_backend() == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return (t / world_size() if mean else t).tolist()


def train(model: torch.nn.Module, rows: list[dict], loss_fn: Callable, budget: Budget, seed: int,
          pad_id: int, shuffle: bool = True, report=None) -> TrainingStats:
    """Train `model` in place; returns its statistics for the result record (every field measured). Under torchrun /
    accelerate launch the Trainer runs data-parallel (DDP; gloo on CPU) and each process takes batch_size / processes
    of every batch, so the global batch is the budget's. `report` (runner.tracking.Report): trackers that log every
    step's loss."""
    transformers.logging.set_verbosity_error()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    start = time.perf_counter()
    bf16 = next(model.parameters()).dtype == torch.bfloat16
    if budget.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    with scratch_dir("forgetbench-train") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=budget.batch_size // world_size(),
            num_train_epochs=budget.epochs, learning_rate=budget.lr, lr_scheduler_type=budget.scheduler,
            warmup_steps=budget.warmup_ratio, weight_decay=budget.weight_decay,
            max_grad_norm=budget.max_grad_norm, seed=seed, data_seed=seed, save_strategy="no",
            dataloader_num_workers=0,
            use_cpu=next(model.parameters()).device.type == "cpu",
            remove_unused_columns=False, disable_tqdm=False, bf16=bf16, ddp_find_unused_parameters=False,
            **(report.trainer_arguments() if report else {"report_to": [], "logging_strategy": "no"}),
        )
        trainer = HookTrainer(model=model, args=args, train_dataset=rows, data_collator=Collator(pad_id),
                              loss_fn=loss_fn, callbacks=report.callbacks() if report else None)
        if not shuffle:
            trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(trainer.train_dataset)
        with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its summary dict to stdout
            trainer.train()
    if budget.gradient_checkpointing:
        model.gradient_checkpointing_disable()
        model.config.use_cache = True
    hist = over_processes(trainer.loss_history, mean=True)
    tail = hist[-max(1, len(hist) // 10):]
    model.eval()
    return TrainingStats(
        steps=trainer.state.global_step, examples=len(rows), tokens=sum(len(r["input_ids"]) for r in rows),
        loss_first=hist[0] if hist else None, loss_last_10pct=sum(tail) / len(tail) if hist else None,
        loss_curve=tuple(round(x, 6) for x in hist), processes=world_size(),
        precision="bf16" if bf16 else str(next(model.parameters()).dtype).removeprefix("torch."),
        seconds=round(time.perf_counter() - start, 2))
