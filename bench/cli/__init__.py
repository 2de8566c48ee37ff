"""`bench`: the command line over the library. Each command is one small module here that declares its flags
(from the library's field declarations), calls the library with what was given, and prints the result:

    run, eval, kl, sweep, methods, tasks, data       (this package)
    leaderboard                                      (forgetbench.leaderboard, through the forgetbench.commands
                                                      entry point: the engine never imports the reporting package)
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points, version

from forgetbench.cli import data, evaluate, kl, methods, run, sweep, tasks
from forgetbench.cli.parsing import Help, Parser, dashed, one_line
from forgetbench.core import threads
from forgetbench.core.errors import UserError
from forgetbench.core.options import Option

OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
COMMANDS = (run, sweep, evaluate, kl, methods, tasks, data)
THREADS = Option("threads", "CPU threads for torch (default: the cores this process may use, or "
                 "$FORGETBENCH_THREADS)", int, minimum=1)


def parser() -> Parser:
    p = Parser(prog="bench", description="forgetbench: how much does fine-tuning make a model forget, and which "
               "method stops it? Offline by default (local models and --data-dir); HF_HUB_OFFLINE=0 "
               "HF_DATASETS_OFFLINE=0 to use the Hugging Face hub.", formatter_class=Help)
    p.add_argument("--version", action="version", version=f"forgetbench {version('forgetbench')}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add(sub)
    for entry in entry_points(group="forgetbench.commands"):     # e.g. `bench leaderboard`, from its own package
        entry.load()(sub)
    for command in sub.choices.values():
        command.formatter_class = Help
        command.add_argument(THREADS.flag, default=None, help=THREADS.help)
    return p


def main(argv: list[str] | None = None) -> int:
    # Offline by default: datasets are local files and the hub may be unreachable. Set these to 0 to go online.
    for var in OFFLINE:
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    p = parser()
    argv = dashed(sys.argv[1:] if argv is None else [str(a) for a in argv], p)
    Parser.argv = argv
    args = p.parse_args(argv)
    try:
        args.threads = THREADS.check(args.threads)
        threads.configure(args.threads)         # before anything imports torch
        status = args.fn(args) or 0
    except UserError as e:                      # a FieldError reads as the flag's (core.errors)
        print(f"bench: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; nothing partial was written.", file=sys.stderr)
        return 130
    return status


