"""Settings several engine modules share, and the one parser of `key=value` strings into typed values.

Importable without torch, transformers or lm-eval: the CLI checks every value here before any model loads.
Evaluation (`EvalSettings`) and KL (`KLSettings`) settings decide a run's numbers, so both are recorded in
its spec; `FLAGS` maps each to its command-line flag for the CLI and for the leaderboard's "reproduce" lines.
"""

from __future__ import annotations

import math
import random
import typing
from dataclasses import asdict, dataclass, field, fields

from forgetbench.core.errors import FieldError, UserError, did_you_mean

EVAL_BATCH_SIZE = 64
LIMIT_SEED = "forgetbench-limit-v1"   # --limit subsets depend on the task only: same items for every run
GENERATION_ONLY = ("backend", "max_new_tokens", "temperature", "samples_per_problem", "chat_template")
KL_SEED = 20_251_122  # the KL sample set is the same for every run on a base model, so runs are paired
MAX_SEED = 2**32 - 1  # the largest seed numpy (and so transformers.set_seed) accepts


@dataclass(frozen=True)
class EvalSettings:
    backend: str = "hf"                # generation backend for generation tasks: hf | vllm
    batch_size: int | str = EVAL_BATCH_SIZE      # "auto": lm-eval's automatic batch size (GPU)
    num_fewshot: int = 0
    limit: int | float | None = None   # a fixed random subset of N items per task, or (below 1) that share of them
    task_limits: dict = field(default_factory=dict)   # per-task overrides of `limit` (presets)
    max_new_tokens: int = 1024         # generation tasks
    temperature: float = 0.0           # 0: greedy
    samples_per_problem: int = 1       # pass@1 averaged over this many samples
    chat_template: bool = True         # format generation prompts with the model's chat template

    def __post_init__(self):
        if self.num_fewshot < 0:
            raise FieldError("num_fewshot", f"must be at least 0, got {self.num_fewshot}.")
        for n in [self.limit, *self.task_limits.values()]:
            if n is not None and not (isinstance(n, int) and n >= 1 or isinstance(n, float) and 0 < n < 1):
                raise FieldError("limit", "give a number of items (a whole number, at least 1) or, as lm-eval takes "
                                 "it, a fraction of each task's items between 0 and 1.", value=n)
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise FieldError("temperature", f"must be a finite number >= 0, got {self.temperature}.")
        for name, value in (("samples_per_problem", self.samples_per_problem),
                            ("max_new_tokens", self.max_new_tokens)):
            if value < 1:
                raise FieldError(name, f"must be at least 1, got {value}.")
        if self.temperature == 0 and self.samples_per_problem > 1:
            raise UserError("Several samples per problem need a temperature above 0 (greedy decoding "
                            "gives the same answer every time).")
        if self.backend not in {"hf", "vllm"}:
            raise FieldError("backend", "unknown generation backend: choose hf or vllm.", value=self.backend)
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise FieldError("eval_batch_size", "give an integer >= 1 or 'auto'.", value=self.batch_size)

    def to_dict(self) -> dict:
        from importlib.metadata import version
        return {**asdict(self), "lm_eval": version("lm_eval")}

    def limit_for(self, task: str) -> int | None:
        return self.task_limits.get(task, self.limit)

    def for_task(self, task) -> dict:
        """The settings that decide one task's results: its own item limit, not every task's; decoding
        settings only for the tasks forgetbench generates or scores itself."""
        skip = {"limit", "task_limits"} | (set() if task.generative else set(GENERATION_ONLY))
        limit = self.limit_for(task.name)
        out = {**{k: v for k, v in self.to_dict().items() if k not in skip}, "limit": limit}
        # which items a limit picks: the draw (subset_indices) and its key; a cache made by another draw is not reused
        return out | ({"subset": [SUBSET_DRAW, task.subset_key]} if limit is not None else {})


@dataclass(frozen=True)
class KLSettings:
    samples: int = 256                 # context-free: sequences sampled from the start token
    max_new_tokens: int = 48           # both sample sets' length cap
    seed: int = KL_SEED
    batch_size: int = 64
    target_prompts: int = 128          # on the target's prompts: held-out prompts, one response sampled for each

    def __post_init__(self):
        for name, value, least in (("kl_samples", self.samples, 2), ("kl_target_prompts", self.target_prompts, 2),
                                   ("kl_max_new_tokens", self.max_new_tokens, 1),
                                   ("kl_batch_size", self.batch_size, 1)):
            if value < least:
                raise FieldError(name, f"must be at least {least}, got {value}.")
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"The KL seed {self.seed} is out of range: seeds are whole numbers from 0 to {MAX_SEED}.")


SUBSET_DRAW = "first N of a seeded permutation"      # changes with subset_indices' algorithm


def subset_indices(key: str, n: int, limit: int | float | None) -> list[int] | None:
    """A fixed random subset of `limit` of a task's `n` items (sorted), or None for all of them: the first `limit`
    of one fixed order per key, so subsets drawn with the same key are nested (tasks sharing a key and a limit
    evaluate the same items). A fractional limit is that share of the items, rounded up (lm-eval's --limit)."""
    if isinstance(limit, float):
        limit = math.ceil(limit * n)
    if limit is None or limit >= n:
        return None
    return sorted(random.Random(f"{LIMIT_SEED}:{key}").sample(range(n), n)[:limit])


@dataclass(frozen=True)
class Flag:
    """A command-line flag that sets one field of the evaluation or KL settings."""

    flag: str
    section: str          # "eval" or "kl": which settings object (and which part of a run's spec)
    key: str              # the field it sets
    kind: type | str      # what the command line accepts (int, float, str, bool: --flag / --no-flag; "int | float")
    help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def given(self, value) -> str:
        """The flag as typed to give `value`."""
        if self.kind is bool:
            return self.flag if value else f"--no-{self.flag.removeprefix('--')}"
        return f"{self.flag} {value}"


FLAGS = (
    Flag("--limit", "eval", "limit", "int | float", "a fixed random subset of N items per task (the same for every "
         "run), or below 1 that share of each task's items, as lm-eval's --limit"),
    Flag("--num-fewshot", "eval", "num_fewshot", int, "lm-eval tasks' few-shot examples"),
    Flag("--apply-chat-template", "eval", "chat_template", bool, "format generation prompts with the model's chat "
         "template, when it has one (--no-apply-chat-template: plain Question/Answer prompts)"),
    Flag("--backend", "eval", "backend", str, "generation backend: hf (default) or vllm"),
    Flag("--max-new-tokens", "eval", "max_new_tokens", int, "generation tasks' token cap"),
    Flag("--temperature", "eval", "temperature", float, "generation tasks (0: greedy)"),
    Flag("--samples-per-problem", "eval", "samples_per_problem", int, "pass@1 over k samples"),
    Flag("--eval-batch-size", "eval", "batch_size", str, "an integer, or 'auto' (lm-eval's, for a GPU)"),
    Flag("--kl-samples", "kl", "samples", int, "sequences sampled from the base model for KL"),
    Flag("--kl-target-prompts", "kl", "target_prompts", int, "held-out target prompts KL is also measured on "
         "(one base response each)"),
    Flag("--kl-max-new-tokens", "kl", "max_new_tokens", int, "length cap of the KL samples"),
)


# --------------------------------------------------------------------------------- key=value strings
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


def coerce(text: str, typ, what: str):
    """`text` as a value of `typ` (bool, int, float, str, or `int | str` style unions tried in order), or a
    UserError naming `what` (e.g. "--set lam=x: explicit_kl's lam"). Numbers must be finite."""
    try:
        return parse_as(text, typ)
    except ValueError as e:
        raise UserError(f"{what} {e}") from None


def parse_as(text: str, typ):
    """`text` as a value of `typ`, or a ValueError saying what it must be ("must be a number, not 'x'.")."""
    for option in _options(typ):
        try:
            value = _one(text.strip(), option)
        except ValueError:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite number, not {text!r}.")
        return value
    names = " or ".join(KINDS.get(t, getattr(t, "__name__", str(t))) for t in _options(typ))
    raise ValueError(f"must be {names}, not {text!r}.")


def _options(typ) -> list:
    if isinstance(typ, str):         # annotations under `from __future__ import annotations`
        return [{"float": float, "int": int, "bool": bool, "str": str}.get(t.strip(), str) for t in typ.split("|")
                if t.strip() != "None"]
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    return args or [typ]


def _one(text: str, typ):
    if typ is bool:
        if text.lower() in TRUE | FALSE:
            return text.lower() in TRUE
        raise ValueError(text)
    if typ is int:
        return int(text)
    if typ is float:
        return float(text)
    return typ(text)


def typed(value, typ):
    """A value given as text (the command line, key=value) parsed as `typ`; one given as a Python value (the API, a
    YAML file) kept when it is one (an int where a float is wanted becomes that float), else parsed from its text."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value!r}.")
    if not isinstance(value, str):
        for option in _options(typ):
            if isinstance(value, option) and not (isinstance(value, bool) and option is not bool):
                return value
            if option is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
    return parse_as(str(value), typ)


def parse_pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    """`key=value` strings into a dict (the last of repeated keys wins); malformed ones are a UserError."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"Malformed {flag} {item!r}: expected key=value, e.g. {flag} ratio=0.5.")
        out[key.strip()] = value.strip()
    return out


def typed_fields(cls, overrides: dict, flag: str, owner: str, noun: str = "setting") -> dict:
    """Overrides of a dataclass's fields, each coerced to its field's type; an unknown key or a bad value is a
    FieldError of the request's field `flag` names ("--set": set, "--budget": budget) with a "did you mean". Values
    that are not strings (presets, the API) are coerced through their text."""
    known = {f.name: f.type for f in fields(cls)}
    field_name = flag.removeprefix("--")
    out = {}
    for key, value in overrides.items():
        if key not in known:
            accepted = ", ".join(sorted(known)) or "none"
            raise FieldError(field_name, f"{owner} has no {noun} {key!r}.{did_you_mean(key, known)} Accepted: "
                             f"{accepted}.", key=key, value=value)
        try:
            out[key] = typed(value, known[key])
        except ValueError as e:
            raise FieldError(field_name, f"{owner}'s {key} {e}", key=key, value=value) from None
    return out
