"""The real targets: what a run fine-tunes for (training pairs, held-out evaluation, budget)."""

from pathlib import Path

from forgetbench.core.budget import Budget
from forgetbench.task import EvalTask, Target, register_target
from forgetbench.tasks.real.answer_classes import is_number
from forgetbench.tasks.real.generated import (
    REVERSE_FILE,
    arithmetic_pairs,
    arithmetic_problems,
    questions,
    reversal_pairs,
    reversal_problems,
)
from forgetbench.tasks.real.problems import gsm8k_problems
from forgetbench.tasks.real.suites import GSM8K_TEST, MEDQA
from forgetbench.tasks.real.training_pairs import (
    gsm8k_pairs,
    gsm8k_test_prompts,
    medqa_test_prompts,
    medreason_pairs,
    metamathqa_pairs,
)

HERE = Path(__file__).parent      # the include folder of fb_medqa's YAML

GSM8K_LIKELIHOOD = EvalTask("gsm8k_loglik", "mean_logprob", hub="openai/gsm8k", needs=("gsm8k/test.jsonl",),
                            problems=gsm8k_problems("test"), scoring="likelihood", same_items_as="gsm8k")
MATH = {"budget": Budget(epochs=3, lr=2e-5, batch_size=64, scheduler="linear", warmup_ratio=0.03),
        "default_suites": ("zeroshot",), "chat": True, "answer_class": ("numbers", is_number),
        "replay_corpus": "wikitext2"}
register_target(Target(
    "gsm8k", "GSM8K: SFT on the train split (7,473), eval on test: pass@1 by generation (math-verify) and the "
    "reference solution's log-likelihood per token", (GSM8K_TEST, GSM8K_LIKELIHOOD), None, gsm8k_pairs,
    test_prompts=gsm8k_test_prompts, train_needs=("gsm8k/train.jsonl",), **MATH))
register_target(Target(
    "metamathqa", "MetaMathQA (hub; offline only with --train-file): math SFT, eval on GSM8K test",
    (GSM8K_TEST,), None, metamathqa_pairs, test_prompts=gsm8k_test_prompts, **MATH))
register_target(Target(
    "medreason", "MedReason (hub; offline only with --train-file): medical reasoning SFT, eval on MedQA",
    (MEDQA,), HERE, medreason_pairs,
    budget=Budget(epochs=3, lr=5e-6, batch_size=64, scheduler="linear", warmup_ratio=0.03),
    default_suites=("reasoning",), chat=True, replay_corpus="wikitext2", test_prompts=medqa_test_prompts))


REVERSE_WORDS = EvalTask("reverse_words", "exact_match", needs=(REVERSE_FILE,), problems=reversal_problems("test"),
                         scoring="exact")
register_target(Target(
    "reverse_words", "Reverse the word order of 4-7 English words (generated from WikiText-2 test articles, "
    "8,000 training pairs, 1,000 held-out items): a new skill, exact match", (REVERSE_WORDS,), None, reversal_pairs,
    budget=Budget(epochs=1, lr=3e-4, batch_size=8, scheduler="constant", warmup_ratio=0.0),
    default_suites=("zeroshot", "lambada"), chat=True, replay_corpus="wikitext2",
    test_prompts=questions(reversal_problems("test")), train_needs=(REVERSE_FILE,)))


ARITHMETIC = EvalTask("arithmetic", "pass@1", problems=arithmetic_problems("test"), scoring="answer")
register_target(Target(
    "arithmetic", "Sums and products of whole numbers 1-12, answered as an equation (generated; half the facts "
    "train, the other half test): facts the model knows in a format it seldom uses; math-verify",
    (ARITHMETIC,), None, arithmetic_pairs,
    budget=Budget(epochs=4, lr=3e-4, batch_size=8, scheduler="constant", warmup_ratio=0.0),
    default_suites=("zeroshot", "lambada"), chat=True, answer_class=("numbers", is_number),
    replay_corpus="wikitext2", test_prompts=questions(arithmetic_problems("test"))))
