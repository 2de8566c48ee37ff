"""Calibration of the leaderboard's claims, measured on simulated tracks whose truth is known.

    python benchmarks/calibration.py [--tracks 200] [--quick] [--resamples 200] [--seed 0] [--out PATH]

Each simulated track goes through the leaderboard's own functions (tracks.build_tracks on in-memory runs,
frontier.frontiers), and every claim it prints is compared with the truth the track was drawn from: do the 95 %
intervals cover it, how often does a test reject at 5 % when the truth is identical, how often at a stated true
difference, how often is a method identical to the reference "not reached" at a matched gain.

The simulation (one track):
- items: a target task and preserved suites of a few tasks; each item has a base success probability p ~ Beta
  (its difficulty, per task), the base model's outcome is one Bernoulli(p) draw, shared by every run;
- tuned outcomes are binary and correlated with the base's: a base-right item is forgotten with probability
  proportional to 1 - p (hard items go first), a base-wrong one learned with a probability the same for every
  item; rates are set so that the population Δ (tuned minus base, over the item population) is what a
  configuration's truth says, exactly (nothing is clipped: the simulator checks every probability lies in [0, 1]);
- seeds: each run shifts its target gain and its preserved Δ (one shift for all preserved tasks) by a normal
  draw with SD `seed_sd` (the between-seed SD, in fractions), the two shifts correlated (a seed that learns more
  forgets more), clipped symmetrically at 4 SD (the mean stays exact);
- methods: naive_sft (the reference), twin (identical truth) and better (forgets `difference` less at every
  configuration); each with 1 or 4 configurations along a known curve: configuration k gains FRACTIONS[k] x
  `top_gain` and its preserved Δ is curve(fraction) (0 is the default, the track's budget).
The truth of a frontier claim is the leaderboard's own definition (frontier.staircase, frontier.mean_over) on the
true points, at g* = L x the population's headroom (1 - the base model's expected target score). Every read of
the leaderboard's outputs is in one
function, `claims`: when its objects change, that is the function to adapt.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from forgetbench.leaderboard import frontier
from forgetbench.leaderboard.tracks import Run, Track, build_tracks

ROOT = Path(__file__).resolve().parents[1]
# The simulated methods borrow registered names (shown as LABEL says): the leaderboard looks each run's method up in
# the method registry (tracks._defaults), and an unregistered name costs a scan of the installed entry points, ~20 ms
# a run here. Their params are {} (the defaults), so the names change nothing else.
REFERENCE, TWIN, BETTER = "naive_sft", "self_sft", "context_free"
METHODS = (REFERENCE, TWIN, BETTER)
LABEL = {REFERENCE: "naive_sft", TWIN: "twin", BETTER: "better"}
LEVELS = frontier.LEVELS
AREA = "area"                               # the frontier's mean Δ over gains 0..g*(top level), next to the levels
FRACTIONS = (1.0, 0.8, 0.6, 0.4)            # configuration k's share of the top gain (0: the default)
LEARNING_RATES = (0.1, 0.08, 0.06, 0.04)    # how a configuration is named in its runs' budget (0.1: the default)
CLIP = 4.0                                  # seed shifts are clipped at this many SDs, symmetrically
COVERAGE, TYPE_I = 0.93, 0.06               # the targets
ALPHA = 0.05


@dataclass(frozen=True)
class Scenario:
    seeds: int                      # training seeds per configuration
    configs: int                    # configurations per method: the first `configs` of FRACTIONS
    seed_sd: float                  # between-seed SD of the target gain and of the preserved Δ (fraction)
    difference: float = 0.03        # `better` forgets this much less than the reference, at every configuration
    top_gain: float = 0.72          # the default configuration's true target gain (of a headroom of 0.9)
    transfer: float = 0.02          # preserved items the base got wrong and a tuned model gets right (fraction)
    target_forgetting: float = 0.01  # target items the base got right and a tuned model gets wrong
    seed_correlation: float = -0.5  # between a seed's gain shift and its preserved-Δ shift
    target: str = "target"
    suites: tuple = (("s1", ("p1", "p2")), ("s2", ("p3", "p4")))
    target_items: int = 200
    preserved_items: int = 150      # per preserved task
    task_spread: float = 0.01       # tasks of a suite differ in Δ by up to this, averaging to the suite's Δ

    @property
    def name(self) -> str:
        return f"{self.seeds} seeds, {self.configs} config{'s' * (self.configs > 1)}, seed SD {100 * self.seed_sd:g}"

    @property
    def preserved(self) -> list[str]:
        return [t for _, tasks in self.suites for t in tasks]

    @property
    def tasks(self) -> list[str]:
        return [self.target, *self.preserved]

    def items(self, task: str) -> int:
        return self.target_items if task == self.target else self.preserved_items


def curve(fraction: float) -> float:
    """The reference's true preserved Δ at a configuration that gains `fraction` of the top gain: more gain, more
    forgetting, every configuration on the front."""
    return -(0.03 + 0.06 * fraction ** 2)


def beta_of(scenario: Scenario, task: str) -> tuple[float, float]:
    """The Beta distribution of a task's base success probabilities: a hard target, preserved tasks of mixed
    difficulty."""
    if task == scenario.target:
        return (1.0, 9.0)          # mostly unknown to the base model (mean 0.1): the levels of its headroom are reached
    shapes = ((4.0, 2.0), (3.0, 3.0), (5.0, 3.0), (2.0, 2.0))
    return shapes[scenario.preserved.index(task) % len(shapes)]


# ----------------------------------------------------------------------------------------------------- the truth
@dataclass(frozen=True)
class Truth:
    gain: dict[tuple[str, int], float]          # (method, configuration) -> target gain
    preserved: dict[tuple[str, int], float]     # -> every suite's Δ, hence their average
    points: dict[str, list[tuple[float, float]]]  # method -> its configurations' true (gain, Δ)
    matched_gain: dict[float, float]            # level -> L x the population's target headroom
    matched: dict[tuple[str, float | str], float]   # (method, level or AREA) -> the true frontier's value

    def difference(self, method: str, config: int) -> float:
        """A row's true suite-average Δ minus the reference's default row's."""
        return self.preserved[method, config] - self.preserved[REFERENCE, 0]

    def frontier_difference(self, method: str, level: float | str) -> float:
        return self.matched[method, level] - self.matched[REFERENCE, level]


def truth(scenario: Scenario) -> Truth:
    """The population values of every claim (over the seed distribution and the item population)."""
    gain, preserved, points = {}, {}, {}
    for method in METHODS:
        shift = scenario.difference if method == BETTER else 0.0
        for k in range(scenario.configs):
            gain[method, k] = FRACTIONS[k] * scenario.top_gain
            preserved[method, k] = curve(FRACTIONS[k]) + shift
        points[method] = [(gain[method, k], preserved[method, k]) for k in range(scenario.configs)]
    a, b = beta_of(scenario, scenario.target)
    headroom = 1 - a / (a + b)                   # the population's: 1 - the base model's expected target score
    matched_gain = {lv: lv * headroom for lv in LEVELS}
    matched = {}
    for method, pts in points.items():
        matched |= {(method, lv): frontier.staircase(pts, g) for lv, g in matched_gain.items()}
        matched[method, AREA] = frontier.mean_over(pts, max(matched_gain.values()))
    return Truth(gain, preserved, points, matched_gain, matched)


def task_deltas(scenario: Scenario, suite_delta: float) -> dict[str, float]:
    """Each preserved task's true Δ: the suite's, spread evenly over its tasks so that their mean is the suite's."""
    out = {}
    for _, tasks in scenario.suites:
        offsets = np.linspace(-scenario.task_spread, scenario.task_spread, len(tasks)) if len(tasks) > 1 else [0.0]
        out |= {t: suite_delta + float(o) for t, o in zip(tasks, offsets)}
    return out


# ------------------------------------------------------------------------------------------------- the simulation
@dataclass
class Draw:
    """One simulated track's outcomes (0/1 per item, in doc_id order)."""
    base: dict[str, np.ndarray]                              # task -> the base model's outcomes
    tuned: dict[tuple[str, int, int], dict[str, np.ndarray]]  # (method, configuration, seed) -> task -> outcomes


def draw(scenario: Scenario, rng: np.random.Generator) -> Draw:
    p = {t: rng.beta(*beta_of(scenario, t), scenario.items(t)) for t in scenario.tasks}
    base = {t: (rng.random(v.size) < v).astype(np.int8) for t, v in p.items()}
    known = truth(scenario)
    tuned = {}
    for method in METHODS:
        for k in range(scenario.configs):
            for seed, shift in enumerate(seed_shifts(scenario, rng)):
                deltas = run_deltas(scenario, known.gain[method, k], known.preserved[method, k], shift)
                tuned[method, k, seed] = {t: tuned_outcomes(scenario, t, p[t], base[t], deltas[t], rng)
                                          for t in scenario.tasks}
    return Draw(base, tuned)


def run_deltas(scenario: Scenario, gain: float, preserved: float, shift: np.ndarray) -> dict[str, float]:
    """One run's population Δ per task: its configuration's truth plus its seed's (gain, preserved) shifts."""
    return {scenario.target: gain + shift[0],
            **{t: d + shift[1] for t, d in task_deltas(scenario, preserved).items()}}


def seed_shifts(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """(seeds, 2): each seed's shift of its target gain and of its preserved Δ."""
    rho = scenario.seed_correlation
    z = rng.standard_normal((scenario.seeds, 2)) @ np.array([[1.0, rho], [0.0, math.sqrt(1 - rho ** 2)]])
    return scenario.seed_sd * np.clip(z, -CLIP, CLIP)      # symmetric: the shifts' mean stays 0


def tuned_outcomes(scenario: Scenario, task: str, p: np.ndarray, base: np.ndarray, delta: float,
                   rng: np.random.Generator) -> np.ndarray:
    """One tuned model's outcomes on a task whose population Δ (this seed's) is `delta`.

    A base-right item is forgotten with probability phi w(p), a base-wrong one learned with probability
    tau / (1 - m), with m = E[p] and v = E[p (1 - p)] over the task's Beta and w(p) = ((1 - p) / v + 1 / m) / 2
    (hard items are forgotten more; E[p w(p)] = 1), so that over the item population Δ = tau - phi exactly. tau is
    the task's background rate (preserved tasks: the transfer; the target: Δ plus its forgetting rate); where that
    would make a rate negative, both rates are raised by the same amount (Δ unchanged)."""
    a, b = beta_of(scenario, task)
    m, v = a / (a + b), a * b / ((a + b) * (a + b + 1))
    tau = scenario.target_forgetting + delta if task == scenario.target else scenario.transfer
    phi = tau - delta
    lift = max(0.0, -min(tau, phi))
    tau, phi = tau + lift, phi + lift
    forget = phi * ((1 - p) / v + 1 / m) / 2
    learn = tau / (1 - m)
    if forget.max(initial=0.0) > 1 or learn > 1:
        raise ValueError(f"{scenario.name}, {task}: Δ {delta:+.3f} needs a probability above 1; the truth would not "
                         "be exact")
    u = rng.random(p.size)
    return np.where(base == 1, u >= forget, u < learn).astype(np.int8)


def simulate_track(scenario: Scenario, rng: np.random.Generator) -> list[Run]:
    return runs_of(scenario, draw(scenario, rng))


# --------------------------------------------------------------------------------- in-memory runs for the leaderboard
_ITEM = ({"score": 0.0, "correct": False}, {"score": 1.0, "correct": True})   # shared: the leaderboard only reads


def runs_of(scenario: Scenario, outcomes: Draw) -> list[Run]:
    """The draw as the leaderboard's Run objects: the record fields build_tracks and frontiers read, and per-item
    rows keyed as load_run keys them (tests/test_calibration_sim.py checks them against written run folders)."""
    base = {("base", t, i): _ITEM[v] for t, vs in outcomes.base.items() for i, v in enumerate(vs.tolist())}
    runs = []
    for (method, k, seed), tasks in outcomes.tuned.items():
        items = dict(base)
        items |= {("tuned", t, i): _ITEM[v] for t, vs in tasks.items() for i, v in enumerate(vs.tolist())}
        record = _record(scenario, method, k, seed)
        runs.append(Run(Path("simulated") / record["run_id"], record, items))
    return runs


def _record(scenario: Scenario, method: str, config: int, seed: int) -> dict:
    tasks = {t: {"items_hash": "simulated", "content_hash": "simulated"} for t in scenario.tasks}
    return {
        "kind": "run", "run_id": f"{method}-c{config}-s{seed}",
        "spec": {"method": method, "model": "simulated", "target": "simulated-target", "seed": seed,
                 "suites": [s for s, _ in scenario.suites], "params": {},
                 "budget": {"epochs": 1, "lr": LEARNING_RATES[config]}, "eval": {}, "kl": {}, "data": "0" * 16,
                 "placement": {"device": "cpu", "dtype": "float32"}},
        "provenance": {"tasks": tasks, "generation": {"backend": "simulated"}, "torch": "", "transformers": "",
                       "lm_eval": "", "base_fingerprint": "0" * 64, "machine": "simulated", "threads": 1,
                       "device": "cpu"},
        "target": {"task": scenario.target},
        "suites": {s: {"average_over": list(tasks_)} for s, tasks_ in scenario.suites},
        "kl": {"token_exact": {"mean": 0.0, "se": 0.0}},
        "answer_class_shift": {"answer_class": None},
        "training": {},
        "sweep": {"name": "simulated", "config": config, "configs": scenario.configs},
    }


def build(runs: list[Run], *, resamples: int, seed: int = 0) -> Track:
    """The leaderboard's track of the runs, with its frontiers computed (what frontier.of returns)."""
    with contextlib.redirect_stderr(io.StringIO()):        # its progress bar, shown for tracks of 10 rows or more
        (track,) = build_tracks(runs, REFERENCE, n_resamples=resamples)
    track.frontier = frontier.frontiers(track, n_resamples=resamples, seed=seed)
    return track


# --------------------------------------------------------------------- the claims: every read of leaderboard objects
@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """A claim against the reference: the difference's interval and its tests, None where none is printed."""
    interval: Interval | None
    p: float | None
    p_adjusted: float | None


@dataclass(frozen=True)
class RowClaims:
    gain: Interval
    suites: dict[str, Interval]
    average: Interval
    vs_reference: Comparison | None        # None for the reference's default row


@dataclass(frozen=True)
class MatchedClaims:
    value: Interval | None                  # None: "not reached"
    vs_reference: Comparison | None


@dataclass(frozen=True)
class Claims:
    rows: dict[tuple[str, int], RowClaims]                       # (method, configuration)
    frontier: dict[tuple[str, float | str], MatchedClaims]       # (method, level or AREA)
    matched_gain: dict[float, float]                             # level -> the g* the track used


def claims(track: Track) -> Claims:
    """What the leaderboard prints about the track, as plain values. The only function that reads leaderboard
    objects (Row, Frontier, Matched): adapt it when they change."""
    def interval(x) -> Interval:
        return Interval(x.estimate, x.low, x.high)

    rows = {}
    for r in track.rows:
        config = LEARNING_RATES.index(r.runs[0].spec["budget"]["lr"])
        vs = None if r.difference is None else Comparison(interval(r.difference), r.p, r.p_holm)
        rows[r.method, config] = RowClaims(interval(r.target_gain), {s: interval(v) for s, v in r.suites.items()},
                                           interval(r.average), vs)
    frs, info = frontier.of(track)
    matched = {}
    for f in frs:
        for key, m in [*f.matched.items(), (AREA, f.area)]:
            value = interval(m) if m is not None and m.is_reached else None
            # no difference interval at matched gain: its bootstrap p, and Holm's over methods and levels
            vs = None if value is None or f.method == track.baseline else Comparison(None, m.p, m.p_holm)
            matched[f.method, key] = MatchedClaims(value, vs)
    return Claims(rows, matched, dict(info["gains"]))


# ------------------------------------------------------------------------------------------ measuring one track
def covers(iv: Interval, true: float) -> bool:
    return iv.low <= true <= iv.high


def measure(track: Track, known: Truth) -> dict[str, list[bool]]:
    """Per claim, one outcome per printed instance: covered (coverage), rejected (type-I, power), reached."""
    c = claims(track)
    out: dict[str, list[bool]] = defaultdict(list)
    for (method, k), row in c.rows.items():
        out["coverage: row target gain"].append(covers(row.gain, known.gain[method, k]))
        out["coverage: row suite Δ"] += [covers(iv, known.preserved[method, k]) for iv in row.suites.values()]
        out["coverage: row suite-average Δ"].append(covers(row.average, known.preserved[method, k]))
        if row.vs_reference is not None:
            _compare(out, "row vs reference", row.vs_reference, known.difference(method, k),
                     power=(method, k) == (BETTER, 0))
    for (method, key), m in c.frontier.items():
        name = _frontier_name(key)
        if method != REFERENCE and key != AREA:
            out[f"reach: {name} ({LABEL[method]})"].append(m.value is not None)
        if m.value is not None:
            out[f"coverage: {name}"].append(covers(m.value, known.matched[method, key]))
            if key != AREA:       # the truth at the g* this track used: the interval's own target, g* held fixed
                true = frontier.staircase(known.points[method], c.matched_gain[key])
                if not math.isnan(true):
                    out[f"coverage: {name}, at the track's g*"].append(covers(m.value, true))
        if method != REFERENCE:
            _compare(out, name, m.vs_reference, known.frontier_difference(method, key), power=method == BETTER)
    return dict(out)


def _frontier_name(key: float | str) -> str:
    return "frontier mean Δ over gains" if key == AREA else f"frontier Δ at {key:.0%} gain"


def _compare(out: dict, name: str, vs: Comparison | None, true_difference: float, *, power: bool) -> None:
    """Among the comparisons printed (none where a method is "not reached"): coverage of the difference's interval,
    rejections at 5 % under identical truth (type-I) and at the stated difference (power), per kind of p."""
    if vs is None:
        return
    if vs.interval is not None:
        out[f"coverage: {name} (difference)"].append(covers(vs.interval, true_difference))
    null = abs(true_difference) < 1e-12
    for which, p in (("p", vs.p), ("p adjusted", vs.p_adjusted)):
        if p is not None and (null or power):
            out[f"{'type-I' if null else 'power'}: {name} {which}"].append(p < ALPHA)


# ------------------------------------------------------------------------------------------------ many tracks
def run_scenario(scenario: Scenario, *, tracks: int, resamples: int, rng: np.random.Generator) -> list[dict]:
    known = truth(scenario)
    results = []
    for _ in range(tracks):
        track = build(simulate_track(scenario, rng), resamples=resamples, seed=int(rng.integers(2 ** 31)))
        results.append(measure(track, known))
    return results


@dataclass(frozen=True)
class Rate:
    rate: float
    n: int                  # instances (rows x tracks for row claims)
    tracks: int             # tracks with at least one instance
    mc_se: float            # binomial, over instances (rows of a track are not independent: a lower bound)
    target: str | None      # ">= 0.93", "<= 0.06" or None (reported only)
    meets: bool | None


def target_of(claim: str) -> tuple[str | None, bool | None]:
    kind = claim.split(":")[0]
    return {"coverage": (f">= {COVERAGE}", True), "type-I": (f"<= {TYPE_I}", False)}.get(kind, (None, None))


def summarise(scenario: Scenario, results: list[dict], *, seconds: float) -> dict:
    names = sorted({k for r in results for k in r})
    rates = {}
    for name in names:
        hits = [x for r in results for x in r.get(name, [])]
        rate = float(np.mean(hits))
        target, at_least = target_of(name)
        meets = None if target is None else (rate >= COVERAGE if at_least else rate <= TYPE_I)
        rates[name] = Rate(rate, len(hits), sum(1 for r in results if r.get(name)),
                           math.sqrt(rate * (1 - rate) / len(hits)), target, meets)
    known = truth(scenario)
    stated = {"row vs reference": known.difference(BETTER, 0),
              **{_frontier_name(k): known.frontier_difference(BETTER, k) for k in (*LEVELS, AREA)}}
    return {"scenario": asdict(scenario) | {"name": scenario.name}, "tracks": len(results),
            "seconds": round(seconds, 1), "true_difference_for_power": stated,
            "claims": {k: asdict(v) for k, v in rates.items()}}


# --------------------------------------------------------------------------------------------------- the report
COVERAGE_COLUMNS = [("gain", "coverage: row target gain"), ("suite Δ", "coverage: row suite Δ"),
                    ("avg Δ", "coverage: row suite-average Δ"),
                    ("vs ref", "coverage: row vs reference (difference)"),
                    *[(f"F@{lv:.0%}", f"coverage: frontier Δ at {lv:.0%} gain") for lv in LEVELS],
                    *[(f"F@{lv:.0%} (ĝ*)", f"coverage: frontier Δ at {lv:.0%} gain, at the track's g*")
                      for lv in LEVELS],
                    ("mean Δ", "coverage: frontier mean Δ over gains")]
TEST_COLUMNS = [("row p", "type-I: row vs reference p"), ("row p Holm", "type-I: row vs reference p adjusted"),
                *[(f"F p@{lv:.0%}", f"type-I: frontier Δ at {lv:.0%} gain p") for lv in LEVELS],
                ("mean Δ p", "type-I: frontier mean Δ over gains p")]
POWER_COLUMNS = [("row Holm", "power: row vs reference p adjusted"),
                 *[(f"F@{lv:.0%}", f"power: frontier Δ at {lv:.0%} gain p") for lv in LEVELS],
                 *[(f"reach {lv:.0%} {m}", f"reach: frontier Δ at {lv:.0%} gain ({m})") for m in ("twin", "better")
                   for lv in LEVELS]]


def _cell(summary: dict, claim: str) -> str:
    c = summary["claims"].get(claim)
    if c is None:
        return "—"
    text = f"{c['rate']:.3f}"
    return f"**{text}**" if c["meets"] is False else text


def table(summaries: list[dict], columns: list[tuple[str, str]]) -> str:
    head = ["seeds", "configs", "seed SD", *[h for h, _ in columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        sc = s["scenario"]
        cells = [str(sc["seeds"]), str(sc["configs"]), f"{100 * sc['seed_sd']:g}", *[_cell(s, c) for _, c in columns]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(summaries: list[dict]) -> str:
    return "\n\n".join([
        "Coverage of the 95 % intervals (target >= 0.93; bold: misses it)", table(summaries, COVERAGE_COLUMNS),
        "Rejections at 5 % under identical truth (target <= 0.06; bold: misses it)", table(summaries, TEST_COLUMNS),
        "Power at the stated true difference (better vs naive_sft; among the tests printed), and P(reach) at each "
        "matched gain of twin (identical to naive_sft) and better",
        table(summaries, POWER_COLUMNS)])


# ------------------------------------------------------------------------------------------------------- command
def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        return [Scenario(seeds=n, configs=c, seed_sd=sd) for n in (2, 5) for c in (1, 4) for sd in (0.0, 0.04)]
    return [Scenario(seeds=n, configs=c, seed_sd=sd) for n in (2, 3, 5) for c in (1, 4) for sd in (0.0, 0.02, 0.04)]


def _commit() -> str | None:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, help="simulated tracks per scenario (default 200; 40 with --quick)")
    ap.add_argument("--quick", action="store_true", help="8 scenarios, 40 tracks each unless --tracks; no file "
                                                         "written unless --out")
    ap.add_argument("--resamples", type=int, default=200, help="bootstrap resamples of the frontier (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="the JSON (default benchmarks/calibration.json; none with --quick)")
    args = ap.parse_args(argv)
    tracks = args.tracks or (40 if args.quick else 200)
    out = args.out or (None if args.quick else str(ROOT / "benchmarks" / "calibration.json"))
    chosen = scenarios(args.quick)
    summaries, start = [], time.perf_counter()
    for scenario, seq in zip(chosen, np.random.SeedSequence(args.seed).spawn(len(chosen))):
        t = time.perf_counter()
        results = run_scenario(scenario, tracks=tracks, resamples=args.resamples, rng=np.random.default_rng(seq))
        summaries.append(summarise(scenario, results, seconds=time.perf_counter() - t))
        print(f"{scenario.name}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    result = {"tracks": tracks, "resamples": args.resamples, "seed": args.seed, "commit": _commit(),
              "seconds": round(time.perf_counter() - start, 1), "targets": {"coverage": COVERAGE, "type_I": TYPE_I},
              "scenarios": summaries}
    print(report(summaries))
    print(f"\n{len(chosen)} scenarios x {tracks} tracks, {result['seconds']:.0f} s", file=sys.stderr)
    if out:
        Path(out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
