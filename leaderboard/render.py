"""A track as a table: Markdown, LaTeX (booktabs), a self-contained HTML page, or CSV for tools."""

from __future__ import annotations

import html
import io
import math
import re
import shlex
from dataclasses import asdict

from forgetbench.leaderboard import frontier, predictors
from forgetbench.leaderboard.tracks import Row, Track
from forgetbench.records.schema import legacy_sections

FORMATS = ("markdown", "latex", "html", "csv")
SUFFIX = {"markdown": "md", "latex": "tex", "html": "html", "csv": "csv"}


def _pts(x: float, sign: bool = True) -> str:
    return f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def _ci(iv) -> str:
    return f"{_pts(iv.estimate)} [{_pts(iv.low)}, {_pts(iv.high)}]" + ("*" if iv.excludes_zero else "")


def _row_ci(r: Row, iv) -> str:
    """A row's interval: method-level with two seeds or more; with one, that trained model's (items only),
    marked ¹ and never starred: one seed supports no claim about the method."""
    if r.method_level:
        return _ci(iv)
    return f"{_pts(iv.estimate)} [{_pts(iv.low)}, {_pts(iv.high)}]¹"


def _difference(r: Row, base: str) -> str:
    if r.difference is None:
        return "—" if r.method == base and r.is_default else "— (1 seed)" if not r.method_level else "—"
    return _ci(r.difference)


def ranked_rows(track: Track) -> list[Row]:
    """The leaderboard's order: methods as the frontier ranks them (unranked last, by name), each method's
    configurations by suite-average Δ, best first."""
    place = {f.method: i for i, f in enumerate(frontier.of(track)[0])}
    return sorted(track.rows, key=lambda r: (place[r.method], -r.average.estimate))


def columns(track: Track) -> list[tuple[str, str | None, list, str]]:
    """(header, better: 'max' | 'min' | None, [(text, value compared for bold)] per row, what it means)."""
    rows = ranked_rows(track)
    base = track.baseline
    ci = ("95% interval for the method (seeds the unit of replication, items nested: t on Welch-Satterthwaite df); "
          "* it excludes 0; ¹ one seed: that trained model's interval over items, no claim about the method")
    cols = [("method", None, [(r.label, None) for r in rows],
             "The method (methods/NAME.py) and the settings this row varies from its defaults; rows in the frontier's "
             "ranking of their method, each method's configurations by suite-average Δ"),
            ("seeds", None, [(str(len(r.runs)), None) for r in rows], "Runs (one per seed) averaged in this row"),
            ("target %", "max", [(_pts(r.target_score, False), round(100 * r.target_score, 1)) for r in rows],
             f"The tuned model's score on the target's held-out items ({track.target_task}), mean over seeds"),
            ("target gain [95% CI]", "max", [(_row_ci(r, r.target_gain), round(100 * r.target_gain.estimate, 1))
                                            for r in rows], f"Target score, tuned minus base, points; {ci}")]
    for s in track.suites:
        cols.append((f"{s} Δ [95% CI]", "max", [(_row_ci(r, r.suites[s]), round(100 * r.suites[s].estimate, 1))
                                                for r in rows],
                     f"Preserved suite {s} ({', '.join(track.tasks[s])}): tuned minus base, mean of its tasks' "
                     f"deltas, points (negative: forgetting); {ci}"))
    cols += [("suite avg Δ [95% CI]", "max", [(_row_ci(r, r.average), round(100 * r.average.estimate, 1))
                                              for r in rows],
              f"The mean of the suite deltas, points: the forgetting number; {ci}"),
             (f"vs {base} [95% CI]", "max", [(_difference(r, base), None if r.difference is None else
                                              round(100 * r.difference.estimate, 1)) for r in rows],
              f"Suite-average Δ minus {base}'s (its default row), points: the difference of the methods, with its "
              "95% interval (Welch on the seeds of both, items shared); — where a row has one seed"),
             ("seed SD", None, [("—" if r.seed_sd is None else _pts(r.seed_sd, False), None) for r in rows],
              "Between-seed standard deviation of the suite-average Δ, points"),
             ("KL ± SE", "min", [(f"{r.kl:.3g} ± {r.kl_se:.2g}", float(f"{r.kl:.3g}")) for r in rows],
              "KL(base ‖ tuned) in nats per sequence on samples from the base model, mean over seeds ± SE"),
             ("r→w %", "min", [(_pts(r.forgetting, False), round(100 * r.forgetting, 1)) for r in rows],
              "Preserved items the base model got right and the tuned model wrong, % of items"),
             ("w→r %", "max", [(_pts(r.transfer, False), round(100 * r.transfer, 1)) for r in rows],
              "Preserved items the base model got wrong and the tuned model right (backward transfer), % of items")]
    if all(r.shift is not None for r in rows):
        cls = track.first.answer_class
        cols.append((f"{cls} mass Δ", "min", [(_pts(r.shift), round(100 * r.shift, 1)) for r in rows],
                     f"Change in the next-token probability on the target's answer class ({cls}) after preserved "
                     "prompts, points (lower is better)"))
    cols.append((f"p vs {base} (Holm)", None, [(_p(r), None) for r in rows],
                 "Two-sided t test of that difference (method level), Holm-adjusted over the table's rows with two "
                 "seeds or more; † p < 0.05; — one seed (no claim)"))
    return cols


def _p(r: Row) -> str:
    if r.p_holm is None:
        return "—"
    return f"{r.p_holm:.2g}" + ("†" if r.p_holm < 0.05 else "")


Grid = tuple[list[str], list[list[tuple[str, bool]]], list[str]]


def grid(track: Track) -> Grid:
    """Headers, per row (cell text, is the best in its column), and what each column means."""
    return _marked(columns(track), len(track.rows))


def _marked(cols, n: int) -> Grid:
    best = {}
    for name, better, cells, _ in cols:
        values = [v for _, v in cells if v is not None]
        top = (max if better == "max" else min)(values) if better and values else None
        if values.count(top) == 1 and len(values) > 1:  # bold is a unique best: a tie marks nothing
            best[name] = top
    body = [[(cells[i][0], name in best and cells[i][1] == best[name]) for name, _, cells, _ in cols]
            for i in range(n)]
    return [c[0] for c in cols], body, [c[3] for c in cols]


# the share of resamples a matched gain is reached in, after a cell's interval (_matched): printed apart or shortened
RESAMPLE_SHARE = re.compile(r" \((\d+%) of resamples\)$")


def _key_column(headers: list[str]) -> int:
    """The column that names a row (kept in view, left-aligned)."""
    return next((i for i, h in enumerate(headers) if h in ("method", "predictor")), 0)


def _matched(m) -> str:
    """The staircase's value at a matched gain with its unconditional interval (its lower end "not reached" when
    more than 2.5 % of the resamples reach no configuration there) and P(reach) when below 99.5 %."""
    if m is None or not m.is_reached:
        return "not reached" + (f" (reached in {m.reached:.0%} of resamples)" if m and m.reached >= 0.005 else "")
    low = "not reached" if math.isinf(m.low) else _pts(m.low)
    return (f"{_pts(m.estimate)} [{low}, {_pts(m.high)}]"
            + (f" ({m.reached:.0%} of resamples)" if m.reached < 0.995 else ""))


def _ratio(x: float) -> str:
    return "—" if x != x else f"{x:.2f}×"


def frontier_columns(track: Track) -> list[tuple[str, str | None, list]]:
    """The frontier table: one row per method, ranked by forgetting at matched learning."""
    frs, info = frontier.of(track)
    base = track.baseline

    def value(m):
        return round(100 * m.estimate, 1) if m is not None and m.is_reached else None

    ci = "95% bootstrap interval over seeds and items, unconditional (not reached counts)"
    cols = [("rank (95% range)", None, [(_rank(f), None) for f in frs],
             "Ranked by the preserved Δ at the highest matched gain, then the lower ones, with the range of ranks 95% "
             "of the bootstrap resamples give it: methods whose ranges overlap are not told apart; — reaches none"),
            ("method", None, [(f.method + " (external)" * f.rows[0].external, None) for f in frs],
             "The method (methods/NAME.py), or an external checkpoint (trained elsewhere; `bench eval --out`)"),
            ("points (on front)", None, [(f"{len(f.points)} ({sum(c in f.points for c in f.corners)})", None)
                                         for f in frs],
             "Settings evaluated (a post-hoc method, such as WiSE-FT's α grid, evaluates several from each training "
             "run: its training runs are as many as the others'), and how many of them are corners of its front"),
            ("best gain", "max", [(_pts(max(x for x, _ in f.points)), round(100 * max(x for x, _ in f.points), 1))
                                  for f in frs], "The largest target gain of any of its configurations, points")]
    for lv, g in sorted(info["gains"].items()):
        cols.append((f"Δ at {lv:.0%} of headroom (+{100 * g:.1f}) [95% CI]", "max",
                     [(_matched(f.matched.get(lv)), value(f.matched.get(lv))) for f in frs],
                     f"The best preserved suite-average Δ among the method's configurations that gain at least "
                     f"{100 * g:.1f} points ({lv:.0%} of the target's headroom); {ci}; not reached: no "
                     "configuration learns that much"))
        cols.append((f"p vs {base} (Holm)", None, [(_pval(f.matched.get(lv)), None) for f in frs],
                     f"Two-sided bootstrap test against {base} at the same gain, Holm-adjusted over the table's "
                     "methods and levels; † p < 0.05"))
    if info["gains"]:
        top = max(info["gains"].values())
        cols.append((f"mean Δ over gains 0–{100 * top:.1f} [95% CI]", "max",
                     [(_matched(f.area), value(f.area)) for f in frs],
                     f"The staircase's mean preserved Δ over target gains 0 to {100 * top:.1f} points; {ci}"))
    wall = [f.cost["wall_seconds"] for f in frs]
    cols += [("s / run", "min", [("—" if w != w else f"{w:.0f} ({_ratio(f.cost['relative']['wall'])})",
                                  None if w != w else round(w)) for f, w in zip(frs, wall)],
              f"Wall seconds per run, mean over the method's runs (× {base}'s)"),
             ("train tokens × ref", "min", [(_ratio(f.cost["relative"]["forward_backward"]), None) for f in frs],
              f"Tokens through the tuned model with gradients in training, × {base}'s"),
             ("reference fwd × ref", None, [(_ratio(f.cost["relative"]["forward_only"]), None) for f in frs],
              f"Forward passes without gradients in training (e.g. a frozen base model's), × {base}'s tokens")]
    return cols


def _rank(f) -> str:
    if f.rank is None:
        return "—"
    low, high = f.rank_interval or (f.rank, f.rank)
    return f"{f.rank} ({low}–{high})" if (low, high) != (f.rank, f.rank) else str(f.rank)


def _pval(m) -> str:
    """Holm-adjusted; "< x" at the resampling floor (no replicate crossed zero: x = 2 / resamples, adjusted)."""
    if m is None or m.p_holm is None:
        return "—"
    if m.p == 0:                       # the adjusted resampling floor: an upper bound
        return f"<{m.p_holm:.1g}" + ("†" if m.p_holm <= 0.05 else "")
    return f"{m.p_holm:.2g}" + ("†" if m.p_holm < 0.05 else "")


def frontier_grid(track: Track) -> Grid:
    return _marked(frontier_columns(track), len(frontier.of(track)[0]))


def frontier_legend(track: Track) -> list[str]:
    frs, info = frontier.of(track)
    if not info["configured"]:
        return ["One configuration per method: points, not frontiers, and no claim at matched learning (a method's "
                "single point cannot say what it would forget at another gain). The table below compares the points."]
    if not info["gains"]:
        return ["The base model already scores full marks on the target: no headroom, no matched gains."]
    levels = ", ".join(f"{lv:.0%}" for lv in sorted(info["gains"]))
    return [
        "Frontier: a method's configurations as points (target gain, preserved suite-average Δ), seeds averaged. Δ at "
        "L of headroom: the best Δ among the method's configurations that gain at least L × the target's headroom "
        f"(1 − the base model's score: {100 * info['headroom']:.1f} points; L = {levels}), what was measured there "
        "(the staircase); the levels are fixed before any method is run, so no method's noisy best gain sets them. "
        "not reached: no configuration learns that much. mean Δ: the staircase's mean over gains 0 to the highest "
        "level. Ranked by Δ at the highest level, then the lower. The straight line between a method's front points "
        "(plotted) is interpolation, not a measurement: it is in the CSV only, as interpolated.",
        f"Intervals: 95% percentile bootstrap ({frontier.N_RESAMPLES:,} resamples of seeds, then items within each "
        "task; the same item resample for every method; each row's seeds spread by √(n/(n−1)) first, so a seed mean's "
        "bootstrap variance is the unbiased one), unconditional: a resample in which no configuration reaches the gain "
        "counts as not reached, below every Δ (the lower end reads not reached when that happens in more than 2.5% of "
        "them; the share that reach is shown when below 99.5%). With one seed per row the intervals are over items "
        f"only. p: two-sided bootstrap test against {track.baseline} at the same gain over every resample (not "
        "reached below any Δ), Holm-adjusted over the table's methods and levels (< x: at the resampling floor); "
        "† p < 0.05.",
        "Cost, per run and mean over the method's runs: wall seconds (× the reference method's), and in training "
        "the tokens through the tuned model with gradients (forward and backward) and reference forwards without "
        "(e.g. a frozen base model's logits), both × the reference method's training tokens; one-off preparation "
        "(EWC's Fisher, generating samples) is in the wall time only.",
    ]


def facts(track: Track) -> list[tuple[str, str]]:
    """What the table was computed from, as (label, text) lines."""
    first = track.first
    spec, prov = first.spec, first.record["provenance"]
    ev, kl, b = spec["eval"], spec["kl"], track.budget
    seeds = sorted({s for r in track.rows for s in r.seeds})
    commits = sorted({(c := r.record["provenance"]["commit"]) and c[:12] + ("-dirty" if c.endswith("-dirty") else "")
                      or "unknown" for r in track.runs})
    lim = ("all items" if ev["limit"] is None else f"{ev['limit']:.0%} of each task's items"
           if isinstance(ev["limit"], float) else f"{ev['limit']} items per task")
    if ev["task_limits"]:
        lim += " (" + ", ".join(f"{t} {n}" for t, n in sorted(ev["task_limits"].items())) + ")"
    decoding = ("greedy" if ev["temperature"] == 0 else
                f"temperature {ev['temperature']}, {ev['samples_per_problem']} samples per problem")
    return [
        ("model", f"{spec['model']}{_described(spec['model'])} (weights sha256 {prov['base_fingerprint'][:16]}…), "
                  f"{spec['placement']['device']}, {spec['placement']['dtype']}"),
        ("target", f"{spec['target']}, scored on {track.target_task} ({track.n_target} items)"),
        ("suites", "; ".join(f"{s}: {', '.join(track.tasks[s])} ({track.n_suite[s]} items)" for s in track.suites)),
        ("seeds", f"{', '.join(map(str, seeds))} ({len(track.runs)} runs)"),
        ("training budget", f"{b['epochs']} epochs, lr {b['lr']}, batch {b['batch_size']}, {b['scheduler']} schedule"
                            + (f", {b['examples']} target examples" if b["examples"] else "")
                            + ("; rows name the fields they vary" if any(r.budget for r in track.rows) else "")),
        ("evaluation", f"lm-eval {ev['lm_eval']}, {ev['num_fewshot']}-shot, {lim}; generation backend "
                       f"{ev['backend']}, {decoding}, at most {ev['max_new_tokens']} new tokens, "
                       f"{'chat template' if ev['chat_template'] else 'no chat template'}; "
                       f"batch size {ev['batch_size']}"),
        ("KL(base ‖ tuned)", f"{kl['samples']} samples from the base model at temperature 1, up to "
                              f"{kl['max_new_tokens']} new tokens, seed {kl['seed']}"),
        ("versions", f"forgetbench {prov['forgetbench']} (commit {', '.join(commits)}), torch {prov['torch']}, "
                     f"transformers {prov['transformers']}, lm-eval {prov['lm_eval']}, python {prov['python']}"),
        ("machines", f"{'; '.join(track.machines)}; the base model's outcomes on all {track.base_items} items agree "
                     f"across {'them' if len(track.machines) > 1 else 'its runs'} (0 differ)"),
    ] + ([("note", track.note)] if track.note else [])


def _described(model: str) -> str:
    """A registered base model's description (what its weights are), for the header."""
    from forgetbench.toolbox.model_sources import sources
    return f": {sources.get(model).description}" if model in sources.names() else ""


def legend(track: Track) -> list[str]:
    n_kl = track.first.spec["kl"]["samples"]
    mde = ", ".join(f"{s} {100 * track.mde[s]:.1f} pts ({track.n_suite[s]} items)" for s in track.suites)
    lines = [
        "Scores and deltas in percentage points. Δ: tuned minus base model on the same items, mean over seeds, "
        "with a 95% interval for the method: training seeds are the unit of replication and the items are nested in "
        "them (each seed's Δ; SE² = between-seed variance / seeds plus the variance of the items every seed "
        "shares, its seeds' own item noise counted once; t quantile on Welch-Satterthwaite degrees of freedom; "
        "the seeds' variance never below their own item noise, which makes it conservative at 2-3 seeds: on simulated "
        "tracks type-I error at most 5% and coverage at least 0.93 at 2-5 seeds, power low at 2; "
        "BENCHMARKS.md); * the interval excludes 0. A row with one seed has no between-seed "
        "variance: its interval (¹) is that trained model's, a bootstrap over items within each task, and it makes "
        "no claim about the method (no *, no p). suite avg: the mean of the suite deltas. seed SD: between-seed "
        "standard deviation of the suite-average delta.",
        f"KL: KL(base ‖ tuned) in nats per sequence (token-exact estimator on {n_kl} base samples), mean over seeds "
        "± SE (Monte Carlo SE for one seed, between-seed SE of the mean for several). " + _truncation(track),
        "r→w / w→r: preserved items the base model got right and the tuned model wrong (forgetting) / the reverse "
        "(backward transfer), % of items, mean over seeds."
        + (f" {track.first.answer_class} mass Δ: change in the next-token probability the model puts on the "
           f"target's answer class ({track.first.answer_class}) right after preserved-suite prompts, points, mean "
           "over seeds (a shift toward the target's outputs; lower is better)."
           if all(r.shift is not None for r in track.rows) else ""),
        f"vs {track.baseline}: a row's suite-average Δ minus that of {track.baseline}'s default row, with its 95% "
        "interval (the same method-level procedure, Welch over both rows' seeds, the items shared); p: its two-sided "
        "t test, Holm-adjusted over the table's rows that have one (every configuration with two seeds or more "
        "counts as a test); † p < 0.05. Bold: the best value in its column, when no other row ties it.",
        f"Minimum detectable effect (α 0.05, power 0.8, paired SD of tuned vs base over items, mean over rows): "
        f"{mde}; suite average {100 * track.mde['average']:.1f} pts.",
    ]
    legacy = [r for r in track.runs if legacy_sections(r.record)]
    if legacy:
        fresh = len(track.runs) - len(legacy)
        lines.append(f"Recomputed from per-item files: every score and Δ of all {len(track.runs)} runs"
                     + (f", and KL and the mass Δ of {fresh}" if fresh else "") + f". KL and the mass Δ of "
                     f"{'the other' if fresh else 'all'} {len(legacy)} are their records' own values: those records "
                     "predate per-sequence KL and probe rows (schema 3).")
    if not any(r.method == track.baseline and r.is_default for r in track.rows):
        lines.append(f"No {track.baseline} run with default settings in this track: no p-values.")
    return lines


def _truncation(track: Track) -> str:
    """What the KL's length cap means for this track's samples (the same base samples for every run)."""
    cap = track.first.spec["kl"]["max_new_tokens"]
    cut = track.first.record["kl"].get("truncated_fraction")
    return (f"The samples are capped at {cap} new tokens, so this is the KL between the two models' distributions "
            f"over sequences truncated at {cap} tokens"
            + (f"; {100 * cut:.0f}% of the samples reached the cap before an end-of-sequence token." if cut is not None
               else "."))


def reproduce(track: Track, runs_dir: str = "runs") -> list[str]:
    """Shell commands that recreate the track's runs and its published files."""
    from forgetbench.core.settings import FLAGS, EvalSettings, KLSettings
    from forgetbench.task import default_preset, presets, targets

    spec = track.first.spec
    tgt = targets.get(spec["target"]) if spec["target"] in targets.names() else None
    common: list[str] = []
    for _, p in presets.items():       # a preset whose settings the track's are, up to the training budget
        if (p.model, p.target, tuple(p.suites)) == (spec["model"], spec["target"], tuple(spec["suites"])) \
                and EvalSettings(**p.eval).to_dict() == spec["eval"] and asdict(KLSettings(**p.kl)) == spec["kl"]:
            common = ([] if p.default else [f"--preset {p.name}"]) + (["--data-dir DATA"] if p.needs_data else [])
            given_budget = targets.get(p.target).budget.updated(p.budget).to_dict()
            break
    else:
        fallback = default_preset()
        if spec["model"] != fallback.model:
            common.append(f"--model {spec['model']}")
        if spec["target"] != fallback.target:
            common.append(f"--target {spec['target']}")
        if tgt is None or tuple(spec["suites"]) != tuple(tgt.default_suites):
            common += [f"--suite {s}" for s in spec["suites"]]
        # where the task YAMLs were: the record's provenance (before that, its spec)
        include = track.first.record["provenance"].get("include_path") or spec.get("include_path")
        if include:
            common.append(f"--include-path {include}")
        given_budget = tgt.budget.to_dict() if tgt else {}
        defaults = {"eval": EvalSettings().to_dict(), "kl": asdict(KLSettings())}
        # a setting a record predates (e.g. --kl-target-prompts in schema 3) was not in play: today's default
        given = {f.flag: spec[f.section].get(f.key, defaults[f.section][f.key]) for f in FLAGS}
        common += [f.given(given[f.flag]) for f in FLAGS if given[f.flag] != defaults[f.section][f.key]]
    budget = {k: str(v) for k, v in sorted(track.budget.items()) if given_budget.get(k) != v}
    out = []
    for r in ranked_rows(track):
        if r.external:
            flags = [c for c in common if not c.startswith("--model ")]
            out += [_reproduce_external(run, flags, runs_dir) for run in r.runs]
            continue
        own = dict(kv.split("=", 1) for kv in r.budget.split())
        sets = "".join(f" --set {kv}" for kv in r.setting.split())
        sets += "".join(f" --budget {k}={v}" for k, v in own.items())
        # the track's budget fields the row does not set (one --budget per field: of two, the last would win)
        flags = "".join(f" {c}" for c in common) + "".join(f" --budget {k}={v}" for k, v in budget.items()
                                                           if k not in own)
        out.append(f"for s in {' '.join(map(str, r.seeds))}; do bench run --method {r.method}{sets}{flags} "
                   f"--seed $s --out {runs_dir}; done")
    note = f" --note {shlex.quote(track.note)}" if track.note else ""
    out.append(f"bench leaderboard publish --runs {runs_dir} --name {track.name}{note}")
    out.append("# or re-derive this table from the runs archived beside it, without rerunning anything:")
    out.append(f"bench leaderboard publish --runs {track.name}-runs.tar.xz --name {track.name}{note}")
    return out


def _reproduce_external(run, flags: list[str], runs_dir: str) -> str:
    """`bench eval` of an outside checkpoint with the track's settings (those `bench run` alone takes dropped)."""
    spec = run.spec
    given = spec.get("checkpoint_args", {})
    args = f" --model-args {','.join(f'{k}={v}' for k, v in given.items())}" if given else ""
    return (f"bench eval --model {spec['checkpoint']}{args} --base {spec['model']} --name {spec['method']} "
            f"--seed {spec['seed']}{''.join(' ' + c for c in flags)} --out {runs_dir}")


def _title(track: Track) -> str:
    spec = track.first.spec
    return f"forgetbench leaderboard — {spec['model']} on {spec['target']}"


def tables(track: Track, view: str) -> list[tuple[str, list[str], list[list[tuple[str, bool]]], list[str], list[str]]]:
    """(title, headers, body, what each column means, legend) of each table the view shows: frontier (methods
    ranked at matched learning, then every configuration) or points (every configuration only)."""
    points = ("Every configuration" if view == "frontier" else "", *grid(track), legend(track))
    why = ("What predicts forgetting", *predictor_grid(track), predictor_legend(track))
    if view == "points":
        return [points, why]
    return [("Frontier: forgetting at matched learning", *frontier_grid(track), frontier_legend(track)), points, why]


def _stat(s, digits: int = 2) -> str:
    if s is None or math.isnan(s.estimate):
        return "—"
    return f"{s.estimate:.{digits}f} [{s.low:.{digits}f}, {s.high:.{digits}f}]"


def predictor_grid(track: Track) -> Grid:
    fits = predictors.analyse(track)
    ci = "95% bootstrap interval over runs"
    cols = [("predictor", None, [(f.label, None) for f in fits], "A measure of how far the tuned model moved"),
            ("runs", None, [(str(f.n), None) for f in fits], "Runs whose records carry the measure"),
            ("effective n", None, [("—" if f.effective_n is None else f"{f.effective_n:.1f}", None) for f in fits],
             "The runs discounted for their clustering by method: n / (1 + (m − 1) ICC)"),
            ("Spearman ρ [95% CI]", None, [(_stat(f.rho), None) for f in fits],
             f"Rank correlation of the measure with the suite-average Δ (negative: more of it, more forgetting); {ci}"),
            ("R² linear [95% CI]", "max", [(_stat(f.r2_linear), _value(f.r2_linear)) for f in fits],
             f"R² of the least-squares line of the suite-average Δ on the measure; {ci}"),
            ("R² quadratic [95% CI]", "max", [(_stat(f.r2_quadratic), _value(f.r2_quadratic)) for f in fits],
             f"R² of the least-squares quadratic; {ci}"),
            ("R² leave-one-method-out", "max", [("—" if f.lomo_r2 is None else f"{f.lomo_r2:.2f}",
                                                 None if f.lomo_r2 is None else round(f.lomo_r2, 2)) for f in fits],
             "Each method's runs predicted by the line fitted to the other methods' runs, pooled R² (below 0: worse "
             "than the mean)"),
            ("ρ without one method", None, [("—" if f.rho_without is None else
                                             f"{f.rho_without[0]:.2f} to {f.rho_without[1]:.2f}", None)
                                            for f in fits], "The range of ρ with one method's runs left out")]
    return _marked(cols, len(fits))


def _value(s) -> float | None:
    return None if s is None or math.isnan(s.estimate) else round(s.estimate, 2)


def predictor_legend(track: Track) -> list[str]:
    n = len(track.runs)
    return [f"Across the track's {n} runs (each seed and configuration a point): how well each measure predicts a "
            "run's forgetting, its suite-average Δ. Spearman ρ (negative: more of it, more forgetting); R² of the "
            "least-squares linear and quadratic fits of Δ on it; 95% percentile bootstrap intervals over methods "
            f"({predictors.N_RESAMPLES:,} resamples; a drawn method brings all its runs, which cluster), and the "
            "effective n those clustered runs are worth. Leave-one-method-out: each method's runs predicted by the "
            "linear fit to the other methods' runs, pooled R² (below 0: worse than the mean); and the range of ρ "
            "with one method left out. KL on target prompts: on the target's held-out prompts, one base response "
            "each; ‖θ − θ_base‖₂: the L2 norm of the weight update. runs: those whose records carry the measure. "
            "Bold: the best value in its column, when no other row ties it."]


def _figures_after(i: int, title: str, figures) -> list[str]:
    """The published plots shown after table `i`: the predictors' after their table, the others after the first."""
    if title == "What predicts forgetting":
        return [f for f in figures if f == "predictors"]
    return [f for f in figures if f != "predictors"] if i == 0 else []


def markdown(track: Track, runs_dir: str = "runs", view: str = "frontier", figures: list[str] = ()) -> str:
    """figures: names of the published plots beside the file (`<track name>-<figure>.png`), shown after the
    first table."""
    from tabulate import tabulate

    def md(text: str, bold: bool) -> str:
        text = text.replace("*", "\\*")
        return f"**{text}**" if bold else text
    out = [f"## {_title(track)}", ""]
    out += [f"- **{k}**: {v}" for k, v in facts(track)]
    for i, (title, headers, body, _, notes) in enumerate(tables(track, view)):
        out += ["", f"### {title}", ""] if title else [""]
        out += [tabulate([[md(t, b) for t, b in row] for row in body], headers=headers, tablefmt="github",
                         disable_numparse=True), ""]
        out += [line.replace("* the interval", "\\* the interval") + "  " for line in notes]
        out += ["", *(f"![{name}]({track.name}-{name}.png)" for name in _figures_after(i, title, figures))]
    out += ["", "Reproduce:", "", "```sh", *reproduce(track, runs_dir), "```", ""]
    return "\n".join(out)


FIGURE_CAPTIONS = {"frontier": "Every method's configurations (95% intervals) and its frontier",
                   "predictors": "Forgetting against each predictor, with linear and quadratic fits"}
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "Δ": r"$\Delta$", "±": r"$\pm$",
        "†": r"$^\dagger$", "¹": r"$^1$", "√": r"$\surd$", "→": r"$\to$", "‖": r"$\|$", "α": r"$\alpha$",
        "—": "---", "…": r"\dots{}",
        "*": r"$^*$", "−": "$-$", "–": "--", "ρ": r"$\rho$", "θ": r"$\theta$", "²": r"$^2$", "₂": r"$_2$",
        "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "‘": "`", "’": "'", "“": "``", "”": "''", "é": r"\'e",
        "<": r"$<$", ">": r"$>$"}


def _tex(text: str) -> str:
    # a number's "-" is a minus sign, not a hyphen: before a digit, not inside a word ("[-4.1", "-0.5", "2e-04")
    text = re.sub(r"(?<![\w.])-(?=\.?\d)|(?<=\de)-(?=\d)", "−", text)
    return "".join(_TEX.get(c, c) for c in text)


def _tex_header(header: str) -> str:
    """A header on stacked lines, broken before each "(…)" and "[…]": "Δ at 50% gain / (+40.7) / [95% CI]"."""
    parts = re.split(r" (?=[\[(])", header)
    # "\\{}": a line break that does not read the next line's "[" as its optional argument
    return _tex(header) if len(parts) == 1 else r"\shortstack[r]{" + r"\\{}".join(map(_tex, parts)) + "}"


def latex(track: Track, runs_dir: str = "runs", view: str = "frontier", figures: list[str] = ()) -> str:
    lines = [f"% {_title(track)}", "% needs \\usepackage{booktabs,graphicx}; tables and wide figures span both "
             "columns of a two-column paper, shrunk to the text width when wider"]
    lines += [f"% {k}: {v}" for k, v in facts(track)]
    for i, (title, headers, body, _, notes) in enumerate(tables(track, view)):
        key = _key_column(headers)
        lines += [r"\begin{table*}[t]", r"\centering", r"\scriptsize",
                  # the natural width, or the text width when the table is wider
                  r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
                  r"\begin{tabular}{" + "".join("l" if i in (0, key) else "r" for i in range(len(headers))) + "}",
                  r"\toprule", " & ".join(_tex_header(h) for h in headers) + r" \\", r"\midrule"]
        for row in body:
            # "(72% of resamples)" as "(72%)": the legend says what the share is; the column stays narrow
            cells = [(RESAMPLE_SHARE.sub(r" (\1)", t), b) for t, b in row]
            lines.append(" & ".join(rf"\textbf{{{_tex(t)}}}" if b else _tex(t) for t, b in cells) + r" \\")
        caption = f"{_title(track)}" + (f": {title.lower()}" if title else "") + ". " + " ".join(notes)
        lines += [r"\bottomrule", r"\end{tabular}}", r"\caption{" + _tex(caption) + "}", r"\end{table*}"]
        for name in _figures_after(i, title, figures):
            env = "figure*" if name == "predictors" else "figure"        # three panels: both columns
            lines += [rf"\begin{{{env}}}[t]", r"\centering",
                      rf"\includegraphics[width=\linewidth]{{{track.name}-{name}.png}}",
                      r"\caption{" + _tex(f"{_title(track)}: {FIGURE_CAPTIONS[name].lower()}.") + "}",
                      rf"\end{{{env}}}"]
    lines += ["% reproduce:"] + [f"%   {c}" for c in reproduce(track, runs_dir)]
    return "\n".join(lines) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        ".scroll{max-height:80vh;overflow:auto;border:1px solid #ccc;margin:0.5em 0}"
        "table{border-collapse:separate;border-spacing:0;font-size:11.5px}"
        "th,td{padding:3px 5px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap;background:#fff}"
        "th{position:sticky;top:0;z-index:1;border-bottom:2px solid #444;white-space:normal;min-width:3.5em;"
        "vertical-align:bottom;cursor:pointer;user-select:none}th[title]{text-decoration:underline dotted}"
        # the row's name stays in view when a wide table scrolls sideways, and wraps when long
        ".key{position:sticky;left:0;text-align:left;white-space:normal;min-width:9em;max-width:18em}"
        "th.key{z-index:2}td small{color:#666}th[data-dir=asc]::after{content:' ▲'}"
        "th[data-dir=desc]::after{content:' ▼'}p,li{max-width:75em;font-size:14px}"
        "pre{background:#f4f4f4;padding:1em;overflow-x:auto}.figs{display:flex;flex-wrap:wrap;gap:1em;"
        "align-items:flex-start}.figs figure{margin:0;flex:1.3 1 380px;min-width:0}.figs figure.wide{flex:2.2 1 640px}"
        ".figs svg{width:100%;height:auto}figcaption{font-size:13px;color:#555}")
# Click a header to sort by it (again: the other way). Cells sort by their data-v number (_sort_value); cells
# without one ("—", "not reached") go last; a column without numbers sorts as text.
_SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(th=>th.addEventListener("click",()=>{
const i=th.cellIndex,body=th.closest("table").tBodies[0],asc=th.dataset.dir!=="asc",sign=asc?1:-1;
th.parentNode.querySelectorAll("th").forEach(h=>delete h.dataset.dir);th.dataset.dir=asc?"asc":"desc";
const key=td=>td.dataset.v===undefined?null:parseFloat(td.dataset.v);
const rows=[...body.rows],numeric=rows.some(r=>key(r.cells[i])!==null);
rows.sort((a,b)=>{if(!numeric)return sign*a.cells[i].textContent.localeCompare(b.cells[i].textContent);
const x=key(a.cells[i]),y=key(b.cells[i]);if(x===null||y===null)return (x===null)-(y===null);
return sign*(x-y)});rows.forEach(r=>body.appendChild(r))}));
"""
_LEADING_NUMBER = re.compile(r"[<>]?\s*([+\-−]?(?:\d+\.?\d*|\.\d+)(?:e[+\-]?\d+)?)", re.IGNORECASE)


def _sort_value(text: str) -> float | None:
    """The number a cell sorts by: the one it starts with ("+1.2 [-0.3, 2.0]*", "<2e-04†", "136 ± 4.5", "3 (2)"),
    else None."""
    m = _LEADING_NUMBER.match(text)
    return float(m.group(1).replace("−", "-")) if m else None


def _inline_svg(svg: bytes, prefix: str) -> str:
    """A matplotlib SVG to put inside the page: no XML prologue, its ids (and references to them) prefixed so
    two figures' ids never collide."""
    text = svg.decode()
    text = text[text.index("<svg"):]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r'(href=")#', rf"\1#{prefix}-", text)
    return re.sub(r"url\(#", f"url(#{prefix}-", text)


def _html_cell(text: str) -> str:
    """A cell's text, escaped; a trailing "(… of resamples)" note on a line of its own, so the column stays narrow."""
    share = RESAMPLE_SHARE.search(text)
    if share:
        return f"{html.escape(text[:share.start()])}<br><small>{html.escape(share.group(0).strip())}</small>"
    return html.escape(text)


def _html_table(headers: list[str], body, helps: list[str]) -> list[str]:
    e = html.escape
    key = _key_column(headers)

    def attrs(i: int, title: str = "", value: float | None = None) -> str:
        return ((' class="key"' if i == key else "") + (f' title="{e(title)}"' if title else "")
                + ("" if value is None else f' data-v="{value!r}"'))
    out = ['<div class="scroll"><table class="sortable">',
           "<thead><tr>" + "".join(f"<th{attrs(i, h)}>{e(t)}</th>" for i, (t, h) in enumerate(zip(headers, helps)))
           + "</tr></thead>", "<tbody>"]
    for row in body:
        cells = (f"<td{attrs(i, value=_sort_value(t))}>" + (f"<strong>{_html_cell(t)}</strong>" if b else _html_cell(t))
                 + "</td>" for i, (t, b) in enumerate(row))
        out.append("<tr>" + "".join(cells) + "</tr>")
    return out + ["</tbody></table></div>"]


def _html_section(track: Track, runs_dir: str, figures: dict[str, dict[str, bytes]], view: str) -> list[str]:
    e = html.escape
    out = [f"<h1>{e(_title(track))}</h1>", "<ul>"]
    out += [f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in facts(track)]
    out.append("</ul>")
    for i, (title, headers, body, helps, notes) in enumerate(tables(track, view)):
        out += [f"<h2>{e(title)}</h2>"] if title else []
        out += _html_table(headers, body, helps) + [f"<p>{e(line)}</p>" for line in notes]
        if i == 0 and figures:          # the plots side by side, after the first table
            out.append('<div class="figs">')
            for name, data in figures.items():
                wide = ' class="wide"' if name == "predictors" else ""      # three panels
                out.append(f"<figure{wide}>{_inline_svg(data['svg'], f'{track.name}-{name}')}"
                           f"<figcaption>{e(FIGURE_CAPTIONS.get(name, name))}</figcaption></figure>")
            out.append("</div>")
    out += ["<h2>Reproduce</h2>", "<pre>" + e("\n".join(reproduce(track, runs_dir))) + "</pre>"]
    return out


def html_page(tracks: list[Track], runs_dir: str = "runs", figures: dict | None = None,
              view: str = "frontier") -> str:
    """One self-contained file a person can open: per track its facts, sortable tables (a header's tooltip says
    what the column means), legends, plots (inline SVG) and how to reproduce. figures: track key -> {name:
    {"svg": bytes, ...}}."""
    title = _title(tracks[0]) if len(tracks) == 1 else "forgetbench leaderboard"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style></head><body>"]
    for t in tracks:
        out += _html_section(t, runs_dir, (figures or {}).get(t.key, {}), view)
    return "\n".join(out + [f"<script>{_SORT_JS}</script>", "</body></html>"]) + "\n"


def csv_rows(track: Track) -> list[dict]:
    """One row per table row; fractions (not points), intervals as separate columns."""
    spec = track.first.spec
    out = []
    for r in ranked_rows(track):
        row = {"track": track.key, "model": spec["model"], "target": spec["target"], "method": r.method,
               "external": r.external, "setting": r.setting, "budget": r.budget, "seeds": " ".join(map(str, r.seeds)),
               "target_score": r.target_score}
        for name, iv in [("target_gain", r.target_gain), *[(s, r.suites[s]) for s in track.suites],
                         ("suite_average", r.average)]:
            row |= {f"{name}": iv.estimate, f"{name}_low": iv.low, f"{name}_high": iv.high}
        row |= {"seed_sd": r.seed_sd, "kl": r.kl, "kl_se": r.kl_se, "forgetting": r.forgetting,
                "backward_transfer": r.transfer, "answer_class_mass_delta": r.shift,
                f"vs_{track.baseline}": None if r.difference is None else r.difference.estimate,
                f"vs_{track.baseline}_low": None if r.difference is None else r.difference.low,
                f"vs_{track.baseline}_high": None if r.difference is None else r.difference.high,
                f"p_vs_{track.baseline}": r.p, "p_holm": r.p_holm}
        out.append(row)
    return out


def _csv(rows: list[dict]) -> str:
    import pandas as pd
    frame = pd.DataFrame(rows)
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    return buf.getvalue()


def frontier_csv_rows(track: Track) -> list[dict]:
    """One row per method: forgetting at matched learning with intervals, and its cost (cost-normalised view:
    the ratios to the reference method)."""
    frs, info = frontier.of(track)
    spec = track.first.spec
    out = []
    for f in frs:
        row = {"track": track.key, "model": spec["model"], "target": spec["target"], "method": f.method,
               "external": f.rows[0].external, "rank": f.rank,
               "rank_low": f.rank_interval[0] if f.rank_interval else None,
               "rank_high": f.rank_interval[1] if f.rank_interval else None, "configs": len(f.points),
               "best_gain": max(x for x, _ in f.points)}
        for lv, m in sorted(f.matched.items()):
            tag = f"delta_at_{round(100 * lv)}pct_headroom"
            row |= {f"{tag}_gain": m.gain, tag: m.estimate, f"{tag}_low": m.low, f"{tag}_high": m.high,
                    f"{tag}_reached": m.reached, f"{tag}_p_vs_{track.baseline}": m.p, f"{tag}_p_holm": m.p_holm,
                    f"{tag}_interpolated": m.interpolated}
        if f.area is not None:
            row |= {"mean_delta": f.area.estimate, "mean_delta_low": f.area.low, "mean_delta_high": f.area.high,
                    "mean_delta_top_gain": f.area.gain}
        c = f.cost
        row |= {"runs": c["runs"], "device": c["device"], "wall_seconds": c["wall_seconds"],
                "train_seconds": c["train_seconds"], "forward_backward_tokens": c["forward_backward_tokens"],
                "forward_only_tokens": c["forward_only_tokens"], "wall_x_ref": c["relative"]["wall"],
                "forward_backward_x_ref": c["relative"]["forward_backward"],
                "forward_only_x_ref": c["relative"]["forward_only"]}
        out.append(row)
    return out


def predictor_csv_rows(track: Track) -> list[dict]:
    """One row per forgetting predictor: its statistics with their intervals (leaderboard.predictors)."""
    spec = track.first.spec
    out = []
    for f in predictors.analyse(track):
        row = {"track": track.key, "model": spec["model"], "target": spec["target"], "predictor": f.key, "runs": f.n,
               "effective_n": f.effective_n,
               "methods": len(set(f.methods))}
        for name in ("rho", "r2_linear", "r2_quadratic"):
            st = getattr(f, name)
            row |= {name: st and st.estimate, f"{name}_low": st and st.low, f"{name}_high": st and st.high}
        row |= {"r2_leave_one_method_out": f.lomo_r2, "rho_without_one_method_min": f.rho_without and f.rho_without[0],
                "rho_without_one_method_max": f.rho_without and f.rho_without[1]}
        out.append(row)
    return out


def render(tracks: list[Track], fmt: str, runs_dir: str = "runs", figures: dict | None = None,
           view: str = "frontier") -> str:
    if fmt == "csv":
        per_track = {"points": csv_rows, "frontier": frontier_csv_rows, "predictors": predictor_csv_rows}[view]
        return _csv([row for t in tracks for row in per_track(t)])
    if fmt == "html":
        return html_page(tracks, runs_dir, figures, view)
    one = {"markdown": markdown, "latex": latex}[fmt]
    return "\n".join(one(t, runs_dir, view, list((figures or {}).get(t.key, {}))) for t in tracks)
