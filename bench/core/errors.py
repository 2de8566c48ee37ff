"""User-facing errors: one paragraph, exit status 2, no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in what the user asked for. The CLI prints it as one paragraph and exits with status 2."""


def did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown(kind: str, name: str, options: Iterable[str]) -> UserError:
    options = sorted(options)
    return UserError(f"Unknown {kind} {name!r}.{did_you_mean(name, options)} "
                     f"Accepted: {', '.join(options) if options else '(none registered)'}.")


class FieldError(UserError):
    """A bad value of one field of a request (`seed`, `num_fewshot`, `budget`'s `lr`, ...). The domain names the
    field and the problem; each caller words it for its own user: the command line as its flag (`--num-fewshot
    must be at least 0, got -1.`), the Python API as its keyword argument (`num_fewshot: must be ...`). Printed
    as is, it reads as the command line's (the wording of every message before the caller rewords it)."""

    def __init__(self, field: str, problem: str, *, value: object = None, key: str | None = None):
        self.field, self.problem, self.value, self.key = field, problem, value, key
        super().__init__(self.for_flags())

    def for_flags(self) -> str:
        flag = "--" + self.field.replace("_", "-")
        if self.key is not None:
            return f"{flag} {self.key}={self.value}{self._joint()}{self.problem}"
        return f"{flag} {self.value}{self._joint()}{self.problem}" if self.value is not None else \
            f"{flag} {self.problem}"

    def for_keywords(self) -> str:
        if self.key is not None:
            return f"{self.field}={{{self.key!r}: {self.value!r}}}{self._joint()}{self.problem}"
        return f"{self.field}={self.value!r}{self._joint()}{self.problem}" if self.value is not None else \
            f"{self.field}: {self.problem}"

    def _joint(self) -> str:
        """A problem that reads on from the value ("is a file", "needs Ray") follows it; any other after a colon."""
        return " " if self.problem.split(" ", 1)[0] in VERBS else ": "


VERBS = ("is", "needs", "adds", "names", "keeps", "must")
