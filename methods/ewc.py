import torch
from forgetbench.method import Method, register
from forgetbench.toolbox.encoding import Collator
from forgetbench.toolbox.losses import cross_entropy, logits, token_nll


@register("ewc")
class EWC(Method):
    """Cross-entropy plus lam/2 * sum F (theta - theta_base)^2, F the base model's diagonal Fisher on its own samples.
    Source: Kirkpatrick et al., Overcoming catastrophic forgetting in neural networks, PNAS 2017."""

    cost = "moderate"
    smoke = {"fisher_samples": "8"}
    sweep = {"lam": [0.1, 1.0, 10.0, 100.0, 1000.0]}
    lam: float = 1.0
    fisher_samples: int = 256      # sequences the Fisher is averaged over
    fisher_data: str = "samples"   # samples: context-free base samples (true Fisher); corpus: pretraining text
    max_new_tokens: int = 48

    def __post_init__(self):
        if self.lam < 0 or self.fisher_samples < 1 or self.fisher_data not in ("samples", "corpus"):
            raise ValueError("needs lam >= 0, fisher_samples >= 1 and fisher_data 'samples' or 'corpus'")

    def prepare(self, ctx):
        refs = (ctx.context_free_samples(self.fisher_samples, 1.0, self.max_new_tokens) if self.fisher_data == "samples"
                else ctx.pretraining_text(self.fisher_samples))
        self.fisher = diagonal_fisher(ctx.base.model, refs, ctx.tokenizer.pad_token_id)
        total = sum(float(f.sum()) for f in self.fisher.values())
        ctx.notes["ewc"] = {"fisher_sequences": len(refs), "fisher_data": self.fisher_data, "fisher_trace": total}

    def loss(self, model, batch, ctx):
        start = ctx.base_parameters
        penalty = sum((self.fisher[n] * (p - start[n]) ** 2).sum()
                      for n, p in model.named_parameters() if p.requires_grad and n in self.fisher)
        return cross_entropy(model, batch) + self.lam / 2 * penalty


def diagonal_fisher(model, examples, pad_id) -> dict[str, torch.Tensor]:
    """Mean over sequences of the squared gradient of the sequence log-likelihood, per parameter."""
    params = dict(model.named_parameters())
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    collate = Collator(pad_id)
    device = next(model.parameters()).device
    was = {n: p.requires_grad for n, p in params.items()}
    for p in params.values():
        p.requires_grad_(True)
    try:
        for ex in examples:
            batch = {k: v.to(device) for k, v in collate([ex]).items()}
            model.zero_grad(set_to_none=True)
            token_nll(logits(model, batch), batch["labels"]).sum().backward()
            for n, p in params.items():
                if p.grad is not None:
                    fisher[n] += p.grad.float() ** 2
    finally:
        model.zero_grad(set_to_none=True)
        for n, p in params.items():
            p.requires_grad_(was[n])
    return {n: f / len(examples) for n, f in fisher.items()}
