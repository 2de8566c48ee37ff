"""What a command says while it works: progress on standard error; standard output carries results only."""

from __future__ import annotations

import contextlib
import sys


def log(msg: str) -> None:
    print(f"forgetbench: {msg}", file=sys.stderr, flush=True)


def results_only():
    """Standard output carries results only: what libraries print there while the work runs (the Trainer's
    summary, transformers' "Running in WANDB offline mode" on import) goes to standard error."""
    return contextlib.redirect_stdout(sys.stderr)
