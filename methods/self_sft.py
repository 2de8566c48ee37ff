import math
from dataclasses import replace

from forgetbench.method import Method, register
from forgetbench.toolbox.encoding import encode_pair


@register("self_sft")
class SelfSFT(Method):
    """SFT on the model's own completions to the target's prompts that the target's verifier accepts.
    Source: Self-SFT in Retaining by Doing, arXiv 2510.18874 (and its iterative variant); RFT, arXiv 2308.01825.

    Two variants, named by `sampler`: `base` (the default) is the paper's Self-SFT, one draw of k completions per
    prompt from the base (initial) model, verified, then the whole budget on what was accepted: leaderboard row
    `self_sft`. `policy` is the paper's iterative, approximately on-policy variant: the model in training resampled
    at the start of every epoch and trained an epoch on that round's accepted completions: row
    `self_sft (sampler=policy)`."""

    cost = "moderate"
    sweep = {"k": [2, 4, 8]}
    smoke = {"k": 2, "max_new_tokens": 4}
    smoke_target = "micro-tone"         # the base model never gets the cipher right: nothing would be accepted
    k: int = 4                  # completions sampled per target prompt
    sampler: str = "base"       # base: Self-SFT, the base model sampled once; policy: iterative, resampled each epoch
    temperature: float = 1.0
    max_new_tokens: int = 48

    def __post_init__(self):
        if self.k < 1 or self.sampler not in ("policy", "base") or self.temperature <= 0 or self.max_new_tokens < 1:
            raise ValueError("needs k >= 1, sampler policy or base, temperature > 0 and max_new_tokens >= 1")

    def prepare(self, ctx):
        ctx.target.check_verifiable(ctx.target_pairs)

    def fit(self, model, ctx, budget, seed):
        # each round is its own Trainer: AdamW's moments and the learning-rate schedule (warmup, decay) restart
        # every epoch with the new data, as in rejection-sampling fine-tuning's rounds
        from forgetbench.core.settings import MAX_SEED
        from forgetbench.toolbox.training import TrainingStats, train

        rounds = math.ceil(budget.epochs) if self.sampler == "policy" else 1
        stats, kept = [], []
        for r in range(rounds):
            sampler = model if self.sampler == "policy" else ctx.base.model
            rows = self.accepted(ctx, sampler, seed=(seed * 1000 + r) % (MAX_SEED + 1))
            kept.append(len(rows))
            if rows:         # an epoch (or, from the base model, the whole budget) on what the verifier accepted
                epochs = min(1.0, budget.epochs - r) if self.sampler == "policy" else budget.epochs
                stats.append(train(model, rows, lambda m, b: self.loss(m, b, ctx), replace(budget, epochs=epochs),
                                   (seed + r) % (MAX_SEED + 1), ctx.tokenizer.pad_token_id))
        ctx.notes["self_sft"] = {"accepted_per_round": kept, "sampled_per_round": self.k * len(ctx.target_pairs)}
        # the rounds' loss curves, processes and precision are left unmeasured: self-SFT's records never had them
        return TrainingStats(steps=sum(s.steps for s in stats), examples=sum(kept),
                             tokens=sum(s.tokens for s in stats),
                             loss_first=stats[0].loss_first if stats else None,
                             loss_last_10pct=stats[-1].loss_last_10pct if stats else None,
                             seconds=round(sum(s.seconds for s in stats), 2), extra={"rounds": rounds})

    def accepted(self, ctx, model, *, seed: int) -> list[dict]:
        """The training examples: each finished completion the verifier accepts, in the target's training format
        (rejection sampling keeps whole answers: an unfinished one, None, is dropped however right it reads)."""
        drawn = ctx.completions(model, ctx.target_pairs, self.k, temperature=self.temperature,
                                max_new_tokens=self.max_new_tokens, seed=seed)
        return [encode_pair(ctx.tokenizer, pair["prompt"], text.strip(), ctx.target.chat)
                for pair, texts in zip(ctx.target_pairs, drawn) for text in texts
                if text is not None and ctx.target.verify(text, pair)]
