"""Base models by name: registered sources (`micro`, `smollm2-135m`, ... defined in `tasks/`), else a local
folder, a GGUF file, or a hub id. Importable without torch: models load only when asked for."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forgetbench.core import threads
from forgetbench.core.errors import UserError, did_you_mean
from forgetbench.core.hub import in_hub_cache, offline
from forgetbench.core.registry import Registry

if TYPE_CHECKING:
    from forgetbench.toolbox.device import Placement
    from forgetbench.toolbox.models import ModelHandle


@dataclass(frozen=True)
class ModelSource:
    """A base model known by a short name (a registry entry in `tasks/`): how it loads, and what it is."""

    name: str
    description: str
    load: Callable[[Placement], ModelHandle]
    hub: str | None = None          # its hub id, where it has one
    # (n, seed) -> fresh documents from its pretraining distribution, where that is known (replay, EWC)
    pretraining_docs: Callable[[int, int], list[str]] | None = None
    # where its files are, without loading them: a folder, a .gguf file, or a hub id (for its architecture)
    files: Callable[[], Path | str] | None = None
    threads: int | None = None      # CPU threads it runs fastest with, when fewer than the cores (core.threads)


sources: Registry[ModelSource] = Registry("model", "forgetbench.tasks")


def register_source(source: ModelSource) -> ModelSource:
    sources.add(source.name, source)
    return source


def alias(name: str, hub: str, description: str, local: tuple[Callable[[], Path | None], ...] = (),
          start: str | None = None, offline_hint: str = "") -> ModelSource:
    """A hub model with local GGUF copies tried first (offline). `start`: the context-free start token, when BOS
    is not the document separator; `offline_hint`: how to get a local copy, shown when there is none offline."""
    def load(placement: Placement) -> ModelHandle:
        from forgetbench.toolbox.models import load_gguf, load_hub
        for find in local:
            if (path := find()) is not None:
                return load_gguf(path, placement, start, name=name)
        if offline():
            raise UserError(f"Model {name!r} ({description}) has no local copy and the hub is offline. "
                            + (offline_hint or f"It is the hub model {hub}: set HF_HUB_OFFLINE=0 with network "
                               "access, or pass a local folder holding it."))
        return load_hub(hub, placement, name, start)

    def files() -> Path | str:
        return next((p for find in local if (p := find()) is not None), hub)
    return ModelSource(name, description, load, hub, files=files)


def wheel_file(dist: str, rel: str) -> Callable[[], Path | None]:
    """A finder for a file inside an installed distribution (e.g. a model shipped as a wheel)."""
    def find() -> Path | None:
        from importlib.metadata import PackageNotFoundError, distribution
        try:
            p = Path(distribution(dist).locate_file(rel))
        except PackageNotFoundError:
            return None
        return p if p.is_file() else None
    return find


def shared_file(rel: str) -> Callable[[], Path | None]:
    """A finder for a file under $FORGETBENCH_SHARED, or under a `shared` folder beside the working or project
    folder."""
    def find() -> Path | None:
        roots = [os.environ.get("FORGETBENCH_SHARED"), Path.cwd().parent / "shared",
                 Path(__file__).resolve().parents[2] / "shared"]
        for root in roots:
            if root and (Path(root) / rel).is_file():
                return Path(root) / rel
        return None
    return find


ACCEPTED = ("Accepted: a registered model name (`bench tasks` lists them), a local folder with safetensors weights, "
            "a .gguf file, or a hub id such as 'org/name'.")


def locate(name: str) -> tuple[str, ModelSource | Path | str]:
    """What a model name refers to, checked without loading anything: ("source", entry), ("gguf", file),
    ("folder", path) or ("hub", id). A name that can be none of them is a UserError."""
    if name in sources.names():
        return "source", sources.get(name)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"The GGUF file {path} does not exist.")
        return "gguf", path
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"The folder {name} holds no config.json, so it is not a model folder. {ACCEPTED}")
        return "folder", path
    if path.is_file():
        raise UserError(f"{name} is a file, not a model (a model file must be a .gguf). {ACCEPTED}")
    if os.sep in name and not path.exists() and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise UserError(f"The model folder {name} does not exist. {ACCEPTED}")
    if offline() and not in_hub_cache(name):
        raise UserError(f"Unknown model {name!r}.{did_you_mean(name, sources.names())} It is not a registered name, a "
                        "local folder or a .gguf file, and the Hugging Face hub is off (HF_HUB_OFFLINE=1, the CLI's "
                        "default) with no copy of it in the hub's cache. Pass a local model folder (saved with "
                        "save_pretrained) or a .gguf file, or set HF_HUB_OFFLINE=0 to download it as a hub id "
                        "('gpt2', 'org/name').")
    return "hub", name



def resolve_model(name: str, placement: Placement | None = None) -> ModelHandle:
    """Load a registered model name, a local folder, a .gguf file, or a hub id (hub ids need network access), as
    `placement` says (device, precision, from_pretrained's --model-args, a PEFT adapter merged in)."""
    from forgetbench.toolbox.device import Placement

    placement = placement or Placement()
    handle = _load(name, placement)
    if placement.model_args:            # the same weights loaded another way (or with an adapter) are another model
        from forgetbench.core.store import hash_files, stable_hash
        from forgetbench.toolbox.models import adapter_files
        adapter = hash_files(adapter_files(Path(placement.adapter))) if placement.adapter else None
        handle.fingerprint = stable_hash([handle.fingerprint, placement.model_args, adapter], 64)
    return handle


def _load(name: str, placement: Placement) -> ModelHandle:
    from forgetbench.toolbox.models import load_folder, load_gguf, load_hub

    kind, what = locate(name)
    threads.prefer(what.threads if kind == "source" else None)
    if kind == "source":
        from forgetbench.core.store import cache_dir, locked
        with locked(cache_dir() / "sources" / name):   # a source that builds its model (micro-scratch) does it once
            handle = what.load(placement)
        handle.pretraining_docs = what.pretraining_docs
        return handle
    if kind == "gguf":
        return load_gguf(what, placement)
    if kind == "folder":
        return load_folder(what, placement=placement)
    return load_hub(what, placement, what)


def bos_convention(name: str, placement: Placement | None = None) -> tuple[bool, str]:
    """Whether the named model's inputs begin with a BOS token, and what says so, from its metadata alone (a GGUF's
    header, else its tokenizer files; no weights are read): the rule its load applies
    (forgetbench.toolbox.models.bos_convention), for a run's spec before anything loads."""
    from forgetbench.toolbox import models
    from forgetbench.toolbox.device import Placement

    placement = placement or Placement()
    where = _files(name)
    path = Path(where)
    if path.suffix == ".gguf":
        return models.bos_convention(lambda: models._gguf_tokenizer(path), gguf=path)
    return models.bos_convention(lambda: _tokenizer(name, where, placement))


def _files(name: str) -> Path | str:
    """Where the named model's files are: a .gguf file, a folder, or a hub id."""
    kind, where = locate(name)
    if kind != "source":
        return where
    if where.files is None:
        raise UserError(f"Model {name!r} does not say where its files are (its ModelSource has no `files`), so its "
                        "architecture and its tokenizer are unknown before it loads.")
    return where.files()


def _tokenizer(name: str, where: Path | str, placement: Placement):
    """A model folder's or hub id's tokenizer, as its load reads it (hub ids: at the revision --model-args names)."""
    from transformers import AutoTokenizer
    revision = {} if isinstance(where, Path) else {"revision": placement.pretrained_kwargs().get("revision")}
    try:
        return AutoTokenizer.from_pretrained(str(where), trust_remote_code=placement.trust_remote_code, **revision)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"Could not read the tokenizer of model {name!r} ({where}): {e}"
                        + (" (the Hugging Face hub is off: HF_HUB_OFFLINE=0 goes online)" if offline() else "")
                        ) from None


def skeleton(name: str, trust_remote_code: bool = False):
    """The named model's architecture (parameter names and shapes) on torch's meta device: no weights are read,
    only its config (a folder's config.json, a GGUF's metadata, or the hub's config)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    where = _files(name)
    path = Path(where)
    try:
        if path.suffix == ".gguf":
            config = AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
        else:
            config = AutoConfig.from_pretrained(str(where), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"Could not read the configuration of model {name!r} ({where}): {e}") from None
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
