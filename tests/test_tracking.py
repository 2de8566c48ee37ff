"""--report-to: the trackers named are checked before any work; TensorBoard (tensorboardX, offline) gets every
training step's loss and, at the end, the record's headline numbers."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from forgetbench.cli import main
from forgetbench.core.errors import UserError
from forgetbench.runner import tracking


def events(folder: Path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in a folder's TensorBoard event files (TFRecord: length, its CRC,
    the Event protobuf, its CRC)."""
    from tensorboardX.proto import event_pb2
    out = []
    for f in sorted(folder.glob("events.out.tfevents.*")):
        data, pos = f.read_bytes(), 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
            out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
            pos += 12 + n + 4
    return out


@pytest.mark.parametrize("text,parsed", [(None, ()), ("none", ()), ("tensorboard", ("tensorboard",)),
                                         (" tensorboard , tensorboard", ("tensorboard",))])
def test_report_to_names_trackers(text, parsed):
    assert tracking.parse(text) == parsed


def test_an_unknown_or_missing_tracker_is_refused_before_any_work(monkeypatch):
    with pytest.raises(UserError, match="choose none or any of tensorboard, wandb, mlflow"):
        tracking.parse("tensorbord")
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="--report-to wandb needs wandb: pip install wandb"):
        tracking.parse("wandb")


def test_headline_numbers_are_the_records():
    record = {"target": {"delta": 0.5}, "suites": {"b": {"delta": -0.2}, "a": {"delta": -0.1}},
              "kl": {"token_exact": {"mean": 3.0}}, "kl_target": {"token_exact": {"mean": 9.0}}}
    assert tracking.headline(record) == {"target_delta": 0.5, "a_delta": -0.1, "b_delta": -0.2,
                                         "suite_average_delta": pytest.approx(-0.15), "kl": 3.0, "kl_target": 9.0}


@pytest.mark.slow
def test_tensorboard_gets_every_steps_loss_and_the_final_numbers(tmp_path, capsys):
    code = main(["run", "--method", "naive_sft", "--budget", "epochs=0.25", "--kl-samples", "8", "--out",
                 str(tmp_path), "--report-to", "tensorboard", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    logged = events(tmp_path / "trackers" / record["run_id"])
    loss = [v for tag, _, v in logged if tag == "train/loss"]
    assert loss == pytest.approx(record["training"]["loss_curve"], abs=1e-4)     # the Trainer logs 4 decimals
    final = {tag.removeprefix("forgetbench/"): (step, v) for tag, step, v in logged if tag.startswith("forgetbench/")}
    assert {k: v for k, (_, v) in final.items()} == pytest.approx(tracking.headline(record), abs=1e-6)
    assert {step for step, _ in final.values()} == {record["training"]["steps"]}
    assert not (tmp_path / record["run_id"] / "trackers").exists()        # the run folder holds only the record


def test_what_libraries_print_on_stdout_goes_to_stderr():
    """transformers prints "[INFO] Running in WANDB offline mode" on stdout when its integrations are imported:
    under results_only it reaches stderr, so `--json` output stays JSON."""
    code = ("from forgetbench.core.console import results_only\nwith results_only():\n"
            "    import transformers.integrations.integration_utils\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "WANDB_MODE": "offline"},
                          capture_output=True, text=True, check=True)
    assert done.stdout == "" and "Running in WANDB offline mode" in done.stderr


def run_reporting(tracker: str, tmp_path: Path, **env) -> dict:
    """The record of a short micro run reporting to `tracker`, run as a user would (its own process, the
    tracker's settings in its environment); its stdout must be the record alone."""
    done = subprocess.run([sys.executable, "-m", "forgetbench.cli", "run", "--method", "naive_sft",
                           "--budget", "epochs=0.25",
                           "--kl-samples", "8", "--out", str(tmp_path / "runs"), "--report-to", tracker, "--json"],
                          env={**os.environ, "FORGETBENCH_THREADS": "1", **env}, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_wandb_offline_gets_every_steps_loss_and_the_final_numbers(tmp_path):
    """W&B's offline mode (when wandb is installed; CI does not install it): the run's history file holds the
    loss key and every headline number, and stdout is the record alone."""
    pytest.importorskip("wandb")
    record = run_reporting("wandb", tmp_path, WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true")
    (history,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    data = history.read_bytes()                 # protobuf records: keys and JSON values appear as they are
    assert data.count(b"train/loss") >= record["training"]["steps"]
    for key, value in tracking.headline(record).items():
        assert f"forgetbench/{key}".encode() in data and json.dumps(value).encode() in data, key


@pytest.mark.slow
def test_mlflow_file_store_gets_every_steps_loss_and_the_final_numbers_in_one_run(tmp_path):
    """MLflow's file store (when mlflow is installed; CI does not install it): one run named by the run id holds
    the loss of every step and every headline number."""
    pytest.importorskip("mlflow")
    record = run_reporting("mlflow", tmp_path, MLFLOW_TRACKING_URI=(tmp_path / "mlruns").as_uri(),
                           MLFLOW_ALLOW_FILE_STORE="true")
    (run,) = [m.parent for m in (tmp_path / "mlruns").glob("*/*/meta.yaml")]
    assert f"run_name: {record['run_id']}" in (run / "meta.yaml").read_text()
    loss = [float(line.split()[1]) for line in (run / "metrics" / "loss").read_text().splitlines()]
    assert loss == pytest.approx(record["training"]["loss_curve"], abs=1e-4)
    for key, value in tracking.headline(record).items():
        assert float((run / "metrics" / f"forgetbench.{key}").read_text().split()[1]) == pytest.approx(value)


class FakeHub:
    """huggingface_hub.HfApi's two calls a push makes, recorded (with the files it would upload), or failing."""
    calls: list = []
    fail = False

    def create_repo(self, **kw):
        FakeHub.calls.append(("create_repo", kw))

    def upload_folder(self, **kw):
        if FakeHub.fail:
            raise ConnectionError("the hub is not reachable")
        import fnmatch
        files = sorted(str(p.relative_to(kw["folder_path"])) for p in Path(kw["folder_path"]).rglob("*")
                       if p.is_file() and any(fnmatch.fnmatch(str(p.relative_to(kw["folder_path"])), pat)
                                              for pat in kw["allow_patterns"]))
        FakeHub.calls.append(("upload_folder", {**kw, "files": files}))


@pytest.mark.parametrize("fail", [False, True])
def test_hub_push_sends_the_run_folder_and_a_failure_costs_nothing(monkeypatch, tmp_path, capsys, fail):
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    monkeypatch.setattr(FakeHub, "calls", [])
    monkeypatch.setattr(FakeHub, "fail", fail)
    run = tmp_path / "runs" / "naive_sft-s0-abc"
    for rel in ("result.json", "items.jsonl", "lm_eval/tuned/naive_sft-s0-abc/results_x.json", "model/w.bin"):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text("{}")
    tracking.Report((), tmp_path / "runs", run.name, hub="org/forgetting").final({"kl": {}}, run)
    created = ("create_repo", {"repo_id": "org/forgetting", "repo_type": "dataset", "private": True,
                               "exist_ok": True})
    if fail:
        assert FakeHub.calls == [created]
        assert "--hub-push: " in capsys.readouterr().err and (run / "result.json").exists()
        return
    (_, upload), = FakeHub.calls[1:]
    assert FakeHub.calls[0] == created and upload["path_in_repo"] == run.name
    assert upload["files"] == ["items.jsonl", "lm_eval/tuned/naive_sft-s0-abc/results_x.json", "result.json"]


@pytest.mark.parametrize("env,repo,match", [
    ({"HF_HUB_OFFLINE": "0", "HF_TOKEN": "x"}, "no-slash", "ORG/NAME"),
    ({"HF_HUB_OFFLINE": "1", "HF_TOKEN": "x"}, "org/n", "HF_HUB_OFFLINE=0"),
    ({"HF_HUB_OFFLINE": "0", "HF_TOKEN": ""}, "org/n", "no Hugging Face token")])
def test_hub_push_is_refused_before_any_work_without_a_repo_the_hub_or_a_token(monkeypatch, tmp_path, env, repo,
                                                                                match):
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: os.environ.get("HF_TOKEN") or None)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(UserError, match=match):
        tracking.hub_repo(repo)
