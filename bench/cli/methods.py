"""`bench methods`: the registered methods (summary, source, cost, the share of a model's parameters each trains);
`bench methods NAME`: one method's settings; `bench methods new NAME`: a new method from a template."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from forgetbench.cli.parsing import add_options
from forgetbench.core.errors import UserError
from forgetbench.runner.request import model_options


def add(sub) -> None:
    p = sub.add_parser("methods", help="list registered methods; NAME: one method's settings; new NAME: start a new "
                       "one from a template")
    p.add_argument("words", nargs="*", metavar="NAME | new NAME",
                   help="a method's name (its settings, types and defaults), or new NAME (write methods/NAME.py and "
                   "its test)")
    add_options(p, model_options("the model whose trainable share is shown (default: the default preset's)"))
    p.add_argument("--root", default=None, help="new: the project folder holding methods/ and tests/ (default: this "
                   "checkout)")
    p.set_defaults(fn=main)


def main(args) -> None:
    words = args.words
    if words[:1] == ["new"]:
        from forgetbench.cli.scaffold import new_method
        if len(words) != 2:
            raise UserError("bench methods new NAME: give the new method's name, e.g. bench methods new my_method.")
        for path in new_method(words[1], Path(args.root) if args.root else None):
            print(path)
        return
    if len(words) > 1:
        raise UserError(f"Unexpected {' '.join(words[1:])!r}: `bench methods NAME` shows one method's settings; "
                        "`bench methods new NAME` adds one.")
    if words:
        print(method_card(words[0]))
        return
    from forgetbench.task import default_preset
    from forgetbench.toolbox.model_sources import locate
    model_name = args.model or default_preset().model
    locate(model_name)

    from forgetbench.method import methods, trainable_share
    from forgetbench.toolbox.model_sources import skeleton
    from tabulate import tabulate
    model = skeleton(model_name, args.trust_remote_code)      # architecture only: no weights are read
    rows = []
    for name, cls in methods.items():
        try:
            with warnings.catch_warnings():     # libraries' deprecation notices are not this table's business
                warnings.simplefilter("ignore", FutureWarning)
                share = f"{trainable_share(cls(), model):.1%}"
        except ValueError as e:
            share = f"n/a: {e}"
        rows.append([name, cls.summary(), cls.source(), cls.cost, share])
    print(tabulate(rows, headers=["method", "summary", "source", "cost", f"trains (of {model_name})"],
                   tablefmt="simple", maxcolwidths=[None, 56, 44, None, 26]))


def method_card(name: str) -> str:
    """One method: what it does, its source and cost, and each setting (`--set KEY=VALUE`) with its type, default
    and the values a sweep draws."""
    import dataclasses

    from forgetbench.method import methods
    from tabulate import tabulate
    cls = methods.get(name)
    rows = [[f.name, getattr(f.type, "__name__", f.type), json.dumps(f.default),
             ", ".join(map(json.dumps, cls.sweep.get(f.name, []))) or "—"] for f in dataclasses.fields(cls)]
    lines = [f"{name}: {cls.summary()}", f"source: {cls.source() or '—'}", f"cost: {cls.cost}", ""]
    lines += [tabulate(rows, headers=["setting (--set)", "type", "default", "swept over"], tablefmt="simple",
                       disable_numparse=True) if rows else "no settings"]
    return "\n".join(lines)
