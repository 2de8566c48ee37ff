"""The training budget of a run: plain settings, importable without torch or transformers."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Budget:
    """How much training a run gets; the same for every method on a target."""

    epochs: float = 6.0            # passes over the (mixed) training set
    lr: float = 1e-3
    batch_size: int = 32
    scheduler: str = "constant"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    examples: int = 0              # train on a fixed random subset of this many target examples (0: all)
    gradient_checkpointing: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def updated(self, overrides: dict[str, str]) -> Budget:
        """A copy with `--budget key=value` overrides applied (typed like the fields)."""
        from dataclasses import fields, replace

        from bench.errors import UserError, did_you_mean
        types = {f.name: {"float": float, "int": int, "str": str, "bool": _bool}[f.type] for f in fields(self)}
        out = {}
        for key, value in overrides.items():
            if key not in types:
                raise UserError(f"Unknown budget field {key!r}.{did_you_mean(key, types)} "
                                f"Accepted: {', '.join(sorted(types))}.")
            try:
                out[key] = types[key](value) if isinstance(value, str) else types[key](str(value))
            except ValueError:
                raise UserError(f"--budget {key}={value}: {key} must be a {types[key].__name__}.") from None
        new = replace(self, **out)
        if new.epochs <= 0 or new.lr <= 0 or new.batch_size < 1 or new.examples < 0:
            raise UserError("--budget needs epochs > 0, lr > 0, batch_size >= 1 and examples >= 0.")
        return new


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


_bool.__name__ = "bool"
