"""The method contract: what is registry contract (class variables) and what is a hyperparameter (a dataclass
field) is declared, and checked when a class is created; the cost is declared once, in the class body."""

import __future__

import dataclasses
from typing import ClassVar

import pytest
from forgetbench.method import COSTS, Method, WeightGrid, methods, register
from forgetbench.methods.lwf import LwF

CONTRACT = {"name": "str = 'x'", "cost": "str = 'cheap'", "reference": "bool = False", "smoke": "dict = None",
            "smoke_target": "str = None", "sweep": "dict = None"}


def isolated_registry(monkeypatch) -> None:
    """The method registry restored after the test, without what it registered (every built-in registered first:
    a module already imported registers nothing again)."""
    methods.items()
    monkeypatch.setattr(methods, "_entries", dict(methods._entries))


def make(body: str, base=Method, *, future: bool = False, module: str = __name__):
    """A class `Made` created from the text of its body, as a class statement in a module of its own creates it
    (`future`: under `from __future__ import annotations`, annotations are text; `module`: the module it is in, one
    dataclasses can look into for text annotations)."""
    scope = {"__name__": module, "ClassVar": ClassVar, "base": base}
    text = "class Made(base):\n    '''Made.\n    Source: a test.'''\n" + "".join(f"    {line}\n"
                                                                                for line in body.splitlines())
    flags = __future__.annotations.compiler_flag if future else 0
    exec(compile(text, "<made>", "exec", flags=flags, dont_inherit=True), scope)
    return scope["Made"]


@pytest.mark.parametrize("attr,annotated", [*CONTRACT.items(), ("grid", "str = 'alpha'"),
                                            ("grid_range", "tuple = (0.0, 1.0, True)")])
def test_a_contract_attribute_annotated_as_a_field_fails_when_the_class_is_created(attr, annotated):
    base = WeightGrid if attr.startswith("grid") else Method
    with pytest.raises(TypeError) as raised:
        make(f"{attr}: {annotated}", base)
    assert str(raised.value) == (f"Made.{attr} is part of the method contract (a ClassVar), not a hyperparameter: "
                                 f"assign it without an annotation ({attr} = ...) or annotate it ClassVar[...]")


def test_a_contract_attribute_is_overridden_by_assignment_or_as_a_classvar():
    plain = make("sweep = {'lam': [1.0]}\nsmoke: ClassVar[dict] = {'lam': '2'}\nlam: float = 0.5")
    assert [f.name for f in dataclasses.fields(dataclasses.dataclass(plain))] == ["lam"]
    assert (plain.sweep, plain.smoke) == ({"lam": [1.0]}, {"lam": "2"})
    text = make("smoke: ClassVar[dict] = {}\nlam: float = 0.5", future=True)
    assert text.__annotations__ == {"smoke": "ClassVar[dict]", "lam": "float"}
    assert [f.name for f in dataclasses.fields(dataclasses.dataclass(text))] == ["lam"]
    with pytest.raises(TypeError, match="Made.sweep is part of the method contract"):
        make("sweep: dict = None", future=True)


@pytest.mark.parametrize("body,base,attr", [("loss: float = 1.0", Method, "loss"),
                                            ("params: int = 0", Method, "params"),
                                            ("value: float = 0.5", WeightGrid, "value")])
def test_a_hyperparameter_may_not_hide_an_attribute_of_a_base(body, base, attr):
    with pytest.raises(TypeError) as raised:
        make(body, base)
    assert str(raised.value) == f"Made: hyperparameter {attr!r} would hide the method attribute {attr!r}; rename it"


def test_a_subclass_redefines_an_inherited_hyperparameter():
    made = dataclasses.dataclass(make("lam: float = 0.5", LwF))
    assert made().params() == {"lam": 0.5, "temperature": 2.0}


def test_the_cost_is_declared_in_the_class_body_once(monkeypatch):
    isolated_registry(monkeypatch)
    # named like a file of forgetbench's own, as its methods register
    expensive = register("made_expensive")(make("cost = 'expensive'", module="forgetbench.methods.made_expensive"))
    assert (expensive.cost, expensive.name, methods.get("made_expensive")) == ("expensive", "made_expensive",
                                                                              expensive)
    assert make("", LwF).cost == "moderate"                    # inherited with everything else
    with pytest.raises(TypeError, match="unexpected keyword argument 'cost'"):
        register("made_cheap", cost="cheap")
    with pytest.raises(TypeError) as raised:
        make("cost = 'pricey'")
    assert str(raised.value) == "Made.cost must be one of cheap, moderate, expensive, not 'pricey'"
    assert COSTS == ("cheap", "moderate", "expensive")


def test_built_in_methods_keep_their_costs():
    moderate = {"context_free", "contextual_synthetic", "ewc", "explicit_kl", "lwf", "self_sft"}
    assert {n: cls.cost for n, cls in methods.items()} == {
        n: "expensive" if n == "grpo" else "moderate" if n in moderate else "cheap" for n in methods.names()}


def test_smoke_and_sweep_name_hyperparameters(monkeypatch):
    isolated_registry(monkeypatch)
    with pytest.raises(TypeError) as raised:
        register("made_odd")(make("sweep = {'lam': [1.0], 'rank': [2]}\nsmoke = {'lam': '1'}\nlam: float = 0.5",
                                  module="forgetbench.methods.made_odd"))
    assert str(raised.value) == "method 'made_odd': its sweep names rank, which is not its hyperparameter"


def test_the_base_method_describes_itself_not_naive_sft():
    assert Method.summary().startswith("The base of every method:")
    assert "supervised fine-tuning" not in Method.__doc__
    naive = methods.get("naive_sft")
    assert naive.summary() == "Fine-tune on the target only; cross-entropy on response tokens."
    assert naive.source() == "the standard supervised fine-tuning baseline (reference arm for every comparison)."
