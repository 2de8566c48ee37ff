"""The generated targets' items and training pairs: reverse_words (from WikiText-2 test articles) and arithmetic
(from nothing)."""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path

from forgetbench.core.errors import UserError
from forgetbench.tasks.real.wikitext import wikitext_articles
from forgetbench.toolbox.train_files import read_train_file

# ----------------------------------------------------------------------------------- a new skill in English
# Reversing the word order of a run of English words: a skill far from pretraining, learnt from a few hundred
# examples, checked by exact match. Runs of 4-7 consecutive alphabetic words from WikiText-2 *test* articles
# (replay draws from *valid*): the first 80% of the articles give training pairs, the rest the test items.
REVERSE_PROMPT = "Write these words in reverse order: "
REVERSE_FILE = "corpora/wikitext2/test.txt"
REVERSE_SIZES = {"train": 8000, "test": 1000}
REVERSE_LENGTHS = (4, 5, 6, 7)


def _reversal_sentences(data_dir: Path, split: str) -> list[list[str]]:
    path = data_dir / REVERSE_FILE
    if not path.is_file():
        raise UserError(f"Target reverse_words is generated from {REVERSE_FILE}: pass --data-dir DIR holding it "
                        "(`bench data fetch reverse_words --to DIR` builds one).")
    articles = wikitext_articles(path)
    cut = int(0.8 * len(articles))
    text = " ".join(articles[:cut] if split == "train" else articles[cut:])
    return [s.split() for s in re.split(r" [.!?] ", text)]


@functools.lru_cache(maxsize=4)      # a run draws the test items twice (base, tuned) and each draw reads the train runs
def _word_runs(data_dir: Path, split: str) -> dict[int, list[str]]:
    """Distinct runs of k consecutive alphabetic words (k = 4..7), by k, in a fixed order: each sentence cut
    into consecutive, non-overlapping runs of k words from its start, those of letters only kept."""
    sentences = _reversal_sentences(data_dir, split)
    return {k: sorted({" ".join(s[i:i + k]) for s in sentences for i in range(0, len(s) - k + 1, k)
                       if all(w.isalpha() and w.isascii() for w in s[i:i + k])}) for k in REVERSE_LENGTHS}


def reversal_problems(split: str):
    """A fixed, seeded draw of word runs, as many of each length, and their reversals; no test run is also a
    training run."""
    def load(data_dir: Path | None) -> list[dict]:
        if data_dir is None:
            raise UserError("Target reverse_words is generated from local text: pass --data-dir DIR holding "
                            f"{REVERSE_FILE}.")
        runs = _word_runs(data_dir, split)
        if split == "test":
            seen = {r for rs in _word_runs(data_dir, "train").values() for r in rs}
            runs = {k: [r for r in rs if r not in seen] for k, rs in runs.items()}
        rng = random.Random(f"reverse-words:{split}")
        per_length = REVERSE_SIZES[split] // len(REVERSE_LENGTHS)
        short = {k: len(rs) for k, rs in runs.items() if len(rs) < per_length}
        if short:
            raise UserError(f"{data_dir / REVERSE_FILE} yields too few {split} word runs of length "
                            f"{', '.join(f'{k} ({n} < {per_length})' for k, n in short.items())}: is it "
                            "WikiText-2's test.txt (one ' = Title = ' line per article)?")
        chosen = [r for k in REVERSE_LENGTHS for r in rng.sample(runs[k], per_length)]
        rng.shuffle(chosen)
        reversals = [" ".join(reversed(r.split())) for r in chosen]
        return [{"question": REVERSE_PROMPT + r, "answer": rev, "response": rev} for r, rev in zip(chosen, reversals)]
    return load


def reversal_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file:
        return read_train_file(train_file, ("prompt", "response"))
    return [{"prompt": p["question"], "response": p["response"]} for p in reversal_problems("train")(data_dir)]


# ------------------------------------------------------------------------------- arithmetic facts, as asked
# "What is 7 + 5?" for sums and products of whole numbers 1-12, answered "7 + 5 = 12": facts a 135M model often
# knows but seldom states that way. SmolLM2-135M-Instruct greedy is right on a third of the test facts (0.33; it
# often explains at length and loses the sum on the way) and on 0.73 when its answer is begun with "7 + 5 =" for
# it (2026-12-02, greedy, 32 new tokens, the 144 test facts): learning the format is worth ~40 points, so naive SFT
# and the on-policy methods (grpo, self_sft, rewarded from their first steps) all have something to learn.
# (Training on the bare number, "12", made it worse: 0.47 -> 0.31 on the held-out facts; the equation is its
# scratchpad.)
# Split by unordered pair and operation (7 + 5 and 5 + 7 on the same side), half to train and half to test.
# Generated: reads no data.
ARITH_OPS = {"+": lambda a, b: a + b, "times": lambda a, b: a * b}
ARITH_RANGE = range(1, 13)


def arithmetic_problems(split: str):
    def load(data_dir: Path | None) -> list[dict]:
        pairs = [(op, a, b) for op in ARITH_OPS for a in ARITH_RANGE for b in ARITH_RANGE if a <= b]
        random.Random("arithmetic").shuffle(pairs)
        half = pairs[:len(pairs) // 2] if split == "train" else pairs[len(pairs) // 2:]
        facts = sorted({(op, x, y) for op, a, b in half for x, y in ((a, b), (b, a))})
        random.Random(f"arithmetic:{split}").shuffle(facts)
        return [{"question": f"What is {a} {op} {b}?", "answer": str(ARITH_OPS[op](a, b)),
                 "response": f"{a} {op} {b} = {ARITH_OPS[op](a, b)}"} for op, a, b in facts]
    return load


def arithmetic_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file:
        return read_train_file(train_file, ("prompt", "response"))
    return [{"prompt": p["question"], "response": p["response"], "answer": p["answer"]}
            for p in arithmetic_problems("train")(data_dir)]


def questions(problems):
    """A generated target's held-out prompts: its test items' questions, as it trains."""
    return lambda data_dir: [p["question"] for p in problems(data_dir)]
