"""Methods from other packages: an entry point of the group forgetbench.methods, or a module:Class name, through the
registry, `bench run`, `bench methods`, forgetbench.run, a sweep and the leaderboard (tests/plugin.py is the plugin;
tests/test_conformance.py runs it end to end)."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import forgetbench
import pytest
from forgetbench.cli import main
from forgetbench.core.errors import UserError
from forgetbench.method import Method, methods, reference_method, register
from forgetbench.methods.naive_sft import NaiveSFT
from forgetbench.runner.stages import RunRequest, plan_run
from forgetbench.sweeper.design import SweepConfig, expand

from tests.plugin import PACKAGE, forget_plugin, install, isolated_registry, write_plugin

MODULE = f"{PACKAGE}.methods"
BUILT_IN = ["attn_only", "context_free", "contextual_synthetic", "dare", "ewc", "explicit_kl", "flow", "freeze_bottom",
            "grpo", "hft", "l2sp", "lines", "lora", "lwf", "mlp_gate_up", "naive_sft", "pretrain_replay", "self_sft",
            "wise_ft"]


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    """The test plugin installed for one test (entry point demo_plugin -> DemoPlugin)."""
    install(write_plugin(tmp_path / "site"), monkeypatch)
    yield tmp_path / "site"
    forget_plugin()


def bench(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_entry_point_is_listed_without_importing_its_module(plugin):
    assert methods.names() == sorted([*BUILT_IN, "demo_plugin"])
    assert MODULE not in sys.modules
    cls = methods.get("demo_plugin")
    assert (cls.__module__, cls.__name__, cls.name, cls.cost) == (MODULE, "DemoPlugin", "demo_plugin", "moderate")
    assert reference_method() == "naive_sft"


def test_a_run_carries_a_name_that_finds_its_class_again_and_names_a_folder(plugin):
    recorded = {"demo_plugin": "demo_plugin", f"{MODULE}:DemoPlugin": "demo_plugin",
                f"{MODULE}.DemoPlugin": "demo_plugin", f"{MODULE}:Unregistered": f"{MODULE}.Unregistered",
                f"{MODULE}.Unregistered": f"{MODULE}.Unregistered", "lwf": "lwf", "forgetbench.methods.lwf:LwF": "lwf"}
    assert {name: methods.canonical(name) for name in recorded} == recorded
    for name in recorded:
        assert methods.get(name) is methods.get(recorded[name])      # what is recorded finds the same class
    plan = plan_run(RunRequest(method=f"{MODULE}:Unregistered", model="micro", target="micro-cipher"))
    assert plan.specs[0].method == f"{MODULE}.Unregistered"
    assert plan.dirs[0].name == f"{MODULE}.Unregistered-s0-{plan.specs[0].run_id.rsplit('-', 1)[1]}"
    builtin = plan_run(RunRequest(method="forgetbench.methods.lwf:LwF", model="micro", target="micro-cipher"))
    assert builtin.specs == plan_run(RunRequest(method="lwf", model="micro", target="micro-cipher")).specs


def test_a_name_registered_without_an_entry_point_is_recorded_by_module_path(tmp_path, monkeypatch):
    install(write_plugin(tmp_path / "site", {}), monkeypatch)
    try:
        assert "demo_plugin" not in methods.names()
        __import__(MODULE)                          # its @register runs: the name works in this process only
        assert methods.get("demo_plugin").__name__ == "DemoPlugin"
        assert methods.canonical("demo_plugin") == f"{MODULE}.DemoPlugin"
    finally:
        forget_plugin()


BAD = [
    ("fb_no_such_pkg.methods:X", "Method 'fb_no_such_pkg.methods:X': no module named 'fb_no_such_pkg' (is its package "
                                 "installed, or its folder on PYTHONPATH?)."),
    (f"{MODULE}:Nope", f"Method '{MODULE}:Nope': module {MODULE} has no attribute 'Nope'. Methods there: DemoPlugin, "
                       "OldFit, Unregistered."),
    (f"{MODULE}:DemoPlugn", f"Method '{MODULE}:DemoPlugn': module {MODULE} has no attribute 'DemoPlugn'. Did you mean "
                            "'DemoPlugin'? Methods there: DemoPlugin, OldFit, Unregistered."),
    (f"{MODULE}:helper", f"Method '{MODULE}:helper' is a function, not a subclass of forgetbench.method.Method."),
    (f"{MODULE}:re", f"Method '{MODULE}:re' is a module, not a subclass of forgetbench.method.Method."),
    (f"{MODULE}:Method", f"Method '{MODULE}:Method' is a base class of forgetbench.method, not a method."),
    (f"{MODULE}:Forgot", f"Method '{MODULE}:Forgot' declares hyperparameters (lam) but is not a dataclass: decorate it "
                         "with @register(NAME) or @dataclass."),
]


@pytest.mark.parametrize("name,message", BAD)
def test_a_bad_module_path_is_one_line_and_exit_status_2_before_any_work(plugin, capsys, tmp_path, name, message):
    for argv in (["run", "--method", name, "--out", tmp_path / "runs"], ["methods", name]):
        assert bench(capsys, *argv) == (2, "", f"bench: error: {message}\n")
    with pytest.raises(UserError) as raised:
        forgetbench.run(name, out=str(tmp_path / "runs"))
    assert str(raised.value) == message
    assert not (tmp_path / "runs").exists()                          # refused before anything was made


def test_entry_points_that_cannot_be_methods(tmp_path, monkeypatch, capsys):
    install(write_plugin(tmp_path / "site", {
        "broken": "fb_missing_module:Thing", "not_a_method": f"{MODULE}:helper", "renamed": f"{MODULE}:DemoPlugin",
        "bad.name": f"{MODULE}:Unregistered", "lwf": f"{MODULE}:Unregistered"}), monkeypatch)
    try:
        assert methods.names() == sorted([*BUILT_IN, "broken", "not_a_method", "renamed"])
        assert capsys.readouterr().err.splitlines() == [
            f"forgetbench: warning: method entry point 'bad.name' ({MODULE}:Unregistered, from fb-plugin-demo) is not "
            "a plain name (letters, digits, _ and -, starting with a letter); left out",
            f"forgetbench: warning: method entry point 'lwf' ({MODULE}:Unregistered, from fb-plugin-demo) is the name "
            "of forgetbench.methods.lwf, which keeps it; left out"]
        methods.names()
        assert capsys.readouterr().err == ""                          # each warning once
        assert methods.get("lwf").__module__ == "forgetbench.methods.lwf"
        expected = {
            "broken": "Method 'broken' (entry point fb_missing_module:Thing, from fb-plugin-demo): no module named "
                      "'fb_missing_module' (is its package installed, or its folder on PYTHONPATH?).",
            "not_a_method": f"Method 'not_a_method' ({MODULE}:helper) is a function, not a subclass of "
                            "forgetbench.method.Method.",
            "renamed": f"Method entry point 'renamed' ({MODULE}:DemoPlugin) registers itself as 'demo_plugin'; one "
                       "method, one name: make them the same."}
        for name, message in expected.items():
            assert bench(capsys, "methods", name) == (2, "", f"bench: error: {message}\n")
    finally:
        forget_plugin()


def test_one_name_from_two_packages_is_refused(tmp_path, monkeypatch):
    site = write_plugin(tmp_path / "site", {"twice": f"{MODULE}:DemoPlugin"})
    write_plugin(site, {"twice": f"{MODULE}:Unregistered"}, dist="fb-other-demo", code=False)
    install(site, monkeypatch)
    with pytest.raises(UserError) as raised:
        methods.get("twice")
    assert str(raised.value) == (f"Method 'twice' is an entry point of more than one package (fb-other-demo: "
                                 f"{MODULE}:Unregistered; fb-plugin-demo: {MODULE}:DemoPlugin); uninstall one.")
    assert MODULE not in sys.modules


@dataclass
class ClaimsReference(NaiveSFT):
    """Naive SFT under another name, still claiming to be the reference arm.
    Source: a test."""


def test_a_plugin_takes_no_built_in_name_no_dotted_name_and_is_never_the_reference_arm(monkeypatch):
    isolated_registry(monkeypatch)
    with pytest.raises(ValueError, match=r"method 'lwf' \(registered by .*\) is the name of forgetbench.methods.lwf; "
                                         "give it a name of its own"):
        @register("lwf")
        class Mine(Method):
            """Mine."""
    with pytest.raises(ValueError, match=r"method name 'my\.method' .*: use letters, digits, _ and -"):
        @register("my.method")
        class Dotted(Method):
            """Dotted."""
    with pytest.raises(UserError, match="sets reference = True, but the reference arm is forgetbench's naive_sft: set "
                                        "reference = False"):
        methods.get(f"{__name__}:ClaimsReference")
    assert reference_method() == "naive_sft"


def test_the_methods_table_and_card_show_a_plugin(plugin, capsys, micro_base):
    code, out, err = bench(capsys, "methods")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("demo_plugin "))
    mlp = sum(p.numel() for n, p in micro_base.model.named_parameters() if ".mlp." in n)
    share = mlp / sum(p.numel() for p in micro_base.model.parameters())
    assert row.split()[-2:] == ["moderate", f"{share:.1%}"]
    code, out, err = bench(capsys, "methods", f"{MODULE}:DemoPlugin")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:3] == [f"{MODULE}:DemoPlugin: Cross-entropy plus lam * the squared distance of the MLP weights to "
                         "the base's; only the MLPs train.", "source: forgetbench's test plugin (tests/plugin.py).",
                         "cost: moderate"]
    assert lines[-1].split() == ["lam", "float", "0.1", "0.1,", "1.0"]


def test_a_fresh_process_finds_the_entry_point_on_pythonpath(plugin):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "forgetbench.cli", "methods", "demo_plugin"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("demo_plugin: Cross-entropy plus lam")
    done = subprocess.run([sys.executable, "-m", "forgetbench.cli", "run", "--method", f"{MODULE}:Nope"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "") and done.stderr == f"bench: error: {BAD[1][1]}\n"


def test_a_sweep_takes_plugin_methods_by_either_name(plugin):
    runs = expand(RunRequest(method="", model="micro", target="micro-cipher"),
                  SweepConfig(methods=("demo_plugin", f"{MODULE}:Unregistered"), seeds=(0,), configs=3))
    ids = {m: [i for r in runs if r.method == m for i in r.run_ids] for m in ("demo_plugin", f"{MODULE}:Unregistered")}
    assert len(ids["demo_plugin"]) == 3 and all(i.startswith("demo_plugin-s0-") for i in ids["demo_plugin"])
    assert all(i.startswith(f"{MODULE}.Unregistered-s0-") for i in ids[f"{MODULE}:Unregistered"])
    varied = {k for r in runs if r.method == "demo_plugin" for k in r.config.overrides}
    assert varied == {"lam"}                                          # DemoPlugin's own sweep grid
    with pytest.raises(UserError, match=f"Unknown method\\(s\\): {MODULE}:Nope"):
        expand(RunRequest(method="", model="micro", target="micro-cipher"), SweepConfig(methods=(f"{MODULE}:Nope",)))


def test_the_leaderboard_describes_a_plugin_row_against_its_defaults(plugin, tmp_path):
    from forgetbench.leaderboard.tracks import build_tracks, load_runs

    from tests.test_leaderboard import BASE, write_run
    write_run(tmp_path, "naive_sft", 0, BASE)
    for name, params in ((f"{MODULE}.Unregistered", {"layers": 1}), (f"{MODULE}.Unregistered", {"layers": 2}),
                         ("demo_plugin", {"lam": 0.1})):
        folder = write_run(tmp_path, name, params.get("layers", 0), BASE)
        record = json.loads((folder / "result.json").read_text())
        record["spec"]["params"] = params
        (folder / "result.json").write_text(json.dumps(record))
    (track,) = build_tracks(load_runs(tmp_path), "naive_sft")
    assert sorted(r.label for r in track.rows) == sorted(["naive_sft", f"{MODULE}.Unregistered",
                                                          f"{MODULE}.Unregistered (layers=2)", "demo_plugin"])


def test_a_fit_that_returns_a_dict_is_a_clear_type_error(plugin, tmp_path, capsys):
    with pytest.raises(TypeError) as raised:
        main(["run", "--method", f"{MODULE}:OldFit", "--budget", "examples=8", "--out", str(tmp_path / "runs")])
    assert str(raised.value) == (f"Method '{MODULE}:OldFit': fit returned dict, not "
                                 "forgetbench.toolbox.training.TrainingStats (or None, for the engine's Trainer)")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())      # nothing was written
