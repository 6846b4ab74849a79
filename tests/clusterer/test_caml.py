"""CAML: features, networks, cluster formation and shapes, shipped weights, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pointillist.clusterer.caml.clusterer import (
    CamlClusterer,
    caml,
    cluster_shapes,
    form_clusters,
)
from pointillist.clusterer.caml.features import (
    LOG_OFFSET,
    field_scale_nm,
    iter_nn_distances,
    nn_distances,
    normalise,
    sequence_features,
)
from pointillist.clusterer.caml.model import (
    ARCHITECTURES,
    ConvLSTMNet,
    DenseNet,
    build_network,
    load_network,
)
from pointillist.clusterer.caml.simulate import (
    FIBRE,
    ROUND,
    ScenarioRanges,
    draw_scenario,
    simulate_training_field,
)
from pointillist.clusterer.caml.train_cli import caml as caml_command
from pointillist.clusterer.caml.training import TrainConfig, train
from pointillist.clusterer.engine import cluster_points
from pointillist.core.errors import InvalidInput
from pointillist.simulator.clusters import ClusterSimConfig, simulate_clusters

LINE = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 0.0]])


def test_nn_distances_hand_case() -> None:
    d = nn_distances(LINE, 2)
    expected = [[1, 3], [1, 2], [2, 3], [3, 5]]
    np.testing.assert_allclose(d, expected)
    assert d.dtype == np.float32
    np.testing.assert_allclose(nn_distances(LINE, 2, rows=np.array([3])), [[3, 5]])


def test_nn_distances_edge_padding_when_field_is_smaller_than_window() -> None:
    d = nn_distances(LINE, 5)  # only 3 other points: the farthest distance repeats
    np.testing.assert_allclose(d[0], [1, 3, 6, 6, 6])
    np.testing.assert_allclose(d[3], [3, 5, 6, 6, 6])
    assert (np.diff(d, axis=1) >= 0).all()


def test_feature_chunks_match_one_query_and_normalisation() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (500, 2))
    whole = nn_distances(xy, 10)
    rows, parts = zip(*iter_nn_distances(xy, 10, chunk_points=64), strict=True)
    assert [len(r) for r in rows][:2] == [64, 64]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    scale = field_scale_nm(xy, 10)
    assert scale == pytest.approx(np.median(whole.mean(axis=1)), rel=1e-6)
    x = sequence_features(xy, 10)
    np.testing.assert_allclose(x, np.log(whole / scale + LOG_OFFSET), rtol=1e-5)
    # Scale invariance: the same field in other units gives the same input.
    np.testing.assert_allclose(sequence_features(xy * 7.5, 10), x, rtol=1e-4, atol=1e-5)


def test_features_reject_bad_fields() -> None:
    with pytest.raises(InvalidInput):
        nn_distances(np.zeros((1, 2)), 3)
    with pytest.raises(InvalidInput):
        nn_distances(np.array([[0.0, np.nan], [1.0, 1.0]]), 1)
    with pytest.raises(InvalidInput):
        field_scale_nm(np.zeros((5, 2)), 2)
    with pytest.raises(InvalidInput):
        normalise(np.ones((2, 3)), 0.0)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_network_shapes(name: str) -> None:
    arch = ARCHITECTURES[name]
    net = build_network(arch).eval()
    assert isinstance(net, DenseNet if arch.kind == "dense" else ConvLSTMNet)
    out = net(torch.randn(5, arch.k))
    assert out.shape == (5, arch.n_classes)
    assert arch.n_classes == (3 if name == "multiclass1000" else 2)


def test_form_clusters_follows_neighbours_until_a_non_clustered_one() -> None:
    # On a line: a group 0-2; 3 and 5 with the non-clustered 4 beside them; 6 and 8
    # either side of the non-clustered 7.
    x = np.array([0.0, 1.0, 2.2, 10.0, 9.0, 11.5, 30.0, 30.8, 32.0])
    xy = np.column_stack([x, np.zeros_like(x)])
    flags = np.array([1, 1, 1, 1, 0, 1, 1, 0, 1], dtype=bool)
    # 3's nearest neighbour (4) is not clustered, so 3 links to nobody, but 5's nearest
    # is 3: they form one group. 6 and 8 are each other's second neighbours, behind 7:
    # they stay apart.
    labels = form_clusters(xy, flags, min_points=1)
    assert labels.tolist() == [0, 0, 0, 1, -1, 1, 2, -1, 3]
    assert form_clusters(xy, flags, walk_neighbours=1, min_points=1).tolist() == labels.tolist()
    # Groups below min_points become non-clustered; the rest are renumbered densely.
    assert form_clusters(xy, flags, min_points=2).tolist() == [0, 0, 0, 1, -1, 1, -1, -1, -1]
    assert form_clusters(xy, flags, min_points=3).tolist() == [0, 0, 0] + [-1] * 6
    assert (form_clusters(xy, np.zeros(9, bool)) == -1).all()


def test_cluster_shapes_of_a_hard_edged_disc() -> None:
    rng = np.random.default_rng(1)
    radius, n = 80.0, 60
    r, phi = radius * np.sqrt(rng.random(n)), rng.uniform(0, 2 * np.pi, n)
    disc = np.column_stack([r * np.cos(phi), r * np.sin(phi)])
    xy = np.concatenate([disc, disc + 1000.0, [[5000.0, 5000.0]]])
    labels = np.array([4] * n + [7] * n + [-1])
    table = cluster_shapes(xy, labels)
    assert table["cluster"].tolist() == [4, 7]
    assert table["n_localizations"].tolist() == [n, n]
    np.testing.assert_allclose(table["area_nm2"], np.pi * radius**2, rtol=0.2)
    np.testing.assert_allclose(table["area_nm2"][0], table["area_nm2"][1], rtol=1e-6)
    np.testing.assert_allclose(table["density_per_um2"], n / (table["area_nm2"] / 1e6))


def test_scenarios_meet_the_papers_limits() -> None:
    ranges = ScenarioRanges()
    rng = np.random.default_rng(2)
    for _ in range(50):
        sc = draw_scenario(ranges, rng)
        per_um2 = sc.clustered_fraction * sc.density_per_um2 / sc.points_per_cluster
        ratio = (sc.points_per_cluster / (np.pi * (sc.cluster_radius_nm / 1e3) ** 2)) / (
            (1 - sc.clustered_fraction) * sc.density_per_um2
        )
        assert 1 <= per_um2 <= 5 and 1.5 <= ratio <= 100
    field = simulate_training_field(ranges, 3, multiclass=True)
    assert {0, ROUND, FIBRE} <= set(np.unique(field.kind).tolist())
    assert ((field.label > 0) == (field.kind > 0)).all()


def _scenario5(seed: int) -> tuple[np.ndarray, np.ndarray]:
    table = simulate_clusters(ClusterSimConfig(scenario="scenario5"), seed)
    return np.column_stack([table["x"], table["y"]]), np.asarray(table["label"]) > 0


@pytest.mark.parametrize("model", ["dense100", "lstm100"])
def test_shipped_weights_classify_clustered_vs_csr(model: str) -> None:
    field = simulate_training_field(ScenarioRanges(density_per_um2=(100.0, 300.0)), 11)
    est = CamlClusterer(model, device="cpu").fit(field.xy_nm)
    accuracy = np.mean((est.probability_ >= 0.5) == (field.label > 0))
    assert accuracy >= 0.85
    assert est.n_clusters_ >= 0.5 * field.label.max()
    # Complete spatial randomness: most points are not clustered.
    csr = np.random.default_rng(12).uniform(0, 3000, (2000, 2))
    assert np.mean(CamlClusterer(model, device="cpu").fit(csr).probability_ >= 0.5) < 0.2


def test_multiclass_separates_round_from_fibre() -> None:
    field = simulate_training_field(
        ScenarioRanges(density_per_um2=(100.0, 300.0), fov_nm=(2000.0, 2500.0)),
        24,
        multiclass=True,
    )
    est = CamlClusterer("multiclass1000", device="cpu").fit(field.xy_nm)
    assert est.class_names_ == ("non-clustered", "round", "fibre")
    hit = (field.kind > 0) & (est.point_classes_ > 0)
    assert hit.sum() >= 0.7 * (field.kind > 0).sum()
    assert np.mean(est.point_classes_[hit] == field.kind[hit]) >= 0.8
    assert set(np.unique(est.classes_).tolist()) <= {-1, ROUND, FIBRE}
    # Clusters take their majority class: whole fibres and round clusters come out right.
    assert np.mean(est.classes_[hit] == field.kind[hit]) >= 0.9
    assert (est.classes_ >= 0).tolist() == (est.labels_ >= 0).tolist()


def test_engine_runs_caml() -> None:
    xy, _ = _scenario5(14)
    result = cluster_points(xy, "caml", {"model": "lstm100"})
    assert result.method == "caml" and result.n_clusters > 20
    assert result.labels.shape == (len(xy),) and result.labels.min() >= -1
    stats = result.statistics(xy)
    assert len(stats["cluster"]) == result.n_clusters
    with pytest.raises(InvalidInput):
        cluster_points(xy, "caml", {"model": "no-such-model"})
    for bad in ({"threshold": 2.0}, {"threshold": "high"}, {"batch_size": 0}, {"model": 3}):
        with pytest.raises(InvalidInput):
            cluster_points(xy, "caml", bad)


def test_tiny_fields_are_non_clustered_and_one_shot_function_agrees() -> None:
    assert CamlClusterer("dense100").fit_predict(np.zeros((0, 2))).tolist() == []
    assert CamlClusterer("dense100").fit_predict(np.array([[1.0, 2.0]])).tolist() == [-1]
    xy, _ = _scenario5(18)
    expected = CamlClusterer("dense100", threshold=0.6, min_points=4).fit_predict(xy)
    np.testing.assert_array_equal(caml(xy, "dense100", threshold=0.6, min_points=4), expected)


def test_training_writes_loadable_weights(tmp_path) -> None:
    config = TrainConfig(model="dense100", samples=600, minutes=None, max_epochs=2, per_field=50)
    meta = train(config, _SmallSource(), tmp_path / "w.pt")
    assert meta["epochs"] == 2 and len(meta["history"]) == 2
    assert meta["samples"] == 600 and meta["class_counts"] == [300, 300]
    saved = json.loads((tmp_path / "w.json").read_text())
    assert saved["validation"] == meta["validation"]
    _net, arch, loaded = load_network(tmp_path / "w.pt")
    assert arch.name == "dense100" and loaded["best_epoch"] == meta["best_epoch"]
    labels = CamlClusterer(str(tmp_path / "w.pt")).fit_predict(_scenario5(15)[0])
    assert labels.min() >= -1


class _SmallSource:
    """CAML simulation restricted to small fields, so the training test stays fast."""

    def fields(self, arch, rng):
        ranges = ScenarioRanges(fov_nm=(1500.0, 1500.0))
        while True:
            f = simulate_training_field(ranges, rng)
            yield f.xy_nm, (f.label > 0).astype(np.int64)

    def describe(self) -> dict:
        return {"kind": "small-test-simulation"}


def test_train_cli_on_labelled_files(tmp_path) -> None:
    paths = []
    for seed in (16, 17):
        table = simulate_clusters(ClusterSimConfig(scenario="scenario5"), seed)
        path = tmp_path / f"field{seed}.csv"
        rows = "\n".join(
            f"{x:.3f},{y:.3f},{int(i)}"
            for x, y, i in zip(table["x"], table["y"], table["label"], strict=True)
        )
        path.write_text('"x","y","index"\n' + rows + "\n")
        paths.append(path)
    out = tmp_path / "files.pt"
    args = ["--model", "dense100", "--max-epochs", "2", "--threads", "1", "-o", str(out)]
    for p in paths:
        args += ["--train-files", str(p)]
    result = CliRunner().invoke(caml_command, args)
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["source"]["kind"] == "files" and meta["source"]["n_fields"] == 2
    assert meta["validation"]["accuracy"] > 0.5


def test_train_cli_rejects_bad_combinations(tmp_path) -> None:
    out = str(tmp_path / "x.pt")
    runner = CliRunner()
    bad = [
        ["--model", "dense100", "--blinking", "-o", out],
        ["--model", "multiclass1000", "--scenario", "scenario5", "-o", out],
        ["--model", "dense100", "--samples", "1", "-o", out],
    ]
    for args in bad:
        result = runner.invoke(caml_command, args)
        assert result.exit_code == 2, result.output


def test_load_network_rejects_other_files(tmp_path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InvalidInput):
        load_network(junk)
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(InvalidInput):
        load_network(tmp_path / "other.pt")
