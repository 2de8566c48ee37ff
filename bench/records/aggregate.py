"""Every number a record shows, computed from its per-item rows.

A run writes its record with these functions, and every reader (the leaderboard, `bench run`'s "already done"
path) recomputes the record from its per-item file with the same functions (`recompute`): a record whose stored
numbers disagree with its items is refused (records.schema.load_run_folder). The per-item file has three kinds of row:

- evaluation items   {"model": "base" | "tuned", "task", "doc_id", "doc_hash", "prompt_hash", "correct", "score"}
- KL sequences       {"model": "pair", "task": "kl" | "kl:target", "doc_id", "sequence", "token_exact", "tokens",
                      "ended"} (context-free, and on the target's prompts)
- probe prompts      {"model": "pair", "task": "probe:" + preserved task, "doc_id", "base", "tuned"}

Importable without torch: the leaderboard reads records with it.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
from forgetbench.records.paired_tests import discordant, flip_test, paired_permutation_test

PAIR = "pair"              # rows that belong to the (base, tuned) pair rather than to one model
KL_TASK = "kl"
KL_TARGET_TASK = "kl:target"
PROBE = "probe:"


# ------------------------------------------------------------------------------------------- evaluations
def accuracy(items: list[dict]) -> float:
    return sum(i["score"] for i in items) / len(items)


def compare(base: list[dict], tuned: list[dict], task: str) -> dict:
    """base / tuned / delta / n for one task, after checking that the items and prompts are the same, with
    the paired evidence for the delta: its standard error over items and, for right/wrong items, the flips
    (right -> wrong is forgetting, wrong -> right backward transfer) and the exact McNemar p-value; for
    real-valued scores a paired t-test."""
    if [(i["doc_id"], i["doc_hash"], i["prompt_hash"]) for i in base] != \
       [(i["doc_id"], i["doc_hash"], i["prompt_hash"]) for i in tuned]:
        raise RuntimeError(f"Base and tuned evaluations of {task} are not on the same items and prompts; "
                           "refusing to compare them.")
    b, t = accuracy(base), accuracy(tuned)
    out = {"base": b, "tuned": t, "delta": t - b, "n": len(base)}
    diffs = [y["score"] - x["score"] for x, y in zip(base, tuned)]
    if len(diffs) > 1:
        out["delta_se"] = statistics.stdev(diffs) / math.sqrt(len(diffs))
    if all(i["score"] in (0.0, 1.0) for i in base + tuned):
        out |= flip_test(*flips(base, tuned))
    elif len(diffs) > 1:
        from scipy.stats import ttest_1samp
        p = ttest_1samp(diffs, 0.0).pvalue
        out["p_paired_t"] = float(p) if math.isfinite(p) else 1.0
    return out


def flips(base: list[dict], tuned: list[dict]) -> tuple[int, int]:
    """(right -> wrong, wrong -> right) over paired items scored 0 or 1."""
    return discordant({i: x["score"] == 1.0 for i, x in enumerate(base)},
                      {i: y["score"] == 1.0 for i, y in enumerate(tuned)})


def suite_section(per_task: dict[str, dict], pairs: dict[str, tuple[list[dict], list[dict]]] | None = None) -> dict:
    """A suite's aggregate over its tasks' comparisons: the mean of base, tuned and delta; the standard error
    of that mean (tasks are independent item sets); the flips summed over its tasks; and, with the tasks'
    (base, tuned) items, the p-value of the statistic shown: a sign-flip permutation test of the mean of the
    task deltas (each item weighted 1 / (tasks x its task's items)); a one-task suite keeps its task's test."""
    out = {k: sum(v[k] for v in per_task.values()) / len(per_task)
           for k in ("base", "tuned", "delta") if all(k in v for v in per_task.values())}
    if all("delta_se" in v for v in per_task.values()):
        out["delta_se"] = math.sqrt(sum(v["delta_se"] ** 2 for v in per_task.values())) / len(per_task)
    if all("flips" in v for v in per_task.values()):
        out["flips"] = {k: sum(v["flips"][k] for v in per_task.values()) for k in ("right_to_wrong", "wrong_to_right")}
    if len(per_task) == 1:              # the suite's delta is its one task's: that task's exact test is the test
        (only,) = per_task.values()
        out |= {k: only[k] for k in ("p_mcnemar", "p_paired_t") if k in only}
    elif pairs:
        base = [i["score"] for t in per_task for i in pairs[t][0]]
        tuned = [i["score"] for t in per_task for i in pairs[t][1]]
        weights = [1 / (len(per_task) * len(pairs[t][0])) for t in per_task for _ in pairs[t][0]]
        out["p_sign_flip"] = paired_permutation_test(tuned, base, weights=weights)
    return {**out, "n": sum(v["n"] for v in per_task.values())}


def sections(items: list[dict], *, metric: dict[str, str], target: tuple[str, list[str]] | None,
             suites: dict[str, dict]) -> dict:
    """The record's `target` and `suites` sections from the evaluation items. `metric`: task -> its metric;
    `target`: (name, its tasks, the headline first); `suites`: name -> {"average_over": counted tasks,
    "missing": {task: why}, "excluded_as_target": [tasks]}. Without base items a task shows the tuned model
    alone (`bench eval` without --base)."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for it in items:
        if it["model"] != PAIR:
            rows.setdefault((it["model"], it["task"]), []).append(it)
    for part in rows.values():
        part.sort(key=lambda x: x["doc_id"])

    def section(task: str) -> dict:
        base, tuned = rows.get(("base", task)), rows[("tuned", task)]
        out = compare(base, tuned, task) if base else {"tuned": accuracy(tuned), "n": len(tuned)}
        return {"metric": metric[task], **out}

    out: dict = {}
    if target is not None:
        name, tasks = target
        per_task = {t: section(t) for t in tasks}
        out["target"] = {"name": name, "task": tasks[0], **per_task[tasks[0]], "tasks": per_task}
    out["suites"] = {}
    for name, s in suites.items():
        # sorted: the sign-flip test's draws follow the item order, and a record keeps its tasks sorted
        per_task = {t: section(t) for t in sorted(s["average_over"])}
        paired = all(("base", t) in rows for t in per_task)
        pairs = {t: (rows[("base", t)], rows[("tuned", t)]) for t in per_task} if paired else None
        out["suites"][name] = {**suite_section(per_task, pairs), "average_over": sorted(per_task),
                               "missing": dict(s["missing"]), "excluded_as_target": sorted(s["excluded_as_target"]),
                               "tasks": per_task}
    return out


# ------------------------------------------------------------------------------------------------------ KL
def mean_se(x: np.ndarray) -> dict:
    n = len(x)
    return {"mean": float(np.mean(x)), "se": float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")}


def ratio_se(x: np.ndarray, w: np.ndarray) -> dict:
    """sum(x)/sum(w) with the delta-method standard error (x: per-sequence totals, w: token counts)."""
    n = len(x)
    r = float(x.sum() / w.sum())
    if n < 2:
        return {"mean": r, "se": float("nan")}
    se = math.sqrt(float(((x - r * w) ** 2).sum()) / (n * (n - 1))) / float(w.mean())
    return {"mean": r, "se": se}


def kl_rows(scores: dict[str, np.ndarray], ended: list[bool], task: str = KL_TASK) -> list[dict]:
    """One row per KL sequence: both estimators' per-sequence sums, its scored tokens, whether it ended by itself."""
    return [{"model": PAIR, "task": task, "doc_id": i, "sequence": float(s), "token_exact": float(e),
             "tokens": int(n), "ended": bool(end)}
            for i, (s, e, n, end) in enumerate(zip(scores["sequence"], scores["token_exact"], scores["tokens"], ended))]


def kl_summary(rows: list[dict]) -> dict:
    """The KL section's estimates from its per-sequence rows (bench/runner/kl.py states the estimators)."""
    rows = sorted(rows, key=lambda r: r["doc_id"])
    x_mc, x_rb = (np.array([r[k] for r in rows], dtype=np.float64) for k in ("sequence", "token_exact"))
    w = np.array([r["tokens"] for r in rows], dtype=np.float64)
    return {"n": len(rows), "sequence": mean_se(x_mc), "token_exact": mean_se(x_rb),
            "per_token": {"sequence": ratio_se(x_mc, w), "token_exact": ratio_se(x_rb, w)},
            "tokens_scored": int(w.sum()), "units": "nats", "mean_length": float(np.mean(w)),
            "truncated_fraction": sum(1 for r in rows if not r["ended"]) / len(rows)}


# --------------------------------------------------------------------------------------------------- probe
def probe_rows(chosen: dict[str, list], base: list[float], tuned: list[float]) -> list[dict]:
    """One row per probed prompt (tasks in `chosen`'s order, prompts in item order): both models' mass."""
    tasks = [t for t, ps in chosen.items() for _ in ps]
    index = [i for ps in chosen.values() for i in range(len(ps))]
    return [{"model": PAIR, "task": PROBE + t, "doc_id": i, "base": b, "tuned": y}
            for t, i, b, y in zip(tasks, index, base, tuned)]


def probe_summary(rows: list[dict]) -> dict:
    """The probe's aggregates: mean mass before and after, the mean shift with its SE, and per task."""
    rows = sorted(rows, key=lambda r: (r["task"], r["doc_id"]))
    b, t = [r["base"] for r in rows], [r["tuned"] for r in rows]
    d = [y - x for x, y in zip(b, t)]
    out = {"prompts": len(rows), "base": statistics.fmean(b), "tuned": statistics.fmean(t),
           "delta": statistics.fmean(d), "delta_se": statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0}
    per: dict[str, dict] = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        part = [r for r in rows if r["task"] == task]
        per[task.removeprefix(PROBE)] = {"base": statistics.fmean(r["base"] for r in part),
                                         "tuned": statistics.fmean(r["tuned"] for r in part), "n": len(part)}
    return out | {"tasks": per}


# ------------------------------------------------------------------------------------------ a whole record
def recompute(record: dict, items: list[dict]) -> dict:
    """Every section of `record` that its items determine, recomputed from them: target and suites always; both
    KLs and the probe where the items carry their rows (records of schema 4 on). The record supplies only the
    layout: which tasks are the target, which each suite averages, and each task's metric."""
    tasks = {**record["target"]["tasks"], **{t: v for s in record["suites"].values() for t, v in s["tasks"].items()}}
    target = record["target"]
    head = target["task"]
    out = sections(items, metric={t: v["metric"] for t, v in tasks.items()},
                   target=(target["name"], [head, *sorted(t for t in target["tasks"] if t != head)]),
                   suites=record["suites"])
    for section, task in (("kl", KL_TASK), ("kl_target", KL_TARGET_TASK)):
        if rows := [r for r in items if r["model"] == PAIR and r["task"] == task]:
            out[section] = kl_summary(rows)
    probe = [r for r in items if r["model"] == PAIR and r["task"].startswith(PROBE)]
    if probe:
        out["answer_class_shift"] = probe_summary(probe)
    return out


def disagreement(stored, recomputed, where: str = "") -> str | None:
    """The first place where a stored value differs from its recomputation (None: they agree). Numbers agree
    to 1e-9 relative (both NaN agrees); a dict agrees when every recomputed key does (the stored one may carry
    facts that are not aggregates of items, such as the KL sampling settings)."""
    if isinstance(recomputed, dict):
        if not isinstance(stored, dict):
            return where
        for key, value in recomputed.items():
            if key not in stored:
                return f"{where}.{key}"
            if (bad := disagreement(stored[key], value, f"{where}.{key}")) is not None:
                return bad
        return None
    if isinstance(recomputed, list):
        return None if stored == recomputed else where
    if isinstance(recomputed, bool) or not isinstance(recomputed, (int, float)):
        return None if stored == recomputed else where
    if isinstance(stored, bool) or not isinstance(stored, (int, float)):
        return where
    if math.isnan(recomputed) and math.isnan(stored):
        return None
    return None if math.isclose(stored, recomputed, rel_tol=1e-9, abs_tol=1e-12) else where
