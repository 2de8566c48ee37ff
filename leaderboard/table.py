"""Group result records into tracks and build one comparison table per track."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import UserError
from bench.schema import load_run_folder
from bench.store import stable_hash
from leaderboard.stats import discordant, mcnemar_exact

@dataclass
class Run:
    path: Path
    record: dict
    items: dict          # (model, task, doc_id) -> item

    @property
    def spec(self) -> dict:
        return self.record["spec"]

    def track_key(self) -> str:
        s = self.spec
        return stable_hash({"base": self.record["provenance"]["base_fingerprint"], "target": s["target"],
                            "suites": s["suites"], "budget": s["budget"], "eval": s["eval"], "kl": s["kl"]}, 10)


def load_run(folder: Path) -> Run:
    record, items = load_run_folder(folder)
    return Run(folder, record, {(it["model"], it["task"], it["doc_id"]): it for it in items})


def load_runs(root: Path) -> list[Run]:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"The runs folder {root} does not exist. Accepted: a folder that `bench run --out` wrote.")
    runs = [load_run(p.parent) for p in sorted(root.glob("*/result.json"))]
    if not runs:
        raise UserError(f"No result records (*/result.json) under {root}.")
    return runs


def _preserved(run: Run) -> dict:
    tasks = {t for s in run.record["suites"].values() for t in s["tasks"]}
    return {(k[1], k[2]): v for k, v in run.items.items() if k[0] == "tuned" and k[1] in tasks}


def _paired(ref: Run, other: Run) -> tuple[int, int, float]:
    a, b = _preserved(ref), _preserved(other)
    if a.keys() != b.keys() or any((a[k]["doc_hash"], a[k]["prompt_hash"]) != (b[k]["doc_hash"], b[k]["prompt_hash"])
                                   for k in a):
        raise UserError(f"Runs {ref.path} and {other.path} were not evaluated on the same items and prompts; "
                        "they cannot be compared.")
    bb, cc = discordant({k: v["correct"] for k, v in a.items()}, {k: v["correct"] for k, v in b.items()})
    return bb, cc, mcnemar_exact(bb, cc)


def _defaults(method: str) -> dict:
    from bench.method import methods
    return methods.get(method)().params() if method in methods.names() else {}


def _params(run: Run) -> str:
    defaults = _defaults(run.spec["method"])
    diff = {k: v for k, v in run.spec["params"].items() if defaults.get(k) != v}
    return " ".join(f"{k}={v}" for k, v in sorted(diff.items()))


def track_tables(runs: list[Run], baseline: str = "naive_sft") -> list[dict]:
    """One table per track: header facts and one row per run (method, non-default params, seed)."""
    tracks: dict[str, list[Run]] = {}
    for r in runs:
        tracks.setdefault(r.track_key(), []).append(r)
    tables = []
    for key, members in sorted(tracks.items()):
        first = members[0]
        suites = list(first.record["suites"])
        refs = {r.spec["seed"]: r for r in members if r.spec["method"] == baseline and _params(r) == ""}
        rows = []
        for r in sorted(members, key=lambda r: (r.spec["method"] != baseline, r.spec["method"], r.spec["seed"],
                                                r.record["run_id"])):
            t, kl = r.record["target"], r.record["kl"]
            row = {"method": r.spec["method"], "params": _params(r), "seed": r.spec["seed"],
                   "target acc": t["tuned"], "target delta": t["delta"]}
            for s in suites:
                row[f"{s} delta"] = r.record["suites"][s]["delta"]
            row["KL seq"] = kl["token_exact"]["mean"]
            row["KL se"] = kl["token_exact"]["se"]
            ref = refs.get(r.spec["seed"])
            if ref is not None and ref is not r:
                b, c, p = _paired(ref, r)
                row.update({f"vs {baseline} b": b, f"vs {baseline} c": c, "p (McNemar)": p})
            else:
                row.update({f"vs {baseline} b": None, f"vs {baseline} c": None, "p (McNemar)": None})
            rows.append(row)
        tables.append({"track": key, "model": first.spec["model"], "target": first.spec["target"],
                       "suites": suites, "baseline": baseline, "rows": rows})
    return tables


def render(tables: list[dict], fmt: str = "markdown") -> str:
    import pandas as pd
    from tabulate import tabulate

    if fmt == "csv":
        frames = [pd.DataFrame(t["rows"]).assign(track=t["track"], model=t["model"], target_task=t["target"])
                  for t in tables]
        return pd.concat(frames, ignore_index=True).to_csv(index=False, float_format="%.6g")
    out = []
    for t in tables:
        out.append(f"### Track {t['track']}: model {t['model']}, target {t['target']}, "
                   f"suites {', '.join(t['suites'])}\n")
        headers = list(t["rows"][0])
        out.append(tabulate([[r[h] for h in headers] for r in t["rows"]], headers=headers, tablefmt="github",
                            floatfmt=".4g", missingval="—"))
        out.append(f"\nKL seq: per-sequence exact (Rao-Blackwellised) KL(base || tuned) in nats, with its SE. "
                   f"b / c: preserved items {t['baseline']} got right and this run got wrong / the reverse "
                   f"(same seed); p: two-sided exact McNemar test.\n")
    return "\n".join(out)
