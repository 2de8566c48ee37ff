"""`bench kl`: Monte Carlo KL(base || model) on samples from the base."""

from __future__ import annotations

import json

from forgetbench.cli.output import kl_line
from forgetbench.cli.parsing import add_options, given
from forgetbench.runner.request import KL


def add(sub) -> None:
    p = sub.add_parser("kl", help="Monte Carlo KL(base || model) on samples from the base")
    add_options(p, KL)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(fn=main)


def main(args) -> None:
    from forgetbench.core.console import results_only
    from forgetbench.runner.external import kl_between
    from forgetbench.runner.request import kl_request

    request = kl_request(given(args, KL), where="bench kl")
    with results_only():
        kl = kl_between(request)
    print(json.dumps(kl, sort_keys=True) if args.json else kl_line(kl))
