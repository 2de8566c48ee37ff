"""The Hugging Face hub for models: whether it is used, and what its local cache already holds."""

from __future__ import annotations

import os


def offline() -> bool:
    """Whether the Hugging Face hub is off for models (HF_HUB_OFFLINE set to anything but 0/false)."""
    return os.environ.get("HF_HUB_OFFLINE", "0") not in {"0", "", "false", "False"}


def in_hub_cache(repo: str) -> bool:
    """Whether a hub model's config is in the local hub cache ($HF_HUB_CACHE), so it loads offline."""
    from huggingface_hub import try_to_load_from_cache
    try:
        found = try_to_load_from_cache(repo, "config.json", cache_dir=os.environ.get("HF_HUB_CACHE"))
    except ValueError:                      # not a valid repo id
        return False
    return isinstance(found, str)
