"""What code ran: the forgetbench commit and the versions of the libraries that decide the numbers."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def project_commit() -> str | None:
    """The git commit of the forgetbench source that ran (with "-dirty" for uncommitted changes), or None
    outside a git checkout (an installed wheel)."""
    root = Path(__file__).resolve().parents[1]
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.split()
        if Path(top[0]).resolve() != root:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None
    return top[1] + ("-dirty" if dirty else "")


def versions() -> dict:
    """Taken when a run starts: the commit whose code is running, and the library versions."""
    from importlib.metadata import version

    import torch
    import transformers
    return {"forgetbench": version("forgetbench"), "commit": project_commit(), "torch": torch.__version__,
            "transformers": transformers.__version__, "lm_eval": version("lm_eval"),
            "python": platform.python_version()}
