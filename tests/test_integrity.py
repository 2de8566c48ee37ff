"""Nothing on disk is trusted without its digest: every kind of cache entry and record, damaged, is recomputed or
refused by name, never read as different numbers; folders publish without races and with normal permissions."""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml
from conftest import run_together
from forgetbench.core.settings import EvalSettings
from forgetbench.core.store import JsonCache, atomic_dir, cache_dir, remove_stale, sealed_digest
from forgetbench.runner import evaluation
from forgetbench.task import _render, resolve, suites, targets
from forgetbench.toolbox.generation import Sampling, cached_sample

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "tasks" / "micro" / "base"


def flip_byte(path: Path, offset: int) -> None:
    """Damage a file in place, keeping its size (what a bad disk or a bad copy does)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def body(path: Path) -> list:
    return json.loads(path.read_bytes().partition(b"\n")[2])


def rewrite_body(path: Path, value) -> None:
    """Edit an entry's value and keep its header, as a hand edit would."""
    head = path.read_bytes().partition(b"\n")[0]
    path.write_bytes(head + b"\n" + json.dumps(value, separators=(",", ":")).encode())


# ------------------------------------------------------------------------------------------ JSON cache entries
DAMAGE = {
    "flipped byte": lambda p: flip_byte(p, p.stat().st_size - 3),
    "edited value": lambda p: rewrite_body(p, {"rows": [9, 9, 9]}),
    "garbage": lambda p: p.write_bytes(b"\x00\xffnot json at all"),
    "another key's entry": lambda p: p.write_bytes(JsonCache("kinds").path("other").read_bytes()),
    "no header (older forgetbench)": lambda p: p.write_text(json.dumps({"rows": [1, 2, 3]})),
    "empty": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_cache_entry_is_recomputed_and_named(fresh_cache, capsys, damage):
    cache = JsonCache("kinds")
    cache.put("other", {"rows": [7]})
    calls = []

    def compute():
        calls.append(1)
        return {"rows": [1, 2, 3]}
    assert cache.get_or_compute("k", compute) == {"rows": [1, 2, 3]} and len(calls) == 1
    assert cache.get_or_compute("k", compute) == {"rows": [1, 2, 3]} and len(calls) == 1     # a hit
    DAMAGE[damage](cache.path("k"))
    capsys.readouterr()
    assert cache.get_or_compute("k", compute) == {"rows": [1, 2, 3]} and len(calls) == 2     # recomputed
    err = capsys.readouterr().err
    assert f"cache entry {cache.path('k')} is not usable" in err and err.count("warning") == 1
    assert cache.get("k") == {"rows": [1, 2, 3]}                                              # and repaired


def test_generated_samples_cut_short_are_redrawn_not_used(fresh_cache, micro_base, capsys):
    """The audit's case: the sample cache cut to 3 rows gave `kl.n: 3` for a spec of 256."""
    prompts = [[micro_base.start_token_id]] * 8
    first = cached_sample(micro_base, prompts, Sampling(1.0, 6, 8), seed=5)
    (entry,) = (cache_dir() / "samples").glob("*.json")
    rewrite_body(entry, body(entry)[:3])
    again = cached_sample(micro_base, prompts, Sampling(1.0, 6, 8), seed=5)
    assert again == first and len(again) == 8
    assert f"cache entry {entry} is not usable" in capsys.readouterr().err


def test_edited_base_evaluation_outcomes_are_reevaluated(fresh_cache, micro_base, capsys):
    tgt = targets.get("micro-cipher")
    tasks, _ = resolve([(tgt.evals[0], tgt.include_path)], None)
    settings = EvalSettings(limit=6)
    def strip(out):
        return {t: [{k: v for k, v in it.items() if k != "prompt"} for it in rows] for t, rows in out.items()}
    first = strip(evaluation.evaluate(micro_base.model, micro_base.tokenizer, tasks, settings,
                                      micro_base.fingerprint)[0])
    (entry,) = [p for p in (cache_dir() / "evals").glob("*.json") if not p.stem.endswith("-lm_eval")]
    rows = body(entry)
    rows[0] |= {"score": 1.0 - rows[0]["score"], "correct": not rows[0]["correct"]}
    rewrite_body(entry, rows)
    again = strip(evaluation.evaluate(micro_base.model, micro_base.tokenizer, tasks, settings,
                                      micro_base.fingerprint)[0])
    assert again == first
    assert f"cache entry {entry} is not usable" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- cached model folders
def copy_shipped(out: Path, log: Path | None = None) -> None:
    for f in SHIPPED.iterdir():
        if f.is_file():
            shutil.copy(f, out / f.name)
    if log is not None:
        with open(log, "a") as fh:
            fh.write("built\n")


@pytest.mark.parametrize("damage", ["flipped weight byte", "seal removed", "weights removed"])
def test_a_damaged_cached_model_is_rebuilt(fresh_cache, capsys, damage):
    from forgetbench.toolbox.device import Placement
    from forgetbench.toolbox.models import load_cached

    folder = cache_dir() / "models" / "toy"
    first = load_cached(folder, copy_shipped, name="toy", placement=Placement("cpu"))
    assert sealed_digest(folder) == first.fingerprint
    clean = [p.detach().clone() for p in first.model.parameters()]     # copies: the loaded weights may map the file
    weights = folder / "model.safetensors"
    if damage == "flipped weight byte":
        flip_byte(weights, weights.stat().st_size // 2)
    elif damage == "seal removed":                   # killed between the files and the seal, or older forgetbench
        (folder / "forgetbench.sha256").unlink()
    else:
        weights.unlink()
    again = load_cached(folder, copy_shipped, name="toy", placement=Placement("cpu"))
    assert again.fingerprint == first.fingerprint == sealed_digest(folder)
    for a, b in zip(clean, again.model.parameters(), strict=True):
        assert bool((a == b).all())
    if damage == "flipped weight byte":
        assert f"the cached model {folder} does not match its seal" in capsys.readouterr().err


def _load_cached_in_process(cache: str, log: str, start) -> None:
    os.environ["FORGETBENCH_CACHE"] = cache
    from forgetbench.toolbox.device import Placement
    from forgetbench.toolbox.models import load_cached
    start.wait()
    load_cached(Path(cache) / "models" / "toy", lambda out: copy_shipped(out, Path(log)), name="toy",
                placement=Placement("cpu"))


@pytest.mark.slow
def test_two_processes_build_a_cached_model_once(tmp_path):
    log = tmp_path / "log"
    run_together(_load_cached_in_process, [(str(tmp_path / "cache"), str(log))] * 2)
    assert log.read_text() == "built\n"


# ------------------------------------------------------------------------------------------ rendered task folders
class _TaggedLoader(yaml.SafeLoader):
    """lm-eval's YAML with its `!function` tags read as plain strings."""


_TaggedLoader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def _zeroshot():
    suite = suites.get("zeroshot")
    return suite.include_path


@pytest.mark.parametrize("damage", ["edited definition", "added code", "edited code"])
def test_a_changed_rendered_task_folder_is_rendered_again(fresh_cache, capsys, damage):
    data = Path(__file__).parent / "fixtures" / "data"
    out = _render(_zeroshot(), data)
    clean = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    if damage == "edited definition":
        yaml_file = next(out.glob("*.yaml"))
        yaml_file.write_text(yaml_file.read_text().replace(str(data.resolve()), "/elsewhere"))
    elif damage == "added code":
        (out / "evil.py").write_text("import os; os.system('echo pwned')\n")
    else:
        py = next(out.glob("*.py"))
        py.write_text(py.read_text() + "\nimport os\n")
    assert _render(_zeroshot(), data) == out
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == clean
    assert f"the rendered task folder {out} differs" in capsys.readouterr().err


def test_a_data_path_with_quotes_and_backslashes_stays_one_yaml_string(fresh_cache, tmp_path):
    odd = tmp_path / 'da"ta\\ dir: {x}, #1'
    shutil.copytree(Path(__file__).parent / "fixtures" / "data", odd)
    out = _render(_zeroshot(), odd)
    arc = yaml.load((out / "fb_arc_easy.yaml").read_text(), Loader=_TaggedLoader)
    assert arc["dataset_kwargs"]["data_files"]["test"] == f"{odd.resolve()}/arc/arc_easy_test.llmfoundry.jsonl"


# ---------------------------------------------------------------------------------------- publishing folders
def _publish_many(parent: str, who: int, n: int, start) -> None:
    for i in range(n):
        start.wait()                                  # both publish folder i at the same moment
        with atomic_dir(Path(parent) / f"run{i}") as tmp:
            (tmp / "items.jsonl").write_text(f"from {who}\n" * 100)
            (tmp / "result.json").write_text(json.dumps({"who": who}))


def test_two_processes_publishing_one_folder_never_race(tmp_path):
    """Delete-then-rename raised `Directory not empty` about once in 30 and left readers a moment with no
    result.json; rename-when-absent keeps the first folder whole and drops the second."""
    n = 30
    run_together(_publish_many, [(str(tmp_path), who, n) for who in range(2)])
    for i in range(n):
        who = json.loads((tmp_path / f"run{i}" / "result.json").read_text())["who"]
        assert (tmp_path / f"run{i}" / "items.jsonl").read_text() == f"from {who}\n" * 100   # one writer's, whole
        # the other writer's result (different here) is kept beside it under a hidden name, never lost
        (other,) = tmp_path.glob(f".run{i}.*.unpublished")
        assert (other / "items.jsonl").read_text() == f"from {1 - who}\n" * 100
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert visible == sorted(f"run{i}" for i in range(n))
    assert not list(tmp_path.glob("*.tmp"))


def test_stale_temporary_folders_of_dead_processes_are_removed(tmp_path):
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    host = socket.gethostname()
    stale = tmp_path / f".run1.{host}-{dead}.abc123.tmp"
    live = tmp_path / f".run1.{host}-{os.getpid()}.def456.tmp"
    foreign = tmp_path / f".run1.otherhost-{dead}.ghi789.tmp"
    for p in (stale, live, foreign):
        (p / "sub").mkdir(parents=True)
    with atomic_dir(tmp_path / "run2") as tmp:
        (tmp / "result.json").write_text("{}")
    assert not stale.exists() and live.exists() and foreign.exists()
    assert remove_stale(tmp_path) == []


def test_published_folders_and_files_get_normal_permissions(tmp_path, fresh_cache):
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "run") as tmp:
            (tmp / "items.jsonl").write_text("x\n")
        JsonCache("x").put("k", [1])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755      # mkdtemp alone gives 0700
    assert stat.S_IMODE(JsonCache("x").path("k").stat().st_mode) == 0o644


# ---------------------------------------------------------------------------------------------------- records
def test_schema_3_records_are_read_with_evaluations_recomputed_and_kl_marked(tmp_path):
    import hashlib

    from forgetbench.core.errors import UserError
    from forgetbench.leaderboard.render import legend
    from forgetbench.leaderboard.tracks import build_tracks, load_runs

    from tests.test_leaderboard import NAIVE, write_run

    root = tmp_path / "runs"
    for seed, tuned in enumerate(NAIVE[:2]):
        write_run(root, "naive_sft", seed, tuned)
    folder = next(root.glob("naive_sft-s0-*"))

    def as_schema_3(edit=lambda rec: None):
        rec = json.loads((folder / "result.json").read_text())
        lines = [x for x in (folder / "items.jsonl").read_text().splitlines(keepends=True) if '"pair"' not in x]
        text = "".join(lines)
        rec |= {"schema_version": 3, "items_sha256": hashlib.sha256(text.encode()).hexdigest()}
        for newer in ("kl_target", "weight_change"):            # what schema 3 records never had
            rec.pop(newer, None)
        edit(rec)
        (folder / "items.jsonl").write_text(text)
        (folder / "result.json").write_text(json.dumps(rec))

    as_schema_3()
    (track,) = build_tracks(load_runs(root), "naive_sft", n_resamples=200)
    assert any("KL and the mass Δ of the other 1 are their records' own values" in line for line in legend(track))
    as_schema_3(lambda rec: rec["target"].update(delta=0.99))
    with pytest.raises(UserError, match="at target.delta"):
        load_runs(root)
    as_schema_3(lambda rec: rec.update(weight_change={"l2": 1.0, "relative": 0.1}))   # a schema-4 record disguised
    with pytest.raises(UserError, match="says schema 3 but has weight_change"):
        load_runs(root)


@pytest.mark.slow
def test_a_finished_run_whose_folder_was_damaged_is_refused_by_name_on_rerun(tmp_path, capsys):
    """`bench run` over a finished run reads it back with every check: a truncated items file or a hand-edited
    KL is an error naming the file, never "already done"."""
    from forgetbench.cli import main

    args = ["run", "--method", "naive_sft", "--budget", "examples=16", "--budget", "epochs=1", "--limit", "4",
            "--max-new-tokens", "4", "--kl-samples", "4", "--out", str(tmp_path / "runs")]
    assert main(args) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    items, record = folder / "items.jsonl", folder / "result.json"
    clean_items, clean_record = items.read_bytes(), record.read_text()
    capsys.readouterr()
    assert main(args) == 0 and "already done" in capsys.readouterr().err
    items.write_bytes(clean_items[: len(clean_items) // 2])
    assert main(args) == 2
    assert f"The per-item file {items} is corrupt" in capsys.readouterr().err
    items.write_bytes(clean_items)
    edited = json.loads(clean_record)
    edited["kl"]["token_exact"]["mean"] *= 0.5
    record.write_text(json.dumps(edited))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"The result record {record} does not match its per-item file" in err and "kl.token_exact.mean" in err
    record.write_text(clean_record)
    # lm-eval's files are checked by digest too: one missing or edited, and the folder is not a finished run
    (sample, *_) = sorted(folder.glob("lm_eval/tuned/*/samples_*.jsonl"))
    clean_sample = sample.read_bytes()
    sample.write_bytes(clean_sample.replace(b'"doc_id": ', b'"doc_id":  ', 1))
    assert main(args) == 2
    assert f"lm-eval's file {sample} is corrupt" in capsys.readouterr().err
    sample.unlink()
    assert main(args) == 2
    assert f"lm-eval's file {sample} named by {record} is missing" in capsys.readouterr().err
