"""The KL estimator against a case whose KL(base || tuned) is computed exactly by enumeration."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from forgetbench.records.aggregate import kl_rows, kl_summary, ratio_se
from forgetbench.runner.kl import score_pair
from forgetbench.toolbox.generation import HFBackend, Sampling
from transformers import LlamaConfig, LlamaForCausalLM

BOS, EOS, PAD = 0, 1, 1   # pad == eos on purpose: masks must come from the first EOS, not the pad id
TOK = SimpleNamespace(eos_token_id=EOS, pad_token_id=PAD)
VOCAB, L = 4, 3


def tiny(seed):
    torch.manual_seed(seed)
    m = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16,
                                     bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD))
    with torch.no_grad():  # sharpen the distributions so the two models differ clearly
        m.lm_head.weight.mul_(8.0)
    return m.eval()


@torch.no_grad()
def next_probs(model, prefix):
    return torch.softmax(model(torch.tensor([prefix])).logits[0, -1].double(), -1)


def all_sequences():
    """Every generated sequence of the length-capped sampler: ends at the first EOS or at length L."""
    for n in range(1, L + 1):
        for seq in itertools.product(range(VOCAB), repeat=n):
            if EOS in seq[:-1]:
                continue
            if n < L and seq[-1] != EOS:
                continue
            yield list(seq)


@torch.no_grad()
def exact_kl(p, q):
    total = 0.0
    for seq in all_sequences():
        lp = lq = 0.0
        for t, tok in enumerate(seq):
            lp += math.log(next_probs(p, [BOS] + seq[:t])[tok])
            lq += math.log(next_probs(q, [BOS] + seq[:t])[tok])
        total += math.exp(lp) * (lp - lq)
    return total


@pytest.fixture(scope="module")
def pair():
    return tiny(0), tiny(1)


def test_enumeration_is_a_distribution(pair):
    p, _ = pair
    mass = 0.0
    for seq in all_sequences():
        mass += math.exp(sum(math.log(next_probs(p, [BOS] + seq[:t])[tok]) for t, tok in enumerate(seq)))
    assert mass == pytest.approx(1.0, abs=1e-9)


def test_per_sequence_values_match_independent_computation(pair):
    p, q = pair
    seqs = [[2, 3, EOS], [3, EOS], [2, 2, 2], [EOS]]
    got = score_pair(p, q, [[BOS]] * len(seqs), seqs, PAD, batch_size=3)  # padded batches
    for i, seq in enumerate(seqs):
        mc = rb = 0.0
        for t, tok in enumerate(seq):
            pp, qq = next_probs(p, [BOS] + seq[:t]), next_probs(q, [BOS] + seq[:t])
            mc += math.log(pp[tok]) - math.log(qq[tok])
            rb += float((pp * (pp.log() - qq.log())).sum())
        assert got["sequence"][i] == pytest.approx(mc, abs=1e-4)
        assert got["token_exact"][i] == pytest.approx(rb, abs=1e-4)
        assert got["tokens"][i] == len(seq)


def test_estimates_agree_with_exact_kl(pair):
    p, q = pair
    truth = exact_kl(p, q)
    assert truth > 0.05
    n = 4000
    gen = HFBackend(p, TOK).generate([[BOS]] * n, Sampling(1.0, L, batch_size=500), seed=3)
    assert all(len(g) <= L for g in gen)
    s = kl_summary(kl_rows(score_pair(p, q, [[BOS]] * n, gen, PAD, batch_size=500), [True] * n))
    for key in ("sequence", "token_exact"):
        assert abs(s[key]["mean"] - truth) < 4 * s[key]["se"], (key, s[key], truth)
    # Rao-Blackwellisation never increases the variance here
    assert s["token_exact"]["se"] <= s["sequence"]["se"]
    assert s["n"] == n


def test_kl_of_a_model_with_itself_is_zero(pair):
    p, _ = pair
    gen = HFBackend(p, TOK).generate([[BOS]] * 50, Sampling(1.0, L), seed=0)
    s = score_pair(p, p, [[BOS]] * 50, gen, PAD)
    assert np.allclose(s["sequence"], 0.0) and np.allclose(s["token_exact"], 0.0, atol=1e-7)


def test_per_token_ratio_estimate():
    x, w = np.array([1.0, 3.0, 2.0]), np.array([2.0, 4.0, 2.0])
    r = ratio_se(x, w)
    assert r["mean"] == pytest.approx(6.0 / 8.0)
    resid = x - 0.75 * w
    assert r["se"] == pytest.approx(math.sqrt((resid ** 2).sum() / 6) / w.mean())
