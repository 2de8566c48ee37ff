"""How many CPU threads torch uses: explicit, and set in one place for every entry point (CLI, tests, workers).

Default: the cores this process may run on (its CPU affinity, so a worker pinned to one core uses one
thread), overridden by `--threads N` or $FORGETBENCH_THREADS. OpenMP threads wait passively (they sleep
instead of spinning at a barrier): with another busy process on the machine, spinning threads steal the
cores the working ones need, and a run on 2 cores became 15-40x slower (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import sys


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def configure(threads: int | None = None) -> int:
    """Set the thread count (and passive OpenMP waiting) for this process; returns the count. Environment
    variables take effect for a torch imported later; an already imported torch is set directly."""
    n = threads or int(os.environ.get("FORGETBENCH_THREADS") or 0) or available_cores()
    if n < 1:
        raise ValueError(f"threads must be at least 1, not {n}")
    # OpenMP reads these when its runtime starts (on torch's import): they must be set before it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n
