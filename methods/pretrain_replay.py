from forgetbench.method import Mixing, register


@register("pretrain_replay")
class PretrainReplay(Mixing):
    """Mix in text from the base model's pretraining distribution (full-sequence loss).
    Source: baseline in Bansal & Sanghavi, arXiv 2505.13811; cf. pretraining-data injection (ICML 2025)."""

    max_tokens: int = 512     # each replayed document is cut to its first max_tokens tokens

    def __post_init__(self):
        super().__post_init__()
        if self.max_tokens < 1:
            raise ValueError("needs max_tokens >= 1")

    def mixture(self, ctx):
        n = self.n_extra(ctx)
        return {"target": ctx.target_examples, "replay": ctx.pretraining_text(n, self.max_tokens) if n else []}
