"""Planning a run's evaluations: which target and suites, and which of their tasks can run here.

Nothing is loaded or computed: a plan is checked (every name known, the target's own evaluation available,
every suite with at least one task) before any model loads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from forgetbench.core.errors import FieldError, UserError
from forgetbench.core.store import stable_hash
from forgetbench.task import Resolved, Suite, Target, resolve, suites, targets


def target_and_suites(target: str | None, suite_names: list[str] | None,
                      include_path: Path | None = None) -> tuple[Target | None, list[Suite]]:
    """The registered target (if any) and suites; with no suites named, the target's defaults. A suite named
    `lm_eval:TASK[,TASK]` is lm-eval's tasks (runner.lm_eval_suites; include_path: task YAMLs of one's own)."""
    from forgetbench.runner import lm_eval_suites

    tgt = targets.get(target) if target else None
    names = list(suite_names) if suite_names else list(tgt.default_suites if tgt else ())
    if not names and tgt is None:
        raise UserError("Nothing to evaluate: give --suite or --target.")
    if include_path is not None and not any(lm_eval_suites.is_lm_eval_suite(n) for n in names):
        raise FieldError("include_path", f"adds lm-eval task YAMLs for a --suite {lm_eval_suites.PREFIX}TASK; no "
                         "such suite is named.", value=include_path)
    if include_path is not None and not Path(include_path).is_dir():
        raise FieldError("include_path", "no such folder.", value=include_path)
    return tgt, [lm_eval_suites.suite(n, include_path) if lm_eval_suites.is_lm_eval_suite(n) else suites.get(n)
                 for n in dict.fromkeys(names)]


@dataclass
class EvalPlan:
    """The evaluations of a run after checking which tasks can run here."""

    target: Target | None
    suites: list[Suite]
    ready: list[Resolved]
    missing: dict[str, str]

    @property
    def target_tasks(self) -> set[str]:
        """The target's own evaluations: never counted in a preserved suite."""
        return {t.name for t in self.target.evals} if self.target else set()

    @property
    def content_hash(self) -> str:
        return stable_hash(sorted((r.task.name, r.name, r.content_hash) for r in self.ready), 16)


def plan_evaluations(target: Target | None, suite_list: list[Suite], data_dir: Path | None) -> EvalPlan:
    """Resolve every evaluation; the target's must all be available, a suite needs at least one task."""
    tasks = ([(t, target.include_path) for t in target.evals] if target else []) + \
            [(t, s.include_path) for s in suite_list for t in s.tasks]
    ready, missing = resolve(tasks, data_dir)
    twice = sorted(n for n, c in Counter(r.name for r in ready).items() if c > 1)
    if twice:                    # results go under the name of what ran: two tasks must not run as one
        raise UserError(f"More than one registered task runs as {', '.join(twice)}: "
                        + "; ".join(f"{r.task.name} -> {r.name}" for r in ready if r.name in twice) + ".")
    if target:
        absent = {t.name: missing[t.name] for t in target.evals if t.name in missing}
        if absent:
            raise UserError(f"Target {target.name}'s evaluation cannot run: "
                            + "; ".join(f"{k}: {v}" for k, v in absent.items()))
    result = EvalPlan(target=target, suites=suite_list, ready=ready, missing=missing)
    for s in suite_list:
        if all(t.name in missing or t.name in result.target_tasks for t in s.tasks):
            raise UserError(f"Suite {s.name}: none of its tasks can run here ("
                            + "; ".join(f"{t.name}: {missing.get(t.name, 'the target itself')}" for t in s.tasks)
                            + ").")
    return result
