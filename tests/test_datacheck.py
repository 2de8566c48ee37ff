"""`bench data check DIR`: every file the registered tasks read, present (with its sha256), missing or malformed."""

import hashlib
import json
import shutil
from pathlib import Path

from forgetbench.cli import main
from forgetbench.data.check import check, malformed, needs
from hypothesis import given
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
OBJECTS = st.dictionaries(st.text(max_size=6), SCALARS, max_size=3)


@given(st.lists(OBJECTS, min_size=1, max_size=6), st.integers(0, 6), st.sampled_from(["[1, 2]", "3", "{", "x"]))
def test_a_jsonl_file_is_malformed_exactly_at_its_first_line_that_is_no_object(rows, at, bad):
    lines = [json.dumps(r) for r in rows]
    assert malformed("t.jsonl", "\n".join(lines).encode()) is None
    at = min(at, len(lines))
    lines.insert(at, bad)
    assert malformed("t.jsonl", "\n".join(lines).encode()) == f"line {at + 1} is not a JSON object"


def test_other_kinds_of_damage_are_named():
    assert malformed("a.json", b'{"a": 1') == "not JSON"
    assert malformed("a.txt", b"   \n") == "empty"
    assert malformed("a.txt", b"caf\xe9") == "not UTF-8 text (byte 3)"
    assert malformed("a.parquet", b"PAR1 not really").startswith("not Parquet")
    assert malformed("a.lst", b"1\n0\n") is None


def test_every_registered_need_is_listed_with_who_reads_it():
    from forgetbench.task import corpora, suites, targets
    listed = {n.path: n.users for n in needs()}
    declared = {p for _, s in suites.items() for t in s.tasks for p in t.needs}
    declared |= {p for _, t in targets.items() for e in t.evals for p in e.needs}
    declared |= {p for _, t in targets.items() for p in t.train_needs}
    declared |= {p for _, c in corpora.items() for p in c.needs}
    assert set(listed) == declared
    assert "target gsm8k (training)" in listed["gsm8k/train.jsonl"]
    assert "corpus wikitext2" in listed["corpora/wikitext2/valid.txt"]


def test_a_folder_is_reported_file_by_file(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data)
    arc = data / "arc" / "arc_easy_test.llmfoundry.jsonl"
    arc.write_bytes(arc.read_bytes() + b"not json\n")                        # one damaged file
    shutil.rmtree(data / "mmlu")                                               # one missing folder
    found = {f.path: f for f in check(data)}
    assert found["arc/arc_easy_test.llmfoundry.jsonl"].status == "malformed"
    assert "is not a JSON object" in found["arc/arc_easy_test.llmfoundry.jsonl"].detail
    assert found["mmlu/test"].status == "missing"
    boolq = found["boolq/boolq_val.llmfoundry.jsonl"]
    path = data / boolq.path
    assert boolq.status == "present" and boolq.files == {boolq.path: hashlib.sha256(path.read_bytes()).hexdigest()}
    assert main(["data", "check", str(data), "--json"]) == 1
    rows = {r["path"]: r["status"] for r in json.loads(capsys.readouterr().out)}
    assert rows == {p: f.status for p, f in found.items()}
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
