"""HOLLy's pose network must tell views apart from the start: a network that gives every
image the same pose gets no gradient to learn poses with (model.PoseNet docstring)."""

import pytest
import torch

from pointillist.reconstructor.model import PoseNet
from pointillist.reconstructor.render import render


@pytest.mark.parametrize("seed", range(3))
def test_untrained_pose_network_gives_different_views_different_poses(seed):
    torch.manual_seed(seed)
    net = PoseNet(image_px=64, width=16)
    # 64 views of a random 30-point cloud, each in its own random orientation
    points = torch.randn(1, 30, 2).expand(64, -1, -1) * 0.3
    angle = 2 * torch.pi * torch.rand(64, 1)
    cos, sin = angle.cos(), angle.sin()
    x, y = points[..., 0], points[..., 1]
    xy = torch.stack([cos * x - sin * y, sin * x + cos * y], -1)
    images = render(xy, 0.1, 64) * 64 * 64
    with torch.no_grad():
        rotvec, _, sigma = net(images[:, None], 0.1)
    assert rotvec.std(0).min() > 0.05
    assert sigma.std() > 1e-3
