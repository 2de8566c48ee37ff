import torch
from forgetbench.method import Method, register
from forgetbench.toolbox.encoding import IGNORE
from forgetbench.toolbox.losses import kl_per_position, logits, masked_mean, shifted_cross_entropy


@register("lwf")
class LwF(Method):
    """Cross-entropy plus lam * T^2 * KL(base^T || tuned^T) on the target's own response tokens (distillation).
    Source: Li & Hoiem, Learning without Forgetting, ECCV 2016; LLM form as in jessemelpolio/LMM_CL."""

    cost = "moderate"
    sweep = {"lam": [0.1, 0.3, 1.0, 3.0, 10.0]}
    lam: float = 1.0
    temperature: float = 2.0

    def __post_init__(self):
        if self.lam < 0 or self.temperature <= 0:
            raise ValueError("needs lam >= 0 and temperature > 0")

    def loss(self, model, batch, ctx):
        out = logits(model, batch)
        with torch.no_grad():
            ref = logits(ctx.frozen_base, batch)
        t = self.temperature
        kl = kl_per_position(ref[:, :-1] / t, out[:, :-1] / t, "forward")
        return shifted_cross_entropy(out, batch["labels"]) + \
            self.lam * t * t * masked_mean(kl, batch["labels"][:, 1:] != IGNORE)
