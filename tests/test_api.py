"""The Python API: the README's example runs as printed, its results are the records' numbers, and the
leaderboard frame is the published CSV's table."""

import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import forgetbench
import pytest

README = Path(__file__).parents[1] / "README.md"


def readme_example() -> str:
    return re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_runs_and_its_numbers_are_the_records(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with redirect_stdout(printed):
        exec(readme_example(), {})
    lwf, = forgetbench.run("lwf", seed=0, set={"lam": 0.5}, limit=20, kl_samples=16, out="runs")   # read back
    record = lwf.record
    assert lwf.method == "lwf" and lwf.seed == 0 and lwf.folder.parent == Path("runs")
    assert lwf.target_delta == record["target"]["delta"]
    assert lwf.suites == {n: s["delta"] for n, s in record["suites"].items()}
    assert lwf.suite_average == pytest.approx(sum(lwf.suites.values()) / len(lwf.suites))
    assert lwf.kl == record["kl"]["token_exact"]["mean"] and record["spec"]["params"]["lam"] == 0.5
    line = f"lwf: target {lwf.target_delta:+.3f}, suites {lwf.suite_average:+.3f}, KL {lwf.kl:.2f}"
    assert line in printed.getvalue()
    table = forgetbench.leaderboard.table("runs").set_index("method")
    assert table.loc["lwf", "suite_average"] == pytest.approx(lwf.suite_average, rel=1e-5)
    # the same table the CLI writes as CSV
    from forgetbench.cli import main
    assert main(["leaderboard", "--runs", "runs", "--format", "csv", "--view", "points", "--out", "t.csv"]) == 0
    from forgetbench.leaderboard.render import _csv
    assert _csv(forgetbench.leaderboard.table("runs").to_dict("records")) == Path("t.csv").read_text()


def test_bad_arguments_raise_before_any_work(tmp_path, no_work):
    with pytest.raises(forgetbench.UserError, match="Unknown method 'lfw'. Did you mean 'lwf'"):
        forgetbench.run("lfw", out=str(tmp_path))
    with pytest.raises(forgetbench.UserError, match="'seeed' is not a field of `bench run`; did you mean 'seed'"):
        forgetbench.run("lwf", seeed=1, out=str(tmp_path))
    # worded for a Python caller: the keyword, not the flag
    with pytest.raises(forgetbench.UserError, match=r"^forgetbench\.run\(\): seed: must be at least 0, got -1\.$"):
        forgetbench.run("lwf", seed=-1, out=str(tmp_path))
    with pytest.raises(forgetbench.UserError, match=r"^forgetbench\.run\(\): budget=\{'lr': 'x'\}: The training "
                       r"budget's lr must be a number, not 'x'\.$"):
        forgetbench.run("lwf", budget={"lr": "x"}, out=str(tmp_path))
    with pytest.raises(forgetbench.UserError, match=r"^forgetbench\.run\(\): seed: must be an integer, not 0\.5\.$"):
        forgetbench.run("lwf", seed=0.5, out=str(tmp_path))
    with pytest.raises(forgetbench.UserError, match=r"^forgetbench\.run\(\): suite: must be a list"):
        forgetbench.run("lwf", suite={"a": 1}, out=str(tmp_path))
    with pytest.raises(forgetbench.UserError, match="view='table'"):
        forgetbench.leaderboard.table(tmp_path, view="table")


def test_importing_the_api_changes_no_environment_variable():
    code = "import os; before = dict(os.environ); import forgetbench; print(dict(os.environ) == before)"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
