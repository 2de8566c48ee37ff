"""`bench methods` (the table) and `bench methods new` (a method file and its test from the template)."""

import importlib.util

import forgetbench.methods as package
import pytest
from forgetbench.cli import main
from forgetbench.method import build_method, methods


def bench(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_methods_table_lists_every_method_with_its_trainable_share(capsys, micro_base):
    code, out, err = bench(capsys, "methods")
    assert code == 0, err
    assert "Loading weights" not in err and "Warning" not in err      # architecture only, and quiet
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip() and not line.startswith(" ")}
    assert set(methods.names()) <= set(lines) and len(methods.names()) >= 15
    assert "100.0%" in lines["naive_sft"] and "moderate" in lines["explicit_kl"]
    assert "n/a" in out                                         # freeze_bottom's k=3 cannot apply to 3 layers
    share = {n: float(line.rsplit("%", 1)[0].split()[-1]) for n, line in lines.items() if "%" in line}
    total = sum(p.numel() for p in micro_base.model.parameters())
    attn = sum(p.numel() for n, p in micro_base.model.named_parameters() if "self_attn" in n)
    assert share["attn_only"] == pytest.approx(100 * attn / total, abs=0.05)


@pytest.mark.slow
def test_new_method_from_the_template_runs_and_its_test_passes(capsys, tmp_path, monkeypatch, micro_batch):
    (tmp_path / "methods").mkdir()
    (tmp_path / "tests").mkdir()
    code, out, err = bench(capsys, "methods", "new", "zloss_demo", "--root", tmp_path)
    assert code == 0, err
    method_file, test_file = tmp_path / "methods" / "zloss_demo.py", tmp_path / "tests" / "test_method_zloss_demo.py"
    assert out.split() == [str(method_file), str(test_file)]
    # make the new file part of the methods package, as it would be in a checkout
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path / "methods")])
    monkeypatch.setattr(methods, "_discovered", False)
    monkeypatch.setattr(methods, "_entries", dict(methods._entries))
    assert "zloss_demo" in methods.names()
    assert build_method("zloss_demo", {"lam": "0.5"}).params() == {"lam": 0.5}
    spec = importlib.util.spec_from_file_location("generated_test", test_file)
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    generated.test_zloss_demo_loss_is_cross_entropy_plus_its_term(micro_batch)   # the generated test passes
    code, out, err = bench(capsys, "run", "--method", "zloss_demo", "--budget", "examples=16", "--budget", "epochs=1",
                           "--limit", "4", "--kl-samples", "4", "--max-new-tokens", "8", "--out", tmp_path / "runs")
    assert code == 0, err
    assert "method zloss_demo" in out


@pytest.mark.parametrize("name,why", [("Bad-Name", "lower-case"), ("naive_sft", "already registered"),
                                      ("", "give the new method's name")])
def test_new_method_refuses_bad_names(capsys, tmp_path, name, why):
    code, _, err = bench(capsys, "methods", "new", *([name] if name else []), "--root", tmp_path)
    assert code == 2 and why in err


def test_new_method_never_overwrites(capsys, tmp_path):
    (tmp_path / "methods").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_method_taken.py").write_text("# mine\n")
    code, _, err = bench(capsys, "methods", "new", "taken", "--root", tmp_path)
    assert code == 2 and "already exists" in err
    assert not (tmp_path / "methods" / "taken.py").exists()
    assert (tmp_path / "tests" / "test_method_taken.py").read_text() == "# mine\n"
