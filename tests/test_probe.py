"""The answer-class probe: token classes, next-token mass against a by-hand softmax, zero shift for equal models."""

import pytest
import torch
from forgetbench.runner.probe import answer_class_shift, class_token_ids, next_token_mass
from forgetbench.tasks.real.answer_classes import is_number
from hypothesis import given
from hypothesis import strategies as st


def test_token_classes():
    assert all(is_number(t) for t in ["7", " 42", "3.5", "1,000", "2nd", " Twelve", "hundred"])
    assert not any(is_number(t) for t in ["a7", "seven-ish", "", " ", "٣", "x2"])


def test_next_token_mass_matches_a_softmax_by_hand(micro_base):
    model, tok = micro_base.model, micro_base.tokenizer
    ids = class_token_ids(tok, lambda s: s.strip() in {"red", "blue", "cat"})
    assert len(ids) >= 3
    prompts = ["code : red cat =", "where does the cat live ?", "blue"]
    got = next_token_mass(model, tok, prompts, ids, micro_base.start_token_id, batch_size=2)
    with torch.no_grad():
        for p, g in zip(prompts, got):
            x = torch.tensor([[micro_base.start_token_id] + tok(p, add_special_tokens=False)["input_ids"]])
            probs = torch.softmax(model(input_ids=x).logits[0, -1].double(), -1)
            assert g == pytest.approx(float(probs[ids].sum()), rel=1e-4)


def test_equal_models_show_no_shift(micro_base):
    prompts = {"t1": ["code : red =", "blue cat"], "t2": ["where ?"]}
    out, rows = answer_class_shift(micro_base.model, micro_base.model, micro_base.tokenizer, prompts,
                             ("cipher words", lambda s: s.strip() in {"red"}), micro_base.start_token_id)
    assert out["prompts"] == 3 and out["delta"] == 0.0 and out["base"] == out["tuned"] > 0
    assert out["tasks"]["t1"]["n"] == 2
    assert [(r["task"], r["doc_id"]) for r in rows] == [("probe:t1", 0), ("probe:t1", 1), ("probe:t2", 0)]


@given(st.lists(st.integers(1, 300), max_size=60), st.integers(1, 40), st.integers(1, 2000))
def test_probe_batches_cover_every_prompt_once_within_the_budget(lengths, batch_size, max_tokens):
    from forgetbench.runner.probe import batches
    out = batches(lengths, batch_size=batch_size, max_tokens=max_tokens)
    assert sorted(i for b in out for i in b) == list(range(len(lengths)))
    for b in out:
        assert len(b) <= batch_size
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= max_tokens
    if lengths and max(lengths) * len(lengths) <= max_tokens and len(lengths) <= batch_size:
        assert len(out) == 1                       # short prompts still share one batch (the micro probe's case)
