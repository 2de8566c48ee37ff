"""`bench tasks`: the registered targets, suites, presets, models and corpora."""

from __future__ import annotations


def add(sub) -> None:
    sub.add_parser("tasks", help="list registered targets and suites").set_defaults(fn=main)


def main(args) -> None:
    from forgetbench.task import corpora, presets, suites, targets
    from forgetbench.toolbox.model_sources import sources
    from tabulate import tabulate
    rows = [["target", n, t.description] for n, t in targets.items()]
    rows += [["suite", n, s.description] for n, s in suites.items()]
    rows += [["preset", n, f"{p.description} [model {p.model}, target {p.target}, suites {', '.join(p.suites)}]"
              + (" (the default)" if p.default else "")] for n, p in presets.items()]
    rows += [["model", n, m.description + (f" [hub: {m.hub}]" if m.hub else "")] for n, m in sources.items()]
    rows += [["corpus", n, c.description] for n, c in corpora.items()]
    print(tabulate(rows, headers=["kind", "name", "description"], tablefmt="simple", maxcolwidths=[None, None, 90]))
