"""Native Parquet: exact round trips, schema metadata, foreign and corrupt files, 1M rows."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pointillist.core.errors import FormatError, InvalidInput
from pointillist.core.io import read_native, write_native
from pointillist.core.io.native import FORMAT_VERSION, METADATA_KEY
from pointillist.core.table import LocalizationTable

FUZZ = settings(max_examples=100, deadline=None)


def _assert_same(a: LocalizationTable, b: LocalizationTable) -> None:
    assert a.columns == b.columns
    for name in a.columns:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@st.composite
def tables(draw) -> LocalizationTable:
    """x, y, some known columns and extras of every dtype the wire format carries."""
    n = draw(st.integers(1, 20))

    def column(dtype: str) -> np.ndarray:
        width = 32 if dtype == "<f4" else 64
        elements = (
            st.floats(allow_nan=False, allow_infinity=False, width=width) if "f" in dtype else None
        )
        return draw(hnp.arrays(dtype, n, elements=elements))

    cols = {"x": column("<f4"), "y": column("<f4")}
    for name in draw(st.sets(st.sampled_from(["z", "photons", "frame", "cluster"]))):
        cols[name] = column("<i4" if name in ("frame", "cluster") else "<f4")
    for i, dtype in enumerate(draw(st.lists(st.sampled_from(["<f4", "<f8", "<i4", "<i8"])))):
        cols[f"extra_{i}"] = column(dtype)
    return LocalizationTable(cols)


@FUZZ
@given(tables())
def test_round_trip_is_exact_with_dtypes(table):
    with tempfile.TemporaryDirectory() as d:
        write_native(table, Path(d) / "t.parquet")
        _assert_same(read_native(Path(d) / "t.parquet"), table)


def test_schema_carries_units_dtypes_and_version(tmp_path):
    t = LocalizationTable({"x": [1.0], "y": [2.0], "frame": [3], "score": np.float64([0.5])})
    write_native(t, tmp_path / "t.parquet")
    schema = pq.read_schema(tmp_path / "t.parquet")
    meta = json.loads(schema.metadata[METADATA_KEY])
    assert meta["version"] == FORMAT_VERSION
    assert meta["columns"]["x"] == {"dtype": "float32", "unit": "nm"}
    assert meta["columns"]["score"] == {"dtype": "float64", "unit": ""}
    assert schema.field("x").metadata[b"unit"] == b"nm" and not schema.field("x").nullable


def test_a_million_rows(tmp_path):
    n = 1_000_000
    rng = np.random.default_rng(0)
    t = LocalizationTable(
        {
            "x": rng.uniform(0, 5e4, n),
            "y": rng.uniform(0, 5e4, n),
            "frame": rng.integers(0, 10_000, n),
            "photons": rng.gamma(4.0, 500.0, n),
        }
    )
    write_native(t, tmp_path / "big.parquet")
    _assert_same(read_native(tmp_path / "big.parquet"), t)


def test_foreign_parquet_without_metadata_is_read(tmp_path):
    pq.write_table(
        pa.table({"x": [1.0, 2.0], "y": [3.0, 4.0], "n": pa.array([1, 2], pa.uint8())}),
        tmp_path / "f.parquet",
    )
    t = read_native(tmp_path / "f.parquet")
    assert t["x"].dtype == np.float32 and t["n"].dtype == np.int64


def _metadata(**changes) -> dict:
    columns = {"x": {"unit": "nm"}, "y": {"unit": "nm"}}
    meta = {"format": "pointillist-localizations", "version": 1, "columns": columns}
    return {METADATA_KEY: json.dumps({**meta, **changes})}


_BAD = {  # a table written with pyarrow directly → the column and message of the error
    "null": (pa.table({"x": [1.0, None], "y": [1.0, 2.0]}), "x", "missing value"),
    "string": (pa.table({"x": [1.0], "y": ["a"]}), "y", "not a numeric column"),
    "bool": (pa.table({"x": [1.0], "y": [1.0], "ok": [True]}), "ok", "not a numeric column"),
    "duplicate": (
        pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0]), pa.array([3.0])], ["x", "y", "x"]),
        "x",
        "duplicate",
    ),
    "no_y": (pa.table({"x": [1.0]}), "y", "missing required"),
    "inf": (pa.table({"x": [1.0, np.inf], "y": [1.0, 2.0]}), "x", "non-finite value inf at row 2"),
    "empty": (
        pa.table({"x": pa.array([], pa.float32()), "y": pa.array([], pa.float32())}),
        None,
        "no localizations",
    ),
    "newer": (
        pa.table({"x": [1.0], "y": [2.0]}).replace_schema_metadata(_metadata(version=2)),
        None,
        "version 2",
    ),
    "other_format": (
        pa.table({"x": [1.0], "y": [2.0]}).replace_schema_metadata(_metadata(format="x")),
        None,
        "format 'x'",
    ),
    "pixels": (
        pa.table({"x": [1.0], "y": [2.0]}).replace_schema_metadata(
            _metadata(columns={"x": {"unit": "px"}, "y": {"unit": "nm"}})
        ),
        "x",
        "unit 'px'",
    ),
    "renamed": (
        pa.table({"x": [1.0], "y": [2.0], "fr4me": [1]}).replace_schema_metadata(
            _metadata(columns={"x": {}, "y": {}, "frame": {}})
        ),
        None,
        "differ from the metadata",
    ),
    "bad_json": (
        pa.table({"x": [1.0], "y": [2.0]}).replace_schema_metadata({METADATA_KEY: b"{"}),
        None,
        "unreadable",
    ),
}


@pytest.mark.parametrize("case", _BAD)
def test_bad_tables(tmp_path, case):
    table, column, message = _BAD[case]
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    with pytest.raises(FormatError, match=message) as err:
        read_native(path)
    assert err.value.column == column and str(path) in str(err.value)


def test_writer_refuses_empty_and_missing_file(tmp_path):
    with pytest.raises(InvalidInput, match="no rows"):
        write_native(
            LocalizationTable({"x": [1.0], "y": [1.0]}).select(slice(0, 0)), tmp_path / "e.pq"
        )
    with pytest.raises(FormatError, match="no such file"):
        read_native(tmp_path / "e.pq")


# --- adversarial input ---------------------------------------------------------------

_TABLE = LocalizationTable(
    {"x": np.arange(50.0), "y": np.arange(50.0) * 2, "frame": np.arange(50), "w": np.ones(50)}
)


def _valid_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        write_native(_TABLE, Path(d) / "t.parquet")
        return (Path(d) / "t.parquet").read_bytes()


_VALID = _valid_bytes()


def _read_or_none(content: bytes) -> LocalizationTable | None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.parquet"
        path.write_bytes(content)
        try:
            table = read_native(path)
        except FormatError:
            event("FormatError")
            return None
    event("read")
    return table


@FUZZ
@given(st.integers(0, len(_VALID) - 1))
def test_truncated_files_fail(cut):
    assert _read_or_none(_VALID[:cut]) is None


@FUZZ
@given(
    st.binary(max_size=2048)
    | st.binary(max_size=64).map(lambda b: b"PAR1" + b + _VALID[-8:])
    | st.tuples(st.integers(4, len(_VALID) - 9), st.binary(min_size=1, max_size=8)).map(
        lambda cut: _VALID[: cut[0]] + cut[1] + _VALID[cut[0] + len(cut[1]) :]
    )
)
def test_random_and_corrupted_bytes_fail_or_read_unchanged(content):
    t = _read_or_none(content)
    if t is not None:
        _assert_same(t, _TABLE)


@FUZZ
@given(
    st.sampled_from(["x", "y", "w"]),
    st.integers(0, len(_TABLE) - 1),
    st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_injected_non_finite_values_name_their_column(column, row, value):
    values = _TABLE[column].copy()
    values[row] = value
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.parquet"
        pq.write_table(pa.table({**_TABLE, column: values}), path)
        with pytest.raises(FormatError, match=f"at row {row + 1}") as err:
            read_native(path)
    assert err.value.column == column
