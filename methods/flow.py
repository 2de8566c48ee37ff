import torch
from forgetbench.method import Method, register
from forgetbench.toolbox.encoding import IGNORE, Collator
from forgetbench.toolbox.losses import logits, token_nll


@register("flow")
class Flow(Method):
    """Weight each target example by exp(-loss_base / tau), tau the median base loss: easy examples count more.
    Source: Sanyal et al., Upweighting Easy Samples in Fine-Tuning Mitigates Forgetting, ICML 2025, arXiv 2502.02797."""

    batch_size: int = 32           # for the one pass of the base model over the target data

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError("needs batch_size >= 1")

    def prepare(self, ctx):
        losses = base_losses(ctx.base.model, ctx.target_examples, ctx.tokenizer.pad_token_id, self.batch_size)
        tau = float(losses.median())
        self.weights = torch.exp(-losses / tau).nan_to_num(0.0).tolist()
        ctx.notes["flow"] = {"tau": tau, "weight_min": min(self.weights), "weight_max": max(self.weights),
                             "normalisation": "sum_i w_i * sum_t nll_it / response tokens in the batch"}

    def mixture(self, ctx):
        return {"target": [{**e, "weight": w} for e, w in zip(ctx.target_examples, self.weights)]}

    def loss(self, model, batch, ctx):
        nll = token_nll(logits(model, batch), batch["labels"])
        tokens = (batch["labels"][:, 1:] != IGNORE).sum().clamp(min=1)
        return (batch["weight"].to(nll.dtype) * nll.sum(1)).sum() / tokens


@torch.no_grad()
def base_losses(model, examples, pad_id, batch_size):
    """Each example's mean response-token NLL under the base model."""
    collate, out = Collator(pad_id), []
    device = next(model.parameters()).device
    for s in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate(examples[s:s + batch_size]).items()}
        nll = token_nll(logits(model, batch), batch["labels"])
        out.append(nll.sum(1) / (batch["labels"][:, 1:] != IGNORE).sum(1).clamp(min=1))
    return torch.cat(out).cpu()
