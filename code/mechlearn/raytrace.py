"""Batched geometry: casting rays at triangles, and rendering a procedurally generated mesh (ARENA 0.1).

A ray is an origin ``O`` and a direction ``D``; its points are ``O + s D`` for ``s >= 0``. A triangle
``ABC`` contains the points ``A + u (B − A) + v (C − A)`` with ``u, v >= 0`` and ``u + v <= 1``. A ray
hits the triangle where the two expressions are equal, a 3×3 linear system in ``(s, u, v)``::

    [−D | B − A | C − A] · (s, u, v)ᵀ = O − A

(the Möller–Trumbore formulation). Written with batch axes, one call to ``torch.linalg.solve``
intersects every ray with every triangle at once; a depth image is the smallest ``s`` per ray.
The meshes are generated here (a torus, a UV sphere), not downloaded.

Reference: ARENA chapter 0.1, *Ray Tracing*; Möller & Trumbore, *Fast, minimum storage
ray/triangle intersection* (1997).
"""

from __future__ import annotations

import math

from mechlearn._optional import require

require("torch", "mechlearn.raytrace")

import torch  # noqa: E402
from jaxtyping import Bool, Float
from torch import Tensor

__all__ = ["make_rays_2d", "torus_mesh", "uv_sphere_mesh", "ray_triangle_distances", "raytrace", "intersect_one"]


def make_rays_2d(num_y: int, num_z: int, y_limit: float, z_limit: float,
                 dtype: torch.dtype = torch.float64) -> Float[Tensor, "rays 2 3"]:
    """Rays from the origin through a ``num_y × num_z`` grid of points on the plane ``x = 1``.

    Returns:
        ``rays[i] = (origin, direction)``, row-major over (y, z).
    """
    if num_y < 1 or num_z < 1:
        raise ValueError(f"need at least one pixel per axis, got {num_y} × {num_z}")
    ys = torch.linspace(-y_limit, y_limit, num_y, dtype=dtype)
    zs = torch.linspace(-z_limit, z_limit, num_z, dtype=dtype)
    rays = torch.zeros(num_y, num_z, 2, 3, dtype=dtype)
    rays[:, :, 1, 0] = 1.0
    rays[:, :, 1, 1] = ys[:, None]
    rays[:, :, 1, 2] = zs[None, :]
    return rays.reshape(-1, 2, 3)


def torus_mesh(major: float = 1.0, minor: float = 0.4, n_major: int = 32, n_minor: int = 16,
               centre: tuple[float, float, float] = (3.0, 0.0, 0.0), tilt: float = 0.8,
               dtype: torch.dtype = torch.float64) -> Float[Tensor, "triangles 3 3"]:
    """A torus of two triangles per grid cell, tilted by ``tilt`` radians about the y axis and moved to ``centre``."""
    if n_major < 3 or n_minor < 3:
        raise ValueError(f"a torus needs at least 3 segments each way, got {n_major} and {n_minor}")
    a = torch.arange(n_major, dtype=dtype) * (2 * math.pi / n_major)
    b = torch.arange(n_minor, dtype=dtype) * (2 * math.pi / n_minor)
    A, B = torch.meshgrid(a, b, indexing="ij")
    points = torch.stack([(major + minor * torch.cos(B)) * torch.cos(A), (major + minor * torch.cos(B)) * torch.sin(A),
                          minor * torch.sin(B)], dim=-1)
    c, s = math.cos(tilt), math.sin(tilt)
    rotation = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=dtype)
    points = points @ rotation.T + torch.tensor(centre, dtype=dtype)
    return _grid_triangles(points, wrap_rows=True)


def uv_sphere_mesh(radius: float = 1.0, n_lat: int = 16, n_lon: int = 32, centre: tuple[float, float, float] = (3.0, 0.0, 0.0),
                   dtype: torch.dtype = torch.float64) -> Float[Tensor, "triangles 3 3"]:
    """A sphere from a latitude–longitude grid (its vertices lie exactly on the sphere)."""
    if n_lat < 2 or n_lon < 3:
        raise ValueError(f"a sphere needs n_lat >= 2 and n_lon >= 3, got {n_lat} and {n_lon}")
    theta = torch.linspace(0, math.pi, n_lat + 1, dtype=dtype)
    phi = torch.arange(n_lon, dtype=dtype) * (2 * math.pi / n_lon)
    T, P = torch.meshgrid(theta, phi, indexing="ij")
    points = radius * torch.stack([torch.sin(T) * torch.cos(P), torch.sin(T) * torch.sin(P), torch.cos(T)], dim=-1)
    points = points + torch.tensor(centre, dtype=dtype)
    return _grid_triangles(points, wrap_rows=False)


def _grid_triangles(points: Tensor, wrap_rows: bool) -> Tensor:
    """Two triangles for each cell of a (rows, cols, 3) grid of points; columns always wrap around."""
    rows = points.shape[0] if wrap_rows else points.shape[0] - 1
    i = torch.arange(rows)
    j = torch.arange(points.shape[1])
    I, J = torch.meshgrid(i, j, indexing="ij")
    I2, J2 = (I + 1) % points.shape[0], (J + 1) % points.shape[1]
    p00, p10, p01, p11 = points[I, J], points[I2, J], points[I, J2], points[I2, J2]
    tris = torch.cat([torch.stack([p00, p10, p11], dim=-2).reshape(-1, 3, 3), torch.stack([p00, p11, p01], dim=-2).reshape(-1, 3, 3)])
    area = torch.linalg.norm(torch.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0], dim=-1), dim=-1)
    return tris[area > 1e-12]  # the sphere's poles make degenerate triangles


def ray_triangle_distances(rays: Float[Tensor, "rays 2 3"], triangles: Float[Tensor, "triangles 3 3"]
                           ) -> tuple[Float[Tensor, "rays triangles"], Bool[Tensor, "rays triangles"]]:
    """``s`` (distance along each ray, in units of its direction) and whether it hits, for every pair.

    Pairs whose system is singular (the ray parallel to the triangle's plane) count as misses.
    """
    O, D = rays[:, None, 0], rays[:, None, 1]  # (rays, 1, 3)
    A, B, C = triangles[None, :, 0], triangles[None, :, 1], triangles[None, :, 2]  # (1, triangles, 3)
    O, D = O.expand(-1, triangles.shape[0], -1), D.expand(-1, triangles.shape[0], -1)
    A, B, C = (t.expand(rays.shape[0], -1, -1) for t in (A, B, C))
    mat = torch.stack([-D, B - A, C - A], dim=-1)  # (rays, triangles, 3, 3): columns −D, B−A, C−A
    singular = torch.linalg.det(mat).abs() < 1e-12
    mat = torch.where(singular[..., None, None], torch.eye(3, dtype=mat.dtype), mat)  # solvable placeholder
    s, u, v = torch.linalg.solve(mat, O - A).unbind(-1)
    hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (s >= 0) & ~singular
    return s, hit


def raytrace(rays: Float[Tensor, "rays 2 3"], triangles: Float[Tensor, "triangles 3 3"],
             chunk: int = 4096) -> Float[Tensor, " rays"]:
    """Distance to the nearest triangle along each ray (``inf`` where it hits nothing), in chunks of rays."""
    if rays.ndim != 3 or rays.shape[1:] != (2, 3):
        raise ValueError(f"rays should have shape (n, 2, 3) (origin, direction), got {tuple(rays.shape)}")
    if triangles.ndim != 3 or triangles.shape[1:] != (3, 3):
        raise ValueError(f"triangles should have shape (n, 3, 3) (three 3-D corners), got {tuple(triangles.shape)}")
    out = []
    for start in range(0, rays.shape[0], chunk):
        s, hit = ray_triangle_distances(rays[start : start + chunk], triangles)
        out.append(torch.where(hit, s, torch.full_like(s, math.inf)).amin(dim=-1))
    return torch.cat(out)


def intersect_one(origin: list[float], direction: list[float], a: list[float], b: list[float], c: list[float]) -> float | None:
    """One ray against one triangle with plain Python floats (Cramer's rule): the looped reference."""
    # Lambdas rather than nested functions: this runs thousands of times in the tests, where every
    # `def` would get a runtime type checker attached.
    sub = lambda p, q: [p[0] - q[0], p[1] - q[1], p[2] - q[2]]  # noqa: E731
    det = lambda c0, c1, c2: (c0[0] * (c1[1] * c2[2] - c1[2] * c2[1]) - c1[0] * (c0[1] * c2[2] - c0[2] * c2[1])  # noqa: E731
                              + c2[0] * (c0[1] * c1[2] - c0[2] * c1[1]))

    neg_d, e1, e2, rhs = [-x for x in direction], sub(b, a), sub(c, a), sub(origin, a)
    d = det(neg_d, e1, e2)
    if abs(d) < 1e-12:
        return None
    s, u, v = det(rhs, e1, e2) / d, det(neg_d, rhs, e2) / d, det(neg_d, e1, rhs) / d
    return s if (u >= 0 and v >= 0 and u + v <= 1 and s >= 0) else None
