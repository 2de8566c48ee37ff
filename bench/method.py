"""The method interface: a small dataclass with a default for every hook.

    prepare(ctx)            -> None                       one-off work before training (a Fisher matrix, a
                                                          reference stream, per-example weights); its state
                                                          lives on the method, never left behind by `mixture`
    mixture(ctx)            -> {source name: [examples]}  what is trained on (target only by default); no side
                                                          effects
    loss(model, batch, ctx) -> scalar                     cross-entropy on labelled tokens by default
    trainable(model)        -> None | model               which parameters train (all by default); may
                                                          return a replacement (a model with adapters)
    fit(model, ctx, budget, seed) -> TrainingStats | None the method's own trainer (on-policy methods: sampling
                                                          between updates, TRL's GRPOTrainer); None by default:
                                                          the engine's Trainer on mixture and loss
    finalize(tuned, base)   -> model                      weights after training (identity by default)
    variants()              -> [Method]                   settings evaluated from one training run
                                                          (each its own result record; just self by default)

Hyperparameters are the dataclass fields (annotated, with defaults), settable with `--set key=value` and recorded
in the result. The registry contract is class variables (ClassVar), declared in the class body: `name` (set by
`register`), `cost` (cheap | moderate | expensive: COSTS), `reference` (the arm every comparison is made against:
exactly one method, forgetbench's naive_sft), `smoke` (the `--set` values of the cheapest run that still exercises
every code path of the method: what the conformance test and quick checks run; `smoke_target` its target where the
default cannot: an on-policy method needs a base model that is sometimes right), `sweep` (the method's default
sweep grid: its hyperparameters that trade learning for forgetting, each with the values a sweep draws from; the
shared budget knobs, learning rate and epochs, are added by the sweep itself: bench/sweeper/design.py), and
WeightGrid's `grid` and `grid_range`. A subclass overrides one by assigning it without an annotation; annotating
one as a field is a TypeError when the class is created, as is a field that would hide a base's attribute. The
docstring's first line is the summary `bench methods` prints; the second names the source.

Where methods come from (forgetbench.core.registry): a file of forgetbench's own registers under its file's name
(`methods/lwf.py` registers "lwf"), so that the registry lists and checks names without importing every method;
another package's method is an entry point of the group `forgetbench.methods`, or is named by module path
(`--method pkg.module:Class`). `methods.canonical(name)` is the name its runs carry (methods/README.md).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import random
import re
import typing
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from forgetbench.core.errors import UserError
from forgetbench.core.registry import Registry
from forgetbench.core.settings import typed_fields
from forgetbench.task import corpora
from forgetbench.toolbox.encoding import encode_pair, encode_prompt, encode_text, sequence_example, truncate

if TYPE_CHECKING:
    from forgetbench.task import Target
    from forgetbench.toolbox.models import ModelHandle
    from forgetbench.toolbox.training import TrainingStats

COSTS = ("cheap", "moderate", "expensive")     # training compute against naive SFT's (methods/README.md)


class Context:
    """What a method may use: the base model, the target's data, cached base-model samples, the seed."""

    def __init__(self, *, base: ModelHandle, target: Target, seed: int, pairs: list[dict] | None = None,
                 data_dir: Path | None = None, examples: int = 0, backend: str = "hf"):
        self.base = base
        self.target = target
        self.seed = seed
        self._pairs, self.data_dir, self.examples, self.backend = pairs, data_dir, examples, backend
        self.tokenizer = base.tokenizer
        self.notes: dict = {}          # method-specific facts for the result record

    @cached_property
    def target_pairs(self) -> list[dict]:
        """The target's training pairs; with a budget of `examples`, a fixed random subset (the same for
        every method and seed, so runs differ only in what the method does)."""
        pairs = self._pairs if self._pairs is not None else self.target.train_pairs(self.data_dir, None)
        if self.examples and self.examples < len(pairs):
            keep = sorted(random.Random(f"forgetbench-examples:{self.target.name}").sample(range(len(pairs)),
                                                                                          self.examples))
            pairs = [pairs[i] for i in keep]
        return pairs

    @cached_property
    def target_examples(self) -> list[dict]:
        return [encode_pair(self.tokenizer, p["prompt"], p["response"], self.target.chat) for p in self.target_pairs]

    @cached_property
    def base_parameters(self) -> dict:
        """The base model's parameters by name: the start point that penalties (L2-SP, EWC) pull toward."""
        return {n: p.detach() for n, p in self.base.model.named_parameters()}

    @cached_property
    def frozen_base(self):
        """A frozen copy of the base model (for loss terms that need reference logits)."""
        return self.base.frozen_copy()

    def rng(self, salt: str) -> random.Random:
        return random.Random(f"{self.seed}:{salt}")

    def _sample(self, prompts: list[list[int]], temperature: float, max_new_tokens: int, desc: str):
        from forgetbench.toolbox.generation import Sampling, cached_sample
        return cached_sample(self.base, prompts, Sampling(temperature, max_new_tokens), self.seed, desc=desc,
                             backend_name=self.backend)

    def context_free_samples(self, n: int, temperature: float = 1.0, max_new_tokens: int = 48) -> list[dict]:
        """n sequences sampled from the base model given only its start token, as full-loss examples."""
        start = self.base.start_token_id
        gen = self._sample([[start]] * n, temperature, max_new_tokens, "context-free samples")
        return [sequence_example([start] + g) for g in gen if g]

    def contextual_samples(self, prompts: list[str], temperature: float = 1.0,
                           max_new_tokens: int = 48) -> list[dict]:
        """Base-model continuations of the given prompts (in the target's format); loss on the continuation."""
        enc = [encode_prompt(self.tokenizer, p, self.target.chat) for p in prompts]
        gen = self._sample(enc, temperature, max_new_tokens, "contextual samples")
        return [sequence_example(p + g, n_prompt=len(p)) for p, g in zip(enc, gen) if g]

    def completions(self, model, pairs: list[dict], k: int, *, temperature: float, max_new_tokens: int,
                    seed: int) -> list[list[str]]:
        """k completions of `model` to each pair's prompt (in the training format), each cut where the target's
        evaluation cuts one (its stop strings, EOS); None for one that reached max_new_tokens without ending (an
        unfinished text: trained on as a response, with its EOS, it would teach the model to stop mid-sentence).
        The base model's are drawn once per run seed and cached (`seed` is then unused: every run with that seed
        trains on the same draw); another model's are drawn anew with `seed`."""
        from forgetbench.toolbox.generation import Sampling, backend, cut_at_stop

        prompts = [encode_prompt(self.tokenizer, p["prompt"], self.target.chat) for p in pairs]
        asked = [p for p in prompts for _ in range(k)]
        if model is self.base.model:
            gen = self._sample(asked, temperature, max_new_tokens, "completions from base")
        else:
            sampling = Sampling(temperature, max_new_tokens, also_end=self.base.document_ends)   # as the base's end
            gen = backend("hf", model, self.tokenizer).generate(asked, sampling, seed,
                                                                desc="completions from the model in training")
        ends = (self.tokenizer.eos_token_id, *self.base.document_ends)
        texts = []
        for g in gen:
            text = self.tokenizer.decode(g, skip_special_tokens=True)
            cut = cut_at_stop(text, self.target.stop)
            texts.append(cut if cut != text or (g and g[-1] in ends) else None)
        return [texts[i * k:(i + 1) * k] for i in range(len(pairs))]

    def pretraining_text(self, n: int, max_tokens: int = 512) -> list[dict]:
        """n documents from the base model's pretraining distribution, each cut to its first max_tokens tokens:
        fresh draws where the model's source knows it (the micro world), else the target's stand-in corpus
        (a registered general-text corpus)."""
        if self.base.pretraining_docs is not None:
            docs = self.base.pretraining_docs(n, 7919 + self.seed)
        elif self.target.replay_corpus is not None:
            docs, facts = corpora.get(self.target.replay_corpus).documents(self.data_dir, n, self.rng("replay"))
            self.notes["replay_corpus"] = facts
        else:
            raise UserError(f"The model {self.base.name!r} has no known pretraining corpus, and target "
                            f"{self.target.name!r} names no stand-in corpus to replay.")
        return [truncate(encode_text(self.tokenizer, d), max_tokens) for d in docs]


def _check_class_body(cls: type) -> None:
    """At class creation: the registry contract is class variables, never hyperparameter fields; a field hides no
    attribute of the bases (other than a base's field, which it redefines); the cost is one of COSTS."""
    bases = cls.__mro__[1:]
    contract = {n for base in bases for n, a in _own_annotations(base).items() if _is_classvar(a)}
    inherited = {f.name for base in bases if dataclasses.is_dataclass(base) for f in fields(base)}
    for n, annotation in _own_annotations(cls).items():
        if _is_classvar(annotation):
            continue
        if n in contract:
            raise TypeError(f"{cls.__qualname__}.{n} is part of the method contract (a ClassVar), not a "
                            f"hyperparameter: assign it without an annotation ({n} = ...) or annotate it ClassVar[...]")
        if n not in inherited and any(hasattr(base, n) for base in bases):
            raise TypeError(f"{cls.__qualname__}: hyperparameter {n!r} would hide the method attribute {n!r}; "
                            "rename it")
    if cls.cost not in COSTS:
        raise TypeError(f"{cls.__qualname__}.cost must be one of {', '.join(COSTS)}, not {cls.cost!r}")


def _own_annotations(cls: type) -> dict:
    """The class's own annotations, unevaluated where they can be (text under `from __future__ import annotations`)."""
    try:
        import annotationlib  # Python 3.14: annotations are evaluated when asked for
    except ImportError:
        return inspect.get_annotations(cls)
    return annotationlib.get_annotations(cls, format=annotationlib.Format.FORWARDREF)


def _is_classvar(annotation) -> bool:
    """ClassVar, ClassVar[...], or their text: what dataclasses leaves out of the fields."""
    if isinstance(annotation, str):
        return re.match(r"(typing\.)?ClassVar\b", annotation.strip()) is not None
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


@dataclass
class Method:
    """The base of every method: each hook's default is plain fine-tuning (the target's examples, cross-entropy,
    every parameter trains, the engine's Trainer). A subclass is a dataclass whose fields are its hyperparameters;
    the class variables below are the registry contract (the module's docstring)."""

    name: ClassVar[str] = ""            # the registry name (set by `register`)
    cost: ClassVar[str] = "cheap"       # one of COSTS
    reference: ClassVar[bool] = False   # the arm every comparison is made against (exactly one method)
    smoke: ClassVar[dict] = {}          # --set values of the cheapest run that exercises every code path
    smoke_target: ClassVar[str | None] = None   # its target, where the default one cannot exercise the method
    sweep: ClassVar[dict] = {}          # hyperparameter -> values a sweep draws from (learning vs forgetting)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _check_class_body(cls)

    def prepare(self, ctx: Context) -> None:
        """One-off work before training; keep what `mixture` and `loss` need on self."""

    def mixture(self, ctx: Context) -> dict[str, list[dict]]:
        return {"target": ctx.target_examples}

    def loss(self, model, batch: dict, ctx: Context):
        from forgetbench.toolbox.losses import cross_entropy  # torch loads when a method is used, not when it is named
        return cross_entropy(model, batch)

    def trainable(self, model):
        """Mark which parameters train (requires_grad); all of them by default. May return a replacement
        model (e.g. wrapped with adapters); `finalize` must then return a plain model again."""

    def finalize(self, tuned, base):
        return tuned

    def fit(self, model, ctx: Context, budget, seed: int) -> TrainingStats | None:
        """Train `model` in place with the method's own trainer and return its statistics for the record
        (forgetbench.toolbox.training.TrainingStats, as toolbox.training.train returns; the engine adds what it
        measures around any trainer); None, the default: the engine trains on `mixture` with `loss`."""
        return None

    def variants(self) -> list[Method]:
        """The settings evaluated from this one training run, each reported as its own result."""
        return [self]

    # ------------------------------------------------------------------ description
    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0].strip()

    @classmethod
    def source(cls) -> str:
        lines = (cls.__doc__ or "").strip().splitlines()
        return lines[1].strip().removeprefix("Source:").strip() if len(lines) > 1 else ""

    def params(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Mixing(Method):
    """Base for methods that add `ratio` extra examples per target example to the training mixture."""

    sweep = {"ratio": [0.25, 0.5, 1.0, 2.0]}
    ratio: float = 1.0

    def __post_init__(self):
        if self.ratio < 0:
            raise ValueError("needs ratio >= 0")

    def n_extra(self, ctx: Context) -> int:
        return round(self.ratio * len(ctx.target_examples))


@dataclass
class GeneratedMixing(Mixing):
    """Base for methods whose extra examples are sampled from the base model."""

    temperature: float = 1.0      # 1.0 samples the base distribution itself
    max_new_tokens: int = 48

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0 or self.max_new_tokens < 1:
            raise ValueError("needs temperature > 0 and max_new_tokens >= 1")


@dataclass
class WeightGrid(Method):
    """Base for methods that transform the trained weights (`finalize`) with one knob that may be a grid: a
    comma-separated list evaluated from one training run, one result each (WiSE-FT's alpha, DARE's p). The
    subclass names the knob (`grid`, a string field) and its range (`grid_range`: low, high, high included). A
    sweep never draws the knob: it evaluates every training configuration at each of its `sweep` values (and
    configuration 0's), so the method trains as many runs as any other (bench/sweeper/design.py)."""

    grid: ClassVar[str] = ""
    grid_range: ClassVar[tuple[float, float, bool]] = (0.0, float("inf"), True)

    def __post_init__(self):
        text = getattr(self, self.grid)
        low, high, closed = self.grid_range
        try:
            values = [float(a) for a in text.split(",")]
        except ValueError:
            raise ValueError(f"{self.grid} must be a number or comma-separated numbers, not {text!r}") from None
        inside = all(math.isfinite(a) and low <= a and (a <= high if closed else a < high) for a in values)
        if not values or not inside:
            raise ValueError(f"{self.grid} values must be finite numbers from {low:g} to {high:g}"
                             f"{'' if closed else ' (excluded)'}, not {text!r}")
        self.values = values

    def variants(self) -> list[Method]:
        if len(self.values) == 1:
            return [self]
        return [dataclasses.replace(self, **{self.grid: f"{a:g}"}) for a in self.values]

    @property
    def value(self) -> float:
        """The one value of a variant (`finalize` runs on variants, never on a grid)."""
        (v,) = self.values
        return v


def train_only(model, keep) -> None:
    """Freeze every parameter except those whose name `keep(name)` accepts."""
    for name, p in model.named_parameters():
        p.requires_grad_(bool(keep(name)))


def trainable_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def with_trainable(method: Method, model):
    """`model` (a trainable copy) with the method's selection applied: the model itself, or its replacement."""
    return method.trainable(model) or model


def trainable_share(method: Method, model) -> float:
    """The fraction of `model`'s parameter count that `method` trains (adapters count as trained); works on a
    meta-device skeleton. ValueError if the method cannot apply to this model."""
    from forgetbench.toolbox.models import trainable_copy
    tuned = with_trainable(method, trainable_copy(model))
    return trainable_count(tuned) / sum(p.numel() for p in model.parameters())


def _unknown_settings(cls: type[Method]) -> str | None:
    """What is wrong with the contract's settings of a dataclass method: `smoke` and `sweep` name its fields."""
    knobs = {f.name for f in fields(cls)}
    for what in ("smoke", "sweep"):
        if odd := sorted(set(getattr(cls, what)) - knobs):
            return f"its {what} names {', '.join(odd)}, which {'is' if len(odd) == 1 else 'are'} not its hyperparameter"
    return None


def _admissible(obj) -> str | None:
    """Why `obj`, from another package (an entry point, a module path), cannot be a method; None when it can."""
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        kind = ("a class" if isinstance(obj, type) else "a module" if inspect.ismodule(obj)
                else "a function" if inspect.isroutine(obj) else f"a {type(obj).__name__}")
        return f"is {kind}, not a subclass of forgetbench.method.Method"
    if obj.__module__ == __name__:
        return "is a base class of forgetbench.method, not a method"
    fresh = [n for n, a in _own_annotations(obj).items() if not _is_classvar(a)]
    if fresh and "__dataclass_fields__" not in vars(obj):
        return (f"declares hyperparameters ({', '.join(fresh)}) but is not a dataclass: decorate it with "
                "@register(NAME) or @dataclass")
    if obj.reference:
        return "sets reference = True, but the reference arm is forgetbench's naive_sft: set reference = False"
    return _unknown_settings(obj)


methods: Registry[type[Method]] = Registry("method", "forgetbench.methods", by_module=True,
                                           plugins="forgetbench.methods", admit=_admissible)


def register(name: str):
    """Class decorator: `@register("my_method")` makes a Method subclass a dataclass and the registry's entry
    `name` (a file of forgetbench's own: its file's name; another package's: its entry point's name). The rest of
    the registry contract, `cost` included, is declared in the class body."""
    def deco(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"{cls!r} is not a Method subclass")
        cls.name = name
        cls = dataclass(cls)
        if why := _unknown_settings(cls):
            raise TypeError(f"method {name!r}: {why}")
        methods.add(name, cls, module=cls.__module__)
        return cls
    return deco


def reference_method() -> str:
    """The registered reference arm (the baseline the leaderboard's tests compare against)."""
    return methods.the_one("reference")


def build_method(name: str, overrides: dict[str, str]) -> Method:
    """The registered method `name` with its `--set` overrides, each checked and typed like its field."""
    from forgetbench.core.budget import Budget
    cls = methods.get(name)
    knobs = {f.name for f in dataclasses.fields(cls)}
    budget = [k for k in overrides if k not in knobs and k in {f.name for f in dataclasses.fields(Budget)}]
    if budget:              # lm-eval and TRL users reach for --set lr=...: the budget is every method's
        raise UserError(f"{', '.join(budget)}: the training budget's, not a setting of method {name!r}; use "
                        f"{' '.join(f'--budget {k}={overrides[k]}' for k in budget)}.")
    kwargs = typed_fields(cls, overrides, "--set", f"Method {name!r}", noun="hyperparameter")
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise UserError(f"Method {name!r}: {e}") from None
