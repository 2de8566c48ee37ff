"""Training pairs from a user's file (`--train-file`): JSON, JSONL, CSV/TSV or Parquet, each record a (prompt,
response) pair in a target's own field names or in one of TRL's formats. A malformed file or record is a UserError
that names its line (JSON) or row."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

from forgetbench.core.errors import UserError


def read_train_file(path: Path, fields: tuple[str, str]) -> list[dict]:
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
