"""The result record of `bench run`: its JSON Schema, and reading a run folder back with every check.

A record that is truncated, incomplete, from another schema version, or whose per-item file does not match
its checksum is an error naming the file: the leaderboard never skips a record silently.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.errors import UserError
from bench.store import read_json

SCHEMA_VERSION = 3

_NUM = {"type": "number"}
_STR = {"type": "string"}
_HASH = {"type": "string", "pattern": "^[0-9a-f]{16,64}$"}
_STAT = {"type": "object", "required": ["mean", "se"], "properties": {"mean": _NUM, "se": _NUM}}
_TASK = {"type": "object", "required": ["metric", "base", "tuned", "delta", "delta_se", "n"],
         "properties": {"metric": _STR, "base": _NUM, "tuned": _NUM, "delta": _NUM, "delta_se": _NUM,
                        "n": {"type": "integer", "minimum": 1}}}
_TASKS = {"type": "object", "minProperties": 1, "additionalProperties": _TASK}

RUN_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "forgetbench run record",
    "type": "object",
    "required": ["schema_version", "kind", "run_id", "spec", "provenance", "target", "suites", "kl", "training",
                 "answer_class_shift", "items", "items_sha256"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "kind": {"const": "run"},
        "run_id": _STR,
        "spec": {
            "type": "object",
            "required": ["method", "model", "target", "suites", "seed", "params", "budget", "eval", "kl", "data",
                         "placement"],
            "properties": {
                "method": _STR, "model": _STR, "target": _STR, "data": _HASH,
                "suites": {"type": "array", "items": _STR, "minItems": 1},
                "seed": {"type": "integer"}, "params": {"type": "object"}, "budget": {"type": "object"},
                "eval": {"type": "object",
                         "required": ["backend", "batch_size", "num_fewshot", "limit", "task_limits",
                                      "max_new_tokens", "temperature", "samples_per_problem", "chat_template",
                                      "lm_eval"]},
                "kl": {"type": "object", "required": ["samples", "max_new_tokens", "seed", "batch_size"]},
                "placement": {"type": "object", "required": ["device", "dtype"]},
            },
        },
        "provenance": {
            "type": "object",
            "required": ["forgetbench", "commit", "torch", "transformers", "lm_eval", "python", "base_fingerprint",
                         "device", "dtype", "generation", "tasks"],
            "properties": {
                "base_fingerprint": _HASH,
                "commit": {"type": ["string", "null"]},
                "generation": {"type": "object", "required": ["backend"]},
                "tasks": {"type": "object", "minProperties": 1,
                          "additionalProperties": {"type": "object", "required": ["content_hash", "items_hash"],
                                                   "properties": {"content_hash": _HASH, "items_hash": _HASH}}},
            },
        },
        "target": {"type": "object", "required": ["name", "task", "base", "tuned", "delta", "n", "tasks"],
                   "properties": {"name": _STR, "task": _STR, "tasks": _TASKS}},
        "suites": {"type": "object", "minProperties": 1,
                   "additionalProperties": {"type": "object", "required": ["delta", "n", "average_over", "tasks"],
                                            "properties": {"delta": _NUM, "tasks": _TASKS,
                                                           "average_over": {"type": "array", "minItems": 1}}}},
        "kl": {"type": "object", "required": ["n", "token_exact", "sequence", "settings"],
               "properties": {"token_exact": _STAT, "sequence": _STAT}},
        "training": {"type": "object",
                     "required": ["trainable_parameters", "trainable_share", "trainable_tensors", "mixture"],
                     "properties": {"trainable_share": {"type": "number", "exclusiveMinimum": 0},
                                    "trainable_tensors": {"type": "array", "items": _STR, "minItems": 1}}},
        "answer_class_shift": {"type": "object", "required": ["answer_class"],
                               "properties": {"answer_class": {"type": ["string", "null"]}, "base": _NUM,
                                              "tuned": _NUM, "delta": _NUM, "delta_se": _NUM}},
        "sweep": {"type": "object", "required": ["name", "config", "configs"]},
        "items": _STR,
        "items_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}


def items_text(items: list[dict]) -> str:
    """The per-item file's exact content (one sorted-key JSON object per line)."""
    return "".join(json.dumps(i, sort_keys=True) + "\n" for i in items)


def items_hash(rows: list[dict]) -> str:
    """Which items and prompts a task evaluated: doc ids with lm-eval's doc and prompt hashes."""
    from bench.store import stable_hash
    return stable_hash(sorted((r["doc_id"], r["doc_hash"], r["prompt_hash"]) for r in rows), 32)


def validate(record, path: Path) -> None:
    """Raise a UserError naming `path` unless `record` is a complete run record of this schema version."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    if isinstance(record, dict) and record.get("kind") == "run" and record.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"The result record {path} has schema version {record.get('schema_version')}; this "
                        f"forgetbench reads version {SCHEMA_VERSION}. Rerun it with this version.")
    err = best_match(Draft202012Validator(RUN_SCHEMA).iter_errors(record))
    if err is not None:
        kind = "incomplete" if err.validator in ("required", "minProperties", "minItems") else "invalid"
        raise UserError(f"The result record {path} is {kind} at {err.json_path}: {err.message}. It was not "
                        "written by a finished `bench run` of this version; delete the folder or rerun it.")


def load_run_folder(folder: Path) -> tuple[dict, list[dict]]:
    """A run folder's record and per-item outcomes, each checked: schema, checksum, item counts."""
    folder = Path(folder)
    path = folder / "result.json"
    record = read_json(path, "result record")
    validate(record, path)
    items_path = folder / record["items"]
    try:
        raw = items_path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"The per-item file {items_path} named by {path} is missing.") from None
    if hashlib.sha256(raw).hexdigest() != record["items_sha256"]:
        raise UserError(f"The per-item file {items_path} is corrupt: its checksum does not match {path}. "
                        "Delete the run folder and rerun it.")
    items = [json.loads(line) for line in raw.decode().splitlines()]
    counts: dict[tuple[str, str], int] = {}
    for it in items:
        counts[it["model"], it["task"]] = counts.get((it["model"], it["task"]), 0) + 1
    sections = {**record["target"]["tasks"], **{t: v for s in record["suites"].values() for t, v in s["tasks"].items()}}
    for task, sec in sections.items():
        for who in ("base", "tuned"):
            if counts.get((who, task), 0) != sec["n"]:
                raise UserError(f"The per-item file {items_path} is incomplete: {counts.get((who, task), 0)} "
                                f"{who} items for {task}, the record says {sec['n']}.")
    return record, items
