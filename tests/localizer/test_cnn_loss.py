import numpy as np
import torch

from pointillist.localizer.cnn_loss import DecodeLoss
from pointillist.localizer.cnn_model import LocalizerNet
from pointillist.localizer.presets import Preset
from pointillist.localizer.training import simulate_batch


def _maps(p: torch.Tensor, **values: float) -> dict[str, torch.Tensor]:
    shape = p.shape
    out = {"p": p, "scale": torch.ones(shape[0])}
    defaults = {"dx": 0.0, "dy": 0.0, "z": 0.0, "photons": 10.0, "background": 0.5}
    defaults |= {"sx": 0.1, "sy": 0.1, "sz": 0.1, "sphotons": 1.0}
    for name, value in (defaults | values).items():
        out[name] = torch.full(shape, float(value))
    return out


def test_loss_prefers_the_right_pixel_and_count() -> None:
    loss_fn = DecodeLoss(three_d=False, photon_unit=100.0)
    targets = torch.tensor([[[4.6, 2.5, 0.0, 1000.0]]])  # x 4.6 px, y 2.5 px, 1000 photons
    mask = torch.ones(1, 1, dtype=torch.bool)
    background = torch.tensor([0.5])
    p = torch.full((1, 8, 8), 1e-3)
    right, wrong = p.clone(), p.clone()
    right[0, 2, 4] = 0.95
    wrong[0, 5, 1] = 0.95
    good, _ = loss_fn(_maps(right, dx=0.1), targets, mask, background)
    far, _ = loss_fn(_maps(wrong, dx=0.1), targets, mask, background)
    two = right.clone()
    two[0, 6, 6] = 0.95
    extra, parts = loss_fn(_maps(two, dx=0.1), targets, mask, background)
    off, _ = loss_fn(_maps(right, dx=0.4), targets, mask, background)
    assert torch.isfinite(good)
    assert good < far
    assert good < extra and parts["count"] > 0
    assert good < off


def test_loss_is_finite_without_emitters() -> None:
    loss_fn = DecodeLoss(three_d=True, z_scale_nm=600.0)
    p = torch.full((2, 8, 8), 0.01)
    loss, parts = loss_fn(
        _maps(p), torch.zeros(2, 1, 4), torch.zeros(2, 1, dtype=torch.bool), torch.ones(2)
    )
    assert torch.isfinite(loss) and parts["gmm"] == 0


def test_loss_decreases_when_fitting_a_fixed_batch() -> None:
    torch.manual_seed(0)
    preset = Preset(
        name="astig3d",
        psf="astigmatic",
        z_range_nm=(-500.0, 500.0),
        z_scale_nm=600.0,
        patch_px=16,
        density_per_um2=(0.5, 1.5),
    )
    batch = simulate_batch(preset, "csr", 4, np.random.default_rng(0))
    net = LocalizerNet(3, channels=8)
    loss_fn = DecodeLoss(True, preset.z_scale_nm, preset.photon_unit)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    tensors = [torch.from_numpy(a) for a in (batch.targets, batch.mask, batch.background)]
    losses = []
    for _ in range(30):
        loss, _ = loss_fn(net(torch.from_numpy(batch.frames)), *tensors)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
