import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.core.particles import Skipped, particles_from_arrays, particles_from_table
from pointillist.core.table import LocalizationTable


def _table(with_z: bool = False) -> LocalizationTable:
    # particle 7: 4 points; particle 3: 2 points (too few); particle 5: 3 points, one NaN
    particle = np.array([7, 3, 7, 5, 7, 5, 3, 7, 5])
    x = np.array([0.0, 1.0, 10.0, 2.0, 20.0, np.nan, 1.5, 30.0, 4.0])
    columns = {"x": x, "y": x + 1.0, "particle": particle}
    if with_z:
        columns["z"] = -x
    return LocalizationTable(columns, check_finite=False)


def test_groups_by_particle_and_reports_skipped():
    particles, skipped = particles_from_table(_table())
    assert particles.dims == 2
    assert particles.ids.tolist() == [7]
    np.testing.assert_array_equal(particles.points[0][:, 0], [0.0, 10.0, 20.0, 30.0])
    np.testing.assert_array_equal(particles.points[0][:, 1], [1.0, 11.0, 21.0, 31.0])
    assert skipped == [
        Skipped(3, "2 localizations (< 3)"),
        Skipped(5, "non-finite coordinates"),
    ]


def test_uses_z_when_present_unless_told_otherwise():
    particles, _ = particles_from_table(_table(with_z=True))
    assert particles.dims == 3
    np.testing.assert_array_equal(particles.points[0][:, 2], [0.0, -10.0, -20.0, -30.0])
    assert particles_from_table(_table(with_z=True), dims=2)[0].dims == 2
    with pytest.raises(InvalidInput, match="'z'"):
        particles_from_table(_table(), dims=3)


def test_rejects_missing_particle_column_and_empty_result():
    with pytest.raises(InvalidInput, match="particle"):
        particles_from_table(LocalizationTable({"x": [1.0], "y": [2.0]}))
    lonely = LocalizationTable({"x": [1.0, 2.0], "y": [0.0, 0.0], "particle": [1, 1]})
    with pytest.raises(InvalidInput, match="no usable particle"):
        particles_from_table(lonely)


def test_particles_from_arrays_checks_shapes():
    particles = particles_from_arrays([np.zeros((3, 3)), np.ones((5, 3))], ids=[4, 9])
    assert particles.dims == 3 and particles.ids.tolist() == [4, 9]
    assert particles.counts.tolist() == [3, 5]
    with pytest.raises(InvalidInput):
        particles_from_arrays([np.zeros((3, 2)), np.zeros((3, 3))])
    with pytest.raises(InvalidInput):
        particles_from_arrays([np.zeros((2, 2))])
    with pytest.raises(InvalidInput):
        particles_from_arrays([np.full((3, 2), np.inf)])
