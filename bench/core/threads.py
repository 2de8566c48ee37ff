"""How many CPU threads torch uses: explicit, and set in one place for every entry point (CLI, tests, workers).

Order: `--threads N`, else $FORGETBENCH_THREADS, else the model source's own count (the micro model: 1, its
matrices are too small to gain from a second thread), else the cores this process may run on (its CPU
affinity, so a worker pinned to one core uses one thread). Several threads wait passively at OpenMP
barriers: a spinning thread steals the core a working one needs when another process is busy, and a run on 2
cores became 15-40x slower (BENCHMARKS.md has the measurements). The count used is in every record.
"""

from __future__ import annotations

import os
import sys

_explicit = False
_cap: int | None = None             # a scheduler's share of the cores (a Ray task's CPUs), when it gives no affinity


def available_cores() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        n = os.cpu_count() or 1
    return min(n, _cap) if _cap else n


def configure(threads: int | None = None, *, cap: int | None = None) -> int:
    """Set the thread count (and passive OpenMP waiting) for this process; returns the count. `cap` bounds the
    cores counted as available (a worker given a share of a machine). Environment variables take effect for a
    torch imported later; an already imported torch is set directly."""
    global _explicit, _cap
    _cap = cap
    env = os.environ.get("FORGETBENCH_THREADS", "").strip()
    if not threads and env:
        if not env.isdigit() or int(env) < 1:
            from forgetbench.core.errors import UserError
            raise UserError(f"FORGETBENCH_THREADS={env!r}: give a whole number of threads, at least 1.")
        threads = int(env)
    _explicit = bool(threads)
    n = threads or available_cores()
    _set(n)
    return n


def prefer(n: int | None) -> None:
    """The thread count for the model about to load (None: the cores), unless the user chose one (`--threads`,
    $FORGETBENCH_THREADS)."""
    if not _explicit:
        _set(min(n or available_cores(), available_cores()))


def current() -> int:
    import torch
    return torch.get_num_threads()


def _set(n: int) -> None:
    if n < 1:
        raise ValueError(f"threads must be at least 1, not {n}")
    # OpenMP reads these when its runtime starts (on torch's import): they must be set before it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
