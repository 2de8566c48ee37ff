"""Sweeps: the equal-budget draw, the expansion into ordinary runs, the sweep file, dry runs (fast); executors with
resume, failures, worker processes and a Ray cluster of two nodes with a worker that dies (slow)."""

import itertools
import json
import os
import random
from pathlib import Path

import pytest
from forgetbench.cli import main
from forgetbench.core.errors import UserError
from forgetbench.runner.request import RunRequest
from forgetbench.runner.stages import plan_run
from forgetbench.sweeper.design import SweepConfig, configurations, expand, latin_hypercube
from hypothesis import given, settings
from hypothesis import strategies as st

knob_values = st.lists(st.integers(0, 50), min_size=1, max_size=5, unique=True)
grids = st.dictionaries(st.sampled_from(["a", "b", "c"]), knob_values, max_size=3)


@given(grids, knob_values, st.integers(1, 8), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_configurations_are_an_equal_budget_of_distinct_grid_points(grid, lr, n, seed):
    defaults = {"a": 0, "b": 0, "c": 0, "lr": 0}
    configs = configurations("m", n=n, grid=grid, budget_knobs={"lr": lr}, fixed={}, defaults=defaults,
                             grid_seed=seed)
    points = {tuple(sorted({**defaults, **c.overrides, **c.budget}.items())) for c in configs}
    size = len({tuple(sorted({**defaults, **dict(zip([*grid, "lr"], combo))}.items()))
                for combo in itertools.product(*grid.values(), lr)} | {tuple(sorted(defaults.items()))})
    assert len(configs) == min(n, size) == len(points)               # N, or every point when the grid is smaller
    assert configs[0].overrides == {} and configs[0].budget == {}     # configuration 0: the defaults
    assert [c.index for c in configs] == list(range(len(configs)))
    for c in configs[1:]:
        assert all(v in grid[k] for k, v in c.overrides.items()) and all(v in lr for v in c.budget.values())
        assert c.overrides or c.budget                                 # a drawn point differs from the defaults
    again = configurations("m", n=n, grid=grid, budget_knobs={"lr": lr}, fixed={}, defaults=defaults, grid_seed=seed)
    assert again == configs                                            # deterministic


@given(st.dictionaries(st.sampled_from("xyz"), knob_values, min_size=1), st.integers(1, 9), st.integers())
def test_latin_hypercube_spreads_every_knob_evenly(grid, n, seed):
    drawn = latin_hypercube(grid, n, random.Random(seed))
    assert len(drawn) == n
    for knob, values in grid.items():
        column = [d[knob] for d in drawn]
        expect = sorted(values[int((i + 0.5) * len(values) / n)] for i in range(n))
        assert sorted(column) == expect                              # each value's share as even as n allows
        if n <= len(values):
            assert len(set(column)) == n                             # never the same value twice when avoidable


def test_draw_depends_on_the_method_and_seed_only():
    grid, lr = {"lam": [0.1, 1, 10, 100]}, [1, 2, 3, 4]
    one = configurations("x", n=4, grid=grid, budget_knobs={"lr": lr}, fixed={}, defaults={}, grid_seed=0)
    assert one == configurations("x", n=4, grid=grid, budget_knobs={"lr": lr}, fixed={}, defaults={}, grid_seed=0)
    assert one != configurations("x", n=4, grid=grid, budget_knobs={"lr": lr}, fixed={}, defaults={}, grid_seed=1)
    # a fixed value replaces the default of configuration 0 and stays wherever the draw does not vary it
    fixed = configurations("x", n=3, grid={}, budget_knobs={"lr": lr}, fixed={"k": 1}, defaults={}, grid_seed=0)
    assert all(c.overrides == {"k": 1} for c in fixed)


def micro_request(**kw) -> RunRequest:
    return RunRequest(method="", model="micro", target="micro-cipher", **kw)


def test_expand_plans_ordinary_runs_with_their_sweep_tag():
    runs = expand(micro_request(), SweepConfig(methods=("naive_sft", "lora"), seeds=(0, 1), configs=3))
    assert len(runs) == 2 * 3 * 2
    plain = plan_run(RunRequest(method="lora", model="micro", target="micro-cipher", seed=1))
    first = next(r for r in runs if r.method == "lora" and r.config.index == 0 and r.seed == 1)
    assert first.run_ids == [s.run_id for s in plain.specs]           # configuration 0 is the plain `bench run`
    lora = [r for r in runs if r.method == "lora" and r.seed == 0]
    assert [r.request.sweep_tag["config"] for r in lora] == [0, 1, 2]
    assert {r.request.sweep_tag["name"] for r in runs} == {runs[0].request.sweep_tag["name"]}
    for r in lora[1:]:   # a drawn configuration varies the method's rank and/or the shared lr / epochs
        assert set(r.config.overrides) <= {"rank"} and set(r.config.budget) <= {"lr", "epochs"}
        assert r.plan.budget.lr in (0.00025, 0.0005, 0.001, 0.002) and r.plan.budget.epochs in (2, 4, 6)
    assert len({i for r in runs for i in r.run_ids}) == len(runs)


@pytest.mark.parametrize("method, knob, values", [("wise_ft", "alpha", {"0.25", "0.5", "0.75"}),
                                                   ("lines", "alpha", {"0", "0.25", "0.5"}),
                                                   ("dare", "p", {"0.5", "0.7", "0.9"})])
def test_a_post_hoc_grid_is_evaluated_on_every_training_configuration(method, knob, values):
    """wise_ft's alpha (lines' alpha, dare's p) changes no training: every training configuration the sweep draws is
    evaluated at every value, from one training run, and the method trains as many runs as naive SFT."""
    runs = expand(micro_request(), SweepConfig(methods=("naive_sft", method), seeds=(0, 1), configs=4))
    sft, post = [r for r in runs if r.method == "naive_sft"], [r for r in runs if r.method == method]
    assert len(post) == len(sft) == 4 * 2                             # training runs: the equal budget
    trained = {(r.plan.budget.lr, r.plan.budget.epochs) for r in post}
    assert len(trained) == 4                                           # N distinct training configurations
    evaluated = {(r.plan.budget.lr, r.plan.budget.epochs, r.seed, v.params()[knob])
                 for r in post for v in r.plan.variants}
    assert evaluated == {(*t, seed, v) for t in trained for seed in (0, 1) for v in values}   # every one at every value
    assert all(len(r.run_ids) == len(values) and r.config.post_hoc == knob for r in post)
    first = next(r for r in post if r.config.index == 0 and r.seed == 1)
    plain = plan_run(RunRequest(method=method, model="micro", target="micro-cipher", seed=1))
    assert plain.specs[0].run_id in first.run_ids                      # configuration 0 holds the plain `bench run`
    grid = ",".join(sorted(values, key=float))
    assert first.config.label() == f"defaults; {knob}={grid}: 3 results of one training run"
    assert set(first.request.sweep_tag) == {"name", "config", "configs", "of", "grid_seed", "varied"}


def test_a_post_hoc_grid_holds_configuration_0s_own_value_and_draws_the_other_knobs():
    runs = expand(micro_request(), SweepConfig(methods=("lines",), seeds=(0,), configs=4,
                                               grids={"lines": {"alpha": ["0.1", 0.9], "beta": [0.25, 1.0]}},
                                               fixed={"lines": {"alpha": "0.3"}}))
    assert {r.config.overrides["alpha"] for r in runs} == {"0.1,0.3,0.9"}     # ascending, 0.3 (set) among them
    assert {r.config.overrides.get("beta", 0.5) for r in runs} == {0.5, 0.25, 1.0}    # beta is still drawn
    only = expand(micro_request(), SweepConfig(methods=("wise_ft",), seeds=(0,), configs=2, grids={"wise_ft": {}}))
    assert [len(r.run_ids) for r in only] == [1, 1] and {r.config.overrides["alpha"] for r in only} == {"0.5"}
    assert only[0].config.label() == "defaults; alpha=0.5: 1 result of one training run"
    with pytest.raises(UserError, match="alpha is evaluated from each training run.*numbers"):
        expand(micro_request(), SweepConfig(methods=("wise_ft",), grids={"wise_ft": {"alpha": ["high"]}}))


def test_a_methods_own_budget_is_its_plain_run_and_centres_its_grid():
    runs = expand(micro_request(), SweepConfig(methods=("naive_sft", "lora"), seeds=(0,), configs=3,
                                               budgets={"lora": {"lr": 0.004}}))
    lora = [r for r in runs if r.method == "lora"]
    plain = plan_run(RunRequest(method="lora", model="micro", target="micro-cipher", budget={"lr": 0.004}))
    assert lora[0].run_ids == [s.run_id for s in plain.specs]       # = `bench run --budget lr=0.004`
    for r in lora[1:]:                                               # the grid scales 0.004, not the target's 1e-3
        assert r.plan.budget.lr in (0.001, 0.002, 0.004, 0.008)
    assert {r.plan.budget.lr for r in runs if r.method == "naive_sft" and r.config.index == 0} == {0.001}
    with pytest.raises(UserError, match="budgets 'lora'.*no field 'learning_rate'"):
        expand(micro_request(), SweepConfig(methods=("lora",), budgets={"lora": {"learning_rate": 1}}))
    with pytest.raises(UserError, match="budgets 'lora'.*lr > 0"):
        expand(micro_request(), SweepConfig(methods=("lora",), budgets={"lora": {"lr": -1}}))
    with pytest.raises(UserError, match="budgets names 'lwf'"):
        SweepConfig(methods=("lora",), budgets={"lwf": {"lr": 1}})


def test_expand_refuses_bad_sweeps():
    with pytest.raises(UserError, match="Unknown method"):
        expand(micro_request(), SweepConfig(methods=("naive_sfft",)))
    with pytest.raises(UserError, match="configuration 0"):
        expand(micro_request(), SweepConfig(methods=("lwf",), fixed={"lwf": {"lam": -1}}))
    with pytest.raises(UserError, match="not among"):
        SweepConfig(methods=("lwf",), grids={"lora": {"rank": [1]}})
    with pytest.raises(UserError, match="non-empty list"):
        expand(micro_request(), SweepConfig(methods=("lwf",), grids={"lwf": {"lam": 3}}))
    with pytest.raises(UserError, match="more than 100,000"):
        expand(micro_request(), SweepConfig(methods=("lwf",), grids={"lwf": {"lam": list(range(10_000))}}))
    with pytest.raises(UserError, match="lr and epochs"):
        expand(micro_request(), SweepConfig(methods=("lwf",), budget_grid={"batch_size": [1]}))


def bench(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_lists_every_run_and_the_file_fills_unset_flags(capsys, tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("methods: [naive_sft, lwf]\nseeds: [3]\nconfigs: 2\nname: t\nset:\n  lwf: {lam: 0.5}\n"
                   f"budgets:\n  lwf: {{lr: 0.002}}\nout: {tmp_path / 'runs'}\n")
    code, out, err = bench(capsys, "sweep", "--config", cfg, "--dry-run", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["method"], r["config"], r["seed"], r["status"]) for r in rows] == [
        ("naive_sft", 0, 3, "to do"), ("naive_sft", 1, 3, "to do"), ("lwf", 0, 3, "to do"), ("lwf", 1, 3, "to do")]
    assert rows[2]["varied"] == "lam=0.5 lr=0.002"
    assert rows[2]["results"] == 1 and rows[2]["run_ids"] == [rows[2]["run_id"]]
    plain = plan_run(RunRequest(method="lwf", model="micro", target="micro-cipher", seed=3, overrides={"lam": 0.5},
                                budget={"lr": 0.002}))
    assert rows[2]["run_id"] == plain.specs[0].run_id
    code, out, err = bench(capsys, "sweep", "--config", cfg, "--dry-run", "--json", "--seeds", "0,1", "--methods",
                           "lwf")                                  # flags win over the file
    assert code == 0, err
    assert {(r["method"], r["seed"]) for r in map(json.loads, out.splitlines())} == {("lwf", 0), ("lwf", 1)}


@pytest.mark.parametrize("argv, match", [
    (["--seeds", "0,x"], "--seeds"), (["--seeds", "-1"], "--seeds"), (["--methods", "nope"], "Unknown method"),
    (["--jobs", "2", "--executor", "ray"], "--jobs is for"), (["--ray-address", "auto"], "--ray-address is for"),
    (["--config", "missing.yaml"], "no such file"),
])
def test_bad_sweep_flags_exit_2_before_any_work(capsys, tmp_path, argv, match):
    code, out, err = bench(capsys, "sweep", "--out", tmp_path / "runs", *argv)
    assert code == 2 and match in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_bad_sweep_file_fields_exit_2(capsys, tmp_path):
    for text, match in [("configs: 0\n", "--config"), ("nonsense: 1\n", "--config"), ("- a\n", "mapping"),
                        ("methods: [lwf]\ngrids: {lora: {rank: [2]}}\n", "not among"),
                        ("methods: [lwf]\nset: {lwf: 3}\n", "mapping of method"),
                        ("methods: [lwf]\nbudgets: {lwf: {lr: 0}}\n", "lr > 0"), ("grids: [1]\n", "mapping"),
                        ("budget_grid: 2\n", "lr / epochs"), ("budget_grid: {lr: 0.1}\n", "non-empty list")]:
        cfg = tmp_path / "bad.yaml"
        cfg.write_text(text)
        code, _, err = bench(capsys, "sweep", "--config", cfg, "--dry-run")
        assert code == 2 and match in err, (text, err)


TINY = ["--budget", "examples=32", "--budget", "epochs=1", "--limit", "6", "--kl-samples", "8", "--seeds", "0",
        "--configs", "2"]


def folders(root: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in root.glob("*/result.json")}


@pytest.mark.slow
def test_local_sweep_resumes_reports_failures_and_workers_agree(capsys, tmp_path, monkeypatch):
    serial, pool = tmp_path / "serial", tmp_path / "pool"
    # freeze_bottom's default k=3 freezes every layer of the 3-layer micro model: its configuration 0 fails
    code, out, err = bench(capsys, "sweep", "--methods", "naive_sft,freeze_bottom", *TINY, "--out", serial)
    assert code == 1
    assert "FAILED freeze_bottom-s0-" in err and "would freeze all 3 layers" in err
    assert "4 runs: 0 already done, 3 finished now, 1 failed" in err
    done = folders(serial)
    assert len(done) == 3 and not list(serial.glob(".tmp*"))
    code, out, _ = bench(capsys, "sweep", "--methods", "naive_sft,freeze_bottom", *TINY, "--out", serial,
                         "--dry-run", "--json")
    status = {(r["method"], r["config"]): r["status"] for r in map(json.loads, out.splitlines())}
    assert code == 0 and status == {("naive_sft", 0): "done", ("naive_sft", 1): "done",
                                     ("freeze_bottom", 0): "to do", ("freeze_bottom", 1): "done"}
    code, _, err = bench(capsys, "sweep", "--methods", "naive_sft", *TINY, "--out", serial)
    assert code == 0 and "2 already done, 0 finished now" in err and folders(serial) == done    # nothing recomputed
    marker = crash_once(monkeypatch, tmp_path)   # one worker dies after computing its run: the pool is rebuilt
    code, _, err = bench(capsys, "sweep", "--methods", "naive_sft", *TINY, "--out", pool, "--jobs", "2")
    assert code == 0 and marker.exists() and "2 finished now, 0 failed" in err, err
    for name in folders(pool):
        a = json.loads((serial / name / "result.json").read_text())
        b = json.loads((pool / name / "result.json").read_text())
        assert (serial / name / "items.jsonl").read_bytes() == (pool / name / "items.jsonl").read_bytes()
        assert a["kl"] == b["kl"] and a["training"]["loss_last_10pct"] == b["training"]["loss_last_10pct"]
        assert b["sweep"]["config"] in (0, 1) and b["provenance"]["threads"] == 1


def crash_once(monkeypatch, tmp_path) -> Path:
    """The first sweep worker process to start after this dies once after computing its run (the fixture's
    sitecustomize.py, on the workers' PYTHONPATH; production code has no such hook). Returns the marker it leaves."""
    marker = tmp_path / "crashed"
    hook = Path(__file__).parent / "fixtures" / "crash_once"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("FORGETBENCH_CRASH_ONCE", str(marker))
    return marker


@pytest.mark.slow
def test_ray_on_two_nodes_retries_a_dead_worker(capsys, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    marker = crash_once(monkeypatch, tmp_path)   # before the cluster starts: its workers inherit the environment
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        code, _, err = bench(capsys, "sweep", "--methods", "naive_sft", *TINY, "--out", tmp_path / "ray",
                             "--executor", "ray", "--ray-address", cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert marker.exists()                      # one worker died after computing its run, before handing it back
    assert code == 0 and "2 finished now, 0 failed" in err, err
    runs = sorted((tmp_path / "ray").glob("*/result.json"))
    assert len(runs) == 2 and not list((tmp_path / "ray").glob(".tmp*"))
    for path in runs:
        record = json.loads(path.read_text())
        assert record["sweep"]["configs"] == 2 and record["provenance"]["threads"] == 1


def test_worker_shares_of_cores_and_gpus():
    from forgetbench.sweeper.executors import shares
    assert shares(2, [0, 1], []) == [([0], None), ([1], None)]
    assert shares(2, [0, 1, 2], ["0", "1"]) == [([0, 1], "0"), ([2], "1")]
    assert shares(1, [4, 5], ["3"]) == [([4, 5], "3")]
    assert shares(3, [0, 1], ["0"]) == [([0], "0"), ([1], "0"), ([0], "0")]     # more workers than cores: shared


@given(st.text(max_size=20))
def test_seed_lists_parse_or_fail_cleanly(text):
    from forgetbench.sweeper.request import SWEEP, seed_list
    (option,) = [o for o in SWEEP if o.name == "seeds"]
    try:
        seeds = seed_list(option.check(text))
    except UserError as e:
        assert "--seeds" in str(e)
    else:
        assert seeds and all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds)
        assert seeds == tuple(int(x) for x in text.split(",") if x.strip())


def test_repeated_methods_or_seeds_are_refused():
    with pytest.raises(UserError, match="more than once"):
        SweepConfig(methods=("lwf",), seeds=(0, 0))
    with pytest.raises(UserError, match="more than once"):
        SweepConfig(methods=("lwf", "lwf"))


def test_a_workers_files_are_checked_against_their_digests():
    import hashlib

    from forgetbench.sweeper.design import _damaged

    def sha(t):
        return hashlib.sha256(t.encode()).hexdigest()
    files = {"items.jsonl": "{}\n", "lm_eval/tuned/r/results_x.json": "{}"}
    record = {"items": "items.jsonl", "items_sha256": sha("{}\n"),
              "lm_eval_outputs": {"lm_eval/tuned/r/results_x.json": sha("{}")}}
    assert _damaged(record, files) == []
    assert _damaged(record, {**files, "items.jsonl": "{}"}) == ["items.jsonl"]
    assert _damaged(record, {"items.jsonl": "{}\n"}) == ["lm_eval/tuned/r/results_x.json"]      # one never sent
