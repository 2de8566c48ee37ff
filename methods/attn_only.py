import re

from forgetbench.method import Method, register, train_only


@register("attn_only")
class AttnOnly(Method):
    """Train only the attention projections (q, k, v, o); embeddings, MLPs, norms and LM head frozen.
    Source: SA-Proj in Zhu et al., How to Teach Large Multimodal Models New Skills, arXiv 2510.08564."""

    def trainable(self, model):
        train_only(model, lambda name: re.search(r"self_attn\.(q|k|v|o)_proj\.", name))
