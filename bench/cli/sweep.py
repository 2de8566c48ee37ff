"""`bench sweep`: methods x configurations x seeds on an equal tuning budget (resumable; local processes or Ray)."""

from __future__ import annotations

import json
import os
import sys

from forgetbench.cli.parsing import add_options, given
from forgetbench.sweeper.request import SWEEP


def add(sub) -> None:
    p = sub.add_parser("sweep", help="methods x configurations x seeds on an equal tuning budget (resumable; local "
                       "processes or Ray)")
    add_options(p, SWEEP)
    p.add_argument("--json", action="store_true", help="a dry run's rows as JSON, one line each")
    p.set_defaults(fn=main)


def main(args) -> int:
    from forgetbench.sweeper.design import dry_run_rows
    from forgetbench.sweeper.request import run_sweep, sweep_request

    request = sweep_request(given(args, SWEEP), where="bench sweep")
    if args.threads:                            # worker processes and Ray tasks read it (core.threads)
        os.environ["FORGETBENCH_THREADS"] = str(args.threads)
    runs, tally = run_sweep(request)
    if tally is None:
        print_dry_run(dry_run_rows(runs), as_json=args.json)
        return 0
    print(f"sweep: {len(runs)} runs: {tally.done} already done, {tally.finished} finished now, "
          f"{len(tally.failed)} failed" + (f" ({', '.join(k for k, _ in tally.failed)})" if tally.failed else "")
          + f"; run folders in {request.out}", file=sys.stderr)
    return 1 if tally.failed else 0


def print_dry_run(rows: list[dict], *, as_json: bool) -> None:
    if as_json:
        for r in rows:
            print(json.dumps(r, sort_keys=True))
        return
    from tabulate import tabulate
    todo = [r for r in rows if r["status"] == "to do"]
    known = [r["estimated_seconds"] for r in todo if r["estimated_seconds"] is not None]
    print(tabulate([[r["method"], r["config"], r["seed"], r["varied"], r["run_id"], r["status"],
                     "" if r["estimated_seconds"] is None else f"{r['estimated_seconds']:.0f}"] for r in rows],
                   headers=["method", "config", "seed", "varied", "run id", "status", "est. s"], tablefmt="simple"))
    cost = (f"about {sum(known) / 60:.0f} min of run time for the {len(known)} with an estimate "
            "(mean of finished runs of the same method, per epoch)" if known else
            "nothing to run" if not todo else "no estimate yet (nothing finished)")
    print(f"\n{len(rows)} runs: {len(rows) - len(todo)} done, {len(todo)} to do; {cost}.")
