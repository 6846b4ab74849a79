"""Poses: axis-angle rotations, rigid transforms and the projection along z (torch).

A view of a model point p is R(r)·p + (tx, ty, 0), keeping x and y, where r is the
axis-angle vector (direction = axis, length = angle in radians) and R(r) its rotation
matrix by Rodrigues' formula. Differentiable everywhere, including r = 0.
"""

from __future__ import annotations

import torch

_SMALL_ANGLE = 1e-4  # rad: below it sin θ/θ and (1 - cos θ)/θ² use their Taylor series


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle vectors -> (..., 3, 3) rotation matrices (Rodrigues)."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(_SMALL_ANGLE**2))
    small = theta2 < _SMALL_ANGLE**2
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta**2)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1)
    skew = skew.reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + a[..., None] * skew + b[..., None] * skew @ skew


def project(points: torch.Tensor, rotvec: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(N, 3) model points seen in B poses -> (B, N, 2) x, y.

    rotvec (B, 3) axis-angle, shift (B, 2) in-plane translation, in the points' units.
    """
    rotation = axis_angle_to_matrix(rotvec)  # (B, 3, 3)
    xy = torch.einsum("bij,nj->bni", rotation[:, :2, :], points)
    return xy + shift[:, None, :]
