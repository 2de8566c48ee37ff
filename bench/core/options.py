"""The fields a request is assembled from, declared once: each is a keyword argument of the Python API, a key of a
config file, and (with - for _) a flag of the command line, which is built from these declarations.

Values arrive as text (the command line, `key=value` pairs) or as Python values (the API, YAML files); `check`
gives every one its declared type and range, or a FieldError naming the field, which each caller words for its
own user (a flag, a keyword argument).
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass

from forgetbench.core.errors import FieldError, UserError, did_you_mean
from forgetbench.core.settings import parse_as

LIST = "list"         # repeatable text (--suite A --suite B; a YAML list; a Python list, or one string)
CSV = "csv"           # one flag of comma-separated values (--seeds 0,1,2; a YAML or Python list)
PAIRS = "pairs"       # key=value mappings (--set k=v, repeatable; a YAML or Python dict)


@dataclass(frozen=True)
class Option:
    name: str
    help: str
    kind: object = str                 # str, int, float, bool, "int | float", LIST, CSV or PAIRS
    default: object = None             # shown in --help; None: not given (decided later: a preset's, a target's)
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    required: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value):
        """The value given (text or a Python value) as this field's type, or a FieldError."""
        if value is None:
            return None
        if self.kind in (LIST, CSV):
            return self._sequence(value)
        if self.kind is PAIRS:
            if not isinstance(value, dict):
                raise FieldError(self.name, f"must be a mapping of key: value, not {value!r}.")
            return {str(k): v for k, v in value.items()}
        typed = self._scalar(value)
        if self.choices and typed not in self.choices:
            raise FieldError(self.name, f"choose one of {', '.join(self.choices)}.{did_you_mean(typed, self.choices)}",
                             value=typed)
        return self._in_range(typed)

    def _sequence(self, value) -> tuple[str, ...]:
        if isinstance(value, str):
            items = value.split(",") if self.kind is CSV else [value]
        elif isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
            items = [str(v) for v in value]
        else:
            raise FieldError(self.name, f"must be a list of names or values, not {value!r}.")
        return tuple(i.strip() for i in items if i.strip())

    def _scalar(self, value):
        if isinstance(value, str):
            try:
                return parse_as(value, self.kind) if self.kind is not str else value
            except ValueError as e:
                raise FieldError(self.name, str(e)) from None
        if self.kind is str and (isinstance(value, int | float | os.PathLike) and not isinstance(value, bool)):
            return str(value)                       # eval_batch_size: 8 in a YAML file; a Path in Python
        wanted = {int: (int,), float: (int, float), bool: (bool,), "int | float": (int, float)}.get(self.kind, (str,))
        if isinstance(value, bool) and self.kind is not bool or not isinstance(value, wanted):
            raise FieldError(self.name, f"must be {_kind_name(self.kind)}, not {value!r}.")
        if isinstance(value, float) and not math.isfinite(value):
            raise FieldError(self.name, f"must be a finite number, not {value!r}.")
        return float(value) if self.kind is float else value

    def _in_range(self, value):
        if self.minimum is not None and isinstance(value, int | float) and value < self.minimum:
            raise FieldError(self.name, f"must be at least {self.minimum}, got {value}.")
        if self.maximum is not None and isinstance(value, int | float) and value > self.maximum:
            raise FieldError(self.name, f"must be at most {self.maximum}, got {value}.")
        return value


def _kind_name(kind) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", "int | float": "a number"}.get(kind, "text")


def checked(options: tuple[Option, ...], given: dict, *, where: str, command: str) -> dict:
    """The given fields (None: not given, left out), each checked and typed; an unknown field is a UserError
    naming `where` (a config file, an API call) with the closest field's name."""
    known = {o.name: o for o in options}
    out = {}
    for key, value in given.items():
        if value is None:
            continue
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            raise UserError(f"{where}: {key!r} is not a field of `{command}`" + (
                f"; did you mean {close[0]!r}?" if close else "") + " (fields are its flags, with _ for -).")
        out[key] = known[key].check(value)
    return out


def require(options: tuple[Option, ...], values: dict) -> dict:
    """`values`, once every required field is there (given, or in a config file)."""
    for o in options:
        if o.required and values.get(o.name) is None:
            raise FieldError(o.name, "is required.")
    return values


def merged(given: dict, from_file: dict) -> dict:
    """A config file's fields under the caller's: a field given wins, except the mappings (set, budget), merged key
    by key with the caller's keys winning; a given list (suite) replaces the file's."""
    out = dict(from_file)
    for key, value in given.items():
        if value is None:
            continue
        out[key] = {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config(path, *, options: tuple[Option, ...], command: str, extra: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """A config file (YAML) as (its checked fields, its `extra` structured fields: a sweep's grids, ...)."""
    from forgetbench.core.store import read_yaml_mapping
    data = read_yaml_mapping(path)
    rest = {k: data.pop(k) for k in extra if k in data}
    where = f"--config {path}"
    if "config" in data:
        raise UserError(f"{where}: a config file cannot name another config file.")
    try:
        return checked(options, data, where=where, command=command), rest
    except FieldError as e:
        raise UserError(f"{where}: {e.for_keywords()}") from None
