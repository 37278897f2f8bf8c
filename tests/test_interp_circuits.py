"""mechlearn.interp.circuits: factored matrices, QK/OV circuits, copying and composition scores.

References: TransformerLens's ``FactoredMatrix`` on the same factors, a ``TransformerBridge`` on the
same weights (``OV``, ``QK``, ``all_composition_scores``), all in float64 at ``FLOAT64``; closed
forms (the SVD, norm and eigenvalues of the explicitly formed product; identity and minus identity
copying scores; aligned and orthogonal composition). Bad input: negative tests and hypothesis fuzz.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import unchecked
from fuzzing import result_or_clear_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.gpt import GPT, GPTConfig
from mechlearn.gpt.interop import to_transformer_lens
from mechlearn.interp.circuits import (
    CompositionBaseline, FactoredMatrix, composition_score, composition_scores, copying_score, copying_scores,
    full_k_composition_circuit, full_ov_circuit, full_qk_circuit, ov_circuit, pos_attention_pattern, qk_circuit,
    random_composition_baseline,
)
from mechlearn.interp.core import weights
from mechlearn.testing import EXACT, FLOAT64, Tolerance, assert_close, compare

tl = pytest.importorskip("transformer_lens")

BASELINE_APPROX = Tolerance("BASELINE_APPROX", 0.05, 0.0)
"""The random baseline's mean against its large-d_model limit 1/sqrt(d_model) (Monte Carlo + finite size)."""

FUZZ = settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
INFORMATIVE = re.compile(r"should|must|needs?|got|undefined|later", re.IGNORECASE)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    model = GPT(GPTConfig(d_vocab=23, n_ctx=12, d_model=16, n_layers=3, n_heads=2, d_head=5, attn_only=True)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    model.eval()
    return model, to_transformer_lens(model)


def _sorted_eigs(lam: torch.Tensor) -> torch.Tensor:
    lam = lam.to(torch.complex128)
    key = lam.real * 1e6 + lam.imag  # distinct real parts in these random draws; imag breaks conjugate ties
    return torch.view_as_real(torch.gather(lam, -1, key.argsort(-1)))


# -- FactoredMatrix against TransformerLens and closed forms -----------------------------------


@pytest.mark.parametrize("ldim,mdim,rdim", [(10, 4, 10), (7, 3, 9), (3, 6, 3), (5, 5, 5)])
def test_factored_matrix_matches_transformer_lens(ldim, mdim, rdim):
    A, B = rand(2, 3, ldim, mdim, seed=1), rand(3, mdim, rdim, seed=2)  # B's leading axes broadcast
    ours, ref = FactoredMatrix(A, B), tl.FactoredMatrix(A, B)
    assert ours.shape == ref.shape and (ours.ldim, ours.mdim, ours.rdim) == (ref.ldim, ref.mdim, ref.rdim)
    assert_close(ours.AB, ref.AB, EXACT, name="AB")
    assert_close(ours.T.AB, ref.T.AB, EXACT, name="T")
    assert_close(ours.S, ref.S, FLOAT64, name="singular values vs TransformerLens")
    assert_close(ours.norm(), ref.norm(), FLOAT64, name="norm vs TransformerLens")
    if ldim == rdim:
        assert_close(ours.BA, ref.BA, EXACT, name="BA")
        assert_close(_sorted_eigs(ours.eigenvalues), _sorted_eigs(ref.eigenvalues), FLOAT64, name="eigenvalues")
    X, v = rand(rdim, 8, seed=3), rand(rdim, seed=4)
    assert_close((ours @ X).AB, (ref @ X).AB, FLOAT64, name="M @ matrix")
    assert_close(ours @ v, ref @ v, FLOAT64, name="M @ vector")
    Y, w = rand(6, ldim, seed=5), rand(ldim, seed=6)
    assert_close((Y @ ours).AB, (Y @ ref).AB, FLOAT64, name="matrix @ M")
    assert_close(w @ ours, w @ ref, FLOAT64, name="vector @ M")
    other = FactoredMatrix(rand(rdim, 2, seed=7), rand(2, 4, seed=8))
    assert_close((ours @ other).AB, (ref @ tl.FactoredMatrix(other.A, other.B)).AB, FLOAT64, name="M @ factored")
    assert_close((2.5 * ours).AB, (ref * 2.5).AB, FLOAT64, name="scalar")
    for index in [(1,), (0, 2), (1, 2, 0), (1, 2, slice(1, 3), -1), (0, slice(None), torch.tensor([0, 2]))]:
        assert_close(ours[index].AB, ref[index].AB, EXACT, name=f"index {index}")


def test_svd_norm_and_eigenvalues_equal_those_of_the_formed_product():
    A, B = rand(4, 12, 3, seed=9), rand(4, 3, 12, seed=10)
    M = FactoredMatrix(A, B)
    U, S, V = M.svd()
    AB = A @ B
    assert_close(U @ torch.diag_embed(S) @ V.transpose(-2, -1), AB, FLOAT64, name="U diag(S) V^T = AB")
    assert_close(U.transpose(-2, -1) @ U, torch.eye(3, dtype=torch.float64).expand(4, 3, 3), FLOAT64, name="U^T U = I")
    assert_close(V.transpose(-2, -1) @ V, torch.eye(3, dtype=torch.float64).expand(4, 3, 3), FLOAT64, name="V^T V = I")
    assert_close(S, torch.linalg.svdvals(AB)[..., :3], FLOAT64, name="S = svdvals(AB)")
    assert_close(torch.linalg.svdvals(AB)[..., 3:], torch.zeros(4, 9, dtype=torch.float64), Tolerance("rank", 0.0, 1e-12),
                 name="AB has rank mdim")
    assert_close(M.norm(), torch.linalg.matrix_norm(AB), FLOAT64, name="norm = ||AB||_F")
    full = torch.linalg.eigvals(AB)
    nonzero = torch.gather(full, -1, full.abs().argsort(-1, descending=True)[..., :3])
    assert_close(_sorted_eigs(M.eigenvalues), _sorted_eigs(nonzero), Tolerance("eig", 1e-8, 1e-10),
                 name="eigenvalues = the nonzero eigenvalues of AB")
    wrong = FactoredMatrix(A, B + 1e-3)
    assert not compare(wrong.S, torch.linalg.svdvals(AB)[..., :3], FLOAT64), "a perturbed factor must fail the check"


# -- circuits on our GPT and on the bridge --------------------------------------------------


def test_circuits_match_the_bridge(models):
    model, bridge = models
    w = weights(model)
    for m in (model, bridge):
        assert_close(ov_circuit(m).AB, bridge.OV.AB, FLOAT64, name="OV")
        assert_close(qk_circuit(m).AB, bridge.QK.AB, FLOAT64, name="QK")
        assert_close(full_ov_circuit(m).AB, (bridge.W_E @ bridge.OV @ bridge.W_U).AB, FLOAT64, name="full OV")
        assert_close(full_qk_circuit(m, query="pos", key="pos").AB, (bridge.W_pos @ bridge.QK @ bridge.W_pos.T).AB,
                     FLOAT64, name="positional full QK")
        assert_close(full_qk_circuit(m, 1, 0, query="token", key="pos").AB,
                     w.W_E @ w.W_Q[1, 0] @ w.W_K[1, 0].T @ w.W_pos.T, FLOAT64, name="token-to-position QK")
        assert_close(qk_circuit(m, 2).AB, bridge.QK.AB[2], FLOAT64, name="one layer")
        assert_close(ov_circuit(m, 1, 1).AB, w.W_V[1, 1] @ w.W_O[1, 1], FLOAT64, name="one head")
    assert ov_circuit(model).shape == (3, 2, 16, 16) and full_ov_circuit(model, 0, 1).shape == (23, 23)
    assert ov_circuit(model, 0, 0).mdim == 5


def test_k_composition_circuit_and_positional_pattern_closed_forms(models):
    model, _ = models
    w = weights(model)
    explicit = w.W_E @ w.W_Q[2, 1] @ w.W_K[2, 1].T @ w.W_O[0, 1].T @ w.W_V[0, 1].T @ w.W_E.T
    assert_close(full_k_composition_circuit(model, (0, 1), (2, 1)).AB, explicit, FLOAT64, name="K-comp circuit")
    pattern = pos_attention_pattern(model, 1, 0)
    scores = w.W_pos @ w.W_Q[1, 0] @ w.W_K[1, 0].T @ w.W_pos.T / math.sqrt(5)
    for q in range(12):
        ref = torch.softmax(scores[q, : q + 1], dim=-1)
        assert_close(pattern[q, : q + 1], ref, FLOAT64, name=f"row {q}")
        assert_close(pattern[q, q + 1:], torch.zeros(11 - q, dtype=torch.float64), EXACT, name=f"no future, row {q}")


def test_positional_pattern_with_layer_norm_is_the_forward_pass_on_positions_alone(models):
    model, bridge = models
    tokens = torch.zeros(1, 12, dtype=torch.long)
    zero_tokens = [("hook_embed", lambda x, hook: torch.zeros_like(x))]  # the stream holds W_pos only
    for m in (model, bridge):
        patterns = {}
        m.run_with_hooks(tokens, fwd_hooks=zero_tokens + [
            ("blocks.0.attn.hook_pattern", lambda x, hook: patterns.setdefault("p", x.detach()))])
        for head in range(2):
            assert_close(pos_attention_pattern(m, 0, head, ln=True), patterns["p"][0, head], FLOAT64,
                         name=f"head 0.{head} vs the model's own pattern")
    assert not compare(pos_attention_pattern(model, 0, 0), patterns["p"][0, 0], FLOAT64), \
        "without the LayerNorm the weights-only pattern differs from the forward pass"


# -- copying scores ------------------------------------------------------------------------


def test_copying_score_closed_forms():
    eye = torch.eye(7, dtype=torch.float64)
    assert_close(copying_score(eye), 1.0, EXACT, name="identity copies (top 1)")
    assert_close(copying_score(-eye), 0.0, EXACT, name="minus identity never copies (top 1)")
    assert_close(copying_score(-eye, k=7), 1.0, EXACT, name="top-d_vocab always contains the token")
    assert_close(copying_score(eye, "eigenvalues"), 1.0, FLOAT64, name="identity: eigenvalue score 1")
    assert_close(copying_score(-eye, "eigenvalues"), -1.0, FLOAT64, name="minus identity: -1")
    shift = torch.roll(eye, 1, dims=1)  # a cyclic permutation: eigenvalues are the 7th roots of unity, sum 0
    assert_close(copying_score(shift), 0.0, EXACT, name="a derangement never copies")
    assert_close(copying_score(shift, "eigenvalues"), 0.0, Tolerance("sum of roots of unity", 0.0, 1e-12),
                 name="roots of unity")
    D = torch.diag(torch.tensor([3.0, 1.0, -2.0], dtype=torch.float64))
    assert_close(copying_score(FactoredMatrix(D, torch.eye(3, dtype=torch.float64)), "eigenvalues"), 2.0 / 6.0,
                 FLOAT64, name="diag(3, 1, -2): (3 + 1 - 2) / 6")
    assert copying_score(torch.zeros(3, 3, dtype=torch.float64), "eigenvalues").isnan(), "0/0 is undefined: NaN"


def test_copying_score_is_an_argmax_count(models):
    model, bridge = models
    M = full_ov_circuit(model)
    AB = M.AB
    for k in (1, 3):
        top = AB.topk(k, dim=-1).indices
        count = (top == torch.arange(23)[:, None]).any(-1).double().mean(-1)
        assert_close(copying_score(M, k=k, batch_size=5), count, EXACT, name=f"top-{k} in batches of 5 rows")
        assert_close(copying_scores(bridge, k=k), count, EXACT, name=f"top-{k} on the bridge")
    lam = torch.linalg.eigvals(AB)
    assert_close(copying_scores(model, "eigenvalues"), lam.sum(-1).real / lam.abs().sum(-1), Tolerance("eig", 1e-8, 1e-10),
                 name="eigenvalue score from the formed product")


# -- composition scores --------------------------------------------------------------------


def test_composition_score_closed_forms():
    u, v, x = (torch.nn.functional.normalize(rand(6, seed=s), dim=0) for s in (11, 12, 13))
    W_A = torch.outer(u, v) * 3.0
    assert_close(composition_score(W_A, torch.outer(v, x) * 0.1), 1.0, FLOAT64, name="aligned rank one: 1")
    orth = x - (x @ v) * v
    assert_close(composition_score(W_A, torch.outer(orth, u)), 0.0, Tolerance("zero", 0.0, 1e-15), name="orthogonal: 0")
    A, B = rand(6, 6, seed=14), rand(6, 6, seed=15)
    expected = torch.linalg.matrix_norm(A @ B) / torch.linalg.matrix_norm(A) / torch.linalg.matrix_norm(B)
    fa, fb = FactoredMatrix(A[:, :2], A[:2]), FactoredMatrix(B[:, :3], B[:3])
    assert_close(composition_score(A, B), expected, FLOAT64, name="dense")
    assert_close(composition_score(fa, fb), composition_score(fa.AB, fb.AB), FLOAT64, name="factored = formed")


@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_composition_scores_match_all_composition_scores(models, kind):
    model, bridge = models
    ours = composition_scores(model, kind)
    ref = bridge.all_composition_scores(kind.upper()).scores
    assert ours.shape == (3, 2, 3, 2)
    assert_close(ours, ref, FLOAT64, name=f"{kind}-composition vs TransformerLens")
    assert_close(composition_scores(bridge, kind.upper()), ours, FLOAT64, name="bridge = GPT")
    w = weights(model)
    receiver = {"q": w.W_Q[2, 1] @ w.W_K[2, 1].T, "k": w.W_K[2, 1] @ w.W_Q[2, 1].T, "v": w.W_V[2, 1] @ w.W_O[2, 1]}[kind]
    assert_close(ours[0, 1, 2, 1], composition_score(w.W_V[0, 1] @ w.W_O[0, 1], receiver), FLOAT64, name="one pair")
    assert (ours[1:, :, 1] == 0).all() and (ours[2] == 0).all(), "only earlier layers compose into later ones"


def test_q_and_k_composition_differ(models):
    model, _ = models
    assert not compare(composition_scores(model, "q"), composition_scores(model, "k"), FLOAT64), \
        "Q and K composition read different sides of W_QK"


def test_random_baseline():
    base = random_composition_baseline(d_model=256, d_head=16, n_samples=64, generator=torch.Generator().manual_seed(0))
    assert isinstance(base, CompositionBaseline) and base.samples.shape == (64,)
    assert_close(base.mean, 1 / math.sqrt(256), BASELINE_APPROX, name="mean ~ 1/sqrt(d_model)")
    assert 0 < base.std < base.mean / 3 and base.quantile(0.0) <= base.mean <= base.quantile(1.0)
    again = random_composition_baseline(d_model=256, d_head=16, n_samples=64, generator=torch.Generator().manual_seed(0))
    assert_close(again.samples, base.samples, EXACT, name="same generator, same samples")
    uniform = random_composition_baseline(d_model=256, d_head=16, n_samples=64, distribution="uniform",
                                          generator=torch.Generator().manual_seed(0))
    assert_close(uniform.mean, 1 / math.sqrt(256), BASELINE_APPROX, name="ARENA's uniform init")
    small = random_composition_baseline(d_model=16, d_head=4, n_samples=64, generator=torch.Generator().manual_seed(0))
    assert not compare(small.mean, base.mean, BASELINE_APPROX), "the baseline depends on d_model"


def test_random_baseline_reads_the_model(models):
    model, bridge = models
    a = random_composition_baseline(model, 8, generator=torch.Generator().manual_seed(1))
    b = random_composition_baseline(bridge, 8, generator=torch.Generator().manual_seed(1))
    assert (a.d_model, a.d_head) == (16, 5)
    assert_close(a.samples, b.samples, EXACT, name="same sizes from GPT and bridge")


# -- bad input -----------------------------------------------------------------------------


def test_bad_input_errors_name_what_was_expected(models):
    model, _ = models
    with pytest.raises(ValueError, match="inner sizes"):
        unchecked(FactoredMatrix.__init__)(object.__new__(FactoredMatrix), rand(4, 3), rand(2, 4))
    with pytest.raises(ValueError, match="should broadcast"):
        FactoredMatrix(rand(2, 4, 3), rand(3, 3, 4))
    with pytest.raises(ValueError, match="kind should be one of"):
        composition_scores(model, "o")
    with pytest.raises(ValueError, match=r"head should be an int in \[0, 2\)"):
        ov_circuit(model, 0, 2)
    with pytest.raises(ValueError, match=r"layer should be an int in \[0, 3\)"):
        qk_circuit(model, 3)
    with pytest.raises(ValueError, match="needs its layer"):
        full_ov_circuit(model, head=1)
    with pytest.raises(ValueError, match="should be one of"):
        full_qk_circuit(model, 0, 0, query="position")
    with pytest.raises(ValueError, match="later layer"):
        full_k_composition_circuit(model, (1, 0), (1, 1))
    with pytest.raises(ValueError, match="square"):
        copying_score(rand(3, 4))
    with pytest.raises(ValueError, match="measure should be"):
        copying_score(rand(3, 3), "trace")
    with pytest.raises(ValueError, match=r"k should be an int in \[1, 3\]"):
        copying_score(rand(3, 3), k=4)
    with pytest.raises(ValueError, match="columns to match"):
        composition_score(rand(3, 4), rand(3, 4))
    with pytest.raises(ValueError, match="zero matrix"):
        composition_score(rand(3, 3), torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive int"):
        random_composition_baseline()
    with pytest.raises(ValueError, match="BA needs a square"):
        FactoredMatrix(rand(3, 2), rand(2, 4)).BA


def _clear(call):
    return result_or_clear_error(call, INFORMATIVE)


dims = st.integers(0, 4)


@FUZZ
@given(st.lists(dims, min_size=0, max_size=4), st.lists(dims, min_size=0, max_size=4),
       st.sampled_from([torch.float64, torch.float32, torch.int64]))
def test_fuzz_factored_matrix_and_composition_shapes(shape_a, shape_b, dtype):
    A, B = torch.ones(shape_a, dtype=dtype), torch.ones(shape_b, dtype=dtype)
    fm = object.__new__(FactoredMatrix)
    built = _clear(lambda: unchecked(FactoredMatrix.__init__)(fm, A, B) or fm)
    if built is not None:
        assert built.AB.shape == torch.broadcast_shapes(A.shape[:-2], B.shape[:-2]) + (A.shape[-2], B.shape[-1])
    score = _clear(lambda: unchecked(composition_score)(A, B))
    if score is not None:
        assert score.shape == torch.broadcast_shapes(A.shape[:-2], B.shape[:-2]) and bool(score.isfinite().all())


@FUZZ
@given(st.one_of(st.none(), st.integers(-2, 4), st.booleans(), st.just("0")),
       st.one_of(st.none(), st.integers(-2, 3), st.just(1.0)),
       st.sampled_from(["q", "K", "v", "o", "", 1, None]))
def test_fuzz_heads_and_kinds(models, layer, head, kind):
    model, _ = models
    for fn in (qk_circuit, ov_circuit, full_ov_circuit):
        out = _clear(lambda: unchecked(fn)(model, layer, head))
        if out is not None:
            assert out.ndim == 4 - (layer is not None) - (head is not None)
    out = _clear(lambda: unchecked(composition_scores)(model, kind))
    assert (out is None) == (not (isinstance(kind, str) and kind.lower() in "qkv" and kind))
