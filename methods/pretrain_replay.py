from bench.method import Method, register


@register("pretrain_replay")
class PretrainReplay(Method):
    """Mix in text from the base model's pretraining distribution (full-sequence loss).
    Source: baseline in Bansal & Sanghavi, arXiv 2505.13811; cf. pretraining-data injection (ICML 2025)."""

    ratio: float = 1.0

    def __post_init__(self):
        if self.ratio < 0:
            raise ValueError("needs ratio >= 0")

    def mixture(self, ctx):
        target = ctx.target_examples
        n = round(self.ratio * len(target))
        return {"target": target, "replay": ctx.pretraining_text(n) if n else []}
