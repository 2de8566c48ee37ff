"""The lm-eval path on a local task, checked against an independent log-likelihood scorer."""

import pytest
import torch

from bench import evaluation
from bench.evaluation import EvalSettings, evaluate
from bench.micro import build_world
from bench.task import resolve, suites, targets


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
    out = evaluate(bad, tok, ready, EvalSettings())["fb_micro_zeroshot"]
    items = build_world().zeroshot_items()
    assert [r["doc_id"] for r in out] == list(range(len(items)))
    mine = [own_choice(bad, tok, it) == it["gold"] for it in items]
    assert [r["correct"] for r in out] == mine
    assert 0.2 < sum(mine) / len(mine) < 1.0


def test_base_evaluations_are_cached_per_model(micro_base, monkeypatch):
    tgt = targets.get("micro-cipher")
    tasks, _ = resolve([(tgt.evals[0], tgt.include_path)], None)
    first = evaluate(micro_base.model, micro_base.tokenizer, tasks, EvalSettings(), micro_base.fingerprint)

    def boom(*a, **k):
        raise AssertionError("should have come from the cache")
    monkeypatch.setattr(evaluation, "run_lm_eval", boom)
    assert evaluate(micro_base.model, micro_base.tokenizer, tasks, EvalSettings(), micro_base.fingerprint) == first
    with pytest.raises(AssertionError):   # another model's fingerprint is another cache entry
        evaluate(micro_base.model, micro_base.tokenizer, tasks, EvalSettings(), "another-model")


def test_compare_refuses_different_items():
    a = [{"doc_id": 0, "doc_hash": "x", "prompt_hash": "p", "score": 1.0}]
    b = [{"doc_id": 0, "doc_hash": "x", "prompt_hash": "q", "score": 0.0}]
    assert evaluation.compare(a, a, "t") == {"base": 1.0, "tuned": 1.0, "delta": 0.0, "n": 1}
    with pytest.raises(RuntimeError, match="not on the same items"):
        evaluation.compare(a, b, "t")
