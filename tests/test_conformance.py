"""Every registered method, through the CLI on the micro world with a tiny budget (parametrised over the
registry itself: a new method file, or an installed plugin's entry point, is tested here without editing this
file), and a plugin written by the test (tests/plugin.py), by entry-point name and by module:Class."""

import json
import os

import pytest
import torch
from forgetbench.cli import main
from forgetbench.method import Context, build_method, methods, reference_method
from forgetbench.records.schema import load_run_folder
from forgetbench.task import targets

from tests.plugin import PACKAGE, forget_plugin, install, write_plugin

# every registered method (forgetbench's own and installed entry points), and any named in FORGETBENCH_TEST_METHODS
# (comma-separated, e.g. a plugin's pkg.module:Class: methods/README.md)
NAMES = methods.names() + [n.strip() for n in os.environ.get("FORGETBENCH_TEST_METHODS", "").split(",") if n.strip()]

TINY = ["--budget", "examples=16", "--budget", "epochs=1", "--budget", "batch_size=8", "--limit", "6",
        "--max-new-tokens", "8", "--kl-samples", "4"]


def run(capsys, name, out, *extra):
    cls = methods.get(name)
    sets = [f"--set={k}={v}" for k, v in cls.smoke.items()]
    sets += ["--target", cls.smoke_target] if cls.smoke_target else []
    code = main(["run", "--method", name, *sets, *TINY, *extra, "--out", str(out), "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_method_conforms(name, capsys, tmp_path, micro_base):
    conforms(name, capsys, tmp_path, micro_base)


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    install(write_plugin(tmp_path / "site"), monkeypatch)
    yield
    forget_plugin()


@pytest.mark.slow
@pytest.mark.parametrize("name,spelled,recorded", [
    ("demo_plugin", f"{PACKAGE}.methods:DemoPlugin", "demo_plugin"),                       # an entry point
    (f"{PACKAGE}.methods:Unregistered", f"{PACKAGE}.methods.Unregistered", f"{PACKAGE}.methods.Unregistered")])
def test_a_plugin_method_conforms(name, spelled, recorded, plugin, capsys, tmp_path, micro_base):
    """A method of another package conforms like one of forgetbench's own; its runs carry the name `recorded`,
    and another spelling of the same class (as the record has it) finds those runs done."""
    first = conforms(name, capsys, tmp_path, micro_base)
    assert {r["spec"]["method"] for r in first} == {recorded}
    assert all(r["run_id"].startswith(f"{recorded}-s0-") for r in first)
    again = run(capsys, spelled, tmp_path / "a")
    assert [r["run_id"] for r in again] == [r["run_id"] for r in first]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(r["run_id"] for r in first)


def conforms(name, capsys, tmp_path, micro_base) -> list[dict]:
    """The conformance checks of one method; its first run's records."""
    cls = methods.get(name)
    assert cls.summary() and cls.source(), "the docstring needs a summary line and a Source line"
    assert cls.cost in ("cheap", "moderate", "expensive")
    first = run(capsys, name, tmp_path / "a", "--save-model")
    base = dict(micro_base.model.named_parameters())
    for rec in first:
        folder = tmp_path / "a" / rec["run_id"]
        load_run_folder(folder)                                   # schema, checksums, item counts
        made = {tuple(p.split("/")[1:3]) for p in rec["lm_eval_outputs"]}   # lm-eval's files, both models
        assert made == {("base", "micro"), ("tuned", rec["run_id"])}
        from transformers import AutoModelForCausalLM
        tuned = AutoModelForCausalLM.from_pretrained(folder / "model")
        changed = {n for n, p in tuned.named_parameters() if not torch.equal(p, base[n])}
        l2 = sum(float(((p.double() - base[n].double()) ** 2).sum()) for n, p in tuned.named_parameters()) ** 0.5
        assert rec["weight_change"]["l2"] == pytest.approx(l2, rel=1e-6)      # the saved weights' distance
        declared = set(rec["training"]["trainable_tensors"])
        assert changed == declared, f"changed but not declared: {changed - declared}; declared, unchanged: " \
                                    f"{declared - changed}"
        assert rec["training"]["trainable_share"] > 0
    second = run(capsys, name, tmp_path / "b")                   # same seed, fresh folder: same numbers
    assert [r["run_id"] for r in second] == [r["run_id"] for r in first]
    for a, b in zip(first, second):
        for key in ("target", "suites", "kl"):
            assert a[key] == b[key]
    code = main(["run", "--method", name, "--set", "no_such_knob=1", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and "no hyperparameter 'no_such_knob'" in err and "Traceback" not in err
    return first


@pytest.mark.parametrize("name", NAMES)
def test_mixture_has_no_side_effects_after_prepare(name, micro_base):
    """One-off work belongs in prepare(ctx): mixture(ctx) is a function of the context, leaving the method's
    state and the context's notes as they were, and giving the same examples every time."""
    method = build_method(name, methods.get(name).smoke)
    ctx = Context(base=micro_base, target=targets.get(methods.get(name).smoke_target or "micro-cipher"), seed=0,
                  examples=16)
    method.prepare(ctx)
    state, notes = dict(vars(method)), json.dumps(ctx.notes, sort_keys=True, default=str)
    first = method.mixture(ctx)
    assert {k: id(v) for k, v in vars(method).items()} == {k: id(v) for k, v in state.items()}
    assert json.dumps(ctx.notes, sort_keys=True, default=str) == notes
    assert method.mixture(ctx) == first


def test_exactly_one_method_is_the_reference_arm():
    assert reference_method() == "naive_sft"
    assert [n for n, cls in methods.items() if cls.reference] == ["naive_sft"]
