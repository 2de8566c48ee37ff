"""End to end through the CLI on the micro world, with small budgets."""

import csv
import io
import json

import pytest
from forgetbench.cli import main

SMALL = ["--budget", "epochs=0.5", "--kl-samples", "32"]


def bench(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def run_json(capsys, runs, *extra):
    code, out, err = bench(capsys, "run", *extra, "--out", str(runs), "--json", *SMALL)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_run_prints_a_complete_record(capsys, runs, micro_base):
    rec = run_json(capsys, runs, "--method", "naive_sft")
    assert rec["spec"]["method"] == "naive_sft" and rec["spec"]["model"] == "micro"
    t = rec["target"]
    assert t["name"] == "micro-cipher" and t["n"] == 250 and t["base"] == 0.0
    assert t["delta"] == pytest.approx(t["tuned"] - t["base"])
    assert set(rec["suites"]) == {"micro-zeroshot", "micro-reasoning"}
    for s in rec["suites"].values():
        assert {"base", "tuned", "delta", "n"} <= set(s) and s["n"] >= 200
    kl = rec["kl"]
    assert kl["n"] == 32 and kl["token_exact"]["mean"] > 0 and kl["token_exact"]["se"] > 0
    assert {"mean", "se"} <= set(kl["sequence"]) and kl["settings"]["temperature"] == 1.0
    # aggregates are derived from the per-item outcomes
    folder = runs / rec["run_id"]
    items = [json.loads(line) for line in (folder / rec["items"]).read_text().splitlines()]
    zs = [i for i in items if i["task"] == "fb_micro_zeroshot"]
    for who in ("base", "tuned"):
        mine = [i["score"] for i in zs if i["model"] == who]
        assert len(mine) == 448
        assert rec["suites"]["micro-zeroshot"][who] == pytest.approx(sum(mine) / len(mine))
    # the training loss of every step, which the summary numbers are taken from
    tr = rec["training"]
    curve = tr["loss_curve"]
    assert len(curve) == tr["steps"] > 10 and curve[0] == pytest.approx(tr["loss_first"], abs=1e-6)
    tail = curve[-(len(curve) // 10):]
    assert sum(tail) / len(tail) == pytest.approx(tr["loss_last_10pct"], abs=1e-6) and tail[-1] < curve[0]


@pytest.mark.slow
def test_same_seed_same_numbers(capsys, tmp_path):
    a = run_json(capsys, tmp_path / "a", "--method", "context_free", "--set", "ratio=0.25")
    b = run_json(capsys, tmp_path / "b", "--method", "context_free", "--set", "ratio=0.25")
    assert a["run_id"] == b["run_id"]
    for key in ("target", "suites", "kl"):
        assert a[key] == b[key]
    items = [(tmp_path / d / a["run_id"] / "items.jsonl").read_text() for d in ("a", "b")]
    assert items[0] == items[1]
    c = run_json(capsys, tmp_path / "c", "--method", "context_free", "--set", "ratio=0.25", "--seed", "1")
    assert c["run_id"] != a["run_id"] and c["kl"] != a["kl"]


@pytest.mark.slow
def test_rerun_reuses_the_finished_record(capsys, runs):
    rec = run_json(capsys, runs, "--method", "naive_sft")
    code, out, err = bench(capsys, "run", "--method", "naive_sft", "--out", str(runs), "--json", *SMALL)
    assert code == 0 and "already done" in err and json.loads(out) == rec


@pytest.mark.slow
def test_human_summary(capsys, runs):
    code, out, _ = bench(capsys, "run", "--method", "naive_sft", "--out", str(runs), *SMALL)
    assert code == 0
    assert "target micro-cipher" in out and "micro-zeroshot" in out and "KL(base || tuned)" in out


@pytest.mark.slow
def test_leaderboard_on_real_runs(capsys, runs, tmp_path):
    base = run_json(capsys, runs, "--method", "naive_sft")
    other = run_json(capsys, runs, "--method", "pretrain_replay", "--set", "ratio=0.5")
    code, out, err = bench(capsys, "leaderboard", "--runs", str(runs), "--format", "csv", "--view", "points")
    assert code == 0, err
    import csv
    import io
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"naive_sft", "pretrain_replay"}
    assert rows["pretrain_replay"]["setting"] == "ratio=0.5"
    for rec in (base, other):
        row = rows[rec["spec"]["method"]]
        # one seed: the table's deltas are the record's own, which came from the same items
        for s, v in rec["suites"].items():
            assert float(row[s]) == pytest.approx(v["delta"], rel=1e-5)
        avg = sum(v["delta"] for v in rec["suites"].values()) / len(rec["suites"])
        assert float(row["suite_average"]) == pytest.approx(avg, rel=1e-5)
        assert float(row["suite_average_low"]) <= avg <= float(row["suite_average_high"])
        assert float(row["kl"]) == pytest.approx(rec["kl"]["token_exact"]["mean"], rel=1e-5)
        lines = (runs / rec["run_id"] / "items.jsonl").read_text().splitlines()
        items = [json.loads(x) for x in lines]
        preserved = {t for v in rec["suites"].values() for t in v["average_over"]}
        kept = [i for i in items if i["task"] in preserved]
        was = {(i["task"], i["doc_id"]): i["correct"] for i in kept if i["model"] == "base"}
        now = {(i["task"], i["doc_id"]): i["correct"] for i in kept if i["model"] == "tuned"}
        forgot = sum(was[k] and not now[k] for k in was) / len(was)
        assert float(row["forgetting"]) == pytest.approx(forgot, rel=1e-5)
    # one seed each: no claim about the methods (no difference from naive_sft, no p)
    assert rows["pretrain_replay"]["p_holm"] == rows["naive_sft"]["p_holm"] == ""
    assert rows["pretrain_replay"]["vs_naive_sft"] == ""
    dest = tmp_path / "published"
    code, out, err = bench(capsys, "leaderboard", "publish", "--runs", str(runs), "--dest", str(dest), "--name", "m")
    assert code == 0, err
    assert {p.suffix for p in (dest / "m").iterdir()} == {".md", ".tex", ".html", ".csv", ".png", ".svg", ".xz"}
    assert "| pretrain_replay (ratio=0.5)" in (dest / "m" / "m.md").read_text()


@pytest.mark.slow
def test_eval_and_kl_on_a_saved_checkpoint(capsys, tmp_path):
    rec = run_json(capsys, tmp_path, "--method", "naive_sft", "--save-model")
    ckpt = tmp_path / rec["run_id"] / "model"
    code, out, err = bench(capsys, "eval", "--model", str(ckpt), "--base", "micro", "--kl-samples", "32", "--json")
    assert code == 0, err
    ev = json.loads(out)
    for key in ("target", "suites"):
        assert ev[key] == rec[key]
    assert ev["kl"]["token_exact"] == pytest.approx(rec["kl"]["token_exact"], rel=1e-5)
    code, out, err = bench(capsys, "kl", "--base", "micro", "--model", str(ckpt), "--samples", "32", "--json")
    assert code == 0, err
    kl = json.loads(out)
    assert kl["n"] == 32 and kl["token_exact"] == pytest.approx(rec["kl"]["token_exact"], rel=1e-5)
    code, out, _ = bench(capsys, "kl", "--base", "micro", "--model", "micro", "--samples", "8", "--json")
    assert code == 0 and json.loads(out)["token_exact"]["mean"] == 0.0


@pytest.mark.slow
def test_an_outside_checkpoint_is_a_leaderboard_row_beside_the_runs(capsys, tmp_path):
    # the "outside" checkpoint is naive_sft's own tuned model, so its row must repeat naive_sft's numbers exactly
    runs = tmp_path / "runs"
    rec = run_json(capsys, runs, "--method", "naive_sft", "--save-model")
    ckpt = runs / rec["run_id"] / "model"
    code, out, err = bench(capsys, "eval", "--model", str(ckpt), "--base", "micro", "--name", "sft_elsewhere",
                           "--out", str(runs), "--kl-samples", "32", "--json")
    assert code == 0, err
    ext = json.loads(out)
    assert ext["kind"] == "external" and ext["spec"]["checkpoint"] == str(ckpt) and ext["spec"]["data"] is None
    assert "training" not in ext and ext["weight_change"]["l2"] == pytest.approx(rec["weight_change"]["l2"])
    for key in ("target", "suites"):
        assert ext[key] == rec[key]
    code, _, err = bench(capsys, "eval", "--model", str(ckpt), "--base", "micro", "--name", "sft_elsewhere",
                         "--out", str(runs), "--kl-samples", "32", "--json")
    assert code == 0 and "already done" in err                 # kept, not recomputed
    code, out, err = bench(capsys, "leaderboard", "--runs", str(runs), "--format", "csv", "--view", "points")
    assert code == 0, err
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(out))}
    assert (rows["sft_elsewhere"]["external"], rows["naive_sft"]["external"]) == ("True", "False")
    same = ["target_gain", "suite_average", "suite_average_low", "suite_average_high", "kl", "forgetting"]
    assert [rows["sft_elsewhere"][k] for k in same] == [rows["naive_sft"][k] for k in same]
    code, out, err = bench(capsys, "leaderboard", "--runs", str(runs))
    assert code == 0, err
    assert "sft_elsewhere (external)" in out
    assert (f"bench eval --model {ckpt} --base micro --name sft_elsewhere --seed 0 --kl-samples 32 --out {runs}"
            in out)


def test_listing_commands(capsys):
    code, out, _ = bench(capsys, "methods")
    assert code == 0
    for name in ("naive_sft", "context_free", "contextual_synthetic", "pretrain_replay", "explicit_kl"):
        assert name in out
    code, out, _ = bench(capsys, "tasks")
    assert code == 0 and "micro-cipher" in out and "micro-zeroshot" in out and "micro-reasoning" in out


def eval_json(capsys, *argv) -> dict:
    code = main(["eval", "--model", "micro", "--base", "micro", "--target", "micro-cipher", "--limit", "6",
                 "--max-new-tokens", "8", "--kl-samples", "4", "--json", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_an_lm_eval_task_named_on_the_command_line_is_a_suite(capsys):
    # the micro world's own task YAMLs, run as "any lm-eval task": the same items and outcomes as the registered
    # suites (the metric and filter read from the YAMLs: acc, and exact_match after the "extract" filter)
    registered = eval_json(capsys, "--suite", "micro-zeroshot", "--suite", "micro-reasoning")
    named = "lm_eval:fb_micro_zeroshot,fb_micro_reasoning"
    adhoc = eval_json(capsys, "--suite", named, "--include-path", "tasks/micro")
    assert list(adhoc["suites"]) == [named] and adhoc["spec"]["suites"] == [named]
    tasks = adhoc["suites"][named]["tasks"]
    both = registered["suites"]
    assert tasks == {**both["micro-zeroshot"]["tasks"], **both["micro-reasoning"]["tasks"]}
    assert {t: v["metric"] for t, v in tasks.items()} == {"fb_micro_zeroshot": "acc",
                                                          "fb_micro_reasoning": "exact_match"}
