"""Where a model runs and in which precision, decided without importing torch where that is possible."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from forgetbench.core.errors import FieldError

DTYPES = ("float32", "bfloat16", "float16")


def cuda_available() -> bool:
    """Whether a CUDA device can be used. A CPU build of torch (version "+cpu") answers without being imported,
    which keeps "already done" and bad-input paths fast."""
    try:
        if version("torch").endswith("+cpu"):
            return False
    except PackageNotFoundError:
        return False
    import torch
    return torch.cuda.is_available()


@dataclass(frozen=True)
class Placement:
    """Where weights live and in which precision: float32 on CPU, bfloat16 on a GPU by default."""

    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    # from_pretrained's other keyword arguments (--model-args: revision, attn_implementation, ...), as sorted
    # (key, value) pairs; "peft": a PEFT adapter folder merged into the loaded model (lm-eval's peft=)
    model_args: tuple[tuple[str, object], ...] = ()

    @property
    def adapter(self) -> str | None:
        return dict(self.model_args).get("peft")

    def pretrained_kwargs(self) -> dict:
        return {k: v for k, v in self.model_args if k != "peft"}

    def resolved(self) -> tuple[str, str]:
        """(device, dtype name), checked."""
        device = self.device or ("cuda" if cuda_available() else "cpu")
        if device.startswith("cuda") and not cuda_available():
            raise FieldError("device", "no CUDA device is available on this machine.", value=device)
        name = self.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
        if name not in DTYPES:
            raise FieldError("dtype", f"choose one of {', '.join(DTYPES)}.", value=name)
        return device, name


def world_size() -> int:
    """Processes training one run together (torchrun / accelerate launch set WORLD_SIZE; 1 when run plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's place among them; 0 (the one that evaluates and writes) when run plainly."""
    return int(os.environ.get("RANK", "0"))


# set by their own flags, so never through --model-args
OWN_FLAGS = {"dtype": "--dtype", "torch_dtype": "--dtype", "trust_remote_code": "--trust-remote-code",
             "device": "--device", "use_safetensors": "(always on: weights load from safetensors only)"}


def model_args(text: str | None) -> tuple[tuple[str, object], ...]:
    """--model-args "key=value,key=value" (lm-eval's form) as sorted pairs; values typed as true/false, integers or
    text (anything else, "1.5" or "nan" included, stays text)."""
    from forgetbench.core.settings import coerce
    pairs = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = (x.strip() for x in item.partition("="))
        if not sep or not key:
            raise FieldError("model_args", f"{item.strip()!r} is not key=value (e.g. revision=main,"
                             "attn_implementation=sdpa).", value=repr(text))
        if key in OWN_FLAGS:
            raise FieldError("model_args", f"use {OWN_FLAGS[key]}.", value=f"{key}=...")
        pairs[key] = coerce(value, "bool | int | str", f"--model-args {key}")
    return tuple(sorted(pairs.items()))
