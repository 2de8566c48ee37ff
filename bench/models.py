"""Resolving a base model: the built-in `micro` model, a local folder, a GGUF file, or a hub id."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.errors import UserError
from bench.store import hash_files

log = logging.getLogger(__name__)


@dataclass
class ModelHandle:
    """A loaded model with what the rest of the engine needs to know about it."""

    name: str                      # what the user asked for
    model: torch.nn.Module
    tokenizer: object
    fingerprint: str               # content hash of weights + tokenizer files
    start_token_id: int            # context-free sampling starts here
    start_token_reason: str
    # For the micro world, a generator of fresh pretraining-distribution documents: (n, seed) -> texts.
    pretraining_docs: Callable[[int, int], list[str]] | None = None

    @property
    def eos_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    def frozen_copy(self) -> torch.nn.Module:
        m = copy.deepcopy(self.model).eval()
        for p in m.parameters():
            p.requires_grad_(False)
        return m

    def trainable_copy(self) -> torch.nn.Module:
        m = copy.deepcopy(self.model)
        m.train()
        for p in m.parameters():
            p.requires_grad_(True)
        return m


def start_token(tokenizer) -> tuple[int, str]:
    """BOS when the tokenizer has one, else its end-of-text / document separator."""
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id, f"bos {tokenizer.bos_token!r}"
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id, f"eos {tokenizer.eos_token!r} (the tokenizer has no BOS)"
    raise UserError("The model's tokenizer has neither a BOS nor an EOS token, so context-free sampling "
                    "has no start token.")


def _finish(name: str, model, tokenizer, files: list[Path], root: Path | None, docs=None) -> ModelHandle:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    sid, why = start_token(tokenizer)
    return ModelHandle(name, model, tokenizer, hash_files(files, root), sid, why, docs)


def load_folder(path: Path, name: str | None = None, trust_remote_code: bool = False,
                docs=None) -> ModelHandle:
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        raise UserError(f"The model folder {path} has no *.safetensors weights (found: {found}). "
                        "forgetbench loads weights from safetensors or GGUF only, never from pickles.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=torch.float32,
                                                     trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as e:
        raise UserError(f"Could not load the model folder {path} (unreadable or corrupt): {e}") from None
    files = weights + [p for p in path.iterdir() if p.suffix in {".json", ".model", ".txt", ".jinja"}]
    return _finish(name or str(path), model, tokenizer, files, path, docs)


def load_gguf(path: Path) -> ModelHandle:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
        raise UserError(f"Could not load the GGUF file {path}: {e}") from None
    return _finish(str(path), model, tokenizer, [path], None)


def resolve_model(name: str, trust_remote_code: bool = False) -> ModelHandle:
    """`micro`, a local folder, a .gguf file, or a hub id (hub ids need network access)."""
    if name == "micro":
        from bench import micro
        return micro.base_model()
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"The GGUF file {path} does not exist.")
        return load_gguf(path)
    if path.is_dir():
        return load_folder(path, trust_remote_code=trust_remote_code)
    if os.sep in name and not path.exists() and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise UserError(f"The model folder {name} does not exist. Accepted: 'micro', a local folder with "
                        "safetensors weights, a .gguf file, or a hub id such as 'org/name'.")
    if "/" not in name:
        raise UserError(f"Unknown model {name!r}. Accepted: 'micro', a local folder with safetensors "
                        "weights, a .gguf file, or a hub id such as 'org/name'.")
    try:
        from huggingface_hub import snapshot_download
        local = snapshot_download(name, allow_patterns=["*.safetensors", "*.json", "*.model", "*.txt",
                                                        "*.jinja"])
    except Exception as e:  # noqa: BLE001 - the hub client raises many kinds; all mean "not available"
        raise UserError(f"Could not fetch the model {name!r} from the Hugging Face hub "
                        f"({type(e).__name__}). Offline, pass a local folder or a .gguf file instead.") from None
    return load_folder(Path(local), name=name, trust_remote_code=trust_remote_code)
