"""Where a model runs and in which precision, decided without importing torch where that is possible."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from bench.errors import UserError

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

    def resolved(self) -> tuple[str, str]:
        """(device, dtype name), checked."""
        device = self.device or ("cuda" if cuda_available() else "cpu")
        if device.startswith("cuda") and not cuda_available():
            raise UserError(f"--device {device}: no CUDA device is available on this machine.")
        name = self.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
        if name not in DTYPES:
            raise UserError(f"--dtype {name}: choose one of {', '.join(DTYPES)}.")
        return device, name


def world_size() -> int:
    """Processes training one run together (torchrun / accelerate launch set WORLD_SIZE; 1 when run plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's place among them; 0 (the one that evaluates and writes) when run plainly."""
    return int(os.environ.get("RANK", "0"))
