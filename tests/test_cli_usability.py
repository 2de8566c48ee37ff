"""The CLI as an lm-eval user meets it: every flag explained with its default, errors in one line with the flag
they meant (ours for lm-eval's names), underscore spellings, fractional --limit, few-shot and chat-template flags,
`bench run --config`, `bench methods NAME`, `--version`; importing the CLI changes no environment variable."""

import argparse
import math
import os
import subprocess
import sys
from dataclasses import replace

import forgetbench
import pytest
from conftest import Accepted
from forgetbench.cli import main, parser
from forgetbench.cli.output import summary
from forgetbench.cli.parsing import Help, _is_value, subparsers
from forgetbench.core.settings import subset_indices
from hypothesis import given
from hypothesis import strategies as st

from tests.test_inputs import refused


def plan_of(capsys, argv):
    """The run plan `bench run argv` would start (nothing is loaded)."""
    with pytest.raises(Accepted) as caught:
        main(argv)
    capsys.readouterr()
    return caught.value.run_plan


def one_line_error(capsys, argv) -> str:
    """The one-line error of a command refused before any work: argparse's (a flag it does not know) or the
    library's (a value it refuses), both exit status 2."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def test_every_flag_of_every_command_has_help_and_shows_its_default():
    for command in subparsers(parser()):
        for action in command._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{command.prog} {action.option_strings or action.dest} has no help"
        for action in command._actions:
            default = getattr(action, "shown_default", action.default)
            if action.option_strings and default not in (None, False, [], argparse.SUPPRESS):
                shown = Help(command.prog)._get_help_string(action)
                assert "default" in shown and str(default) in shown, (command.prog, action.option_strings)
        command.format_help()


def test_version(capsys):
    from importlib.metadata import version
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"forgetbench {version('forgetbench')}"


def test_method_help_lists_every_method():
    from forgetbench.method import methods
    run = next(p for p in subparsers(parser()) if p.prog == "bench run")
    text = " ".join(run.format_help().split())
    assert all(name in text for name in methods.names())


def test_methods_name_shows_each_setting_with_type_default_and_sweep(capsys):
    assert main(["methods", "lwf"]) == 0
    card = capsys.readouterr().out
    rows = {line.split()[0]: line.split(maxsplit=3)[1:] for line in card.splitlines()[5:]}
    assert rows["lam"] == ["float", "1.0", "0.1, 0.3, 1.0, 3.0, 10.0"]
    assert rows["temperature"] == ["float", "2.0", "—"]
    assert card.startswith("lwf: Cross-entropy plus") and "cost: moderate" in card
    assert main(["methods", "lfw"]) == 2 and "Did you mean 'lwf'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["run", "--methd", "naive_sft"], "--methd: did you mean --method?"),
    (["run", "--method", "naive_sft", "--tasks", "arc_easy"], "--tasks is lm-eval's; here: --suite"),
    (["run", "--method", "naive_sft", "--batch_size", "8"], "--batch_size is lm-eval's; here: --eval-batch-size"),
    (["run", "--method", "naive_sft", "--output_path", "x"], "--output_path is lm-eval's; here: --out"),
    (["rn", "--method", "naive_sft"], "did you mean 'run'?"),
    (["run", "--method", "naive_sft", "--temperature", "-1", "--limt", "3"], "--limt: did you mean --limit?"),
    (["run", "--method", "naive_sft", "--limit", "0.1x"], "--limit must be an integer or a number, not '0.1x'"),
    # no prefix matching: --method is not taken for sweep's --methods (it was, and started a 12-run sweep)
    (["sweep", "--method", "naive_sft"], "--method: did you mean --methods?"),
    (["run", "--meth", "naive_sft"], "--meth: did you mean --method?"),
])
def test_argument_errors_are_one_line_with_what_was_meant(capsys, argv, needle):
    assert needle in one_line_error(capsys, argv)


def test_a_budget_field_given_as_a_method_setting_points_to_budget(capsys, no_work, out):
    refused(capsys, ["run", "--method", "naive_sft", "--set", "lr=0.001", "--out", out], "use --budget lr=0.001")


def test_underscore_spellings_are_the_dashed_flags(capsys, no_work, out):
    dashed = plan_of(capsys, ["run", "--method", "naive_sft", "--num-fewshot", "2", "--eval-batch-size", "8",
                              "--kl-max-new-tokens", "9", "--out", out]).specs[0]
    under = plan_of(capsys, ["run", "--method", "naive_sft", "--num_fewshot", "2", "--eval_batch_size", "8",
                             "--kl_max_new_tokens=9", "--out", out]).specs[0]
    assert dashed == under and dashed.eval["num_fewshot"] == 2 and dashed.kl["max_new_tokens"] == 9


def test_fewshot_chat_template_and_fractional_limit_reach_the_settings(capsys, no_work, out):
    spec = plan_of(capsys, ["run", "--method", "naive_sft", "--num-fewshot", "3", "--no-apply-chat-template",
                            "--limit", "0.25", "--out", out]).specs[0]
    assert (spec.eval["num_fewshot"], spec.eval["chat_template"], spec.eval["limit"]) == (3, False, 0.25)
    for bad in ("1.5", "0", "-0.2"):
        refused(capsys, ["run", "--method", "naive_sft", "--limit", bad, "--out", out], "--limit")


@given(st.integers(1, 2000), st.floats(0.0001, 0.9999))
def test_a_fractional_limit_takes_that_share_rounded_up_and_nests(n, share):
    chosen = subset_indices("task", n, share)
    k = math.ceil(share * n)
    if k >= n:
        assert chosen is None
    else:
        assert chosen == subset_indices("task", n, k) and len(chosen) == k   # the same draw as the count


def test_run_config_file_gives_the_flags_and_the_command_line_wins(tmp_path, capsys, no_work, out):
    config = tmp_path / "run.yaml"
    config.write_text("method: lwf\nseed: 3\nset: {lam: 0.5, temperature: 3}\nbudget: {lr: 0.002}\n"
                      "suite: [micro-zeroshot]\napply_chat_template: false\nlimit: 20\n")
    from_file = plan_of(capsys, ["run", "--config", config, "--out", out])
    by_flags = plan_of(capsys, ["run", "--method", "lwf", "--seed", "3", "--set", "lam=0.5", "--set", "temperature=3",
                                "--budget", "lr=0.002", "--suite", "micro-zeroshot", "--no-apply-chat-template",
                                "--limit", "20", "--out", out])
    assert from_file.specs == by_flags.specs
    mixed = plan_of(capsys, ["run", "--config", config, "--seed", "4", "--set", "lam=2", "--suite", "micro-reasoning",
                             "--out", out]).specs[0]
    assert (mixed.seed, mixed.params["lam"], mixed.params["temperature"], mixed.suites) == \
        (4, 2.0, 3.0, ("micro-reasoning",))
    config.write_text("method: lwf\nseeed: 3\n")
    assert main(["run", "--config", str(config), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "'seeed' is not a field of `bench run`; did you mean 'seed'?" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,needle", [(["run", "--config"], "argument --config: expected one argument"),
                                         (["run", "--config", "--seed", "1"], "argument --config: expected one"),
                                         (["run", "--config", "."], "cannot read it as a YAML file"),
                                         (["run", "--config=nowhere.yaml"], "no such file")])
def test_a_run_config_that_is_not_a_file_is_one_line(capsys, argv, needle):
    try:
        code = main(argv)
    except SystemExit as stop:             # argparse's own: a flag without its value
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_the_api_the_cli_and_a_config_file_assemble_the_same_request(tmp_path, capsys, no_work, out):
    """One assembly: Python values, flags' text and a YAML file's fields give the same run (the API passes no argv)."""
    by_flags = plan_of(capsys, ["run", "--method", "lwf", "--seed", "3", "--set", "lam=0.5", "--budget", "lr=0.002",
                                "--suite", "micro-zeroshot", "--limit", "20", "--kl-samples", "16", "--out", out])
    with pytest.raises(Accepted) as caught:
        forgetbench.run("lwf", seed=3, set={"lam": 0.5}, budget={"lr": 0.002}, suite=["micro-zeroshot"], limit=20,
                        kl_samples=16, out=out)
    config = tmp_path / "run.yaml"
    config.write_text("method: lwf\nseed: 3\nset: {lam: 0.5}\nbudget: {lr: 0.002}\nsuite: micro-zeroshot\n")
    with pytest.raises(Accepted) as from_file:
        forgetbench.run("lwf", config=config, limit=20, kl_samples=16, out=out)
    assert by_flags.specs == caught.value.run_plan.specs == from_file.value.run_plan.specs
    raw = {"overrides": {}, "budget": {}}          # --set/--budget as given (text or values), typed by the plan
    assert replace(by_flags.request, **raw) == replace(caught.value.run_plan.request, **raw)


def test_importing_the_cli_changes_no_environment_variable():
    code = "import os; before = dict(os.environ); import forgetbench.cli; print(dict(os.environ) == before)"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                                            "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"


def test_the_summary_lists_suites_in_the_specs_order_however_the_record_was_read():
    v = {"base": 0.5, "tuned": 0.4, "delta": -0.1, "n": 4, "metric": "acc"}
    suites = {"b": {**v, "tasks": {"y": v, "x": v}}, "a": {**v, "tasks": {"z": v}}}
    record = {"run_id": "r", "spec": {"model": "m", "suites": ["b", "a"]}, "suites": suites}
    shuffled = {**record, "suites": dict(reversed(suites.items()))}
    shuffled["suites"]["b"] = {**v, "tasks": {"x": v, "y": v}}
    assert summary(record, None) == summary(shuffled, None)
    lines = summary(record, None).splitlines()
    assert [ln.split()[0] for ln in lines if ln.split()[:1] and ln.split()[0] in ("a", "b")] == ["b", "a"]


def test_the_cache_is_under_xdg_cache_home(tmp_path, monkeypatch):
    from forgetbench.core.store import cache_dir
    monkeypatch.delenv("FORGETBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "forgetbench" and cache_dir().is_dir()
    monkeypatch.setenv("FORGETBENCH_CACHE", str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"


def test_parser_error_keeps_flags_that_are_negative_values():
    assert _is_value("-1") and _is_value("-0.5e-3") and not _is_value("--seed")


def test_model_args_are_recorded_in_the_spec_only_when_given(capsys, no_work, out):
    given = plan_of(capsys, ["run", "--method", "naive_sft", "--model-args", "revision=main,attn_implementation=eager",
                             "--out", out]).specs[0]
    plain = plan_of(capsys, ["run", "--method", "naive_sft", "--out", out]).specs[0]
    assert given.placement["model_args"] == {"attn_implementation": "eager", "revision": "main"}
    assert "model_args" not in plain.placement and given.run_id != plain.run_id
    refused(capsys, ["run", "--method", "naive_sft", "--model-args", "dtype=float16", "--out", out], "use --dtype")


# ------------------------------------------------------------------------------- --suite lm_eval:TASK, --include-path
MICRO_TASKS = "tasks/micro"


def test_a_runs_include_path_reaches_its_request_but_not_its_id(capsys, no_work, tmp_path):
    base = ["run", "--method", "naive_sft", "--out", str(tmp_path)]
    plain = plan_of(capsys, base)
    named = plan_of(capsys, [*base, "--suite", "lm_eval:fb_micro_zeroshot", "--include-path", MICRO_TASKS])
    assert str(named.request.include_path) == MICRO_TASKS and "include_path" not in named.specs[0].to_dict()
    import shutil  # the same YAMLs in another folder: the same run
    shutil.copytree(MICRO_TASKS, tmp_path / "elsewhere")
    moved = plan_of(capsys, [*base, "--suite", "lm_eval:fb_micro_zeroshot", "--include-path", tmp_path / "elsewhere"])
    assert moved.specs[0].run_id == named.specs[0].run_id != plain.specs[0].run_id
    (suite,) = named.eval_plan.suites
    assert [(t.name, t.metric, t.filter, t.hub) for t in suite.tasks] == [("fb_micro_zeroshot", "acc", "none", None)]


@pytest.mark.parametrize("argv,needles", [
    (["--suite", "lm_eval:fb_micro_zeroshoot", "--include-path", MICRO_TASKS],
     ["no task 'fb_micro_zeroshoot'", "'fb_micro_zeroshot'"]),
    (["--suite", "lm_eval:fb_micro_zeroshot@f1", "--include-path", MICRO_TASKS], ["no metric 'f1'", "acc"]),
    (["--suite", "lm_eval:", "--include-path", MICRO_TASKS], ["name lm-eval tasks after 'lm_eval:'"]),
    (["--suite", "lm_eval:fb_micro_zeroshot", "--include-path", "no/such/dir"], ["no such folder"]),
    (["--suite", "micro-zeroshot", "--include-path", MICRO_TASKS], ["no such suite is named"]),
    (["--suite", "lm_eval:arc_easy"], ["none of its tasks can run here", "needs the hub (arc_easy)"]),
])
def test_a_bad_lm_eval_suite_is_refused_before_any_work(capsys, no_work, tmp_path, argv, needles):
    refused(capsys, ["run", "--method", "naive_sft", "--out", str(tmp_path), *argv], *needles)
