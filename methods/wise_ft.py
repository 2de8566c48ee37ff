import dataclasses
import math

import torch

from bench.method import Method, register


@register("wise_ft")
class WiseFT(Method):
    """Fine-tune, then interpolate weights theta_base + alpha (theta_tuned - theta_base); one row per alpha.
    Source: Wortsman et al., Robust fine-tuning of zero-shot models (WiSE-FT), CVPR 2022, arXiv 2109.01903."""

    sweep = {"alpha": ["0.25", "0.5", "0.75"]}
    alpha: str = "0.5"    # one value, or a comma-separated grid evaluated from one training run (a row each)

    def __post_init__(self):
        try:
            values = [float(a) for a in self.alpha.split(",")]
        except ValueError:
            raise ValueError(f"alpha must be a number or comma-separated numbers, not {self.alpha!r}") from None
        if not values or any(not math.isfinite(a) or a < 0 for a in values):
            raise ValueError(f"alpha values must be finite numbers >= 0, not {self.alpha!r}")
        self.values = values

    def variants(self):
        if len(self.values) == 1:
            return [self]
        return [dataclasses.replace(self, alpha=f"{a:g}") for a in self.values]

    def finalize(self, tuned, base):
        (alpha,) = self.values
        start = dict(base.named_parameters())
        with torch.no_grad():
            for name, p in tuned.named_parameters():
                p.copy_(start[name] + alpha * (p - start[name]))
        return tuned
