"""The CLI on real-data targets and presets: a tiny local model end to end, SmolLM2 when present, and the
paper presets, which resolve and fail only for missing network access."""

import json
import subprocess
import sys

import pytest
from conftest import FIXTURE_DATA, SHARED, needs_shared_data, needs_smollm2


def bench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "forgetbench.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("preset,needle", [
    ("paper-olmo", "needs the hub"),
    ("paper-r1", "needs the hub"),
])
def test_paper_presets_fail_offline_with_a_clear_message(preset, needle, tmp_path):
    r = bench("run", "--preset", preset, "--method", "naive_sft", "--out", str(tmp_path))
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_paper_olmo_with_local_suites_stops_at_the_hub_only_training_data(data_dir, tmp_path):
    r = bench("run", "--preset", "paper-olmo", "--method", "naive_sft", "--data-dir", str(data_dir),
              "--out", str(tmp_path))
    assert r.returncode == 2 and "MetaMathQA" in r.stderr and "--train-file" in r.stderr, r.stderr


def test_paper_r1_with_local_data_stops_at_the_hub_only_training_data(data_dir, tmp_path):
    r = bench("run", "--preset", "paper-r1", "--method", "naive_sft", "--data-dir", str(data_dir),
              "--out", str(tmp_path))
    assert r.returncode == 2 and "MedReason" in r.stderr, r.stderr


def test_paper_presets_name_the_papers_models():
    from forgetbench.task import presets
    from forgetbench.toolbox.model_sources import sources
    assert sources.get(presets.get("paper-olmo").model).hub == "allenai/OLMo-1B-hf"
    assert sources.get(presets.get("paper-r1").model).hub == "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
    assert (presets.get("paper-olmo").target, presets.get("paper-r1").target) == ("metamathqa", "medreason")


def test_smollm2_preset_without_data_dir_says_what_to_pass_and_how_to_get_it(tmp_path):
    r = bench("run", "--preset", "smollm2-cpu", "--method", "naive_sft", "--out", str(tmp_path))
    assert r.returncode == 2 and "--data-dir" in r.stderr and "bench data fetch --to DIR" in r.stderr, r.stderr


@pytest.mark.parametrize("args,needle", [
    (["--eval-batch-size", "big"], "--eval-batch-size big"),
    (["--dtype", "float8"], "--dtype float8"),
    (["--data-dir", "/no/such/folder"], "`bench data fetch --to /no/such/folder` builds one"),
    (["--target", "gsm8k", "--data-dir", str(FIXTURE_DATA), "--train-file", "/no/such.jsonl"], "--train-file"),
    (["--temperature", "0", "--samples-per-problem", "3"], "temperature above 0"),
])
def test_bad_real_settings_exit_2(args, needle, tmp_path):
    r = bench("run", "--method", "naive_sft", *args, "--out", str(tmp_path))
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def tiny_run(tiny_model, data_dir, out, *extra):
    r = bench("run", "--model", str(tiny_model), "--target", "gsm8k", "--suite", "zeroshot", "--suite", "reasoning",
              "--data-dir", str(data_dir), "--limit", "2", "--budget", "epochs=1", "--budget", "batch_size=2",
              "--kl-samples", "4", "--kl-max-new-tokens", "6", "--max-new-tokens", "6", "--out", str(out), "--json",
              *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_tiny_model_end_to_end_on_the_real_target_and_suites(tiny_model, data_dir, tmp_path):
    rec = tiny_run(tiny_model, data_dir, tmp_path, "--method", "naive_sft")
    assert rec["target"]["task"] == "gsm8k" and set(rec["target"]["tasks"]) == {"gsm8k", "gsm8k_loglik"}
    assert rec["target"]["tasks"]["gsm8k_loglik"]["delta"] > 0          # SFT on GSM8K raises its likelihood
    zs = rec["suites"]["zeroshot"]
    assert zs["average_over"] == sorted(zs["tasks"]) and len(zs["tasks"]) == 8 and zs["missing"] == {}
    assert zs["base"] == pytest.approx(sum(t["base"] for t in zs["tasks"].values()) / 8)
    rs = rec["suites"]["reasoning"]                                     # gsm8k is the target: not preserved
    assert rs["excluded_as_target"] == ["gsm8k"] and "gsm8k" not in rs["tasks"] and len(rs["tasks"]) == 4
    assert rec["spec"]["eval"]["limit"] == 2 and rec["kl"]["n"] == 4
    assert rec["training"]["target_pairs"] == 5 and rec["provenance"]["start_token"]["why"].startswith("bos")
    items = [json.loads(x) for x in (tmp_path / rec["run_id"] / "items.jsonl").read_text().splitlines()]
    gen = [i for i in items if i["task"] == "math500"]
    assert len(gen) == 4 and all("completions" in i for i in gen)          # 2 items x (base, tuned)
    base_ids = [i["doc_id"] for i in items if i["task"] == "fb_arc_easy" and i["model"] == "base"]
    assert base_ids == [i["doc_id"] for i in items if i["task"] == "fb_arc_easy" and i["model"] == "tuned"]


@pytest.mark.slow
def test_examples_budget_is_a_fixed_subset_and_changes_the_run(tiny_model, data_dir, tmp_path):
    rec = tiny_run(tiny_model, data_dir, tmp_path, "--method", "naive_sft", "--budget", "examples=3",
                   "--suite", "medqa")
    assert rec["training"]["target_pairs"] == 3 and rec["training"]["mixture"]["target"]["examples"] == 3


@pytest.mark.slow
def test_replay_on_a_real_model_uses_the_local_general_text_corpus(tiny_model, data_dir, tmp_path):
    rec = tiny_run(tiny_model, data_dir, tmp_path, "--method", "pretrain_replay")
    assert rec["training"]["replay_corpus"]["file"] == "corpora/wikitext2/valid.txt"
    assert rec["training"]["mixture"]["replay"]["examples"] == 5


@pytest.mark.slow
def test_metamathqa_offline_trains_from_a_local_file(tiny_model, data_dir, tmp_path):
    f = tmp_path / "mm.jsonl"
    f.write_text(json.dumps({"query": "What is 2+3?", "response": "2+3=5. The answer is: 5"}) + "\n")
    r = bench("run", "--model", str(tiny_model), "--target", "metamathqa", "--suite", "medqa", "--method",
              "naive_sft", "--train-file", str(f), "--data-dir", str(data_dir), "--limit", "2", "--kl-samples", "2",
              "--kl-max-new-tokens", "4", "--max-new-tokens", "4", "--budget", "epochs=1", "--out", str(tmp_path),
              "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["training"]["target_pairs"] == 1


@pytest.mark.slow
@needs_smollm2
@needs_shared_data
def test_smollm2_preset_end_to_end_small(tmp_path):
    """The smollm2-cpu preset's own path (GGUF, chat template, every suite) with everything shrunk."""
    r = bench("run", "--preset", "smollm2-cpu", "--method", "context_free", "--data-dir", str(SHARED / "data"),
              "--limit", "1", "--budget", "examples=4", "--set", "max_new_tokens=8", "--kl-samples", "4",
              "--kl-max-new-tokens", "8", "--max-new-tokens", "8", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["spec"]["model"] == "smollm2-135m" and rec["provenance"]["start_token"]["id"] == 0
    assert rec["spec"]["placement"]["bos"] is False                     # its GGUF's add_bos_token = false
    assert set(rec["suites"]) == {"zeroshot", "lambada", "reasoning"}
    assert set(rec["suites"]["zeroshot"]["missing"]) == {"fb_hellaswag", "fb_sciq"}
    assert rec["suites"]["lambada"]["n"] == 1 and rec["suites"]["zeroshot"]["n"] == 6
    assert rec["training"]["mixture"]["context_free"]["examples"] == 4


@pytest.mark.slow
@needs_shared_data
def test_reverse_words_target_runs_end_to_end_and_scores_by_exact_match(tiny_model, tmp_path):
    r = bench("run", "--model", str(tiny_model), "--target", "reverse_words", "--suite", "lambada", "--method",
              "naive_sft", "--data-dir", str(SHARED / "data"), "--limit", "3", "--budget", "examples=4",
              "--budget", "batch_size=2", "--kl-samples", "2", "--kl-max-new-tokens", "4", "--max-new-tokens", "4",
              "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["target"]["task"] == "reverse_words" and rec["target"]["metric"] == "exact_match"
    assert rec["target"]["n"] == 3 and rec["training"]["target_pairs"] == 4
    items = [json.loads(x) for x in (tmp_path / rec["run_id"] / "items.jsonl").read_text().splitlines()]
    rev = [i for i in items if i["task"] == "reverse_words"]
    assert len(rev) == 6 and all(i["correct"] == (" ".join(i["completions"][0].split()) == i["reference"])
                                 for i in rev)
