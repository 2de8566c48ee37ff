"""Files: the cache directory, atomic writes, content hashes, and reading records back safely.

Nothing on disk is trusted without its digest: a cache entry carries the sha256 of its content and its key,
checked on every read (a damaged entry is recomputed with a warning, never used); a cached model folder is sealed
with the content hash of its files (`seal`, checked by whoever loads it). Folders are published by renaming a
finished temporary sibling into place only when the name is free, so two processes finishing the same work
never delete each other's result, and a reader never sees a half-written folder. Temporary folders (and files)
left by a killed process are removed by the next process that writes beside them (a file: the same file).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from forgetbench.core.errors import FieldError, UserError


def warn(message: str) -> None:
    print(f"forgetbench: warning: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """$FORGETBENCH_CACHE, else forgetbench under $XDG_CACHE_HOME (~/.cache when unset)."""
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    path = Path(os.environ.get("FORGETBENCH_CACHE") or Path(xdg) / "forgetbench")
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
    """Write via a temporary sibling and rename: readers see the old file or the new one, never a part. The
    temporary file is named after its process, so a later write of the same file removes one a killed process left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, f".{glob.escape(path.name)}.*.tmp")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_owner_tag()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _normal_mode(tmp, 0o666)
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


def _normal_mode(path: Path, mode: int) -> None:
    """`mode` less the umask: what a plain open() or mkdir() would give (mkstemp and mkdtemp make 0600 / 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _owner_tag() -> str:
    """host-pid: which process a temporary folder belongs to, so a later process can tell a dead one's."""
    return f"{socket.gethostname()}-{os.getpid()}"


def remove_stale(parent: Path, pattern: str = ".*.tmp") -> list[Path]:
    """Remove the temporary folders and files under `parent` matching `pattern` that a process of this host made
    (named `<prefix>.<host>-<pid>.<random>.tmp`) and that process is gone; live processes' ones, other hosts' and
    anything else are left alone."""
    host = socket.gethostname()
    removed = []
    for p in Path(parent).glob(pattern) if Path(parent).is_dir() else []:
        rest = p.name.removesuffix(".tmp").rpartition(".")[0]           # <prefix>.<host>-<pid>
        owner, _, pid = rest.rpartition("-")
        if not owner.endswith("." + host) or not pid.isdigit() or _alive(int(pid)):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's process: alive
        return True
    return True


def same_tree(a: Path, b: Path) -> bool:
    """Whether two folders hold the same files with the same bytes."""
    files = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    if files != {p.relative_to(b) for p in b.rglob("*") if p.is_file()}:
        return False
    return hash_files([a / f for f in files], a) == hash_files([b / f for f in files], b)


@contextlib.contextmanager
def atomic_dir(final: Path):
    """Yield a temporary sibling folder; when the block completes, rename it to `final` if that name is free.
    If another process published `final` first, its folder is kept: a published folder is never deleted, so
    readers never find it missing. This one is dropped when identical, else kept beside it under a hidden name
    (named in a warning; never read as a run), so nothing computed is lost."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final.parent)                # what killed processes left beside it
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.{_owner_tag()}.", suffix=".tmp"))
    _normal_mode(tmp, 0o777)
    try:
        yield tmp
        try:
            os.rename(tmp, final)        # fails when `final` is a non-empty folder: someone published it first
        except OSError:
            if not final.is_dir():
                raise
            if not same_tree(tmp, final):
                kept = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.{_owner_tag()}.",
                                             suffix=".unpublished"))
                os.replace(tmp, kept)              # onto the empty folder just made: a name no one else has
                warn(f"{final} already exists (published by another process while this one computed it?); it is "
                     f"kept, and this process's result is in {kept}")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def scratch_dir(prefix: str, parent: Path | None = None):
    """A temporary folder (in `parent`, default the system's temporary directory) named after its process, so
    that the next one removes it if this process is killed (SIGKILL skips TemporaryDirectory's cleanup)."""
    root = Path(parent or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    remove_stale(root, f"{prefix}.*.tmp")
    return tempfile.TemporaryDirectory(dir=root, prefix=f"{prefix}.{_owner_tag()}.", suffix=".tmp")


SEAL = "forgetbench.sha256"      # a sealed folder's content hash (of the files its loader hashes)


def seal(folder: Path, digest: str) -> None:
    atomic_write_text(Path(folder) / SEAL, digest + "\n")


def sealed_digest(folder: Path) -> str | None:
    """The content hash a folder was sealed with, or None (unsealed, or the seal is unreadable)."""
    try:
        return (Path(folder) / SEAL).read_text().strip() or None
    except (OSError, UnicodeDecodeError):          # absent, not a folder, unreadable
        return None


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
    """A folder of JSON values addressed by a key. An entry is one header line (its key and the sha256 of the rest)
    then the value's JSON, written atomically; an entry whose header, key or digest does not check out is logged
    and treated as absent, so it is recomputed and never used."""

    FORMAT = "forgetbench-cache/1"

    def __init__(self, name: str):
        self.root = cache_dir() / name

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str, quiet: bool = False) -> Any | None:
        p = self.path(key)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            return None
        value, why = self._verified(raw, key)
        if why and not quiet:
            warn(f"cache entry {p} is not usable ({why}); recomputing it")
        return value

    def _verified(self, raw: bytes, key: str) -> tuple[Any | None, str | None]:
        head, _, body = raw.partition(b"\n")
        try:
            header = json.loads(head)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, "no header: damaged, or written by an older forgetbench"
        if not isinstance(header, dict) or header.get("format") != self.FORMAT:
            return None, "no header: damaged, or written by an older forgetbench"
        if header.get("key") != key:
            return None, f"it holds the entry {header.get('key')!r}"
        if hashlib.sha256(body).hexdigest() != header.get("sha256"):
            return None, "its content does not match its digest"
        try:
            return json.loads(body), None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:    # only if written so: the digest matched
            return None, f"unreadable ({e})"

    def put(self, key: str, value: Any) -> None:
        body = json.dumps(value, separators=(",", ":")).encode()
        header = json.dumps({"format": self.FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()})
        atomic_write_bytes(self.path(key), header.encode() + b"\n" + body)

    def get_or_compute(self, key: str, compute) -> Any:
        """The cached value, or `compute()`'s, computed by one process at a time (others wait, then read it)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        with locked(self.path(key)):
            hit = self.get(key, quiet=True)     # another process may have written it while this one waited
            if hit is None:
                hit = compute()
                self.put(key, hit)
        return hit


def read_yaml_mapping(path: Path) -> dict:
    """A config or sweep file (YAML): a mapping of field: value, or a UserError naming the file."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as e:              # a folder, unreadable, not text
        raise UserError(f"--config {path}: cannot read it as a YAML file ({e}).") from None
    except yaml.YAMLError as e:
        raise UserError(f"--config {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path} must be a mapping of field: value (see README, Commands and Sweeps).")
    return data


def writable_folder(text: str | Path, field: str = "out", *, probe: bool = True) -> Path:
    """The folder results go to, checked before any work: a folder, or one that can be made, and writable (`probe`:
    a file written there and deleted). A result computed for an hour and then not written is lost."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise FieldError(field, "is a file; give a folder for the run folders.", value=str(text))
    if probe:
        _probe(path, field, str(text))
    return path


def _probe(folder: Path, field: str, text: str) -> None:
    """Write and delete a file in `folder`, making it for the probe and removing what the probe made: a run
    stopped by a later check leaves nothing behind (writing a result makes the folder again)."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]        # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".forgetbench-probe-"):
            pass
    except OSError as e:
        raise FieldError(field, f"cannot write there ({e.strerror or e}); give a folder you may write in, for the "
                         "run folders.", value=text) from None
    finally:
        for p in made:
            with contextlib.suppress(OSError):      # not made, or another process has written there since
                p.rmdir()
