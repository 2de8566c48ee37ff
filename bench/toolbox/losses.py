"""Loss building blocks shared by methods: response-token cross-entropy and masked full-vocabulary KL."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from forgetbench.toolbox.encoding import IGNORE


def cross_entropy(model, batch: dict) -> torch.Tensor:
    """Mean next-token NLL over the tokens whose label is not -100 (token-averaged over the batch)."""
    return shifted_cross_entropy(logits(model, batch), batch["labels"])


def logits(model, batch: dict) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def token_nll(logits_: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position next-token NLL, float32, shape (batch, length - 1); 0 where the label is -100."""
    return F.cross_entropy(logits_[:, :-1].transpose(1, 2).float(), labels[:, 1:], ignore_index=IGNORE,
                           reduction="none")


def shifted_cross_entropy(logits_: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits_[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE)


def kl_per_position(ref_logits: torch.Tensor, logits: torch.Tensor, direction: str = "forward") -> torch.Tensor:
    """Exact KL over the vocabulary at every position, float32.

    forward: KL(ref || model) = sum_v p_ref (log p_ref - log p_model); reverse: KL(model || ref).
    """
    lp_ref = torch.log_softmax(ref_logits.float(), -1)
    lp = torch.log_softmax(logits.float(), -1)
    if direction == "forward":
        return F.kl_div(lp, lp_ref, log_target=True, reduction="none").sum(-1)
    if direction == "reverse":
        return F.kl_div(lp_ref, lp, log_target=True, reduction="none").sum(-1)
    raise ValueError(f"KL direction must be 'forward' or 'reverse', not {direction!r}")


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)
