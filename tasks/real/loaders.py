"""lm-eval `custom_dataset` loaders for local files in the layout `bench data fetch` writes."""

import csv
import json
import re
from pathlib import Path

import datasets


def piqa(data_dir, **_):
    docs = [json.loads(line) for line in open(f"{data_dir}/valid.jsonl")]
    labels = [int(x) for x in open(f"{data_dir}/valid-labels.lst").read().split()]
    if len(docs) != len(labels):
        raise ValueError(f"piqa: {len(docs)} questions but {len(labels)} labels in {data_dir}")
    for d, y in zip(docs, labels):
        d["label"] = y
    return {"validation": datasets.Dataset.from_list(docs)}


def _hellaswag_text(text):
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag(path, **_):
    docs = []
    for line in open(path):
        d = json.loads(line)
        ctx = d["ctx_a"] + " " + d["ctx_b"].capitalize()
        docs.append({"query": _hellaswag_text(d["activity_label"] + ": " + ctx),
                     "choices": [_hellaswag_text(e) for e in d["endings"]], "label": int(d["label"])})
    return {"validation": datasets.Dataset.from_list(docs)}


def mmlu(data_dir, **_):
    rows = []
    for f in sorted(Path(data_dir, "test").glob("*_test.csv")):
        subject = f.name.removesuffix("_test.csv").replace("_", " ")
        with open(f, newline="") as fh:
            for r in csv.reader(fh):
                rows.append({"subject": subject, "question": r[0], "A": r[1], "B": r[2], "C": r[3], "D": r[4],
                             "answer": r[5].strip()})
    return {"test": datasets.Dataset.from_list(rows)}
