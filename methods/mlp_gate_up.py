import re

from forgetbench.method import Method, register, train_only


@register("mlp_gate_up")
class MLPGateUp(Method):
    """Train only the MLP gate and up projections; the down projection and everything else frozen.
    Source: Gate&Up in Zhu et al., How to Teach Large Multimodal Models New Skills, arXiv 2510.08564."""

    def trainable(self, model):
        train_only(model, lambda name: re.search(r"mlp\.(gate|up)_proj\.", name))
