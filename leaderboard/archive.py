"""A published table's runs, archived beside it: every run's record and per-item file in one compressed, byte-
reproducible file (`NAME-runs.tar.xz`), from which `bench leaderboard` re-derives the table exactly as from the runs
folder (`--runs results/NAME/NAME-runs.tar.xz`).

The base model's per-item rows are the same in every run of a track: they are stored once (`base.jsonl`), and each
run's `items.jsonl` keeps, in their place, a line `{"$base": k}` naming the k-th of them. Reading puts the very lines
back, so every per-item file is byte for byte the one its record's sha256 names, and the leaderboard checks it as it
checks a runs folder. lm-eval's own output files are not archived (the record still names their digests).
"""

from __future__ import annotations

import atexit
import io
import json
import lzma
import shutil
import tarfile
import tempfile
from pathlib import Path

from forgetbench.core.errors import UserError
from forgetbench.core.store import atomic_write_bytes

FORMAT = "forgetbench-runs-archive-1"
SUFFIX = "-runs.tar.xz"


def is_archive(path: Path) -> bool:
    return Path(path).name.endswith(SUFFIX) and Path(path).is_file()


def write_archive(folders: list[Path], path: Path, *, runs_folder: str) -> Path:
    """The runs in `folders` (run folders) as one archive at `path`: the same runs give the same bytes.
    `runs_folder`: the folder the table's Reproduce lines name (kept, so a table re-derived from here is the same)."""
    base: dict[str, int] = {}
    members: dict[str, bytes] = {}
    for folder in sorted(folders, key=lambda f: f.name):
        record = json.loads((folder / "result.json").read_text())
        members[f"runs/{folder.name}/result.json"] = (folder / "result.json").read_bytes()
        lines = (folder / record["items"]).read_bytes().decode().splitlines(keepends=True)
        members[f"runs/{folder.name}/{record['items']}"] = "".join(_shared(line, base) for line in lines).encode()
    members["base.jsonl"] = "".join(base).encode()
    manifest = {"format": FORMAT, "runs": sorted(f.name for f in folders), "lm_eval_outputs": "not archived",
                "runs_folder": runs_folder}
    members["MANIFEST.json"] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), 0, 0o644   # no time or owner: reproducible
            tar.addfile(info, io.BytesIO(members[name]))
    atomic_write_bytes(Path(path), lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    return Path(path)


def _shared(line: str, base: dict[str, int]) -> str:
    """The line itself, or for a base model's row a reference to its one stored copy."""
    if not line.startswith("{") or json.loads(line).get("model") != "base":
        return line
    index = base.setdefault(line, len(base))
    return json.dumps({"$base": index}) + "\n"


def runs_folder(path: Path) -> str:
    """The runs folder the archived table's Reproduce lines name."""
    return _manifest(_members(path), path)["runs_folder"]


def _members(path: Path) -> dict[str, bytes]:
    try:
        tar = tarfile.open(fileobj=io.BytesIO(lzma.decompress(Path(path).read_bytes())))
    except (lzma.LZMAError, tarfile.TarError, OSError) as e:
        raise UserError(f"{path} is not a runs archive ({e}).") from None
    with tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _manifest(files: dict[str, bytes], path: Path) -> dict:
    manifest = json.loads(files.get("MANIFEST.json", b"{}"))
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a runs archive of this version (format {manifest.get('format')!r}, "
                        f"expected {FORMAT!r}).")
    return manifest


def extract(path: Path, into: Path) -> Path:
    """The archive's runs as run folders under `into` (their per-item files restored byte for byte)."""
    files = _members(path)
    _manifest(files, path)
    base = files["base.jsonl"].decode().splitlines(keepends=True)
    for name, data in files.items():
        if not name.startswith("runs/") or ".." in Path(name).parts:
            continue
        target = into / Path(name).relative_to("runs")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not name.endswith("result.json"):
            data = "".join(_restored(line, base) for line in data.decode().splitlines(keepends=True)).encode()
        target.write_bytes(data)
    return into


def _restored(line: str, base: list[str]) -> str:
    if line.startswith('{"$base": '):
        return base[json.loads(line)["$base"]]
    return line


def extracted(path: Path) -> Path:
    """A temporary folder holding the archive's run folders, removed when the process ends (the runs read from it
    are published, and may be archived again, before that)."""
    folder = Path(tempfile.mkdtemp(prefix="forgetbench-archive-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return extract(path, folder)
