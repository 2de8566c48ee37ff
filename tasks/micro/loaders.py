"""lm-eval `custom_dataset` loaders for the micro world (resolved relative to this folder)."""

import datasets
from forgetbench.tasks.micro.world import build_world


def _split(rows):
    return {"test": datasets.Dataset.from_list(rows)}


def zeroshot(world_seed=0, **_):
    return _split(build_world(world_seed).zeroshot_items())


def reasoning(world_seed=0, **_):
    return _split(build_world(world_seed).reasoning_items())


def cipher(world_seed=0, **_):
    return _split(build_world(world_seed).cipher_pairs("test"))


def tone(world_seed=0, **_):
    return _split(build_world(world_seed).tone_pairs("test"))


def exact(doc, results):
    """process_results: the target's verifier (toolbox.verify, "exact") on the completion, as rewards and filters
    check it."""
    from forgetbench.toolbox.verify import verify
    return {"exact_match": float(verify("exact", results[0], {"answer": doc["response"]}))}
