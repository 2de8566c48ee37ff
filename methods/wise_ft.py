import torch
from forgetbench.method import WeightGrid, register


@register("wise_ft")
class WiseFT(WeightGrid):
    """Fine-tune, then interpolate weights theta_base + alpha (theta_tuned - theta_base); one row per alpha.
    Source: Wortsman et al., Robust fine-tuning of zero-shot models (WiSE-FT), CVPR 2022, arXiv 2109.01903."""

    sweep = {"alpha": ["0.25", "0.5", "0.75"]}     # post-hoc: a sweep evaluates every training configuration at each
    grid = "alpha"
    alpha: str = "0.5"    # one value, or a comma-separated grid evaluated from one training run (a row each)

    def finalize(self, tuned, base):
        start = dict(base.named_parameters())
        with torch.no_grad():
            for name, p in tuned.named_parameters():
                p.copy_(start[name] + self.value * (p - start[name]))
        return tuned
