"""`pointillist localize` on a simulated movie, checked against its ground truth."""

import numpy as np
import pytest
from click.testing import CliRunner

from pointillist.cli import main
from pointillist.core.io import read_table
from pointillist.localizer.evaluation import evaluate


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    folder = tmp_path_factory.mktemp("movie")
    path = folder / "sparse.tif"
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "frames",
            "-o",
            str(path),
            "--seed",
            "5",
            "-p",
            "n_frames=60",
            "-p",
            "emitters.density_per_um2=8",
            "-p",
            "blinking.photons=3000",
            "-p",
            "background_photons=20",
        ],
    )
    assert result.exit_code == 0, result.output
    return path


def test_mle_localizes_a_sparse_movie_close_to_truth(movie, tmp_path):
    out = tmp_path / "locs.parquet"
    result = CliRunner().invoke(
        main, ["localize", str(movie), "-o", str(out), "--method", "mle", "--chunk-frames", "17"]
    )
    assert result.exit_code == 0, result.output
    locs = read_table(out)
    truth = read_table(movie.with_suffix(".truth.csv"))
    ev = evaluate(locs, truth)
    assert ev.jaccard > 0.6
    assert ev.rmse_lateral_nm < 30
    assert set(np.unique(locs["frame"])) <= set(range(60))


def test_camera_flags_override_and_missing_camera_is_an_error(movie, tmp_path):
    bare = tmp_path / "bare.tif"
    bare.write_bytes(movie.read_bytes())  # no camera sidecar beside it
    result = CliRunner().invoke(
        main, ["localize", str(bare), "-o", str(tmp_path / "x.csv"), "--method", "mle"]
    )
    assert result.exit_code != 0 and "no camera model" in result.output
    result = CliRunner().invoke(
        main,
        [
            "localize",
            str(bare),
            "-o",
            str(tmp_path / "x.csv"),
            "--method",
            "mle",
            "--camera-kind",
            "emccd",
            "--baseline-adu",
            "100",
        ],
    )
    assert result.exit_code != 0 and "missing value" in result.output


def test_localizer_service_options_are_documented():
    from pathlib import Path

    from pointillist.core.config import ServiceConfig
    from pointillist.localizer.__main__ import LocalizerConfig

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    base = {o.flag for o in ServiceConfig.options()}
    for opt in LocalizerConfig.options():
        if opt.flag not in base:
            assert f"`{opt.flag}`" in doc and f"`{opt.env_var}`" in doc and opt.help in doc
