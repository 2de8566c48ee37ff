"""The leaderboard on hand-made run folders: every number recomputed independently from the items."""

import copy
import hashlib
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from forgetbench.cli import main
from forgetbench.leaderboard.frontier import pareto
from forgetbench.leaderboard.tracks import build_tracks, load_runs
from forgetbench.records import aggregate
from forgetbench.records.schema import SCHEMA_VERSION, items_hash, items_text
from scipy.stats import t as student_t

TASKS = {"s1": ["a", "b"], "s2": ["c"]}          # suite -> tasks; s1 has two tasks of different sizes
SIZES = {"tgt": 6, "a": 5, "b": 3, "c": 4}       # 12 preserved items: exact permutation tests
BASE = {"tgt": [0, 0, 0, 0, 1, 0], "a": [1, 1, 1, 0, 1], "b": [1, 0, 1], "c": [1, 1, 0, 0]}


def kl_rows(mean, se, n=8, task="kl"):
    """n per-sequence KL rows whose mean is `mean` and whose standard error is `se` (values mean -+ se * sqrt(n-1))."""
    half = se * np.sqrt(n - 1)
    return [{"model": "pair", "task": task, "doc_id": i, "sequence": mean + (-half if i % 2 else half),
             "token_exact": mean + (-half if i % 2 else half), "tokens": 4, "ended": True} for i in range(n)]


def write_run(root, method, seed, tuned, *, kl=(10.0, 1.0), eval_batch=64, target="toy-target", base=BASE,
              prompt_salt="", shift=0.0, machine="CPU A (avx2)", lr=0.1, training=None, wall=None):
    """A complete, schema-valid run folder whose tuned per-item outcomes are `tuned` (task -> 0/1 list); its
    sections are computed from its items as a run computes them (the leaderboard refuses any other)."""
    items = []
    for who, scores in (("base", base), ("tuned", tuned)):
        for task, values in scores.items():
            for i, v in enumerate(values):
                items.append({"model": who, "task": task, "doc_id": i, "score": float(v), "correct": bool(v),
                              "doc_hash": f"{task}{i}", "prompt_hash": f"p{task}{i}{prompt_salt}"})
    evals = aggregate.sections(items, metric=dict.fromkeys(SIZES, "acc"), target=(target, ["tgt"]),
                               suites={s: {"average_over": t, "missing": {}, "excluded_as_target": []}
                                       for s, t in TASKS.items()})
    items += kl_rows(*kl) + kl_rows(3 * kl[0], kl[1], task="kl:target")      # KL on the target's prompts: 3x
    items += [{"model": "pair", "task": "probe:a", "doc_id": i, "base": 0.1, "tuned": 0.1 + shift} for i in range(2)]
    text = items_text(items)
    record = {
        "schema_version": SCHEMA_VERSION, "kind": "run",
        "run_id": f"{method}-s{seed}-{target}" + (f"-lr{lr}" if lr != 0.1 else ""),
        "spec": {"method": method, "model": "toy", "target": target, "suites": list(TASKS), "seed": seed,
                 "params": {}, "budget": {"epochs": 1, "lr": lr, "batch_size": 4, "scheduler": "constant",
                                          "examples": 0},
                 "eval": {"backend": "hf", "batch_size": eval_batch, "num_fewshot": 0, "limit": None, "task_limits": {},
                          "max_new_tokens": 16, "temperature": 0.0, "samples_per_problem": 1, "chat_template": True,
                          "lm_eval": "0.4.13"},
                 "kl": {"samples": 8, "max_new_tokens": 4, "seed": 1, "batch_size": 8, "target_prompts": 8},
                 "data": "0" * 16,
                 "placement": {"device": "cpu", "dtype": "float32"}},
        "provenance": {"forgetbench": "0.1.0", "commit": "c" * 40, "torch": "2", "transformers": "5",
                       "lm_eval": "0.4.13", "machine": machine, "threads": 1,
                       "python": "3.11", "base_fingerprint": "f" * 64, "device": "cpu", "dtype": "float32",
                       "generation": {"backend": "hf"},
                       "tasks": {t: {"content_hash": "a" * 16,
                                     "items_hash": items_hash([i for i in items
                                                               if i["task"] == t and i["model"] == "tuned"])}
                                 for t in SIZES}},
        **evals,
        "kl": {**aggregate.kl_summary(kl_rows(*kl)), "settings": {}},
        "kl_target": {**aggregate.kl_summary(kl_rows(3 * kl[0], kl[1], task="kl:target")),
                      "settings": {"prompts": 8, "of": 8}},
        "training": {"trainable_parameters": 10, "trainable_share": 1.0, "trainable_tensors": ["w"], "mixture": {},
                     **(training or {})},
        "answer_class_shift": {"answer_class": "numbers", **aggregate.probe_summary(items[-2:])},
        "weight_change": {"l2": kl[0] / 10, "relative": kl[0] / 1000, "parameters": "all"},
        "items": "items.jsonl", "items_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    if wall is not None:
        record["wall_seconds"] = wall
    folder = root / record["run_id"]
    folder.mkdir(parents=True)
    (folder / "items.jsonl").write_text(text)
    (folder / "result.json").write_text(json.dumps(record))
    return folder


def flip(scores, task, *idx):
    out = copy.deepcopy(scores)
    for i in idx:
        out[task][i] = 1 - out[task][i]
    return out


# naive_sft forgets a lot; context_free forgets less; pretrain_replay is close to naive.
NAIVE = [flip(BASE, "a", 0, 1), flip(flip(BASE, "a", 0, 1, 2), "c", 0), flip(BASE, "a", 1)]
CF = [flip(BASE, "a", 3), flip(BASE, "b", 1), copy.deepcopy(BASE)]
REPLAY = [flip(BASE, "a", 0, 1, 3)]
for s in NAIVE + CF + REPLAY:
    s["tgt"] = [1, 1, 1, 0, 1, 1]


@pytest.fixture()
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, tuned in enumerate(NAIVE):
        write_run(root, "naive_sft", seed, tuned, kl=(30.0 + seed, 1.0), shift=0.2 + 0.01 * seed)
    for seed, tuned in enumerate(CF):
        write_run(root, "context_free", seed, tuned, kl=(2.0 + seed, 0.5))
    write_run(root, "pretrain_replay", 0, REPLAY[0], kl=(5.0, 0.3))
    return root


def preserved(scores):
    return np.array([v for t in ("a", "b", "c") for v in scores[t]], dtype=float)


WEIGHT = {"a": 0.25, "b": 0.25, "c": 0.5}        # the mean over 2 suites of the mean over their tasks


def suite_average(scores):
    return sum(w * (np.mean(scores[t]) - np.mean(BASE[t])) for t, w in WEIGHT.items())


def method_level_difference(method, reference):
    """(estimate, SE, df, p) of the suite-average difference, from the formula, with plain loops: per seed the
    weighted mean over tasks of the task means; between-seed variances; the shared items' stratified variance, less
    the seeds' own item noise (the two-way residuals' mean square times the sum of squared item weights, per seed);
    Welch-Satterthwaite degrees of freedom."""
    order = [(t, i) for t in ("a", "b", "c") for i in range(SIZES[t])]
    w = [WEIGHT[t] / SIZES[t] for t, _ in order]
    sides = [np.array([[s[t][i] for t, i in order] for s in seeds], dtype=float) for seeds in (method, reference)]
    parts, dfs, noise = [], [], []
    for x in sides:
        per_seed = [sum(wi * v for wi, v in zip(w, seed)) for seed in x]
        n, m = x.shape
        resid = [[x[s, i] - x[s].mean() - x[:, i].mean() + x.mean() for i in range(m)] for s in range(n)]
        e = sum(r * r for row in resid for r in row) / ((n - 1) * (m - 1)) * sum(wi * wi for wi in w)
        noise.append(e / n)
        parts.append(max(np.var(per_seed, ddof=1), e) / n)         # never below the seeds' own noise
        dfs.append(n - 1)
    contrast = sides[0].mean(0) - sides[1].mean(0)
    shared = 0.0
    for t in ("a", "b", "c"):
        values = [contrast[k] for k, (task, _) in enumerate(order) if task == t]
        shared += WEIGHT[t] ** 2 * np.var(values, ddof=1) / len(values)
    parts.append(max(0.0, shared - sum(noise)))
    dfs.append(sum(SIZES[t] - 1 for t in ("a", "b", "c")))
    estimate = np.mean([suite_average(s) for s in method]) - np.mean([suite_average(s) for s in reference])
    se = np.sqrt(sum(parts))
    df = se ** 4 / sum(v * v / k for v, k in zip(parts, dfs) if v > 0)
    return estimate, se, df, 2 * student_t.sf(abs(estimate) / se, df)


def test_rows_match_an_independent_computation(runs):
    (track,) = build_tracks(load_runs(runs), "naive_sft")
    rows = {r.method: r for r in track.rows}
    assert [r.method for r in track.rows][0] == "naive_sft"
    assert rows["naive_sft"].seeds == [0, 1, 2] and rows["pretrain_replay"].seeds == [0]
    for name, seeds in (("naive_sft", NAIVE), ("context_free", CF), ("pretrain_replay", REPLAY)):
        r = rows[name]
        per_seed = [suite_average(s) for s in seeds]
        assert r.average.estimate == pytest.approx(np.mean(per_seed))
        assert r.suites["s2"].estimate == pytest.approx(np.mean([np.mean(s["c"]) for s in seeds]) - 0.5)
        assert r.suites["s1"].estimate == pytest.approx(np.mean(
            [0.5 * (np.mean(s["a"]) - 0.8 + np.mean(s["b"]) - 2 / 3) for s in seeds]))
        assert r.seed_sd == (pytest.approx(np.std(per_seed, ddof=1)) if len(seeds) > 1 else None)
        base = preserved(BASE)
        assert r.forgetting == pytest.approx(np.mean([np.mean((base == 1) & (preserved(s) == 0)) for s in seeds]))
        assert r.transfer == pytest.approx(np.mean([np.mean((base == 0) & (preserved(s) == 1)) for s in seeds]))
        assert r.target_gain.estimate == pytest.approx(5 / 6 - 1 / 6)
        assert r.average.low <= r.average.estimate <= r.average.high
    kls = [30.0, 31.0, 32.0]
    assert rows["naive_sft"].kl == pytest.approx(31.0)
    assert rows["naive_sft"].kl_se == pytest.approx(np.std(kls, ddof=1) / np.sqrt(3))
    assert rows["pretrain_replay"].kl_se == pytest.approx(0.3)      # one seed: its Monte Carlo SE
    # the difference from naive_sft and its p: the method-level t, computed here from its definition
    want = method_level_difference(CF, NAIVE)
    got = rows["context_free"].difference
    assert (got.estimate, got.se, got.df, got.p) == pytest.approx(want)
    assert got.low == pytest.approx(want[0] - student_t.ppf(0.975, want[2]) * want[1])
    assert rows["context_free"].p == got.p and rows["context_free"].p_holm == pytest.approx(got.p)  # one test
    # one seed: no claim about the method (no difference, no p), its interval that of the trained model
    assert rows["pretrain_replay"].difference is None and rows["pretrain_replay"].p is None
    assert not rows["pretrain_replay"].method_level and rows["context_free"].method_level
    assert rows["naive_sft"].p is None
    assert rows["naive_sft"].shift == pytest.approx(0.21) and rows["context_free"].shift == 0.0


def test_minimum_detectable_effect_under_the_table(runs):
    from forgetbench.leaderboard.stats import minimum_detectable_effect
    (track,) = build_tracks(load_runs(runs), "naive_sft")
    idx = slice(8, 12)                                             # suite s2 = task c, the last 4 items
    var = np.mean([np.var(np.mean([preserved(s) for s in seeds], axis=0)[idx] - preserved(BASE)[idx], ddof=1)
                   for seeds in (NAIVE, CF, REPLAY)])
    assert track.mde["s2"] == pytest.approx(minimum_detectable_effect(np.sqrt(var), 4))


def bench(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_markdown_marks_best_values_and_explains_them(capsys, runs):
    code, out, err = bench(capsys, "leaderboard", "--runs", runs, "--view", "points")
    assert code == 0, err
    table = [line for line in out.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in table[1:]}
    avg, kl = header.index("suite avg Δ [95% CI]"), header.index("KL ± SE")
    assert cells["context_free"][avg].startswith("**") and not cells["naive_sft"][avg].startswith("**")
    assert cells["context_free"][kl] == "**3 ± 0.58**"            # lowest KL is best
    shift = header.index("numbers mass Δ")
    # context_free and pretrain_replay tie at the lowest mass shift: a tie is not bolded
    assert [cells[m][shift] for m in ("naive_sft", "context_free", "pretrain_replay")] == ["+21.0", "+0.0", "+0.0"]
    assert "Minimum detectable effect" in out and "Holm" in out and "bench run --method context_free" in out
    for fact in ("**model**: toy", "**seeds**: 0, 1, 2 (7 runs)", "lm-eval 0.4.13", "batch size 64"):
        assert fact in out


def test_latex_html_csv(capsys, runs, tmp_path):
    code, tex, _ = bench(capsys, "leaderboard", "--runs", runs, "--format", "latex")
    assert code == 0
    for piece in (r"\toprule", r"\midrule", r"\bottomrule", r"naive\_sft", r"\textbf{", r"\begin{tabular}"):
        assert piece in tex
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert "naive_sft" not in body.replace(r"naive\_sft", "")       # every underscore escaped (not in comments)
    out_file = tmp_path / "board.html"
    code, out, _ = bench(capsys, "leaderboard", "--runs", runs, "--format", "html", "--out", out_file)
    assert code == 0 and out == ""
    page = out_file.read_text()

    class Links(HTMLParser):
        tags, refs = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.refs += [v for k, v in attrs if k in ("src", "href")]
    p = Links()
    p.feed(page)
    assert "table" in p.tags and page.startswith("<!DOCTYPE html>")
    assert all(r.startswith(("data:", "#")) for r in p.refs)       # self-contained
    import io

    import pandas as pd
    code, out, _ = bench(capsys, "leaderboard", "--runs", runs, "--format", "csv", "--view", "points")
    frame = pd.read_csv(io.StringIO(out)).set_index("method")
    (track,) = build_tracks(load_runs(runs), "naive_sft")
    for r in track.rows:
        assert frame.loc[r.method, "suite_average"] == pytest.approx(r.average.estimate, rel=1e-5)
        assert frame.loc[r.method, "suite_average_low"] == pytest.approx(r.average.low, rel=1e-5, abs=1e-9)
        assert frame.loc[r.method, "kl"] == pytest.approx(r.kl, rel=1e-5)


def test_publish_writes_every_format_and_is_byte_reproducible(capsys, runs, tmp_path):
    code, out, err = bench(capsys, "leaderboard", "publish", "--runs", runs, "--dest", tmp_path / "pub")
    assert code == 0, err
    dest = tmp_path / "pub" / "toy"                 # the track's own folder
    assert list((tmp_path / "pub").iterdir()) == [dest]
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted(["toy.md", "toy.tex", "toy.html", "toy.csv", "toy-frontier.csv", "toy-predictors.csv",
                            "toy-runs.tar.xz"] +
                           [f"toy-{f}.{x}" for f in ("frontier", "predictors") for x in ("png", "svg")])
    first = {p.name: p.read_bytes() for p in dest.iterdir()}
    assert first["toy-frontier.png"].startswith(b"\x89PNG")
    assert b"![frontier](toy-frontier.png)" in first["toy.md"]                  # every format shows the plots
    assert b"\\includegraphics[width=\\linewidth]{toy-frontier.png}" in first["toy.tex"]
    assert b"\\includegraphics[width=\\linewidth]{toy-predictors.png}" in first["toy.tex"]
    assert first["toy.html"].count(b"<svg ") == 2                                # both plots, inline
    for fmt in ("md", "tex", "html"):                                            # the predictors' section too
        assert b"What predicts forgetting" in first[f"toy.{fmt}"] or b"what predicts forgetting" in first[f"toy.{fmt}"]
    bench(capsys, "leaderboard", "publish", "--runs", runs, "--dest", tmp_path / "pub")
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == first
    # the predictors' plot and CSV carry the rank correlation over runs, computed independently here
    import pandas as pd
    kl = [30, 31, 32, 2, 3, 4, 5]
    delta = [suite_average(s) for s in NAIVE + CF + REPLAY]
    rho = pd.Series(kl).corr(pd.Series(delta), method="spearman")
    assert f"ρ = {rho:.2f}" in first["toy-predictors.svg"].decode()
    table = pd.read_csv(dest / "toy-predictors.csv").set_index("predictor")
    assert table.loc["kl", "rho"] == pytest.approx(rho, abs=1e-5) and table.loc["kl", "runs"] == 7


def test_pareto_frontier():
    pts = [(1, 1), (2, 0), (0, 2), (0.5, 0.5), (2, -1)]
    assert pareto(pts) == [2, 0, 1]


def refuse(capsys, runs, *match):
    code, out, err = bench(capsys, "leaderboard", "--runs", runs, "--view", "points")
    assert code == 2 and "Traceback" not in err
    for m in match:
        assert str(m) in err, err
    return err


def test_mixing_different_items_is_refused(capsys, runs):
    bad = write_run(runs, "lwf", 0, CF[0], prompt_salt="-other-template")
    refuse(capsys, runs, "evaluated items and prompts", bad, "cannot be compared")


def test_mixing_different_settings_is_refused(capsys, runs):
    bad = write_run(runs, "lwf", 0, CF[0], eval_batch=8)
    refuse(capsys, runs, "evaluation settings", bad)


def test_a_different_target_is_a_separate_track(capsys, runs):
    write_run(runs, "naive_sft", 0, NAIVE[0], target="toy-other")
    assert len(build_tracks(load_runs(runs), "naive_sft")) == 2
    code, out, err = bench(capsys, "leaderboard", "publish", "--runs", runs, "--dest", runs.parent / "pub")
    assert code == 0, err
    pub = runs.parent / "pub"
    assert all((pub / track / f"{track}.md").exists() for track in ("toy-toy-target", "toy-toy-other"))
    code, _, err = bench(capsys, "leaderboard", "publish", "--runs", runs, "--name", "x", "--dest", runs.parent / "p")
    assert code == 2 and "2 tracks" in err


def test_base_outcomes_must_agree(capsys, runs):
    other = copy.deepcopy(BASE)
    other["a"] = [1, 1, 1, 1, 1]
    write_run(runs, "lwf", 0, CF[0], base=other, machine="CPU B (avx512f)")
    refuse(capsys, runs, "base model's per-item outcomes differ", "on 1 of 18 items", "CPU B (avx512f), 1 thread")


def test_runs_from_another_machine_join_the_track_when_the_base_agrees(capsys, runs):
    write_run(runs, "lwf", 0, CF[0], machine="CPU B (avx512f)")
    (track,) = build_tracks(load_runs(runs), "naive_sft")
    assert track.machines == ["CPU A (avx2), 1 thread", "CPU B (avx512f), 1 thread"] and track.base_items == 18
    code, out, err = bench(capsys, "leaderboard", "--runs", runs, "--view", "points")
    assert code == 0, err
    assert ("CPU A (avx2), 1 thread; CPU B (avx512f), 1 thread; the base model's outcomes on all 18 items agree "
            "across them") in out


@pytest.mark.parametrize("damage", ["checksum", "old-schema", "missing-section", "bad-type", "missing-items",
                                    "edited-kl", "edited-delta", "edited-probe", "no-kl-rows"])
def test_corrupt_records_are_rejected_by_name(capsys, runs, damage):
    folder = next(runs.glob("context_free-s1-*"))
    rec_path = folder / "result.json"
    rec = json.loads(rec_path.read_text())
    if damage == "checksum":
        text = (folder / "items.jsonl").read_text()
        (folder / "items.jsonl").write_text(text.replace('"score": 1.0', '"score": 0.0', 1))
    elif damage == "old-schema":
        rec["schema_version"] = 1
    elif damage == "missing-section":
        del rec["suites"]["s1"]["tasks"]
    elif damage == "bad-type":
        rec["kl"]["token_exact"]["mean"] = "high"
    elif damage == "edited-kl":                 # a hand-edited number, shown as if measured unless recomputed
        rec["kl"]["token_exact"]["mean"] += 0.5
    elif damage == "edited-delta":
        rec["suites"]["s1"]["tasks"]["a"]["delta"] = -0.9
    elif damage == "edited-probe":
        rec["answer_class_shift"]["delta"] = 0.3
    else:                                       # items dropped (and the checksum made to match)
        keep = {"missing-items": lambda line: line is not lines[0], "no-kl-rows": lambda line: '"kl"' not in line}
        lines = (folder / "items.jsonl").read_text().splitlines(keepends=True)
        text = "".join(filter(keep[damage], lines))
        (folder / "items.jsonl").write_text(text)
        rec["items_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    rec_path.write_text(json.dumps(rec))
    expected = {"checksum": "checksum does not match", "old-schema": "schema version 1",
                "missing-section": "incomplete", "bad-type": "invalid", "missing-items": "incomplete",
                "edited-kl": "does not match its per-item file", "edited-delta": "at suites.s1.tasks.a.delta",
                "edited-probe": "at answer_class_shift.delta", "no-kl-rows": "no rows for the record's kl"}[damage]
    err = refuse(capsys, runs, folder, expected)
    assert "Traceback" not in err


def test_unknown_baseline_and_duplicate_seed(capsys, runs):
    code, _, err = bench(capsys, "leaderboard", "--runs", runs, "--baseline", "naive")
    assert code == 2 and "no run of that method" in err and "naive_sft" in err
    dup = write_run(runs / "more", "naive_sft", 0, NAIVE[0])
    dup.rename(runs / "naive_sft-again")
    refuse(capsys, runs, "same method, setting, budget and seed")


def test_a_publishers_note_heads_every_table_and_must_be_one_line(capsys, runs, tmp_path):
    note = "wall times taken while other work shared the 2 cores"
    code, _, err = bench(capsys, "leaderboard", "publish", "--runs", runs, "--dest", tmp_path, "--note", note)
    assert code == 0, err
    assert f"- **note**: {note}" in (tmp_path / "toy" / "toy.md").read_text()
    assert f"% note: {note}" in (tmp_path / "toy" / "toy.tex").read_text()
    assert f"<li><b>note</b>: {note}</li>" in (tmp_path / "toy" / "toy.html").read_text()
    assert f"--name toy --note '{note}'" in (tmp_path / "toy" / "toy.md").read_text()      # Reproduce gives it again
    for bad in ("two\nlines", "  "):
        code, _, err = bench(capsys, "leaderboard", "publish", "--runs", runs, "--dest", tmp_path / "x", "--note", bad)
        assert code == 2 and "--note is one line" in err and not (tmp_path / "x").exists()


def test_a_table_republished_from_its_runs_archive_is_byte_for_byte_the_same(capsys, runs, tmp_path):
    code, _, err = bench(capsys, "leaderboard", "publish", "--runs", runs, "--dest", tmp_path / "first")
    assert code == 0, err
    first = tmp_path / "first" / "toy"
    archive = first / "toy-runs.tar.xz"
    assert archive.is_file()
    code, _, err = bench(capsys, "leaderboard", "publish", "--runs", archive, "--dest", tmp_path / "again")
    assert code == 0, err
    again = tmp_path / "again" / "toy"
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in first.iterdir())
    for p in first.iterdir():
        assert (again / p.name).read_bytes() == p.read_bytes(), p.name
    # the archive holds every run's record and per-item file exactly, the base model's rows once
    from forgetbench.leaderboard.archive import extract
    out = extract(archive, tmp_path / "out")
    for folder in runs.iterdir():
        for name in ("result.json", "items.jsonl"):
            assert (out / folder.name / name).read_bytes() == (folder / name).read_bytes()
    import lzma
    import tarfile
    with tarfile.open(fileobj=__import__("io").BytesIO(lzma.decompress(archive.read_bytes()))) as tar:
        items = tar.extractfile(f"runs/{next(runs.iterdir()).name}/items.jsonl").read().decode()
    assert '"model": "base"' not in items and '{"$base": ' in items


def test_a_file_that_is_not_a_runs_archive_is_refused(capsys, tmp_path):
    bad = tmp_path / "x-runs.tar.xz"
    bad.write_bytes(b"not xz")
    code, _, err = bench(capsys, "leaderboard", "--runs", bad)
    assert code == 2 and "is not a runs archive" in err
