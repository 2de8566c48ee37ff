"""The real preserved-capability suites: zero-shot multiple choice, reasoning, MedQA, LAMBADA, MMLU."""

from pathlib import Path

from forgetbench.task import EvalTask, Suite, register_suite
from forgetbench.tasks.real.problems import file_problems, gpqa_problems, gsm8k_problems

HERE = Path(__file__).parent      # the include folder of the fb_* YAMLs

# Metrics as in OLMo's zero-shot evaluation (the paper's OLMo-1B setting): accuracy, or accuracy with the
# log-likelihood divided by the answer's length in characters (lm-eval's acc_norm, OLMo's len_norm).
# The local forms run as fb_*; lm-eval's own definitions run (and are recorded) under their own names.
ZEROSHOT = (
    EvalTask("fb_arc_easy", "acc", hub="arc_easy", needs=("arc/arc_easy_test.llmfoundry.jsonl",)),
    EvalTask("fb_arc_challenge", "acc_norm", hub="arc_challenge", needs=("arc/arc_challenge_test.llmfoundry.jsonl",)),
    # a variant of lm-eval's boolq: llm-foundry's copy has no article titles and prefixes "Passage: "
    EvalTask("fb_boolq", "acc", hub="boolq", needs=("boolq/boolq_val.llmfoundry.jsonl",)),
    EvalTask("fb_hellaswag", "acc_norm", hub="hellaswag", needs=("hellaswag/hellaswag_val.jsonl",)),
    EvalTask("fb_openbookqa", "acc_norm", hub="openbookqa", needs=("openbookqa/openbookqa_test.llmfoundry.jsonl",)),
    EvalTask("fb_piqa", "acc_norm", hub="piqa", needs=("piqa/valid.jsonl", "piqa/valid-labels.lst")),
    EvalTask("fb_sciq", "acc", hub="sciq", needs=("sciq/test.json",)),
    EvalTask("fb_winogrande", "acc", hub="winogrande", needs=("winogrande/winogrande_dev.llmfoundry.jsonl",)),
)
register_suite(Suite("zeroshot", "ARC-E/C, BoolQ, HellaSwag, OpenBookQA, PIQA, SciQ, WinoGrande: 0-shot "
                     "multiple choice by log-likelihood (lm-eval)", ZEROSHOT, HERE))

GSM8K_TEST = EvalTask("gsm8k", "pass@1", hub="openai/gsm8k", needs=("gsm8k/test.jsonl",),
                      problems=gsm8k_problems("test"))
REASONING = (
    GSM8K_TEST,
    EvalTask("math500", "pass@1", hub="HuggingFaceH4/MATH-500", needs=("math500/test.jsonl",),
             problems=file_problems("math500", ("HuggingFaceH4/MATH-500", "test"))),
    EvalTask("aime24", "pass@1", hub="HuggingFaceH4/aime_2024", needs=("aime24/test.jsonl",),
             problems=file_problems("aime24", ("HuggingFaceH4/aime_2024", "train"))),
    EvalTask("aime25", "pass@1", hub="math-ai/aime25", needs=("aime25/test.jsonl",),
             problems=file_problems("aime25", ("math-ai/aime25", "test"))),
    EvalTask("amc23", "pass@1", hub="math-ai/amc23", needs=("amc23/test.jsonl",),
             problems=file_problems("amc23", ("math-ai/amc23", "test"), question="problem")),
    EvalTask("gpqa_diamond", "pass@1", hub="Idavidrein/gpqa",
             problems=gpqa_problems),
)
register_suite(Suite("reasoning", "GSM8K, MATH-500, AIME 24/25, AMC 23 (+ GPQA-Diamond online): step-by-step "
                     "generation with the chat template, pass@1 checked with math-verify", REASONING))

# the local file has 5 options, lm-eval's medqa_4options 4: two benchmarks, recorded under their own names
MEDQA = EvalTask("fb_medqa", "acc", hub="medqa_4options", needs=("medqa/medqa_test.jsonl",),
                 scoring="likelihood")      # lm-eval's letter log-likelihood: no completion to verify
register_suite(Suite("medqa", "MedQA-USMLE test: 0-shot multiple choice by log-likelihood of the letter",
                     (MEDQA,), HERE))
register_suite(Suite("lambada", "LAMBADA (OpenAI variant): 0-shot last-word prediction, accuracy of the greedy "
                     "word (lm-eval); general language modelling",
                     (EvalTask("fb_lambada", "acc", hub="lambada_openai",
                               needs=("lambada/lambada_openai_test.llmfoundry.jsonl",)),), HERE))
register_suite(Suite("mmlu", "MMLU test, 57 subjects as one task: 0-shot multiple choice (knowledge)",
                     (EvalTask("fb_mmlu", "acc", hub="mmlu", needs=("mmlu/test",)),), HERE))
