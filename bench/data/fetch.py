"""`bench data fetch [NAME ...] --to DIR`: build a local data folder in the layout the tasks read.

Each file a registered task reads has one registered `DataSource`: a pinned file at a URL, written only when its
sha256 is the pinned one (so a fetched folder holds exactly the bytes the published runs read), or a hub dataset's
rows written in the task's layout. Every file written is recorded, with its sha256 and origin, in DIR/FETCHED.json
as soon as it is written; a file already there and whole (the pinned digest, or the recorded one) is kept, a file
there with other bytes is left alone and reported, and a hub file put there by other means is kept as it is
(nothing to check it against). An interrupted fetch resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forgetbench.core.errors import UserError, did_you_mean
from forgetbench.core.store import atomic_write_bytes, atomic_write_json
from forgetbench.data.check import needs
from forgetbench.task import DataSource, data_sources, hub_available

MANIFEST = "FETCHED.json"


@dataclass
class Outcome:
    path: str
    status: str          # kept | fetched | failed
    detail: str


def select(names: list[str]) -> list[DataSource]:
    """The sources of every file the named suites, tasks, targets or corpora read (no names: every file), by path.
    A name that reads no file is a UserError."""
    wanted = needs()
    if names:
        known = set().union(*(n.names for n in wanted))
        for name in names:
            if name not in known:
                raise UserError(f"No suite, task, target or corpus named {name!r} reads local data."
                                f"{did_you_mean(name, known)} Those that do: {', '.join(sorted(known))}.")
        wanted = [n for n in wanted if n.names & set(names)]
    sources = data_sources.items()
    chosen = {s.path: s for n in wanted for p, s in sources if p == n.path or p.startswith(n.path + "/")}
    return [chosen[p] for p in sorted(chosen)]


def check_reachable(sources: list[DataSource]) -> None:
    """Hub sources need the hub online: a UserError, before anything is fetched, naming what comes from it."""
    hub = [s for s in sources if s.hub]
    if hub and not hub_available():
        raise UserError("Datasets are offline (HF_DATASETS_OFFLINE=1; forgetbench's default), and these files come "
                        "from the Hugging Face hub: " + "; ".join(f"{s.path} ({s.origin})" for s in hub) + ". Set "
                        "HF_DATASETS_OFFLINE=0 with network access, or name only the tasks you need.")


def fetch(sources: list[DataSource], folder: Path, log: Callable[[str], None] = print) -> list[Outcome]:
    """Each source's file into `folder` (see the module's docstring); one line logged per file."""
    manifest = _read_manifest(folder)
    outcomes = []
    for i, source in enumerate(sources, 1):
        outcome = _one(source, folder, manifest)
        outcomes.append(outcome)
        log(f"[{i}/{len(sources)}] {outcome.status} {outcome.path}: {outcome.detail}")
    return outcomes


def _one(source: DataSource, folder: Path, manifest: dict) -> Outcome:
    where = folder / source.path
    expected = source.sha256 or manifest.get(source.path, {}).get("sha256")
    if where.is_file():
        digest = _sha256(where.read_bytes())
        if digest == expected:
            return Outcome(source.path, "kept", f"already there, sha256 {digest[:12]}")
        if expected is None:      # a hub file put there by someone else: nothing to check it against, so trusted
            return Outcome(source.path, "kept", f"already there, sha256 {digest[:12]} (not fetched here: unchecked)")
        return Outcome(source.path, "failed", f"already there with other bytes (sha256 {digest[:12]}, not "
                       f"{expected[:12]}); left alone: move it away to fetch it")
    try:
        data = _download(source.url) if source.url else source.write(_hub_rows(source.hub))
    except Exception as e:  # noqa: BLE001 - urllib, the hub and datasets fail in many kinds; each fails one file
        return Outcome(source.path, "failed", f"cannot fetch {source.origin} ({type(e).__name__}: {e})")
    digest = _sha256(data)
    if source.sha256 and digest != source.sha256:
        return Outcome(source.path, "failed", f"{source.url} has other bytes than the pinned file (sha256 "
                       f"{digest[:12]}, pinned {source.sha256[:12]}); nothing written")
    atomic_write_bytes(where, data)
    manifest[source.path] = {"sha256": digest, "bytes": len(data), "source": source.origin}
    atomic_write_json(folder / MANIFEST, manifest)
    return Outcome(source.path, "fetched", f"{len(data) / 1e6:.1f} MB, sha256 {digest[:12]}, from {source.origin}")


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def _hub_rows(hub: tuple) -> list[dict]:
    import datasets
    repo, config, split = hub
    return list(datasets.load_dataset(repo, config, split=split))


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        raise UserError(f"{path} is not JSON: move it away (the files it recorded are then checked against "
                        "their pinned digests, or fetched again).") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
