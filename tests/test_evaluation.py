"""The lm-eval path on a local task, checked against an independent log-likelihood scorer."""

import math
from pathlib import Path

import pytest
import torch
from forgetbench.core.settings import EvalSettings
from forgetbench.records import aggregate
from forgetbench.runner import evaluation
from forgetbench.runner.evaluation import evaluate
from forgetbench.task import resolve, suites, targets
from forgetbench.tasks.micro.world import build_world


@torch.no_grad()
def own_choice(model, tok, item):
    ctx = tok(item["query"])["input_ids"]
    scores = []
    for ch in item["choices"]:
        cont = tok(" " + ch, add_special_tokens=False)["input_ids"]
        lp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].double(), -1)
        scores.append(sum(float(lp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont)))
    return max(range(len(scores)), key=scores.__getitem__)


def test_zeroshot_through_lm_eval_matches_independent_scoring(micro_base):
    model, tok = micro_base.model, micro_base.tokenizer
    # a perturbed model, so that some answers are wrong and agreement is not trivial
    bad = type(model)(model.config)
    bad.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p in bad.parameters():
            p.add_(0.03 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    bad.eval()
    suite = suites.get("micro-zeroshot")
    ready, _ = resolve([(suite.tasks[0], suite.include_path)], None)
    out = evaluate(bad, tok, ready, EvalSettings())[0]["fb_micro_zeroshot"]
    items = build_world().zeroshot_items()
    assert [r["doc_id"] for r in out] == list(range(len(items)))
    mine = [own_choice(bad, tok, it) == it["gold"] for it in items]
    assert [r["correct"] for r in out] == mine
    assert 0.2 < sum(mine) / len(mine) < 1.0


def test_base_evaluations_are_cached_per_model(micro_base, monkeypatch, tmp_path):
    tgt = targets.get("micro-cipher")
    tasks, _ = resolve([(tgt.evals[0], tgt.include_path)], None)
    first = evaluate(micro_base.model, micro_base.tokenizer, tasks, EvalSettings(), micro_base.fingerprint)
    for rows in first[0].values():         # fresh items carry their prompt text for the probe; it is never cached
        for it in rows:
            it.pop("prompt", None)

    def boom(*a, **k):
        raise AssertionError("should have come from the cache")
    monkeypatch.setattr(evaluation, "run_lm_eval", boom)
    assert evaluate(micro_base.model, micro_base.tokenizer, tasks, EvalSettings(), micro_base.fingerprint) == first
    with pytest.raises(AssertionError):   # another model's fingerprint is another cache entry
        evaluate(micro_base.model, micro_base.tokenizer, tasks, EvalSettings(), "another-model")
    # another task's item limit does not touch this task's entry; this task's own limit does
    other = EvalSettings(task_limits={"some_other_task": 3}, max_new_tokens=7)   # decoding: not a likelihood task's
    assert evaluate(micro_base.model, micro_base.tokenizer, tasks, other, micro_base.fingerprint) == first
    with pytest.raises(AssertionError):
        evaluate(micro_base.model, micro_base.tokenizer, tasks, EvalSettings(task_limits={tasks[0].task.name: 3}),
                 micro_base.fingerprint)
    # a changed verifier is another entry: an outcome is its check's (a fixed check must not reuse the old one's)
    from forgetbench.toolbox import verify
    changed = tmp_path / "verify.py"
    changed.write_bytes(Path(verify.__file__).read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(verify, "__file__", str(changed))
    with pytest.raises(AssertionError):
        evaluate(micro_base.model, micro_base.tokenizer, tasks, EvalSettings(), micro_base.fingerprint)


def _newest(folder, prefix: str):
    return max(folder.glob(f"{prefix}*"))


@pytest.mark.parametrize("suite", ["micro-zeroshot", "micro-reasoning"])
def test_each_model_is_written_as_lm_eval_writes_it(micro_base, tmp_path, suite):
    import json

    from datasets import load_dataset
    from lm_eval.utils import get_results_filenames, get_sample_results_filenames

    tgt = targets.get("micro-cipher")
    ready, _ = resolve([(tgt.evals[0], tgt.include_path), *[(t, suites.get(suite).include_path)
                                                            for t in suites.get(suite).tasks]], None)
    settings = EvalSettings(limit=7)
    items, outputs = evaluate(micro_base.model, micro_base.tokenizer, ready, settings)
    files = evaluation.lm_eval_files({"tuned": outputs}, {"tuned": "my-model"}, settings)
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    folder = tmp_path / "lm_eval" / "tuned" / "my-model"
    names = [str(p) for p in folder.iterdir()]          # paths, as lm-eval lists a results repository
    assert len(get_results_filenames(names)) == 1                   # lm-eval's own tooling finds them
    assert len(get_sample_results_filenames(names)) == len(ready)
    results = json.loads(_newest(folder, "results_").read_text())
    assert results["model_name"] == "my-model" and results["config"]["limit"] == 7
    for r in ready:
        rows = items[r.name]
        mean = sum(it["score"] for it in rows) / len(rows)
        assert results["results"][r.name][f"{r.task.metric},{r.task.filter}"] == pytest.approx(mean)
        samples = load_dataset("json", data_files=str(_newest(folder, f"samples_{r.name}_")), split="train")
        assert sorted(samples["doc_id"]) == [it["doc_id"] for it in rows]
        assert all(s["gen_args_0"]["arg_0"] for s in samples["arguments"])          # every prompt kept


def test_compare_refuses_different_items():
    a = [{"doc_id": 0, "doc_hash": "x", "prompt_hash": "p", "score": 1.0}]
    b = [{"doc_id": 0, "doc_hash": "x", "prompt_hash": "q", "score": 0.0}]
    assert aggregate.compare(a, a, "t") == {"base": 1.0, "tuned": 1.0, "delta": 0.0, "n": 1, "p_mcnemar": 1.0,
                                             "flips": {"right_to_wrong": 0, "wrong_to_right": 0}}
    with pytest.raises(RuntimeError, match="not on the same items"):
        aggregate.compare(a, b, "t")


def _items(scores):
    return [{"doc_id": i, "doc_hash": f"d{i}", "prompt_hash": f"p{i}", "score": float(x)} for i, x in enumerate(scores)]


def test_compare_counts_flips_and_tests_them_exactly():
    # 9 items right -> wrong, 2 wrong -> right, 5 right in both, 4 wrong in both
    base = _items([1] * 9 + [0] * 2 + [1] * 5 + [0] * 4)
    tuned = _items([0] * 9 + [1] * 2 + [1] * 5 + [0] * 4)
    out = aggregate.compare(base, tuned, "t")
    assert out["flips"] == {"right_to_wrong": 9, "wrong_to_right": 2}
    assert out["delta"] == pytest.approx((7 - 14) / 20)
    # exact two-sided binomial tail on the 11 discordant items, computed by hand
    assert out["p_mcnemar"] == pytest.approx(2 * sum(math.comb(11, k) for k in range(3)) / 2 ** 11)
    diffs = [-1] * 9 + [1] * 2 + [0] * 9
    mean = sum(diffs) / 20
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 19)
    assert out["delta_se"] == pytest.approx(sd / math.sqrt(20))


def test_compare_real_valued_scores_get_a_paired_t_test():
    from scipy.stats import t as student_t
    base = _items([-1.5, -1.2, -1.4, -1.1, -1.3])
    tuned = _items([-1.1, -1.0, -1.2, -1.0, -0.9])
    out = aggregate.compare(base, tuned, "t")
    assert "flips" not in out
    diffs = [0.4, 0.2, 0.2, 0.1, 0.4]
    mean = sum(diffs) / 5
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 4) / math.sqrt(5)
    assert out["delta"] == pytest.approx(mean) and out["delta_se"] == pytest.approx(se)
    assert out["p_paired_t"] == pytest.approx(2 * student_t.sf(mean / se, 4))


def test_a_suites_p_tests_the_mean_of_its_task_deltas():
    """Two tasks of different sizes: the suite's delta is the mean of the task deltas, and its p is the exact
    sign-flip test of that weighted statistic, enumerated here by hand over all 2^n sign patterns."""
    import itertools

    def items(scores):
        return [{"doc_id": i, "doc_hash": "d", "prompt_hash": "p", "score": float(s)} for i, s in enumerate(scores)]
    base = {"a": [1, 1, 1, 1, 0, 1], "b": [1, 0, 0]}
    tuned = {"a": [1, 1, 1, 1, 1, 1], "b": [1, 1, 1]}
    pairs = {t: (items(base[t]), items(tuned[t])) for t in base}
    per_task = {t: aggregate.compare(*pairs[t], t) for t in base}
    out = aggregate.suite_section(per_task, pairs)
    d = [y - x for t in base for x, y in zip(base[t], tuned[t])]
    w = [1 / (2 * len(base[t])) for t in base for _ in base[t]]
    shown = sum(wi * di for wi, di in zip(w, d))
    assert out["delta"] == pytest.approx(shown) == pytest.approx((1 / 6 + 2 / 3) / 2)
    flips = [abs(sum(s * wi * di for s, wi, di in zip(signs, w, d))) >= abs(shown) - 1e-12
             for signs in itertools.product((1, -1), repeat=len(d))]
    assert out["p_sign_flip"] == pytest.approx(sum(flips) / len(flips))
    assert out["p_sign_flip"] == pytest.approx(2 / 8)      # 3 non-zero differences: all + or all - reach it
    assert out["flips"] == {"right_to_wrong": 0, "wrong_to_right": 3}
    assert "p_mcnemar" not in out                      # the pooled McNemar tested another statistic


def test_a_one_task_suite_keeps_its_tasks_exact_test():
    def items(scores):
        return [{"doc_id": i, "doc_hash": "d", "prompt_hash": "p", "score": float(s)} for i, s in enumerate(scores)]
    pair = (items([1] * 12), items([0] * 12))
    task = aggregate.compare(*pair, "a")
    out = aggregate.suite_section({"a": task}, {"a": pair})
    assert out["p_mcnemar"] == task["p_mcnemar"] == pytest.approx(2 / 2 ** 12) and "p_sign_flip" not in out


def test_a_task_forgetbench_scores_itself_is_written_in_lm_evals_shape(tmp_path):
    import json
    from types import SimpleNamespace

    task = SimpleNamespace(name="gsm8k", task=SimpleNamespace(metric="exact_match", scoring="math"))
    items = [{"doc_id": d, "doc_hash": f"{d:016x}", "prompt_hash": "0" * 16, "correct": s >= 0.5, "score": s,
              "reference": str(d), "completions": [f"answer {d}", "no"], "prompt": f"Q{d}?"}
             for d, s in ((3, 0.5), (8, 1.0), (11, 0.0))]
    settings = EvalSettings(samples_per_problem=2, temperature=1.0)
    out = evaluation.generation_output(task, items, settings)
    files = evaluation.lm_eval_files({"base": {"gsm8k": out}}, {"base": "org/base-model"}, settings)
    (results,) = [json.loads(t) for p, t in files.items() if "/results_" in p]
    assert results["results"]["gsm8k"]["exact_match,none"] == pytest.approx(0.5)
    assert results["configs"]["gsm8k"]["output_type"] == "generate_until"
    assert results["model_name_sanitized"] == "org__base-model"
    (samples,) = [t for p, t in files.items() if "/samples_gsm8k_" in p]
    rows = [json.loads(line) for line in samples.splitlines()]
    assert [(r["doc_id"], r["arguments"]["gen_args_0"]["arg_0"], r["resps"], r["target"], r["exact_match"])
            for r in rows] == [(it["doc_id"], it["prompt"], [it["completions"]], it["reference"], it["score"])
                               for it in items]
