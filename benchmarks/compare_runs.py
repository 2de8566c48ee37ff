"""Do two sets of runs give the same numbers? For checking that a refactor changes no number.

    python benchmarks/compare_runs.py RUNS_A RUNS_B

Runs are matched by (method, hyperparameters, seed): run ids differ whenever code that defines a task moves.
For each pair, every number a result depends on is compared exactly: target and suite scores per task, the
base model's and the tuned model's per-item outcomes, McNemar p-values, both KL estimates with their
standard errors, the answer-class probe, the training losses and the mixture. Exit status 1 if any differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def numbers(folder: Path) -> dict:
    record = json.loads((folder / "result.json").read_text())
    items = sorted((i["model"], i["task"], i["doc_id"], i["score"]) for i in
                   map(json.loads, (folder / record["items"]).read_text().splitlines()))
    sections = {**record["target"]["tasks"], **{t: v for s in record["suites"].values() for t, v in s["tasks"].items()}}
    training = record["training"]
    return {"tasks": {t: {k: v.get(k) for k in ("base", "tuned", "delta", "delta_se", "p_mcnemar", "flips")}
                      for t, v in sections.items()},
            "items": items, "kl": {k: record["kl"][k] for k in ("sequence", "token_exact", "per_token", "n")},
            "probe": {k: record["answer_class_shift"].get(k) for k in ("base", "tuned", "delta")},
            "training": {k: training[k] for k in ("steps", "examples", "tokens", "loss_first", "loss_last_10pct",
                                                  "mixture", "trainable_tensors")},
            "base_fingerprint": record["provenance"]["base_fingerprint"]}


def runs(root: Path) -> dict:
    out = {}
    for path in sorted(Path(root).glob("*/result.json")):
        spec = json.loads(path.read_text())["spec"]
        out[(spec["method"], json.dumps([spec["params"], spec["budget"]], sort_keys=True), spec["seed"])] = path.parent
    return out


def main() -> int:
    a, b = runs(Path(sys.argv[1])), runs(Path(sys.argv[2]))
    shared = sorted(set(a) & set(b))
    differ = 0
    for key in shared:
        x, y = numbers(a[key]), numbers(b[key])
        bad = [k for k in x if x[k] != y[k]]
        differ += bool(bad)
        print(f"{'DIFFER ' + ', '.join(bad) if bad else 'identical':<20s} {key[0]} {key[1]} seed {key[2]}")
    print(f"{len(shared)} pairs compared, {differ} differ; only in A: {len(set(a) - set(b))}, "
          f"only in B: {len(set(b) - set(a))}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
