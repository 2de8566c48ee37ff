"""`bench eval`: a checkpoint fine-tuned anywhere, evaluated (deltas and KL against its base with --base)."""

from __future__ import annotations

from forgetbench.cli.output import emit
from forgetbench.cli.parsing import add_options, given
from forgetbench.runner.request import EVAL


def add(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint fine-tuned anywhere (deltas and KL with --base)")
    add_options(p, EVAL)
    p.add_argument("--json", action="store_true", help="print the result record as JSON")
    p.set_defaults(fn=main)


def main(args) -> None:
    from forgetbench.core.console import results_only
    from forgetbench.runner.external import evaluate
    from forgetbench.runner.request import eval_request

    request = eval_request(given(args, EVAL), where="bench eval")
    with results_only():
        record, where = evaluate(request)
    emit(args, record, where)
