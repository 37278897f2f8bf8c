"""mechlearn.superposition.geometry and .plots against closed forms and a plain-loop reference.

* Closed forms (Elhage et al. 2022, "Feature dimensionality"): orthogonal features have dimensionality
  1 and superposition 0; an antipodal pair 1/2; a triangle in 2-D 2/3; a regular pentagon 2/5; a
  regular tetrahedron in 3-D 3/4 — each placed in a larger hidden space by a random rotation.
* A NumPy reference written with plain loops over features, in float64, at ``FLOAT64``.
* A property: per instance, ``Σ_i D_i ≤ rank(W) ≤ d_hidden`` (hypothesis).
* Neuron counts on hand-made neuron weights; the figures' traces hold the measured values.
* Negative tests (each check must be able to fail) and hypothesis fuzz of bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.superposition import geometry as geo
from mechlearn.superposition import plots
from mechlearn.testing import EXACT, FLOAT64, Tolerance, assert_close, compare

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FLOAT32_SHARES = Tolerance("FLOAT32_SHARES", 1e-5, 1e-6)
"""float32 shares against float64 ones."""


def rotated(vectors: np.ndarray, d_hidden: int, seed: int = 0) -> torch.Tensor:
    """Feature vectors ``(d, n_features)`` placed in ``d_hidden`` dimensions by a random rotation, float64."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d_hidden, d_hidden)))
    padded = np.zeros((d_hidden, vectors.shape[1]))
    padded[: vectors.shape[0]] = vectors
    return torch.tensor(q @ padded)


def polygon(k: int) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(angles), np.sin(angles)])


TETRAHEDRON = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float).T / math.sqrt(3)


def reference(W: np.ndarray) -> dict[str, np.ndarray]:
    """Norms, superposition and dimensionality of one instance ``(d_hidden, n_features)``, with loops."""
    n = W.shape[1]
    norms, sup, dim = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        norms[i] = math.sqrt(sum(w * w for w in W[:, i]))
        if norms[i] == 0:
            continue
        unit = W[:, i] / norms[i]
        proj2 = [float(unit @ W[:, j]) ** 2 for j in range(n)]
        sup[i] = sum(p for j, p in enumerate(proj2) if j != i)
        dim[i] = norms[i] ** 2 / sum(proj2)
    return {"norms": norms, "superposition": sup, "dimensionality": dim}


# -- closed forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "vectors", "d_hidden", "expected"), [
    ("orthogonal", np.eye(3) * np.array([0.5, 1.0, 2.0]), 4, 1.0),
    ("antipodal pair", np.array([[1.0, -1.0]]), 3, 1 / 2),
    ("triangle", polygon(3), 2, 2 / 3),
    ("pentagon", polygon(5), 2, 2 / 5),
    ("pentagon in 5-D", polygon(5), 5, 2 / 5),
    ("tetrahedron", TETRAHEDRON, 3, 3 / 4),
])
def test_dimensionality_closed_forms(name, vectors, d_hidden, expected):
    W = rotated(vectors, d_hidden)[None]
    n = vectors.shape[1]
    assert_close(geo.feature_dimensionality(W), np.full((1, n), expected), FLOAT64, name=f"{name}: D_i")
    # For unit features D_i = 1 / (1 + superposition_i), so superposition_i = 1/D_i - 1.
    norms = np.linalg.norm(vectors, axis=0)
    assert_close(geo.superposition_scores(W), np.full((1, n), (1 / expected - 1)) * norms**2, FLOAT64,
                 name=f"{name}: superposition")
    assert_close(geo.feature_norms(W), norms[None], FLOAT64, name=f"{name}: norms")


def test_antipodal_pair_of_unequal_norms():
    W = torch.tensor([[[2.0, -1.0, 0.0], [0.0, 0.0, 3.0]]], dtype=torch.float64)
    # D_1 = a²/(a² + b²), D_2 = b²/(b² + a²); the orthogonal third feature keeps 1.
    assert_close(geo.feature_dimensionality(W), [[4 / 5, 1 / 5, 1.0]], FLOAT64, name="unequal antipodal pair")
    assert_close(geo.superposition_scores(W), [[1.0, 4.0, 0.0]], FLOAT64, name="superposition = (Ŵ_i·W_j)²")


def test_zero_feature_has_no_dimension_and_leaves_others_alone():
    W = torch.tensor(np.concatenate([polygon(5), np.zeros((2, 1))], axis=1))[None]
    assert_close(geo.feature_dimensionality(W), [[0.4] * 5 + [0.0]], FLOAT64, name="zero feature: D = 0")
    assert_close(geo.superposition_scores(W), [[1.5] * 5 + [0.0]], FLOAT64, name="zero feature: superposition 0")
    assert_close(geo.feature_norms(W)[0, 5], 0.0, EXACT)
    zero = torch.zeros(2, 3, 4)
    assert torch.equal(geo.feature_dimensionality(zero), torch.zeros(2, 4))
    assert torch.isinf(geo.dimensions_per_feature(zero)).all()


def test_against_loop_reference_per_instance():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 4, 9, generator=g, dtype=torch.float64)
    W[2, :, 3] = 0.0  # a dropped feature
    W[4, :, 1] = -W[4, :, 0]  # an exact antipodal pair
    for k in range(W.shape[0]):
        ref = reference(W[k].numpy())
        assert_close(geo.feature_norms(W)[k], ref["norms"], FLOAT64, name=f"norms, instance {k}")
        assert_close(geo.superposition_scores(W)[k], ref["superposition"], FLOAT64, name=f"superposition, instance {k}")
        assert_close(geo.feature_dimensionality(W)[k], ref["dimensionality"], FLOAT64, name=f"D, instance {k}")
    frob = (W**2).sum((1, 2)).numpy()
    assert_close(geo.dimensions_per_feature(W), 4 / frob, FLOAT64, name="d_hidden / ‖W‖_F²")


def test_reference_can_fail():
    """The loop reference is not the function itself: a perturbed W disagrees."""
    W = rotated(polygon(5), 2)[None]
    bumped = W.clone()
    bumped[0, 0, 0] += 1e-3
    assert not compare(geo.feature_dimensionality(bumped)[0], reference(W[0].numpy())["dimensionality"], FLOAT64)
    assert not compare(geo.feature_dimensionality(W), np.full((1, 5), 0.5), FLOAT64)  # 2/5, not 1/2


def test_dimensions_per_feature_known_values():
    W = torch.tensor(polygon(5))[None]
    assert_close(geo.dimensions_per_feature(W), [2 / 5], FLOAT64, name="pentagon: 2 dims / 5 unit features")
    assert_close(geo.dimensions_per_feature(torch.cat([W, 2 * W])), [2 / 5, 2 / 20], FLOAT64,
                 name="doubling W quarters it")
    assert_close(geo.dimensions_per_feature(torch.eye(3)[None]), [1.0], FLOAT64, name="identity: 1")


def test_scale_invariance_without_overflow():
    W = rotated(polygon(5), 3)[None]
    for scale in (1e-200, 1e200):
        assert_close(geo.feature_dimensionality(W * scale), np.full((1, 5), 0.4), FLOAT64, name=f"D at scale {scale:g}")
    assert_close(geo.superposition_scores(W * 1e-150) / 1e-300, np.full((1, 5), 1.5), FLOAT64,
                 name="superposition scales as |W|²")


def test_float32_input_keeps_dtype():
    W = torch.tensor(polygon(5), dtype=torch.float32)[None]
    for fn in (geo.feature_norms, geo.superposition_scores, geo.feature_dimensionality, geo.dimensions_per_feature):
        assert fn(W).dtype == torch.float32


@st.composite
def weight_tensors(draw):
    n_inst, d_hidden, n_features = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    W = rng.normal(size=(n_inst, d_hidden, n_features))
    rank = draw(st.integers(1, d_hidden))
    W[:, rank:, :] = 0.0  # rank ≤ `rank`
    for k in range(n_inst):
        W[k] = rng.normal(size=(d_hidden, d_hidden)) @ W[k]  # mix the rows: still low rank, no zero rows
    if draw(st.booleans()):
        W[:, :, 0] = 0.0
    if n_features > 1 and draw(st.booleans()):
        W[:, :, 1] = -draw(st.floats(0.1, 10)) * W[:, :, -1]
    return torch.tensor(W)


@FUZZ
@given(weight_tensors())
def test_dimensionalities_share_out_the_hidden_dimensions(W):
    """``0 ≤ D_i ≤ 1`` and ``Σ_i D_i ≤ rank(W) ≤ d_hidden`` (the Cauchy–Schwarz bound in the module docstring)."""
    D = geo.feature_dimensionality(W)
    assert bool((D >= 0).all()) and bool((D <= 1 + 1e-12).all()), D
    ranks = torch.linalg.matrix_rank(W).to(torch.float64)
    assert bool((D.sum(-1) <= ranks + 1e-9).all()), (D.sum(-1), ranks)
    assert bool((ranks <= W.shape[1]).all())


def test_sum_bound_is_tight_and_can_fail():
    """Orthogonal features reach the bound; a wrong 'dimensionality' (norms²) breaks it."""
    W = rotated(np.eye(3), 5)[None]
    assert_close(geo.feature_dimensionality(W).sum(-1), [3.0], FLOAT64, name="orthogonal: Σ D_i = rank")
    fake = (2 * torch.tensor(polygon(5)))[None]
    assert float((geo.feature_norms(fake) ** 2).sum()) > 2  # what the check would catch


# -- neurons --------------------------------------------------------------------------------


def test_neuron_counts_on_hand_made_weights():
    W = torch.tensor([[
        [1.0, 0.0, 0.0, -2.0],   # monosemantic: one positive weight (negative weights cannot fire it)
        [0.9, 0.25, 0.0, 0.0],   # share 0.81/0.8725 = 0.93: monosemantic at 0.9, not at 0.95
        [0.5, 0.5, 0.5, 0.0],    # polysemantic
        [0.0, 0.0, 0.0, -1.0],   # dead: no positive weight
        [0.01, 0.0, 0.0, 0.0],   # dead: positive mass 1e-4 < 1e-3
    ]], dtype=torch.float64)
    counts = geo.neuron_counts(W)
    assert {k: v.tolist() for k, v in counts.items()} == {"monosemantic": [2], "polysemantic": [1], "dead": [2]}
    strict = geo.neuron_counts(W, threshold=0.95)
    assert strict["monosemantic"].tolist() == [1] and strict["polysemantic"].tolist() == [2]
    assert geo.neuron_counts(W, dead_mass=0.0)["monosemantic"].tolist() == [3]  # the tiny neuron is alive now
    shares = geo.neuron_feature_shares(W)
    assert_close(shares[0, 1], [0.81 / 0.8725, 0.0625 / 0.8725, 0.0, 0.0], FLOAT64, name="shares of neuron 1")
    assert_close(shares[0, 3], [0.0] * 4, EXACT, name="a neuron with no positive weight")
    assert_close(shares.sum(-1)[0, :3], [1.0] * 3, FLOAT64, name="live shares sum to 1")


def test_neuron_counts_per_instance_add_up():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(6, 5, 10, generator=g)
    W[0] = torch.eye(5, 10)  # all monosemantic
    counts = geo.neuron_counts(W)
    total = counts["monosemantic"] + counts["polysemantic"] + counts["dead"]
    assert total.tolist() == [5] * 6
    assert counts["monosemantic"][0].item() == 5
    assert_close(geo.neuron_feature_shares(W.double()), geo.neuron_feature_shares(W), FLOAT32_SHARES,
                 name="float32 vs float64 shares")


@pytest.mark.parametrize("threshold", [0.5, 0.2, 1.01, math.nan, True, "0.9"])
def test_neuron_threshold_out_of_range(threshold):
    with pytest.raises(ValueError, match=r"threshold should be a share in \(0\.5, 1\]"):
        unchecked(geo.neuron_counts)(torch.ones(1, 2, 3), threshold=threshold)


@pytest.mark.parametrize("dead_mass", [-1e-3, math.inf, math.nan])
def test_neuron_dead_mass_out_of_range(dead_mass):
    with pytest.raises(ValueError, match="dead_mass should be a finite non-negative"):
        unchecked(geo.neuron_counts)(torch.ones(1, 2, 3), dead_mass=dead_mass)


# -- bad weights ----------------------------------------------------------------------------

MEASURES = (geo.feature_norms, geo.superposition_scores, geo.feature_dimensionality, geo.dimensions_per_feature,
            geo.neuron_feature_shares, geo.neuron_counts)


@pytest.mark.parametrize("fn", MEASURES, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("W", "error", "match"), [
    (torch.ones(3, 4), ValueError, r"W should be 3-D .*add an instance axis: W\[None\]"),
    (torch.ones(2, 3, 4, 5), ValueError, "W should be 3-D"),
    (torch.ones(2, 0, 4), ValueError, "at least one instance, hidden dimension and feature"),
    (torch.ones(2, 3, 4, dtype=torch.int64), TypeError, "floating-point"),
    (torch.tensor([[[1.0, math.nan]]]), ValueError, "finite"),
    (torch.tensor([[[1.0, math.inf]]]), ValueError, "finite"),
    (np.ones((1, 2, 3)), TypeError, "torch.Tensor"),
])
def test_bad_weights_are_refused(fn, W, error, match):
    with pytest.raises(error, match=match):
        unchecked(fn)(W)


# -- figures --------------------------------------------------------------------------------


def sweep() -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    W = torch.randn(3, 2, 5, generator=g, dtype=torch.float64)
    W[0] = torch.tensor(polygon(5))
    return W


def test_gram_figure():
    W = sweep()
    fig = plots.gram_figure(W, titles=["a", "b", "c"], title="WᵀW")
    assert [t.type for t in fig.data] == ["heatmap"] * 3
    assert_close(np.array(fig.data[1].z), (W[1].T @ W[1]).numpy(), FLOAT64, name="panel 1 is WᵀW of instance 1")
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c"]
    assert fig.layout.width == plots.FIGURE_WIDTH and fig.layout.height > 0
    assert fig.layout.coloraxis.cmid == 0.0 and fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax
    assert len(plots.gram_figure(W, instances=[2]).data) == 1


def test_features_2d_figure():
    W = sweep()
    fig = plots.features_2d_figure(W, importance=0.9 ** torch.arange(5.0))
    assert len(fig.data) == 2 * 3
    tips = fig.data[1]
    assert_close(np.array(tips.x), W[0, 0].numpy(), FLOAT64, name="tips are the features")
    assert_close(np.array(fig.data[0].x[:3], dtype=float)[:2], [0.0, W[0, 0, 0].item()], FLOAT64, name="line from 0")
    assert fig.data[0].x[2] is None
    with pytest.raises(ValueError, match="d_hidden == 2"):
        unchecked(plots.features_2d_figure)(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="importance should be a tensor of shape"):
        unchecked(plots.features_2d_figure)(W, importance=torch.ones(4))


def test_norms_figure():
    W = sweep()
    fig = plots.norms_figure(W)
    assert [t.type for t in fig.data] == ["bar"] * 3
    assert_close(np.array(fig.data[2].x), geo.feature_norms(W)[2].numpy(), FLOAT64, name="bar lengths are norms")
    assert_close(np.array(fig.data[0].marker.color), [1.5] * 5, FLOAT64, name="pentagon colour is its superposition")


def test_dimensionality_figure():
    W = sweep()
    p = torch.tensor([1.0, 0.1, 0.01], dtype=torch.float64)
    fig = plots.dimensionality_figure(W, p[:, None].expand(3, 5))
    line, scatter = fig.data[1], fig.data[0]
    assert_close(np.array(line.x), [1.0, 10.0, 100.0], FLOAT64, name="x = 1 / p")
    assert_close(np.array(line.y), geo.dimensions_per_feature(W).numpy(), FLOAT64, name="line = m / ‖W‖_F²")
    assert_close(np.sort(np.array(scatter.y)), np.sort(geo.feature_dimensionality(W).numpy().ravel()), FLOAT64,
                 name="scatter = D_i")
    assert sorted(s.y0 for s in fig.layout.shapes) == sorted(a / b for a, b in geo.STICKY_FRACTIONS)
    assert fig.layout.xaxis.type == "log"
    kept = plots.dimensionality_figure(W, p, min_norm=1.0).data[0]
    assert len(kept.y) == int((geo.feature_norms(W) >= 1.0).sum()) < 15
    zero = torch.cat([W, torch.zeros(1, 2, 5, dtype=torch.float64)])
    line = plots.dimensionality_figure(zero, [1.0, 0.1, 0.01, 0.001]).data[1]
    assert len(line.y) == 3  # the all-zero instance (inf dimensions per feature) is left out
    with pytest.raises(ValueError, match="min_norm should be"):
        unchecked(plots.dimensionality_figure)(W, p, min_norm=-1.0)
    with pytest.raises(ValueError, match="one value per instance"):
        unchecked(plots.dimensionality_figure)(W, [0.5, 0.1])
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        unchecked(plots.dimensionality_figure)(W, [0.5, 0.0, 1.0])


def test_neuron_weights_figure():
    W = sweep()
    fig = plots.neuron_weights_figure(W, instances=[0, 2], titles=["dense", "sparse"])
    assert len(fig.data) == 2 * 5 and fig.layout.barmode == "relative"
    assert sum(t.showlegend for t in fig.data) == 5
    assert_close(np.array(fig.data[5 + 3].y), W[2, :, 3].numpy(), FLOAT64, name="instance 2, feature 3 weights")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"instances": [3]}, ValueError, r"instances should be integers in \[0, 3\)"),
    ({"instances": []}, TypeError, "non-empty sequence"),
    ({"instances": [True]}, ValueError, "integers"),
    ({"titles": ["only one"]}, ValueError, "one title per instance shown"),
    ({"titles": "abc"}, TypeError, "sequence of 3 strings"),
])
@pytest.mark.parametrize("fig", [plots.gram_figure, plots.norms_figure, plots.neuron_weights_figure],
                         ids=lambda f: f.__name__)
def test_figure_arguments_are_checked(fig, kwargs, error, match):
    with pytest.raises(error, match=match):
        unchecked(fig)(sweep(), **kwargs)


# -- fuzz -----------------------------------------------------------------------------------

INFORMATIVE = ("should", "expect", "got", "must")


@FUZZ
@given(st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple),
       st.sampled_from([torch.float64, torch.float32, torch.int64, torch.bool]),
       st.sampled_from([None, 0.0, 1e300, -1e-300, math.inf, math.nan]), st.integers(0, 2**16))
def test_fuzz_measures(shape, dtype, special, seed):
    """Any tensor: a correct-shape, NaN-free result, or a clear ValueError/TypeError."""
    W = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3
    if W.numel() and special is not None:
        W.view(-1)[seed % W.numel()] = special
    W = W.to(dtype) if dtype is not torch.bool else W > 0
    for fn in MEASURES:
        try:
            out = unchecked(fn)(W)
        except (ValueError, TypeError) as err:
            assert any(w in str(err) for w in INFORMATIVE), f"uninformative: {err}"
            continue
        assert W.ndim == 3 and W.is_floating_point() and bool(torch.isfinite(W).all())
        values = out.values() if isinstance(out, dict) else [out]
        for v in values:
            assert v.shape[0] == W.shape[0] and not bool(torch.isnan(v.double()).any()), (fn.__name__, v)


# -- sticky fractions and the dimensionality sweep -----------------------------------------


def test_sticky_share_on_known_geometry():
    cos = math.sqrt(0.2)  # two unit features with cos² = 0.2: D = 1 / 1.2 = 0.833, near no fraction
    pair = np.array([[1.0, cos], [0.0, math.sqrt(1 - cos**2)]])
    vectors = np.zeros((4, 8))
    vectors[:2, :5], vectors[2:, 5:7] = polygon(5), pair
    vectors[0, 7] = 0.1  # too small to count as represented
    W = torch.tensor(vectors)[None]
    assert_close(geo.feature_dimensionality(W)[0, 5:7], [1 / 1.2] * 2, FLOAT64, name="the tilted pair")
    assert_close(geo.sticky_share(W), [5 / 7], FLOAT64, name="5 of 7 represented features are sticky")
    assert_close(geo.sticky_share(W, tolerance=0.1), [1.0], FLOAT64, name="a loose tolerance takes 0.833 as 3/4")
    assert_close(geo.sticky_share(torch.zeros(1, 2, 3)), [0.0], EXACT, name="nothing represented")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"tolerance": 0.0}, "tolerance should be in"), ({"tolerance": 0.6}, "tolerance should be in"),
    ({"min_norm": -1.0}, "min_norm should be"), ({"min_norm": math.nan}, "min_norm should be"),
])
def test_sticky_share_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        unchecked(geo.sticky_share)(torch.ones(1, 2, 3), **kwargs)


def test_dimensionality_recipe_quick(tmp_path):
    manifest = geo.dimensionality_recipe(tmp_path, quick=True, progress=False)
    assert manifest["quick"] and manifest["steps"] == 30 and manifest["file"] == "dimensionality.pt"
    W, p, loaded = geo.load_dimensionality_sweep(tmp_path)
    assert loaded["sha256"] == manifest["sha256"]
    assert W.shape == (4, 4, 20) and p.shape == (4,)
    assert_close(p, 20.0 ** -torch.linspace(0, 1, 4), EXACT, name="feature probabilities 20^-t")
    assert_close(manifest["metrics"]["dimensions_per_feature"], geo.dimensions_per_feature(W), EXACT,
                 name="manifest metrics are the checkpoint's")
    with pytest.raises(ValueError, match="refusing to write into the mechlearn package"):
        geo.dimensionality_recipe(geo.CHECKPOINT_DIR, quick=True)


def test_committed_dimensionality_sweep():
    W, p, manifest = geo.load_dimensionality_sweep()  # checks the sha256
    cfg = geo.DIMENSIONALITY_SWEEP
    assert manifest["config"] == cfg and not manifest["quick"]
    assert W.shape == (cfg["n_instances"], cfg["d_hidden"], cfg["n_features"])
    assert_close(manifest["metrics"]["dimensions_per_feature"], geo.dimensions_per_feature(W), EXACT,
                 name="committed metrics")
    assert_close(manifest["metrics"]["sticky_share"], geo.sticky_share(W), EXACT, name="committed sticky share")
    dims = geo.dimensions_per_feature(W)
    assert float(dims[0]) > 0.9 and float(dims[-1]) < 0.5  # dense: a dimension each; sparse: shared


def test_missing_sweep_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m mechlearn.superposition dimensionality"):
        geo.load_dimensionality_sweep(tmp_path)


def test_feature_clusters_on_known_geometry():
    vectors = np.zeros((6, 11))
    vectors[:2, :5] = polygon(5)                    # a pentagon in dims 0-1
    vectors[2, 5], vectors[2, 6] = 1.0, -1.0        # an antipodal pair in dim 2
    vectors[3:6, 7:11] = TETRAHEDRON                # a tetrahedron in dims 3-5
    W = rotated(vectors, 8, seed=3)
    W = torch.stack([W, W * 1e-3])                  # instance 1: nothing represented
    W[0, :, 4] *= 0.1                               # drop one pentagon vertex below min_norm
    clusters = geo.feature_clusters(W)
    assert clusters[0] == [([0, 1, 2, 3], 2), ([7, 8, 9, 10], 3), ([5, 6], 1)]
    assert clusters[1] == []
    assert geo.feature_clusters(W, min_norm=0.0)[0][0] == ([0, 1, 2, 3, 4], 2)
    # above |cos 144°| = 0.81 no two pentagon vertices are linked: the pentagon falls apart
    assert ([0], 1) in geo.feature_clusters(W, min_cosine=0.9)[0]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"min_norm": -1.0}, "min_norm should be"), ({"min_cosine": 1.0}, r"min_cosine should be in \[0, 1\)"),
    ({"min_cosine": True}, "min_cosine should be"),
])
def test_feature_clusters_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        unchecked(geo.feature_clusters)(torch.ones(1, 2, 3), **kwargs)
