"""Suites named on the command line: `--suite lm_eval:TASK[,TASK...]` runs any lm-eval task (or group) by name as
a preserved suite, with `--include-path DIR` for task YAMLs of one's own, as lm-eval's `--tasks` and
`--include_path` do.

Each task is scored per item by one metric and one filter of its own config: `TASK@METRIC` names the metric;
otherwise "acc" when the task has it, else its first per-item metric (perplexities are corpus-level, not per
item, and are skipped); the filter is the config's first (lm-eval's "none" without a filter list). A group is
scored by its first leaf task's metric and filter. Built-in tasks read their data from the hub; a task under
--include-path is hashed with its definition files (its data files are whatever its YAML names).
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

from forgetbench.core.errors import FieldError, UserError
from forgetbench.task import EvalTask, Suite

PREFIX = "lm_eval:"
NOT_PER_ITEM = ("perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte")


def is_lm_eval_suite(name: str) -> bool:
    return name.startswith(PREFIX)


def suite(name: str, include_path: Path | None) -> Suite:
    """The suite `lm_eval:TASK[,TASK...]` stands for, every task checked against lm-eval's index."""
    wanted = [t.strip() for t in name[len(PREFIX):].split(",") if t.strip()]
    if not wanted:
        raise FieldError("suite", f"name lm-eval tasks after '{PREFIX}', e.g. {PREFIX}arc_easy,hellaswag.", value=name)
    index = _index(str(include_path) if include_path else None)
    tasks = tuple(_task(t, index, include_path) for t in wanted)
    where = f" and {include_path}" if include_path else ""
    return Suite(name=name, description=f"lm-eval's {', '.join(wanted)} (from lm-eval's task index{where})",
                 tasks=tasks, include_path=include_path)


@cache
def _index(include_path: str | None) -> dict:
    """lm-eval's task index (its built-in tasks, and those under include_path): name -> Entry."""
    from lm_eval.tasks import TaskManager
    return TaskManager(include_path=include_path).task_index


def _task(text: str, index: dict, include_path: Path | None) -> EvalTask:
    name, _, metric = text.partition("@")
    if name not in index:
        close = difflib.get_close_matches(name, list(index), n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        where = f" or under --include-path {include_path}" if include_path else ""
        raise UserError(f"lm-eval has no task {name!r}{where}{hint}. `lm-eval ls tasks` lists them; --include-path "
                        "DIR adds your own YAMLs.")
    cfg = _leaf_config(name, index)
    metrics = [m["metric"] for m in cfg.get("metric_list", []) if isinstance(m.get("metric"), str)]
    per_item = [m for m in metrics if m not in NOT_PER_ITEM]
    if metric and metric not in metrics:
        raise UserError(f"lm-eval's {name} has no metric {metric!r} (it has {', '.join(metrics) or 'none listed'}).")
    chosen = metric or ("acc" if "acc" in per_item else (per_item or [None])[0])
    if chosen is None:
        raise UserError(f"lm-eval's {name} has no per-item metric ({', '.join(metrics) or 'none listed'}); name one "
                        f"as {PREFIX}{name}@METRIC.")
    filters = [f["name"] for f in cfg.get("filter_list", []) if "name" in f]
    in_include = include_path is not None and _under(index[name], include_path)
    return EvalTask(name=name, metric=chosen, filter=(filters or ["none"])[0],
                    hub=None if in_include else name)


def _leaf_config(name: str, index: dict, seen: frozenset = frozenset()) -> dict:
    """A task's config; a group's or tag's first leaf task's (groups nest)."""
    entry = index[name]
    if entry.kind.name in ("TASK", "PY_TASK"):
        return entry.cfg or {}
    if entry.kind.name == "TAG":
        children = sorted(n for n, e in index.items() if name in e.tags)
    else:
        children = [c if isinstance(c, str) else c.get("task") for c in (entry.cfg or {}).get("task", [])]
    for child in children:
        if isinstance(child, str) and child in index and child not in seen:
            return _leaf_config(child, index, seen | {name})
    raise UserError(f"lm-eval's {name} has no task of its own to score; name one of its tasks instead.")


def _under(entry, folder: Path) -> bool:
    return entry.yaml_path is not None and Path(entry.yaml_path).resolve().is_relative_to(Path(folder).resolve())
