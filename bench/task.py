"""Targets, suites and presets: what a run fine-tunes for, what it must not forget, and named settings.

All three are registry entries defined in `tasks/`. An evaluation is either an lm-eval task (YAML under
an include path; log-likelihood and the micro world's generation tasks) or a generation task run by
forgetbench's own backends (reasoning problems checked with math-verify, see bench/runner/reasoning.py).

Real-data tasks come in two forms: lm-eval's own definition (`hub`, needs network access) and a local
YAML whose data files live under `--data-dir` (one folder per dataset, as `bench data fetch` writes it). A
local YAML writes its data folder as `@DATA@`; `resolve` renders it into the cache with the real path. A task
whose data is not available is reported as missing, and a suite's average says which tasks it covers.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forgetbench.core.budget import Budget
from forgetbench.core.errors import FieldError, UserError
from forgetbench.core.registry import Registry
from forgetbench.core.store import cache_dir, hash_files, stable_hash
from forgetbench.toolbox import verify
from forgetbench.toolbox.task_definition import code_files, lm_eval_files, scorer_imports

DATA_PLACEHOLDER = "@DATA@"


@dataclass(frozen=True)
class EvalTask:
    """One evaluation and the per-item metric that counts."""

    name: str                  # lm-eval task name (local YAML) or generation task name
    metric: str                # per-sample metric key, e.g. "acc" or "exact_match"
    filter: str = "none"       # lm-eval filter name whose records are scored
    hub: str | None = None     # lm-eval's built-in task, used when no --data-dir is given (needs network)
    needs: tuple[str, ...] = ()          # data files (relative to --data-dir) the local definition reads
    # Tasks forgetbench scores itself: data dir (None: hub) -> [{"question", "answer", "response"}].
    problems: Callable[[Path | None], list[dict]] | None = None
    # "generate": sample answers to the question and the step-by-step instruction, check them with
    # math-verify; "answer": the same check of answers to the question alone; "exact": sample answers to the
    # question alone, right when equal to the reference (up to whitespace); "likelihood": mean log-probability
    # per token of the reference response (teacher-forced, in the training format). The checks are
    # forgetbench.toolbox.verify's; an lm-eval task that checks a completion names its check here too (its YAML's
    # process_results calls the same verifier).
    scoring: str = "generate"
    same_items_as: str | None = None     # draw its --limit subset like this task (two metrics on the same items)

    @property
    def subset_key(self) -> str:
        return self.same_items_as or self.name

    @property
    def generative(self) -> bool:
        """Scored by forgetbench itself (generation or likelihood) rather than through lm-eval."""
        return self.problems is not None


@dataclass(frozen=True)
class Suite:
    """A named set of preserved-capability evaluations."""

    name: str
    description: str
    tasks: tuple[EvalTask, ...]
    include_path: Path | None = None


@dataclass(frozen=True)
class Target:
    """A fine-tuning task: training pairs and a held-out evaluation (the first is the headline)."""

    name: str
    description: str
    evals: tuple[EvalTask, ...]
    include_path: Path | None
    # (data dir, user's --train-file) -> [{"prompt": str, "response": str}]
    train_pairs: Callable[[Path | None, Path | None], list[dict]]
    budget: Budget = field(default_factory=Budget)
    default_suites: tuple[str, ...] = ()
    chat: bool = False             # format training pairs with the model's chat template, if it has one
    # the target's answer class for the distribution-shift probe: (name, predicate on a token's text)
    answer_class: tuple[str, Callable[[str], bool]] | None = None
    # the registered corpus that stands in for a base model's pretraining data when its source has none
    replay_corpus: str | None = None
    # data dir -> held-out prompts in the training format (KL(base || tuned) is also measured on these)
    test_prompts: Callable[[Path | None], list[str]] | None = None
    # where a sampled completion ends besides EOS, as the target's evaluation cuts it (rewards and filters)
    stop: tuple[str, ...] = ()
    train_needs: tuple[str, ...] = ()   # data files (relative to --data-dir) its training pairs read (`bench data`)

    def verify(self, completion: str, pair: dict) -> bool:
        """Whether a completion answers a training pair's prompt: the verifier of the target's headline evaluation
        (toolbox.verify) against the pair's "answer" (its response where it has none), so the evaluation, rewards
        and filters check completions the same way."""
        from forgetbench.toolbox.verify import verify
        return verify(self.evals[0].scoring, completion, {"answer": pair["response"], **pair})

    def check_verifiable(self, pairs: list[dict]) -> None:
        """A UserError unless completions to these pairs can be checked: the headline evaluation checks completions
        (not a likelihood), and where it checks a final answer (maths) every pair names its "answer"."""
        from forgetbench.toolbox.verify import CHECKS
        scoring = self.evals[0].scoring
        if scoring not in CHECKS:
            raise UserError(f"Target {self.name!r} is evaluated by {scoring!r}, which checks no completion: methods "
                            "that reward or filter completions need a target with a verifier "
                            "(forgetbench.toolbox.verify).")
        if scoring != "exact" and any("answer" not in p for p in pairs):
            raise UserError(f"Target {self.name!r}'s training pairs name no final answer to check a completion "
                            "against (a --train-file's records give only prompt and response); rewards and filters "
                            "need one.")


@dataclass(frozen=True)
class Preset:
    """Model, target, suites, budget and evaluation settings that belong together."""

    name: str
    description: str
    model: str
    target: str
    suites: tuple[str, ...]
    budget: dict = field(default_factory=dict)      # overrides of the target's budget
    eval: dict = field(default_factory=dict)        # EvalSettings fields
    kl: dict = field(default_factory=dict)          # KLSettings fields
    needs_data: bool = False                        # reads --data-dir when offline
    default: bool = False                           # what `bench run` uses when no model, target or preset is named


@dataclass(frozen=True)
class Corpus:
    """General text that stands in for a model's pretraining data (replay, EWC's corpus Fisher)."""

    name: str
    description: str
    # (data dir, n, rng) -> (n documents, facts for the record); a UserError when its files are absent
    documents: Callable[[Path | None, int, random.Random], tuple[list[str], dict]]
    needs: tuple[str, ...] = ()          # data files (relative to --data-dir) it reads (`bench data check`)


@dataclass(frozen=True)
class DataSource:
    """Where one data file a task reads comes from, for `bench data fetch`: a pinned file at a URL with its
    sha256 (the fetched bytes are then exactly those the published runs read), or a hub dataset's rows written
    in the layout the task reads."""

    path: str                                        # relative to the data folder
    url: str | None = None
    sha256: str | None = None                        # of the file at `url`: nothing else is written
    hub: tuple[str, str | None, str] | None = None   # (repo, config, split) for datasets.load_dataset
    write: Callable[[list[dict]], bytes] | None = None    # the hub rows -> the file's bytes

    def __post_init__(self):
        if (self.url is None) == (self.hub is None) or bool(self.url) != bool(self.sha256) \
                or bool(self.hub) != bool(self.write):
            raise ValueError(f"data source {self.path}: give either url and sha256, or hub and write")

    @property
    def origin(self) -> str:
        return self.url or "hub dataset " + "/".join(x for x in self.hub if x)


suites: Registry[Suite] = Registry("suite", "forgetbench.tasks")
targets: Registry[Target] = Registry("target", "forgetbench.tasks")
presets: Registry[Preset] = Registry("preset", "forgetbench.tasks")
corpora: Registry[Corpus] = Registry("corpus", "forgetbench.tasks")
data_sources: Registry[DataSource] = Registry("data source", "forgetbench.tasks")


def register_suite(suite: Suite) -> Suite:
    suites.add(suite.name, suite)
    return suite


def register_target(target: Target) -> Target:
    targets.add(target.name, target)
    return target


def register_preset(preset: Preset) -> Preset:
    presets.add(preset.name, preset)
    return preset


def register_corpus(corpus: Corpus) -> Corpus:
    corpora.add(corpus.name, corpus)
    return corpus


def register_data_source(source: DataSource) -> DataSource:
    data_sources.add(source.path, source)
    return source


def default_preset() -> Preset:
    """The one preset registered as the default."""
    return presets.get(presets.the_one("default"))


# ---------------------------------------------------------------------------------------- resolution
@dataclass(frozen=True)
class Resolved:
    """A task ready to run: where its definition lives and a hash of everything it reads."""

    task: EvalTask
    include: Path | None           # lm-eval include path (None: lm-eval's built-in definition)
    name: str                      # the lm-eval task name actually run (local or built-in)
    data_dir: Path | None
    content_hash: str              # definition files + data files


def hub_available() -> bool:
    return os.environ.get("HF_DATASETS_OFFLINE", "0") in {"0", "", "false", "False"}


def _render(include: Path, data_dir: Path) -> Path:
    """An include folder copied into the cache with @DATA@ replaced by the data folder's absolute path. lm-eval
    imports the rendered folder's code (`!function`), so a rendered folder is used only when it holds exactly
    what this renders (no file changed, none added); otherwise it is rendered again."""
    from forgetbench.core.store import locked, same_tree, scratch_dir, warn

    files = sorted(p for p in include.rglob("*") if p.is_file() and p.suffix in {".yaml", ".py"})
    data = str(data_dir.resolve())
    out = cache_dir() / "tasks" / stable_hash({"files": hash_files(files, include), "data": data}, 16)
    with locked(out), scratch_dir(f".{out.name}", out.parent) as tmp:
        for p in files:
            dest = Path(tmp) / p.relative_to(include)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(_fill(p, data))
        for cached in out.rglob("__pycache__"):     # compiled code is not checked: Python recompiles the sources
            shutil.rmtree(cached, ignore_errors=True)
        if out.exists() and not same_tree(Path(tmp), out):
            warn(f"the rendered task folder {out} differs from what forgetbench writes; rendering it again")
            shutil.rmtree(out)
        if not out.exists():
            shutil.copytree(tmp, out)
    return out


def _fill(path: Path, data: str) -> str:
    """A task file's text with the data folder in place of @DATA@, which always sits inside a double-quoted YAML
    string: the path is escaped as JSON escapes a string (valid in YAML double quotes), so no path can end the
    string early."""
    text = path.read_text()
    if text.count(DATA_PLACEHOLDER) != text.count(f'"{DATA_PLACEHOLDER}'):
        raise ValueError(f"{path}: {DATA_PLACEHOLDER} must begin a double-quoted YAML string")
    return text.replace(DATA_PLACEHOLDER, json.dumps(data, ensure_ascii=False)[1:-1])   # no \u surrogate pairs


def resolve(tasks: list[tuple[EvalTask, Path | None]], data_dir: Path | None) -> tuple[list[Resolved], dict[str, str]]:
    """Which tasks can run here, and why each of the others cannot (task name -> reason)."""
    ready: list[Resolved] = []
    missing: dict[str, str] = {}
    for task, include in tasks:
        if any(r.task.name == task.name for r in ready):
            continue
        definition = definition_hash(task, include)
        # self-contained (micro; a task of one's own under --include-path; lm-eval's built-in ones have a hub name)
        if not task.needs and not task.generative and include is not None and not task.hub:
            ready.append(Resolved(task, include, task.name, None, definition))
            continue
        if task.generative and not task.needs and not task.hub:     # generated by its code: reads no data
            ready.append(Resolved(task, None, task.name, None,
                                  stable_hash(["generated", task.problems(None), definition], 16)))
            continue
        if data_dir is not None and task.needs:
            absent = [n for n in task.needs if not (data_dir / n).exists()]
            if not absent:
                files = [f for n in task.needs for f in
                         ([data_dir / n] if (data_dir / n).is_file() else sorted((data_dir / n).rglob("*")))]
                data_hash = hash_files([f for f in files if f.is_file()], data_dir)
                rendered = _render(include, data_dir) if include is not None and not task.generative else None
                ready.append(Resolved(task, rendered, task.name, data_dir,
                                      stable_hash([definition, data_hash], 16)))
                continue
            if not (task.hub and hub_available()):
                missing[task.name] = f"not in {data_dir}: {', '.join(absent)}"
                continue
        if task.hub and hub_available():
            name = task.hub if not task.generative else task.name
            # lm-eval's own definition runs, not the local YAML: only what forgetbench itself defines counts
            ready.append(Resolved(task, None, name, None,
                                  stable_hash(["hub", task.hub, definition_hash(task, None)], 16)))
        elif task.hub and not task.needs:
            missing[task.name] = f"needs the hub ({task.hub}); it has no local form"
        elif task.hub:
            where = task.hub if task.generative else f"lm-eval's {task.hub}"
            missing[task.name] = f"needs the hub ({where}) or local files under --data-dir ({', '.join(task.needs)})"
        else:
            missing[task.name] = f"needs local files under --data-dir: {', '.join(task.needs)}"
    return ready, missing


def definition_hash(task: EvalTask, include: Path | None) -> str:
    """A hash of what defines a task's items, prompts and scoring, by content and by name relative to its folder:
    never where it lives, nor the code that registers it (a package's __init__.py, tasks/real/targets.py), so
    that neither a comment there nor a moved folder changes a run id. See definition_files."""
    files = definition_files(task, include)
    return stable_hash({name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}, 16)


def definition_files(task: EvalTask, include: Path | None) -> dict[str, Path]:
    """A task forgetbench scores: the code of its problems and the modules of that folder it imports, and the
    verifier where the scoring is its check. An lm-eval task under `include`: its YAML, the code that YAML calls
    and what that imports from the folder, and the verifier where its process_results calls it. An lm-eval
    built-in: nothing here (lm-eval's own definition; lm-eval's version is in the evaluation settings)."""
    if task.generative:
        return code_files(task.problems) | (VERIFIER if task.scoring in verify.CHECKS else {})
    if include is None:
        return {}
    # not task.scoring: an lm-eval task that checks nothing keeps the default "generate"; what its YAML calls counts
    calls_verifier = verify.__name__ in scorer_imports(include, task.name)
    return lm_eval_files(include, task.name) | (VERIFIER if calls_verifier else {})


VERIFIER = {verify.__name__: Path(verify.__file__)}     # by module name: the same wherever forgetbench is installed


def data_dir_from(arg: str | None) -> Path | None:
    """--data-dir, else $FORGETBENCH_DATA; checked to exist."""
    value = arg or os.environ.get("FORGETBENCH_DATA")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FieldError("data_dir", f"no such folder. It should hold one folder per dataset (gsm8k/, arc/, "
                         f"piqa/, ...): `bench data fetch --to {value}` builds one (needs network access).",
                         value=value)
    return path
