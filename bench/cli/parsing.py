"""The command line's parser: flags built from the library's field declarations (forgetbench.core.options), one-line
errors with a did-you-mean, lm-eval's flag names pointed to ours, underscore spellings accepted."""

from __future__ import annotations

import argparse
import difflib
import re
import sys

from forgetbench.core.options import LIST, PAIRS, Option
from forgetbench.core.settings import parse_pairs

# lm-eval's flags (and spellings a user of it types) -> ours
LM_EVAL_FLAGS = {"--tasks": "--suite", "--batch_size": "--eval-batch-size", "--batch-size": "--eval-batch-size",
                 "--output_path": "--out", "--output-path": "--out", "--output": "--out", "-o": "--out",
                 "--gen_kwargs": "--temperature and --max-new-tokens",
                 "--log_samples": "nothing: every item's outcome is always written (items.jsonl)"}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a misspelt flag gets a did-you-mean, lm-eval's names get ours. Abbreviations
    are off: `--method` is never taken for `--methods`."""

    argv: list[str] = []          # the command line being parsed (set by main): a missing flag may be misspelt in it

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        print(f"{self.prog}: error: {one_line(message)}{self._hints(message)} (see {self.prog} --help)",
              file=sys.stderr)
        sys.exit(2)

    def _hints(self, message: str) -> str:
        """A misspelt command's closest name; for every flag on the command line the command does not know,
        ours for lm-eval's name, or the closest of its own."""
        hints = []
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            close = difflib.get_close_matches(choice[1], re.findall(r"'([^']*)'", choice[2]), n=1)
            hints += [f"did you mean {close[0]!r}?"] if close else []
        commands = {sp.prog.split()[-1]: sp for sp in subparsers(self)}
        command = commands.get(self.argv[0], self) if self.argv[:1] else self
        known = [o for a in command._actions for o in a.option_strings]
        for word in self.argv:
            flag = word.split("=", 1)[0]
            if not flag.startswith("-") or flag in known or _is_value(word):
                continue
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            if flag in LM_EVAL_FLAGS:
                hints.append(f"{flag} is lm-eval's; here: {LM_EVAL_FLAGS[flag]}")
            elif close:
                hints.append(f"{flag}: did you mean {close[0]}?")
        return "".join(f"; {h}" for h in hints)


def _is_value(word: str) -> bool:
    """A negative number given as a flag's value (--temperature -1), not a flag."""
    try:
        float(word)
        return True
    except ValueError:
        return False


class Help(argparse.HelpFormatter):
    """Shows each flag's default after its help, unless the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = getattr(action, "shown_default", action.default)
        unset = default is None or default is False or default == [] or default == argparse.SUPPRESS
        if unset or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: {default})"


def add_options(parser: argparse.ArgumentParser, options: tuple[Option, ...], helps: dict | None = None) -> None:
    """One flag per field. Every flag defaults to None (not given), so that a config file's field or a preset's
    value fills it; values stay text: the library checks and types them (the API's values go the same way).
    `helps`: a field's help where the command line says more than the declaration (the registered names)."""
    for o in options:
        help = (helps or {}).get(o.name, o.help)
        if o.kind is bool:
            action = argparse.BooleanOptionalAction if o.default is None and o.name not in ONE_WAY else "store_true"
            arg = parser.add_argument(o.flag, action=action, default=None, help=help)
        else:
            repeat = "append" if o.kind in (LIST, PAIRS) else "store"
            # a required field may come from a config file: the library checks it once the file is read
            arg = parser.add_argument(o.flag, action=repeat, default=None, help=help,
                                      metavar=o.metavar or ("KEY=VALUE" if o.kind is PAIRS else None))
        arg.shown_default = o.default


# switches with no --no- form (their absence is the default)
ONE_WAY = ("trust_remote_code", "save_model", "dry_run")


def given(args: argparse.Namespace, options: tuple[Option, ...]) -> dict:
    """The fields given on the command line (not None), KEY=VALUE repeats as mappings."""
    out = {}
    for o in options:
        value = getattr(args, o.name, None)
        if value is None:
            continue
        out[o.name] = parse_pairs(value, o.flag) if o.kind is PAIRS else value
    return out


def dashed(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Underscore spellings of our flags (lm-eval's style: --num_fewshot) as the dashed ones."""
    known = {o for sub in subparsers(parser) for a in sub._actions for o in a.option_strings}
    out = []
    for word in argv:
        flag, eq, value = word.partition("=")
        if flag.startswith("--") and "_" in flag and flag.replace("_", "-") in known:
            word = flag.replace("_", "-") + eq + value
        out.append(word)
    return out


def subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser] + [p for a in subs for p in a.choices.values()]


def one_line(text: str) -> str:
    """A message as one paragraph: a value quoted in it as given may hold a newline or another control character,
    shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

