"""`bench`: run, sweep, eval, kl, methods, tasks, leaderboard."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import warnings
from importlib.metadata import entry_points, version
from pathlib import Path

from forgetbench.core import threads
from forgetbench.core.errors import UserError
from forgetbench.runner import tracking

OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
# lm-eval's flags (and spellings a user of it types) -> ours
LM_EVAL_FLAGS = {"--tasks": "--suite", "--batch_size": "--eval-batch-size", "--batch-size": "--eval-batch-size",
                 "--output_path": "--out", "--output-path": "--out", "--output": "--out", "-o": "--out",
                 "--gen_kwargs": "--temperature and --max-new-tokens",
                 "--log_samples": "nothing: every item's outcome is always written (items.jsonl)"}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a misspelt flag gets a did-you-mean, lm-eval's names get ours."""

    argv: list[str] = []          # the command line being parsed (set by main): a missing flag may be misspelt in it

    def error(self, message: str):
        print(f"{self.prog}: error: {one_line(message)}{self._hints(message)} (see {self.prog} --help)",
              file=sys.stderr)
        sys.exit(2)

    def _hints(self, message: str) -> str:
        """A misspelt command's closest name; for every flag on the command line the command does not know,
        ours for lm-eval's name, or the closest of its own."""
        import difflib
        hints = []
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            close = difflib.get_close_matches(choice[1], re.findall(r"'([^']*)'", choice[2]), n=1)
            hints += [f"did you mean {close[0]!r}?"] if close else []
        commands = {sp.prog.split()[-1] for sp in _subparsers(self)} - {"bench"}
        command = command_parser(self, self.argv[0]) if self.argv[:1] and self.argv[0] in commands else self
        known = [o for a in command._actions for o in a.option_strings]
        for word in self.argv:
            flag = word.split("=", 1)[0]
            if not flag.startswith("-") or flag in known or self._is_value(word):
                continue
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            if flag in LM_EVAL_FLAGS:
                hints.append(f"{flag} is lm-eval's; here: {LM_EVAL_FLAGS[flag]}")
            elif close:
                hints.append(f"{flag}: did you mean {close[0]}?")
        return "".join(f"; {h}" for h in hints)

    @staticmethod
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
        unset = action.default is None or action.default is False or action.default == [] \
            or action.default == argparse.SUPPRESS
        if unset or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: {action.default})"


def _dashed(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Underscore spellings of our flags (lm-eval's style: --num_fewshot) as the dashed ones."""
    known = {o for sub in _subparsers(parser) for a in sub._actions for o in a.option_strings}
    out = []
    for word in argv:
        flag, eq, value = word.partition("=")
        if flag.startswith("--") and "_" in flag and flag.replace("_", "-") in known:
            word = flag.replace("_", "-") + eq + value
        out.append(word)
    return out


def _with_config(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`bench run --config FILE ...` as the file's flags followed by the command line's, so that every field goes
    through its flag's own parsing and a flag on the command line wins (--suite replaces the file's suites)."""
    if argv[:1] != ["run"] or not any(w == "--config" or w.startswith("--config=") for w in argv):
        return argv
    at = next(i for i, w in enumerate(argv) if w == "--config" or w.startswith("--config="))
    path = argv[at].partition("=")[2] or (argv[at + 1] if at + 1 < len(argv) else "")
    rest = argv[1:at] + argv[at + (1 if "=" in argv[at] else 2):]
    if not path or path.startswith("-"):
        raise UserError("--config needs a YAML file of the run's flags, e.g. bench run --config run.yaml.")
    from forgetbench.sweeper.design import load_sweep_file
    data = load_sweep_file(Path(path))
    run = command_parser(parser, "run")
    given = [w.split("=")[0] for w in rest]
    # the command line's --suite replaces the file's; its --set/--budget keys win over the file's one by one
    tokens = flag_tokens({k: v for k, v in data.items() if not (k == "suite" and "--suite" in given)}, run,
                          f"--config {path}")
    return ["run", *tokens, *rest]


def flag_tokens(data: dict, command: argparse.ArgumentParser, where: str, skip: tuple[str, ...] = ()) -> list[str]:
    """A config file's fields as `command`'s flags (a field is its flag with _ for -): scalars as values, true/false
    as the flag or its --no- form, mappings as KEY=VALUE repeats (set, budget), lists as repeats (suite) or, for a
    flag taking one value, comma-separated (sweep's methods, seeds)."""
    import difflib
    actions = {o: a for a in command._actions for o in a.option_strings}
    tokens = []
    for key, value in data.items():
        flag = "--" + str(key).replace("_", "-")
        if flag not in actions or flag in ("--config", "--help", *skip):
            close = difflib.get_close_matches(flag, [o for o in actions if o not in skip], n=1)
            raise UserError(f"{where}: {key!r} is not a field of `{command.prog}`"
                            + (f"; did you mean {close[0].removeprefix('--').replace('-', '_')!r}?" if close else "")
                            + " (fields are its flags, with _ for -).")
        repeated = isinstance(actions[flag], argparse._AppendAction)
        if isinstance(value, bool):
            tokens += [flag] if value else ([f"--no-{flag[2:]}"] if f"--no-{flag[2:]}" in actions else [])
        elif isinstance(value, dict):
            tokens += [x for k, v in value.items() for x in (flag, f"{k}={v}")]
        elif isinstance(value, list) and repeated:
            tokens += [x for v in value for x in (flag, str(v))]
        elif isinstance(value, list):
            tokens += [flag, ",".join(str(v) for v in value)]
        else:
            tokens += [flag, str(value)]
    return tokens


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser] + [p for a in subs for p in a.choices.values()]


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """`bench NAME`'s own parser."""
    return next(sp for sp in _subparsers(parser) if sp.prog == f"bench {name}")


def parse_or_raise(parser: argparse.ArgumentParser, argv: list[str], where: str) -> argparse.Namespace:
    """argv parsed, or argparse's message as a UserError naming `where` (a config file, an API call)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()) as why:
            return parser.parse_args(argv)
    except SystemExit:
        raise UserError(f"{where}: {why.getvalue().strip().partition('error: ')[2]}") from None


def _fmt(x, signed=False) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _row(label: str, v: dict) -> list:
    """One table row: base, tuned, delta ± its paired SE, flips (right->wrong / wrong->right), p, n."""
    se = f" ± {v['delta_se']:.3f}" if "delta_se" in v else ""
    f = v.get("flips")
    p = v.get("p_sign_flip", v.get("p_mcnemar", v.get("p_paired_t")))
    return [label, _fmt(v.get("base")), _fmt(v["tuned"]), _fmt(v.get("delta"), True) + se,
            f"{f['right_to_wrong']} / {f['wrong_to_right']}" if f else "", "" if p is None else f"{p:.3g}", v["n"]]


def _summary(record: dict, where: Path | None) -> str:
    from tabulate import tabulate

    rows, notes = [], []
    if "target" in record:
        t = record["target"]
        rows.append(_row(f"target {t['name']}", t))
        for task, v in t.get("tasks", {}).items():
            if len(t["tasks"]) > 1:
                rows.append(_row(f"- {task} ({v['metric']})", v))
    # suites in the spec's order and tasks by name: the same for a fresh record and one read back from disk
    order = [*record["spec"].get("suites", ())]
    for name in sorted(record["suites"], key=lambda n: (order.index(n) if n in order else len(order), n)):
        s = record["suites"][name]
        rows.append(_row(f"{name} (mean of {len(s['tasks'])})", s))
        if len(s["tasks"]) > 1:
            for task, v in sorted(s["tasks"].items()):
                rows.append(_row(f"- {task} ({v['metric']})", v))
        notes += [f"{name}: {task} missing ({why})" for task, why in s.get("missing", {}).items()]
        notes += [f"{name}: {task} not counted (the target's own evaluation)"
                  for task in s.get("excluded_as_target", [])]
    spec = record["spec"]
    head = (f"{record.get('kind', 'run')} {record['run_id']}: method {spec.get('method', '—')}, model {spec['model']}, "
            f"seed {spec.get('seed', '—')}")
    lines = [head, "", tabulate(rows, headers=["", "base", "tuned", "delta ± SE", "r→w / w→r", "p", "n"],
                                tablefmt="simple", disable_numparse=True),
             "delta ± SE: paired over the same items; r→w / w→r: items the tuned model gets wrong that the base got "
             "right, and the reverse; p: a task's exact McNemar (right/wrong items) or paired t; a suite's sign-flip "
             "permutation test of the delta shown (the mean of its tasks' deltas; one task: that task's test)",
             *notes]
    if "kl" in record:
        lines += ["", _kl_line(record["kl"])]
    if "kl_target" in record:
        lines.append(_kl_line(record["kl_target"], "on the target's held-out prompts"))
    if "training" in record:
        tr = record["training"]
        mix = ", ".join(f"{k} {v['examples']}" for k, v in tr["mixture"].items())
        lines.append(f"training: {tr['steps']} steps on {mix} examples, {tr['seconds']:.1f} s")
    if where:
        lines.append(f"record: {where / 'result.json'} (per-item outcomes in {where / record['items']})")
    return "\n".join(lines)


def _kl_line(kl: dict, where: str = "context-free") -> str:
    s, e = kl["sequence"], kl["token_exact"]
    pt = kl["per_token"]["token_exact"]
    return (f"KL(base || tuned) {where}, nats per sequence, n={kl['n']}: token-exact {e['mean']:.4f} ± "
            f"{e['se']:.4f}, "
            f"sequence MC {s['mean']:.4f} ± {s['se']:.4f}; per token {pt['mean']:.5f} ± {pt['se']:.5f}")


def _emit(args, record: dict, where: Path | None) -> None:
    if args.json:
        print(json.dumps(record, sort_keys=True))
    else:
        print(_summary(record, where))


def _preset(args):
    from forgetbench.task import presets
    return presets.get(args.preset) if getattr(args, "preset", None) else None


def _settings(args, preset):
    """Evaluation and KL settings: command-line flags, else the preset's, else the defaults."""
    from forgetbench.core.settings import FLAGS, EvalSettings, KLSettings

    given = {"eval": dict(preset.eval) if preset else {}, "kl": dict(preset.kl) if preset else {}}
    for f in FLAGS:
        value = getattr(args, f.dest, None)
        if value is not None:
            given[f.section][f.key] = value
            if f.key == "limit":                # an explicit --limit applies to every task
                given["eval"].pop("task_limits", None)
    ev = given["eval"]
    if "batch_size" not in ev and (getattr(args, "device", None) or "cuda").startswith("cuda"):
        from forgetbench.toolbox.device import cuda_available
        if cuda_available():                    # lm-eval's automatic batch size on a GPU
            ev["batch_size"] = "auto"
    if ev.get("batch_size") not in (None, "auto"):
        from forgetbench.core.settings import coerce
        ev["batch_size"] = coerce(str(ev["batch_size"]), int, f"--eval-batch-size {ev['batch_size']}")
    return EvalSettings(**ev), KLSettings(**given["kl"])


def _placement(args):
    from forgetbench.toolbox.device import Placement, model_args
    return Placement(args.device, args.dtype, args.trust_remote_code, model_args(getattr(args, "model_args", None)))


def _data_dir(args, preset):
    from forgetbench.task import data_dir_from, hub_available
    data = data_dir_from(args.data_dir)
    if preset and preset.needs_data and data is None and not hub_available():
        raise UserError(f"Preset {preset.name} runs offline from local data: pass --data-dir DIR (e.g. "
                        "../shared/data) or set FORGETBENCH_DATA. No such folder yet: `bench data fetch --to DIR` "
                        "builds one, or run online (HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0) from the hub.")
    return data


def _request(args, *, method: str, seed: int, overrides: dict):
    """The run request the flags describe: the preset's model, target, suites, budget and settings, with every
    flag given explicitly winning (no preset: the default preset's model and target, the target's suites)."""
    from forgetbench.core.settings import parse_pairs
    from forgetbench.runner.stages import RunRequest
    from forgetbench.task import default_preset

    preset = _preset(args)
    fallback = preset or default_preset()
    budget = parse_pairs(args.budget, "--budget")
    ev, kl = _settings(args, preset)
    return RunRequest(
        method=method, model=args.model or fallback.model, target=args.target or fallback.target,
        suites=tuple(args.suite or (preset.suites if preset else ())), seed=seed, overrides=overrides,
        budget=(dict(preset.budget) if preset else {}) | budget, eval=ev, kl=kl, data_dir=_data_dir(args, preset),
        train_file=Path(args.train_file) if args.train_file else None, placement=_placement(args),
        include_path=_include_path(args),
        out=Path(args.out), save_model=getattr(args, "save_model", False),
        report_to=tracking.parse(getattr(args, "report_to", None)),
        hub_push=tracking.hub_repo(getattr(args, "hub_push", None)))


def _include_path(args) -> Path | None:
    return Path(args.include_path).expanduser() if getattr(args, "include_path", None) else None


def out_folder(text: str, flag: str = "--out", *, probe: bool = True) -> Path:
    """The folder results go to, checked before any work: a folder, or one that can be made, and writable (`probe`:
    a file written there and deleted). A result computed for an hour and then not written is lost."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {text} is a file; give a folder for the run folders.")
    if probe:
        _probe(path, f"{flag} {text}")
    return path


def _probe(folder: Path, what: str) -> None:
    """Write and delete a file in `folder`, making it for the probe and removing what the probe made: a run
    stopped by a later check leaves nothing behind (writing a result makes the folder again)."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]        # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".forgetbench-probe-"):
            pass
    except OSError as e:
        raise UserError(f"{what}: cannot write there ({e.strerror or e}); give a folder you may write in, for the "
                        "run folders.") from None
    finally:
        for p in made:
            with contextlib.suppress(OSError):      # not made, or another process has written there since
                p.rmdir()


def results_only():
    """Standard output carries results only: what libraries print there while the work runs (the Trainer's
    summary, transformers' "Running in WANDB offline mode" on import) goes to standard error."""
    return contextlib.redirect_stdout(sys.stderr)


def run_records(args) -> list:
    """`bench run`'s work: (record, run folder) of each result, checked before any work (the Python API's too)."""
    from forgetbench.core.settings import parse_pairs
    from forgetbench.method import methods

    methods.get(args.method)                # an unknown name fails before torch is imported
    request = _request(args, method=args.method, seed=args.seed, overrides=parse_pairs(args.set, "--set"))
    out_folder(args.out)

    from forgetbench.runner.stages import run
    with results_only():
        return run(request)


def cmd_run(args) -> None:
    for record, where in run_records(args):
        _emit(args, record, where)


SWEEP_FILE_ONLY = ("grids", "set", "budgets", "budget_grid")  # structured fields a sweep file has and the flags do not


def _sweep_file_args(args) -> tuple[object, dict]:
    """The flags with the sweep file's fields filled in where a flag was not given (a field goes through the
    flag's own parsing), and the file's structured fields."""
    if not args.config:
        return args, {}
    from forgetbench.sweeper.design import load_sweep_file
    data = load_sweep_file(Path(args.config))
    extra = {k: data.pop(k) for k in SWEEP_FILE_ONLY if k in data}
    p = parser()
    where = f"--config {args.config}"
    argv = ["sweep", *flag_tokens(data, command_parser(p, "sweep"), where, skip=("--dry-run", "--json"))]
    from_file = parse_or_raise(p, argv, where)
    for key, value in vars(from_file).items():
        given = getattr(args, key, None)
        if given is None or given is False or given == []:    # not given on the command line (0 is given)
            setattr(args, key, value)
    return args, extra


def _seed_list(text: str, flag: str) -> tuple[int, ...]:
    from forgetbench.core.settings import MAX_SEED, coerce
    values = tuple(coerce(x.strip(), int, f"{flag} {x.strip()}") for x in str(text).split(",") if x.strip())
    if not values or any(not 0 <= v <= MAX_SEED for v in values):
        raise UserError(f"{flag} takes comma-separated seeds, whole numbers from 0 to {MAX_SEED}, e.g. 0,1,2; "
                        f"got {text!r}.")
    return values


def _executor(args):
    if args.executor == "ray":
        if args.jobs:
            raise UserError("--jobs is for --executor local; Ray runs as many tasks at once as the cluster holds.")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'forgetbench[ray]'.") from None
        from forgetbench.sweeper.executors import RayTasks
        return RayTasks(args.ray_address, retries=args.retries if args.retries is not None else 2)
    if args.ray_address:
        raise UserError("--ray-address is for --executor ray.")
    from forgetbench.sweeper.executors import Pool, Serial
    jobs = args.jobs or 1
    return Serial() if jobs == 1 else Pool(jobs, retries=args.retries if args.retries is not None else 1)


def cmd_sweep(args) -> int:
    runs, tally = run_sweep(args)
    if tally is None:
        _print_dry_run(args, runs)
        return 0
    print(f"sweep: {len(runs)} runs: {tally.done} already done, {tally.finished} finished now, "
          f"{len(tally.failed)} failed" + (f" ({', '.join(k for k, _ in tally.failed)})" if tally.failed else "")
          + f"; run folders in {args.out}", file=sys.stderr)
    return 1 if tally.failed else 0


def run_sweep(args):
    """`bench sweep`'s work: (its runs, their tally); a dry run: (its rows, None), nothing run or written."""
    from forgetbench.method import methods

    args, extra = _sweep_file_args(args)
    names = methods.names() if args.methods in (None, "all") else [m.strip() for m in args.methods.split(",")]
    args.out = args.out or "runs"
    seeds = _seed_list(args.seeds or "0,1,2", "--seeds")
    executor = None if args.dry_run else _executor(args)      # its flags checked before the runs are planned
    out_folder(args.out, probe=not args.dry_run)               # a dry run writes nothing
    from forgetbench.sweeper.design import SweepConfig, drive, dry_run_rows, expand
    sweep = SweepConfig(methods=tuple(names), seeds=seeds,
                        configs=args.configs or 4, grid_seed=args.grid_seed or 0, grids=extra.get("grids") or {},
                        fixed=extra.get("set") or {}, budgets=extra.get("budgets") or {},
                        budget_grid=extra.get("budget_grid"), name=args.name or "")
    runs = expand(_request(args, method="", seed=0, overrides={}), sweep)
    if args.dry_run:
        return dry_run_rows(runs), None
    if args.threads:                            # worker processes and Ray tasks read it (forgetbench.core.threads)
        os.environ["FORGETBENCH_THREADS"] = str(args.threads)
    with results_only():
        return runs, drive(runs, executor, out=Path(args.out))


def _print_dry_run(args, rows: list[dict]) -> None:
    if args.json:
        for r in rows:
            print(json.dumps(r, sort_keys=True))
        return
    from tabulate import tabulate
    todo = [r for r in rows if r["status"] == "to do"]
    known = [r["estimated_seconds"] for r in todo if r["estimated_seconds"] is not None]
    print(tabulate([[r["method"], r["config"], r["seed"], r["varied"], r["run_id"], r["status"],
                     "" if r["estimated_seconds"] is None else f"{r['estimated_seconds']:.0f}"] for r in rows],
                   headers=["method", "config", "seed", "varied", "run id", "status", "est. s"], tablefmt="simple"))
    cost = (f"about {sum(known) / 60:.0f} min of run time for the {len(known)} with an estimate "
            "(mean of finished runs of the same method, per epoch)" if known else
            "nothing to run" if not todo else "no estimate yet (nothing finished)")
    print(f"\n{len(rows)} runs: {len(rows) - len(todo)} done, {len(todo)} to do; {cost}.")


def cmd_eval(args) -> None:
    record, where = eval_record(args)
    _emit(args, record, where)


def eval_record(args) -> tuple[dict, Path | None]:
    """`bench eval`'s record: a checkpoint evaluated (against its base with --base); with --out, kept as a run
    folder the leaderboard shows as an "external" row (the folder: None without --out)."""
    _check_external(args)
    with results_only():
        return _eval_record(args)


def _check_external(args) -> None:
    """--out's companions, before any work: a row needs a name no registered method has, a base and a target."""
    from forgetbench.method import methods

    given = [f for f, v in (("--name", args.name), ("--seed", args.seed)) if v is not None]
    if args.out is None:
        if given:
            raise UserError(f"{' and '.join(given)} name the leaderboard row `bench eval --out DIR` writes; add --out.")
        return
    if args.name is None or args.base is None:
        raise UserError("bench eval --out keeps the checkpoint as a leaderboard row: it needs --name NAME (the row's "
                        "method name) and --base MODEL (the model it was tuned from: deltas, flips and KL).")
    if args.name in methods.names():
        raise UserError(f"--name {args.name} is a registered method; an outside checkpoint's row needs a name of its "
                        "own (e.g. {args.name}_trl), so it is never mixed with runs trained here.")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", args.name):
        raise UserError(f"--name {args.name!r}: use letters, digits and _ . + - (it names the run folder).")
    out_folder(args.out)


def _eval_record(args) -> tuple[dict, Path | None]:
    import time
    from dataclasses import replace

    from forgetbench.core.environment import versions
    from forgetbench.core.store import stable_hash
    from forgetbench.runner.evaluation_plan import plan, target_and_suites
    from forgetbench.runner.stages import (
        build_record,
        check_tuned_from,
        load_record,
        log,
        measure,
        provenance,
        weight_change,
        write_run,
    )
    from forgetbench.task import default_preset
    from forgetbench.toolbox.model_sources import locate, resolve_model

    start = time.perf_counter()
    for name in filter(None, (args.model, args.base)):     # both names checked before either model loads
        locate(name)
    preset = _preset(args)
    ev, kl = _settings(args, preset)
    suite_names = args.suite or (list(preset.suites) if preset else None)
    target = args.target or (preset.target if preset else None) or (None if suite_names else default_preset().target)
    tgt, suite_list = target_and_suites(target, suite_names, _include_path(args))
    if args.out is not None and tgt is None:
        raise UserError("bench eval --out keeps a leaderboard row, which needs a target: add --target or --preset.")
    data_dir = _data_dir(args, preset)
    suites = [s.name for s in suite_list]
    if args.out is not None:
        spec = _external_spec(args, target=tgt.name, suites=suites, ev=ev, kl=kl)
        where = Path(args.out) / f"{args.name}-s{spec['seed']}-{stable_hash(spec, 12)}"
        if (where / "result.json").exists():
            log(f"already done: {where}")
            return load_record(where), where
    evals = plan(tgt, suite_list, data_dir)
    code = versions()
    tuned = resolve_model(args.model, _placement(args))
    # --model-args (an adapter, a revision) describe the checkpoint evaluated, not its base
    base = resolve_model(args.base, replace(_placement(args), model_args=())) if args.base else None
    if args.out is not None:
        check_tuned_from(base.model, tuned.model, names=(args.model, args.base))
    measured = measure(base, tuned.model, tuned.tokenizer, evals=evals, settings=ev, kl=kl if base else None,
                       data_dir=data_dir)
    prov = provenance(code=code, base=base, evals=evals, items=measured.items, eval_settings=ev, data_dir=data_dir)
    prov |= {"model_fingerprint": tuned.fingerprint, "base_fingerprint": base.fingerprint if base else None}
    if args.out is None:
        spec = {"model": args.model, "base": args.base, "target": tgt.name if tgt else None, "suites": suites,
                "eval": ev.to_dict()}
        record, _ = build_record(kind="eval", run_id=f"eval-{stable_hash(spec, 12)}", spec=spec, provenance=prov,
                                 measured=measured, eval_settings=ev, wall_seconds=time.perf_counter() - start)
        return record, None
    measured.metrics["weight_change"] = weight_change(base.model, tuned.model)
    record, files = build_record(kind="external", run_id=where.name, spec=spec, provenance=prov, measured=measured,
                                 eval_settings=ev, wall_seconds=time.perf_counter() - start)
    write_run(where, record, files)
    return load_record(where), where


def _external_spec(args, *, target: str, suites: list[str], ev, kl) -> dict:
    """An outside checkpoint's spec in a trained run's shape: "model" is the base (a track is the runs of one
    base), the row's method is --name, and nothing was trained here (no hyperparameters, budget or data)."""
    from dataclasses import asdict

    from forgetbench.toolbox.device import model_args
    device, dtype = _placement(args).resolved()
    spec = {"method": args.name, "model": args.base, "checkpoint": args.model, "target": target, "suites": suites,
            "seed": args.seed or 0, "params": {}, "budget": {}, "data": None, "eval": ev.to_dict(), "kl": asdict(kl),
            "placement": {"device": device.split(":")[0], "dtype": dtype}}
    if args.model_args:       # they describe the checkpoint (an adapter, a revision), not its base
        spec["checkpoint_args"] = dict(model_args(args.model_args))
    if args.include_path:
        spec["include_path"] = str(_include_path(args))
    return spec


def cmd_kl(args) -> None:
    from forgetbench.core.settings import KLSettings
    from forgetbench.toolbox.model_sources import locate

    settings = KLSettings(args.samples, args.max_new_tokens, args.seed)
    for name in (args.base, args.model):       # both names checked before either model loads
        locate(name)

    from forgetbench.runner.kl import estimate
    from forgetbench.toolbox.model_sources import resolve_model
    with results_only():
        base, tuned = resolve_model(args.base, _placement(args)), resolve_model(args.model, _placement(args))
        if base.tokenizer.get_vocab() != tuned.tokenizer.get_vocab():
            raise UserError(f"{args.base} and {args.model} have different vocabularies; KL between them is "
                            "undefined.")
        kl, _ = estimate(base, tuned.model, settings)
    print(json.dumps(kl, sort_keys=True) if args.json else _kl_line(kl))


def cmd_methods(args) -> None:
    words = args.words
    if words[:1] == ["new"]:
        from forgetbench.cli.scaffold import new_method
        if len(words) != 2:
            raise UserError("bench methods new NAME: give the new method's name, e.g. bench methods new my_method.")
        for path in new_method(words[1], Path(args.root) if args.root else None):
            print(path)
        return
    if len(words) > 1:
        raise UserError(f"Unexpected {' '.join(words[1:])!r}: `bench methods NAME` shows one method's settings; "
                        "`bench methods new NAME` adds one.")
    if words:
        print(_method_card(words[0]))
        return
    from forgetbench.task import default_preset
    from forgetbench.toolbox.model_sources import locate
    model_name = args.model or default_preset().model
    locate(model_name)

    from forgetbench.method import methods, trainable_share
    from forgetbench.toolbox.model_sources import skeleton
    from tabulate import tabulate
    model = skeleton(model_name, args.trust_remote_code)      # architecture only: no weights are read
    rows = []
    for name, cls in methods.items():
        try:
            with warnings.catch_warnings():     # libraries' deprecation notices are not this table's business
                warnings.simplefilter("ignore", FutureWarning)
                share = f"{trainable_share(cls(), model):.1%}"
        except ValueError as e:
            share = f"n/a: {e}"
        rows.append([name, cls.summary(), cls.source(), cls.cost, share])
    print(tabulate(rows, headers=["method", "summary", "source", "cost", f"trains (of {model_name})"],
                   tablefmt="simple", maxcolwidths=[None, 56, 44, None, 26]))


def _method_card(name: str) -> str:
    """One method: what it does, its source and cost, and each setting (`--set KEY=VALUE`) with its type, default
    and the values a sweep draws."""
    import dataclasses

    from forgetbench.method import methods
    from tabulate import tabulate
    cls = methods.get(name)
    rows = [[f.name, getattr(f.type, "__name__", f.type), json.dumps(f.default),
             ", ".join(map(json.dumps, cls.sweep.get(f.name, []))) or "—"] for f in dataclasses.fields(cls)]
    lines = [f"{name}: {cls.summary()}", f"source: {cls.source() or '—'}", f"cost: {cls.cost}", ""]
    lines += [tabulate(rows, headers=["setting (--set)", "type", "default", "swept over"], tablefmt="simple",
                       disable_numparse=True) if rows else "no settings"]
    return "\n".join(lines)


def cmd_tasks(args) -> None:
    from forgetbench.task import corpora, presets, suites, targets
    from forgetbench.toolbox.model_sources import sources
    from tabulate import tabulate
    rows = [["target", n, t.description] for n, t in targets.items()]
    rows += [["suite", n, s.description] for n, s in suites.items()]
    rows += [["preset", n, f"{p.description} [model {p.model}, target {p.target}, suites {', '.join(p.suites)}]"
              + (" (the default)" if p.default else "")] for n, p in presets.items()]
    rows += [["model", n, m.description + (f" [hub: {m.hub}]" if m.hub else "")] for n, m in sources.items()]
    rows += [["corpus", n, c.description] for n, c in corpora.items()]
    print(tabulate(rows, headers=["kind", "name", "description"], tablefmt="simple", maxcolwidths=[None, None, 90]))


def cmd_data_check(args) -> int:
    """`bench data check DIR`: 0 when every file the registered tasks read is there and whole, else 1."""
    from forgetbench.data.check import check
    from tabulate import tabulate
    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"bench data check {args.folder}: no such folder.")
    found = check(folder)
    if args.json:
        print(json.dumps([vars(f) for f in found], indent=1))
    else:
        print(tabulate([[f.path, f.status, f.detail, "; ".join(f.users)] for f in found],
                       headers=["file", "status", "", "read by"], tablefmt="simple", maxcolwidths=[None] * 3 + [60]))
    bad = [f for f in found if f.status != "present"]
    counts = {s: sum(f.status == s for f in found) for s in ("present", "missing", "malformed")}
    print(f"{folder}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + (
        "; a task whose files are missing runs from the hub when online (HF_DATASETS_OFFLINE=0), else it is "
        "reported missing by the run and left out of its suite" if bad else ""), file=sys.stderr)
    return 1 if bad else 0


def cmd_data_fetch(args) -> int:
    """`bench data fetch [NAME ...] --to DIR`: 0 when every file asked for is there and whole afterwards, else 1."""
    from forgetbench.data.fetch import check_reachable, fetch, select
    folder = Path(args.to).expanduser()
    if folder.exists() and not (folder.is_dir() and os.access(folder, os.W_OK)):
        raise UserError(f"bench data fetch --to {args.to}: not a folder this user can write to.")
    sources = select(args.names)
    check_reachable(sources)
    failed = [o for o in fetch(sources, folder) if o.status == "failed"]
    print(f"{folder}: {len(sources) - len(failed)} of {len(sources)} files there and whole"
          + (f"; {len(failed)} not: see above" if failed else f"; pass --data-dir {folder} to runs"), file=sys.stderr)
    if any(o.detail.startswith("cannot fetch") for o in failed):
        print("Without network access: copy a data folder in this layout (../shared/data is one) from a machine "
              "that has it, and check it with `bench data check DIR`, which marks the files that are the pinned "
              "bytes.", file=sys.stderr)
    return 1 if failed else 0


def _value(kind, flag: str, minimum: float = 0, maximum: float | None = None):
    """An argparse type: the one coercion of forgetbench.core.settings (finite numbers), from `minimum` to `maximum`."""
    def parse(text: str):
        from forgetbench.core.settings import coerce
        try:
            value = coerce(text, kind, flag)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if kind in (int, float) and value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{flag} must be at most {maximum}, got {value}")
        return value
    return parse


def _seed(flag: str):
    from forgetbench.core.settings import MAX_SEED
    return _value(int, flag, maximum=MAX_SEED)      # numpy's limit: transformers.set_seed fails above it


def _model_args(p, flag: str, help: str, required: bool = False) -> None:
    p.add_argument(flag, required=required, default=None, help=help)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: float32 on CPU, "
                   "bfloat16 on GPU)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code (off by default)")
    p.add_argument("--model-args", default=None, metavar="KEY=VALUE,...",
                   help="more from_pretrained arguments, as lm-eval takes them (revision=main,attn_implementation="
                   "sdpa,device_map=auto; peft=DIR merges a PEFT adapter), recorded in the spec")


def _eval_args(p) -> None:
    p.add_argument("--preset", default=None, help="fill in model, target, suites, budget and settings "
                   "(`bench tasks` lists presets); flags given explicitly win")
    p.add_argument("--data-dir", default=None, help="local data in the layout of ../shared/data "
                   "(default: $FORGETBENCH_DATA); without it, real tasks need the hub")
    p.add_argument("--include-path", default=None, metavar="DIR", help="lm-eval task YAMLs of your own, for "
                   "--suite lm_eval:TASK[,TASK] (any lm-eval task by name as a preserved suite)")
    from forgetbench.core.settings import FLAGS
    for f in FLAGS:
        if f.kind is bool:
            p.add_argument(f.flag, action=argparse.BooleanOptionalAction, default=None, help=f.help)
        else:
            p.add_argument(f.flag, type=_value(f.kind, f.flag), default=None, help=f.help)
    p.add_argument("--json", action="store_true", help="print the result record as JSON (one line per result)")


def parser() -> argparse.ArgumentParser:
    from forgetbench.core.settings import KL_SEED
    from forgetbench.method import methods  # names listed without importing a method (or torch)

    p = Parser(prog="bench", description="forgetbench: how much does fine-tuning make a model forget, and which "
               "method stops it? Offline by default (local models and --data-dir); HF_HUB_OFFLINE=0 "
               "HF_DATASETS_OFFLINE=0 to use the Hugging Face hub.", formatter_class=Help)
    p.add_argument("--version", action="version", version=f"forgetbench {version('forgetbench')}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="fine-tune with a method, evaluate base and tuned, estimate KL")
    r.add_argument("--method", required=True, help=f"one of: {', '.join(methods.names())} (`bench methods NAME` "
                   "shows one's settings)")
    _model_args(r, "--model", "a registered name (`bench tasks` lists them; default: the default preset's), a "
                "local folder, a .gguf file or a hub id")
    r.add_argument("--target", default=None, help="default: the preset's (without --preset: the default preset's)")
    r.add_argument("--suite", action="append", help="preserved suite (repeatable; lm_eval:TASK[,TASK] runs "
                   "lm-eval's tasks by name); default: the target's")
    r.add_argument("--seed", type=_seed("--seed"), default=0, help="seeds training, sampling and data order")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a method hyperparameter (repeatable; `bench methods NAME` lists them)")
    r.add_argument("--budget", action="append", default=[], metavar="KEY=VALUE",
                   help="override the training budget: epochs, lr, batch_size, examples, scheduler, ...")
    r.add_argument("--train-file", default=None, help="local training data for a target whose data is on the hub: "
                   "JSON, JSONL, CSV or Parquet records with the target's fields or TRL's prompt/completion or "
                   "messages (one user turn, one assistant turn)")
    r.add_argument("--save-model", action="store_true", help="also save the tuned model under the run folder")
    r.add_argument("--out", default="runs", help="the folder run folders are written under")
    r.add_argument("--report-to", default=None, metavar="none|tensorboard|wandb|mlflow",
                    help="experiment trackers (comma-separated) that get every training step's loss and, at the end, "
                    "the run's deltas and KL; TensorBoard logs under OUT/trackers/RUN_ID (default: none)")
    r.add_argument("--hub-push", default=None, metavar="ORG/NAME", help="push the finished run folder (record, items, "
                   "lm-eval's files) to this private Hugging Face dataset repository, under the run id; needs "
                   "HF_HUB_OFFLINE=0 and a token (default: no push)")
    r.add_argument("--config", default=None, help="a YAML file of these flags' fields (with _ for -; set and budget "
                   "as mappings, suite as a list); flags on the command line win")
    _eval_args(r)
    r.set_defaults(fn=cmd_run)

    sw = sub.add_parser("sweep", help="methods x configurations x seeds on an equal tuning budget (resumable; "
                        "local processes or Ray)")
    sw.add_argument("--config", default=None, help="a sweep file (YAML): these flags' fields (with _ for -), plus "
                    "grids (method -> knob -> values), set (method -> knob -> value) and budget_grid (lr, epochs)")
    sw.add_argument("--methods", default=None, help="comma-separated method names, or all (the default)")
    sw.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2)")
    sw.add_argument("--configs", type=_value(int, "--configs", minimum=1), default=None,
                    help="configurations per method, the same for every method (default 4)")
    sw.add_argument("--grid-seed", type=_seed("--grid-seed"), default=None,
                    help="seed of the configurations' draw (default 0)")
    sw.add_argument("--name", default=None, help="the sweep's name in its records (default: from model, target, "
                    "methods)")
    _model_args(sw, "--model", "as for `bench run`")
    sw.add_argument("--target", default=None, help="as for `bench run`")
    sw.add_argument("--suite", action="append", help="as for `bench run`")
    sw.add_argument("--budget", action="append", default=[], metavar="KEY=VALUE",
                    help="fixed budget overrides for every run (lr and epochs are swept)")
    sw.add_argument("--train-file", default=None, help="as for `bench run`")
    sw.add_argument("--executor", choices=["local", "ray"], default=None, help="local (default) or ray")
    sw.add_argument("--jobs", type=_value(int, "--jobs", minimum=1), default=None,
                    help="local: worker processes, each pinned to its share of the cores and one GPU (default 1: "
                    "in this process)")
    sw.add_argument("--ray-address", default=None, help="ray: auto or ray://HOST:PORT to join a cluster (default: "
                    "start a local one)")
    sw.add_argument("--retries", type=_value(int, "--retries"), default=None,
                    help="times a run whose worker died is retried (default: ray 2, local 1)")
    sw.add_argument("--out", default=None, help="run folders (default runs)")
    sw.add_argument("--report-to", default=None, metavar="none|tensorboard|wandb|mlflow",
                    help="experiment trackers (comma-separated) that get every training step's loss and, at the end, "
                    "the run's deltas and KL; TensorBoard logs under OUT/trackers/RUN_ID (default: none)")
    sw.add_argument("--dry-run", action="store_true", help="list every run, done or to do, with the estimated cost")
    _eval_args(sw)
    sw.set_defaults(fn=cmd_sweep)

    e = sub.add_parser("eval", help="evaluate a checkpoint fine-tuned anywhere (deltas and KL with --base)")
    _model_args(e, "--model", "the model to evaluate", required=True)
    e.add_argument("--base", default=None, help="the model it was tuned from: deltas, flips and KL against it")
    e.add_argument("--suite", action="append", help="preserved suite (repeatable; lm_eval:TASK[,TASK] as for run)")
    e.add_argument("--target", default=None, help="default (with no --suite): the default preset's target and its "
                   "suites")
    e.add_argument("--out", default=None, help="keep the result as a run folder under this folder: the leaderboard "
                   "shows it as an external row beside the registry's methods (needs --name and --base)")
    e.add_argument("--name", default=None, help="with --out: the row's method name (not a registered method's)")
    e.add_argument("--seed", type=_seed("--seed"), default=None, help="with --out: the seed the checkpoint was "
                   "trained with (checkpoints of one --name and different seeds form one row; default 0)")
    _eval_args(e)
    e.set_defaults(fn=cmd_eval)

    k = sub.add_parser("kl", help="Monte Carlo KL(base || model) on samples from the base")
    k.add_argument("--base", required=True, help="the model the samples are drawn from")
    _model_args(k, "--model", "the tuned model", required=True)
    k.add_argument("--samples", type=_value(int, "--samples"), default=256, help="sequences sampled from the base")
    k.add_argument("--max-new-tokens", type=_value(int, "--max-new-tokens"), default=48,
                   help="length cap of the samples")
    k.add_argument("--seed", type=_seed("--seed"), default=KL_SEED, help="seed of the samples")
    k.add_argument("--json", action="store_true", help="print the result as JSON")
    k.set_defaults(fn=cmd_kl)

    me = sub.add_parser("methods", help="list registered methods; NAME: one method's settings; new NAME: start a "
                        "new one from a template")
    me.add_argument("words", nargs="*", metavar="NAME | new NAME",
                    help="a method's name (its settings, types and defaults), or new NAME (write methods/NAME.py "
                    "and its test)")
    _model_args(me, "--model", "the model whose trainable share is shown (default: the default preset's)")
    me.add_argument("--root", default=None, help="new: the project folder holding methods/ and tests/ "
                    "(default: this checkout)")
    me.set_defaults(fn=cmd_methods)
    sub.add_parser("tasks", help="list registered targets and suites").set_defaults(fn=cmd_tasks)
    d = sub.add_parser("data", help="the local data files the registered tasks read: check a folder, or fetch "
                       "them into one").add_subparsers(dest="action", required=True, metavar="{check,fetch}")
    dc = d.add_parser("check", help="list every needed file's state in a data folder (present with sha256, "
                      "missing, malformed); exit 1 if any is missing or malformed")
    dc.add_argument("folder", help="the data folder, in the layout of ../shared/data")
    dc.add_argument("--json", action="store_true", help="print every file's state and full sha256 as JSON")
    dc.set_defaults(fn=cmd_data_check)
    df = d.add_parser("fetch", help="download the files into a data folder in the layout the tasks read "
                      "(pinned files checked by sha256; HellaSwag and SciQ from the hub); recorded in "
                      "DIR/FETCHED.json; needs network access")
    df.add_argument("names", nargs="*", metavar="NAME", help="suites, tasks, targets or corpora whose files to "
                    "fetch (default: every file any registered task reads)")
    df.add_argument("--to", required=True, metavar="DIR", help="the data folder to fill (created if absent); pass "
                    "it to runs as --data-dir")
    df.set_defaults(fn=cmd_data_fetch)

    for entry in entry_points(group="forgetbench.commands"):     # e.g. `bench leaderboard`, from its own package
        entry.load()(sub)
    for command in sub.choices.values():
        command.formatter_class = Help
        command.add_argument("--threads", type=_value(int, "--threads", minimum=1), default=None,
                             help="CPU threads for torch (default: the cores this process may use, or "
                             "$FORGETBENCH_THREADS)")
    return p


def one_line(text: str) -> str:
    """A message as one paragraph: a value quoted in it as given may hold a newline or another control character,
    shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def main(argv: list[str] | None = None) -> int:
    # Offline by default: datasets are local files and the hub may be unreachable. Set these to 0 to go online.
    for var in OFFLINE:
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    p = parser()
    argv = _dashed(sys.argv[1:] if argv is None else [str(a) for a in argv], p)
    try:
        argv = _with_config(argv, p)
    except UserError as e:
        print(f"bench run: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    Parser.argv = argv
    args = p.parse_args(argv)
    try:
        threads.configure(args.threads)         # before anything imports torch
        status = args.fn(args) or 0
    except UserError as e:
        print(f"bench: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; nothing partial was written.", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
