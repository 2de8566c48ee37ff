from forgetbench.method import Method, register
from forgetbench.toolbox.losses import cross_entropy


@register("l2sp")
class L2SP(Method):
    """Cross-entropy plus lam/2 * ||theta - theta_base||^2 over the trained parameters (pull to the start point).
    Source: Li et al., Explicit Inductive Bias for Transfer Learning with Convolutional Networks (L2-SP), ICML 2018."""

    sweep = {"lam": [0.001, 0.01, 0.1, 1.0]}
    lam: float = 0.01

    def __post_init__(self):
        if self.lam < 0:
            raise ValueError("needs lam >= 0")

    def loss(self, model, batch, ctx):
        start = ctx.base_parameters
        penalty = sum(((p - start[n]) ** 2).sum() for n, p in model.named_parameters() if p.requires_grad)
        return cross_entropy(model, batch) + self.lam / 2 * penalty

