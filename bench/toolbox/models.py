"""Loading a base model: a local folder (safetensors), a GGUF file, or a hub id; the handle the engine uses.

Weights load in float32 on CPU and bfloat16 on a GPU unless `device` / `dtype` say otherwise.
GGUF files are dequantised on load (transformers' `gguf_file` support) and the dequantised weights are
cached as safetensors, keyed by the file's content hash, so later runs load in seconds. A model folder in the
cache (`load_cached`) is sealed with the content hash of its files when built and rebuilt if they no longer
have it, so damaged cached weights never reach a run.

Whether the model's inputs begin with a BOS token is the model's own convention, read from its metadata when it
loads (`bos_convention`: a GGUF's `tokenizer.ggml.add_bos_token`, else what its tokenizer files say), kept on the
handle (`adds_bos`, `adds_bos_reason`), and made what its tokenizer does (`follow_bos`): training examples, KL's
prompts and lm-eval's inputs (add_bos_token) all encode through that tokenizer, so they all agree with it.
"""

from __future__ import annotations

import copy
import functools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from forgetbench.core.errors import UserError
from forgetbench.core.store import hash_files
from forgetbench.toolbox.device import Placement

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
    adds_bos: bool                 # the model's inputs begin with its BOS token (bos_convention); its tokenizer
    adds_bos_reason: str           # prepends one exactly then (follow_bos)
    device: str = "cpu"
    dtype: str = "float32"
    # Fresh documents from the model's pretraining distribution, where its source knows them: (n, seed) -> texts.
    pretraining_docs: Callable[[int, int], list[str]] | None = None

    @property
    def eos_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def document_ends(self) -> tuple[int, ...]:
        """End tokens of a sampled document besides EOS: the start token when it is a document separator (it
        ends one document as it begins the next; SmolLM2's <|endoftext|>, whose EOS is the chat's <|im_end|>).
        A BOS begins documents and never ends one."""
        separator = self.start_token_id not in (self.eos_token_id, self.tokenizer.bos_token_id)
        return (self.start_token_id,) if separator else ()

    def frozen_copy(self) -> torch.nn.Module:
        m = copy.deepcopy(self.model).eval()
        for p in m.parameters():
            p.requires_grad_(False)
        return m

    def trainable_copy(self) -> torch.nn.Module:
        return trainable_copy(self.model)


def trainable_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in training mode with every parameter trainable (a method's `trainable` then narrows it)."""
    m = copy.deepcopy(model)
    m.train()
    for p in m.parameters():
        p.requires_grad_(True)
    return m


def start_token(tokenizer, override: str | None = None) -> tuple[int, str]:
    """BOS when the tokenizer has one, else its end-of-text / document separator; an alias may name one."""
    if override is not None:
        tid = tokenizer.convert_tokens_to_ids(override)
        if tid is None or tid == tokenizer.unk_token_id and override != tokenizer.unk_token:
            raise UserError(f"The start token {override!r} is not in the model's vocabulary.")
        return tid, f"{override!r}, the model's pretraining document separator"
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id, f"bos {tokenizer.bos_token!r}"
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id, f"eos {tokenizer.eos_token!r} (the tokenizer has no BOS)"
    raise UserError("The model's tokenizer has neither a BOS nor an EOS token, so context-free sampling "
                    "has no start token.")


def tokenizer_adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts its BOS first when it encodes a text with its special tokens: what it does (its
    post-processor; a tokenizer built from vocabulary files, its add_bos_token), not what an attribute claims (in
    transformers 5 a tokenizer.json's post-processor decides, and `add_bos_token` may say False beside one that
    prepends a BOS, as the micro model's does)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return ids[:1] == [bos] and tokenizer("a", add_special_tokens=False)["input_ids"][:1] != [bos]


def tokenizer_bos(tokenizer) -> tuple[bool, str]:
    """The BOS convention a tokenizer's own files state, with what states it."""
    if tokenizer.bos_token_id is None:
        return False, "the tokenizer has no BOS token"
    adds = tokenizer_adds_bos(tokenizer)
    said = tokenizer.init_kwargs.get("add_bos_token")   # kept only without a tokenizer.json (transformers drops it)
    where = (f"its tokenizer config's add_bos_token = {str(said).lower()}" if said is not None and bool(said) == adds
             else "its post-processor")
    return adds, f"the tokenizer {'prepends' if adds else 'adds no'} BOS {tokenizer.bos_token!r} ({where})"


def gguf_bos(path: Path) -> tuple[bool, str] | None:
    """The BOS convention a GGUF file states (`tokenizer.ggml.add_bos_token`, what llama.cpp follows), or None
    where it has no such key."""
    stat = Path(path).stat()
    flag = _gguf_flag(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, "tokenizer.ggml.add_bos_token")
    return None if flag is None else (flag, f"the GGUF's tokenizer.ggml.add_bos_token = {str(flag).lower()}")


@functools.lru_cache(maxsize=16)
def _gguf_flag(path: str, size: int, mtime_ns: int, key: str) -> bool | None:
    """A boolean metadata key of a GGUF file (reading its header takes seconds: cached per file; its size and
    modification time are in the key, so that a changed file is read again)."""
    from gguf import GGUFReader
    field = GGUFReader(path).fields.get(key)
    return None if field is None else bool(field.parts[field.data[0]][0])


def bos_convention(load_tokenizer: Callable[[], object], gguf: Path | None = None) -> tuple[bool, str]:
    """Whether the model's inputs begin with a BOS token, and what says so: a GGUF's own flag where the model is
    one and has it, else its tokenizer's files (`load_tokenizer()` gives that tokenizer, called only when needed).
    One rule for loading a model (its handle) and for planning a run without loading one (model_sources)."""
    stated = gguf_bos(gguf) if gguf is not None else None
    return stated if stated is not None else tokenizer_bos(load_tokenizer())


def follow_bos(tokenizer, adds: bool) -> None:
    """Make the tokenizer prepend its BOS exactly when `adds` says, so that everything encoded with it follows the
    model's convention (a GGUF's flag can differ from the tokenizer files beside it)."""
    if tokenizer_adds_bos(tokenizer) == adds:
        return
    tokenizer.add_bos_token = adds          # its setter rebuilds a tokenizer.json's post-processor
    if tokenizer_adds_bos(tokenizer) != adds:
        raise UserError(f"The model's tokenizer cannot be made to {'prepend' if adds else 'leave out'} its BOS "
                        f"token {tokenizer.bos_token!r}, as the model's metadata says it should.")


def _finish(name: str, model, tokenizer, files: list[Path], root: Path | None, placement: Placement,
            start: str | None) -> ModelHandle:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device, dtype = placement.resolved()
    model.to(device=device, dtype=getattr(torch, dtype)).eval()
    sid, why = start_token(tokenizer, start)
    adds, reason = bos_convention(lambda: tokenizer)
    return ModelHandle(name, model, tokenizer, hash_files(files, root), sid, why, adds, reason, device=device,
                       dtype=dtype)


def model_files(path: Path) -> list[Path]:
    """The files a model folder's content hash covers: its safetensors weights and its configuration and
    tokenizer files."""
    return sorted(path.glob("*.safetensors")) + sorted(p for p in path.iterdir()
                                                       if p.suffix in {".json", ".model", ".txt", ".jinja"})


def load_folder(path: Path, name: str | None = None, placement: Placement = Placement(),
                start: str | None = None) -> ModelHandle:
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        raise UserError(f"The model folder {path} has no *.safetensors weights (found: {found}). "
                        "forgetbench loads weights from safetensors or GGUF only, never from pickles.")
    trust = placement.trust_remote_code
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, trust_remote_code=trust,
                                                     dtype=getattr(torch, placement.resolved()[1]),
                                                     **placement.pretrained_kwargs())
    except TypeError as e:                      # a --model-args key from_pretrained does not take
        raise UserError(f"--model-args {dict(placement.model_args)}: {e}") from None
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as e:
        raise UserError(f"Could not load the model folder {path} (unreadable or corrupt): {e}") from None
    if placement.adapter:
        model = _merge_adapter(model, Path(placement.adapter))
    # the folder's own content hash (its seal in the cache); resolve_model folds in the adapter and other args
    return _finish(name or str(path), model, tokenizer, model_files(path), path, placement, start)


def adapter_files(folder: Path) -> list[Path]:
    if not (folder / "adapter_config.json").is_file():
        raise UserError(f"--model-args peft={folder}: no adapter_config.json there (a PEFT adapter folder).")
    return sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".json"})


def _merge_adapter(model, folder: Path):
    """A PEFT adapter (e.g. LoRA) merged into the model: plain weights again, as the methods leave them."""
    adapter_files(folder)
    from peft import PeftModel
    try:
        return PeftModel.from_pretrained(model, folder).merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"--model-args peft={folder}: could not load the adapter: {e}") from None


def _gguf_tokenizer(path: Path):
    """The tokenizer for a GGUF file: the folder's tokenizer files when present, else the GGUF's own
    vocabulary with its special tokens and chat template (transformers leaves those unset)."""
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    if (path.parent / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(path.parent)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    fields = GGUFReader(path).fields

    def value(key):
        f = fields.get(key)
        return None if f is None else f.parts[f.data[0]]

    for attr, key in (("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"),
                      ("pad_token", "padding")):
        tid = value(f"tokenizer.ggml.{key}_token_id")
        if tid is not None:
            setattr(tok, attr, tok.convert_ids_to_tokens(int(tid[0])))
    template = value("tokenizer.chat_template")
    if template is not None:
        tok.chat_template = bytes(template).decode()
    return tok


def load_gguf(path: Path, placement: Placement = Placement(), start: str | None = None,
              name: str | None = None) -> ModelHandle:
    """Dequantise once, cache as a safetensors folder keyed by the GGUF's content hash, load from there."""
    from forgetbench.core.store import cache_dir

    digest = hash_files([path], path.parent)
    folder = cache_dir() / "gguf" / f"{path.stem}-{digest}"
    handle = load_cached(folder, lambda tmp: _dequantise(path, tmp), name=name or str(path), placement=placement,
                         start=start)
    handle.fingerprint = digest   # the GGUF's content, not the cache's re-serialisation
    # the cached folder's tokenizer gave the handle its own convention; the GGUF's flag, where it has one, decides
    handle.adds_bos, handle.adds_bos_reason = bos_convention(lambda: handle.tokenizer, gguf=path)
    follow_bos(handle.tokenizer, handle.adds_bos)
    return handle


def load_cached(folder: Path, build: Callable[[Path], None], *, name: str, placement: Placement,
                start: str | None = None) -> ModelHandle:
    """A model folder in the cache: built once (one process builds, others wait; `build(tmp)` writes the files),
    sealed with the content hash of its files, and used only while its files still have that hash; a folder
    that is unsealed (older forgetbench, or killed mid-build) or damaged is rebuilt, with a warning."""
    from forgetbench.core.store import locked, sealed_digest, warn

    with locked(folder):
        if sealed_digest(folder) is None:
            _build_sealed(folder, build)
    handle = _load_sealed(folder, name, placement, start)
    if handle is not None:
        return handle
    with locked(folder):
        handle = _load_sealed(folder, name, placement, start)      # another process may have rebuilt it meanwhile
        if handle is None:
            warn(f"the cached model {folder} does not match its seal (damaged or missing files); rebuilding it")
            _build_sealed(folder, build)
            handle = _load_sealed(folder, name, placement, start)
    if handle is None:
        raise UserError(f"The cached model {folder} changed while it was loaded; is another process writing it?")
    return handle


def _load_sealed(folder: Path, name: str, placement: Placement, start: str | None) -> ModelHandle | None:
    """The folder's model if its files (hashed as they load) have the content hash it was sealed with, else None."""
    from forgetbench.core.store import sealed_digest

    try:
        handle = load_folder(folder, name, placement=placement, start=start)
    except UserError:                    # files missing or unreadable
        return None
    return handle if handle.fingerprint == sealed_digest(folder) else None


def _build_sealed(folder: Path, build: Callable[[Path], None]) -> None:
    from forgetbench.core.store import atomic_dir, seal

    shutil.rmtree(folder, ignore_errors=True)     # under the lock: nobody else builds it meanwhile
    with atomic_dir(folder) as tmp:
        build(tmp)
        seal(tmp, hash_files(model_files(tmp), tmp))


def _dequantise(path: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM

    log.info("dequantising %s (once; cached)", path)
    try:
        tokenizer = _gguf_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
        raise UserError(f"Could not load the GGUF file {path}: {e}") from None
    model.hf_quantizer = None        # dequantised already: plain float32 weights from here on
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def load_hub(repo: str, placement: Placement, name: str, start: str | None = None) -> ModelHandle:
    from forgetbench.core.hub import offline
    try:
        from huggingface_hub import snapshot_download
        local = snapshot_download(repo, revision=placement.pretrained_kwargs().get("revision"),
                                  allow_patterns=["*.safetensors", "*.json", "*.model", "*.txt", "*.jinja"])
    except Exception as e:  # noqa: BLE001 - the hub client raises many kinds; all mean "not available"
        raise UserError(f"Could not fetch the model {repo!r} from the Hugging Face hub ({type(e).__name__}"
                        f"{'; offline mode is on: set HF_HUB_OFFLINE=0 to go online' if offline() else ''}). "
                        "Offline, pass a local folder or a .gguf file instead.") from None
    return load_folder(Path(local), name=name, placement=placement, start=start)

