"""General text that stands in for a base model's pretraining data when its source has none."""

from forgetbench.task import Corpus, register_corpus
from forgetbench.tasks.real.wikitext import wikitext2

register_corpus(Corpus("wikitext2", "WikiText-2 validation articles (general English text), from --data-dir",
                       wikitext2, needs=("corpora/wikitext2/valid.txt",)))
