"""Monte Carlo estimates of KL(base || tuned) on sequences sampled from the base model.

Two sample sets, each fixed per base model (cached): context-free, x ~ p_base(. | start token), the KL between
the models' distributions over text; and on the target's prompts, responses y ~ p_base(. | c) to held-out target
prompts c (in the training format), whose mean over c estimates E_c KL(p_base(.|c) || p_tuned(.|c)), the KL
RL's Razor finds predicts forgetting (Shenfeld et al., arXiv 2509.04259). Both are drawn at temperature 1 with no
truncation of the distribution (only a length cap), and both are scored in one teacher-forced code path with
float32 log-softmax, on the sampled tokens only. Per sequence:

- sequence: log p_base(x) - log p_tuned(x)                     (unbiased, high variance)
- token_exact: sum_t KL(p_base(.|x_<t) || p_tuned(.|x_<t))    (Rao-Blackwellised: exact over the
  vocabulary at every sampled prefix; unbiased, lower variance, never negative)

Both are also reported per token (total over sequences / total scored tokens, delta-method SE).
Scored positions are the generated tokens up to and including the first EOS (or document separator, where the
start token is one: forgetbench.toolbox.models.ModelHandle.document_ends).

The target's prompts are encoded as training encodes them (toolbox.encoding.encode_prompt), so they begin with a BOS
token exactly when the model's convention says (ModelHandle.adds_bos); a context-free sample is conditioned on the
start token alone, which is the BOS where the model has one and otherwise its document separator or EOS.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from forgetbench.core.settings import KLSettings
from forgetbench.records.aggregate import KL_TARGET_TASK, KL_TASK, kl_rows, kl_summary
from forgetbench.toolbox.encoding import encode_prompt, pad
from forgetbench.toolbox.generation import Sampling, cached_sample


@torch.no_grad()
def _logprobs(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """float32 log-softmax of next-token distributions at positions 0..T-2 (predicting tokens 1..T-1)."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return torch.log_softmax(logits.float(), dim=-1)


@torch.no_grad()
def score_pair(base, tuned, prompts: list[list[int]], generated: list[list[int]], pad_id: int,
               batch_size: int = 64) -> dict[str, np.ndarray]:
    """Per-sequence sums over generated positions: sequence MC, exact (RB) KL, and token counts."""
    device = next(base.parameters()).device
    mc, rb, n = [], [], []
    for s in range(0, len(generated), batch_size):
        P, G = prompts[s:s + batch_size], generated[s:s + batch_size]
        rows = [p + g for p, g in zip(P, G)]
        ids, attn = pad(rows, pad_id)
        scored = torch.zeros((len(rows), ids.shape[1] - 1), dtype=torch.bool)
        for i, (p, r) in enumerate(zip(P, rows)):
            scored[i, len(p) - 1:len(r) - 1] = True   # positions whose next token is a generated one
        ids, attn, scored = ids.to(device), attn.to(device), scored.to(device)
        lp0, lp1 = _logprobs(base, ids, attn), _logprobs(tuned, ids, attn)
        tok = ids[:, 1:].unsqueeze(-1)
        log_ratio = lp0.gather(-1, tok).squeeze(-1) - lp1.gather(-1, tok).squeeze(-1)
        exact = F.kl_div(lp1, lp0, log_target=True, reduction="none").sum(-1)
        m = scored.to(torch.float64)
        mc.append((log_ratio.double() * m).sum(1).cpu())
        rb.append((exact.double() * m).sum(1).cpu())
        n.append(m.sum(1).cpu())
    return {"sequence": torch.cat(mc).numpy(), "token_exact": torch.cat(rb).numpy(),
            "tokens": torch.cat(n).numpy()}


def base_samples(handle, settings: KLSettings) -> tuple[list[list[int]], list[list[int]]]:
    prompts = [[handle.start_token_id]] * settings.samples
    gen = cached_sample(handle, prompts, Sampling(1.0, settings.max_new_tokens, settings.batch_size),
                        settings.seed, desc="KL samples from base")
    return prompts, gen


def target_samples(handle, texts: list[str], chat: bool,
                   settings: KLSettings) -> tuple[list[list[int]], list[list[int]]]:
    """One base response to each of `settings.target_prompts` held-out target prompts (a fixed draw per seed)."""
    keep = sorted(random.Random(f"{settings.seed}:target-prompts").sample(range(len(texts)),
                                                                          min(settings.target_prompts, len(texts))))
    prompts = [encode_prompt(handle.tokenizer, texts[i], chat) for i in keep]
    gen = cached_sample(handle, prompts, Sampling(1.0, settings.max_new_tokens, settings.batch_size),
                        settings.seed, desc="KL samples on target prompts")
    return prompts, gen


def estimate(base_handle, tuned_model, settings: KLSettings, *, target: tuple[list[str], bool] | None = None,
             ) -> tuple[dict, list[dict]]:
    """KL(base || tuned): the record's section (estimates with SEs, the sampling settings) and its per-sequence
    rows for the per-item file, from which the section is computed (records.aggregate). Context-free by default;
    with `target` = (held-out prompts, chat format), on the target's prompts."""
    if target is None:
        prompts, gen = base_samples(base_handle, settings)
        task, facts = KL_TASK, {"samples": settings.samples, "start_token_id": base_handle.start_token_id}
    else:
        prompts, gen = target_samples(base_handle, *target, settings)
        task, facts = KL_TARGET_TASK, {"prompts": len(prompts), "of": len(target[0])}
    scores = score_pair(base_handle.model, tuned_model, prompts, gen, base_handle.tokenizer.pad_token_id,
                        settings.batch_size)
    ends = (base_handle.eos_token_id, *base_handle.document_ends)
    rows = kl_rows(scores, [bool(g) and g[-1] in ends for g in gen], task)
    return kl_summary(rows) | {
        "settings": {**facts, "max_new_tokens": settings.max_new_tokens, "temperature": 1.0, "top_k": 0,
                     "top_p": 1.0, "seed": settings.seed}}, rows
