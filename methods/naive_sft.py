from forgetbench.method import Method, register


@register("naive_sft")
class NaiveSFT(Method):
    """Fine-tune on the target only; cross-entropy on response tokens.
    Source: the standard supervised fine-tuning baseline (reference arm for every comparison)."""

    reference = True
