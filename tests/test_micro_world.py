from tasks.micro.world import CIPHER_TEST, CIPHER_TRAIN, REASONING_KINDS, build_tokenizer, build_world


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
