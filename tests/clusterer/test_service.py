"""The service layer without a server: per-run settings, defaults, metrics, options."""

import argparse
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from pointillist.clusterer.__main__ import ClustererConfig
from pointillist.clusterer.service import Defaults, cluster, run_settings
from pointillist.core import runspec
from pointillist.core.config import ConfigError, ServiceConfig, parse_params
from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable

DEFAULTS = Defaults("dbscan", {"eps_nm": 30.0, "min_samples": 5})


def spec(steps: str):
    return runspec.load_yaml(f"run_id: r1\nsteps: {steps}")


def test_run_settings_from_the_cluster_step_or_the_defaults():
    assert run_settings(spec("[]"), DEFAULTS) == ("dbscan", DEFAULTS.params)
    # the method named in params (numbers from the Struct become ints) or on the step
    assert run_settings(
        spec("[{name: localize}, {name: cluster, params: {method: hdbscan, min_cluster_size: 8}}]"),
        DEFAULTS,
    ) == ("hdbscan", {"min_cluster_size": 8})
    assert run_settings(spec("[{name: cluster, method: hdbscan}]"), DEFAULTS) == ("hdbscan", {})
    # no method: the default method, the step's params over the default params
    assert run_settings(spec("[{name: cluster, params: {eps_nm: 50}}]"), DEFAULTS) == (
        "dbscan",
        {"eps_nm": 50, "min_samples": 5},
    )
    assert run_settings(spec("[{name: localize}, {name: render}]"), DEFAULTS) is None


def test_parse_params_reads_yaml_and_json_mappings_only():
    assert parse_params("{eps_nm: 30, min_samples: 5.0}") == {"eps_nm": 30, "min_samples": 5}
    assert parse_params('{"min_cluster_size": 8}') == {"min_cluster_size": 8}
    assert parse_params("") == {} and parse_params(None) == {}
    with pytest.raises(InvalidInput, match="must be a mapping"):
        parse_params("[1, 2]")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        parse_params("{eps_nm: [")


def test_cluster_counts_localizations_clusters_and_rejections():
    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    rng = np.random.default_rng(1)
    xy = np.concatenate([rng.normal(c, 8.0, (40, 2)) for c in ((0, 0), (800, 0), (0, 800))])
    table = LocalizationTable({"x": xy[:, 0], "y": xy[:, 1]})
    before = value("pointillist_clusterer_localizations_total", method="dbscan", path="unit")
    clusters = value("pointillist_clusterer_clusters_total", method="dbscan", path="unit")
    result = cluster(table, *DEFAULTS.resolve(None, None), "unit")
    assert result.n_clusters == 3
    after = value("pointillist_clusterer_localizations_total", method="dbscan", path="unit")
    assert after - before == 120
    assert (
        value("pointillist_clusterer_clusters_total", method="dbscan", path="unit") - clusters == 3
    )
    assert value("pointillist_clusterer_seconds_count", method="dbscan", path="unit") >= 1
    rejected = value("pointillist_clusterer_rejected_total", path="unit")
    with pytest.raises(InvalidInput):
        cluster(table, "dbscan", {"eps_nm": -1}, "unit")
    assert value("pointillist_clusterer_rejected_total", path="unit") - rejected == 1


def test_options_are_checked_at_start_up_and_documented():
    config = ClustererConfig.from_namespace(
        argparse.Namespace(),
        environ={
            "POINTILLIST_CLUSTERER_METHOD": "hdbscan",
            "POINTILLIST_CLUSTERER_PARAMS": "{min_cluster_size: 8}",
        },
    )
    assert config.defaults() == Defaults("hdbscan", {"min_cluster_size": 8})
    with pytest.raises(ConfigError, match=r"--clusterer-params.*unknown parameter\(s\) \['eps'\]"):
        ClustererConfig(clusterer_params="{eps: 3}")
    with pytest.raises(ConfigError, match="unknown clustering method 'kmeans'"):
        ClustererConfig(clusterer_method="kmeans")
    with pytest.raises(ConfigError, match="--clusterer-idle-timeout-s"):
        ClustererConfig(clusterer_idle_timeout_s=0)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    base = {o.flag for o in ServiceConfig.options()}
    for opt in ClustererConfig.options():
        if opt.flag not in base:
            assert f"`{opt.flag}`" in doc and f"`{opt.env_var}`" in doc and opt.help in doc
