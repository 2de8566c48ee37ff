"""Targets: each declares held-out prompts (none a training prompt) on which KL(base || tuned) is also measured (the
conditional KL given each prompt, scored on the base model's responses only), and checks completions with the
verifier its evaluation uses."""

import pytest
import torch

from bench.data import encode_prompt
from bench.kl import estimate, target_samples
from bench.settings import KLSettings
from bench.task import targets
from tests.conftest import SHARED

# where each target's data is (the fixtures share items)
OFFLINE = {"micro-cipher": None, "gsm8k": "shared", "reverse_words": "shared", "arithmetic": None}


def test_every_registered_target_declares_held_out_prompts():
    assert [n for n, t in targets.items() if t.test_prompts is None] == []


@pytest.mark.parametrize("name", list(OFFLINE))
def test_held_out_prompts_are_never_training_prompts(name):
    where = {None: None, "shared": SHARED / "data"}[OFFLINE[name]]
    if where is not None and not where.is_dir():
        pytest.skip(f"{where} is not here")
    tgt = targets.get(name)
    held_out = tgt.test_prompts(where)
    train = {p["prompt"] for p in tgt.train_pairs(where, None)}
    assert held_out and len(set(held_out)) == len(held_out)
    assert not set(held_out) & train


@pytest.fixture(scope="module")
def perturbed(micro_base):
    model = type(micro_base.model)(micro_base.model.config)
    model.load_state_dict(micro_base.model.state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    return model.eval()


@torch.no_grad()
def conditional_kl(base, tuned, prompt: list[int], response: list[int]) -> float:
    """sum over the response's positions of KL(p_base(. | prompt, y_<t) || p_tuned(. | ...)), one unpadded
    forward pass per model: the definition, without batching, padding or masks."""
    ids = torch.tensor([prompt + response])
    lp = [torch.log_softmax(m(input_ids=ids).logits[0].double(), -1) for m in (base, tuned)]
    positions = range(len(prompt) - 1, len(prompt) + len(response) - 1)   # those predicting a response token
    return sum(float((lp[0][t].exp() * (lp[0][t] - lp[1][t])).sum()) for t in positions)


def test_kl_on_target_prompts_is_the_conditional_kl_of_the_base_responses(fresh_cache, micro_base, perturbed):
    texts = targets.get("micro-cipher").test_prompts(None)
    settings = KLSettings(target_prompts=6, max_new_tokens=5, batch_size=4)
    section, rows = estimate(micro_base, perturbed, settings, target=(texts, False))
    prompts, gen = target_samples(micro_base, texts, False, settings)
    assert section["n"] == len(rows) == 6 and section["settings"] == {
        "prompts": 6, "of": len(texts), "max_new_tokens": 5, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
        "seed": settings.seed}
    encoded = [encode_prompt(micro_base.tokenizer, t) for t in texts]
    assert all(p in encoded for p in prompts)                                    # in the training format
    for row, p, g in zip(rows, prompts, gen):
        assert row["task"] == "kl:target" and row["tokens"] == len(g)
        assert row["token_exact"] == pytest.approx(conditional_kl(micro_base.model, perturbed, p, g), rel=1e-4)
    same, _ = estimate(micro_base, micro_base.model, settings, target=(texts, False))
    assert same["token_exact"]["mean"] == 0.0 and same["sequence"]["mean"] == 0.0


def test_the_prompt_draw_is_fixed_by_the_kl_seed(fresh_cache, micro_base):
    texts = targets.get("micro-cipher").test_prompts(None)
    def draw(seed):
        return target_samples(micro_base, texts, False, KLSettings(target_prompts=5, max_new_tokens=2, seed=seed))[0]
    assert draw(1) == draw(1) and draw(1) != draw(2)


def test_each_target_checks_completions_with_its_evaluations_verifier(data_dir):
    """One verifier per target: Target.verify, the micro YAMLs' process_results and the evaluation agree."""
    from tasks.micro import loaders

    tone = targets.get("micro-tone")
    pair = tone.train_pairs(None, None)[0]
    assert tone.verify(f"  {pair['response']} ", pair) and not tone.verify(pair["response"] + " x", pair)
    assert loaders.exact({"response": pair["response"]}, [f" {pair['response']}"]) == {"exact_match": 1.0}
    assert loaders.exact({"response": pair["response"]}, ["cool warm"]) == {"exact_match": 0.0}
    gsm = targets.get("gsm8k")
    first = gsm.train_pairs(data_dir, None)[0]                    # checked on its final answer, not the solution
    assert gsm.verify(f"so it is \\boxed{{{first['answer']}}}", first)
    assert not gsm.verify(f"so it is \\boxed{{{first['answer']}1}}", first)
