"""read_table / write_table: dispatch by extension or name, options, conversions between formats."""

import numpy as np
import pytest

from pointillist.core.errors import FormatError, InvalidInput
from pointillist.core.io import FORMATS, read_table, write_table
from pointillist.core.table import LocalizationTable

TABLE = LocalizationTable(
    {
        "x": [100.0, 2600.5, 13.25],
        "y": [50.0, 75.5, 1300.0],
        "frame": [0, 4, 9],
        "photons": [1500.0, 800.0, 2300.0],
        "uncertainty": [8.0, 12.5, 6.0],
        "cluster": [1, -1, 2],
    }
)


def test_formats_are_listed():
    assert set(FORMATS) == {"thunderstorm", "csv", "picasso", "native"}
    assert FORMATS["picasso"].extensions == (".hdf5", ".h5")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("locs.csv", {}),
        ("locs.CSV", {}),
        ("locs.hdf5", {"pixel_size_nm": 108.0}),
        ("locs.h5", {"pixel_size_nm": 108.0}),
        ("locs.parquet", {}),
        ("locs.pq", {}),
    ],
)
def test_extension_selects_the_format(tmp_path, name, options):
    write_table(TABLE, tmp_path / name, **options)
    back = read_table(tmp_path / name)
    for column in TABLE.columns:
        np.testing.assert_allclose(back[column], TABLE[column], rtol=1e-6, err_msg=column)


def test_format_name_overrides_the_extension(tmp_path):
    path = tmp_path / "locs.txt"
    write_table(TABLE, path, format="csv")
    assert path.read_text().splitlines()[0].startswith('"x","y","frame"')
    assert read_table(path, format="thunderstorm").columns == TABLE.columns


def test_unknown_extension_and_format_are_clear_errors(tmp_path):
    with pytest.raises(FormatError, match=r"'\.xyz'.*\.csv \(thunderstorm\).*\.parquet"):
        read_table(tmp_path / "locs.xyz")
    with pytest.raises(FormatError, match="unknown format 'tiff'"):
        write_table(TABLE, tmp_path / "locs.csv", format="tiff")


def test_options_are_checked_per_format(tmp_path):
    write_table(TABLE, tmp_path / "locs.parquet")
    with pytest.raises(InvalidInput, match=r"'native' takes options \[\], not \['pixel_size_nm'\]"):
        read_table(tmp_path / "locs.parquet", pixel_size_nm=100.0)
    with pytest.raises(InvalidInput, match="pixel_size_nm"):
        write_table(TABLE, tmp_path / "locs.hdf5")


def test_thunderstorm_to_picasso_to_native(tmp_path):
    write_table(TABLE, tmp_path / "a.csv")
    picasso = read_table(tmp_path / "a.csv", columns={"id": None})
    write_table(picasso, tmp_path / "b.hdf5", pixel_size_nm=160.0)
    write_table(read_table(tmp_path / "b.hdf5"), tmp_path / "c.parquet")
    back = read_table(tmp_path / "c.parquet")
    assert set(back.columns) == set(TABLE.columns)
    for column in TABLE.columns:
        np.testing.assert_allclose(back[column], TABLE[column], rtol=1e-6, err_msg=column)
