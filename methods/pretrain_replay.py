from bench.method import Mixing, register


@register("pretrain_replay")
class PretrainReplay(Mixing):
    """Mix in text from the base model's pretraining distribution (full-sequence loss).
    Source: baseline in Bansal & Sanghavi, arXiv 2505.13811; cf. pretraining-data injection (ICML 2025)."""

    def mixture(self, ctx):
        n = self.n_extra(ctx)
        return {"target": ctx.target_examples, "replay": ctx.pretraining_text(n) if n else []}
