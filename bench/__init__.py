"""forgetbench as a library: the commands as functions with typed results.

    import forgetbench
    results = forgetbench.run("lwf", seed=0, set={"lam": 0.5}, out="runs")      # the micro world
    table = forgetbench.leaderboard.table("runs")    # pandas: one row per method/setting, the CSV's columns

Keyword arguments are the fields the command line's flags set, with _ for - (`suite` a list, `set` and `budget`
mappings, as in a `--config` file), given as Python values; they are assembled and checked by the same library
functions the `bench` command calls (runner.request, sweeper.request), and a bad one raises UserError naming the
keyword before any work. Importing this module changes no environment variable: whether the hub is used is the
caller's choice (the `bench` command sets HF_HUB_OFFLINE=1 unless it is set).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from forgetbench.core.errors import FieldError, UserError
from forgetbench.records.outcome import Outcome

__all__ = ["Result", "SweepResult", "UserError", "evaluate", "run", "sweep"]

Result = Outcome            # one evaluated model (records.outcome)


@dataclass(frozen=True)
class SweepResult:
    runs: int
    already_done: int
    finished: int
    failed: list[tuple[str, str]]              # (run id, error)
    out: Path


@contextlib.contextmanager
def _called(function: str, threads: int | None):
    """Errors worded for a Python caller (a keyword argument, not a flag), and torch's threads set first."""
    from forgetbench.core import threads as cpu
    try:
        cpu.configure(threads)
        yield
    except FieldError as e:
        raise UserError(f"forgetbench.{function}(): {e.for_keywords()}") from None


def run(method: str, *, threads: int | None = None, **fields) -> list[Result]:
    """`bench run --method METHOD ...`: fine-tune, evaluate base and tuned, estimate KL; one Result per setting
    the method evaluates. A finished run is read back, not recomputed. `config=` a run config file."""
    from forgetbench.core.console import results_only
    from forgetbench.runner.request import run_request, run_values
    from forgetbench.runner.stages import run as run_stages

    with _called("run", threads):
        request = run_request(run_values({**fields, "method": method}, where="forgetbench.run()"))
        with results_only():
            return [Result.of(record, where) for record, where in run_stages(request)]


def evaluate(model: str, *, threads: int | None = None, **fields) -> Result:
    """`bench eval --model MODEL ...`: a checkpoint fine-tuned anywhere, against `base=` when given; with `out=`
    (and `name=`), kept as a run folder the leaderboard shows as an external row."""
    from forgetbench.core.console import results_only
    from forgetbench.runner.external import evaluate as evaluate_checkpoint
    from forgetbench.runner.request import eval_request

    with _called("evaluate", threads):
        request = eval_request({**fields, "model": model}, where="forgetbench.evaluate()")
        with results_only():
            return Result.of(*evaluate_checkpoint(request))


def sweep(*, threads: int | None = None, **fields) -> SweepResult:
    """`bench sweep ...`: every method x configuration x seed (resumable); `config=` a sweep file."""
    import os

    from forgetbench.sweeper.request import run_sweep, sweep_request

    with _called("sweep", threads):
        request = sweep_request(fields, where="forgetbench.sweep()")
        if request.dry_run:
            raise UserError("forgetbench.sweep(): dry_run prints a plan; use the `bench sweep --dry-run` command.")
        if threads:                             # worker processes and Ray tasks read it (core.threads)
            os.environ["FORGETBENCH_THREADS"] = str(threads)
        runs, tally = run_sweep(request)
    return SweepResult(runs=len(runs), already_done=tally.done, finished=tally.finished, failed=list(tally.failed),
                       out=request.out)


def __getattr__(name: str):
    """`forgetbench.leaderboard` (the reporting package: `forgetbench.leaderboard.table("runs")`) imported when
    first used, so that `import forgetbench` stays light (no pandas)."""
    if name == "leaderboard":
        import importlib
        return importlib.import_module("forgetbench.leaderboard")
    raise AttributeError(f"module 'forgetbench' has no attribute {name!r}")
