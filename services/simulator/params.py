"""Config plumbing shared by the simulators: dict -> dataclass, value checks, seeds.

Run specs (YAML) and gRPC `google.protobuf.Struct` params arrive as plain dicts whose
numbers may all be floats and whose tuples are lists; `from_params` maps them onto a
config dataclass, naming any unknown key or ill-typed value in an `InvalidInput`.
Value ranges are checked by each dataclass's own `__post_init__` with `check`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from pointillist.core.errors import InvalidInput

T = TypeVar("T")

#: What every simulator accepts as its source of randomness.
Seed = int | np.random.Generator | np.random.SeedSequence


def check(condition: bool, message: str) -> None:
    """Raise `InvalidInput(message)` unless `condition` holds."""
    if not condition:
        raise InvalidInput(message)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise `InvalidInput` unless `value` is one of `choices`."""
    check(value in choices, f"{name} must be one of {list(choices)}, got {value!r}")


def check_range(name: str, value: tuple[float, float], low: float = -math.inf) -> None:
    """Raise `InvalidInput` unless `value` is an ordered pair (lo, hi) with lo >= low."""
    check(len(value) == 2 and value[0] <= value[1], f"{name} must be (min, max) with min <= max")
    check(value[0] >= low, f"{name} must not go below {low}, got {value}")


class Config:
    """Mixin of the simulator config dataclasses: `Cls.from_params(dict)`."""

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> typing.Self:
        """This config with the defaults overridden by `params` (see module docstring)."""
        return from_params(cls, params)


def param_names(cls: type) -> list[str]:
    """The keys `from_params` accepts for a config dataclass."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def from_params(cls: type[T], params: Mapping[str, Any] | None, base: T | None = None) -> T:
    """Build config dataclass `cls` from a dict of overrides of its defaults (or of the
    values of `base`, an instance of `cls`).

    Integral floats are accepted for int fields, lists for tuple fields, dicts for
    nested config dataclasses. Unknown keys and wrong types raise `InvalidInput`.
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidInput(f"{cls.__name__} params must be a mapping, got {type(params).__name__}")
    names = param_names(cls)
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise InvalidInput(f"{cls.__name__}: unknown parameter(s) {unknown}; known: {names}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: coerce(f"{cls.__name__}.{k}", v, hints[k]) for k, v in params.items()}
    return cls(**kwargs) if base is None else dataclasses.replace(base, **kwargs)


def coerce(name: str, value: Any, tp: Any) -> Any:
    """`value` converted to type annotation `tp`, or `InvalidInput` naming `name`."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(name, value, arg)
            except InvalidInput as exc:
                errors.append(str(exc))
        raise InvalidInput("; ".join(errors))
    if origin is tuple:
        return _coerce_tuple(name, value, typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_params(tp, value)
        raise InvalidInput(f"{name} must be a mapping of {tp.__name__} parameters")
    if tp is bool:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        raise InvalidInput(f"{name} must be true or false, got {value!r}")
    if tp is int:
        return _coerce_int(name, value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise InvalidInput(f"{name} must be a number, got {value!r}")
        if math.isnan(value):
            raise InvalidInput(f"{name} must not be NaN")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string, got {value!r}")
        return value
    raise TypeError(f"{name}: unsupported annotation {tp!r}")


def _coerce_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInput(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float | np.floating) and (not math.isfinite(value) or value != int(value)):
        raise InvalidInput(f"{name} must be an integer, got {value!r}")
    return int(value)


def _coerce_tuple(name: str, value: Any, args: tuple[Any, ...]) -> tuple:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | np.ndarray):
        raise InvalidInput(f"{name} must be a list, got {value!r}")
    items = list(value)
    if len(args) == 2 and args[1] is Ellipsis:
        kinds = [args[0]] * len(items)
    else:
        if len(items) != len(args):
            raise InvalidInput(f"{name} must have {len(args)} elements, got {len(items)}")
        kinds = list(args)
    return tuple(
        coerce(f"{name}[{i}]", v, k) for i, (v, k) in enumerate(zip(items, kinds, strict=True))
    )


def seed_sequence(seed: Seed) -> np.random.SeedSequence:
    """A SeedSequence from an int seed or a SeedSequence, or drawn from a Generator
    (advancing it)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInput(
            f"seed must be a non-negative integer or a numpy Generator, not {seed!r}"
        )
    return np.random.SeedSequence(int(seed))


def child_sequence(parent: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """The independent child stream `key` of `parent`, the same on every call (unlike
    `SeedSequence.spawn`, which counts its calls)."""
    return np.random.SeedSequence(parent.entropy, spawn_key=(*parent.spawn_key, *key))


def as_generator(seed: Seed) -> np.random.Generator:
    """The Generator itself, or a new one seeded with the int or SeedSequence `seed`."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed_sequence(seed))
