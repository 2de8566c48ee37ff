from forgetbench.method import Method, register


@register("lora")
class LoRA(Method):
    """Train low-rank adapters (peft LoRA) on the chosen linear layers; base weights frozen, adapters merged after.
    Source: Hu et al., arXiv 2106.09685; Biderman et al., LoRA Learns Less and Forgets Less, arXiv 2405.09673."""

    sweep = {"rank": [2, 4, 8, 16, 32]}
    rank: int = 8
    alpha: float = 16.0
    targets: str = "all-linear"       # or comma-separated module names, e.g. q_proj,v_proj
    dropout: float = 0.0

    def __post_init__(self):
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1 or not self.targets.strip():
            raise ValueError("needs rank >= 1, alpha > 0, 0 <= dropout < 1 and target modules")

    def trainable(self, model):
        from peft import LoraConfig, get_peft_model
        targets = self.targets if self.targets == "all-linear" else [t.strip() for t in self.targets.split(",")]
        return get_peft_model(model, LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                                                target_modules=targets, bias="none", task_type="CAUSAL_LM"))

    def finalize(self, tuned, base):
        return tuned.merge_and_unload()
