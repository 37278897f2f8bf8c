"""QK and OV circuits, factored matrices, copying scores and composition scores.

A head's weights do two separate jobs (Elhage et al. 2021, "A Mathematical Framework for
Transformer Circuits"). Its **QK circuit** ``W_QK = W_Q W_K^T`` (``d_model x d_model``) decides
*where* it attends: the attention score from a query residual vector ``x_q`` to a key ``x_k`` is
``x_q W_Q W_K^T x_k^T`` (plus bias terms). Its **OV circuit** ``W_OV = W_V W_O`` decides *what*
it writes once it has attended: a source vector ``x`` adds ``x W_V W_O`` to the residual stream,
weighted by the pattern. Multiplying by the embedding and unembedding gives the **full
circuits**: ``W_E W_V W_O W_U`` (``d_vocab x d_vocab``) says which logits each source token raises,
and ``W_E W_Q W_K^T W_E^T`` (or ``W_pos ... W_pos^T``) which token (position) a token (position)
attends to. Each of these matrices has rank at most ``d_head``, so it is kept as a
`FactoredMatrix` ``A @ B`` and its SVD, eigenvalues and norm come from the small factors.

These circuits are read off the weights alone, so they ignore the LayerNorm in front of each
attention layer: its per-token scale, and its learned ``w, b`` unless a model had them folded into
``W_Q, W_K, W_V`` (TransformerLens's ``fold_ln``), as ARENA 1.2 notes for its attn-only model.
They are exact for the linear part of the model and an approximation for the whole.

* **Copying** (ARENA 1.2, "Reverse-engineering induction circuits"): an induction head should copy
  the token it attends to, so the row of its full OV circuit for source token ``t`` should be largest
  at column ``t``: `copying_score` with ``measure="top_k"`` is the fraction of tokens for which it
  is (within the top ``k``). Elhage et al. use the eigenvalues instead: a copying matrix has
  mostly positive eigenvalues, and ``sum(lambda) / sum(|lambda|)`` is 1 for the identity and -1
  for its negative (``measure="eigenvalues"``).
* **Composition** (Elhage et al. 2021; ARENA 1.2, "Composition scores"): a layer-1 head reads what
  a layer-0 head wrote through its queries (Q-composition), keys (K-) or values (V-composition).
  The score ``||W_A W_B||_F / (||W_A||_F ||W_B||_F)`` with ``W_A`` the sender's OV circuit and
  ``W_B`` the receiver's ``W_QK``, ``W_QK^T`` or ``W_OV`` measures how much of the sender's output
  space the receiver reads. Two unrelated matrices already score about ``1 / sqrt(d_model)``, so a
  score means something only against `random_composition_baseline`: the same score of random
  matrices of the same shapes and ranks.

Every function takes our `mechlearn.gpt.GPT` or a TransformerLens ``TransformerBridge`` (through
`mechlearn.interp.core.weights`); the results equal the bridge's ``OV``, ``QK`` and
``all_composition_scores(mode)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Complex, Float
from torch import Tensor

from mechlearn.interp.core import check_head, check_layer, model_spec, weights

__all__ = [
    "FactoredMatrix", "qk_circuit", "ov_circuit", "full_ov_circuit", "full_qk_circuit",
    "full_k_composition_circuit", "pos_attention_pattern", "copying_score", "copying_scores",
    "composition_score", "composition_scores", "CompositionBaseline", "random_composition_baseline",
    "COPYING_MEASURES", "COMPOSITION_KINDS",
]

COPYING_MEASURES = ("top_k", "eigenvalues")
"""The two copying measures: ARENA's own-token-in-the-top-k fraction and Elhage et al.'s eigenvalue ratio."""

COMPOSITION_KINDS = ("q", "k", "v")
"""Where a later head reads an earlier head's output: its queries, keys or values."""


def _check_factor(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} should be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} should be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} should be a matrix (..., rows, cols) with at least 2 axes, got shape {tuple(x.shape)}")
    return x


def _keep_axis(index: Any) -> Any:
    """An index for a matrix axis that keeps the axis (an int ``i`` becomes ``i:i+1``)."""
    if isinstance(index, Tensor) and index.ndim == 0:
        index = int(index)
    if isinstance(index, int) and not isinstance(index, bool):
        return slice(index, index + 1) if index != -1 else slice(-1, None)
    return index


class FactoredMatrix:
    """A matrix ``M = A @ B`` kept as its factors (TransformerLens's ``FactoredMatrix`` semantics).

    ``A`` is ``(..., ldim, mdim)`` and ``B`` is ``(..., mdim, rdim)``; leading (batch) axes such as
    ``(n_layers, n_heads)`` broadcast. When ``mdim`` is small (a head's ``d_head``), the
    ``ldim x rdim`` product has rank at most ``mdim``, and its SVD, nonzero eigenvalues and norm
    follow from ``mdim``-sized problems without ever forming ``M``.

    Args:
        A: the left factor, ``(..., ldim, mdim)``.
        B: the right factor, ``(..., mdim, rdim)``.

    Raises:
        TypeError: a factor is not a floating-point tensor.
        ValueError: a factor has fewer than 2 axes, the inner sizes differ, or the leading axes do
            not broadcast.
    """

    def __init__(self, A: Tensor, B: Tensor) -> None:
        A, B = _check_factor(A, "A"), _check_factor(B, "B")
        if A.shape[-1] != B.shape[-2]:
            raise ValueError(
                f"the inner sizes of a factored matrix A @ B must match: A is {tuple(A.shape)} (mdim "
                f"{A.shape[-1]}), B is {tuple(B.shape)} (mdim {B.shape[-2]})"
            )
        try:
            batch = torch.broadcast_shapes(A.shape[:-2], B.shape[:-2])
        except RuntimeError as err:
            raise ValueError(
                f"the leading axes of A {tuple(A.shape[:-2])} and B {tuple(B.shape[:-2])} should broadcast: {err}"
            ) from None
        self.ldim, self.mdim, self.rdim = A.shape[-2], A.shape[-1], B.shape[-1]
        self.shape = torch.Size(batch + (self.ldim, self.rdim))
        """``(*leading, ldim, rdim)``: the shape of the product."""
        self.A: Tensor = A.broadcast_to(batch + A.shape[-2:])
        """The left factor, ``(*leading, ldim, mdim)``."""
        self.B: Tensor = B.broadcast_to(batch + B.shape[-2:])
        """The right factor, ``(*leading, mdim, rdim)``."""

    @property
    def ndim(self) -> int:
        """Number of axes of the product (leading axes + 2)."""
        return len(self.shape)

    @property
    def AB(self) -> Float[Tensor, "*batch ldim rdim"]:
        """The product ``A @ B``, formed explicitly (``ldim x rdim`` per leading index)."""
        return self.A @ self.B

    @property
    def BA(self) -> Float[Tensor, "*batch mdim mdim"]:
        """The reversed product ``B @ A`` (``mdim x mdim``); defined when ``ldim == rdim``.

        Raises:
            ValueError: the matrix is not square.
        """
        if self.ldim != self.rdim:
            raise ValueError(f"BA needs a square matrix (ldim == rdim), got shape {tuple(self.shape)}")
        return self.B @ self.A

    @property
    def T(self) -> FactoredMatrix:
        """The transpose, ``B^T @ A^T``, still factored."""
        return FactoredMatrix(self.B.transpose(-2, -1), self.A.transpose(-2, -1))

    def __matmul__(self, other: Any) -> Any:
        """``M @ other``: factored for a matrix or `FactoredMatrix`, a tensor for a vector.

        With a matrix, the factor that keeps the inner size smallest absorbs it, as TransformerLens
        does: ``A @ (B @ other)`` when ``rdim > mdim``, else ``(A @ B) @ other``.

        Raises:
            TypeError: ``other`` is neither a tensor nor a `FactoredMatrix`.
            ValueError: its rows do not match ``rdim``.
        """
        if isinstance(other, FactoredMatrix):
            return (self @ other.A) @ other.B
        if not isinstance(other, Tensor):
            return NotImplemented
        if other.shape[-2 if other.ndim >= 2 else -1] != self.rdim:
            raise ValueError(f"cannot multiply a factored matrix of shape {tuple(self.shape)} by a tensor of shape "
                             f"{tuple(other.shape)}: its rows should number rdim={self.rdim}")
        if other.ndim < 2:
            return (self.A @ (self.B @ other.unsqueeze(-1))).squeeze(-1)
        if self.rdim > self.mdim:
            return FactoredMatrix(self.A, self.B @ other)
        return FactoredMatrix(self.AB, other)

    def __rmatmul__(self, other: Any) -> Any:
        """``other @ M``: factored for a matrix, a tensor for a vector (mirror of `__matmul__`).

        Raises:
            ValueError: ``other``'s columns do not match ``ldim``.
        """
        if not isinstance(other, Tensor):
            return NotImplemented
        if other.shape[-1] != self.ldim:
            raise ValueError(f"cannot multiply a tensor of shape {tuple(other.shape)} by a factored matrix of shape "
                             f"{tuple(self.shape)}: its columns should number ldim={self.ldim}")
        if other.ndim < 2:
            return ((other.unsqueeze(-2) @ self.A) @ self.B).squeeze(-2)
        if self.ldim > self.mdim:
            return FactoredMatrix(other @ self.A, self.B)
        return FactoredMatrix(other, self.AB)

    def __mul__(self, scalar: Any) -> FactoredMatrix:
        """``c * M``, by scaling ``A``.

        Raises:
            TypeError: ``scalar`` is not a number or a one-element tensor.
        """
        if isinstance(scalar, Tensor) and scalar.numel() != 1 or not isinstance(scalar, (int, float, Tensor)):
            raise TypeError(f"a factored matrix can be multiplied by a number or a one-element tensor, got {scalar!r}; "
                            "for a matrix product use @")
        return FactoredMatrix(self.A * scalar, self.B)

    __rmul__ = __mul__

    def svd(self) -> tuple[Float[Tensor, "*batch ldim k"], Float[Tensor, "*batch k"], Float[Tensor, "*batch rdim k"]]:
        """``(U, S, V)`` with ``M = U @ diag(S) @ V^T``, from the factors.

        Orthonormalise each side by QR, ``A = Q_a R_a`` and ``B^T = Q_b R_b``, so that
        ``M = Q_a (R_a R_b^T) Q_b^T``; the SVD of the small core ``R_a R_b^T = U_c S V_c^T`` gives
        ``U = Q_a U_c`` and ``V = Q_b V_c``. ``k = min(ldim, mdim, rdim)``, singular values descending.
        """
        Q_a, R_a = torch.linalg.qr(self.A)
        Q_b, R_b = torch.linalg.qr(self.B.transpose(-2, -1))
        U_c, S, V_c_h = torch.linalg.svd(R_a @ R_b.transpose(-2, -1), full_matrices=False)
        return Q_a @ U_c, S, Q_b @ V_c_h.transpose(-2, -1)

    @property
    def U(self) -> Float[Tensor, "*batch ldim k"]:
        """Left singular vectors (see `svd`)."""
        return self.svd()[0]

    @property
    def S(self) -> Float[Tensor, "*batch k"]:
        """Singular values, descending (see `svd`)."""
        return self.svd()[1]

    @property
    def V(self) -> Float[Tensor, "*batch rdim k"]:
        """Right singular vectors, as columns: ``M = U diag(S) V^T`` (see `svd`)."""
        return self.svd()[2]

    @property
    def eigenvalues(self) -> Complex[Tensor, "*batch mdim"]:
        """The eigenvalues of ``B @ A``: those of ``M = A @ B`` apart from its extra zeros.

        If ``B A v = lambda v`` then ``A B (A v) = lambda (A v)``, so every nonzero eigenvalue of the
        small ``mdim x mdim`` matrix is one of ``M`` and vice versa.

        Raises:
            ValueError: the matrix is not square.
        """
        return torch.linalg.eigvals(self.BA)

    def norm(self) -> Float[Tensor, "*batch"]:
        """The Frobenius norm, ``sqrt(sum of squared singular values)``, per leading index."""
        return self.S.pow(2).sum(-1).sqrt()

    def __getitem__(self, index: Any) -> FactoredMatrix:
        """Index the leading axes, then rows, then columns, without forming the product.

        An int on a row or column axis keeps that axis (``M[0]`` of a 2-d matrix is its first row as
        a ``1 x rdim`` factored matrix), as TransformerLens does.

        Raises:
            IndexError: more indices than axes, or ``None``/``...`` (not supported).
        """
        index = index if isinstance(index, tuple) else (index,)
        if any(i is None or i is Ellipsis for i in index):
            raise IndexError("a FactoredMatrix takes ints, slices and index tensors (not None or ...)")
        if len(index) > self.ndim:
            raise IndexError(f"{len(index)} indices for a factored matrix with {self.ndim} axes {tuple(self.shape)}")
        n_lead = self.ndim - 2
        A, B = self.A[index[:n_lead]], self.B[index[:n_lead]]
        rest = index[n_lead:]
        if len(rest) >= 1:
            A = A[..., _keep_axis(rest[0]), :]
        if len(rest) == 2:
            B = B[..., :, _keep_axis(rest[1])]
        return FactoredMatrix(A, B)

    def __repr__(self) -> str:
        return f"FactoredMatrix(shape={tuple(self.shape)}, mdim={self.mdim}, dtype={self.A.dtype})"


def _select(model: Any, W: Tensor, layer: Any, head: Any) -> Tensor:
    """``W`` (``L, H, ...``) for every head, one layer's heads, or one head."""
    if layer is None:
        if head is not None:
            raise ValueError(f"got head={head!r} without a layer: a head needs its layer (pass both, or neither for every head)")
        return W
    if head is None:
        return W[check_layer(model, layer)]
    return W[check_head(model, layer, head)]


def _qk(model: Any, layer: Any, head: Any) -> FactoredMatrix:
    w = weights(model)
    return FactoredMatrix(_select(model, w.W_Q, layer, head).detach(),
                          _select(model, w.W_K, layer, head).detach().transpose(-2, -1))


def _ov(model: Any, layer: Any, head: Any) -> FactoredMatrix:
    w = weights(model)
    return FactoredMatrix(_select(model, w.W_V, layer, head).detach(), _select(model, w.W_O, layer, head).detach())


def qk_circuit(model: Any, layer: int | None = None, head: int | None = None) -> FactoredMatrix:
    """The QK circuit ``W_Q W_K^T``: ``(L, H, d_model, d_model)``, or one layer's ``(H, ...)``, or one head's.

    The attention score from query vector ``x_q`` to key vector ``x_k`` is ``x_q W_Q W_K^T x_k^T``
    (plus bias terms, and before the ``1/sqrt(d_head)`` scale). The LayerNorm in front of the
    attention layer is ignored (see the module docstring). Equals a bridge's ``QK``.

    Raises:
        ValueError: ``layer`` or ``head`` out of range, or a head without a layer.
    """
    return _qk(model, layer, head)


def ov_circuit(model: Any, layer: int | None = None, head: int | None = None) -> FactoredMatrix:
    """The OV circuit ``W_V W_O``: ``(L, H, d_model, d_model)``, or one layer's, or one head's.

    A head that attends fully to a source vector ``x`` adds ``x W_V W_O`` (plus ``b_V W_O``) to the
    residual stream; the LayerNorm before it is ignored. Equals a bridge's ``OV``.

    Raises:
        ValueError: ``layer`` or ``head`` out of range, or a head without a layer.
    """
    return _ov(model, layer, head)


def full_ov_circuit(model: Any, layer: int | None = None, head: int | None = None) -> FactoredMatrix:
    """The full OV circuit ``W_E W_V W_O W_U`` (``d_vocab x d_vocab`` per head).

    Row ``s`` is the direct effect on every logit of the head attending to a position holding token
    ``s`` (ignoring the positional embedding, the LayerNorms, the biases, and other layers): ARENA
    1.2's ``W_E @ OV @ W_U``. A copying head has this matrix's diagonal on top (`copying_score`).

    Raises:
        ValueError: ``layer`` or ``head`` out of range, or a head without a layer.
    """
    w = weights(model)
    return w.W_E.detach() @ _ov(model, layer, head) @ w.W_U.detach()


_SIDES = ("token", "pos")


def _embedding(model: Any, side: str, which: str) -> Tensor:
    if side not in _SIDES:
        raise ValueError(f"{which} should be one of {_SIDES} (token embedding W_E or positional W_pos), got {side!r}")
    w = weights(model)
    return (w.W_E if side == "token" else w.W_pos).detach()


def full_qk_circuit(model: Any, layer: int | None = None, head: int | None = None, query: str = "token",
                    key: str = "token") -> FactoredMatrix:
    """The full QK circuit ``X_q W_Q W_K^T X_k^T``, with ``X`` the token (``W_E``) or positional (``W_pos``) embedding.

    ``query="token", key="token"`` is ``W_E W_Q W_K^T W_E^T`` (``d_vocab x d_vocab``): which token
    attends to which. ``query="pos", key="pos"`` is ``W_pos W_Q W_K^T W_pos^T`` (``n_ctx x
    n_ctx``): a previous-token head has its mass on the sub-diagonal (ARENA 1.2). Rows are query
    positions or tokens, columns keys. Raw scores: no ``1/sqrt(d_head)``, no mask, no LayerNorm.

    Raises:
        ValueError: ``query``/``key`` not ``"token"`` or ``"pos"``, or a bad layer or head.
    """
    X_q, X_k = _embedding(model, query, "query"), _embedding(model, key, "key")
    return X_q @ _qk(model, layer, head) @ X_k.T


def pos_attention_pattern(model: Any, layer: int, head: int, ln: bool = False) -> Float[Tensor, "n_ctx n_ctx"]:
    """The attention pattern a head would have from positions alone (rows queries, columns keys).

    ``ln=False`` is ARENA 1.2's weights-only reading, ``softmax(mask(W_pos W_QK W_pos^T /
    sqrt(d_head)))``: no LayerNorm, no biases. A real head sees ``LN(x)``, and LayerNorm divides
    the stream by its scale before ``W_Q`` and ``W_K``, which multiplies every score by ``1/scale^2``
    and so sharpens or flattens the softmax. ``ln=True`` passes each row of ``W_pos`` through the
    block's LayerNorm (``blocks[layer].ln1``, with its weight and bias) and adds ``b_Q, b_K``: the
    pattern the head would have if the stream held the positional embedding alone. Either way a
    previous-token head has its mass on the sub-diagonal ``pattern.diagonal(-1)``; future keys get 0.

    Raises:
        ValueError: ``layer`` or ``head`` out of range.
    """
    check_head(model, layer, head)
    if not ln:
        scores = full_qk_circuit(model, layer, head, "pos", "pos").AB
    else:
        w = weights(model)
        with torch.no_grad():
            x = model.blocks[layer].ln1(w.W_pos.detach())
        q = x @ w.W_Q[layer, head].detach() + w.b_Q[layer, head].detach()
        k = x @ w.W_K[layer, head].detach() + w.b_K[layer, head].detach()
        scores = q @ k.T
    scores = scores / math.sqrt(model_spec(model).d_head)
    future = torch.triu(torch.ones_like(scores, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def full_k_composition_circuit(model: Any, sender: tuple[int, int], receiver: tuple[int, int]) -> FactoredMatrix:
    """The full K-composition circuit ``W_E W_QK^{receiver} (W_E W_OV^{sender})^T`` (``d_vocab x d_vocab``).

    Entry ``(a, b)``: the score with which a query holding token ``a`` attends to a key position
    into which the ``sender`` head has copied token ``b`` (ARENA 1.2's ``find_K_comp_full_circuit``,
    for a previous-token sender: the token *before* the key). For an induction head fed by a
    previous-token head it is near-diagonal: "attend to where my token came before".

    Raises:
        ValueError: a bad head, or a receiver not in a later layer than the sender.
    """
    (ls, hs), (lr, hr) = check_head(model, *sender), check_head(model, *receiver)
    if lr <= ls:
        raise ValueError(f"the receiver {receiver} should be in a later layer than the sender {sender}")
    W_E = weights(model).W_E.detach()
    return W_E @ _qk(model, lr, hr) @ (W_E @ _ov(model, ls, hs)).T


def _as_factored(matrix: Any) -> FactoredMatrix:
    if isinstance(matrix, FactoredMatrix):
        return matrix
    matrix = _check_factor(matrix, "matrix")
    return FactoredMatrix(matrix, torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device))


def copying_score(matrix: FactoredMatrix | Tensor, measure: str = "top_k", k: int = 1,
                  batch_size: int = 1024) -> Float[Tensor, "*batch"]:
    """How much a square circuit (a full OV circuit, rows = source tokens) copies, per leading index.

    * ``measure="top_k"`` (ARENA 1.2): the fraction of rows ``t`` whose own column ``t`` is among
      the row's ``k`` largest entries; 1 for the identity, 0 for its negative (``d_vocab > k``).
      Rows are formed ``batch_size`` at a time, so a GPT-2-sized vocabulary fits in memory.
    * ``measure="eigenvalues"`` (Elhage et al. 2021): ``sum(lambda) / sum(|lambda|)`` over the
      eigenvalues (the nonzero ones, from ``B A``); +1 for the identity, -1 for its negative, and
      NaN (0/0, undefined) where every eigenvalue is 0, e.g. a head whose output ``W_U`` cannot read.

    Raises:
        ValueError: a non-square matrix, an unknown measure, or ``k`` outside ``[1, d_vocab]``.
    """
    M = _as_factored(matrix)
    if M.ldim != M.rdim:
        raise ValueError(f"a copying score needs a square matrix (source token x output token), got {tuple(M.shape)}")
    if measure not in COPYING_MEASURES:
        raise ValueError(f"measure should be one of {COPYING_MEASURES}, got {measure!r}")
    if measure == "eigenvalues":
        lam = M.eigenvalues
        return lam.sum(-1).real / lam.abs().sum(-1)  # 0/0 = NaN where every eigenvalue is 0
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= M.rdim:
        raise ValueError(f"k should be an int in [1, {M.rdim}] (the number of columns), got {k!r}")
    hits = torch.zeros(M.shape[:-2], dtype=M.A.dtype, device=M.A.device)
    for start in range(0, M.ldim, batch_size):
        rows = torch.arange(start, min(start + batch_size, M.ldim), device=M.A.device)
        top = (M.A[..., rows, :] @ M.B).topk(k, dim=-1).indices
        hits += (top == rows[:, None]).any(-1).sum(-1).to(hits.dtype)
    return hits / M.ldim


def copying_scores(model: Any, measure: str = "top_k", k: int = 1) -> Float[Tensor, "n_layers n_heads"]:
    """`copying_score` of every head's full OV circuit, as a ``(n_layers, n_heads)`` table.

    Raises:
        ValueError: an unknown measure or a bad ``k``.
    """
    return copying_score(full_ov_circuit(model), measure=measure, k=k)


def _frobenius(M: FactoredMatrix | Tensor) -> Tensor:
    return M.norm() if isinstance(M, FactoredMatrix) else torch.linalg.matrix_norm(M)


def composition_score(W_A: FactoredMatrix | Tensor, W_B: FactoredMatrix | Tensor) -> Float[Tensor, "*batch"]:
    """``||W_A W_B||_F / (||W_A||_F ||W_B||_F)`` (Elhage et al. 2021), per broadcast leading index.

    ``W_A`` is the sender's OV circuit (what it writes), ``W_B`` what the receiver reads with: its
    ``W_QK`` (Q-composition), ``W_QK^T`` (K-) or ``W_OV`` (V-composition). The score is 1 when the
    product keeps all of ``W_A``'s norm in ``W_B``'s strongest direction (rank one, aligned), 0 when
    ``W_B`` ignores everything ``W_A`` writes, and invariant to rescaling either matrix.

    Raises:
        ValueError: ``W_A``'s columns and ``W_B``'s rows differ in number, or a norm is zero.
    """
    for name, M in (("W_A", W_A), ("W_B", W_B)):
        if not isinstance(M, FactoredMatrix):
            _check_factor(M, name)
    if W_A.shape[-1] != W_B.shape[-2]:
        raise ValueError(f"W_A @ W_B needs W_A's columns to match W_B's rows, got shapes {tuple(W_A.shape)} "
                         f"and {tuple(W_B.shape)}")
    norms = _frobenius(W_A) * _frobenius(W_B)
    if bool((norms == 0).any()):
        raise ValueError("the composition score is undefined for a zero matrix (its norm is 0)")
    return _frobenius(W_A @ W_B) / norms


def _pairs(left: FactoredMatrix, right: FactoredMatrix) -> tuple[FactoredMatrix, FactoredMatrix]:
    """Every (sender, receiver) pair: ``left`` gets two new trailing batch axes, ``right`` two leading."""
    left = FactoredMatrix(left.A[:, :, None, None], left.B[:, :, None, None])
    return left, FactoredMatrix(right.A[None, None], right.B[None, None])


def composition_scores(model: Any, kind: str) -> Float[Tensor, "n_layers n_heads n_layers n_heads"]:
    """Composition scores of every head pair: ``scores[l1, h1, l2, h2]``, zero unless ``l1 < l2``.

    The sender ``(l1, h1)``'s OV circuit against the receiver ``(l2, h2)``'s ``W_QK`` (``kind="q"``),
    ``W_QK^T`` (``"k"``) or ``W_OV`` (``"v"``); TransformerLens's ``all_composition_scores(mode)``
    (its ``"Q"``, ``"K"``, ``"V"`` are accepted too). Read them against `random_composition_baseline`.

    Raises:
        ValueError: ``kind`` is not one of q, k, v.
    """
    if not isinstance(kind, str) or kind.lower() not in COMPOSITION_KINDS:
        raise ValueError(f"kind should be one of {COMPOSITION_KINDS} (queries, keys or values), got {kind!r}")
    kind = kind.lower()
    left = _ov(model, None, None)
    right = {"q": _qk, "k": lambda *a: _qk(*a).T, "v": _ov}[kind](model, None, None)
    scores = composition_score(*_pairs(left, right))
    layer = torch.arange(model_spec(model).n_layers, device=scores.device)
    later = (layer[:, None, None, None] < layer[None, None, :, None]).expand_as(scores)
    return torch.where(later, scores, torch.zeros_like(scores))


@dataclass(frozen=True)
class CompositionBaseline:
    """Composition scores of random matrices with a model's shapes: what a score means by chance."""

    samples: Float[Tensor, "n_samples"]
    """One score per pair of random rank-``d_head`` ``d_model x d_model`` matrices."""
    d_model: int
    """Width of the random matrices."""
    d_head: int
    """Their rank (the inner size of each factor pair)."""

    @property
    def mean(self) -> float:
        """The mean random score (close to ``1 / sqrt(d_model)``)."""
        return float(self.samples.mean())

    @property
    def std(self) -> float:
        """The standard deviation of the random scores."""
        return float(self.samples.std())

    def quantile(self, q: float | int) -> float:
        """The ``q``-quantile of the random scores (``quantile(0.99)``: 1 random pair in 100 scores higher)."""
        return float(torch.quantile(self.samples.double(), float(q)))


def random_composition_baseline(model: Any = None, n_samples: int = 300, *, d_model: int | None = None,
                                d_head: int | None = None, generator: torch.Generator | None = None,
                                distribution: str = "normal") -> CompositionBaseline:
    """The composition score of random matrices of the same shapes, ``n_samples`` times (ARENA 1.2).

    Each sample draws four ``d_model x d_head`` factors, forms ``W_A = L_A R_A^T`` and ``W_B = L_B
    R_B^T`` (rank ``d_head``, like an OV or QK circuit) and scores them with `composition_score`.
    ``distribution="normal"`` draws Gaussian entries; ``"uniform"`` draws uniform ones, as ARENA's
    ``kaiming_uniform_`` (the scale does not matter: the score is scale-free).

    Args:
        model: a GPT or bridge to read ``d_model`` and ``d_head`` from, or None to pass them.
        n_samples: how many random pairs.
        generator: the torch generator to draw from (explicit randomness).

    Raises:
        ValueError: neither a model nor both sizes, a bad size, or an unknown distribution.
    """
    if model is not None:
        spec = model_spec(model)
        d_model, d_head = spec.d_model, spec.d_head
    for name, value in (("d_model", d_model), ("d_head", d_head), ("n_samples", n_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} should be a positive int (or pass a model), got {value!r}")
    if distribution not in ("normal", "uniform"):
        raise ValueError(f"distribution should be 'normal' or 'uniform', got {distribution!r}")
    draw = torch.randn if distribution == "normal" else torch.rand
    L_A, R_A, L_B, R_B = (draw(n_samples, d_model, d_head, generator=generator, dtype=torch.float64) for _ in range(4))
    if distribution == "uniform":
        L_A, R_A, L_B, R_B = (2 * x - 1 for x in (L_A, R_A, L_B, R_B))
    scores = composition_score(FactoredMatrix(L_A, R_A.transpose(-2, -1)), FactoredMatrix(L_B, R_B.transpose(-2, -1)))
    return CompositionBaseline(scores, d_model, d_head)
