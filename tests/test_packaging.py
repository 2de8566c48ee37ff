"""One import name: the distribution installs `forgetbench` alone (the repository's folders mapped into it), and
a working folder holding the most common names in research code (`tasks.py`, an empty `methods/`, `bench.py`,
`leaderboard.py`) changes nothing, for the console script, `python -m` and the Python API alike."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from test_layering import FOLDERS, ROOT, module_name

BIN = Path(sys.executable).parent


def packages() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_package_folder_is_listed_and_mapped():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {package: folder for folder, package in FOLDERS.items()}
    folders = {module_name(p) for folder in FOLDERS for p in (ROOT / folder).rglob("__init__.py")}
    assert folders == set(packages())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(out)], check=True, capture_output=True, cwd=out)
    (found,) = out.glob("forgetbench-*.whl")
    return found


def test_the_wheel_installs_forgetbench_alone_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"forgetbench"}
    for needed in ("forgetbench/methods/lwf.py", "forgetbench/tasks/micro/fb_micro_cipher.yaml",
                   "forgetbench/tasks/micro/base/model.safetensors", "forgetbench/tasks/real/data_sources.json",
                   "forgetbench/leaderboard/render.py", "forgetbench/cli/__main__.py"):
        assert needed in names
    assert not any("/published/" in n or n.endswith((".png", ".svg", ".html")) for n in names)


@pytest.fixture()
def shadowed(tmp_path) -> Path:
    """A research folder whose names shadowed forgetbench's old top-level packages."""
    (tmp_path / "tasks.py").write_text("raise SystemExit('tasks.py was imported')\n")
    (tmp_path / "methods").mkdir()
    (tmp_path / "bench.py").write_text("raise SystemExit('bench.py was imported')\n")
    (tmp_path / "leaderboard.py").write_text("raise SystemExit('leaderboard.py was imported')\n")
    return tmp_path


def listed_methods(stdout: str) -> set[str]:
    from forgetbench.method import methods
    return {line.split()[0] for line in stdout.splitlines() if line.split()[:1] and line.split()[0] in
            methods.names()}


@pytest.mark.slow
def test_a_shadowing_folder_changes_nothing_for_the_script_python_m_and_the_api(shadowed, wheel):
    from forgetbench.method import methods
    every = set(methods.names())
    script = subprocess.run([BIN / "bench", "methods"], cwd=shadowed, capture_output=True, text=True)
    assert script.returncode == 0 and listed_methods(script.stdout) == every, script.stderr
    # the wheel's copy, installed apart, run from the same folder with `python -m` and through the API
    site = shadowed.parent / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {"PYTHONPATH": str(site), "PATH": str(BIN)}
    as_module = subprocess.run([sys.executable, "-m", "forgetbench.cli", "methods"], cwd=shadowed, env=env,
                               capture_output=True, text=True)
    assert as_module.returncode == 0 and listed_methods(as_module.stdout) == every, as_module.stderr
    code = ("import forgetbench, forgetbench.cli; from forgetbench.method import methods; "
            "print(forgetbench.__file__); print(*methods.names())")
    api = subprocess.run([sys.executable, "-c", code], cwd=shadowed, env=env, capture_output=True, text=True)
    where, names = api.stdout.splitlines()
    assert Path(where).is_relative_to(site) and set(names.split()) == every, api.stderr
