"""Distribution-shift probe: how much next-token probability a model puts on the target's answer class
(e.g. numbers for a math target) after preserved-suite prompts, base vs tuned.

Math fine-tuning can raise number-token mass on unrelated prompts, and that shift tracks held-out loss
(Zhu et al., arXiv 2510.08564, §4). The probe scores the next token
right after each prompt, one forward pass per prompt, for both models on the same prompts.
"""

from __future__ import annotations

import torch
from forgetbench.records.aggregate import probe_rows, probe_summary
from forgetbench.toolbox.encoding import pad as pad_tokens


def class_token_ids(tokenizer, predicate) -> list[int]:
    """Vocabulary ids whose decoded text the predicate accepts (special tokens excluded)."""
    special = set(tokenizer.all_special_ids)
    return [i for i in range(len(tokenizer)) if i not in special and predicate(tokenizer.decode([i]))]


def batches(lengths: list[int], *, batch_size: int, max_tokens: int) -> list[list[int]]:
    """Indices grouped shortest first, at most `batch_size` a batch and at most `max_tokens` once padded to the
    batch's longest (a long prompt does not make every short one pay its length)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < batch_size and (len(out[-1]) + 1) * lengths[i] <= max_tokens:
            out[-1].append(i)
        else:
            out.append([i])
    return out


@torch.no_grad()
def next_token_mass(model, tokenizer, prompts: list[str], ids: list[int], start_id: int,
                    batch_size: int = 32, max_tokens: int = 4096) -> list[float]:
    """Per prompt: the probability of the next token being in `ids`, float32 softmax."""
    device = next(model.parameters()).device
    encoded = []
    for p in prompts:
        toks = tokenizer(p, add_special_tokens=False)["input_ids"]
        encoded.append(toks if toks[:1] == [start_id] else [start_id] + toks)
    select = torch.tensor(ids, device=device)
    out = [0.0] * len(encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else start_id
    for chunk in batches([len(e) for e in encoded], batch_size=batch_size, max_tokens=max_tokens):
        x, mask = pad_tokens([encoded[i] for i in chunk], pad, side="left")   # every prompt ends in the last column
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        last = model(input_ids=x.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                     logits_to_keep=1).logits[:, -1].float()   # only the last position's logits
        mass = torch.softmax(last, -1)[:, select].sum(-1)
        for row, i in enumerate(chunk):
            out[i] = float(mass[row])
    return out


def answer_class_shift(base, tuned, tokenizer, prompts: dict[str, list[str]], answer_class: tuple[str, object],
                       start_id: int, per_task: int = 16) -> tuple[dict, list[dict]]:
    """The probe's record section and its per-prompt rows (from which the section is computed: records.aggregate):
    mass on the answer class before and after, over the first `per_task` prompts of each preserved task."""
    name, predicate = answer_class
    ids = class_token_ids(tokenizer, predicate)
    chosen = {t: p[:per_task] for t, p in sorted(prompts.items())}
    flat = [p for ps in chosen.values() for p in ps]
    out = {"answer_class": name, "class_tokens": len(ids), "prompts": len(flat), "per_task": per_task,
           "position": "next token after the prompt"}
    if not ids or not flat:
        return out, []
    rows = probe_rows(chosen, next_token_mass(base, tokenizer, flat, ids, start_id),
                      next_token_mass(tuned, tokenizer, flat, ids, start_id))
    return out | probe_summary(rows), rows
