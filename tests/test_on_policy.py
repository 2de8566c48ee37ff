"""On-policy methods: what self_sft trains on and where its completions come from, against hand-built cases."""

from types import SimpleNamespace

from bench.budget import Budget
from bench.data import encode_pair
from bench.method import build_method
from bench.task import targets

TONE = targets.get("micro-tone")


def fake_ctx(micro_base, drawn_by):
    """A context whose completions are scripted: `drawn_by(model, seed)` -> one list of completions per pair."""
    pairs = TONE.train_pairs(None, None)[:3]
    calls = []

    def completions(model, ps, k, *, temperature, max_new_tokens, seed):
        calls.append((model, seed))
        return drawn_by(model, seed)
    ctx = SimpleNamespace(base=micro_base, target=TONE, tokenizer=micro_base.tokenizer, target_pairs=pairs,
                          completions=completions, notes={})
    return ctx, pairs, calls


def test_only_completions_the_verifier_accepts_become_training_examples(micro_base):
    ctx, pairs, _ = fake_ctx(micro_base, None)
    answers = [p["response"] for p in pairs]
    ctx.completions = lambda model, ps, k, **kw: [[f" {answers[0]} ", "nonsense"], ["x", "y"], [answers[2], answers[2]]]
    rows = build_method("self_sft", {"k": "2"}).accepted(ctx, micro_base.model, seed=0)
    expect = [encode_pair(micro_base.tokenizer, pairs[i]["prompt"], answers[i]) for i in (0, 2, 2)]
    assert rows == expect                                            # the training format of an SFT pair


def test_policy_sampling_draws_from_the_model_in_training_every_epoch(micro_base):
    policy = micro_base.trainable_copy()
    ctx, pairs, calls = fake_ctx(micro_base, lambda model, seed: [[p["response"]] for p in pairs])
    stats = build_method("self_sft", {"k": "1"}).fit(policy, ctx, Budget(epochs=3, lr=1e-3, batch_size=2), seed=5)
    assert [m is policy for m, _ in calls] == [True] * 3 and [s for _, s in calls] == [5000, 5001, 5002]
    assert stats["rounds"] == 3 and stats["examples"] == 9 and ctx.notes["self_sft"]["accepted_per_round"] == [3] * 3
    base_ctx, _, base_calls = fake_ctx(micro_base, lambda model, seed: [[p["response"]] for p in pairs])
    build_method("self_sft", {"k": "1", "sampler": "base"}).fit(policy, base_ctx, Budget(epochs=3, lr=1e-3,
                                                                                       batch_size=2), seed=5)
    assert [m is micro_base.model for m, _ in base_calls] == [True]          # the base model, once
