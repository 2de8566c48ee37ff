"""What a caller asks for, assembled once for every caller (the CLI, the Python API, run config files, sweep files):

    preset + target defaults + config file + the fields given (flags or keyword arguments)  ->  RunRequest

The fields are declared here (`RUN`, `EVAL`, `KL`: forgetbench.core.options), with their types, ranges and help;
the command line is built from the same declarations. Everything is checked before any model loads.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from forgetbench.core.errors import FieldError
from forgetbench.core.options import LIST, PAIRS, Option, checked, merged, read_config, require
from forgetbench.core.settings import FLAGS, KL_SEED, MAX_SEED, EvalSettings, KLSettings, coerce
from forgetbench.core.store import stable_hash, writable_folder
from forgetbench.toolbox.device import Placement, model_args


@dataclass(frozen=True)
class RunSpec:
    """What decides a run's numbers; its hash is the run's id."""

    method: str
    model: str
    target: str
    suites: tuple[str, ...]
    seed: int
    params: dict                    # the method's full hyperparameters (defaults filled in)
    budget: dict
    eval: dict
    kl: dict
    data: str                       # hash of the training data and every evaluated task's files
    placement: dict                 # device and dtype; model_args when given; bos: False where the model's
                                    # inputs begin with no BOS token (models.bos_convention), absent: they do
    # Not here: where an --include-path folder lives (its tasks' content is in `data`; the folder is in the record's
    # provenance), so that moving one's task YAMLs changes no run id.

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def run_id(self) -> str:
        return f"{self.method}-s{self.seed}-{stable_hash(self.to_dict(), 12)}"


@dataclass(frozen=True)
class RunRequest:
    """What a caller asks for: names and settings, checked but not yet planned (nothing loaded)."""

    method: str
    model: str
    target: str
    suites: tuple[str, ...] = ()
    seed: int = 0
    overrides: dict = field(default_factory=dict)      # --set key=value
    budget: dict = field(default_factory=dict)         # --budget key=value (over the target's budget)
    eval: EvalSettings = EvalSettings()
    kl: KLSettings = KLSettings()
    data_dir: Path | None = None
    train_file: Path | None = None
    include_path: Path | None = None                   # lm-eval task YAMLs for --suite lm_eval:TASK
    placement: Placement = Placement()
    out: Path = Path("runs")
    save_model: bool = False
    sweep_tag: dict | None = None                      # the sweep and configuration this run belongs to (the
                                                       # record's "sweep"; not in the run id: a run is the same
                                                       # whichever sweep asks)
    report_to: tuple[str, ...] = ()                    # experiment trackers (runner.tracking; not in the run id)
    hub_push: str | None = None                        # a dataset repository for the finished run (neither)


@dataclass(frozen=True)
class EvalRequest:
    """`bench eval`: a checkpoint tuned anywhere, evaluated on a track's items (against its base when given)."""

    model: str
    base: str | None
    target: str | None
    suites: tuple[str, ...]
    eval: EvalSettings
    kl: KLSettings
    data_dir: Path | None
    include_path: Path | None
    placement: Placement
    out: Path | None = None            # keep it as a leaderboard row (an "external" run folder) under this folder
    name: str | None = None            # that row's method name
    seed: int = 0


@dataclass(frozen=True)
class KLRequest:
    """`bench kl`: KL(base || model) of two models, on samples from the base."""

    base: str
    model: str
    settings: KLSettings
    placement: Placement


# ------------------------------------------------------------------------------------------------ the fields
def _seed(name: str, help: str, default=None) -> Option:
    return Option(name, help, int, default=default, minimum=0, maximum=MAX_SEED)   # numpy's limit (set_seed)


def model_options(help: str, *, required: bool = False) -> tuple[Option, ...]:
    return (
        Option("model", help, required=required),
        Option("device", "cpu, cuda, cuda:1 ... (default: cuda when available)"),
        Option("dtype", "float32 | bfloat16 | float16 (default: float32 on CPU, bfloat16 on GPU)"),
        Option("trust_remote_code", "allow a hub model's own code (off by default)", bool),
        Option("model_args", "more from_pretrained arguments, as lm-eval takes them (revision=main,attn_implementation="
               "sdpa,device_map=auto; peft=DIR merges a PEFT adapter), recorded in the spec", metavar="KEY=VALUE,..."),
    )


SETTINGS = tuple(Option(f.dest, f.help, f.kind) for f in FLAGS)      # evaluation and KL settings
EVALUATION = (
    Option("preset", "fill in model, target, suites, budget and settings (`bench tasks` lists presets); flags given "
           "explicitly win"),
    Option("data_dir", "a local data folder, one folder per dataset (`bench data fetch --to DIR` builds one) "
           "(default: $FORGETBENCH_DATA); without it, real tasks need the hub"),
    Option("include_path", "lm-eval task YAMLs of your own, for --suite lm_eval:TASK[,TASK] (any lm-eval task by "
           "name as a preserved suite)", metavar="DIR"),
    *SETTINGS,
)
TRACKERS = Option("report_to", "experiment trackers (comma-separated) that get every training step's loss and, at the "
                  "end, the run's deltas and KL; TensorBoard logs under OUT/trackers/RUN_ID (default: none)",
                  metavar="none|tensorboard|wandb|mlflow")
RUN = (
    Option("method", "a registered method (`bench methods` lists them; `bench methods NAME` shows one's settings)",
           required=True),
    *model_options("a registered name (`bench tasks` lists them; default: the default preset's), a local folder, a "
                   ".gguf file or a hub id"),
    Option("target", "default: the preset's (without --preset: the default preset's)"),
    Option("suite", "preserved suite (repeatable; lm_eval:TASK[,TASK] runs lm-eval's tasks by name); default: the "
           "target's", LIST),
    _seed("seed", "seeds training, sampling and data order", default=0),
    Option("set", "a method hyperparameter (repeatable; `bench methods NAME` lists them)", PAIRS, metavar="KEY=VALUE"),
    Option("budget", "override the training budget: epochs, lr, batch_size, examples, scheduler, ...", PAIRS,
           metavar="KEY=VALUE"),
    Option("train_file", "local training data for a target whose data is on the hub: JSON, JSONL, CSV or Parquet "
           "records with the target's fields or TRL's prompt/completion or messages (one user turn, one assistant "
           "turn)"),
    Option("save_model", "also save the tuned model under the run folder", bool),
    Option("out", "the folder run folders are written under", default="runs"),
    TRACKERS,
    Option("hub_push", "push the finished run folder (record, items, lm-eval's files) to this private Hugging Face "
           "dataset repository, under the run id; needs HF_HUB_OFFLINE=0 and a token (default: no push)",
           metavar="ORG/NAME"),
    Option("config", "a YAML file of these flags' fields (with _ for -; set and budget as mappings, suite as a list); "
           "flags on the command line win"),
    *EVALUATION,
)
EVAL = (
    *model_options("the model to evaluate", required=True),
    Option("base", "the model it was tuned from: deltas, flips and KL against it"),
    Option("suite", "preserved suite (repeatable; lm_eval:TASK[,TASK] as for run)", LIST),
    Option("target", "default (with no --suite): the default preset's target and its suites"),
    Option("out", "keep the result as a run folder under this folder: the leaderboard shows it as an external row "
           "beside the registry's methods (needs --name and --base)"),
    Option("name", "with --out: the row's method name (not a registered method's)"),
    _seed("seed", "with --out: the seed the checkpoint was trained with (checkpoints of one --name and different "
          "seeds form one row; default 0)"),
    *EVALUATION,
)
KL = (
    Option("base", "the model the samples are drawn from", required=True),
    *model_options("the tuned model", required=True),
    Option("samples", "sequences sampled from the base", int, default=256, minimum=0),
    Option("max_new_tokens", "length cap of the samples", int, default=48, minimum=0),
    _seed("seed", "seed of the samples", default=KL_SEED),
)


# ------------------------------------------------------------------------------------------------ assembly
def run_values(given: dict, *, where: str) -> dict:
    """`bench run`'s fields: the given ones checked, under a config file's (`config`) where one is named."""
    values = checked(RUN, given, where=where, command="bench run")
    if values.get("config") is None:
        return require(RUN, values)
    from_file, _ = read_config(values["config"], options=RUN, command="bench run")
    return require(RUN, merged(values, from_file))


def run_request(values: dict, *, template: bool = False) -> RunRequest:
    """The run request the fields describe: the preset's model, target, suites, budget and settings, with every field
    given explicitly winning (no preset: the default preset's model and target, the target's suites). A `template`
    (a sweep's: its runs name their own methods and seeds) names no method, and its folder is checked by the sweep."""
    from forgetbench.method import methods
    from forgetbench.runner import tracking
    from forgetbench.task import default_preset

    method = "" if template else methods.get(values["method"]) and values["method"]   # an unknown name fails here,
    out = Path(values.get("out") or "runs")                                             # before torch is imported
    preset = _preset(values)
    fallback = preset or default_preset()
    ev, kl = settings(values, preset)
    return RunRequest(
        method=method, model=values.get("model") or fallback.model,
        target=values.get("target") or fallback.target,
        suites=tuple(values.get("suite") or (preset.suites if preset else ())), seed=values.get("seed") or 0,
        overrides=dict(values.get("set") or {}), budget=(dict(preset.budget) if preset else {}) |
        dict(values.get("budget") or {}), eval=ev, kl=kl, data_dir=data_dir(values, preset),
        train_file=Path(values["train_file"]) if values.get("train_file") else None, placement=placement(values),
        include_path=include_path(values), out=out if template else writable_folder(out),
        save_model=bool(values.get("save_model")), report_to=tracking.parse(values.get("report_to")),
        hub_push=tracking.hub_repo(values.get("hub_push")))


def eval_request(given: dict, *, where: str) -> EvalRequest:
    """`bench eval`'s request: the checkpoint, its base, the track's target, suites and settings; with `out`, the
    companions a leaderboard row needs (a name of its own, a base, a target), all checked before any work."""
    values = require(EVAL, checked(EVAL, given, where=where, command="bench eval"))
    preset = _preset(values)
    ev, kl = settings(values, preset)
    suites = values.get("suite") or (tuple(preset.suites) if preset else None)
    target = values.get("target") or (preset.target if preset else None)
    if target is None and not suites:
        from forgetbench.task import default_preset
        target = default_preset().target
    request = EvalRequest(model=values["model"], base=values.get("base"), target=target, suites=tuple(suites or ()),
                          eval=ev, kl=kl, data_dir=data_dir(values, preset), include_path=include_path(values),
                          placement=placement(values), seed=values.get("seed") or 0,
                          out=Path(values["out"]).expanduser() if values.get("out") else None, name=values.get("name"))
    _check_external(request, seed_given=values.get("seed") is not None)
    return request


def kl_request(given: dict, *, where: str) -> KLRequest:
    values = require(KL, checked(KL, given, where=where, command="bench kl"))
    settings = KLSettings(values.get("samples", 256), values.get("max_new_tokens", 48), values.get("seed", KL_SEED))
    return KLRequest(base=values["base"], model=values["model"], settings=settings, placement=placement(values))


def _check_external(request: EvalRequest, *, seed_given: bool) -> None:
    """`out`'s companions, before any work: a row needs a name no registered method has, a base and a target."""
    from forgetbench.method import methods

    given = [f for f, v in (("name", request.name), ("seed", seed_given or None)) if v is not None]
    if request.out is None:
        if given:
            raise FieldError(given[0], "names the leaderboard row `bench eval` keeps with --out; add --out.")
        return
    if request.name is None or request.base is None:
        raise FieldError("out", "keeps the checkpoint as a leaderboard row: it needs --name NAME (the row's method "
                         "name) and --base MODEL (the model it was tuned from: deltas, flips and KL).")
    if request.name in methods:         # a built-in, an entry point, or a class named by module path
        raise FieldError("name", f"is a registered method; an outside checkpoint's row needs a name of its own (e.g. "
                         f"{request.name}_trl), so it is never mixed with runs trained here.", value=request.name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", request.name):
        raise FieldError("name", "use letters, digits and _ . + - (it names the run folder).", value=request.name)
    writable_folder(request.out)


def _preset(values: dict):
    from forgetbench.task import presets
    return presets.get(values["preset"]) if values.get("preset") else None


def settings(values: dict, preset) -> tuple[EvalSettings, KLSettings]:
    """Evaluation and KL settings: the fields given, else the preset's, else the defaults."""
    given = {"eval": dict(preset.eval) if preset else {}, "kl": dict(preset.kl) if preset else {}}
    for f in FLAGS:
        value = values.get(f.dest)
        if value is not None:
            given[f.section][f.key] = value
            if f.key == "limit":                # an explicit limit applies to every task
                given["eval"].pop("task_limits", None)
    ev = given["eval"]
    if "batch_size" not in ev and (values.get("device") or "cuda").startswith("cuda"):
        from forgetbench.toolbox.device import cuda_available
        if cuda_available():                    # lm-eval's automatic batch size on a GPU
            ev["batch_size"] = "auto"
    if ev.get("batch_size") not in (None, "auto"):
        ev["batch_size"] = coerce(str(ev["batch_size"]), int, f"--eval-batch-size {ev['batch_size']}")
    return EvalSettings(**ev), KLSettings(**given["kl"])


def placement(values: dict) -> Placement:
    return Placement(values.get("device"), values.get("dtype"), bool(values.get("trust_remote_code")),
                     model_args(values.get("model_args")))


def data_dir(values: dict, preset) -> Path | None:
    from forgetbench.task import data_dir_from, hub_available
    data = data_dir_from(values.get("data_dir"))
    if preset and preset.needs_data and data is None and not hub_available():
        raise FieldError("data_dir", f"is needed: preset {preset.name} runs offline from local data. Pass a data "
                         "folder, one folder per dataset (`bench data fetch --to DIR` builds one), or set "
                         "FORGETBENCH_DATA, or run online (HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0) from the hub.")
    return data


def include_path(values: dict) -> Path | None:
    return Path(values["include_path"]).expanduser() if values.get("include_path") else None

