"""Training examples: token ids plus labels (-100 where no loss is taken), and the batch collator.

A plain prompt or document begins with the model's BOS token exactly when the model's own convention says
(ModelHandle.adds_bos): encoded with its special tokens, through the tokenizer the model loaded with, which
forgetbench.toolbox.models.follow_bos makes prepend one then and only then. A rendered chat template holds its own
special tokens, so it gets none added (as transformers' apply_chat_template encodes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IGNORE = -100


def uses_chat(tokenizer, chat: bool) -> bool:
    return chat and bool(getattr(tokenizer, "chat_template", None))


def prompt_text(tokenizer, prompt: str, chat: bool) -> str:
    """A user turn of the model's chat template (with `chat`, when it has one), else the prompt itself."""
    if uses_chat(tokenizer, chat):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=False)
    return prompt


def encode_prompt(tokenizer, prompt: str, chat: bool = False) -> list[int]:
    # a rendered chat template already holds its special tokens; a plain prompt gets the tokenizer's own (its BOS
    # where the model's convention has one)
    text = prompt_text(tokenizer, prompt, chat)
    return tokenizer(text, add_special_tokens=not uses_chat(tokenizer, chat))["input_ids"]


def encode_pair(tokenizer, prompt: str, response: str, chat: bool = False) -> dict:
    """Prompt + response + EOS; loss on the response tokens (and EOS) only.

    With `chat` (and a tokenizer that has a chat template) the prompt is a user turn and the response
    the assistant's reply, ended by the template's end-of-turn (the tokenizer's EOS)."""
    p = encode_prompt(tokenizer, prompt, chat)
    r = tokenizer(response if uses_chat(tokenizer, chat) else " " + response,
                  add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return {"input_ids": p + r, "labels": [IGNORE] * len(p) + r}


def encode_text(tokenizer, text: str) -> dict:
    """A whole document with loss on every token."""
    ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    return sequence_example(ids)


def sequence_example(ids: list[int], n_prompt: int = 1) -> dict:
    """Token ids (e.g. a model sample); the first n_prompt tokens are context, the rest are learned."""
    return {"input_ids": list(ids), "labels": [IGNORE] * n_prompt + list(ids[n_prompt:])}


def truncate(example: dict, max_tokens: int) -> dict:
    return {k: v[:max_tokens] for k, v in example.items()}


def pad(rows: list[list[int]], value: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists stacked into one (rows, longest) tensor filled with `value`, and the attention mask (1 on
    real tokens). Left padding ends every row in the last column (generation, next-token probes)."""
    import torch  # here, so that encoding examples (and naming a method) does not load torch
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        cols = slice(width - len(r), width) if side == "left" else slice(0, len(r))
        ids[i, cols] = torch.tensor(r, dtype=torch.long)
        mask[i, cols] = 1
    return ids, mask


class Collator:
    """Right-pads input_ids (pad id), labels (-100) and builds the attention mask; any other field of an
    example (a number, e.g. a per-example loss weight) becomes a float tensor of the batch."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        ids, mask = pad([r["input_ids"] for r in rows], self.pad_id)
        labels, _ = pad([r["labels"] for r in rows], IGNORE)
        import torch
        extra = {k: torch.tensor([float(r[k]) for r in rows]) for k in rows[0] if k not in ("input_ids", "labels")}
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, **extra}
