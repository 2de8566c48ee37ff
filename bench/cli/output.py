"""What the commands print: a record as a table of base, tuned and delta per target and suite, with its KL lines;
or, with --json, the record itself."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(x, signed=False) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _row(label: str, v: dict) -> list:
    """One table row: base, tuned, delta ± its paired SE, flips (right->wrong / wrong->right), p, n."""
    se = f" ± {v['delta_se']:.3f}" if "delta_se" in v else ""
    f = v.get("flips")
    p = v.get("p_sign_flip", v.get("p_mcnemar", v.get("p_paired_t")))
    return [label, _fmt(v.get("base")), _fmt(v["tuned"]), _fmt(v.get("delta"), True) + se,
            f"{f['right_to_wrong']} / {f['wrong_to_right']}" if f else "", "" if p is None else f"{p:.3g}", v["n"]]


def summary(record: dict, where: Path | None) -> str:
    from tabulate import tabulate

    rows, notes = [], []
    if "target" in record:
        t = record["target"]
        rows.append(_row(f"target {t['name']}", t))
        for task, v in t.get("tasks", {}).items():
            if len(t["tasks"]) > 1:
                rows.append(_row(f"- {task} ({v['metric']})", v))
    # suites in the spec's order and tasks by name: the same for a fresh record and one read back from disk
    order = [*record["spec"].get("suites", ())]
    for name in sorted(record["suites"], key=lambda n: (order.index(n) if n in order else len(order), n)):
        s = record["suites"][name]
        rows.append(_row(f"{name} (mean of {len(s['tasks'])})", s))
        if len(s["tasks"]) > 1:
            for task, v in sorted(s["tasks"].items()):
                rows.append(_row(f"- {task} ({v['metric']})", v))
        notes += [f"{name}: {task} missing ({why})" for task, why in s.get("missing", {}).items()]
        notes += [f"{name}: {task} not counted (the target's own evaluation)"
                  for task in s.get("excluded_as_target", [])]
    spec = record["spec"]
    head = (f"{record.get('kind', 'run')} {record['run_id']}: method {spec.get('method', '—')}, model {spec['model']}, "
            f"seed {spec.get('seed', '—')}")
    lines = [head, "", tabulate(rows, headers=["", "base", "tuned", "delta ± SE", "r→w / w→r", "p", "n"],
                                tablefmt="simple", disable_numparse=True),
             "delta ± SE: paired over the same items; r→w / w→r: items the tuned model gets wrong that the base got "
             "right, and the reverse; p: a task's exact McNemar (right/wrong items) or paired t; a suite's sign-flip "
             "permutation test of the delta shown (the mean of its tasks' deltas; one task: that task's test)",
             *notes]
    if "kl" in record:
        lines += ["", kl_line(record["kl"])]
    if "kl_target" in record:
        lines.append(kl_line(record["kl_target"], "on the target's held-out prompts"))
    if "training" in record:
        tr = record["training"]
        mix = ", ".join(f"{k} {v['examples']}" for k, v in tr["mixture"].items())
        lines.append(f"training: {tr['steps']} steps on {mix} examples, {tr['seconds']:.1f} s")
    if where:
        lines.append(f"record: {where / 'result.json'} (per-item outcomes in {where / record['items']})")
    return "\n".join(lines)


def kl_line(kl: dict, where: str = "context-free") -> str:
    s, e = kl["sequence"], kl["token_exact"]
    pt = kl["per_token"]["token_exact"]
    return (f"KL(base || tuned) {where}, nats per sequence, n={kl['n']}: token-exact {e['mean']:.4f} ± "
            f"{e['se']:.4f}, "
            f"sequence MC {s['mean']:.4f} ± {s['se']:.4f}; per token {pt['mean']:.5f} ± {pt['se']:.5f}")


def emit(args, record: dict, where: Path | None) -> None:
    if args.json:
        print(json.dumps(record, sort_keys=True))
    else:
        print(summary(record, where))
