"""A sweep's request, assembled once for the CLI, the Python API and sweep files: the run fields every run shares,
the sweep's own (methods, seeds, configurations, grids) and the executor's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forgetbench.core.errors import FieldError
from forgetbench.core.options import CSV, LIST, PAIRS, Option, checked, merged, read_config
from forgetbench.core.settings import MAX_SEED, parse_as
from forgetbench.core.store import writable_folder
from forgetbench.runner.request import EVALUATION, TRACKERS, RunRequest, model_options, run_request
from forgetbench.sweeper.design import SweepConfig, SweepRun, Tally, drive, expand

FILE_ONLY = ("grids", "set", "budgets", "budget_grid")  # structured fields a sweep file has and the flags do not

SWEEP = (
    Option("config", "a sweep file (YAML): these flags' fields (with _ for -), plus grids (method -> knob -> values), "
           "set (method -> knob -> value), budgets (method -> budget field -> value) and budget_grid (lr, epochs)"),
    Option("methods", "comma-separated method names, or all", CSV, default="all"),
    Option("seeds", "comma-separated seeds", CSV, default="0,1,2"),
    Option("configs", "configurations per method, the same for every method", int, default=4, minimum=1),
    Option("grid_seed", "seed of the configurations' draw", int, default=0, minimum=0, maximum=MAX_SEED),
    Option("name", "the sweep's name in its records (default: from model, target, methods)"),
    *model_options("as for `bench run`"),
    Option("target", "as for `bench run`"),
    Option("suite", "as for `bench run`", LIST),
    Option("budget", "fixed budget overrides for every run (lr and epochs are swept)", PAIRS, metavar="KEY=VALUE"),
    Option("train_file", "as for `bench run`"),
    Option("executor", "local or ray", default="local", choices=("local", "ray")),
    Option("jobs", "local: worker processes, each pinned to its share of the cores and one GPU (default 1: in this "
           "process)", int, minimum=1),
    Option("ray_address", "ray: auto or ray://HOST:PORT to join a cluster (default: start a local one)"),
    Option("retries", "times a run whose worker died is retried (default: ray 2, local 1)", int, minimum=0),
    Option("out", "run folders", default="runs"),
    TRACKERS,
    Option("dry_run", "list every run, done or to do, with the estimated cost", bool),
    *EVALUATION,
)
NOT_IN_FILES = ("config", "dry_run")


@dataclass(frozen=True)
class ExecutorChoice:
    kind: str = "local"                 # local | ray
    jobs: int = 1                       # local worker processes (1: in this process)
    ray_address: str | None = None
    retries: int | None = None          # None: the executor's default


@dataclass(frozen=True)
class SweepRequest:
    template: RunRequest                # what every run shares (its method, seed and settings are the sweep's)
    config: SweepConfig
    executor: ExecutorChoice
    out: Path
    dry_run: bool = False


def sweep_request(given: dict, *, where: str) -> SweepRequest:
    """The sweep the fields describe (a sweep file's fields under the ones given), checked before any run."""
    values = checked(SWEEP, given, where=where, command="bench sweep")
    extra = {}
    if values.get("config") is not None:
        in_files = tuple(o for o in SWEEP if o.name not in NOT_IN_FILES)
        from_file, extra = read_config(values["config"], options=in_files, command="bench sweep", extra=FILE_ONLY)
        values = merged(values, from_file)
    executor = executor_choice(values)
    from forgetbench.method import methods
    names = values.get("methods") or ("all",)
    config = SweepConfig(methods=tuple(methods.names()) if names == ("all",) else names,
                         seeds=seed_list(values.get("seeds", ("0", "1", "2"))), configs=values.get("configs") or 4,
                         grid_seed=values.get("grid_seed") or 0, grids=extra.get("grids") or {},
                         fixed=extra.get("set") or {}, budgets=extra.get("budgets") or {},
                         budget_grid=extra.get("budget_grid"), name=values.get("name") or "")
    out = writable_folder(values.get("out") or "runs", probe=not values.get("dry_run"))   # a dry run writes nothing
    template = run_request({**values, "out": out, "seed": 0}, template=True)
    return SweepRequest(template=template, config=config, executor=executor, out=out,
                        dry_run=bool(values.get("dry_run")))


def seed_list(values: tuple[str, ...]) -> tuple[int, ...]:
    try:
        seeds = tuple(parse_as(str(v), int) for v in values)
    except ValueError:
        seeds = ()
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise FieldError("seeds", f"takes comma-separated seeds, whole numbers from 0 to {MAX_SEED}, e.g. 0,1,2; got "
                         f"{','.join(map(str, values))!r}.")
    return seeds


def executor_choice(values: dict) -> ExecutorChoice:
    kind = values.get("executor") or "local"
    if kind == "ray":
        if values.get("jobs"):
            raise FieldError("jobs", "is for --executor local; Ray runs as many tasks at once as the cluster holds.")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise FieldError("executor", "needs Ray: pip install 'forgetbench[ray]'.", value="ray") from None
    elif values.get("ray_address"):
        raise FieldError("ray_address", "is for --executor ray.")
    return ExecutorChoice(kind=kind, jobs=values.get("jobs") or 1, ray_address=values.get("ray_address"),
                          retries=values.get("retries"))


def run_sweep(request: SweepRequest) -> tuple[list[SweepRun], Tally | None]:
    """Every run of the sweep planned, then (unless a dry run) run by the chosen executor: (the runs, their tally;
    None for a dry run, which runs and writes nothing)."""
    from forgetbench.core.console import results_only
    from forgetbench.sweeper.executors import make_executor

    executor = None if request.dry_run else make_executor(request.executor)   # before the runs are planned
    runs = expand(request.template, request.config)
    if executor is None:
        return runs, None
    with results_only():
        return runs, drive(runs, executor, out=request.out)
