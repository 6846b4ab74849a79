"""The VAE service's settings: options, documentation, per-run settings from a RunSpec."""

from pathlib import Path

import pytest

from pointillist.core import runspec
from pointillist.core.config import ConfigError, ServiceConfig
from pointillist.core.errors import InvalidInput
from pointillist.core.particles import Skipped
from pointillist.vae.__main__ import VaeServiceConfig
from pointillist.vae.engine import Settings
from pointillist.vae.service import run_settings, skipped_text


def test_options_are_validated_and_documented():
    config = VaeServiceConfig(vae_params="{epochs: 3, analyze: false, kind: npc3d}")
    settings = config.defaults("cpu")
    assert settings.config.epochs == 3 and settings.config.device == "cpu"
    assert not settings.analyze and settings.kind == "npc3d"
    with pytest.raises(ConfigError, match=r"--vae-params.*unknown VAE parameter\(s\) \['epoch'\]"):
        VaeServiceConfig(vae_params="{epoch: 3}")
    with pytest.raises(ConfigError, match="unknown particle kind 'ring'"):
        VaeServiceConfig(vae_params="{kind: ring}")
    with pytest.raises(ConfigError, match="--vae-idle-timeout-s"):
        VaeServiceConfig(vae_idle_timeout_s=0)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    base = {o.flag for o in ServiceConfig.options()}
    for opt in VaeServiceConfig.options():
        if opt.flag not in base:
            assert f"`{opt.flag}`" in doc and f"`{opt.env_var}`" in doc and opt.help in doc


def test_run_settings_come_from_the_vae_step():
    defaults = Settings()
    spec = runspec.load_yaml("steps: [{name: vae, params: {epochs: 2.0, n_bins: 5, kind: npc2d}}]")
    settings = run_settings(spec, defaults)
    assert settings.config.epochs == 2 and settings.n_bins == 5 and settings.kind == "npc2d"
    assert run_settings(runspec.load_yaml("steps: [{name: cluster}]"), defaults) is None
    assert run_settings(runspec.load_yaml("name: plain"), defaults) is defaults
    with pytest.raises(InvalidInput, match="n_bins must be >= 2"):
        defaults.with_params({"n_bins": 1})


def test_skipped_text_names_a_few_and_counts_all():
    skipped = [Skipped(i, "2 localizations (< 3)") for i in range(25)]
    text = skipped_text(skipped)
    assert text.startswith("25 particle(s) skipped: 0 (2 localizations (< 3))")
    assert text.endswith("and 5 more")


def test_axes_setting_is_checked():
    assert Settings().axes == "latent"
    assert Settings().with_params({"axes": "independent"}).axes == "independent"
    with pytest.raises(InvalidInput, match="axes must be one of"):
        Settings().with_params({"axes": "pca"})
