"""One run over several processes: `bench run` under torchrun (DDP, gloo on CPU) against the same run in one process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from forgetbench.cli import main

ARGS = ["run", "--method", "naive_sft", "--budget", "examples=256", "--budget", "epochs=1", "--limit", "8",
        "--kl-samples", "8", "--json"]
# Same global batch (32 = 2 x 16), same data order: the losses agree to float32 rounding of the cross-process
# average (measured: 4e-8 relative); this bound is 100x that.
TOLERANCE = 1e-5


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, capsys):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    bench = shutil.which("bench", path=str(Path(sys.executable).parent))
    # torch installs torchrun and the project installs bench beside this interpreter: missing is a broken install
    assert torchrun is not None and bench is not None, "torchrun or bench is not installed beside this Python"
    env = {**os.environ, "FORGETBENCH_THREADS": "1"}
    done = subprocess.run([torchrun, "--nproc-per-node", "2", "--no-python", bench, *ARGS, "--out", tmp_path / "ddp"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1                                        # one record, printed by the first process only
    ddp = json.loads(lines[0])
    assert [p.name for p in (tmp_path / "ddp").iterdir()] == [ddp["run_id"]]

    assert main([*ARGS, "--out", str(tmp_path / "one")]) == 0
    one = json.loads(capsys.readouterr().out.splitlines()[0])
    assert ddp["run_id"] == one["run_id"]                         # the process count is how, not what
    a, b = ddp["training"], one["training"]
    assert (a["processes"], b["processes"]) == (2, 1)
    assert a["steps"] == b["steps"] and a["passes"] == b["passes"]   # every process's share counted once
    for key in ("loss_first", "loss_last_10pct"):
        assert a[key] == pytest.approx(b[key], rel=TOLERANCE)
    assert ddp["kl"]["token_exact"]["mean"] == pytest.approx(one["kl"]["token_exact"]["mean"], rel=TOLERANCE)
    assert ddp["target"]["tuned"] == one["target"]["tuned"]


def test_batch_that_does_not_split_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert main(["run", "--method", "naive_sft", "--out", str(tmp_path)]) == 2
    assert "does not split over 3 processes" in capsys.readouterr().err
