from bench.method import Method, register


@register("contextual_synthetic", cost="moderate")
class ContextualSynthetic(Method):
    """Mix in base-model continuations generated with context: the target's own prompts.
    Source: baseline in Bansal & Sanghavi, arXiv 2505.13811; cf. SDFT, arXiv 2402.13669."""

    ratio: float = 1.0
    temperature: float = 1.0
    max_new_tokens: int = 48

    def __post_init__(self):
        if self.ratio < 0 or self.temperature <= 0 or self.max_new_tokens < 1:
            raise ValueError("needs ratio >= 0, temperature > 0 and max_new_tokens >= 1")

    def mixture(self, ctx):
        target = ctx.target_examples
        n = round(self.ratio * len(target))
        rng = ctx.rng("contextual_synthetic")
        prompts = [rng.choice(ctx.target_pairs)["prompt"] for _ in range(n)]
        return {"target": target,
                "contextual": ctx.contextual_samples(prompts, self.temperature, self.max_new_tokens) if n else []}
