"""Files: the cache directory, atomic writes, content hashes, and reading records back safely."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.errors import UserError


def cache_dir() -> Path:
    root = os.environ.get("FORGETBENCH_CACHE") or Path.home() / ".cache" / "forgetbench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def stable_hash(obj: Any, n: int = 16) -> str:
    """sha256 of the canonical JSON form of obj, truncated to n hex digits."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def hash_files(paths: list[Path], root: Path | None = None) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root) if root else p.name).encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary sibling and rename: readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # what a plain open() would give (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file we wrote; a corrupt or truncated one is a clear UserError naming the file."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserError(f"The {what} {path} does not exist.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"The {what} {path} is corrupt or truncated ({e}). Delete it and run again; "
                        f"it will be recomputed.") from None


@contextlib.contextmanager
def atomic_dir(final: Path):
    """Yield a temporary sibling folder; rename it to `final` only if the block completes."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def locked(path: Path):
    """An inter-process lock beside `path` (`path.lock`): processes that share a cache compute an entry once,
    the others wait for it and then read it."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


class JsonCache:
    """A folder of JSON values addressed by a key; values are written atomically."""

    def __init__(self, name: str):
        self.root = cache_dir() / name

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> Any | None:
        p = self.path(key)
        return read_json(p, "cached file") if p.exists() else None

    def put(self, key: str, value: Any) -> None:
        atomic_write_text(self.path(key), json.dumps(value, separators=(",", ":")))

    def get_or_compute(self, key: str, compute) -> Any:
        """The cached value, or `compute()`'s, computed by one process at a time (others wait, then read it)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        with locked(self.path(key)):
            hit = self.get(key)             # another process may have written it while this one waited
            if hit is None:
                hit = compute()
                self.put(key, hit)
        return hit
