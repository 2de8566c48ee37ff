"""`bench data fetch [NAME ...] --to DIR`: pinned files written only with their pinned sha256, hub rows in the
layout the tasks read, every file recorded, nothing already there overwritten, offline refused before any work.
Downloads are served from ../shared/data (the pins are its digests) and hub rows are made up: no network."""

import hashlib
import json
import urllib.error

import datasets
import forgetbench.data.fetch as datafetch
import pytest
from forgetbench.cli import main
from forgetbench.data.check import check, needs
from forgetbench.task import data_sources
from forgetbench.tasks.real import loaders

from tests.conftest import SHARED, needs_shared_data


def _served(calls: list, damage: str | None = None):
    """A download that serves each pinned URL from ../shared/data (one file's bytes changed: `damage`)."""
    by_url = {s.url: p for p, s in data_sources.items() if s.url}

    def download(url: str) -> bytes:
        calls.append(url)
        data = (SHARED / "data" / by_url[url]).read_bytes()
        return data + b" " if by_url[url] == damage else data
    return download


def test_every_file_a_task_reads_has_one_source():
    sources = {p for p, _ in data_sources.items()}
    for need in needs():
        assert any(p == need.path or p.startswith(need.path + "/") for p in sources), need.path
    assert len([p for p in sources if p.startswith("mmlu/test/")]) == 57


@needs_shared_data
def test_the_pins_are_the_bytes_of_the_shared_data_folder():
    for path, source in data_sources.items():
        if source.url:
            assert hashlib.sha256((SHARED / "data" / path).read_bytes()).hexdigest() == source.sha256, path


@needs_shared_data
def test_fetched_files_are_the_pinned_bytes_recorded_and_kept_on_a_second_run(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(datafetch, "_download", _served(calls))
    to = tmp_path / "data"
    assert main(["data", "fetch", "fb_piqa", "gsm8k", "--to", str(to)]) == 0
    # gsm8k names a reasoning task (test.jsonl) and a target, which trains on train.jsonl too
    wanted = ["gsm8k/test.jsonl", "gsm8k/train.jsonl", "piqa/valid-labels.lst", "piqa/valid.jsonl"]
    assert sorted(calls) == sorted(data_sources.get(p).url for p in wanted)
    recorded = json.loads((to / "FETCHED.json").read_text())
    assert sorted(recorded) == wanted
    for path in wanted:
        data = (to / path).read_bytes()
        assert data == (SHARED / "data" / path).read_bytes()
        assert recorded[path] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                  "source": data_sources.get(path).url}
    found = {f.path: f for f in check(to)}
    assert found["piqa/valid.jsonl"].status == "present" and found["piqa/valid.jsonl"].detail.endswith("as pinned")
    assert len(loaders.piqa(to / "piqa")["validation"]) == 1838          # the task's own loader reads it
    calls.clear()
    assert main(["data", "fetch", "fb_piqa", "gsm8k", "--to", str(to)]) == 0
    assert calls == [] and capsys.readouterr().out.count(" kept ") == 4


@needs_shared_data
def test_bytes_other_than_the_pinned_ones_are_never_written_nor_overwritten(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datafetch, "_download", _served([], damage="piqa/valid.jsonl"))
    to = tmp_path / "data"
    assert main(["data", "fetch", "fb_piqa", "--to", str(to)]) == 1
    out = capsys.readouterr().out
    assert "failed piqa/valid.jsonl" in out and "other bytes than the pinned file" in out
    assert not (to / "piqa" / "valid.jsonl").exists() and not list(to.rglob("*.tmp"))
    assert (to / "piqa" / "valid-labels.lst").is_file()                # the other file is fetched all the same
    # a file of the user's own at a pinned path is left as it is, and reported
    (to / "piqa" / "valid.jsonl").write_text('{"goal": "mine"}\n')
    monkeypatch.setattr(datafetch, "_download", _served([]))
    assert main(["data", "fetch", "fb_piqa", "--to", str(to)]) == 1
    assert "left alone" in capsys.readouterr().out
    assert (to / "piqa" / "valid.jsonl").read_text() == '{"goal": "mine"}\n'


def test_no_network_fails_each_file_plainly_and_says_what_to_do(tmp_path, monkeypatch, capsys):
    def down(url):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(datafetch, "_download", down)
    assert main(["data", "fetch", "aime24", "--to", str(tmp_path / "d")]) == 1
    captured = capsys.readouterr()
    assert "failed aime24/test.jsonl: cannot fetch https://raw.githubusercontent.com/" in captured.out
    assert "Without network access: copy a data folder" in captured.err
    assert not (tmp_path / "d" / "FETCHED.json").exists()


HELLASWAG_ROW = {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.",
                 "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "endings": [
                     "is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                     "is holding a rubik's cube.", "starts pulling up roofing on a roof."],
                 "source_id": "activitynet~v_-JhWjGDPHMY", "split": "val", "split_type": "indomain", "label": "3"}
SCIQ_ROW = {"question": "What type of organism is commonly used in preparation of foods such as cheese and yogurt?",
            "distractor3": "viruses", "distractor1": "protozoa", "distractor2": "gymnosperms",
            "correct_answer": "mesophilic organisms", "support": "Mesophiles grow best in moderate temperature."}


def test_hub_files_are_written_in_the_layout_the_tasks_read(tmp_path, monkeypatch, capsys):
    asked = []

    def load_dataset(repo, config=None, split=None):
        asked.append((repo, config, split))
        return [HELLASWAG_ROW] if repo == "Rowan/hellaswag" else [SCIQ_ROW]
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    to = tmp_path / "data"
    assert main(["data", "fetch", "fb_hellaswag", "fb_sciq", "--to", str(to)]) == 0
    assert sorted(asked) == [("Rowan/hellaswag", None, "validation"), ("allenai/sciq", None, "test")]
    doc = loaders.hellaswag(to / "hellaswag" / "hellaswag_val.jsonl")["validation"][0]
    # lm-eval's hellaswag preprocessing, by hand: "activity: ctx_a Ctx_b", choices as given, the label an int
    assert doc == {"query": "Roof shingle removal: A man is sitting on a roof. He",
                   "choices": HELLASWAG_ROW["endings"], "label": 3}
    monkeypatch.undo()     # the real datasets.load_dataset reads the SciQ file as fb_sciq's YAML does
    sciq = datasets.load_dataset("json", data_files=str(to / "sciq" / "test.json"), split="train")
    assert list(sciq) == [SCIQ_ROW]
    recorded = json.loads((to / "FETCHED.json").read_text())
    assert recorded["sciq/test.json"]["source"] == "hub dataset allenai/sciq/test"
    assert recorded["sciq/test.json"]["sha256"] == hashlib.sha256((to / "sciq" / "test.json").read_bytes()).hexdigest()
    # a HellaSwag file of the user's own (no record of it) is kept as it is; a hub failure fails its file only
    (to / "FETCHED.json").write_text(json.dumps({"sciq/test.json": recorded["sciq/test.json"]}))
    (to / "hellaswag" / "hellaswag_val.jsonl").write_text('{"mine": 1}\n')
    (to / "sciq" / "test.json").unlink()

    def broken(repo, config=None, split=None):
        raise ValueError("Couldn't reach 'allenai/sciq' on the Hub")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(datasets, "load_dataset", broken)
    assert main(["data", "fetch", "fb_hellaswag", "fb_sciq", "--to", str(to)]) == 1
    out = capsys.readouterr().out
    assert "kept hellaswag/hellaswag_val.jsonl" in out and "(not fetched here: unchecked)" in out
    assert "failed sciq/test.json: cannot fetch hub dataset allenai/sciq/test (ValueError: Couldn't reach" in out
    assert (to / "hellaswag" / "hellaswag_val.jsonl").read_text() == '{"mine": 1}\n'


def test_hub_files_while_offline_and_unknown_names_stop_before_any_work(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(datafetch, "_download", calls.append)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    to = tmp_path / "data"
    assert main(["data", "fetch", "--to", str(to)]) == 2         # everything: HellaSwag and SciQ need the hub
    err = capsys.readouterr().err
    assert "hellaswag/hellaswag_val.jsonl (hub dataset Rowan/hellaswag/validation)" in err
    assert "HF_DATASETS_OFFLINE=0" in err
    assert main(["data", "fetch", "fb_piqq", "--to", str(to)]) == 2
    assert "Did you mean 'fb_piqa'" in capsys.readouterr().err
    assert calls == [] and not to.exists()
    (tmp_path / "file").write_text("")
    assert main(["data", "fetch", "fb_piqa", "--to", str(tmp_path / "file")]) == 2


def test_the_data_source_declaration_is_one_of_two_kinds():
    from forgetbench.task import DataSource
    with pytest.raises(ValueError, match="either url and sha256, or hub and write"):
        DataSource("a.jsonl", url="https://x", hub=("r", None, "test"), write=bytes)
    with pytest.raises(ValueError):
        DataSource("a.jsonl", url="https://x")                 # a URL without its pin
