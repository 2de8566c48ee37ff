"""The reasoning problems forgetbench scores itself (GSM8K, MATH-500, AIME, AMC, GPQA-Diamond), from --data-dir
or the hub, as {"question", "answer", "response"} items."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from forgetbench.core.errors import UserError
from forgetbench.task import hub_available


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def hub_rows(repo: str, split: str, config: str | None = None) -> list[dict]:
    if not hub_available():
        raise UserError(f"{repo} is on the Hugging Face hub and datasets are offline; pass --data-dir with a "
                        "local copy or set HF_DATASETS_OFFLINE=0 with network access.")
    import datasets
    return list(datasets.load_dataset(repo, config, split=split))


def _number(x) -> str:
    """27.0 -> '27' (AMC answers are stored as floats)."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def gsm8k_solution(answer: str) -> tuple[str, str]:
    """GSM8K's worked answer without calculator notes, ending in a boxed final answer; and that answer."""
    body, _, final = answer.rpartition("####")
    final = final.strip().replace(",", "")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f"{body}\nThe final answer is $\\boxed{{{final}}}$.", final


def gsm8k_problems(split: str):
    def load(data_dir: Path | None) -> list[dict]:
        rows = (read_jsonl(data_dir / "gsm8k" / f"{split}.jsonl") if data_dir
                else hub_rows("openai/gsm8k", split, "main"))
        out = []
        for r in rows:
            response, final = gsm8k_solution(r["answer"])
            out.append({"question": r["question"], "answer": final, "response": response})
        return out
    return load


def file_problems(folder: str, hub: tuple[str, str], question: str = "problem", answer: str = "answer"):
    def load(data_dir: Path | None) -> list[dict]:
        rows = read_jsonl(data_dir / folder / "test.jsonl") if data_dir else hub_rows(*hub)
        return [{"question": r[question], "answer": _number(r[answer]), "response": r.get("solution", "")}
                for r in rows]
    return load


def gpqa_problems(data_dir: Path | None) -> list[dict]:
    """GPQA-Diamond (hub only, gated): options shuffled once with a fixed seed, answered with a letter."""
    rows = hub_rows("Idavidrein/gpqa", "train", "gpqa_diamond")
    out = []
    for i, r in enumerate(rows):
        options = [r["Correct Answer"], r["Incorrect Answer 1"], r["Incorrect Answer 2"], r["Incorrect Answer 3"]]
        order = random.Random(f"gpqa:{i}").sample(range(4), 4)
        letters = ("A", "B", "C", "D")
        body = "\n".join(f"{letters[j]}. {options[k].strip()}" for j, k in enumerate(order))
        out.append({"question": f"{r['Question'].strip()}\n\n{body}\n\nAnswer with the letter of the correct option.",
                    "answer": letters[order.index(0)], "response": "", "letters": letters})
    return out
