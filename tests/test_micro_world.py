
import pytest
from forgetbench.tasks.micro.world import CIPHER_TEST, CIPHER_TRAIN, REASONING_KINDS, build_tokenizer, build_world


def test_world_is_deterministic():
    a, b = build_world(0), build_world.__wrapped__(0)
    assert a.city_of == b.city_of and a.cipher == b.cipher and a.zeroshot_items() == b.zeroshot_items()
    assert build_world.__wrapped__(1).city_of != a.city_of


def test_suites_are_large_enough_and_well_formed():
    w = build_world()
    zs, rs = w.zeroshot_items(), w.reasoning_items()
    assert len(zs) >= 200 and len(rs) >= 200
    for it in zs:
        assert len(set(it["choices"])) == 4 and 0 <= it["gold"] < 4
    # reasoning is asked only about people whose worked answers never appear in the corpus
    asked = {it["question"].split()[-2] for it in rs if it["kind"] == "where"}
    assert asked and not asked & w.shown_reasoning
    corpus = " ".join(w.documents(3000, seed=1))
    assert not any(f"where is {p} ?" in corpus for p in asked)
    assert {it["kind"] for it in rs} == set(REASONING_KINDS)


def test_cipher_splits_are_disjoint_and_cover_the_alphabet():
    w = build_world()
    train, test = w.cipher_pairs("train"), w.cipher_pairs("test")
    assert len(train) == CIPHER_TRAIN and len(test) == CIPHER_TEST
    assert not {p["prompt"] for p in train} & {p["prompt"] for p in test}
    assert {x for p in train for x in p["prompt"].split()[2:-1]} == set(w.cipher)
    assert all(p["response"] == " ".join(w.cipher[x] for x in p["prompt"].split()[2:-1]) for p in test)


def test_tokenizer_covers_the_world():
    w = build_world()
    tok = build_tokenizer(w)
    text = " ".join(w.documents(200, seed=5) + [p["prompt"] + " " + p["response"] for p in w.cipher_pairs("test")])
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_the_shipped_base_is_checked_by_its_hash(tmp_path, monkeypatch):
    import shutil

    from forgetbench.core.errors import UserError
    from forgetbench.tasks.micro import world
    assert world.base_model().fingerprint == world.SHIPPED_SHA256
    damaged = tmp_path / "base"
    shutil.copytree(world.SHIPPED, damaged)
    raw = bytearray((damaged / "model.safetensors").read_bytes())
    raw[-1] ^= 1                                        # one bit of one weight, same size
    (damaged / "model.safetensors").write_bytes(bytes(raw))
    monkeypatch.setattr(world, "SHIPPED", damaged)
    with pytest.raises(UserError, match="damaged or was changed"):
        world.base_model()


def _cpu() -> tuple[str, str]:
    """The CPU's kind ("AuthenticAMD family 25 model 17") and its flags."""
    from forgetbench.core.environment import cpu_fields
    cpu = cpu_fields()
    return (f"{cpu.get('vendor_id')} family {cpu.get('cpu family')} model {cpu.get('model')}",
            f" {cpu.get('flags', '')} ")


# Pretraining measured on other kinds of CPU with the same torch: bit-reproducible on each, but not the shipped
# bytes (their kernels round differently). On such a CPU the test checks that pretraining still gives its bytes.
PRETRAINED_ELSEWHERE = {("2.13.0+cpu", "AuthenticAMD family 25 model 17"):       # AMD Zen 4 (2026-12-04)
                        "7dbd3d822b6ef9084654984091132783fa347e6e281676a1d577b26981513942"}


def _expected_fingerprint() -> str | None:
    import torch
    from forgetbench.tasks.micro.world import SHIPPED_MADE_WITH, SHIPPED_SHA256
    kind, flags = _cpu()
    if (torch.__version__, kind) in PRETRAINED_ELSEWHERE:
        return PRETRAINED_ELSEWHERE[torch.__version__, kind]
    same = torch.__version__ == SHIPPED_MADE_WITH["torch"] and f" {SHIPPED_MADE_WITH['cpu_flag']} " in flags
    return SHIPPED_SHA256 if same else None


@pytest.mark.slow
@pytest.mark.skipif(_expected_fingerprint() is None, reason="another CPU instruction set or torch version: "
                    "pretraining gives a slightly different base here, which is why the weights ship")
def test_pretraining_from_scratch_gives_the_shipped_weights(fresh_cache):
    from forgetbench.toolbox.model_sources import resolve_model
    assert resolve_model("micro-scratch").fingerprint == _expected_fingerprint()


def test_the_shipped_tokenizer_is_the_worlds_own():
    from forgetbench.toolbox.model_sources import resolve_model
    assert resolve_model("micro").tokenizer.get_vocab() == build_tokenizer(build_world()).get_vocab()
