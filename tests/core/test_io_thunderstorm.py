"""ThunderSTORM and plain CSV: real headers, real files, malformed and adversarial input."""

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from pointillist.core.errors import FormatError, InvalidInput
from pointillist.core.io import read_csv_table, write_csv_table, write_thunderstorm
from pointillist.core.table import LocalizationTable

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FUZZ = settings(max_examples=150, deadline=None)

THUNDERSTORM_3D = (
    b'"id","frame","x [nm]","y [nm]","z [nm]","sigma [nm]","sigma1 [nm]","sigma2 [nm]",'
    b'"intensity [photon]","offset [photon]","bkgstd [photon]","chi2","uncertainty_xy [nm]",'
    b'"uncertainty_z [nm]","uncertainty [nm]","detections"\n'
    b"1,1,1520.5,2210.25,-120.0,150.0,140.0,160.0,2500.0,12.5,3.25,1.1,8.5,25.0,9.0,1\n"
    b"2,3,1620.5,2310.25,80.5,151.0,141.0,161.0,3500.0,13.5,3.5,0.9,7.5,22.0,8.0,2\n"
)


def _write(tmp: Path, content: bytes, name: str = "locs.csv") -> Path:
    path = tmp / name
    path.write_bytes(content)
    return path


def _read_bytes(content: bytes, **options) -> LocalizationTable:
    with tempfile.TemporaryDirectory() as d:
        return read_csv_table(_write(Path(d), content), **options)


def _read_or_none(content: bytes) -> LocalizationTable | None:
    """The table, or None for a FormatError; counts both outcomes in hypothesis' stats."""
    try:
        table = _read_bytes(content)
    except FormatError:
        event("FormatError")
        return None
    event("read")
    return table


def _assert_same(a: LocalizationTable, b: LocalizationTable) -> None:
    assert a.columns == b.columns
    for name in a.columns:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_thunderstorm_3d_headers_map_to_our_columns(tmp_path):
    t = read_csv_table(_write(tmp_path, THUNDERSTORM_3D))
    assert len(t) == 2
    assert set(t.columns) == {
        "id", "frame", "x", "y", "z", "sigma_x", "sigma_y", "photons", "background",
        "bkgstd", "chi2", "uncertainty", "uncertainty_z", "detections",
    }  # fmt: skip
    np.testing.assert_array_equal(t["x"], np.float32([1520.5, 1620.5]))
    np.testing.assert_array_equal(t["frame"], [1, 3])
    np.testing.assert_array_equal(t["sigma_x"], [140.0, 141.0])  # sigma1 wins over sigma
    np.testing.assert_array_equal(t["sigma_y"], [160.0, 161.0])
    np.testing.assert_array_equal(t["photons"], [2500.0, 3500.0])
    np.testing.assert_array_equal(t["background"], [12.5, 13.5])  # offset, not bkgstd
    np.testing.assert_array_equal(t["uncertainty"], [8.5, 7.5])  # uncertainty_xy wins
    np.testing.assert_array_equal(t["bkgstd"], [3.25, 3.5])
    assert t["frame"].dtype == np.int32 and t["x"].dtype == np.float32


def test_thunderstorm_2d_sigma_feeds_both_widths(tmp_path):
    content = (
        b'"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]",'
        b'"offset [photon]","bkgstd [photon]","uncertainty [nm]"\n'
        b"1,1,10.0,20.0,130.0,900.0,5.0,1.5,12.0\n"
    )
    t = read_csv_table(_write(tmp_path, content))
    assert t["sigma_x"][0] == t["sigma_y"][0] == 130.0
    assert t["uncertainty"][0] == 12.0


def test_pixel_units_need_a_pixel_size(tmp_path):
    path = _write(tmp_path, b'"frame","x [px]","y [px]","sigma [px]"\n1,1.5,2.0,1.25\n')
    with pytest.raises(FormatError, match="pixel_size_nm") as err:
        read_csv_table(path)
    assert err.value.column == "x [px]" and str(path) in str(err.value)
    t = read_csv_table(path, pixel_size_nm=100.0)
    assert (t["x"][0], t["y"][0], t["sigma_x"][0]) == (150.0, 200.0, 125.0)
    t = _read_bytes(b"x_px,y_px,z_nm\n1,2,3\n", pixel_size_nm=160)
    assert (t["x"][0], t["y"][0], t["z"][0]) == (160.0, 320.0, 3.0)
    with pytest.raises(InvalidInput):
        read_csv_table(path, pixel_size_nm=-1.0)


def test_micrometres_are_converted(tmp_path):
    t = read_csv_table(_write(tmp_path, '"x [um]","y [µm]"\n1.5,0.25\n'.encode()))
    assert (t["x"][0], t["y"][0]) == (1500.0, 250.0)


def test_real_nieves_dstorm_file():
    path = DATA / "nieves2023" / "fgfr1-mcf7-af647" / "FGFR1_MCF7_AF647_1.csv"
    t = read_csv_table(path)
    assert t.columns == ["x", "y", "frame", "uncertainty"]
    assert len(t) == len(path.read_bytes().splitlines()) - 1


def test_real_nieves_ground_truth_with_column_mapping():
    path = DATA / "nieves2023" / "ground-truth-scenario-5" / "highden_MoleculeList_1.csv"
    assert read_csv_table(path).columns == ["x", "y", "index"]
    t = read_csv_table(path, columns={"index": "label"})
    assert t.columns == ["x", "y", "label"] and t["label"].dtype == np.int32
    assert len(t) == len(path.read_bytes().splitlines()) - 1 and t["label"].max() > 0


def test_real_particles_3d_file():
    t = read_csv_table(DATA / "particles" / "npc-nup-3d-paint-306.csv")
    assert t.columns == ["particle", "x", "y", "z"]
    assert len(np.unique(t["particle"])) == 306


def test_column_mapping_drops_and_checks_names(tmp_path):
    path = _write(tmp_path, b'"id","x [nm]","y [nm]","index"\n1,1,2,3\n')
    t = read_csv_table(path, columns={"id": None, "index": "cluster"})
    assert t.columns == ["x", "y", "cluster"]
    with pytest.raises(FormatError, match="not in the header"):
        read_csv_table(path, columns={"idx": "label"})


@pytest.mark.parametrize(
    "variant",
    [
        b"x,y,frame\n1.5,2.5,3\n4.5,5.5,6\n",
        b'"x","y","frame"\n1.5,2.5,3\n4.5,5.5,6\n',
        b"\xef\xbb\xbfx,y,frame\n1.5,2.5,3\n4.5,5.5,6\n",
        b"x,y,frame\r\n1.5,2.5,3\r\n4.5,5.5,6\r\n",
        b' X , "Y" ,Frame\n"1.5", 2.5 ,3\n\n4.5,5.5,6.0\n',
        b"x_nm,y_nm,frame\n1.5,2.5,3\n4.5,5.5,6\n",
    ],
)
def test_harmless_variants_read_the_same(variant):
    t = _read_bytes(variant)
    assert t.columns == ["x", "y", "frame"]
    np.testing.assert_array_equal(t["x"], [1.5, 4.5])
    np.testing.assert_array_equal(t["frame"], [3, 6])


BAD = [
    (b"", None, "empty"),
    (b" \n\r\n", None, "empty"),
    (b"x,y\n", None, "header only"),
    (b"x,y", None, "header only"),
    (b"x,y\n1,2\n3,4", None, "truncated"),
    (b"x,z\n1,2\n", "y", "missing required"),
    (b"a;b\n1;2\n", None, "comma"),
    (b"x,y\n1,2\n3,abc\n", "y", "invalid value"),
    (b"x,y\n1,2\n3,\n", "y", "missing value at row 2"),
    (b"x,y\n1,2\n3,NaN\n", "y", "missing value"),
    (b"x,y\n1,2\n3,inf\n", "y", "non-finite value inf at row 2"),
    (b"x,y\n1,2\n3,1e39\n", "y", "too large"),
    (b"x,y\n1,2\n3,4,5\n", None, "Expected 2 columns, got 3"),
    (b"x,y\n1,2,\n3,4,\n", None, "Expected 2 columns"),
    (b"x,y\n1,2\n3\n", None, "Expected 2 columns, got 1"),
    (b"x,x\n1,2\n", "x", "both give column 'x'"),
    (b"x,X\n1,2\n", "X", "both give"),
    (b'"x [nm]",x_nm,y\n1,2,3\n', "x_nm", "both give"),
    (b"photons,intensity,x,y\n1,2,3,4\n", "intensity", "both give"),
    (b",x,y\n0,1,2\n", None, "no name"),
    (b"x,y,\xce\x94x\n1,2,3\n", "\u0394x", "ambiguous"),
    (b"x,y,???\n1,2,3\n", "???", "unusable"),
    (b"x,y,frame\n1,2,1.5\n", "frame", "non-integer value 1.5 at row 1"),
    (b"x,y,frame\n1,2,3e9\n", "frame", "out of"),
    (b"x,y,cluster\n1,2,True\n", "cluster", "invalid value"),
    (b'"x [furlong]",y\n1,2\n', "x [furlong]", "not a length"),
    (b'x,y,"intensity [ADU]"\n1,2,3\n', "intensity [ADU]", "not photons"),
    (b'x,y,"frame [s]"\n1,2,3\n', "frame [s]", "plain number"),
    (b'"x,y\n1,2\n', None, "header"),
    (b'x,y\n1,"2\n3,4\n', "y", "invalid value"),
    (b"\xff\xfex\x00,\x00y\x00\n", None, "header"),
    (b"x,y\n1,2\n3,\xff\xfe\n", "y", "invalid value"),
    (b"x,y\n1,2\x00\n", "y", "invalid value"),
]


@pytest.mark.parametrize(("content", "column", "message"), BAD)
def test_malformed_files_raise_format_error(tmp_path, content, column, message):
    path = _write(tmp_path, content)
    with pytest.raises(FormatError, match=re.escape(message)) as err:
        read_csv_table(path)
    assert str(path) in str(err.value)
    assert err.value.column == column


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        read_csv_table(tmp_path / "nope.csv")
    with pytest.raises(FormatError, match="not a regular file"):
        read_csv_table(tmp_path)


# --- writing -------------------------------------------------------------------------

_f32 = st.floats(-1e7, 1e7, width=32, allow_subnormal=False)
_i32 = st.integers(-(2**31), 2**31 - 1)


@st.composite
def tables(draw) -> LocalizationTable:
    """Random tables with x, y, some known columns and a float64 extra."""
    n = draw(st.integers(1, 12))
    names = draw(
        st.sets(st.sampled_from(["z", "photons", "background", "uncertainty", "frame", "label"]))
    )
    cols = {c: draw(st.lists(_f32, min_size=n, max_size=n)) for c in ["x", "y", *sorted(names)]}
    for c in ("frame", "label"):
        if c in cols:
            cols[c] = draw(st.lists(_i32, min_size=n, max_size=n))
    sigma = draw(st.sampled_from(["none", "equal", "both"]))
    if sigma != "none":
        cols["sigma_x"] = draw(st.lists(_f32, min_size=n, max_size=n))
        cols["sigma_y"] = cols["sigma_x"] if sigma == "equal" else cols["sigma_x"][::-1]
    if draw(st.booleans()):
        cols["chi2"] = draw(st.lists(st.floats(-1e300, 1e300), min_size=n, max_size=n))
    return LocalizationTable({k: np.asarray(v) for k, v in cols.items()})


@FUZZ
@given(tables())
def test_round_trip_is_exact(table):
    with tempfile.TemporaryDirectory() as d:
        write_thunderstorm(table, Path(d) / "ts.csv")
        back = read_csv_table(Path(d) / "ts.csv")
        assert set(back.columns) == {*table.columns, "id"}
        np.testing.assert_array_equal(back["id"], np.arange(1, len(table) + 1))
        for name in table.columns:
            np.testing.assert_array_equal(back[name], table[name], err_msg=name)
            assert back[name].dtype == table[name].dtype
        write_csv_table(table, Path(d) / "plain.csv")
        _assert_same(read_csv_table(Path(d) / "plain.csv"), table)


def test_thunderstorm_writer_uses_thunderstorm_headers(tmp_path):
    t = LocalizationTable(
        {"x": [1.0], "y": [2.0], "z": [3.0], "sigma_x": [4.0], "sigma_y": [5.0],
         "photons": [6.0], "background": [7.0], "uncertainty": [8.0], "frame": [9],
         "bkgstd": [0.5], "uncertainty_z": [20.0]}
    )  # fmt: skip
    write_thunderstorm(t, tmp_path / "ts.csv")
    header = (tmp_path / "ts.csv").read_text().splitlines()[0]
    assert header == (
        '"id","frame","x [nm]","y [nm]","z [nm]","sigma1 [nm]","sigma2 [nm]",'
        '"intensity [photon]","offset [photon]","uncertainty_xy [nm]","bkgstd [photon]",'
        '"uncertainty_z [nm]"'
    )


def test_writers_refuse_what_would_not_read_back(tmp_path):
    target = tmp_path / "t.csv"
    good = LocalizationTable({"x": [1.0], "y": [2.0]})
    write_csv_table(good, target)
    before = target.read_bytes()
    with pytest.raises(InvalidInput, match="no rows"):
        write_csv_table(good.select(slice(0, 0)), target)
    with pytest.raises(InvalidInput, match="read back"):
        write_csv_table(good.with_columns(**{"foo [bar]": [1.0]}), target)
    with pytest.raises(InvalidInput):
        write_thunderstorm(good.with_columns(photons=[1.0], intensity=[2.0]), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


# --- adversarial input ---------------------------------------------------------------

_TABLE = LocalizationTable(
    {
        "x": np.float32([1.5, -2.25, 3e4, 0.0, 12.125]),
        "y": np.float32([7.0, 8.5, -9.75, 1e-3, 5.0]),
        "frame": [0, 1, 1, 2, 40],
        "photons": np.float32([100.0, 2e3, 3.5, 4.0, 5.0]),
    }
)


def _valid_file(crlf: bool) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        write_csv_table(_TABLE, Path(d) / "t.csv")
        content = (Path(d) / "t.csv").read_bytes()
    return content.replace(b"\n", b"\r\n") if crlf else content


def _complete_rows(content: bytes) -> int:
    return len([line for line in re.split(rb"\r\n|\n|\r", content)[1:-1] if line])


@FUZZ
@given(st.booleans(), st.data())
def test_truncation_gives_the_complete_rows_or_an_error(crlf, data):
    content = _valid_file(crlf)
    line_ends = [i + 1 for i, byte in enumerate(content) if byte in b"\r\n"]
    cut = data.draw(st.integers(0, len(content) - 1) | st.sampled_from(line_ends[:-1]))
    t = _read_or_none(content[:cut])
    if t is None:
        return
    assert content[:cut].endswith((b"\n", b"\r"))
    _assert_same(t, _TABLE.select(slice(0, _complete_rows(content[:cut]))))


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(content):
    t = _read_or_none(content)
    if t is not None:
        assert "x" in t and "y" in t


_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.integers(-(10**6), 10**6).map(str),
)
_JUNK = st.sampled_from(["", " ", "nan", "inf", "1e999", '"1.5"', " 2 ", "a", "1,5", '"', "\t"])
_CELLS = st.integers(0, 9).flatmap(lambda k: _JUNK if k == 0 else _NUMBERS)
_ROW = st.integers(0, 9).flatmap(
    lambda k: st.lists(_CELLS, max_size=3) if k == 0 else st.lists(_CELLS, min_size=2, max_size=2)
)
_ROWS = st.lists(_ROW, min_size=1, max_size=6)


@FUZZ
@given(_ROWS, st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())
def test_random_rows_read_every_row_or_fail(rows, eol, final_eol):
    body = eol.join(",".join(cells) for cells in rows) + (eol if final_eol else "")
    content = f"x,y{eol}{body}".encode()
    t = _read_or_none(content)
    if t is None:
        return
    cells = [row for row in rows if ",".join(row)]
    assert len(t) == _complete_rows(content + b"\n") == len(cells)
    for i, name in enumerate(["x", "y"]):
        expected = [float(row[i].strip().strip('"')) for row in cells]
        np.testing.assert_array_equal(t[name], np.float32(expected))


_MUTATIONS = ["drop", "duplicate", "upper", "quote", "unquote", "space", "unit", "garbage"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(_MUTATIONS), st.integers(0, 10), st.text(max_size=6))))
def test_header_mutations_read_all_rows_or_fail(mutations):
    header = ["x", "y", "frame", "photons"]
    for kind, pos, text in mutations:
        if not header:
            break
        i = pos % len(header)
        if kind == "drop":
            del header[i]
        elif kind == "duplicate":
            header.insert(i, header[i])
        elif kind == "upper":
            header[i] = header[i].upper()
        elif kind == "quote":
            header[i] = f'"{header[i]}"'
        elif kind == "unquote":
            header[i] = header[i].replace('"', "")
        elif kind == "space":
            header[i] = f" {header[i]} "
        elif kind == "unit":
            header[i] = f"{header[i]} [{text}]"
        else:
            header[i] = text
    content = _valid_file(False)
    body = content[content.index(b"\n") :]
    t = _read_or_none(",".join(header).encode() + body)
    if t is not None:
        assert len(t) == len(_TABLE) and "x" in t and "y" in t


@FUZZ
@given(
    st.integers(0, len(_TABLE) - 1),
    st.integers(0, len(_TABLE.columns) - 1),
    st.sampled_from(["nan", "NaN", "-nan", "inf", "-Infinity", "", "NA", "null", "abc", "1e999"]),
)
def test_injected_bad_values_name_their_column(row, col, token):
    lines = _valid_file(False).split(b"\n")
    cells = lines[row + 1].split(b",")
    cells[col] = token.encode()
    lines[row + 1] = b",".join(cells)
    with pytest.raises(FormatError) as err:
        _read_bytes(b"\n".join(lines))
    assert err.value.column == _TABLE.columns[col]


def test_explicit_mapping_wins_over_a_header_of_the_same_name():
    t = _read_bytes(b"x,y,x_drift_corrected\n1,2,3\n", columns={"x_drift_corrected": "x"})
    assert t.columns == ["x", "y"] and t["x"][0] == 3.0
