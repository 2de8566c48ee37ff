"""Targets and suites: what a run fine-tunes for and what it must not forget.

Both are registry entries defined in `tasks/`; their evaluations are lm-eval tasks (YAML under an
include path), so adding a standard lm-eval task later is configuration, not code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.registry import Registry
from bench.training import Budget


@dataclass(frozen=True)
class EvalTask:
    """One lm-eval task and the per-item metric that counts as 'correct'."""

    name: str                  # lm-eval task name
    metric: str                # per-sample metric key, e.g. "acc" or "exact_match"
    filter: str = "none"       # lm-eval filter name whose records are scored


@dataclass(frozen=True)
class Suite:
    """A named set of preserved-capability evaluations."""

    name: str
    description: str
    tasks: tuple[EvalTask, ...]
    include_path: Path


@dataclass(frozen=True)
class Target:
    """A fine-tuning task: training pairs and a held-out evaluation."""

    name: str
    description: str
    eval: EvalTask
    include_path: Path
    train_pairs: Callable[[], list[dict]]           # -> [{"prompt": str, "response": str}]
    budget: Budget = field(default_factory=Budget)
    default_suites: tuple[str, ...] = ()
    default_model: str = "micro"


suites: Registry[Suite] = Registry("suite", "tasks")
targets: Registry[Target] = Registry("target", "tasks")


def register_suite(suite: Suite) -> Suite:
    suites.add(suite.name, suite)
    return suite


def register_target(target: Target) -> Target:
    targets.add(target.name, target)
    return target
