"""benchmarks/compare_runs.py: two folders of runs matched by method, settings and seed, every number compared
(the per-item file's three kinds of row included), timings left out."""

import copy
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_runs.py"
ROWS = [
    {"model": "base", "task": "fb_micro_cipher", "doc_id": 0, "doc_hash": "d0", "prompt_hash": "p0", "correct": False,
     "score": 0.0},
    {"model": "tuned", "task": "fb_micro_cipher", "doc_id": 0, "doc_hash": "d0", "prompt_hash": "p0", "correct": True,
     "score": 1.0},
    {"model": "pair", "task": "kl", "doc_id": 0, "sequence": 33.1, "token_exact": 33.4, "tokens": 18, "ended": True},
    {"model": "pair", "task": "kl:target", "doc_id": 0, "sequence": 42.1, "token_exact": 42.7, "tokens": 12,
     "ended": True},
    {"model": "pair", "task": "probe:fb_micro_zeroshot", "doc_id": 0, "base": 0.0002, "tuned": 0.27},
]
RECORD = {
    "spec": {"method": "naive_sft", "params": {}, "budget": {"lr": 0.001}, "seed": 0},
    "items": "items.jsonl",
    "target": {"base": 0.0, "tuned": 1.0,
               "tasks": {"fb_micro_cipher": {"p_mcnemar": 0.5, "flips": {"wrong_to_right": 1}}}},
    "suites": {"micro-zeroshot": {"delta": -0.375}},
    "kl": {"sequence": {"mean": 33.1, "se": 1.1}}, "kl_target": {"sequence": {"mean": 42.1, "se": 1.5}},
    "answer_class_shift": {"base": 0.0002, "tuned": 0.27},
    "training": {"loss_curve": [11.5, 8.8], "steps": 378, "seconds": 9.3},
    "weight_change": {"l2": 12.3},
    "provenance": {"base_fingerprint": "4aaa", "tasks": {"fb_micro_cipher": {"items_hash": "48aa"}}},
}


def _write(root: Path, run_id: str, record: dict, rows: list[dict]) -> None:
    (root / run_id).mkdir(parents=True)
    (root / run_id / "result.json").write_text(json.dumps(record))
    (root / run_id / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _compare(a: Path, b: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True, text=True)


def test_runs_with_the_same_numbers_under_other_ids_are_identical_whatever_their_timings(tmp_path):
    slower = copy.deepcopy(RECORD)
    slower["training"]["seconds"] = 20.0
    _write(tmp_path / "a", "naive_sft-s0-aaaa", RECORD, ROWS)
    _write(tmp_path / "b", "naive_sft-s0-bbbb", slower, ROWS)
    done = _compare(tmp_path / "a", tmp_path / "b")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "identical naive_sft {} seed 0: naive_sft-s0-aaaa vs naive_sft-s0-bbbb"
    assert done.stdout.splitlines()[1:] == [         # training.seconds is not among training's 3 values
        "          35 values compared (target 4, suites 1, kl 2, kl_target 2, answer_class_shift 2, training 3, "
        "weight_change 1, items 18, provenance 2)",
        "1 pairs compared, 0 differ; only in A: 0, only in B: 0"]


def test_a_differing_kl_sequence_or_a_missing_row_is_named(tmp_path):
    rows = copy.deepcopy(ROWS[:-1])
    rows[3]["sequence"] = 42.2
    _write(tmp_path / "a", "naive_sft-s0-aaaa", RECORD, ROWS)
    _write(tmp_path / "b", "naive_sft-s0-bbbb", RECORD, rows)
    done = _compare(tmp_path / "a", tmp_path / "b")
    assert done.returncode == 1
    assert "items[pair/kl:target/0].sequence: 42.1 != 42.2" in done.stdout
    assert "items[pair/probe:fb_micro_zeroshot/0].tuned: 0.27 != '(absent)'" in done.stdout


def test_a_folder_with_two_runs_of_one_key_is_refused(tmp_path):
    _write(tmp_path / "a", "naive_sft-s0-aaaa", RECORD, ROWS)
    _write(tmp_path / "a", "naive_sft-s0-cccc", RECORD, ROWS)
    _write(tmp_path / "b", "naive_sft-s0-bbbb", RECORD, ROWS)
    done = _compare(tmp_path / "a", tmp_path / "b")
    assert done.returncode == 2 and "naive_sft-s0-aaaa and naive_sft-s0-cccc" in done.stderr
