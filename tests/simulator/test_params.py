"""from_params: how YAML / protobuf Struct values map onto config dataclasses."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.simulator.frames import FrameSimConfig
from pointillist.simulator.params import as_generator, seed_sequence


def test_struct_values_coerce_to_field_types() -> None:
    # A protobuf Struct carries every number as a float and every tuple as a list.
    cfg = FrameSimConfig.from_params(
        {
            "n_frames": 10.0,
            "psf": "astigmatic",
            "emitters": {"z_range_nm": [-500.0, 500.0], "n_filaments": 2.0},
            "camera": {"kind": "scmos", "em_gain": 1.0},
            "astigmatism": {"focus_x_nm": 300},
        }
    )
    assert cfg.n_frames == 10 and isinstance(cfg.n_frames, int)
    assert cfg.emitters.z_range_nm == (-500.0, 500.0)
    assert cfg.emitters.n_filaments == 2 and isinstance(cfg.emitters.n_filaments, int)
    assert cfg.camera.kind == "scmos"
    assert cfg.astigmatism.focus_x_nm == 300.0
    assert FrameSimConfig.from_params({}) == FrameSimConfig()
    assert FrameSimConfig.from_params(None) == FrameSimConfig()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"frames": 3}, r"unknown parameter\(s\) \['frames'\]"),
        ({"emitters": {"density": 3}}, r"EmitterConfig: unknown parameter\(s\) \['density'\]"),
        ({"n_frames": 2.5}, "n_frames must be an integer"),
        ({"n_frames": True}, "n_frames must be an integer"),
        ({"n_frames": "ten"}, "n_frames must be an integer"),
        ({"background_photons": float("nan")}, "must not be NaN"),
        ({"emitters": {"z_range_nm": [1.0]}}, "must have 2 elements"),
        ({"emitters": {"z_range_nm": [5.0, -5.0]}}, "min <= max"),
        ({"camera": 3}, "camera must be a mapping"),
        ({"psf": 1}, "psf must be a string"),
    ],
)
def test_bad_params_name_the_problem(params: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        FrameSimConfig.from_params(params)


def test_seeds() -> None:
    with pytest.raises(InvalidInput, match="seed"):
        seed_sequence(-1)
    with pytest.raises(InvalidInput, match="seed"):
        seed_sequence(1.5)  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    assert as_generator(rng) is rng
    assert as_generator(5).random() == as_generator(5).random()
