"""On-policy methods: what self_sft trains on and where its completions come from, against hand-built cases."""

import json
from types import SimpleNamespace

import pytest
from forgetbench.cli import main
from forgetbench.core.budget import Budget
from forgetbench.core.errors import UserError
from forgetbench.method import build_method
from forgetbench.task import targets
from forgetbench.toolbox.encoding import encode_pair
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_iterative_self_sft_draws_from_the_model_in_training_every_epoch_and_self_sft_from_the_base_once(micro_base):
    policy = micro_base.trainable_copy()
    ctx, pairs, calls = fake_ctx(micro_base, lambda model, seed: [[p["response"]] for p in pairs])
    stats = build_method("self_sft", {"k": "1", "sampler": "policy"}).fit(policy, ctx, Budget(epochs=3, lr=1e-3,
                                                                                              batch_size=2), seed=5)
    assert [m is policy for m, _ in calls] == [True] * 3 and [s for _, s in calls] == [5000, 5001, 5002]
    assert stats.extra["rounds"] == 3 and stats.examples == 9 and ctx.notes["self_sft"]["accepted_per_round"] == [3] * 3
    base_ctx, _, base_calls = fake_ctx(micro_base, lambda model, seed: [[p["response"]] for p in pairs])
    stats = build_method("self_sft", {"k": "1"}).fit(policy, base_ctx, Budget(epochs=3, lr=1e-3, batch_size=2), seed=5)
    assert [m is micro_base.model for m, _ in base_calls] == [True]          # the default: the base model, once
    assert stats.extra["rounds"] == 1 and stats.steps == 3 * 2               # then the whole budget on its draw


def test_a_self_sft_row_says_which_variant_it_is():
    """The default row is the paper's Self-SFT (one draw from the base model); the iterative one says so."""
    from forgetbench.leaderboard.tracks import Row, _defaults, _diff

    def label(**sets):
        params = build_method("self_sft", {k: str(v) for k, v in sets.items()}).params()
        return Row(method="self_sft", setting=_diff(params, _defaults("self_sft")),
                   runs=[SimpleNamespace(external=False)]).label
    assert label() == label(sampler="base") == "self_sft"
    assert label(sampler="policy") == "self_sft (sampler=policy)"
    assert label(sampler="policy", k=8) == "self_sft (k=8 sampler=policy)"


def test_grpo_rewards_a_completion_when_the_targets_verifier_accepts_it_where_evaluation_cuts_it(micro_base):
    ctx, pairs, _ = fake_ctx(micro_base, None)
    reward = build_method("grpo", {}).reward(ctx)
    right, wrong = pairs[0]["response"], "cool" if pairs[0]["response"] != "cool" else "warm"
    got = reward(prompts=[""] * 4, completions=[f" {right} . mufi likes", f" {wrong} .", right,
                                               [{"role": "assistant", "content": f"{right}."}]], index=[0, 0, 0, 0])
    assert got == [1.0, 0.0, 1.0, 1.0]


def test_grpo_maps_the_budget_to_trl_with_the_papers_loss(micro_base, tmp_path):
    cfg = build_method("grpo", {"group": "4"}).config(micro_base.model, Budget(epochs=2, lr=1e-4, batch_size=8),
                                                       seed=3, out=str(tmp_path))
    assert (cfg.per_device_train_batch_size, cfg.num_generations, cfg.beta) == (32, 4, 0.0)   # 8 prompts a step
    # what the sampler's arithmetic below rests on: a step's prompts are the budget's batch, generated once, used once
    assert cfg.generation_batch_size // cfg.num_generations == 8
    assert (cfg.steps_per_generation, cfg.num_iterations, cfg.gradient_accumulation_steps) == (1, 1, 1)
    assert (cfg.num_train_epochs, cfg.learning_rate, cfg.top_k, cfg.top_p, cfg.temperature) == (2, 1e-4, 0, 1.0, 1.0)
    assert (cfg.loss_type, cfg.scale_rewards) == ("grpo", "group")      # the per-sequence mean, not TRL's "dapo"
    assert build_method("grpo", {"loss_type": "dapo"}).config(micro_base.model, Budget(), seed=0,
                                                              out=str(tmp_path)).loss_type == "dapo"
    with pytest.raises(UserError, match="loss_type must be one of"):
        build_method("grpo", {"loss_type": "cispo"})


@given(n=st.integers(1, 300), batch=st.integers(1, 64), group=st.integers(2, 8), seed=st.integers(0, 2**31))
@settings(max_examples=300, deadline=None)
def test_grpo_steps_an_epoch_are_sfts_on_any_dataset_size(n, batch, group, seed):
    """GRPO's training DataLoader (TRL's sampler as GRPOTrainer builds it, wrapped in WholeEpochs; a batch of
    `batch` prompts times `group` completions) has as many batches an epoch as SFT's DataLoader over n examples, and
    each epoch takes every prompt once, in SFT's batch sizes; the Trainer makes ceil(epochs x batches an epoch)
    optimizer steps from either. TRL's own sampler drops the remainder."""
    from forgetbench.methods.grpo import WholeEpochs
    from torch.utils.data import DataLoader
    from trl.trainer.utils import RepeatSampler

    def repeat():
        return RepeatSampler(range(n), mini_repeat_count=group, batch_size=batch, repeat_count=1, shuffle=True,
                             seed=seed)
    sft = DataLoader(range(n), batch_size=batch, shuffle=True)
    grpo = DataLoader(range(n), sampler=WholeEpochs(repeat()), batch_size=batch * group)
    assert len(grpo) == len(sft) == -(-n // batch)
    assert len(DataLoader(range(n), sampler=repeat(), batch_size=batch * group)) == n // batch    # TRL's: floor
    for _ in range(2):                                                   # each epoch a new order, every prompt once
        steps = [b.tolist() for b in grpo]
        prompts = [s[::group] for s in steps]
        assert all(s == [i for i in p for _ in range(group)] for s, p in zip(steps, prompts))   # whole groups
        assert sorted(i for p in prompts for i in p) == list(range(n))
        assert [len(p) for p in prompts] == [len(b) for b in sft]
    if n % batch == 0:                                                   # whole batches: TRL's own sequence
        ours, theirs = WholeEpochs(repeat()), repeat()
        assert [list(ours) for _ in range(2)] == [list(theirs) for _ in range(2)]


@pytest.mark.slow
def test_grpo_and_sft_records_have_the_same_optimizer_steps(capsys, tmp_path):
    """On micro-tone, 10 prompts in batches of 4 for 1.5 epochs: both make ceil(1.5 x 3) = 5 steps (TRL alone: 3)."""
    steps = {}
    for method, sets in (("naive_sft", []), ("grpo", ["--set", "group=2", "--set", "max_new_tokens=4"])):
        code = main(["run", "--method", method, *sets, "--target", "micro-tone", "--budget", "examples=10", "--budget",
                     "batch_size=4", "--budget", "epochs=1.5", "--limit", "4", "--max-new-tokens", "4", "--kl-samples",
                     "4", "--out", str(tmp_path), "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        (record,) = [json.loads(line) for line in out.splitlines()]
        steps[method] = (record["training"]["steps"], record["training"]["examples"])
    assert steps == {"naive_sft": (5, 10), "grpo": (5, 10)}


def test_grpo_with_no_reward_anywhere_leaves_the_model_unchanged(micro_base):
    """With beta 0 every advantage is 0 when no completion is ever right (the cipher): no update at all."""
    import torch
    from forgetbench.method import Context
    ctx = Context(base=micro_base, target=targets.get("micro-cipher"), seed=0, examples=8)
    policy = micro_base.trainable_copy()
    stats = build_method("grpo", {"group": "2", "max_new_tokens": "3"}).fit(
        policy, ctx, Budget(epochs=1, lr=1e-2, batch_size=4), seed=0)
    assert stats.steps == 2 and stats.extra["reward_last"] == 0.0
    assert stats.extra["reward_curve"] == [0.0, 0.0] and len(stats.loss_curve) == 2      # every step's
    assert all(torch.equal(a, b) for a, b in zip(policy.parameters(), micro_base.model.parameters()))


def test_a_completion_cut_by_the_token_cap_is_unfinished_and_never_trained_on(micro_base, monkeypatch):
    """Ended by EOS or by a stop string: a completion; cut by max_new_tokens: None, and self_sft drops it (trained
    on with an EOS, an unfinished text would teach the model to stop mid-sentence)."""
    from forgetbench.method import Context
    from forgetbench.toolbox import generation
    tok = micro_base.tokenizer
    pairs = TONE.train_pairs(None, None)[:1]
    answer = tok(" " + pairs[0]["response"], add_special_tokens=False)["input_ids"]
    stop = tok(" .", add_special_tokens=False)["input_ids"]
    scripted = [answer + [tok.eos_token_id], answer + stop, answer, answer + answer]     # the last two hit the cap

    class Scripted:
        def generate(self, prompts, sampling, seed, desc=None):
            return scripted
    monkeypatch.setattr(generation, "backend", lambda name, model, tokenizer: Scripted())
    ctx = Context(base=micro_base, target=TONE, seed=0)
    policy = micro_base.trainable_copy()
    drawn = ctx.completions(policy, pairs, 4, temperature=1.0, max_new_tokens=2 * len(answer), seed=0)
    said = tok.decode(answer, skip_special_tokens=True)
    assert drawn == [[said, said + " ", None, None]]
    assert TONE.verify(said, pairs[0])                      # the unfinished ones read as right, and still go
    rows = build_method("self_sft", {"k": "4"}).accepted(ctx, policy, seed=0)
    assert rows == [encode_pair(tok, pairs[0]["prompt"], said.strip(), TONE.chat)] * 2
