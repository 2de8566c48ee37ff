"""Sweeps: methods x configurations x seeds, each an ordinary content-addressed run.

The equal tuning budget: every method gets the same number N of configurations (default 4), each run for
every seed. Configuration 0 is the method's defaults at the target's budget, or at the method's own where the
sweep file's `budgets` gives one (the point a plain `bench run` makes, and the single-setting leaderboard
shows); configurations 1..N-1 are drawn from the method's grid:

    grid = the method's own knobs (`sweep` in its file, or the sweep file's `grids`)
         + the shared budget: learning rate and epochs (BUDGET_SCALES times configuration 0's, or `budget_grid`)

The draw is a Latin hypercube over the grid's knobs: for N-1 draws each knob's values are spread evenly
(value index floor((i + 1/2) k / (N-1)) for a knob with k values), and each knob's column is shuffled with
random.Random(f"forgetbench-sweep:{grid_seed}:{method}"). Draws equal to an earlier configuration (or to the
defaults) are replaced by the first unused grid points in that generator's order. So the draw depends only on
the method, its grid (values and knob order), its defaults and fixed values, N and grid_seed: the same on every
machine, whatever other methods the sweep holds. (With N-1 = 3 draws from a knob of 4 values, one value is
never drawn: the evenly spread positions are 0, 2 and 3; a larger N draws every value.)

A post-hoc knob (a WeightGrid method's `grid`: wise_ft's and lines' alpha, dare's p) changes no training: one
training run gives every value of it. So it is never drawn: every training configuration, configuration 0
included, is given the knob's whole grid (its values in the method's grid, plus configuration 0's own value) as
one comma-separated setting, and is evaluated at each value from its one training run. The equal budget counts
training runs: such a method gets the same N training configurations per seed as any other, each with |grid|
results (a run id, and a leaderboard row, per value); its draw is over its other knobs and the shared budget only.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from forgetbench.core.budget import Budget
from forgetbench.core.errors import FieldError, UserError, did_you_mean
from forgetbench.core.store import read_json, stable_hash
from forgetbench.method import WeightGrid, methods
from forgetbench.records.outcome import Outcome
from forgetbench.records.schema import file_digests
from forgetbench.runner.request import RunRequest
from forgetbench.runner.stages import RunPlan, plan_run

# The shared training budget every method sweeps, as multiples of the target's own learning rate and epochs.
BUDGET_SCALES = {"lr": (0.25, 0.5, 1.0, 2.0), "epochs": (1 / 3, 2 / 3, 1.0)}
MAX_GRID = 100_000          # grid points a method's grid may have (the fill lists them all)


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep file (or the flags) say beyond a single run's request."""

    methods: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    configs: int = 4
    grid_seed: int = 0
    grids: dict = field(default_factory=dict)        # method -> {knob: [values]}: replaces the method's grid
    fixed: dict = field(default_factory=dict)        # method -> {knob: value}: replaces the method's default
    budgets: dict = field(default_factory=dict)      # method -> {budget field: value}: the method's own budget
    budget_grid: dict | None = None                  # {lr: [...], epochs: [...]} absolute (default: scaled)
    name: str = ""

    def __post_init__(self):
        if self.configs < 1:
            raise FieldError("configs", f"must be at least 1, got {self.configs}.")
        if not self.methods or not self.seeds:
            raise UserError("A sweep needs at least one method and one seed.")
        for what, values in (("methods", self.methods), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise UserError(f"--{what} names {', '.join(sorted({str(v) for v in values if values.count(v) > 1}))} "
                                "more than once.")
        for what, table in (("grids", self.grids), ("set", self.fixed), ("budgets", self.budgets),
                            ("budget_grid", self.budget_grid or {})):
            if not isinstance(table, dict) or (what != "budget_grid" and
                                               not all(isinstance(v, dict) for v in table.values())):
                raise UserError(f"Sweep {what} must be a mapping of "
                                + ("lr / epochs to lists of values." if what == "budget_grid" else
                                   f"method to {{{'field' if what == 'budgets' else 'knob'}: "
                                   f"{'values' if what == 'grids' else 'value'}}}."))
        for what, table in (("grids", self.grids), ("set", self.fixed), ("budgets", self.budgets)):
            for m in table:
                if m not in methods:
                    raise UserError(f"Sweep {what}: unknown method {m!r}.{did_you_mean(m, methods.names())}")
                if m not in self.methods:
                    raise UserError(f"Sweep {what} names {m!r}, which is not among the sweep's methods.")


@dataclass(frozen=True)
class Configuration:
    index: int
    overrides: dict          # --set values
    budget: dict             # --budget values (over the request's)
    post_hoc: str = ""       # the knob in `overrides` evaluated at each of its values from the one training run

    def label(self) -> str:
        trained = {k: v for k, v in {**self.overrides, **self.budget}.items() if k != self.post_hoc}
        text = " ".join(f"{k}={v}" for k, v in trained.items()) or "defaults"
        if not self.post_hoc:
            return text
        grid = self.overrides[self.post_hoc]
        n = len(str(grid).split(","))
        return f"{text}; {self.post_hoc}={grid}: {n} result{'s' * (n != 1)} of one training run"


def budget_grid(budget: Budget, given: dict | None) -> dict[str, list]:
    """The shared budget knobs and their values: the sweep file's, else the target's scaled."""
    if given is not None:
        unknown = sorted(set(given) - {"lr", "epochs"})
        if unknown:
            raise UserError(f"budget_grid takes lr and epochs, not {', '.join(unknown)}.")
        _check_grid("budget_grid", given)
        return {k: list(v) for k, v in given.items()}
    return {k: [float(f"{getattr(budget, k) * s:.6g}") for s in scales] for k, scales in BUDGET_SCALES.items()}


def _check_grid(method: str, grid: dict) -> None:
    for knob, values in grid.items():
        if not isinstance(values, list | tuple) or not values:
            raise UserError(f"Sweep grid {method!r}: {knob} needs a non-empty list of values, got {values!r}.")


def post_hoc_grid(method: str, *, knob: str, grid: dict, fixed: dict, default: str) -> tuple[dict, dict]:
    """A post-hoc knob taken out of the draw: (the grid without it, `fixed` with the knob's whole grid as one
    comma-separated setting: the grid's values and configuration 0's own, `fixed`'s or the default, ascending)."""
    _check_grid(method, grid)
    start = str(fixed.get(knob, default)).split(",")
    try:
        values = sorted({float(v) for v in [*grid.get(knob, []), *start]})
    except ValueError:
        raise UserError(f"Sweep grid {method!r}: {knob} is evaluated from each training run, so its values must be "
                        f"numbers, got {[*grid.get(knob, []), *start]!r}.") from None
    # written as WeightGrid.variants writes each value, so that configuration 0's default is the plain run's id
    return ({k: v for k, v in grid.items() if k != knob},
            {**fixed, knob: ",".join(f"{v:g}" for v in values)})


def latin_hypercube(grid: dict[str, list], n: int, rng: random.Random) -> list[dict]:
    """n points; each knob's values spread evenly over them, each knob's column shuffled independently."""
    columns = {}
    for knob, values in grid.items():
        k = len(values)
        column = [values[math.floor((i + 0.5) * k / n)] for i in range(n)]
        rng.shuffle(column)
        columns[knob] = column
    return [{knob: columns[knob][i] for knob in grid} for i in range(n)]


def _same(a, b) -> bool:
    """The same setting: equal numbers (to the 6 digits the scaled budget values keep), else equal text."""
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6)
    except (TypeError, ValueError):
        return str(a) == str(b)


def configurations(method: str, *, n: int, grid: dict[str, list], budget_knobs: dict[str, list], fixed: dict,
                   defaults: dict, grid_seed: int) -> list[Configuration]:
    """Configuration 0 (the defaults, with `fixed` in place of the method's own) and n-1 drawn from the method's
    grid and the budget's (`fixed` holds where the draw varies nothing); fewer when the grid has fewer points."""
    _check_grid(method, grid)
    knobs = {**{k: list(v) for k, v in grid.items()}, **budget_knobs}
    rng = random.Random(f"forgetbench-sweep:{grid_seed}:{method}")
    drawn = latin_hypercube(knobs, n - 1, rng) if n > 1 and knobs else []
    size = math.prod(len(v) for v in knobs.values()) if knobs else 0
    if size > MAX_GRID:
        raise UserError(f"The sweep grid of {method!r} has {size:,} points (more than {MAX_GRID:,}); a sweep draws "
                        f"{n} of them: give fewer values per knob.")
    everything = [dict(zip(knobs, combo)) for combo in itertools.product(*knobs.values())]
    rng.shuffle(everything)   # the fill for draws that repeat a configuration: first unused points in this order
    start = {**defaults, **fixed}             # configuration 0; a drawn value equal to it is no variation
    seen = [{}]
    for point in drawn + everything:
        if len(seen) == n:
            break
        point = {k: v for k, v in point.items() if not _same(v, start.get(k))}
        if point not in seen:
            seen.append(point)
    budget_names = set(budget_knobs)
    return [Configuration(i, {**fixed, **{k: v for k, v in p.items() if k not in budget_names}},
                          {k: v for k, v in p.items() if k in budget_names}) for i, p in enumerate(seen)]


@dataclass
class SweepRun:
    method: str
    config: Configuration
    seed: int
    request: RunRequest
    plan: RunPlan

    @property
    def run_ids(self) -> list[str]:
        return [s.run_id for s in self.plan.specs]

    @property
    def key(self) -> str:
        return self.run_ids[0]

    @property
    def done(self) -> bool:
        return self.plan.done


def expand(template: RunRequest, sweep: SweepConfig) -> list[SweepRun]:
    """Every run of the sweep, each planned (checked, run ids known); nothing is loaded or trained."""
    from forgetbench.runner.evaluation_plan import target_and_suites

    unknown = [m for m in sweep.methods if m not in methods]      # a name, or a plugin's module:Class
    if unknown:
        raise UserError(f"Unknown method(s): {', '.join(unknown)}.{did_you_mean(unknown[0], methods.names())} "
                        f"Registered: {', '.join(methods.names())}.")
    target, _ = target_and_suites(template.target, list(template.suites), template.include_path)
    name = sweep.name or f"sweep-{stable_hash([template.model, template.target, sorted(sweep.methods)], 8)}"
    out = []
    for method in sweep.methods:
        # The method's own budget (a sweep file's `budgets`: RL wants smaller steps than SFT) is more specific than
        # the sweep's --budget, so it wins; the shared grid then scales the method's own learning rate and epochs.
        own = sweep.budgets.get(method, {})
        try:
            budget = target.budget.updated({**template.budget, **own})
        except UserError as e:
            raise UserError(f"Sweep budgets {method!r}: {e}") from None
        shared = budget_grid(budget, sweep.budget_grid)
        cls = methods.get(method)
        grid, fixed = sweep.grids.get(method, cls.sweep), sweep.fixed.get(method, {})
        knob = cls.grid if issubclass(cls, WeightGrid) else ""
        if knob:
            grid, fixed = post_hoc_grid(method, knob=knob, grid=grid, fixed=fixed, default=cls().params()[knob])
        configs = configurations(method, n=sweep.configs, grid=grid, budget_knobs=shared, fixed=fixed,
                                 grid_seed=sweep.grid_seed, defaults={**cls().params(), **budget.to_dict()})
        for config in configs:
            # the label names the method's own budget too, and which knob each training run is evaluated over
            config = replace(config, budget={**own, **config.budget}, post_hoc=knob)
            for seed in sweep.seeds:
                tag = {"name": name, "config": config.index, "configs": len(configs), "of": sweep.configs,
                       "grid_seed": sweep.grid_seed, "varied": config.label()}
                request = replace(template, method=method, seed=seed, overrides=config.overrides,
                                  budget={**template.budget, **config.budget}, sweep_tag=tag)
                try:
                    run_plan = plan_run(request)
                except UserError as e:
                    raise UserError(f"Sweep {method} configuration {config.index} ({config.label()}): {e}") from None
                out.append(SweepRun(method, config, seed, request, run_plan))
    ids = [i for r in out for i in r.run_ids]
    if len(set(ids)) != len(ids):
        raise UserError("Two configurations of the sweep are the same run (a grid repeats a value); fix the grid.")
    return out


def estimate_seconds(runs: list[SweepRun]) -> dict[str, float | None]:
    """Expected wall seconds of each run still to do, from the finished runs of its method (else of all finished
    runs): their mean time outside training, plus their mean training seconds per epoch times its epochs. None
    when nothing has finished yet."""
    finished: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        if r.done:
            record = read_json(r.plan.dirs[0] / "result.json", "result record")
            train = record.get("stage_seconds", {}).get("train", 0.0)
            epochs = max(record["spec"]["budget"]["epochs"], 1e-9)
            finished.setdefault(r.method, []).append((record.get("wall_seconds", 0.0) - train, train / epochs))
    everything = [x for v in finished.values() for x in v]
    out = {}
    for r in runs:
        if r.done:
            continue
        pool = finished.get(r.method) or everything
        out[r.key] = (sum(a for a, _ in pool) + sum(b for _, b in pool) * r.plan.budget.epochs) / len(pool) \
            if pool else None
    return out


def dry_run_rows(runs: list[SweepRun]) -> list[dict]:
    estimate = estimate_seconds(runs)
    # a row is one training run; `results` its result records (one per value of a post-hoc knob)
    return [{"method": r.method, "config": r.config.index, "seed": r.seed, "varied": r.config.label(),
             "run_id": r.key, "run_ids": r.run_ids, "results": len(r.run_ids), "status": "done" if r.done else "to do",
             "estimated_seconds": None if r.done or estimate[r.key] is None else round(estimate[r.key], 1)}
            for r in runs]


@dataclass
class Tally:
    done: int = 0            # finished before this invocation (or by another process meanwhile)
    finished: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)     # (run id, error)


def _damaged(record: dict, files: dict[str, str]) -> list[str]:
    """The files a worker sent whose sha256 is not the one its record names (the per-item file, lm-eval's)."""
    want = file_digests(record)
    return [p for p in sorted(want.keys() | files.keys())
            if p not in files or hashlib.sha256(files[p].encode()).hexdigest() != want.get(p)]


def _problem(outcome, run: SweepRun) -> str | None:
    """Why a worker's outcome cannot be written: its error, damaged per-item data, or nothing sent back for a
    run that is not finished here either (None: write it, or it is already here)."""
    if outcome.error is not None:
        return outcome.error
    bad = [run_id for run_id, record, files in outcome.results if _damaged(record, files)]
    if bad:
        return f"the files of {', '.join(bad)} came back damaged (checksum mismatch)"
    if not outcome.results and not run.plan.done:
        return ("the worker found it already finished in its own output folder and sent nothing back; remove that "
                "folder on the worker's machine, or use one --out for both")
    return None


def drive(runs: list[SweepRun], executor, *, out: Path, progress: bool = True) -> Tally:
    """Hand the runs still to do to `executor`, write each result as it comes back (atomically, here: the
    workers write nothing), and show one bar over the runs plus a line per finished or failed run."""
    from forgetbench.runner.stages import write_run
    from forgetbench.sweeper.executors import Job
    from tqdm import tqdm

    tally = Tally(done=sum(r.done for r in runs))
    todo = [r for r in runs if not r.done]
    by_key = {r.key: r for r in todo}
    logs = Path(out) / ".logs"
    jobs = [Job(r.key, r.request, logs / f"{r.key}.log") for r in todo]
    bar = tqdm(total=len(runs), initial=tally.done, desc=f"sweep ({executor.name})", unit="run", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    returned = 0

    def status():
        running = min(len(todo) - returned, executor.workers)
        bar.set_postfix_str(f"done {tally.done + tally.finished}, running {running}, failed {len(tally.failed)}")

    status()
    for outcome in executor.run(jobs):
        returned += 1
        r = by_key[outcome.key]
        what = f"{r.method} config {r.config.index} seed {r.seed}"
        problem = _problem(outcome, r)
        if problem is not None:
            tally.failed.append((outcome.key, problem))
            bar.write(f"FAILED {outcome.key} ({what}): {problem}", file=sys.stderr)
        elif not outcome.results:       # another process finished it here since the sweep was planned
            tally.done += 1
            bar.write(f"done elsewhere {outcome.key} ({what})", file=sys.stderr)
        else:
            for run_id, record, files in outcome.results:
                write_run(Path(out) / run_id, record, files)
            tally.finished += 1
            last = Outcome.of(outcome.results[-1][1])
            bar.write(f"done {outcome.key} ({what}; {r.config.label()}): target {last.target_delta:+.3f}, "
                      f"preserved {last.suite_average:+.3f}, {outcome.seconds:.0f} s", file=sys.stderr)
        status()
        bar.update(1)
    bar.close()
    return tally

