"""The separable Gaussian renderer and the axis-angle poses."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pointillist.reconstructor.geometry import axis_angle_to_matrix, project
from pointillist.reconstructor.render import blur, pixel_centres, render


def dense_reference(xy: torch.Tensor, sigma: float, size: int) -> torch.Tensor:
    """The N×H×W splat the separable renderer avoids: every point's full 2D Gaussian."""
    c = pixel_centres(size).double()
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    d2 = (xx[None, None] - xy[..., 0, None, None]) ** 2 + (
        yy[None, None] - xy[..., 1, None, None]
    ) ** 2
    image = torch.exp(-d2 / (2 * sigma**2)).sum(1)
    return image / image.sum((-2, -1), keepdim=True)


def test_renderer_matches_a_dense_reference():
    xy = (
        torch.rand(3, 17, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 1.6
        - 0.8
    )
    fast = render(xy, 0.07, 48)
    assert fast.shape == (3, 48, 48)
    torch.testing.assert_close(fast, dense_reference(xy, 0.07, 48), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast.sum((-2, -1)), torch.ones(3, dtype=torch.float64))


def test_rows_are_y_and_columns_x_and_padding_weights_drop_points():
    xy = torch.tensor([[[0.5, -0.5], [-0.9, 0.9]]])
    image = render(xy, 0.05, 32, weights=torch.tensor([[1.0, 0.0]]))
    row, col = np.unravel_index(int(image[0].argmax()), (32, 32))
    centres = pixel_centres(32)
    assert centres[col] == pytest.approx(0.5, abs=0.07) and centres[row] == pytest.approx(
        -0.5, abs=0.07
    )
    assert float(image[0, 28:, :4].sum()) < 1e-6  # the zero-weight point at (-0.9, 0.9) is absent


def test_per_image_sigma():
    xy = torch.zeros(2, 1, 2)
    image = render(xy, torch.tensor([0.05, 0.2]), 64)
    assert image[0].max() > 10 * image[1].max()


def test_axis_angle_matches_scipy_including_small_angles():
    rotvec = torch.tensor(
        [[0.3, -1.2, 2.0], [1e-7, 0.0, -2e-7], [0.0, 0.0, 0.0], [np.pi, 0, 0]], dtype=torch.float64
    )
    expected = Rotation.from_rotvec(rotvec.numpy()).as_matrix()
    np.testing.assert_allclose(axis_angle_to_matrix(rotvec).numpy(), expected, atol=1e-12)


def test_a_known_rotation_renders_as_expected():
    """Points along x, turned 90° about z, lie along y; turned 90° about y, they collapse
    onto the centre column (the projection drops z)."""
    points = torch.tensor([[x, 0.0, 0.0] for x in np.linspace(-0.6, 0.6, 7)], dtype=torch.float32)
    shift = torch.zeros(1, 2)
    about_z = render(project(points, torch.tensor([[0, 0, np.pi / 2]]), shift), 0.04, 32)[0]
    along_y = render(points[:, [1, 0, 2]][None, :, :2], 0.04, 32)[0]
    torch.testing.assert_close(about_z, along_y, atol=1e-6, rtol=1e-5)
    about_y = render(project(points, torch.tensor([[0, np.pi / 2, 0]]), shift), 0.04, 32)[0]
    dot = render(torch.zeros(1, 1, 2), 0.04, 32)[0]
    torch.testing.assert_close(about_y, dot, atol=1e-6, rtol=1e-5)
    moved = render(project(points, torch.zeros(1, 3), torch.tensor([[0.0, 0.5]])), 0.04, 32)[0]
    top_half = pixel_centres(32) > 0
    assert float(moved[top_half].sum()) > 0.99


def test_gradients_flow_to_points_pose_and_sigma():
    points = torch.randn(10, 3, generator=torch.Generator().manual_seed(0)) * 0.3
    points.requires_grad_(True)
    rotvec = torch.tensor([[0.1, 0.2, 0.3]], requires_grad=True)
    shift = torch.tensor([[0.05, -0.02]], requires_grad=True)
    sigma = torch.tensor([0.08], requires_grad=True)
    target = render(torch.rand(1, 10, 2) - 0.5, 0.05, 32)
    loss = (render(project(points, rotvec, shift), sigma, 32) - target).abs().sum()
    loss.backward()
    for tensor in (points, rotvec, shift, sigma):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
        assert float(tensor.grad.abs().sum()) > 0
    zero = torch.zeros(1, 3, requires_grad=True)  # Rodrigues at the identity
    render(project(points.detach(), zero, shift.detach()), 0.05, 32).pow(2).sum().backward()
    assert torch.isfinite(zero.grad).all() and float(zero.grad.abs().sum()) > 0


def test_blur_widens_and_keeps_unit_intensity():
    image = render(torch.zeros(1, 1, 2), 0.02, 32)
    wider = blur(image, 2.0)
    assert float(wider.sum()) == pytest.approx(1.0)
    assert wider.max() < image.max()
    assert blur(image, 0.0) is image
