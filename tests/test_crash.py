"""Crash injection (issue 14): a `bench run` killed with SIGKILL at any stage leaves nothing that is read as a
result, and nothing that a later run uses wrongly.

For a kill while pretraining the base model, sampling from it, writing a cache entry, training, evaluating,
estimating KL and writing the record, this test checks that:
- no run folder appears under --out (at most the killed process's temporary dot-folder), so the leaderboard
  finds no record;
- every cache entry and cached model folder present verifies: what was being written is absent, never partial;
- the next run copes with whatever the kills left (one cache and one runs folder serve the whole sequence) and
  warns about no damaged entry;
- a final run on that cache and folder exits normally, leaves no temporary file or folder of the dead processes,
  and writes the record (less its timings) and the per-item file of a run that never saw a crash.

Each run is a subprocess (SIGKILL skips every cleanup, as a real kill does) that patches one function to kill
itself when the run reaches its stage; see DRIVER.
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A run that takes seconds: 16 target examples plus 16 context-free samples, one epoch, 4 items per task.
ARGS = ["run", "--model", "micro-scratch", "--method", "context_free", "--budget", "examples=16", "--budget",
        "epochs=1", "--limit", "4", "--max-new-tokens", "4", "--kl-samples", "4", "--json"]

# (stage, what the killed process must have left behind, relative to the site; None: nothing to show).
# The order is a run's: each crash finds the debris (and the finished cache entries) of the ones before it.
STAGES = [
    ("pretraining", "cache/micro/.v1-seed0.*.tmp"),     # a half-built model folder
    ("sampling", None),                                 # the samples computed, not cached
    ("cache-write", "cache/samples/.*.tmp"),            # the samples' temporary file, not yet renamed into place
    ("training", "tmp/forgetbench-train.*.tmp"),        # the trainer's scratch folder
    ("evaluation", "cache/evals/.*.tmp"),               # one base-model entry published, the next one half-way
    ("kl", None),
    ("record-write", "runs/.context_free-*.tmp/items.jsonl"),   # a run folder all but its record
]

# Runs `bench` (argv[2:]) in this process after arranging for it to SIGKILL itself at stage argv[1] ("none":
# run to the end). Every run, killed or not, pretrains micro-scratch by copying the shipped micro base model:
# real pretraining takes ~30 s, and the build is what may be killed here, not its arithmetic.
DRIVER = r"""
import os, shutil, signal, sys
from pathlib import Path

from forgetbench.core import threads

threads.configure()                     # as the CLI does, before anything imports torch

stage, argv = sys.argv[1], sys.argv[2:]
if stage not in ("none", "pretraining", "sampling", "cache-write", "training", "evaluation", "kl", "record-write"):
    raise SystemExit(f"crash test: unknown stage {stage!r}")


def die():
    print(f"crash test: SIGKILL at {stage}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


from forgetbench.tasks.micro import world


def pretrain(_world, out):
    for f in sorted(p for p in world.SHIPPED.iterdir() if p.is_file()):
        shutil.copy(f, Path(out) / f.name)
        if stage == "pretraining":
            die()                       # one file copied


world.pretrain = pretrain               # scratch_model's builder looks it up when it runs

if stage == "sampling":
    from forgetbench.toolbox.generation import HFBackend

    generate = HFBackend.generate

    def generate_then_die(self, *args, **kwargs):
        generate(self, *args, **kwargs)
        die()

    HFBackend.generate = generate_then_die
elif stage == "training":
    from forgetbench.toolbox.training import HookTrainer

    HookTrainer.compute_loss = lambda *args, **kwargs: die()     # the first step, inside Trainer.train
elif stage == "kl":
    import forgetbench.runner.kl

    forgetbench.runner.kl.score_pair = lambda *args, **kwargs: die()          # estimate looks it up when it runs
elif stage in ("cache-write", "evaluation", "record-write"):
    # core.store.atomic_write_bytes publishes its finished temporary file with os.replace: killed just before
    replace, evals = os.replace, []

    def doomed(dst):
        if stage == "cache-write":
            return dst.parent.name == "samples"
        if stage == "record-write":
            return dst.name == "result.json"
        if dst.parent.name == "evals":
            evals.append(dst)
            return len(evals) == 2      # the base model's second entry: the first one is published
        return False

    def replace_unless_doomed(src, dst, *args, **kwargs):
        if doomed(Path(dst)):
            die()
        return replace(src, dst, *args, **kwargs)

    os.replace = replace_unless_doomed

from forgetbench.cli import main

sys.exit(main(argv))
"""


def bench(stage: str, site: Path) -> subprocess.CompletedProcess:
    """`bench run` on the site's cache, runs folder and temporary folder, killed at `stage` ("none": not)."""
    for sub in ("cache", "runs", "tmp", "home"):
        (site / sub).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FORGETBENCH_CACHE": str(site / "cache"), "TMPDIR": str(site / "tmp"),
           "FORGETBENCH_THREADS": "1", "HF_HUB_OFFLINE": "1", "HOME": str(site / "home")}
    return subprocess.run([sys.executable, "-c", DRIVER, stage, *ARGS, "--out", str(site / "runs")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def assert_no_warning(stage: str, proc: subprocess.CompletedProcess) -> None:
    """Atomic writes leave nothing damaged, so no run ever finds (and warns about) a damaged entry."""
    warnings = [line for line in proc.stderr.splitlines() if "forgetbench: warning" in line]
    assert not warnings, f"{stage}: the run found damaged entries: {warnings}"


def assert_nothing_published(stage: str, site: Path) -> None:
    from forgetbench.core.errors import UserError
    from forgetbench.leaderboard.tracks import load_runs

    runs = site / "runs"
    folders = [p.name for p in runs.iterdir() if not p.name.startswith(".")]
    assert folders == [], f"{stage}: a killed run published {folders}"
    with pytest.raises(UserError, match="No result records"):
        load_runs(runs)


def assert_cache_verifies(stage: str, cache: Path) -> None:
    """Every cache entry present checks out against its header, and every cached model folder against its seal
    (FORGETBENCH_CACHE is this cache: JsonCache reads it)."""
    from forgetbench.core.store import JsonCache, hash_files, sealed_digest
    from forgetbench.toolbox.models import model_files

    for entry in cache.glob("*/*.json"):       # samples/<key>.json, evals/<key>.json (not .tmp, not .lock)
        assert JsonCache(entry.parent.name).get(entry.stem) is not None, f"{stage}: {entry} does not verify"
    for folder in (cache / "micro").glob("[!.]*"):    # published model folders, not temporary ones
        if folder.is_dir():
            assert sealed_digest(folder) == hash_files(model_files(folder), folder), \
                f"{stage}: the cached model {folder} does not match its seal"


def finished(stage: str, site: Path) -> tuple[dict, Path]:
    """A run to the end: its record (printed and written, the same) and its folder, checked as a reader does."""
    from forgetbench.records.schema import load_run_folder

    proc = bench("none", site)
    assert proc.returncode == 0, f"{stage}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert_no_warning(stage, proc)
    record = json.loads(proc.stdout)
    folder = site / "runs" / record["run_id"]
    assert load_run_folder(folder)[0] == record, f"{stage}: the written record is not the printed one"
    return record, folder


def without_timings(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in ("wall_seconds", "stage_seconds")}
    out["training"] = {k: v for k, v in record["training"].items() if k != "seconds"}
    # lm-eval's file names and its results JSON carry when they were written (its samples do not)
    out["lm_eval_outputs"] = {re.sub(r"_\d{4}-\d\d-\d\dT[\d.-]+(?=\.jsonl?$)", "", p): d if "/samples_" in p else None
                              for p, d in record["lm_eval_outputs"].items()}
    return out


@pytest.mark.slow
def test_a_run_killed_at_any_stage_leaves_nothing_partial(tmp_path, monkeypatch):
    site = tmp_path / "crashed"
    monkeypatch.setenv("FORGETBENCH_CACHE", str(site / "cache"))
    for stage, debris in STAGES:
        proc = bench(stage, site)
        assert proc.returncode == -signal.SIGKILL, f"{stage}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
        assert f"crash test: SIGKILL at {stage}" in proc.stderr, f"{stage}: killed somewhere else"
        assert_no_warning(stage, proc)
        # the kill left what a kill at this point leaves (else this test would not test it)
        assert debris is None or list(site.glob(debris)), f"{stage}: no {debris} left by the killed run"
        assert_nothing_published(stage, site)
        assert_cache_verifies(stage, site / "cache")

    record, folder = finished("rerun after the crashes", site)
    leftovers = [str(p) for sub in ("runs", "cache", "tmp") for p in (site / sub).rglob("*.tmp")]
    assert leftovers == [], f"rerun after the crashes: temporary files of dead processes remain: {leftovers}"

    reference, ref_folder = finished("reference run", tmp_path / "reference")
    mine, theirs = without_timings(record), without_timings(reference)
    for key in sorted(mine.keys() | theirs.keys()):
        assert mine.get(key) == theirs.get(key), f"rerun after the crashes: {key} differs from the reference run"
    assert (folder / "items.jsonl").read_bytes() == (ref_folder / "items.jsonl").read_bytes(), \
        "rerun after the crashes: items.jsonl differs from the reference run's"
