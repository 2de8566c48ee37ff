from forgetbench.method import GeneratedMixing, register


@register("context_free")
class ContextFree(GeneratedMixing):
    """Mix in base-model samples drawn from the start token alone (a Monte Carlo KL(base||tuned) term).
    Source: Bansal & Sanghavi, Context-Free Synthetic Data Mitigates Forgetting, arXiv 2505.13811."""

    cost = "moderate"

    def mixture(self, ctx):
        n = self.n_extra(ctx)
        return {"target": ctx.target_examples,
                "context_free": ctx.context_free_samples(n, self.temperature, self.max_new_tokens) if n else []}
