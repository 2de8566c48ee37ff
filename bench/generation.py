"""Sampling from a model with HF generate: batched, seeded, cached by content.

Samples are exactly from the model's distribution at the given temperature: no top-k, no top-p, no
repetition penalty, whatever the model's own generation_config says.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from bench.store import JsonCache, stable_hash


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    max_new_tokens: int = 48
    batch_size: int = 64

    def to_dict(self) -> dict:
        return asdict(self) | {"top_k": 0, "top_p": 1.0}


def cut_at_eos(ids: list[int], eos: int) -> list[int]:
    """Generated ids up to and including the first EOS (pad may equal EOS, so never mask by pad id)."""
    return ids[: ids.index(eos) + 1] if eos in ids else ids


@torch.no_grad()
def sample(model, prompts: list[list[int]], sampling: Sampling, seed: int, eos_id: int, pad_id: int,
           desc: str = "sampling") -> list[list[int]]:
    """One continuation per prompt (token ids of the generated part only)."""
    from transformers import GenerationConfig

    cfg = GenerationConfig(do_sample=True, temperature=sampling.temperature, top_k=0, top_p=1.0,
                           max_new_tokens=sampling.max_new_tokens, eos_token_id=eos_id, pad_token_id=pad_id,
                           repetition_penalty=1.0)
    device = next(model.parameters()).device
    model.eval()
    out: list[list[int]] = []
    bs = sampling.batch_size
    for b, start in enumerate(tqdm(range(0, len(prompts), bs), desc=desc, leave=False)):
        chunk = prompts[start:start + bs]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(chunk):  # left padding so every prompt ends at the same position
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        torch.manual_seed(seed * 1_000_003 + b)
        gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=cfg)
        out += [cut_at_eos(row[width:].tolist(), eos_id) for row in gen]
    return out


def cached_sample(handle, prompts: list[list[int]], sampling: Sampling, seed: int,
                  desc: str = "sampling") -> list[list[int]]:
    """`sample` from a base model, cached by (model fingerprint, prompts, settings, seed)."""
    key = stable_hash({"model": handle.fingerprint, "prompts": prompts, "sampling": sampling.to_dict(),
                       "seed": seed}, 24)
    cache = JsonCache("samples")
    hit = cache.get(key)
    if hit is not None:
        return hit
    result = sample(handle.model, prompts, sampling, seed, handle.eos_token_id,
                    handle.tokenizer.pad_token_id, desc)
    cache.put(key, result)
    return result
