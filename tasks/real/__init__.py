"""Real suites, targets and presets: SmolLM2 on CPU and the context-free synthetic data paper's settings.

Every task runs either from lm-eval's own definition (needs the hub) or from local files under
`--data-dir`, one folder per dataset; `bench data fetch --to DIR` builds such a folder (the sources are registered
in data_sources.py).

Importing this package registers everything (the registries import each package of forgetbench.tasks): the
modules below register; the others (problems, generated, training_pairs, wikitext, answer_classes, loaders) only
define, and a task's content hash reads those that define its items, never these.
"""

from forgetbench.tasks.real import corpora, data_sources, models, presets, suites, targets  # noqa: F401
