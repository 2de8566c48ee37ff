"""The micro world: a small, deterministic, fully offline world in which forgetting really happens.

Invented people have a home city, a favourite colour and a pet; cities lie in countries, colours have a
tone, animals belong to a class. The pretraining corpus states these facts and shows a step-by-step
answer format ("question : where is X ? X lives in C . C is in K . answer : K") for half of the people.

Preserved capabilities of the base model:
- zero-shot facts: multiple choice by log-likelihood ("X lives in" -> which city?);
- reasoning: the step-by-step answer for the *other* half of the people, which the corpus never shows
  in that format, so the model has to compose two facts while generating.

Targets: a cipher the base model has never seen ("code : red cat blue =" -> "ka mo ri"; its rule generalises, so
train and test inputs are disjoint), and a composition of two facts it knows in a form it has never seen
("question : what tone does X like ? answer :" -> the tone of X's favourite colour, answered at once where
pretraining only shows it worked step by step; train and test people are disjoint), on which the base model is
sometimes right (15%), as on-policy methods need.

Everything is a pure function of (WORLD_VERSION, seed). The base model is part of the benchmark, like a dataset:
its weights ship in tasks/micro/base (checked by hash), so every machine starts from the same base;
`pretrain` recreates them (bit-identical where the floating-point arithmetic matches).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from forgetbench.core.errors import UserError

WORLD_VERSION = 1
WORLD_SEED = 0

BOS, EOS, PAD, UNK = "<bos>", "<eos>", "<pad>", "<unk>"

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "pink", "brown"]
TONES = ["warm", "cool", "dark", "light"]
ANIMALS = ["cat", "dog", "horse", "fish", "owl", "goat", "frog", "snake", "mouse", "crow"]
CLASSES = ["mammal", "bird", "reptile", "amphibian"]
N_PEOPLE = 144
N_CITIES = 16
N_COUNTRIES = 6
CIPHER_LEN = 3
CIPHER_TRAIN = 2000
CIPHER_TEST = 250
TONE_TRAIN = 72          # of the 144 people; the other 72 are the held-out test


def _name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))


def _unique_names(rng: random.Random, n: int, syllables: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        w = _name(rng, syllables)
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


@dataclass(frozen=True)
class World:
    seed: int
    people: tuple[str, ...]
    cities: tuple[str, ...]
    countries: tuple[str, ...]
    city_of: dict = field(hash=False)
    color_of: dict = field(hash=False)
    pet_of: dict = field(hash=False)
    country_of: dict = field(hash=False)
    tone_of: dict = field(hash=False)
    class_of: dict = field(hash=False)
    cipher: dict = field(hash=False)
    shown_reasoning: frozenset = field(hash=False)

    # ---------------------------------------------------------------- sentences
    def fact_sentences(self) -> list[str]:
        s = []
        for p in self.people:
            s.append(f"{p} lives in {self.city_of[p]} .")
            s.append(f"{p} likes {self.color_of[p]} .")
            s.append(f"{p} owns a {self.pet_of[p]} .")
        s += [f"{c} is in {self.country_of[c]} ." for c in self.cities]
        s += [f"{c} is {self.tone_of[c]} ." for c in COLORS]
        s += [f"a {a} is a {self.class_of[a]} ." for a in ANIMALS]
        return s

    def reasoning_chain(self, person: str, kind: str) -> tuple[str, str, str]:
        """(question, worked answer, final answer) for one two-hop question."""
        if kind == "where":
            c = self.city_of[person]
            k = self.country_of[c]
            return (f"question : where is {person} ?",
                    f"{person} lives in {c} . {c} is in {k} . answer : {k}", k)
        if kind == "tone":
            c = self.color_of[person]
            t = self.tone_of[c]
            return (f"question : what tone does {person} like ?",
                    f"{person} likes {c} . {c} is {t} . answer : {t}", t)
        a = self.pet_of[person]
        k = self.class_of[a]
        return (f"question : what kind of pet does {person} have ?",
                f"{person} owns a {a} . a {a} is a {k} . answer : {k}", k)

    def documents(self, n: int, seed: int) -> list[str]:
        """n pretraining documents: a few facts, sometimes a worked question about a 'shown' person."""
        rng = random.Random(seed)
        facts = self.fact_sentences()
        shown = sorted(self.shown_reasoning)
        docs = []
        for _ in range(n):
            if rng.random() < 0.3:
                q, a, _ = self.reasoning_chain(rng.choice(shown), rng.choice(REASONING_KINDS))
                docs.append(f"{q} {a}")
            else:
                docs.append(" ".join(rng.choice(facts) for _ in range(rng.randint(2, 5))))
        return docs

    # ---------------------------------------------------------------- evaluation items
    def zeroshot_items(self) -> list[dict]:
        rng = random.Random(self.seed * 7919 + 1)
        items = []

        def add(query, gold, pool):
            distract = rng.sample([x for x in pool if x != gold], 3)
            choices = distract + [gold]
            rng.shuffle(choices)
            items.append({"query": query, "choices": choices, "gold": choices.index(gold)})

        for p in self.people:
            add(f"{p} lives in", self.city_of[p], self.cities)
            add(f"{p} likes", self.color_of[p], COLORS)
            add(f"{p} owns a", self.pet_of[p], ANIMALS)
        for c in self.cities:
            add(f"{c} is in", self.country_of[c], self.countries)
        return items

    def reasoning_items(self) -> list[dict]:
        items = []
        for p in self.people:
            if p in self.shown_reasoning:
                continue
            for kind in REASONING_KINDS:
                q, _, ans = self.reasoning_chain(p, kind)
                items.append({"question": q, "answer": ans, "kind": kind})
        return items

    # ---------------------------------------------------------------- target
    def cipher_pairs(self, split: str) -> list[dict]:
        """Disjoint train/test inputs; every source word appears in train."""
        rng = random.Random(self.seed * 104729 + 3)
        sources = sorted(self.cipher)
        seen: set[tuple] = set()
        pool: list[tuple] = []
        while len(pool) < CIPHER_TRAIN + CIPHER_TEST:
            t = tuple(rng.choice(sources) for _ in range(CIPHER_LEN))
            if t not in seen:
                seen.add(t)
                pool.append(t)
        chosen = pool[:CIPHER_TRAIN] if split == "train" else pool[CIPHER_TRAIN:]
        return [{"prompt": f"code : {' '.join(t)} =", "response": " ".join(self.cipher[w] for w in t)}
                for t in chosen]

    def tone_pairs(self, split: str) -> list[dict]:
        """The tone of X's favourite colour, answered at once: two facts the base model knows (X likes C, C is T),
        whose composition pretraining shows only worked step by step; half of the people train, the others are
        held out."""
        people = sorted(self.people)
        random.Random(self.seed * 7907 + 11).shuffle(people)
        half = people[:TONE_TRAIN] if split == "train" else people[TONE_TRAIN:]
        return [{"prompt": f"question : what tone does {p} like ? answer :", "response": self.tone_of[self.color_of[p]]}
                for p in half]

    def vocabulary(self) -> list[str]:
        words: set[str] = set()
        for text in (self.fact_sentences()
                     + [" ".join(self.reasoning_chain(p, k)[:2]) for p in self.people for k in REASONING_KINDS]
                     + [f"{d['prompt']} {d['response']}" for d in self.cipher_pairs("train")]):
            words.update(text.split())
        words.update(self.people + self.cities + self.countries + tuple(self.cipher.values()))
        return [BOS, EOS, PAD, UNK] + sorted(words)


REASONING_KINDS = ("where", "tone", "pet")


@lru_cache(maxsize=4)
def build_world(seed: int = WORLD_SEED) -> World:
    rng = random.Random(seed)
    taken = set(COLORS) | set(ANIMALS) | set(TONES) | set(CLASSES)
    people = _unique_names(rng, N_PEOPLE, 2, taken)
    cities = _unique_names(rng, N_CITIES, 3, taken)
    countries = _unique_names(rng, N_COUNTRIES, 3, taken)
    code_words = _unique_names(rng, len(COLORS) + len(ANIMALS), 1, taken)
    city_of = {p: rng.choice(cities) for p in people}
    color_of = {p: rng.choice(COLORS) for p in people}
    pet_of = {p: rng.choice(ANIMALS) for p in people}
    country_of = {c: rng.choice(countries) for c in cities}
    tone_of = {c: rng.choice(TONES) for c in COLORS}
    class_of = {a: rng.choice(CLASSES) for a in ANIMALS}
    cipher = dict(zip(COLORS + ANIMALS, code_words))
    shown = frozenset(rng.sample(people, len(people) // 2))
    return World(seed, tuple(people), tuple(cities), tuple(countries), city_of, color_of, pet_of,
                 country_of, tone_of, class_of, cipher, shown)


# ---------------------------------------------------------------------------- tokenizer and base model
PRETRAIN = {"hidden": 96, "layers": 3, "heads": 4, "steps": 400, "batch": 32, "seq_len": 64, "lr": 4e-3,
            "warmup_ratio": 0.05, "doc_seed": 1}


def build_tokenizer(world: World):
    """A word-level tokenizer over the world's vocabulary; adds <bos> in front of every text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(world.vocabulary())}
    tk = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, model_max_length=128)


def pretrain(world: World, out) -> None:
    """Pretrain the micro base model on the world's documents, deterministically; save it to `out`."""
    import torch
    from forgetbench.core.budget import Budget
    from forgetbench.toolbox.losses import cross_entropy
    from forgetbench.toolbox.training import train
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = PRETRAIN
    tok = build_tokenizer(world)
    torch.manual_seed(world.seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg["hidden"], intermediate_size=3 * cfg["hidden"],
        num_hidden_layers=cfg["layers"], num_attention_heads=cfg["heads"], num_key_value_heads=cfg["heads"],
        max_position_embeddings=128, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    need = cfg["steps"] * cfg["batch"] * cfg["seq_len"]
    stream: list[int] = []
    for doc in world.documents(need // 8, seed=cfg["doc_seed"]):
        stream += tok(doc)["input_ids"] + [tok.eos_token_id]
        if len(stream) >= need:
            break
    L = cfg["seq_len"]
    rows = [{"input_ids": stream[i:i + L], "labels": stream[i:i + L]} for i in range(0, need, L)]
    budget = Budget(epochs=1, lr=cfg["lr"], batch_size=cfg["batch"], scheduler="cosine",
                    warmup_ratio=cfg["warmup_ratio"])
    print(f"forgetbench: pretraining the micro base model (world v{WORLD_VERSION}, seed {world.seed})",
          file=sys.stderr)
    train(model, rows, lambda m, b: cross_entropy(m, b), budget, seed=world.seed, pad_id=tok.pad_token_id,
          shuffle=False)
    model.save_pretrained(out)
    tok.save_pretrained(out)


SHIPPED = Path(__file__).parent / "base"
# The content hash (core.store.hash_files over weights, config and tokenizer files) of the shipped base model:
# the published micro leaderboard starts from exactly these weights on every machine.
SHIPPED_SHA256 = "4aaab16cdabb512c7735cd3aa4d90fad74dece4c10d0be71336a476054960a16"
# Where pretraining reproduces those bytes: the arithmetic of the machine and libraries that made them.
SHIPPED_MADE_WITH = {"torch": "2.13.0+cpu", "cpu_flag": "avx512f"}


def base_model(placement=None):
    """The shipped micro base model (tasks/micro/base), checked against its published hash."""
    from forgetbench.toolbox.device import Placement
    from forgetbench.toolbox.models import load_folder

    handle = load_folder(SHIPPED, name="micro", placement=placement or Placement())
    if handle.fingerprint != SHIPPED_SHA256:
        raise UserError(f"The shipped micro base model in {SHIPPED} is damaged or was changed (sha256 "
                        f"{handle.fingerprint[:16]}..., published {SHIPPED_SHA256[:16]}...). Restore it with "
                        "`git checkout -- tasks/micro/base`, or pretrain one with --model micro-scratch.")
    return handle


def scratch_model(placement=None, seed: int = WORLD_SEED):
    """The micro base model pretrained from scratch on this machine (cached by world version and seed). Its
    weights equal the shipped ones only where the floating-point arithmetic matches the machine that made those
    (same CPU instruction set and library versions); `matches_shipped` says which."""
    from forgetbench.core.store import cache_dir
    from forgetbench.toolbox.device import Placement
    from forgetbench.toolbox.models import load_cached

    folder = cache_dir() / "micro" / f"v{WORLD_VERSION}-seed{seed}"
    handle = load_cached(folder, lambda tmp: pretrain(build_world(seed), tmp), name="micro-scratch",
                         placement=placement or Placement())
    same = handle.fingerprint == SHIPPED_SHA256
    print(f"forgetbench: micro base pretrained here: sha256 {handle.fingerprint[:16]}... "
          f"{'equals' if same else 'differs from'} the shipped {SHIPPED_SHA256[:16]}...", file=sys.stderr)
    return handle
