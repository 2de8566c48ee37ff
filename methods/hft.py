import random
import re

from forgetbench.method import Method, register, train_only

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
NORMS = ("input_layernorm", "post_attention_layernorm")


@register("hft")
class HalfFineTuning(Method):
    """Train a seeded half of each layer's matrices (2 of 4 attention, alternately 1 or 2 of 3 MLP, 1 of 2 norms).
    Source: Hui et al., HFT: Half Fine-Tuning for Large Language Models, ACL 2025, arXiv 2404.18466."""

    selection_seed: int = 0

    def chosen(self, layer: int) -> set[str]:
        """The matrices of one decoder layer that train."""
        rng = random.Random(f"hft:{self.selection_seed}:{layer}")
        return {*rng.sample(ATTN, 2), *rng.sample(MLP, 1 + layer % 2), *rng.sample(NORMS, 1)}

    def trainable(self, model):
        def trains(name):
            m = re.search(r"\.layers\.(\d+)\.(?:self_attn\.|mlp\.)?([a-z_]+)\.", name)
            return bool(m) and m.group(2) in self.chosen(int(m.group(1)))
        train_only(model, trains)
