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
