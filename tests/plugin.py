"""A method package of one's own, as a plugin author ships it, written where a test wants it: its module on the
path and a distribution's metadata beside it whose entry points importlib.metadata finds (what `pip install`
leaves in site-packages). tests/test_plugins.py and tests/test_conformance.py run it."""

import sys
from pathlib import Path

PACKAGE = "fb_plugin_demo"
DIST = "fb-plugin-demo"
ENTRY_POINTS = {"demo_plugin": f"{PACKAGE}.methods:DemoPlugin"}

METHODS = '''import re
from dataclasses import dataclass

from forgetbench.method import Method, register, train_only
from forgetbench.toolbox.losses import cross_entropy


@register("demo_plugin")
class DemoPlugin(Method):
    """Cross-entropy plus lam * the squared distance of the MLP weights to the base's; only the MLPs train.
    Source: forgetbench's test plugin (tests/plugin.py)."""

    cost = "moderate"
    smoke = {"lam": "0.5"}
    sweep = {"lam": [0.1, 1.0]}
    lam: float = 0.1

    def __post_init__(self):
        if self.lam < 0:
            raise ValueError("needs lam >= 0")

    def trainable(self, model):
        train_only(model, lambda name: ".mlp." in name)

    def loss(self, model, batch, ctx):
        start = ctx.base_parameters
        penalty = sum(((p - start[n]) ** 2).sum() for n, p in model.named_parameters() if p.requires_grad)
        return cross_entropy(model, batch) + self.lam * penalty


@dataclass
class Unregistered(Method):
    """Train only the attention output projections of the first `layers` decoder layers; registered nowhere.
    Source: forgetbench's test plugin (tests/plugin.py)."""

    layers: int = 1

    def trainable(self, model):
        def trains(name):
            m = re.search(r"\\.layers\\.(\\d+)\\.self_attn\\.o_proj\\.", name)
            return m is not None and int(m.group(1)) < self.layers
        train_only(model, trains)


@dataclass
class OldFit(Method):
    """Returns a dict from fit, as methods did before TrainingStats.
    Source: forgetbench's test plugin (tests/plugin.py)."""

    def fit(self, model, ctx, budget, seed):
        return {"steps": 0, "examples": 0, "seconds": 0.0}


class Forgot(Method):
    """Declares a hyperparameter, but is no dataclass (neither @register nor @dataclass).
    Source: forgetbench's test plugin (tests/plugin.py)."""

    lam: float = 1.0


def helper():
    """Not a method."""
'''


def write_plugin(site: Path, entry_points: dict[str, str] | None = None, *, dist: str = DIST,
                 code: bool = True) -> Path:
    """Write the package (unless `code` is false: a second distribution's metadata only) and `dist`'s metadata with
    `entry_points` (default: ENTRY_POINTS) in the group forgetbench.methods, under `site`; returns `site`."""
    if code:
        (site / PACKAGE).mkdir(parents=True)
        (site / PACKAGE / "__init__.py").write_text("")
        (site / PACKAGE / "methods.py").write_text(METHODS)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    points = ENTRY_POINTS if entry_points is None else entry_points
    (info / "entry_points.txt").write_text("[forgetbench.methods]\n" + "".join(f"{k} = {v}\n" for k, v in
                                                                              points.items()))
    return site


def forget_plugin() -> None:
    """Drop the package's modules, so that the next test imports its own copy afresh."""
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def isolated_registry(monkeypatch) -> None:
    """The method registry as it is now, restored after the test: what the test registers goes with it. Every
    built-in method is registered first: a module already imported registers nothing again, so one first imported
    during the test would otherwise be missing afterwards."""
    from forgetbench.method import methods
    methods.items()
    monkeypatch.setattr(methods, "_entries", dict(methods._entries))


def install(site: Path, monkeypatch) -> None:
    """Put `site` on the path for one test, with an isolated registry."""
    isolated_registry(monkeypatch)
    monkeypatch.syspath_prepend(str(site))        # (it invalidates the import caches too)
