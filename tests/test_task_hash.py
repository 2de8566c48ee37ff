"""A task's content hash (part of every run id) covers what defines its items, prompts and scoring: its YAML, the
code that YAML calls and the task code it imports (from its folder, or by name from forgetbench.tasks, found
where Python finds it: what lm-eval's run imports), the code of a generative task's problems, the
verifier where the scoring is its check, and the data files' digests; never where the files are, nor the code
that registers tasks. Each test works on a copy of a task folder in tmp_path."""

import importlib.util
import shutil
from pathlib import Path

import pytest
from forgetbench.task import EvalTask, definition_files, definition_hash, resolve, suites, targets

from tests.conftest import FIXTURE_DATA

MICRO_TASKS = [suites.get("micro-zeroshot").tasks[0], suites.get("micro-reasoning").tasks[0],
               targets.get("micro-cipher").evals[0], targets.get("micro-tone").evals[0]]
MICRO = targets.get("micro-cipher").include_path
REAL = suites.get("zeroshot").include_path


def _copy(folder: Path, to: Path) -> Path:
    return Path(shutil.copytree(folder, to, ignore=shutil.ignore_patterns("__pycache__", "base")))


def _micro_hashes(folder: Path) -> dict[str, str]:
    return {t.name: resolve([(t, folder)], None)[0][0].content_hash for t in MICRO_TASKS}


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


@pytest.fixture()
def micro(tmp_path) -> Path:
    return _copy(MICRO, tmp_path / "copy" / "micro")


def test_a_copied_or_moved_task_folder_gives_the_same_hashes(micro, tmp_path):
    assert _micro_hashes(micro) == _micro_hashes(MICRO)
    moved = tmp_path / "elsewhere" / "deeper" / "micro"
    moved.parent.mkdir(parents=True)
    micro.rename(moved)
    assert _micro_hashes(moved) == _micro_hashes(MICRO)


def test_editing_the_registration_module_changes_no_hash(micro):
    before = _micro_hashes(micro)
    _append(micro / "__init__.py", "\n# a comment in the code that registers the micro tasks\n")
    assert _micro_hashes(micro) == before


@pytest.mark.parametrize("edited,changed", [
    ("fb_micro_cipher.yaml", {"fb_micro_cipher"}),           # one task's YAML: that task only
    ("loaders.py", {t.name for t in MICRO_TASKS}),           # the code every micro YAML calls
    # a copy's world.py is not what runs: its loaders.py imports forgetbench.tasks.micro.world, the installed one
    ("world.py", set()),
])
def test_editing_what_defines_the_items_changes_their_hashes(micro, edited, changed):
    before = _micro_hashes(micro)
    _append(micro / edited, "\n# edited\n")
    after = _micro_hashes(micro)
    assert {name for name in before if before[name] != after[name]} == changed


def test_the_verifier_counts_where_the_scoring_is_its_check():
    """fb_micro_cipher's process_results calls the verifier; fb_micro_reasoning is scored by lm-eval's own
    exact_match (its scoring field keeps the default "generate"); gsm8k's pass@1 is checked by the verifier,
    gsm8k_loglik is a likelihood."""
    by_name = {t.name: t for t in MICRO_TASKS} | {t.name: t for t in targets.get("gsm8k").evals}
    files = {name: sorted(definition_files(t, MICRO if name.startswith("fb_") else None))
             for name, t in by_name.items()}
    world = definition_files(MICRO_TASKS[0], MICRO)["forgetbench.tasks.micro.world"]
    assert world.samefile(MICRO / "world.py")          # the file lm-eval's run imports, by its module name
    assert files == {
        "fb_micro_zeroshot": ["fb_micro_zeroshot.yaml", "forgetbench.tasks.micro.world", "loaders.py"],
        "fb_micro_reasoning": ["fb_micro_reasoning.yaml", "forgetbench.tasks.micro.world", "loaders.py"],
        "fb_micro_cipher": ["fb_micro_cipher.yaml", "forgetbench.tasks.micro.world", "forgetbench.toolbox.verify",
                            "loaders.py"],
        "fb_micro_tone": ["fb_micro_tone.yaml", "forgetbench.tasks.micro.world", "forgetbench.toolbox.verify",
                          "loaders.py"],
        "gsm8k": ["forgetbench.toolbox.verify", "problems.py"],
        "gsm8k_loglik": ["problems.py"],
    }


def test_an_included_yaml_counts_and_a_neighbours_does_not(tmp_path):
    real = _copy(REAL, tmp_path / "real")
    arc_easy, arc_challenge, boolq = suites.get("zeroshot").tasks[:3]

    def hashes():
        return {t.name: definition_hash(t, real) for t in (arc_easy, arc_challenge, boolq)}
    before = hashes()
    _append(real / "fb_boolq.yaml", "\n# edited\n")
    after_boolq = hashes()
    _append(real / "fb_arc_easy.yaml", "\n# edited\n")           # fb_arc_challenge.yaml includes it
    after_arc = hashes()
    assert [n for n in before if after_boolq[n] != before[n]] == ["fb_boolq"]
    assert [n for n in before if after_arc[n] != after_boolq[n]] == ["fb_arc_easy", "fb_arc_challenge"]


def test_a_local_data_task_hashes_its_yaml_and_data_not_its_folder(tmp_path, fresh_cache):
    real = _copy(REAL, tmp_path / "moved" / "real")
    _append(real / "targets.py", "\n# a comment in a registration module\n")
    piqa = next(t for t in suites.get("zeroshot").tasks if t.name == "fb_piqa")
    here, there = (resolve([(piqa, folder)], FIXTURE_DATA)[0][0] for folder in (REAL, real))
    assert here.content_hash == there.content_hash and here.include != there.include
    _append(real / "loaders.py", "\n# edited\n")                # fb_piqa's YAML calls loaders.piqa
    assert resolve([(piqa, real)], FIXTURE_DATA)[0][0].content_hash != here.content_hash


def _load_copy(path: Path, name: str):
    """A module of a copied task folder, imported from there (as its own module, not forgetbench's)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_generative_tasks_hash_covers_its_problems_code_and_what_it_imports(tmp_path):
    real = _copy(REAL, tmp_path / "real")
    generated = _load_copy(real / "generated.py", "copied_generated")
    reverse = EvalTask("reverse_words", "exact_match", problems=generated.reversal_problems("test"), scoring="exact")
    before = definition_hash(reverse, None)
    assert before == definition_hash(targets.get("reverse_words").evals[0], None)
    for registering in ("__init__.py", "targets.py", "suites.py", "presets.py"):
        _append(real / registering, "\n# a comment\n")
    assert definition_hash(reverse, None) == before
    _append(real / "wikitext.py", "\n# edited\n")   # not what runs: generated.py imports the installed one by name
    assert definition_hash(reverse, None) == before
    assert "forgetbench.tasks.real.wikitext" in definition_files(reverse, None)
    _append(real / "generated.py", "\n# edited\n")              # the problems' own code
    edited = _load_copy(real / "generated.py", "copied_edited")
    reverse = EvalTask("reverse_words", "exact_match", problems=edited.reversal_problems("test"), scoring="exact")
    assert definition_hash(reverse, None) != before
