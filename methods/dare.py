import hashlib

import torch
from forgetbench.method import WeightGrid, register


@register("dare")
class DARE(WeightGrid):
    """Fine-tune, then drop a random fraction p of the update's entries and rescale the rest by 1/(1-p).
    Source: Yu et al., Language Models are Super Mario (DARE), ICML 2024, arXiv 2311.03099."""

    sweep = {"p": ["0.5", "0.7", "0.9"]}   # post-hoc: a sweep evaluates every training configuration at each
    grid = "p"
    grid_range = (0.0, 1.0, False)
    smoke = {"p": "0.5"}   # at 0.9 a small norm vector may lose every entry of its update
    p: str = "0.9"        # drop rate (a grid: one result each)

    def finalize(self, tuned, base):
        start = dict(base.named_parameters())
        with torch.no_grad():
            for name, w in tuned.named_parameters():
                delta = w - start[name]
                keep = (torch.rand(delta.shape, generator=self._generator(name, delta)) >= self.value).to(delta.device)
                w.copy_(start[name] + delta * keep / (1 - self.value))
        return tuned

    def _generator(self, name: str, delta: torch.Tensor) -> torch.Generator:
        # finalize sees no run seed: the mask is seeded by the parameter's name, p and its update, which the
        # run's seed decides through training, so seeds draw different masks and a rerun draws the same one
        raw = delta.detach().float().cpu().numpy().tobytes()       # float32 bytes: numpy has no bfloat16
        digest = hashlib.sha256(f"{name}:{self.value}".encode() + raw).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
