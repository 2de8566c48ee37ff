"""`bench`: run, eval, kl, methods, tasks, leaderboard."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Offline by default: datasets are local files and the hub may be unreachable. Set these to 0 to go online.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.errors import UserError  # noqa: E402


def _fmt(x, signed=False) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _summary(record: dict, where: Path | None) -> str:
    from tabulate import tabulate

    rows = []
    if "target" in record:
        t = record["target"]
        rows.append([f"target {t['name']}", _fmt(t.get("base")), _fmt(t["tuned"]),
                     _fmt(t.get("delta"), True), t["n"]])
    for name, s in record["suites"].items():
        rows.append([name, _fmt(s.get("base")), _fmt(s["tuned"]), _fmt(s.get("delta"), True), s["n"]])
        if len(s["tasks"]) > 1:
            for task, v in s["tasks"].items():
                rows.append([f"  {task}", _fmt(v.get("base")), _fmt(v["tuned"]), _fmt(v.get("delta"), True), v["n"]])
    spec = record["spec"]
    head = (f"{record.get('kind', 'run')} {record['run_id']}: method {spec.get('method', '—')}, model {spec['model']}, "
            f"seed {spec.get('seed', '—')}")
    lines = [head, "", tabulate(rows, headers=["", "base", "tuned", "delta", "n"], tablefmt="simple")]
    if "kl" in record:
        lines += ["", _kl_line(record["kl"])]
    if "training" in record:
        tr = record["training"]
        mix = ", ".join(f"{k} {v['examples']}" for k, v in tr["mixture"].items())
        lines.append(f"training: {tr['steps']} steps on {mix} examples, {tr['seconds']:.1f} s")
    if where:
        lines.append(f"record: {where / 'result.json'} (per-item outcomes in {where / record['items']})")
    return "\n".join(lines)


def _kl_line(kl: dict) -> str:
    s, e = kl["sequence"], kl["token_exact"]
    pt = kl["per_token"]["token_exact"]
    return (f"KL(base || tuned), nats per sequence, n={kl['n']}: token-exact {e['mean']:.4f} ± {e['se']:.4f}, "
            f"sequence MC {s['mean']:.4f} ± {s['se']:.4f}; per token {pt['mean']:.5f} ± {pt['se']:.5f}")


def _emit(args, record: dict, where: Path | None) -> None:
    if args.json:
        print(json.dumps(record, sort_keys=True))
    else:
        print(_summary(record, where))


def cmd_run(args) -> None:
    from bench.kl import KLSettings
    from bench.method import parse_sets
    from bench.runner import run

    record, where = run(args.method, parse_sets(args.set), model=args.model, target=args.target,
                        suite_names=args.suite, seed=args.seed, out=Path(args.out),
                        kl=KLSettings(samples=args.kl_samples), budget=parse_sets(args.budget, "--budget"),
                        save_model=args.save_model)
    _emit(args, record, where)


def cmd_eval(args) -> None:
    from bench.evaluation import EvalSettings
    from bench.kl import KLSettings
    from bench.models import resolve_model
    from bench.runner import DEFAULT_TARGET, SCHEMA_VERSION, assess, resolve_target_and_suites, versions
    from bench.store import stable_hash

    target = args.target or (None if args.suite else DEFAULT_TARGET)   # as `bench run` when nothing is named
    tgt, suite_list = resolve_target_and_suites(target, args.suite)
    tuned = resolve_model(args.model)
    base = resolve_model(args.base) if args.base else None
    kl = KLSettings(samples=args.kl_samples) if base else None
    metrics, _ = assess(base, tuned.model, tuned.tokenizer, tgt, suite_list, EvalSettings(), kl)
    spec = {"model": args.model, "base": args.base, "target": tgt.name if tgt else None,
            "suites": [s.name for s in suite_list]}
    record = {"schema_version": SCHEMA_VERSION, "kind": "eval", "run_id": f"eval-{stable_hash(spec, 12)}",
              "spec": spec, "provenance": {**versions(), "model_fingerprint": tuned.fingerprint,
                                           "base_fingerprint": base.fingerprint if base else None}, **metrics}
    _emit(args, record, None)


def cmd_kl(args) -> None:
    from bench.kl import KLSettings, estimate
    from bench.models import resolve_model

    if args.samples < 2 or args.max_new_tokens < 1:
        raise UserError("--samples must be at least 2 and --max-new-tokens at least 1.")
    base, tuned = resolve_model(args.base), resolve_model(args.model)
    if base.tokenizer.get_vocab() != tuned.tokenizer.get_vocab():
        raise UserError(f"{args.base} and {args.model} have different vocabularies; KL between them is undefined.")
    kl = estimate(base, tuned.model, KLSettings(args.samples, args.max_new_tokens, args.seed))
    print(json.dumps(kl, sort_keys=True) if args.json else _kl_line(kl))


def cmd_methods(args) -> None:
    from tabulate import tabulate

    from bench.method import methods
    rows = [[n, c.summary(), c.cost, c.source()] for n, c in methods.items()]
    print(tabulate(rows, headers=["method", "summary", "cost", "source"], tablefmt="simple"))


def cmd_tasks(args) -> None:
    from tabulate import tabulate

    from bench.task import suites, targets
    rows = [["target", n, t.description] for n, t in targets.items()]
    rows += [["suite", n, s.description] for n, s in suites.items()]
    print(tabulate(rows, headers=["kind", "name", "description"], tablefmt="simple"))


def cmd_leaderboard(args) -> None:
    from leaderboard.table import load_runs, render, track_tables

    print(render(track_tables(load_runs(Path(args.runs)), args.baseline), args.format))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="forgetbench: how much does fine-tuning make a "
                                "model forget, and which method stops it?")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="fine-tune with a method, evaluate base and tuned, estimate KL")
    r.add_argument("--method", required=True)
    r.add_argument("--model", default="micro", help="'micro' (default), a local folder, a .gguf file or a hub id")
    r.add_argument("--target", default=None, help="default: micro-cipher")
    r.add_argument("--suite", action="append", help="preserved suite (repeatable); default: the target's")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="method hyperparameter")
    r.add_argument("--budget", action="append", default=[], metavar="KEY=VALUE",
                   help="override the target's training budget: epochs, lr, batch_size, scheduler, ...")
    r.add_argument("--save-model", action="store_true", help="also save the tuned model under the run folder")
    r.add_argument("--out", default="runs")
    r.add_argument("--kl-samples", type=int, default=256)
    r.add_argument("--json", action="store_true", help="print the result record as one JSON object")
    r.set_defaults(fn=cmd_run)

    e = sub.add_parser("eval", help="evaluate a checkpoint fine-tuned anywhere (deltas and KL with --base)")
    e.add_argument("--model", required=True)
    e.add_argument("--base", default=None)
    e.add_argument("--suite", action="append")
    e.add_argument("--target", default=None, help="default (with no --suite): micro-cipher and its suites")
    e.add_argument("--kl-samples", type=int, default=256)
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_eval)

    k = sub.add_parser("kl", help="Monte Carlo KL(base || model) on samples from the base")
    k.add_argument("--base", required=True)
    k.add_argument("--model", required=True)
    k.add_argument("--samples", type=int, default=256)
    k.add_argument("--max-new-tokens", type=int, default=48)
    k.add_argument("--seed", type=int, default=20_251_122)
    k.add_argument("--json", action="store_true")
    k.set_defaults(fn=cmd_kl)

    sub.add_parser("methods", help="list registered methods").set_defaults(fn=cmd_methods)
    sub.add_parser("tasks", help="list registered targets and suites").set_defaults(fn=cmd_tasks)

    lb = sub.add_parser("leaderboard", help="compare runs, one table per track")
    lb.add_argument("--runs", default="runs")
    lb.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    lb.add_argument("--baseline", default="naive_sft")
    lb.set_defaults(fn=cmd_leaderboard)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except UserError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; nothing partial was written.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
