from forgetbench.method import GeneratedMixing, register


@register("contextual_synthetic")
class ContextualSynthetic(GeneratedMixing):
    """Mix in base-model continuations generated with context: the target's own prompts.
    Source: baseline in Bansal & Sanghavi, arXiv 2505.13811; cf. SDFT, arXiv 2402.13669."""

    cost = "moderate"

    def mixture(self, ctx):
        rng = ctx.rng("contextual_synthetic")
        prompts = [rng.choice(ctx.target_pairs)["prompt"] for _ in range(self.n_extra(ctx))]
        return {"target": ctx.target_examples,
                "contextual": ctx.contextual_samples(prompts, self.temperature, self.max_new_tokens) if prompts else []}
