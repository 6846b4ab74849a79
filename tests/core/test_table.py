import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable


def _table(n=100):
    rng = np.random.default_rng(1)
    return LocalizationTable(
        {
            "x": rng.uniform(0, 1e5, n),
            "y": rng.uniform(0, 1e5, n),
            "z": rng.normal(0, 200, n),
            "photons": rng.gamma(5, 400, n),
            "frame": np.arange(n),
            "cluster": np.full(n, -1),
        }
    )


def test_known_columns_get_storage_dtypes():
    t = _table()
    assert t["x"].dtype == np.float32 and t["frame"].dtype == np.int32
    assert t["cluster"].dtype == np.int32


def test_proto_round_trip_is_bit_exact():
    t = _table()
    msg = t.to_proto("run-1", 5, source="test")
    back = LocalizationTable.from_proto(msg)
    assert msg.n_rows == 100 and msg.part_count == 1
    assert back.columns == t.columns
    for c in t:
        np.testing.assert_array_equal(back[c], t[c])
    assert {c.name: c.unit for c in msg.columns}["x"] == "nm"


def test_inconsistent_wire_columns_are_rejected():
    msg = _table(10).to_proto()
    msg.n_rows = 11
    with pytest.raises(InvalidInput, match="bytes"):
        LocalizationTable.from_proto(msg)


@pytest.mark.parametrize(
    "cols, fragment",
    [
        ({"x": [1.0], "y": [1.0, 2.0]}, "rows"),
        ({"x": [1.0]}, "missing"),
        ({"x": [np.nan], "y": [1.0]}, "non-finite"),
        ({"x": [1.0], "y": [1.0], "frame": [1.5]}, "integers"),
        ({"x": [[1.0]], "y": [[1.0]]}, "1-D"),
        ({"x": ["a"], "y": [1.0]}, "non-numeric"),
    ],
)
def test_bad_tables(cols, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        LocalizationTable(cols)


def test_split_and_concat_restore_the_table():
    t = _table(1001)
    parts = t.split_rows(250)
    assert [len(p) for p in parts] == [250, 250, 250, 250, 1]
    back = LocalizationTable.concat(parts)
    np.testing.assert_array_equal(back["photons"], t["photons"])
