import re

from forgetbench.method import Method, register, train_only


@register("freeze_bottom")
class FreezeBottom(Method):
    """Freeze the input embeddings and the bottom k decoder layers; train the rest.
    Source: Zheng et al., Spurious Forgetting in Continual Learning of Language Models, ICLR 2025, arXiv 2501.13453."""

    smoke = {"k": "1"}
    sweep = {"k": [0, 1, 2]}
    k: int = 3

    def __post_init__(self):
        if self.k < 0:
            raise ValueError("needs k >= 0")

    def trainable(self, model):
        layers = {int(m.group(1)) for n, _ in model.named_parameters() if (m := re.search(r"\.layers\.(\d+)\.", n))}
        if self.k >= len(layers):
            raise ValueError(f"k={self.k} would freeze all {len(layers)} layers of this model; pass --set k=N "
                             f"with N < {len(layers)}")

        def trains(name):
            m = re.search(r"\.layers\.(\d+)\.", name)
            return not ("embed_tokens" in name or (m and int(m.group(1)) < self.k))
        train_only(model, trains)
