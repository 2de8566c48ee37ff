"""Runs -> tracks -> one row per (method, setting, budget), with paired statistics computed from per-item outcomes.

A track is the runs that share base model, target and suites. Inside a track everything that decides the
numbers must be identical (evaluated items and prompts, evaluation and KL settings, backend, batch size,
precision, library versions, training data) except what a sweep varies: a method's hyperparameters and the
training budget. Seeds of the same (method, setting, budget) form one row: per-item scores are averaged over
seeds and the intervals come from a hierarchical bootstrap (seeds, then items within each task).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from forgetbench.core.errors import UserError
from forgetbench.core.store import stable_hash
from forgetbench.leaderboard.stats import (
    Interval,
    SeedLevel,
    holm,
    minimum_detectable_effect,
    paired_bootstrap_ci,
    seed_level,
)
from forgetbench.records.outcome import Outcome
from forgetbench.records.schema import load_run_folder
from tqdm import tqdm

N_RESAMPLES = 10_000


@dataclass
class Run:
    path: Path
    record: dict
    items: dict          # (model, task, doc_id) -> item

    @property
    def spec(self) -> dict:
        return self.record["spec"]

    @cached_property
    def outcome(self) -> Outcome:
        """The typed view of the record's outcome (records.outcome)."""
        return Outcome.of(self.record, self.path)

    @property
    def external(self) -> bool:
        """A checkpoint trained elsewhere (`bench eval --out`): no training data, budget or cost of its own."""
        return self.record["kind"] == "external"

    def settings(self) -> dict:
        """What must be equal for two runs to be compared (an external checkpoint's training data is unknown, so
        only runs trained here compare theirs)."""
        s, p = self.spec, self.record["provenance"]
        return {"evaluated items and prompts": {t: v["items_hash"] for t, v in p["tasks"].items()},
                "task data": {t: v["content_hash"] for t, v in p["tasks"].items()},
                "training data": None if self.external else s["data"],
                "evaluation settings (backend, batch size, decoding, limits)": s["eval"],
                "KL settings": s["kl"], "device and dtype": s["placement"], "generation backend": p["generation"],
                "library versions": {k: p[k] for k in ("torch", "transformers", "lm_eval")}}

    @property
    def answer_class(self) -> str | None:
        return self.record["answer_class_shift"]["answer_class"]

    def scores(self, who: str, keys: list[tuple[str, int]], field_: str = "score") -> np.ndarray:
        return np.array([float(self.items[(who, t, d)][field_]) for t, d in keys])


def load_run(folder: Path, *, lm_eval_outputs: bool = True) -> Run:
    record, items = load_run_folder(folder, lm_eval_outputs=lm_eval_outputs)
    return Run(Path(folder), record, {(it["model"], it["task"], it["doc_id"]): it for it in items})


def load_runs(root: Path) -> list[Run]:
    """The runs of a runs folder, or of a published table's runs archive (leaderboard.archive)."""
    from forgetbench.leaderboard import archive

    root = Path(root)
    archived = archive.is_archive(root)
    if archived:
        root = archive.extracted(root)
    elif not root.is_dir():
        raise UserError(f"The runs folder {root} does not exist. Accepted: a folder that `bench run --out` wrote, "
                        f"or a published table's runs archive (*{archive.SUFFIX}).")
    # a folder named .* is a temporary one (forgetbench.core.store.atomic_dir), never a finished run
    runs = [load_run(p.parent, lm_eval_outputs=not archived) for p in sorted(root.glob("*/result.json"))
            if not p.parent.name.startswith(".")]
    if not runs:
        raise UserError(f"No result records (*/result.json) under {root}.")
    return runs


def _defaults(method: str) -> dict:
    from forgetbench.method import methods
    return methods.get(method)().params() if method in methods else {}     # a plugin's module.Class too


def _diff(values: dict, reference: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(values.items()) if reference.get(k) != v)


@dataclass
class Row:
    method: str
    setting: str                       # non-default hyperparameters, "" for the defaults
    runs: list[Run]
    budget: str = ""                   # budget fields that differ from the track's, "" for none
    target_score: float = math.nan     # tuned, mean over seeds
    # Intervals: method-level (leaderboard.stats.SeedLevel: seeds the unit of replication) with two seeds or more;
    # with one seed, of this trained model only (leaderboard.stats.Interval: items resampled), and `method_level`
    # is False: no claim about the method is made from such a row.
    target_gain: Interval | SeedLevel | None = None
    suites: dict[str, Interval | SeedLevel] = field(default_factory=dict)
    average: Interval | SeedLevel | None = None    # mean of the suite deltas
    difference: SeedLevel | None = None  # suite average minus the reference row's (both with two seeds or more)
    seed_sd: float | None = None       # between-seed SD of the suite-average delta
    kl: float = math.nan
    kl_se: float = math.nan
    forgetting: float = math.nan       # preserved items right -> wrong vs the base, fraction (mean over seeds)
    transfer: float = math.nan         # wrong -> right
    p: float | None = None             # the difference's t test (method level), None where it has none
    p_holm: float | None = None        # Holm-adjusted over the track's rows with a p
    shift: float | None = None            # answer-class probe: tuned - base mass, mean over seeds
    preserved: np.ndarray | None = None   # per-item preserved scores, mean over seeds (track item order)
    tuned: np.ndarray | None = None       # per-item preserved scores, (seeds, items)

    @property
    def seeds(self) -> list[int]:
        return [r.spec["seed"] for r in self.runs]

    @property
    def external(self) -> bool:
        return self.runs[0].external        # a row is all external or all trained here (_check_comparable)

    @property
    def label(self) -> str:
        varied = " ".join(x for x in (self.setting, self.budget, "external" * self.external) if x)
        return f"{self.method} ({varied})" if varied else self.method

    @property
    def method_level(self) -> bool:
        """Whether this row's seeds support claims about the method (two or more: a between-seed variance)."""
        return len(self.runs) >= 2

    @property
    def is_default(self) -> bool:
        return not self.setting and not self.budget and not self.external


@dataclass
class Track:
    key: str
    runs: list[Run]
    baseline: str
    rows: list[Row]
    suites: list[str]
    target_task: str
    n_target: int
    n_suite: dict[str, int]
    tasks: dict[str, list[str]]        # suite -> the tasks its average is over
    mde: dict[str, float]              # suite (and "average") -> minimum detectable effect
    budget: dict = field(default_factory=dict)          # the track's training budget (rows say what they vary)
    machines: list[str] = field(default_factory=list)   # where the runs were made (CPU and instruction set)
    base_items: int = 0                # the base model's per-item outcomes compared across those machines
    name: str = ""                     # file name stem when published (default: the model's name)
    note: str | None = None            # the publisher's line for the header (--note)
    frontier: tuple | None = None      # leaderboard.frontier.of(track), computed once
    predictors: list | None = None     # leaderboard.predictors.analyse(track), computed once

    def __post_init__(self):
        model = self.first.spec["model"].rstrip("/").split("/")[-1]
        self.name = self.name or "".join(c if c.isalnum() or c in "-_." else "-" for c in model)

    @property
    def first(self) -> Run:
        return self.runs[0]


def _check_comparable(runs: list[Run]) -> None:
    ref = runs[0]           # a run trained here when there is one (build_track puts them first)
    want = ref.settings()
    for r in runs[1:]:
        got = r.settings()
        bad = [k for k in want if got[k] != want[k] and not (k == "training data" and None in (got[k], want[k]))]
        if bad:
            detail = "; ".join(f"{k}: {json.dumps(want[k], sort_keys=True, default=str)[:200]} vs "
                               f"{json.dumps(got[k], sort_keys=True, default=str)[:200]}" for k in bad)
            raise UserError(f"Runs {ref.path} and {r.path} share base model, target and suites but differ in "
                            f"{', '.join(bad)} ({detail}). They cannot be compared in one table: put them in "
                            "separate --runs folders, or rerun one of them with the other's settings.")
        dup = [x for x in runs if x is not r and all(x.spec[k] == r.spec[k] for k in ("method", "params", "budget",
                                                                                     "seed"))]
        if mixed := [x for x in runs if x.spec["method"] == r.spec["method"] and x.external != r.external]:
            raise UserError(f"Runs {mixed[0].path} and {r.path} are both named {r.spec['method']}, but one is an "
                            "external checkpoint (`bench eval --out`) and the other was trained here; rename the "
                            "external one (its --name).")
        if dup:
            raise UserError(f"Runs {dup[0].path} and {r.path} are the same method, setting, budget and seed; keep "
                            "one.")


def _item_keys(run: Run, tasks: list[str]) -> list[tuple[str, int]]:
    return sorted(k[1:] for k in run.items if k[0] == "tuned" and k[1] in tasks)


def _suite_weights(record: dict) -> dict[str, float]:
    """Each preserved task's weight in the suite average (mean over suites of the mean over their tasks)."""
    suites = record["suites"]
    w: dict[str, float] = {}
    for s in suites.values():
        for t in s["average_over"]:
            w[t] = w.get(t, 0.0) + 1 / (len(suites) * len(s["average_over"]))
    return w


def build_track(runs: list[Run], baseline: str, n_resamples: int = N_RESAMPLES) -> Track:
    runs = sorted(runs, key=lambda r: r.external)     # stable: a trained run describes the track when there is one
    _check_comparable(runs)
    first = runs[0]
    rec = first.record
    suites = list(first.spec["suites"])
    tasks = {s: list(rec["suites"][s]["average_over"]) for s in suites}
    weights = _suite_weights(rec)
    preserved = list(weights)
    target_task = rec["target"]["task"]
    keys = {s: _item_keys(first, tasks[s]) for s in suites}
    pkeys = _item_keys(first, preserved)
    tkeys = _item_keys(first, [target_task])
    base = {"target": first.scores("base", tkeys), "preserved": first.scores("base", pkeys),
            "preserved correct": first.scores("base", pkeys, "correct")}
    # Runs made on different machines belong together when their settings agree, but only if the base model's
    # per-item outcomes are the same on each: that is the check that the machines compute the same benchmark.
    for r in runs[1:]:
        differ = int((r.scores("base", pkeys + tkeys) != first.scores("base", pkeys + tkeys)).sum())
        if differ:
            raise UserError(f"The base model's per-item outcomes differ between {first.path} and {r.path} on "
                            f"{differ} of {len(pkeys) + len(tkeys)} items although their settings agree (machines: "
                            f"{_machine(first)}; {_machine(r)}); the base evaluation is not reproducible across "
                            "them. Put them in separate --runs folders, or rerun both on one machine.")
    budget = track_budget(runs, baseline)
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        key = (r.spec["method"], _diff(r.spec["params"], _defaults(r.spec["method"])), _diff(r.spec["budget"], budget))
        groups.setdefault(key, []).append(r)
    order = sorted(groups, key=lambda k: (k[0] != baseline, k[0], k[1] != "" or k[2] != "", k[1], k[2]))
    boot = {"n_resamples": n_resamples}
    ptasks = [t for t, _ in pkeys]
    position = {k: i for i, k in enumerate(pkeys)}
    where = {s: [position[k] for k in keys[s]] for s in suites}
    rows = []
    progress = tqdm(order, desc=f"bootstrap intervals ({n_resamples:,} resamples) per row", unit="row",
                    file=sys.stderr, disable=len(order) < 10, leave=False)
    for method, setting, varied in progress:
        members = sorted(groups[(method, setting, varied)], key=lambda r: r.spec["seed"])
        row = Row(method=method, setting=setting, runs=members, budget=varied)
        tuned_t = np.stack([r.scores("tuned", tkeys) for r in members])
        row.target_score = float(tuned_t.mean())
        row.target_gain = _interval(tuned_t, base["target"], strata=[target_task] * len(tkeys), boot=boot)
        tuned_p = np.stack([r.scores("tuned", pkeys) for r in members])
        row.tuned = tuned_p
        row.preserved = tuned_p.mean(0)
        for s in suites:
            row.suites[s] = _interval(tuned_p[:, where[s]], base["preserved"][where[s]],
                                      strata=[t for t, _ in keys[s]], boot=boot)
        row.average = _interval(tuned_p, base["preserved"], strata=ptasks, weights=weights, boot=boot)
        per_seed = [_weighted_delta(tp - base["preserved"], ptasks, weights) for tp in tuned_p]
        row.seed_sd = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None
        kls = [r.outcome.kl for r in members]
        row.kl = float(np.mean(kls))
        row.kl_se = float(np.std(kls, ddof=1) / math.sqrt(len(kls))) if len(kls) > 1 else members[0].outcome.kl_se
        probes = [r.record["answer_class_shift"] for r in members]
        if all("delta" in x for x in probes):
            row.shift = float(np.mean([x["delta"] for x in probes]))
        correct = np.stack([r.scores("tuned", pkeys, "correct") for r in members]).astype(bool)
        was = base["preserved correct"].astype(bool)
        row.forgetting = float((was & ~correct).mean())
        row.transfer = float((~was & correct).mean())
        rows.append(row)

    ref = next((r for r in rows if r.method == baseline and r.is_default), None)
    if ref is not None:
        for r in rows:
            if r is not ref:
                r.difference = seed_level([r.tuned, ref.tuned], [1.0, -1.0], strata=ptasks, stratum_weights=weights)
                r.p = r.difference.p if r.difference is not None else None
        tested = [r for r in rows if r.p is not None]
        for r, adj in zip(tested, holm([r.p for r in tested])):
            r.p_holm = adj

    mde = {}
    for s in [*suites, "average"]:
        idx = list(range(len(pkeys))) if s == "average" else where[s]
        sd = math.sqrt(np.mean([np.var(r.preserved[idx] - base["preserved"][idx], ddof=1) for r in rows]))
        mde[s] = minimum_detectable_effect(sd, len(idx))
    key = stable_hash({"base": rec["provenance"]["base_fingerprint"], "target": first.spec["target"],
                       "suites": suites}, 10)
    return Track(key=key, runs=runs, baseline=baseline, rows=rows, suites=suites, target_task=target_task,
                 n_target=len(tkeys), n_suite={s: len(keys[s]) for s in suites}, tasks=tasks, mde=mde, budget=budget,
                 machines=sorted({_machine(r) for r in runs}), base_items=len(pkeys) + len(tkeys))


def _interval(tuned: np.ndarray, base: np.ndarray, *, strata: list[str], weights: dict | None = None,
              boot: dict) -> Interval | SeedLevel:
    """Tuned minus base: method-level with two seeds or more (seeds the unit of replication); with one seed, the
    paired bootstrap over items of this one trained model."""
    if tuned.shape[0] >= 2:
        return seed_level([tuned], [1.0], base=base, strata=strata, stratum_weights=weights)
    return paired_bootstrap_ci(tuned, base, strata=strata, stratum_weights=weights, **boot)


def track_budget(runs: list[Run], baseline: str) -> dict:
    """The budget rows are described against: the one of the runs a sweep made as configuration 0 (the defaults),
    else the most common one; a tie goes to the baseline's runs with default hyperparameters, else the first."""
    def common(group: list[Run]) -> list[str]:
        counts = Counter(json.dumps(r.spec["budget"], sort_keys=True) for r in group)
        most = max(counts.values())
        return [k for k, c in counts.items() if c == most]
    runs = [r for r in runs if not r.external] or runs      # an external checkpoint's budget is unknown ({})
    defaults = [r for r in runs if r.record.get("sweep", {}).get("config") == 0]
    tied = common(defaults or runs)
    plain = _defaults(baseline)
    prefer = [json.dumps(r.spec["budget"], sort_keys=True) for r in runs
              if r.spec["method"] == baseline and r.spec["params"] == plain]
    return json.loads(next((k for k in prefer if k in tied), tied[0]))


def _machine(run: Run) -> str:
    """The CPU and the thread count: either can change the last bits of a run (summation order)."""
    prov = run.record["provenance"]
    threads = prov.get("threads")
    return (prov.get("machine") or "unrecorded machine") + (f", {threads} thread{'s' * (threads != 1)}"
                                                            if threads else "")


def _weighted_delta(d: np.ndarray, tasks: list[str], weights: dict[str, float]) -> float:
    return float(sum(w * d[[i for i, t in enumerate(tasks) if t == task]].mean() for task, w in weights.items()))


def build_tracks(runs: list[Run], baseline: str, n_resamples: int = N_RESAMPLES) -> list[Track]:
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        key = (r.record["provenance"]["base_fingerprint"], r.spec["target"], tuple(r.spec["suites"]))
        groups.setdefault(key, []).append(r)
    return [build_track(members, baseline, n_resamples) for _, members in sorted(groups.items())]
