"""`bench run`: fine-tune with a method, evaluate base and tuned, estimate KL."""

from __future__ import annotations

from forgetbench.cli.output import emit
from forgetbench.cli.parsing import add_options, given
from forgetbench.runner.request import RUN


def add(sub) -> None:
    from forgetbench.method import methods  # names listed without importing a method (or torch)

    p = sub.add_parser("run", help="fine-tune with a method, evaluate base and tuned, estimate KL")
    add_options(p, RUN, helps={"method": f"one of: {', '.join(methods.names())} (`bench methods NAME` shows one's "
                               "settings)"})
    p.add_argument("--json", action="store_true", help="print the result record as JSON (one line per result)")
    p.set_defaults(fn=main)


def main(args) -> None:
    from forgetbench.core.console import results_only
    from forgetbench.runner.request import run_request, run_values
    from forgetbench.runner.stages import run

    request = run_request(run_values(given(args, RUN), where="bench run"))
    with results_only():
        results = run(request)
    for record, where in results:
        emit(args, record, where)
