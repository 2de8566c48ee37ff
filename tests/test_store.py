"""The cache under concurrency: processes that share it compute an entry once and never read a half file."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_together

ROOT = Path(__file__).resolve().parents[1]


def _compute_once(cache_root: str, log: str, out: str, start) -> None:
    import os
    os.environ["FORGETBENCH_CACHE"] = cache_root
    from forgetbench.core.store import JsonCache

    def compute():
        with open(log, "a") as f:       # one line per computation
            f.write("computed\n")
        time.sleep(1.0)                 # both processes are inside get_or_compute by now (the barrier)
        return {"value": [1, 2, 3]}

    start.wait()                        # both ask at the same moment: without the lock both would compute
    Path(out).write_text(json.dumps(JsonCache("race").get_or_compute("k", compute)))


def test_two_processes_compute_a_cache_entry_once(tmp_path):
    log = tmp_path / "log"
    run_together(_compute_once, [(str(tmp_path / "cache"), str(log), str(tmp_path / f"out{i}")) for i in range(2)])
    assert log.read_text() == "computed\n"
    assert [json.loads((tmp_path / f"out{i}").read_text()) for i in range(2)] == [{"value": [1, 2, 3]}] * 2


@pytest.mark.slow
def test_two_runs_racing_on_a_fresh_cache_agree(tmp_path):
    """Two `bench run`s started together on an empty cache: both finish, with identical records, and the base
    model's evaluations and samples are computed once (one entry each, no stray temporary files)."""
    env = {"FORGETBENCH_CACHE": str(tmp_path / "cache"), "FORGETBENCH_THREADS": "1", "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "forgetbench.cli", "run", "--method", "context_free", "--budget", "examples=32",
           "--budget", "epochs=1", "--limit", "8", "--max-new-tokens", "8", "--kl-samples", "8", "--json"]
    procs = [subprocess.Popen([*cmd, "--out", str(tmp_path / f"runs{i}")], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    a, b = (json.loads(out.splitlines()[-1]) for out, _ in outs)
    for key in ("run_id", "target", "suites", "kl", "kl_target", "answer_class_shift"):
        assert a[key] == b[key], key
    assert a["training"]["loss_last_10pct"] == b["training"]["loss_last_10pct"]
    cache = tmp_path / "cache"
    # context-free training data, KL samples, KL samples on the target's prompts
    assert len(list((cache / "samples").glob("*.json"))) == 3
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]


def test_a_run_records_the_commit_of_the_checkout_it_ran_from():
    """The package's files moved one folder deeper (forgetbench.core.environment): the commit is still found."""
    from forgetbench.core import environment
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    environment.project_commit.cache_clear()
    assert environment.project_commit().removesuffix("-dirty") == head
    assert environment._git_commit(root / "bench") is None          # not a checkout's top folder
