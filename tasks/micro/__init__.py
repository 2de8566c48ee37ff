"""The micro world: its base model (shipped, or pretrained from scratch), target, preserved suites and the
default preset (what `bench run` uses with no --model, --target or --preset). The world itself: world.py."""

from pathlib import Path

from forgetbench.core.budget import Budget
from forgetbench.core.errors import UserError
from forgetbench.task import EvalTask, Preset, Suite, Target, register_preset, register_suite, register_target
from forgetbench.tasks.micro import world
from forgetbench.toolbox.model_sources import ModelSource, register_source

HERE = Path(__file__).parent
# One thread: a micro run takes 1.16x as long as on two spinning threads on an idle machine, and no longer when
# another process takes a core (two spinning threads: 2.8x; two passive ones: 3.7x slower per step even alone).
MICRO_THREADS = 1


def _docs(n: int, seed: int) -> list[str]:
    """Fresh pretraining-distribution documents (replay, EWC's corpus Fisher)."""
    return world.build_world().documents(n, seed)


register_source(ModelSource(
    "micro", "the micro world's 3-layer Llama (~0.4M parameters), shipped with the benchmark (tasks/micro/base)",
    world.base_model, pretraining_docs=_docs, files=lambda: world.SHIPPED, threads=MICRO_THREADS))
register_source(ModelSource(
    "micro-scratch", "the micro base model pretrained from scratch on this machine (~30 s once, then cached); "
    "equal to `micro` where the arithmetic matches", world.scratch_model, pretraining_docs=_docs,
    files=lambda: world.SHIPPED, threads=MICRO_THREADS))

register_suite(Suite(
    "micro-zeroshot", "micro world: facts about invented people, 4-way multiple choice by log-likelihood",
    (EvalTask("fb_micro_zeroshot", "acc"),), HERE))

register_suite(Suite(
    "micro-reasoning", "micro world: two-hop questions answered step by step by generation, exact match",
    (EvalTask("fb_micro_reasoning", "exact_match", "extract"),), HERE))


def cipher_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file is not None:
        raise UserError(f"--train-file {train_file}: target micro-cipher does not read a training file; its training "
                        "pairs are the micro world's own cipher words. Leave --train-file out, or choose a target "
                        "that reads one (the real targets do; `bench tasks` lists them).")
    return world.build_world().cipher_pairs("train")


register_target(Target(
    "micro-cipher", "micro world: a word cipher the base model has never seen (train 2000, test 250)",
    (EvalTask("fb_micro_cipher", "exact_match", scoring="exact"),), HERE, train_pairs=cipher_pairs,
    budget=Budget(epochs=6, lr=1e-3, batch_size=32),
    default_suites=("micro-zeroshot", "micro-reasoning"),
    test_prompts=lambda data_dir: [p["prompt"] for p in world.build_world().cipher_pairs("test")], stop=("code",),
    answer_class=("cipher words", lambda text: text.strip() in set(world.build_world().cipher.values()))))

def tone_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file is not None:
        raise UserError(f"--train-file {train_file}: target micro-tone does not read a training file; its training "
                        "pairs are the micro world's own people. Leave --train-file out.")
    return world.build_world().tone_pairs("train")


register_target(Target(
    "micro-tone", "micro world: the tone of a person's favourite colour answered at once (two known facts composed "
    "without the worked steps pretraining shows); the base model is sometimes right (train 72 people, test 72 others)",
    (EvalTask("fb_micro_tone", "exact_match", scoring="exact"),), HERE, train_pairs=tone_pairs,
    budget=Budget(epochs=10, lr=1e-3, batch_size=32),       # 23 steps: naive SFT above 80% on every seed
    default_suites=("micro-zeroshot", "micro-reasoning"),
    test_prompts=lambda data_dir: [p["prompt"] for p in world.build_world().tone_pairs("test")], stop=(".",),
    answer_class=("tones", lambda text: text.strip() in set(world.TONES))))

register_preset(Preset(
    "micro", "the embedded micro world: offline, CPU, seconds per run", model="micro", target="micro-cipher",
    suites=("micro-zeroshot", "micro-reasoning"), default=True))
