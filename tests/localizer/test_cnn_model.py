import torch

from pointillist.localizer.cnn_model import CHANNELS, LocalizerNet


def test_shapes_and_ranges_for_any_frame_size() -> None:
    torch.manual_seed(0)
    net = LocalizerNet(n_frames=3, channels=8).eval()
    frames = 50 + 20 * torch.rand(2, 3, 37, 42)
    with torch.no_grad():
        out = net(frames)
    for name in (*CHANNELS, "p"):
        assert out[name].shape == (2, 37, 42), name
    assert out["scale"].shape == (2,)
    assert torch.all((out["p"] > 0) & (out["p"] < 1))
    for name in ("dx", "dy", "z"):
        assert out[name].abs().max() <= 1
    for name in ("sx", "sy", "sz", "sphotons"):
        assert out[name].min() > 0
    assert out["p"].mean() < 0.1  # starts with few detections


def test_output_is_invariant_to_intensity_scale() -> None:
    torch.manual_seed(1)
    net = LocalizerNet(n_frames=3, channels=8).eval()
    frames = 20 + 100 * torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        a, b = net(frames), net(10 * frames)
    torch.testing.assert_close(b["scale"], 10 * a["scale"])
    for name in ("p", "dx", "photons", "background"):
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)


def test_centre_frame_depends_on_neighbours() -> None:
    torch.manual_seed(2)
    net = LocalizerNet(n_frames=3, channels=8).eval()
    frames = 20 + 100 * torch.rand(1, 3, 16, 16)
    changed = frames.clone()
    changed[:, 0] = changed[:, 0].flip(-1)
    with torch.no_grad():
        assert not torch.allclose(net(frames)["p"], net(changed)["p"])
