"""Every value is checked before any work: a bad seed, budget, output folder, training file or model path is
refused (exit status 2, one paragraph naming it) before a model loads, and no string given to any knob gets
past the checks as a non-finite number or stops them with another exception."""

import json
import os
from dataclasses import asdict, fields

import pytest
from conftest import FIXTURE_DATA, Accepted
from forgetbench.cli import main
from forgetbench.core.budget import Budget
from forgetbench.core.settings import FLAGS
from forgetbench.method import methods
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def outcome(capsys, argv) -> tuple[str, str]:
    """("accepted", "") when the run would start; ("refused", stderr) for exit status 2 (a UserError, or
    argparse's refusal of a flag's value); any other exception propagates."""
    try:
        code = main(argv)
    except Accepted as a:
        for spec in a.run_plan.specs:                       # what is recorded is finite
            json.dumps(asdict(spec), allow_nan=False)
        for variant in a.run_plan.variants:                 # and so is what the method computed from it
            json.dumps(vars(variant), allow_nan=False, default=str)
        capsys.readouterr()
        return "accepted", ""
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, err
    return "refused", err


def refused(capsys, argv, *needles) -> str:
    result, err = outcome(capsys, argv)
    assert result == "refused", argv
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error: " in last and last.split("error: ", 1)[1].strip(), err
    for needle in needles:
        assert needle in err, err
    return err


def accepted(capsys, argv) -> None:
    result, err = outcome(capsys, argv)
    assert result == "accepted", err


# ------------------------------------------------------------------------------------------------ seeds
@pytest.mark.parametrize("argv,needle", [
    (["run", "--method", "naive_sft", "--seed", "4294967296"], "--seed must be at most 4294967295, got 4294967296"),
    (["run", "--method", "naive_sft", "--seed", "-1"], "--seed must be at least 0, got -1"),
    (["kl", "--base", "micro", "--model", "micro", "--seed", "4294967296"], "got 4294967296"),
    (["sweep", "--methods", "naive_sft", "--grid-seed", "4294967296", "--dry-run"], "got 4294967296"),
    (["sweep", "--methods", "naive_sft", "--seeds", "0,4294967296", "--dry-run"], "got '0,4294967296'"),
])
def test_seeds_beyond_numpys_range_are_refused(capsys, no_work, tmp_path, argv, needle):
    refused(capsys, argv + (["--out", str(tmp_path)] if argv[0] != "kl" else []), needle)


def test_the_largest_seed_is_accepted(capsys, no_work, out):
    accepted(capsys, ["run", "--method", "naive_sft", "--seed", "4294967295", "--out", out])


# ------------------------------------------------------------------------------------------------ budget
@pytest.mark.parametrize("value,needles", [
    ("scheduler=bogus", ["scheduler=bogus", "linear"]),
    ("scheduler=cosin", ["scheduler=cosin", "Did you mean 'cosine'"]),
    ("scheduler=reduce_lr_on_plateau", ["scheduler=reduce_lr_on_plateau"]),
    ("warmup_ratio=2", ["warmup_ratio=2"]),
    ("warmup_ratio=1", ["warmup_ratio=1"]),
    ("warmup_ratio=-0.1", ["warmup_ratio=-0.1"]),
])
def test_bad_budget_values_are_refused(capsys, no_work, out, value, needles):
    refused(capsys, ["run", "--method", "naive_sft", "--budget", value, "--out", out], *needles)


def test_accepted_schedulers_run_in_the_trainer():
    """core.budget.SCHEDULERS is written out (importing transformers takes seconds): each is transformers' and
    builds with the arguments forgetbench.toolbox.training gives the Trainer."""
    import tempfile

    import torch
    from forgetbench.core.budget import SCHEDULERS
    from transformers import SchedulerType, TrainingArguments, get_scheduler
    assert set(SCHEDULERS) <= {s.value for s in SchedulerType}
    for name in SCHEDULERS:
        with tempfile.TemporaryDirectory() as folder:
            args = TrainingArguments(output_dir=folder, lr_scheduler_type=name, warmup_steps=0.5, use_cpu=True,
                                     report_to=[], save_strategy="no", logging_strategy="no")
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=args.get_warmup_steps(10),
                      num_training_steps=10, scheduler_specific_kwargs=args.lr_scheduler_kwargs)


# ------------------------------------------------------------------------------------------------ --out
@pytest.mark.parametrize("kind", ["file", "under a file", "proc"])
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_a_model_loads(capsys, no_work, tmp_path, kind,
                                                                                 command):
    (tmp_path / "results").write_text("not a folder")
    where = {"file": tmp_path / "results", "under a file": tmp_path / "results" / "runs", "proc": "/proc/x/runs"}
    argv = ["run", "--method", "naive_sft"] if command == "run" else ["sweep", "--methods", "naive_sft"]
    refused(capsys, [*argv, "--out", str(where[kind])], f"--out {where[kind]}")
    assert (tmp_path / "results").read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(capsys, no_work, tmp_path):
    tmp_path.chmod(0o555)
    try:
        refused(capsys, ["run", "--method", "naive_sft", "--out", str(tmp_path)], "cannot write")
    finally:
        tmp_path.chmod(0o755)


def test_the_probe_of_a_new_output_folder_leaves_nothing_behind(capsys, no_work, tmp_path):
    accepted(capsys, ["run", "--method", "naive_sft", "--out", str(tmp_path / "a" / "b")])
    accepted(capsys, ["run", "--method", "naive_sft", "--out", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []          # neither the probe file nor the folders made for it


# ------------------------------------------------------------------------------------------------ --train-file
def test_a_target_that_reads_no_training_file_refuses_one(capsys, no_work, out, tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text('{"question": "q", "answer": "a"}\n')
    refused(capsys, ["run", "--method", "naive_sft", "--train-file", str(f), "--out", out],
            "micro-cipher does not read", str(f))


GOOD = '{"question": "q", "answer": "a"}'


@pytest.mark.parametrize("content,needles", [
    (f"{GOOD}\n\n5\n".encode(), ["line 3", "a number"]),
    (f"{GOOD}\nnull\n".encode(), ["line 2", "null"]),
    (f"{GOOD}\n[1, 2]\n".encode(), ["line 2", "a list"]),
    (f"[1, 2]\n{GOOD}\n".encode(), ["line 1", "a list"]),
    (f'{GOOD}\n\n{{"question": "q",\n'.encode(), ["line 3", "not valid JSON"]),
    (f'{GOOD}\n{{"question": "\xff"}}\n'.encode("latin-1"), ["line 2", "not UTF-8"]),
    (f'{GOOD}\n{{"question": "q", "answer": 3}}\n'.encode(), ["line 2", "'answer' is a number"]),
    (f'{GOOD}\n{{"question": ["q"], "answer": "a"}}\n'.encode(), ["line 2", "'question' is a list"]),
    (f'{GOOD}\n{{"question": "q"}}\n'.encode(), ["line 2", "lacks 'answer'"]),
    (f'{GOOD}\n{{"question": "q", "answer": " "}}\n'.encode(), ["line 2", "'answer' is empty"]),
    (f'[\n  {GOOD},\n\n  {{"question": 1, "answer": "a"}}\n]\n'.encode(), ["line 4", "'question' is a number"]),
    (f'[\n  {GOOD},\n  {{"question": "q" "answer": "a"}}\n]\n'.encode(), ["line 3", "not valid JSON"]),
    (b"", ["no records"]),
    (b"\n \n", ["no records"]),
    (b"[]", ["no records"]),
])
def test_a_malformed_training_file_names_its_line(capsys, no_work, out, tmp_path, content, needles):
    f = tmp_path / "train.jsonl"
    f.write_bytes(content)
    refused(capsys, ["run", "--method", "naive_sft", "--target", "gsm8k", "--suite", "micro-zeroshot",
                     "--data-dir", str(FIXTURE_DATA), "--train-file", str(f), "--out", out],
            f"--train-file {f}", *needles)


@pytest.mark.parametrize("content", [f"\ufeff{GOOD}\n\n{GOOD}\r\n", f" [{GOOD},\n {GOOD}]",
                                     '{"question": "a\u2028b", "answer": "c"}'])
def test_well_formed_training_files_are_read(content, tmp_path):
    from forgetbench.toolbox.train_files import read_train_file
    f = tmp_path / "train.jsonl"
    f.write_text(content, encoding="utf-8")
    pairs = read_train_file(f, ("question", "answer"))
    assert pairs and all(set(p) == {"prompt", "response"} for p in pairs)


WANT = [{"prompt": "What is 2+2?", "response": "4"}, {"prompt": "Say hi, twice", "response": "hi hi"}]
TRL = [
    ('{"prompt": "What is 2+2?", "completion": "4"}\n{"prompt": "Say hi, twice", "completion": "hi hi"}\n'),
    ('{"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}\n'
     '{"messages": [{"role": "user", "content": "Say hi, twice"}, {"role": "assistant", "content": "hi hi"}]}\n'),
    ('{"prompt": [{"role": "user", "content": "What is 2+2?"}], '
     '"completion": [{"role": "assistant", "content": "4"}]}\n'
     '{"prompt": [{"role": "user", "content": "Say hi, twice"}], '
     '"completion": [{"role": "assistant", "content": "hi hi"}]}\n'),
]


@pytest.mark.parametrize("content", TRL)
def test_trls_dataset_formats_are_read_as_the_targets_pairs(content, tmp_path):
    from forgetbench.toolbox.train_files import read_train_file
    f = tmp_path / "train.jsonl"
    f.write_text(content)
    assert read_train_file(f, ("question", "answer")) == WANT


def test_csv_tsv_and_parquet_files_are_read_through_datasets(tmp_path):
    import pandas as pd
    from forgetbench.toolbox.train_files import read_train_file
    frame = pd.DataFrame({"question": [w["prompt"] for w in WANT], "answer": [w["response"] for w in WANT]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    frame.rename(columns={"question": "prompt", "answer": "completion"}).to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.tsv", "t.parquet"):
        assert read_train_file(tmp_path / name, ("question", "answer")) == WANT, name


@pytest.mark.parametrize("content,needles", [
    ('{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, '
     '{"role": "assistant", "content": "a"}]}\n', ["line 1", "['system', 'user', 'assistant']", "single-turn"]),
    ('{"messages": [{"role": "user", "content": "q"}]}\n', ["line 1", "['user']"]),
    ('{"messages": "q"}\n', ["line 1", "list of {role, content}"]),
    ('{"prompt": "q", "completion": 3}\n', ["line 1", "'answer' is a number"]),
])
def test_a_malformed_trl_record_names_its_line(content, needles, tmp_path):
    from forgetbench.core.errors import UserError
    from forgetbench.toolbox.train_files import read_train_file
    f = tmp_path / "train.jsonl"
    f.write_text(content)
    with pytest.raises(UserError) as e:
        read_train_file(f, ("question", "answer"))
    assert all(n in str(e.value) for n in needles), str(e.value)


def test_a_malformed_table_names_its_row_or_the_file(tmp_path):
    from forgetbench.core.errors import UserError
    from forgetbench.toolbox.train_files import read_train_file
    (tmp_path / "t.csv").write_text("question,answer\nq,a\nq2,\n")
    with pytest.raises(UserError, match="row 2: 'answer' is"):
        read_train_file(tmp_path / "t.csv", ("question", "answer"))
    (tmp_path / "t.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(UserError, match="not a readable PARQUET file"):
        read_train_file(tmp_path / "t.parquet", ("question", "answer"))


# ------------------------------------------------------------------------------------------------ --model
@pytest.mark.parametrize("command", [["run", "--method", "naive_sft"], ["eval", "--suite", "micro-zeroshot"],
                                     ["kl", "--base", "micro"]])
def test_a_file_that_is_not_a_model_is_refused(capsys, no_work, out, tmp_path, command):
    f = tmp_path / "passwd"
    f.write_text("root:x:0:0\n")
    argv = [*command, "--model", str(f)] + (["--out", out] if command[0] == "run" else [])
    refused(capsys, argv, f"{f} is a file, not a model", ".gguf")


def test_a_folder_without_a_config_is_not_a_model(capsys, no_work, out, tmp_path):
    refused(capsys, ["run", "--method", "naive_sft", "--model", str(tmp_path), "--out", out],
            str(tmp_path), "no config.json")


# ------------------------------------------------------------------------------------------------ any string
TRICKY = ["nan", "inf", "-inf", "NaN", "1e400", "-1e400", "-1", "0", "1", "", " ", "1.5", "-0.0", "2**32",
          "4294967295", "4294967296", "true", "auto", "\x00", "9" * 400, "9" * 5000, "0x10", "1_000", "١٢",
          "linear", "forward", "0.5,nan", "1,2"]
VALUES = st.one_of(st.sampled_from(TRICKY), st.text(), st.integers().map(str), st.floats().map(str))
# capsys is function-scoped, and is emptied after every example (outcome reads it)
KNOBS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SET_KNOBS = [(name, f.name) for name, cls in methods.items() for f in fields(cls)]


def any_value_is_accepted_or_refused_cleanly(capsys, argv):
    result, err = outcome(capsys, argv)
    if result == "refused":
        assert "Traceback" not in err and err.strip().splitlines()[-1].split("error: ", 1)[1].strip(), err


@KNOBS
@given(st.sampled_from([f.flag for f in FLAGS]), VALUES)
def test_any_string_for_a_settings_flag(capsys, no_work, out, flag, value):
    any_value_is_accepted_or_refused_cleanly(capsys, ["run", "--method", "naive_sft", f"{flag}={value}", "--out", out])


@KNOBS
@given(VALUES)
def test_any_string_for_the_seed(capsys, no_work, out, value):
    any_value_is_accepted_or_refused_cleanly(capsys, ["run", "--method", "naive_sft", f"--seed={value}", "--out", out])


@KNOBS
@given(st.sampled_from([f.name for f in fields(Budget)]), VALUES)
def test_any_string_for_a_budget_field(capsys, no_work, out, key, value):
    any_value_is_accepted_or_refused_cleanly(capsys, ["run", "--method", "naive_sft", "--budget", f"{key}={value}",
                                                      "--out", out])


@KNOBS
@given(st.sampled_from(SET_KNOBS), VALUES)
def test_any_string_for_a_method_hyperparameter(capsys, no_work, out, knob, value):
    method, key = knob
    any_value_is_accepted_or_refused_cleanly(capsys, ["run", "--method", method, "--set", f"{key}={value}",
                                                      "--out", out])
