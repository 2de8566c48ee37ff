"""Training pairs of the math and medical targets (gsm8k, metamathqa, medreason) and their held-out prompts, in
the format they train in."""

from __future__ import annotations

from pathlib import Path

from forgetbench.core.errors import UserError
from forgetbench.task import hub_available
from forgetbench.tasks.real.problems import gsm8k_problems, hub_rows, read_jsonl
from forgetbench.toolbox.train_files import read_train_file

# The reasoning prompt's instruction (runner.reasoning.INSTRUCTION): the targets train in the format they are
# evaluated in. Repeated here so that registering tasks does not import torch; a test checks they are equal.
INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


def gsm8k_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file:
        return read_train_file(train_file, ("question", "answer"))
    if data_dir is None and not hub_available():
        raise UserError("Target gsm8k trains on GSM8K's train split: pass --data-dir DIR with gsm8k/train.jsonl "
                        "(`bench data fetch gsm8k --to DIR` builds one), or go online (HF_DATASETS_OFFLINE=0).")
    if data_dir is not None and not (data_dir / "gsm8k" / "train.jsonl").is_file():
        raise UserError(f"Target gsm8k needs {data_dir / 'gsm8k' / 'train.jsonl'} (GSM8K's train split).")
    return [{"prompt": p["question"] + INSTRUCTION, "response": p["response"], "answer": p["answer"]}
            for p in gsm8k_problems("train")(data_dir)]


def metamathqa_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file:
        rows = read_train_file(train_file, ("query", "response"))
    elif hub_available():
        rows = [{"prompt": r["query"], "response": r["response"]} for r in hub_rows("meta-math/MetaMathQA", "train")]
    else:
        raise UserError("Target metamathqa trains on MetaMathQA (meta-math/MetaMathQA on the hub, 395K rows), "
                        "which is not available offline: go online (HF_DATASETS_OFFLINE=0 HF_HUB_OFFLINE=0) or "
                        "pass --train-file FILE (JSON/JSONL with 'query' and 'response').")
    return [{"prompt": r["prompt"] + INSTRUCTION, "response": r["response"]} for r in rows]


def medreason_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file:
        return read_train_file(train_file, ("question", "answer"))
    if not hub_available():
        raise UserError("Target medreason trains on MedReason (UCSC-VLAA/MedReason on the hub, 32,682 rows), "
                        "which is not available offline: go online (HF_DATASETS_OFFLINE=0 HF_HUB_OFFLINE=0) or "
                        "pass --train-file FILE (JSON/JSONL with 'question' and 'answer').")
    return [medreason_pair(r) for r in hub_rows("UCSC-VLAA/MedReason", "train")]


def medreason_pair(r: dict) -> dict:
    """A MedReason row (question with its options, knowledge-graph reasoning, answer) as an SFT pair: the
    response is the reasoning followed by the answer."""
    question = r["question"] + (f"\n{r['options']}" if r.get("options") else "")
    reasoning = (r.get("reasoning") or "").strip()
    return {"prompt": question, "response": f"{reasoning}\n\nAnswer: {r['answer']}" if reasoning else r["answer"]}


def gsm8k_test_prompts(data_dir: Path | None) -> list[str]:
    """GSM8K test questions as the math targets train (question + the step-by-step instruction)."""
    return [p["question"] + INSTRUCTION for p in gsm8k_problems("test")(data_dir)]


def medqa_test_prompts(data_dir: Path | None) -> list[str]:
    """MedQA test questions with their options, as medreason trains (local file, else the hub's 4-option set)."""
    if data_dir is not None and (data_dir / "medqa" / "medqa_test.jsonl").is_file():
        rows = read_jsonl(data_dir / "medqa" / "medqa_test.jsonl")
    else:
        rows = hub_rows("GBaker/MedQA-USMLE-4-options", "test")
    return [medreason_pair({"question": r["question"], "answer": "",
                            "options": "\n".join(f"{k}. {v}" for k, v in r["options"].items())})["prompt"]
            for r in rows]
