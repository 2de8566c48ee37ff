import re

import torch
from forgetbench.method import WeightGrid, register

BLOCK = re.compile(r"\.(\d+)\.")          # the first numbered component: model.layers.<i>. (Llama), h.<i>. (GPT-2)


@register("lines")
class LiNeS(WeightGrid):
    """Fine-tune, then scale each layer's update by depth: theta_base + (alpha + beta l/(L-1)) delta for block l of L.
    Source: Wang et al., LiNeS: Post-training Layer Scaling Prevents Forgetting, ICLR 2025, arXiv 2410.17146."""

    sweep = {"alpha": ["0", "0.25", "0.5"]}    # post-hoc: a sweep evaluates every training configuration at each
    grid = "alpha"
    alpha: str = "0.5"     # the shallowest block's share of its update (a grid: one result each)
    beta: float = 0.5      # added share by the deepest block (alpha + beta: the deepest block's share)

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.beta <= 1:
            raise ValueError("needs 0 <= beta <= 1")

    def finalize(self, tuned, base):
        start = dict(base.named_parameters())
        blocks = {n: int(m.group(1)) for n, _ in tuned.named_parameters() if (m := BLOCK.search(n))}
        depth = max(blocks.values(), default=0)
        with torch.no_grad():
            for name, p in tuned.named_parameters():
                # outside the blocks (embeddings, final norm, head) counts as the shallowest layer, as in LiNeS'
                # code: the embedding is the most general representation of all
                share = self.value + (self.beta * blocks[name] / depth if name in blocks and depth else 0.0)
                p.copy_(start[name] + share * (p - start[name]))
        return tuned
