"""`bench methods new NAME`: a method file from a template, and its test, ready to edit."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from forgetbench.core.errors import UserError

METHOD = '''from forgetbench.toolbox.encoding import IGNORE
from forgetbench.toolbox.losses import logits, shifted_cross_entropy
from forgetbench.method import Method, register


@register("{name}")
class {cls}(Method):
    """Cross-entropy plus lam * z-loss (squared log-partition of the logits); replace with your method.
    Source: the paper or repository this method comes from (z-loss: Chowdhery et al., PaLM, arXiv 2204.02311)."""

    # Hyperparameters: typed fields with defaults, set with `bench run --method {name} --set lam=0.5`
    # and recorded in the result. Hooks to override (methods/README.md): prepare, mixture, loss,
    # trainable, finalize, variants. `smoke` holds the --set values of the cheapest run that still
    # exercises every code path (the conformance test runs it).
    lam: float = 1e-4

    def __post_init__(self):
        if self.lam < 0:
            raise ValueError("needs lam >= 0")

    def loss(self, model, batch, ctx):
        out = logits(model, batch)
        mask = batch["labels"][:, 1:] != IGNORE
        log_z = out[:, :-1].float().logsumexp(-1)[mask]
        return shifted_cross_entropy(out, batch["labels"]) + self.lam * (log_z ** 2).mean()
'''

TEST = '''"""What is specific to {name}; tests/test_conformance.py already runs it end to end on the micro world."""

import torch

from forgetbench.toolbox.encoding import IGNORE
from forgetbench.toolbox.losses import cross_entropy
from forgetbench.method import build_method


def test_{name}_loss_is_cross_entropy_plus_its_term(micro_batch):
    model, batch, ctx = micro_batch
    with torch.no_grad():
        plain = build_method("{name}", {{"lam": "0"}}).loss(model, batch, ctx)
        assert torch.allclose(plain, cross_entropy(model, batch))
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        log_z = torch.logsumexp(logits.float(), -1)[batch["labels"][:, 1:] != IGNORE]
        expected = cross_entropy(model, batch) + 0.5 * (log_z ** 2).mean()
        assert torch.allclose(build_method("{name}", {{"lam": "0.5"}}).loss(model, batch, ctx), expected)
'''


def new_method(name: str, root: Path | None = None) -> list[Path]:
    """Write methods/NAME.py and tests/test_method_NAME.py under root (default: this checkout)."""
    from forgetbench.method import methods
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise UserError(f"Method name {name!r}: use lower-case letters, digits and underscores, starting with a "
                        "letter (it is the file name and the --method value), e.g. my_method.")
    if name in methods.names():
        raise UserError(f"A method named {name!r} is already registered; pick another name.")
    package = importlib.import_module(methods.package)      # the registry's package, found by name
    root = Path(root) if root else Path(package.__file__).resolve().parents[1]
    files = {root / "methods" / f"{name}.py": METHOD.format(name=name, cls=_camel(name)),
             root / "tests" / f"test_method_{name}.py": TEST.format(name=name)}
    for path in files:
        if path.exists():
            raise UserError(f"{path} already exists; nothing was written.")
        if not path.parent.is_dir():
            raise UserError(f"{path.parent} does not exist: --root must be a checkout holding methods/ and tests/.")
    for path, text in files.items():
        path.write_text(text)
    return list(files)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part) or "NewMethod"
