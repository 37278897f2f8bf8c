"""Day 17: batched ray–triangle intersection equals a looped pure-Python reference and the geometry of a sphere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import unchecked
from mechlearn import raytrace as R
from mechlearn.testing import FLOAT64, assert_close


def test_vectorised_equals_looped_reference():
    rays = R.make_rays_2d(9, 9, 0.6, 0.6)
    # jitter the directions, so that no ray passes exactly through an edge shared by two triangles
    # (there, which triangle "owns" the hit depends on the last bit of rounding)
    rays[:, 1] += torch.tensor(np.random.default_rng(0).normal(scale=1e-3, size=(81, 3)))
    tris = R.torus_mesh(n_major=8, n_minor=6)
    s, hit = R.ray_triangle_distances(rays, tris)
    looped = unchecked(R.intersect_one)  # the test-time type checker costs milliseconds a call; skip it here
    ref_hit = np.zeros(hit.shape, dtype=bool)
    ref_s = np.zeros(hit.shape)
    for i, (o, d) in enumerate(rays.tolist()):
        for j, (a, b, c) in enumerate(tris.tolist()):
            ref = looped(o, d, a, b, c)
            ref_hit[i, j], ref_s[i, j] = ref is not None, ref if ref is not None else 0.0
    assert (hit.numpy() == ref_hit).all(), f"{(hit.numpy() != ref_hit).sum()} ray–triangle pairs disagree on hitting"
    assert ref_hit.sum() > 20
    assert_close(s.numpy()[ref_hit], ref_s[ref_hit], FLOAT64, name="distances of the hits")


def test_inscribed_sphere_mesh_is_never_in_front_of_the_true_sphere():
    rays = R.make_rays_2d(40, 40, 0.5, 0.5)
    d = R.raytrace(rays, R.uv_sphere_mesh(radius=1.0, centre=(3.0, 0.0, 0.0)))
    D, c = rays[:, 1], torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64)
    a, b, cc = (D * D).sum(-1), -2 * (D * c).sum(-1), (c * c).sum() - 1
    disc = b * b - 4 * a * cc
    s = (-b - disc.clamp(min=0).sqrt()) / (2 * a)
    both = (disc > 0) & torch.isfinite(d)
    assert both.sum() > 500
    assert ((d[both] - s[both]) >= -1e-12).all(), "a ray met a facet before the sphere it is inscribed in"
    central = both & ((rays[:, 1, 1:] ** 2).sum(-1) < 0.01)
    assert central.sum() > 10 and ((d[central] - s[central]) < 0.02).all(), "near the centre the facets should hug the sphere"
    assert not torch.isfinite(d[disc < 0]).any(), "a ray that misses the sphere hit its inscribed mesh"


def test_a_ray_parallel_to_a_triangle_misses():
    rays = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]], dtype=torch.float64)
    tri = torch.tensor([[[1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [2.0, -1.0, 0.0]]], dtype=torch.float64)  # in the plane z = 0
    s, hit = R.ray_triangle_distances(rays, tri)
    assert not hit.any()
    assert math.isinf(R.raytrace(rays, tri).item())


@pytest.mark.parametrize("make, words", [
    (lambda: unchecked(R.raytrace)(torch.zeros(3, 3), torch.zeros(1, 3, 3)), r"\(n, 2, 3\)"),
    (lambda: unchecked(R.raytrace)(torch.zeros(3, 2, 3), torch.zeros(1, 4, 3)), r"\(n, 3, 3\)"),
    (lambda: R.torus_mesh(n_major=2), "at least 3"),
    (lambda: R.make_rays_2d(0, 3, 1.0, 1.0), "at least one pixel"),
])
def test_bad_input_raises_a_clear_error(make, words):
    with pytest.raises(ValueError, match=words):
        make()
