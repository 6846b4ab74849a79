import numpy as np
import pytest
import tifffile

from pointillist.core.errors import FormatError
from pointillist.localizer.movie import TiffMovie


@pytest.mark.parametrize("ome", [False, True])
def test_chunks_read_back_every_frame(tmp_path, ome):
    movie = np.random.default_rng(0).integers(0, 4000, (17, 12, 9), dtype=np.uint16)
    path = tmp_path / ("m.ome.tif" if ome else "m.tif")
    tifffile.imwrite(path, movie, ome=ome, metadata={"axes": "TYX"} if ome else None)
    with TiffMovie(path) as m:
        assert (m.n_frames, m.height, m.width) == (17, 12, 9)
        chunks = list(m.chunks(5))
    assert [c[0] for c in chunks] == [0, 5, 10, 15]
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), movie)


def test_bad_files_are_format_errors(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        TiffMovie(tmp_path / "missing.tif")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all")
    with pytest.raises(FormatError, match=r"junk\.tif"):
        TiffMovie(junk)
    floats = tmp_path / "f.tif"
    tifffile.imwrite(floats, np.zeros((2, 4, 4), np.float32), photometric="minisblack")
    with pytest.raises(FormatError, match="integer"):
        TiffMovie(floats)


def test_truncated_file_is_a_format_error(tmp_path):
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, np.ones((20, 32, 32), np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError), TiffMovie(path) as m:
        for _ in m.chunks(4):
            pass
