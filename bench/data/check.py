"""`bench data check DIR`: the local data files the registered tasks read (each task's `needs`, each target's
`train_needs`, each corpus's `needs`, all relative to --data-dir), and whether DIR has each one whole.

A file is "malformed" when it cannot be what its kind says: empty, a JSONL line that is not a JSON object, JSON
that does not parse, CSV/TSV without a row, Parquet whose footer does not read, text that is not UTF-8. A folder
is checked file by file. Each present file's sha256 is listed (in full with --json), so two machines can
compare their data folders.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from forgetbench.task import corpora, data_sources, suites, targets


@dataclass
class Need:
    path: str                                     # relative to the data folder
    users: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # the suites, tasks, targets and corpora that read it


@dataclass
class Finding:
    path: str
    status: str                                   # present | missing | malformed
    detail: str
    users: list[str]
    files: dict[str, str] = field(default_factory=dict)    # relative path -> sha256, of what is present


def needs() -> list[Need]:
    """Every data path a registered suite, target or corpus reads, with who reads it, by path."""
    found: dict[str, Need] = {}

    def add(paths, user: str, *names: str) -> None:
        for p in paths:
            need = found.setdefault(p, Need(p))
            need.users.append(user)
            need.names.update(names)
    for name, s in suites.items():
        for t in s.tasks:
            add(t.needs, f"suite {name} ({t.name})", name, t.name)
    for name, t in targets.items():
        for e in t.evals:
            add(e.needs, f"target {name} ({e.name})", name, e.name)
        add(t.train_needs, f"target {name} (training)", name)
    for name, c in corpora.items():
        add(c.needs, f"corpus {name}", name)
    return [found[p] for p in sorted(found)]


def check(folder: Path) -> list[Finding]:
    pins = {p: s.sha256 for p, s in data_sources.items() if s.sha256}
    return [_finding(folder, n, pins) for n in needs()]


def _finding(folder: Path, need: Need, pins: dict[str, str]) -> Finding:
    where = folder / need.path
    if not where.exists():
        return Finding(need.path, "missing", "", need.users)
    files = sorted(p for p in where.rglob("*") if p.is_file()) if where.is_dir() else [where]
    if not files:
        return Finding(need.path, "malformed", "an empty folder", need.users)
    digests = {}
    for f in files:
        data = f.read_bytes()
        if (why := malformed(f.name, data)) is not None:
            return Finding(need.path, "malformed", f"{f.relative_to(folder)}: {why}", need.users)
        digests[str(f.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    size = sum(f.stat().st_size for f in files)
    detail = (f"{len(files)} files, {size / 1e6:.1f} MB" if where.is_dir() else
              f"{size / 1e6:.1f} MB, sha256 {next(iter(digests.values()))[:12]}")
    return Finding(need.path, "present", f"{detail}{_pinned(digests, pins)}", need.users, digests)


def _pinned(digests: dict[str, str], pins: dict[str, str]) -> str:
    """Whether the files are the pinned bytes `bench data fetch` gets (the ones the published runs read)."""
    other = [p for p, d in digests.items() if p in pins and pins[p] != d]
    if other:
        return f"; not the pinned bytes: {', '.join(other[:3])}{' ...' if len(other) > 3 else ''}"
    return ", as pinned" if any(p in pins for p in digests) else ""


def malformed(name: str, data: bytes) -> str | None:
    """Why a file's bytes cannot be what its name says it is (None: they can)."""
    if not data.strip():
        return "empty"
    suffix = Path(name).suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq
        try:
            pq.read_metadata(io.BytesIO(data))
        except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
            return f"not Parquet ({e})"
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8 text (byte {e.start})"
    if suffix == ".jsonl":
        # split at "\n" only: a JSON string may hold a raw U+2028, which str.splitlines would cut at
        for i, line in enumerate(text.split("\n"), 1):
            if line.strip() and not isinstance(_json(line), dict):
                return f"line {i} is not a JSON object"
    elif suffix == ".json" and _json(text) is None:
        return "not JSON"
    elif suffix in (".csv", ".tsv") and not list(csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv"
                                                             else ",")):
        return "no rows"
    return None


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
