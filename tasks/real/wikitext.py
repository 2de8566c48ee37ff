"""WikiText-2 read from --data-dir: its articles, and the documents of the wikitext2 corpus (replay)."""

from __future__ import annotations

import random
import re
from pathlib import Path

from forgetbench.core.errors import UserError


def wikitext_articles(path: Path) -> list[str]:
    """A WikiText-2 file split into its articles (each starts at a ' = Title = ' line)."""
    return re.split(r"\n(?= = [^=].* = \n)", path.read_text(encoding="utf-8"))


def wikitext2(data_dir: Path | None, n: int, rng: random.Random) -> tuple[list[str], dict]:
    """n WikiText-2 (valid) articles of at least 50 words, drawn without replacement (then cycled)."""
    corpus = data_dir / "corpora" / "wikitext2" / "valid.txt" if data_dir else None
    if corpus is None or not corpus.is_file():
        raise UserError("Replay needs general text for a model without a known pretraining corpus: pass "
                        "--data-dir DIR holding corpora/wikitext2/valid.txt (`bench data fetch wikitext2 --to DIR` "
                        "builds one).")
    articles = [a.strip() for a in wikitext_articles(corpus) if len(a.split()) >= 50]
    docs = [articles[i] for i in rng.sample(range(len(articles)), min(n, len(articles)))]
    docs += [docs[i % len(docs)] for i in range(n - len(docs))]
    return docs, {"file": "corpora/wikitext2/valid.txt", "articles": len(articles)}
