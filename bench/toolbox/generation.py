"""Generation backends: `hf` (transformers generate, default) and `vllm` (optional, GPU), one interface.

Sampling is exactly from the model's distribution at the given temperature: no top-k, no top-p, no
repetition penalty, whatever the model's own generation_config says; temperature 0 is greedy decoding.
Prompts are token ids. The hf backend sorts prompts by length so each batch pads little, decodes with
the KV cache, stops each row at EOS or a stop string, and returns continuations in the input order.
Log-probabilities for KL never come from here: scoring is always the teacher-forced path in bench/runner/kl.py.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, replace

import torch
from forgetbench.core.errors import UserError
from forgetbench.core.store import JsonCache, stable_hash
from forgetbench.toolbox.encoding import pad as pad_tokens
from tqdm.auto import tqdm


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    max_new_tokens: int = 48
    batch_size: int = 64
    also_end: tuple[int, ...] = ()     # token ids besides the tokenizer's EOS that end a sequence

    def to_dict(self) -> dict:
        out = asdict(self) | {"top_k": 0, "top_p": 1.0}
        if not self.also_end:          # absent, not empty: sample sets cached before the field existed stay valid
            del out["also_end"]
        return out


def cut_at_eos(ids: list[int], eos: int | tuple[int, ...]) -> list[int]:
    """Generated ids up to and including the first end token (pad may equal EOS, so never mask by pad id)."""
    ends = (eos,) if isinstance(eos, int) else eos
    at = next((i for i, t in enumerate(ids) if t in ends), None)
    return ids if at is None else ids[: at + 1]


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Text before the first stop string."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


class HFBackend:
    """transformers `generate`: batched, length-sorted, KV cache, seeded per batch."""

    name = "hf"

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], sampling: Sampling, seed: int, stop: tuple[str, ...] = (),
                 desc: str = "generating") -> list[list[int]]:
        from transformers import GenerationConfig

        tok = self.tokenizer
        eos, pad = (tok.eos_token_id, *sampling.also_end), tok.pad_token_id
        greedy = sampling.temperature == 0
        cfg = GenerationConfig(do_sample=not greedy, temperature=None if greedy else sampling.temperature,
                               top_k=None if greedy else 0, top_p=None if greedy else 1.0,
                               max_new_tokens=sampling.max_new_tokens, eos_token_id=list(eos), pad_token_id=pad,
                               repetition_penalty=1.0, stop_strings=list(stop) or None)
        device = next(self.model.parameters()).device
        self.model.eval()
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))   # stable: ties keep input order
        out: list[list[int] | None] = [None] * len(prompts)
        bs = sampling.batch_size
        bar = tqdm(total=len(prompts), desc=desc, leave=False, unit="seq")
        for b, start in enumerate(range(0, len(order), bs)):
            idx = order[start:start + bs]
            ids, mask = pad_tokens([prompts[i] for i in idx], pad, side="left")   # every prompt ends in one column
            width = ids.shape[1]
            torch.manual_seed(seed * 1_000_003 + b)
            gen = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                      generation_config=cfg, tokenizer=tok if stop else None)
            for i, row in zip(idx, gen):
                out[i] = cut_at_eos(row[width:].tolist(), eos)
            bar.update(len(idx))
        bar.close()
        return out


class VLLMBackend:
    """vLLM's offline `LLM` API on a GPU. An in-memory model is saved to a temporary folder first."""

    name = "vllm"

    def __init__(self, model, tokenizer, gpu_memory_utilization: float = 0.5):
        try:
            import vllm
        except ImportError:
            raise UserError("The vllm backend needs vLLM: pip install 'forgetbench[vllm]' (GPU only).") from None
        self.vllm, self.tokenizer = vllm, tokenizer
        self._dir = tempfile.TemporaryDirectory(prefix="forgetbench-vllm-")
        model.save_pretrained(self._dir.name)
        tokenizer.save_pretrained(self._dir.name)
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        self.llm = vllm.LLM(model=self._dir.name, dtype=dtype, seed=0,
                            gpu_memory_utilization=gpu_memory_utilization)

    def generate(self, prompts: list[list[int]], sampling: Sampling, seed: int, stop: tuple[str, ...] = (),
                 desc: str = "generating") -> list[list[int]]:
        from vllm.inputs import TokensPrompt

        params = [self.vllm.SamplingParams(n=1, temperature=sampling.temperature, top_p=1.0, top_k=-1,
                                           max_tokens=sampling.max_new_tokens, stop=list(stop) or None,
                                           stop_token_ids=list(sampling.also_end) or None,
                                           seed=seed * 1_000_003 + i, skip_special_tokens=False)
                  for i in range(len(prompts))]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=True)
        eos = (self.tokenizer.eos_token_id, *sampling.also_end)
        return [cut_at_eos(list(o.outputs[0].token_ids), eos) for o in outs]


def backend(name: str, model, tokenizer):
    if name == "hf":
        return HFBackend(model, tokenizer)
    if name == "vllm":
        return VLLMBackend(model, tokenizer)
    raise UserError(f"Unknown generation backend {name!r}: choose hf or vllm.")


def cached_sample(handle, prompts: list[list[int]], sampling: Sampling, seed: int,
                  desc: str = "sampling", backend_name: str = "hf") -> list[list[int]]:
    """Samples from a base model, cached by (model fingerprint, prompts, settings, seed, backend). A sample is
    a document: it also ends at the model's document separator where that is not its EOS (toolbox.models)."""
    sampling = replace(sampling, also_end=handle.document_ends)
    key = stable_hash({"model": handle.fingerprint, "prompts": prompts, "sampling": sampling.to_dict(),
                       "seed": seed, "backend": backend_name}, 24)
    return JsonCache("samples").get_or_compute(
        key, lambda: backend(backend_name, handle.model, handle.tokenizer).generate(prompts, sampling, seed, desc=desc))
