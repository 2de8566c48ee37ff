"""forgetbench as a library: the CLI's commands as functions with typed results.

    import forgetbench
    results = forgetbench.run("lwf", seed=0, set={"lam": 0.5}, out="runs")      # the micro world
    table = forgetbench.leaderboard.table("runs")    # pandas: one row per method/setting, the CSV's columns

Keyword arguments are the command's flags with _ for - (`suite` a list, `set` and `budget` mappings, as in
`bench run --config`); every value goes through the CLI's own checks, and a bad one raises UserError before any
work. Importing this module changes no environment variable: whether the hub is used is the caller's choice
(the `bench` command sets HF_HUB_OFFLINE=1 unless it is set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from forgetbench.core.errors import UserError

__all__ = ["Result", "SweepResult", "UserError", "evaluate", "run", "sweep"]


@dataclass(frozen=True)
class Result:
    """One evaluated model: a run's result (one per setting a method evaluates) or an outside checkpoint's.
    Deltas are tuned minus base, fractions (not points); None where the record has no such part."""

    run_id: str
    method: str | None
    seed: int | None
    folder: Path | None                         # the run folder (result.json, items.jsonl)
    target_delta: float | None
    suites: dict[str, float]                    # suite -> delta (the mean of its tasks' deltas)
    suite_average: float | None                 # the mean of the suite deltas (the leaderboard's forgetting number)
    kl: float | None                            # KL(base || tuned), nats per sequence (token-exact estimator)
    kl_target: float | None                     # the same on the target's held-out prompts
    record: dict = field(repr=False)            # the whole record (bench/records/schema.py)

    @classmethod
    def of(cls, record: dict, folder: Path | None = None) -> Result:
        suites = {name: s["delta"] for name, s in sorted(record.get("suites", {}).items()) if "delta" in s}
        kl = record.get("kl", {}).get("token_exact", {}).get("mean")
        kl_target = record.get("kl_target", {}).get("token_exact", {}).get("mean")
        return cls(run_id=record["run_id"], method=record["spec"].get("method"), seed=record["spec"].get("seed"),
                   folder=folder, target_delta=record.get("target", {}).get("delta"), suites=suites,
                   suite_average=sum(suites.values()) / len(suites) if suites else None,
                   kl=kl, kl_target=kl_target, record=record)


@dataclass(frozen=True)
class SweepResult:
    runs: int
    already_done: int
    finished: int
    failed: list[tuple[str, str]]              # (run id, error)
    out: Path


def _args(command: str, **options):
    """The parsed flags of `bench COMMAND` given as keyword arguments: the CLI's parsing and checks."""
    from forgetbench.cli import command_parser, flag_tokens, parse_or_raise, parser
    p, where = parser(), f"forgetbench.{command}()"
    argv = [command, *flag_tokens({k: v for k, v in options.items() if v is not None}, command_parser(p, command),
                                   where)]
    args = parse_or_raise(p, argv, where)
    from forgetbench.core import threads
    threads.configure(args.threads)
    return args


def run(method: str, **options) -> list[Result]:
    """`bench run --method METHOD ...`: fine-tune, evaluate base and tuned, estimate KL; one Result per setting
    the method evaluates. A finished run is read back, not recomputed."""
    from forgetbench.cli import run_records
    return [Result.of(record, where) for record, where in run_records(_args("run", method=method, **options))]


def evaluate(model: str, **options) -> Result:
    """`bench eval --model MODEL ...`: a checkpoint fine-tuned anywhere, against `base=` when given; with `out=`
    (and `name=`), kept as a run folder the leaderboard shows as an external row."""
    from forgetbench.cli import eval_record
    return Result.of(*eval_record(_args("eval", model=model, **options)))


def sweep(**options) -> SweepResult:
    """`bench sweep ...`: every method x configuration x seed (resumable); `config=` a sweep file."""
    from forgetbench.cli import run_sweep
    args = _args("sweep", **options)
    if args.dry_run:
        raise UserError("forgetbench.sweep(): dry_run prints a plan; use the `bench sweep --dry-run` command.")
    runs, tally = run_sweep(args)
    return SweepResult(runs=len(runs), already_done=tally.done, finished=tally.finished, failed=list(tally.failed),
                       out=Path(args.out))


def __getattr__(name: str):
    """`forgetbench.leaderboard` (the reporting package: `forgetbench.leaderboard.table("runs")`) imported when
    first used, so that `import forgetbench` stays light (no pandas)."""
    if name == "leaderboard":
        import importlib
        return importlib.import_module("forgetbench.leaderboard")
    raise AttributeError(f"module 'forgetbench' has no attribute {name!r}")
