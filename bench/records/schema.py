"""The result record of `bench run` (and of `bench eval --out`, an outside checkpoint kept as a leaderboard row):
its JSON Schema, and reading a run folder back with every check.

A record that is truncated, incomplete, from another schema version, whose per-item file does not match its
checksum, or whose numbers are not what its per-item file gives (records.aggregate.recompute) is an error naming
the file: the leaderboard never skips a record silently, and never shows a number its items do not give.
Records of schema 3 (before KL's and the probe's per-sequence rows were kept) are read with their evaluations
recomputed and their KL and probe sections marked as stored (`legacy_sections`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from forgetbench.core.errors import UserError
from forgetbench.core.store import read_json

SCHEMA_VERSION = 4
READABLE = (3, 4)          # 3: KL and probe sections without per-item rows (read, marked as not recomputed)
KINDS = ("run", "external")   # trained here; an outside checkpoint evaluated by `bench eval --out`

_NUM = {"type": "number"}
_STR = {"type": "string"}
_HASH = {"type": "string", "pattern": "^[0-9a-f]{16,64}$"}
_STAT = {"type": "object", "required": ["mean", "se"], "properties": {"mean": _NUM, "se": _NUM}}
_TASK = {"type": "object", "required": ["metric", "base", "tuned", "delta", "delta_se", "n"],
         "properties": {"metric": _STR, "base": _NUM, "tuned": _NUM, "delta": _NUM, "delta_se": _NUM,
                        "n": {"type": "integer", "minimum": 1}}}
_TASKS = {"type": "object", "minProperties": 1, "additionalProperties": _TASK}
_KL = {"type": "object", "required": ["n", "token_exact", "sequence", "settings"],
       "properties": {"token_exact": _STAT, "sequence": _STAT, "settings": {"type": "object"}}}

RUN_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "forgetbench run record",
    "type": "object",
    "required": ["schema_version", "kind", "run_id", "spec", "provenance", "target", "suites", "kl",
                 "answer_class_shift", "items", "items_sha256"],
    # schema 4 on: also "kl_target" (KL on the target's held-out prompts) and "weight_change", checked in
    # load_run_folder
    "properties": {
        "schema_version": {"enum": list(READABLE)},
        "kind": {"enum": list(KINDS)},
        "run_id": _STR,
        "spec": {
            "type": "object",
            "required": ["method", "model", "target", "suites", "seed", "params", "budget", "eval", "kl", "data",
                         "placement"],
            "properties": {
                "method": _STR, "model": _STR, "target": _STR,
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
        "kl": _KL,
        "kl_target": _KL,
        "weight_change": {"type": "object", "required": ["l2", "relative"],
                          "properties": {"l2": _NUM, "relative": _NUM}},
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
        # each model's evaluation as lm-eval writes it (lm_eval/<base|tuned>/<model>/...), by path: its sha256
        "lm_eval_outputs": {"type": "object",
                            "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
    },
    # a run trained here has its training data's hash and its training section; an external checkpoint (trained
    # elsewhere, evaluated by `bench eval --out`) has neither, and names the checkpoint; "model" is the base in both
    "if": {"properties": {"kind": {"const": "run"}}},
    "then": {"required": ["training"], "properties": {"spec": {"properties": {"data": _HASH}}}},
    "else": {"properties": {"spec": {"required": ["checkpoint"],
                                     "properties": {"data": {"type": "null"}, "checkpoint": _STR}}}},
}


def items_text(items: list[dict]) -> str:
    """The per-item file's exact content (one sorted-key JSON object per line)."""
    return "".join(json.dumps(i, sort_keys=True) + "\n" for i in items)


def items_hash(rows: list[dict]) -> str:
    """Which items and prompts a task evaluated: doc ids with lm-eval's doc and prompt hashes."""
    from forgetbench.core.store import stable_hash
    return stable_hash(sorted((r["doc_id"], r["doc_hash"], r["prompt_hash"]) for r in rows), 32)


def validate(record, path: Path) -> None:
    """Raise a UserError naming `path` unless `record` is a complete run record of this schema version."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    if isinstance(record, dict) and record.get("kind") in KINDS and record.get("schema_version") not in READABLE:
        raise UserError(f"The result record {path} has schema version {record.get('schema_version')}; this "
                        f"forgetbench reads versions {', '.join(map(str, READABLE))}. Rerun it with this version.")
    err = best_match(Draft202012Validator(RUN_SCHEMA).iter_errors(record))
    if err is not None:
        kind = "incomplete" if err.validator in ("required", "minProperties", "minItems") else "invalid"
        raise UserError(f"The result record {path} is {kind} at {err.json_path}: {err.message}. It was not "
                        "written by a finished `bench run` of this version; delete the folder or rerun it.")


def legacy_sections(record: dict) -> tuple[str, ...]:
    """The sections of a record that its per-item file cannot reproduce (schema 3: KL and the probe; it has no
    KL on the target's prompts either)."""
    return ("kl", "answer_class_shift") if record["schema_version"] == 3 else ()


def load_run_folder(folder: Path, *, lm_eval_outputs: bool = True) -> tuple[dict, list[dict]]:
    """A run folder's record and per-item outcomes, each checked: schema, checksum, item counts, and every
    number the record shows against its recomputation from the items; and lm-eval's files, unless the folder comes
    from a runs archive, which keeps the record and items only (lm_eval_outputs=False)."""
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
    if lm_eval_outputs:
        _check_outputs(record, folder, path)
    items = _parse_items(raw, items_path)
    counts: dict[tuple[str, str], int] = {}
    for it in items:
        counts[it["model"], it["task"]] = counts.get((it["model"], it["task"]), 0) + 1
    sections = {**record["target"]["tasks"], **{t: v for s in record["suites"].values() for t, v in s["tasks"].items()}}
    for task, sec in sections.items():
        for who in ("base", "tuned"):
            if counts.get((who, task), 0) != sec["n"]:
                raise UserError(f"The per-item file {items_path} is incomplete: {counts.get((who, task), 0)} "
                                f"{who} items for {task}, the record says {sec['n']}.")
    _check_numbers(record, items, path, items_path)
    return record, items


def file_digests(record: dict) -> dict[str, str]:
    """Every file of a run folder besides result.json (items, lm-eval's), by path: the sha256 its record names."""
    return {record["items"]: record["items_sha256"], **record.get("lm_eval_outputs", {})}


def _check_outputs(record: dict, folder: Path, path: Path) -> None:
    """lm-eval's files are not read here, but a run folder is complete and undamaged only with every one."""
    for rel, digest in record.get("lm_eval_outputs", {}).items():
        file = folder / rel
        if not file.resolve().is_relative_to(folder.resolve()):
            raise UserError(f"The result record {path} names a file outside its folder ({rel}): it was edited.")
        try:
            ok = hashlib.sha256(file.read_bytes()).hexdigest() == digest
        except FileNotFoundError:
            raise UserError(f"lm-eval's file {file} named by {path} is missing. Delete the run folder and rerun "
                            "it.") from None
        if not ok:
            raise UserError(f"lm-eval's file {file} is corrupt: its checksum does not match {path}. Delete the run "
                            "folder and rerun it.")


ITEM_FIELDS = {"model": str, "task": str, "doc_id": int}


def _parse_items(raw: bytes, path: Path) -> list[dict]:
    items = []
    for n, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"The per-item file {path} is malformed at line {n}: {e}.") from None
        if not isinstance(item, dict) or any(not isinstance(item.get(k), t) for k, t in ITEM_FIELDS.items()):
            raise UserError(f"The per-item file {path} is malformed at line {n}: each line is an object with "
                            f"{', '.join(ITEM_FIELDS)}.")
        items.append(item)
    return items


def _check_numbers(record: dict, items: list[dict], path: Path, items_path: Path) -> None:
    """Refuse a record whose numbers are not what its items give (a hand edit, or damage the checksum missed)."""
    from forgetbench.records.aggregate import disagreement, recompute

    try:
        fresh = recompute(record, items)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, RuntimeError) as e:
        raise UserError(f"The per-item file {items_path} cannot reproduce the record {path} ({type(e).__name__}: "
                        f"{e}). Delete the run folder and rerun it.") from None
    _check_sections(record, fresh, path, items_path)
    _check_sample_counts(record, fresh, items_path)
    if legacy_sections(record):           # schema 3 drew a suite's sign-flip test in its registered task order,
        for s in fresh["suites"].values():      # which the record does not keep
            s.pop("p_sign_flip", None)
    for key, value in fresh.items():
        if (where := disagreement(record.get(key), value, key)) is not None:
            raise UserError(f"The result record {path} does not match its per-item file {items_path} at {where}: "
                            "a record's numbers are computed from its items, so it was edited or damaged. Delete "
                            "the run folder and rerun it.")


def _check_sections(record: dict, fresh: dict, path: Path, items_path: Path) -> None:
    """The sections a record of its schema has, each with the per-item rows it is computed from."""
    legacy = bool(legacy_sections(record))
    if legacy and (newer := [k for k in ("kl_target", "weight_change") if k in record]):
        raise UserError(f"The result record {path} says schema 3 but has {', '.join(newer)}, which schema 3 records "
                        "never had: it was edited. Delete the run folder and rerun it.")
    if legacy:
        return
    if "weight_change" not in record:
        raise UserError(f"The result record {path} has no weight_change section (schema 4 records do). Delete the "
                        "run folder and rerun it.")
    expected = ["kl", "kl_target"] + (["answer_class_shift"] if "delta" in record["answer_class_shift"] else [])
    if absent := [k for k in expected if k not in fresh]:
        raise UserError(f"The per-item file {items_path} has no rows for the record's {', '.join(absent)}, so "
                        f"{path} cannot be checked. Delete the run folder and rerun it.")


def _check_sample_counts(record: dict, fresh: dict, items_path: Path) -> None:
    """As many KL sequences as the run's spec asked for (a cut sample cache once gave `kl.n: 3` for 256)."""
    asked = record["spec"].get("kl", {})
    of = record.get("kl_target", {}).get("settings", {}).get("of")
    for section, n in (("kl", asked.get("samples")),
                       ("kl_target", min(asked.get("target_prompts", 0), of) if isinstance(of, int) else None)):
        if section in fresh and asked and fresh[section]["n"] != n:
            raise UserError(f"The per-item file {items_path} has {fresh[section]['n']} sequences for {section}; the "
                            f"run's spec asks for {n}. Delete the run folder and rerun it.")
