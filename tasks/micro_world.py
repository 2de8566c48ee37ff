"""The micro world's target and preserved suites (see bench/micro.py for the world itself)."""

from pathlib import Path

from bench.micro import build_world
from bench.task import EvalTask, Suite, Target, register_suite, register_target
from bench.budget import Budget

HERE = Path(__file__).parent / "micro"

register_suite(Suite(
    "micro-zeroshot", "micro world: facts about invented people, 4-way multiple choice by log-likelihood",
    (EvalTask("fb_micro_zeroshot", "acc"),), HERE))

register_suite(Suite(
    "micro-reasoning", "micro world: two-hop questions answered step by step by generation, exact match",
    (EvalTask("fb_micro_reasoning", "exact_match", "extract"),), HERE))

register_target(Target(
    "micro-cipher", "micro world: a word cipher the base model has never seen (train 2000, test 250)",
    (EvalTask("fb_micro_cipher", "exact_match"),), HERE,
    train_pairs=lambda data_dir, train_file: build_world().cipher_pairs("train"),
    budget=Budget(epochs=6, lr=1e-3, batch_size=32),
    default_suites=("micro-zeroshot", "micro-reasoning"),
    answer_class=("cipher words", lambda text: text.strip() in set(build_world().cipher.values()))))
