"""A user's mistake gets one clear paragraph and exit status 2, never a traceback; nothing partial is kept."""

import json

import pytest
from forgetbench.cli import main
from forgetbench.runner import stages as runner

SMALL = ["--budget", "epochs=0.25", "--kl-samples", "8"]


def fails(capsys, *argv, match):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("bench: error: ")
    for m in ([match] if isinstance(match, str) else match):
        assert m in err, err
    return err


@pytest.mark.parametrize("argv,match", [
    (["run", "--method", "naive_sf"], ["Unknown method 'naive_sf'", "Did you mean 'naive_sft'", "context_free"]),
    (["run", "--method", "naive_sft", "--target", "micro-ciper"], ["Unknown target", "Did you mean 'micro-cipher'"]),
    (["run", "--method", "naive_sft", "--suite", "micro-zeroshoot"], ["Unknown suite", "'micro-zeroshot'"]),
    (["run", "--method", "naive_sft", "--model", "gpt5"], "Unknown model 'gpt5'"),
    (["run", "--method", "naive_sft", "--model", "./no/such/folder"], "does not exist"),
    (["run", "--method", "context_free", "--set", "ratio"], "Malformed --set 'ratio'"),
    (["run", "--method", "context_free", "--set", "temprature=2"], ["no hyperparameter 'temprature'",
                                                                     "Did you mean 'temperature'"]),
    (["run", "--method", "context_free", "--set", "ratio=-1"], "ratio >= 0"),
    (["run", "--method", "naive_sft", "--budget", "epoch=1"], "Did you mean 'epochs'"),
    (["kl", "--base", "micro", "--model", "nothing.gguf"], "does not exist"),
    (["run", "--method", "naive_sft", "--budget", "lr=nan"], "must be a finite number"),
    (["run", "--method", "context_free", "--set", "ratio=inf"], "must be a finite number"),
    (["run", "--method", "naive_sft", "--eval-batch-size", "0"], "--eval-batch-size 0"),
])
def test_bad_input(capsys, argv, match):
    fails(capsys, *argv, match=match)


@pytest.mark.parametrize("argv", [["run", "--method", "naive_sft", "--threads", "0"],
                                  ["run", "--method", "naive_sft", "--temperature", "nan"]])
def test_bad_numbers_stop_before_any_work(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("bench: error: --") and err.count("\n") == 1


def test_folder_without_safetensors(capsys, tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    (tmp_path / "config.json").write_text("{}")
    fails(capsys, "eval", "--model", str(tmp_path), "--suite", "micro-zeroshot",
          match=["no *.safetensors", "pytorch_model.bin"])


def test_unreadable_model_folder(capsys, tmp_path):
    import shutil

    from forgetbench.tasks.micro.world import SHIPPED
    for f in SHIPPED.glob("*.json"):
        shutil.copy(f, tmp_path)
    (tmp_path / "model.safetensors").write_text("garbage")
    fails(capsys, "kl", "--base", "micro", "--model", str(tmp_path), "--samples", "4",
          match=["Could not load the model folder", "unreadable or corrupt"])


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "incomplete", "items"])
def test_corrupt_result_record_in_leaderboard(capsys, tmp_path, micro_base, damage):
    assert main(["run", "--method", "naive_sft", "--out", str(tmp_path), *SMALL]) == 0
    capsys.readouterr()
    folder = next(tmp_path.glob("naive_sft-*"))
    rec = folder / "result.json"
    if damage == "truncate":
        rec.write_text(rec.read_text()[:100])
    elif damage == "incomplete":
        data = json.loads(rec.read_text())
        del data["kl"]
        rec.write_text(json.dumps(data))
    else:
        (folder / "items.jsonl").write_text('{"model": "base"\n')
    err = fails(capsys, "leaderboard", "--runs", str(tmp_path), match=str(folder))
    assert {"truncate": "corrupt", "incomplete": "incomplete", "items": "corrupt"}[damage] in err


def test_missing_runs_folder(capsys, tmp_path):
    fails(capsys, "leaderboard", "--runs", str(tmp_path / "nope"), match="does not exist")


@pytest.mark.slow
def test_interrupted_run_leaves_nothing_and_reruns_cleanly(capsys, tmp_path, monkeypatch, micro_base):
    real = runner.write_run

    def killed(run_dir, record, items, *rest):
        from forgetbench.core import store
        with store.atomic_dir(run_dir) as tmp:
            (tmp / "items.jsonl").write_text("half")
            raise KeyboardInterrupt
    monkeypatch.setattr(runner, "write_run", killed)
    assert main(["run", "--method", "naive_sft", "--out", str(tmp_path), *SMALL]) == 130
    assert list(tmp_path.iterdir()) == []            # no partial record, no temporary folder
    monkeypatch.setattr(runner, "write_run", real)
    assert main(["run", "--method", "naive_sft", "--out", str(tmp_path), *SMALL]) == 0
    [folder] = list(tmp_path.iterdir())
    assert (folder / "result.json").exists() and (folder / "items.jsonl").exists()


def test_a_bad_thread_count_in_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("FORGETBENCH_THREADS", "two")
    fails(capsys, "run", "--method", "naive_sft", match="FORGETBENCH_THREADS='two'")


@pytest.mark.parametrize("argv,match", [
    (["eval", "--model", "micro", "--base", "micro", "--out", "OUT"], "needs --name NAME"),
    (["eval", "--model", "micro", "--name", "mine", "--out", "OUT"], "and --base MODEL"),
    (["eval", "--model", "micro", "--base", "micro", "--name", "naive_sft", "--out", "OUT"],
     "--name naive_sft is a registered method; an outside checkpoint's row needs a name of its own (e.g. "
     "naive_sft_trl)"),
    (["eval", "--model", "micro", "--base", "micro", "--name", "a/b", "--out", "OUT"], "it names the run folder"),
    (["eval", "--model", "micro", "--name", "mine"], "add --out"),
    (["eval", "--model", "micro", "--base", "micro", "--name", "mine", "--suite", "micro-zeroshot", "--out", "OUT"],
     "needs a target"),
])
def test_an_external_row_needs_its_name_base_and_target(capsys, tmp_path, argv, match):
    out = tmp_path / "runs"
    fails(capsys, *[str(out) if a == "OUT" else a for a in argv], match=match)
    assert not out.exists()


def test_an_outside_checkpoint_of_another_architecture_is_refused_before_evaluation(capsys, tmp_path, tiny_model,
                                                                                     monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("evaluated")
    monkeypatch.setattr(runner, "measure", never)
    fails(capsys, "eval", "--model", str(tiny_model), "--base", "micro", "--name", "mine", "--out",
          str(tmp_path / "runs"), match=["does not have the parameters of its base micro", "cannot have been"])
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
