"""What code ran: the forgetbench commit and the versions of the libraries that decide the numbers."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def project_commit() -> str | None:
    """The git commit of the forgetbench source that ran (with "-dirty" for uncommitted changes): the checkout
    this file is in (an editable install), else the folder a non-editable install was made from, as pip records
    it (direct_url.json: a sweep's worktree, fixed at one commit); None for a wheel from elsewhere."""
    here = Path(__file__).resolve().parents[2]            # bench/core/environment.py -> the repository
    return _git_commit(here) or _git_commit(_installed_from())


def _installed_from() -> Path | None:
    """The folder pip installed the running copy from: its own dist-info beside it in site-packages (not whatever
    `forgetbench` metadata comes first on sys.path: a build folder's egg-info in the working folder has none)."""
    import json
    site = Path(__file__).resolve().parents[2]
    for record in sorted(site.glob("forgetbench-*.dist-info/direct_url.json")):
        url = json.loads(record.read_text()).get("url", "")
        if url.startswith("file://"):
            return Path(url.removeprefix("file://"))
    return None


def _git_commit(root: Path | None) -> str | None:
    """The commit of the git checkout whose top folder is `root`, "-dirty" when tracked files differ from it."""
    if root is None:
        return None
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.split()
        if Path(top[0]).resolve() != root.resolve():
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None
    return top[1] + ("-dirty" if dirty else "")


def cpu_fields() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ("model name", "vendor_id", "cpu family", "flags", ...);
    empty where there is none."""
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, sep, v in (line.partition(":") for line in block.splitlines()) if sep}


def machine() -> str:
    """The CPU a run used and its widest vector instruction set: floating-point results can differ between
    instruction sets (the micro base pretrained on AVX2 and on AVX-512 differs in its last bits)."""
    cpu = cpu_fields()
    name, flags = cpu.get("model name") or platform.processor() or platform.machine(), set(cpu.get("flags", "").split())
    isa = next((f for f in ("avx512f", "avx2", "avx", "neon", "asimd") if f in flags), "")
    return f"{name} ({isa})" if isa else name


def versions() -> dict:
    """Taken when a run starts: the commit whose code is running, and the library versions."""
    from importlib.metadata import version  # not the modules' __version__: naming them imports nothing

    return {"forgetbench": version("forgetbench"), "commit": project_commit(), "torch": version("torch"),
            "transformers": version("transformers"), "lm_eval": version("lm_eval"),
            "python": platform.python_version(), "machine": machine()}
