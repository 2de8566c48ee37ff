from bench.method import Method, register


@register("context_free", cost="moderate")
class ContextFree(Method):
    """Mix in base-model samples drawn from the start token alone (a Monte Carlo KL(base||tuned) term).
    Source: Bansal & Sanghavi, Context-Free Synthetic Data Mitigates Forgetting, arXiv 2505.13811."""

    ratio: float = 1.0            # generated examples per target example
    temperature: float = 1.0      # 1.0 samples the base distribution itself
    max_new_tokens: int = 48

    def __post_init__(self):
        if self.ratio < 0 or self.temperature <= 0 or self.max_new_tokens < 1:
            raise ValueError("needs ratio >= 0, temperature > 0 and max_new_tokens >= 1")

    def mixture(self, ctx):
        target = ctx.target_examples
        n = round(self.ratio * len(target))
        return {"target": target,
                "context_free": ctx.context_free_samples(n, self.temperature, self.max_new_tokens) if n else []}
