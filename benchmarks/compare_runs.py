"""Do two sets of runs give the same numbers? For checking that a refactor changes no number.

    python benchmarks/compare_runs.py RUNS_A RUNS_B

Runs are matched by (method, hyperparameters, budget, seed): run ids differ whenever what defines a task changes.
For each pair, every value a result depends on is compared exactly: the target's and each suite's numbers per task
(base, tuned, delta and its standard error, flips, McNemar and paired p-values), every row of the per-item file
(evaluation outcomes of both models, KL sequences of both KL sections, probe prompts; the row kinds are those of
forgetbench.records.aggregate), both KL sections of the record, the answer-class probe, training (losses, the
mixture, steps, tensors trained) and the weight change; also the base model's fingerprint and each task's items
hash. Timings are not compared. Exit status 1 if any pair differs; 2 for a wrong command line or a folder that
holds two runs of one key.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SECTIONS = ("target", "suites", "kl", "kl_target", "answer_class_shift", "training", "weight_change")
TIMINGS = {"seconds"}               # training.seconds: wall time, not a result
SHOWN = 5                           # differing values printed per pair
ABSENT = "(absent)"                 # a value one run has and the other lacks


def flat(value, path: str = "") -> dict[str, object]:
    """Every leaf of a JSON value by its path (a.b[3].c)."""
    if isinstance(value, dict):
        return {k: v for key, x in value.items() if key not in TIMINGS for k, v in flat(x, f"{path}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, x in enumerate(value) for k, v in flat(x, f"{path}[{i}]").items()}
    return {path: value}


def item_rows(folder: Path, record: dict) -> dict[str, object]:
    """The per-item file's rows by kind, model, task and doc_id: evaluation items ("base"/"tuned"), KL
    sequences and probe prompts (model "pair", task "kl", "kl:target" or "probe:...")."""
    out = {}
    for line in (folder / record["items"]).read_text().splitlines():
        row = json.loads(line)
        key = f"items[{row.pop('model')}/{row.pop('task')}/{row.pop('doc_id')}]"
        out |= flat(row, key)
    return out


def numbers(folder: Path) -> dict[str, dict[str, object]]:
    record = json.loads((folder / "result.json").read_text())
    provenance = record["provenance"]
    out = {s: flat(record.get(s), s) for s in SECTIONS}
    out["items"] = item_rows(folder, record)
    out["provenance"] = {"base_fingerprint": provenance["base_fingerprint"],
                         **flat({t: v["items_hash"] for t, v in provenance["tasks"].items()}, "items_hash")}
    return out


def run_key(spec: dict) -> tuple:
    return spec["method"], json.dumps([spec["params"], spec["budget"]], sort_keys=True), spec["seed"]


def runs(root: Path) -> dict[tuple, Path]:
    out: dict[tuple, Path] = {}
    for path in sorted(Path(root).glob("*/result.json")):
        key = run_key(json.loads(path.read_text())["spec"])
        if key in out:
            fail(f"{root}: {out[key].name} and {path.parent.name} are runs of one method, settings and seed; "
                 "compare folders that hold one of each.")
        out[key] = path.parent
    return out


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(2)


def differences(x: dict[str, dict], y: dict[str, dict]) -> list[str]:
    """'path: a != b' for each value that differs or is in one run only, section by section."""
    out = []
    for section in x:
        a, b = x[section], y[section]
        out += [f"{k}: {a.get(k, ABSENT)!r} != {b.get(k, ABSENT)!r}"
                for k in sorted(set(a) | set(b)) if k not in a or k not in b or a[k] != b[k]]
    return out


def compare(key: tuple, a: Path, b: Path) -> bool:
    x, y = numbers(a), numbers(b)
    bad = differences(x, y)
    counts = ", ".join(f"{s} {len(v)}" for s, v in x.items())
    params = json.dumps(json.loads(key[1])[0], sort_keys=True)       # the budget is the same: it is in the key
    print(f"{'DIFFER' if bad else 'identical':<9s} {key[0]} {params} seed {key[2]}: {a.name} vs {b.name}")
    print(f"          {sum(map(len, x.values()))} values compared ({counts})")
    for line in bad[:SHOWN]:
        print(f"          {line}")
    if len(bad) > SHOWN:
        print(f"          ... {len(bad) - SHOWN} more differ")
    return not bad


def main() -> int:
    if len(sys.argv) != 3:
        fail("usage: " + __doc__.split("\n\n")[1].strip())
    a, b = runs(Path(sys.argv[1])), runs(Path(sys.argv[2]))
    shared = sorted(set(a) & set(b))
    differ = sum(not compare(key, a[key], b[key]) for key in shared)
    print(f"{len(shared)} pairs compared, {differ} differ; only in A: {len(set(a) - set(b))}, "
          f"only in B: {len(set(b) - set(a))}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
