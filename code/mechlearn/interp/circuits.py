"""QK and OV circuits, factored matrices, copying scores and composition scores.

A head's weights do two separate jobs (Elhage et al. 2021, "A Mathematical Framework
for Transformer Circuits"). Its **QK circuit** ``W_QK = W_Q W_K^T`` (``d_model x
d_model``) decides *where* it attends: the score from a query vector ``x_q`` to a
key ``x_k`` is ``x_q W_Q W_K^T x_k^T`` (plus bias terms). Its **OV circuit** ``W_OV
= W_V W_O`` decides *what* it writes once it has attended: a source vector ``x``
adds ``x W_V W_O`` to the residual stream, weighted by the pattern. Multiplying by
the embedding and unembedding gives the **full circuits**: ``W_E W_V W_O W_U``
(``d_vocab x d_vocab``) says which logits each source token raises, and ``W_E W_Q
W_K^T W_E^T`` (or ``W_pos ... W_pos^T``) which token (position) attends to which.
Each of these matrices has rank at most ``d_head``, so it is kept as a
`FactoredMatrix` ``A @ B``, whose SVD, eigenvalues and norm come from the small
factors.

These circuits are read off the weights alone, so they ignore the LayerNorm in front
of each attention layer: its per-position scale, and its learned ``w, b`` unless a
model had them folded into ``W_Q, W_K, W_V`` (TransformerLens's ``fold_ln``). ARENA
1.2's attention-only model has no LayerNorm, so there they are exact; in a model with
one they are an approximation (`pos_attention_pattern` can put the LayerNorm back).

* **Copying** (ARENA 1.2, "Reverse-engineering induction circuits"): an induction
  head copies the token it attends to, so the row of its full OV circuit for source
  token ``t`` is largest at column ``t``: `copying_score` with ``measure="top_k"``
  is the fraction of tokens for which it is (within the top ``k``). Elhage et al.
  use the eigenvalues instead: a copying matrix has mostly positive eigenvalues, and
  ``sum(lambda) / sum(|lambda|)`` is 1 for the identity and -1 for its negative.
* **Composition** (Elhage et al. 2021; ARENA 1.2, "Composition scores"): a layer-1
  head reads what a layer-0 head wrote through its queries (Q-composition), keys
  (K-) or values (V-composition). The score ``||W_A W_B||_F / (||W_A||_F
  ||W_B||_F)``, with ``W_A`` the sender's OV circuit and ``W_B`` the receiver's
  ``W_QK``, ``W_QK^T`` or ``W_OV``, measures how much of the sender's output the
  receiver reads. Two unrelated matrices already score about ``1 / sqrt(d_model)``,
  so a score means something only against `random_composition_baseline`: the scores
  of random matrices of the same shapes.

Every function takes our `mechlearn.gpt.GPT` or a TransformerLens
``TransformerBridge`` (through `mechlearn.interp.core.weights`); the results equal
the bridge's ``OV``, ``QK`` and ``all_composition_scores(mode)``.
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
    "FactoredMatrix", "qk_circuit", "ov_circuit", "full_ov_circuit",
    "full_qk_circuit", "full_k_composition_circuit", "pos_attention_pattern",
    "copying_score", "copying_scores", "composition_score", "composition_scores",
    "CompositionBaseline", "random_composition_baseline", "COPYING_MEASURES",
    "COMPOSITION_KINDS",
]

COPYING_MEASURES = ("top_k", "eigenvalues")
"""The copying measures: ARENA's own-token-in-the-top-k fraction, Elhage et al.'s
eigenvalue ratio."""

COMPOSITION_KINDS = ("q", "k", "v")
"""Where a later head reads an earlier head's output: queries, keys or values."""


def _check_factor(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} should be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} should be a floating-point tensor, "
                        f"got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} should be a matrix (..., rows, cols) with at "
                         f"least 2 axes, got shape {tuple(x.shape)}")
    return x


def _keep_axis(index: Any) -> Any:
    """An index that keeps a matrix axis (an int ``i`` becomes ``i:i+1``)."""
    if isinstance(index, Tensor) and index.ndim == 0:
        index = int(index)
    if isinstance(index, int) and not isinstance(index, bool):
        return slice(index, index + 1) if index != -1 else slice(-1, None)
    return index


class FactoredMatrix:
    """A matrix ``M = A @ B`` kept as its factors (as TransformerLens's class).

    ``A`` is ``(..., ldim, mdim)`` and ``B`` is ``(..., mdim, rdim)``; leading
    (batch) axes such as ``(n_layers, n_heads)`` broadcast. When ``mdim`` is small
    (a head's ``d_head``), the ``ldim x rdim`` product has rank at most ``mdim``,
    and its SVD, nonzero eigenvalues and norm follow from ``mdim``-sized problems
    without forming ``M``.

    Args:
        A: the left factor, ``(..., ldim, mdim)``.
        B: the right factor, ``(..., mdim, rdim)``.

    Raises:
        TypeError: a factor is not a floating-point tensor.
        ValueError: a factor has fewer than 2 axes, the inner sizes differ, or the
            leading axes do not broadcast.
    """

    def __init__(self, A: Tensor, B: Tensor) -> None:
        A, B = _check_factor(A, "A"), _check_factor(B, "B")
        if A.shape[-1] != B.shape[-2]:
            raise ValueError(
                f"the inner sizes of a factored matrix A @ B must match: A is "
                f"{tuple(A.shape)} (mdim {A.shape[-1]}), B is {tuple(B.shape)} "
                f"(mdim {B.shape[-2]})"
            )
        try:
            batch = torch.broadcast_shapes(A.shape[:-2], B.shape[:-2])
        except RuntimeError as err:
            raise ValueError(f"the leading axes of A {tuple(A.shape[:-2])} and B "
                             f"{tuple(B.shape[:-2])} should broadcast: {err}"
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
        """The product ``A @ B``, formed (``ldim x rdim`` per leading index)."""
        return self.A @ self.B

    @property
    def BA(self) -> Float[Tensor, "*batch mdim mdim"]:
        """The reversed product ``B @ A`` (``mdim x mdim``), for a square matrix.

        Raises:
            ValueError: the matrix is not square.
        """
        if self.ldim != self.rdim:
            raise ValueError(f"BA needs a square matrix (ldim == rdim), got shape "
                             f"{tuple(self.shape)}")
        return self.B @ self.A

    @property
    def T(self) -> FactoredMatrix:
        """The transpose, ``B^T @ A^T``, still factored."""
        return FactoredMatrix(self.B.transpose(-2, -1), self.A.transpose(-2, -1))

    def __matmul__(self, other: Any) -> Any:
        """``M @ other``: factored for a matrix, a tensor for a vector.

        With a matrix, the factor that keeps the inner size smallest absorbs it, as
        TransformerLens does: ``A @ (B @ other)`` when ``rdim > mdim``, else ``(A @
        B) @ other``.

        Raises:
            ValueError: ``other``'s rows do not match ``rdim``.
        """
        if isinstance(other, FactoredMatrix):
            return (self @ other.A) @ other.B
        if not isinstance(other, Tensor):
            return NotImplemented
        if other.shape[-2 if other.ndim >= 2 else -1] != self.rdim:
            raise ValueError(f"cannot multiply a factored matrix of shape "
                             f"{tuple(self.shape)} by a tensor of shape "
                             f"{tuple(other.shape)}: its rows should number "
                             f"{self.rdim}")
        if other.ndim < 2:
            return (self.A @ (self.B @ other.unsqueeze(-1))).squeeze(-1)
        if self.rdim > self.mdim:
            return FactoredMatrix(self.A, self.B @ other)
        return FactoredMatrix(self.AB, other)

    def __rmatmul__(self, other: Any) -> Any:
        """``other @ M``: factored for a matrix, a tensor for a vector.

        Raises:
            ValueError: ``other``'s columns do not match ``ldim``.
        """
        if not isinstance(other, Tensor):
            return NotImplemented
        if other.shape[-1] != self.ldim:
            raise ValueError(f"cannot multiply a tensor of shape "
                             f"{tuple(other.shape)} by a factored matrix of shape "
                             f"{tuple(self.shape)}: its columns should number "
                             f"{self.ldim}")
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
        number = isinstance(scalar, (int, float)) or (
            isinstance(scalar, Tensor) and scalar.numel() == 1)
        if not number:
            raise TypeError(f"a factored matrix can be multiplied by a number or a "
                            f"one-element tensor, got {scalar!r}; for a product, @")
        return FactoredMatrix(self.A * scalar, self.B)

    __rmul__ = __mul__

    def svd(self) -> tuple[
        Float[Tensor, "*batch ldim k"], Float[Tensor, "*batch k"],
        Float[Tensor, "*batch rdim k"]
    ]:
        """``(U, S, V)`` with ``M = U @ diag(S) @ V^T``, computed from the factors.

        Orthonormalise each side by QR, ``A = Q_a R_a`` and ``B^T = Q_b R_b``, so
        that ``M = Q_a (R_a R_b^T) Q_b^T``; the SVD of the small core ``R_a R_b^T =
        U_c S V_c^T`` gives ``U = Q_a U_c`` and ``V = Q_b V_c``. ``k = min(ldim,
        mdim, rdim)``; the singular values come in descending order.
        """
        Q_a, R_a = torch.linalg.qr(self.A)
        Q_b, R_b = torch.linalg.qr(self.B.transpose(-2, -1))
        core = R_a @ R_b.transpose(-2, -1)  # (k_a, k_b), k_a = min(ldim, mdim)
        U_c, S, V_c_h = torch.linalg.svd(core, full_matrices=False)
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
        """The eigenvalues of ``B @ A``: those of ``M = A @ B`` but its extra zeros.

        If ``B A v = lambda v`` then ``A B (A v) = lambda (A v)``, so every nonzero
        eigenvalue of the small ``mdim x mdim`` matrix is one of ``M``, and vice
        versa.

        Raises:
            ValueError: the matrix is not square.
        """
        return torch.linalg.eigvals(self.BA)

    def norm(self) -> Float[Tensor, "*batch"]:
        """The Frobenius norm, ``sqrt(sum of squared singular values)``."""
        return self.S.pow(2).sum(-1).sqrt()

    def __getitem__(self, index: Any) -> FactoredMatrix:
        """Index the leading axes, then rows, then columns, without forming ``M``.

        An int on a row or column axis keeps that axis (``M[0]`` of a 2-d matrix is
        its first row, a ``1 x rdim`` factored matrix), as TransformerLens does.

        Raises:
            IndexError: more indices than axes, or ``None``/``...`` (not supported).
        """
        index = index if isinstance(index, tuple) else (index,)
        if any(i is None or i is Ellipsis for i in index):
            raise IndexError("a FactoredMatrix takes ints, slices and index "
                             "tensors (not None or ...)")
        if len(index) > self.ndim:
            raise IndexError(f"{len(index)} indices for a factored matrix with "
                             f"{self.ndim} axes {tuple(self.shape)}")
        n_lead = self.ndim - 2
        A, B = self.A[index[:n_lead]], self.B[index[:n_lead]]
        rest = index[n_lead:]
        if len(rest) >= 1:
            A = A[..., _keep_axis(rest[0]), :]
        if len(rest) == 2:
            B = B[..., :, _keep_axis(rest[1])]
        return FactoredMatrix(A, B)

    def __repr__(self) -> str:
        return (f"FactoredMatrix(shape={tuple(self.shape)}, mdim={self.mdim}, "
                f"dtype={self.A.dtype})")


def _select(model: Any, W: Tensor, layer: Any, head: Any) -> Tensor:
    """``W`` (``L, H, ...``) for every head, one layer's heads, or one head."""
    if layer is None:
        if head is not None:
            raise ValueError(f"got head={head!r} without a layer: a head needs its "
                             "layer (pass both, or neither for every head)")
        return W
    if head is None:
        return W[check_layer(model, layer)]
    return W[check_head(model, layer, head)]


def _qk(model: Any, layer: Any, head: Any) -> FactoredMatrix:
    w = weights(model)
    W_Q = _select(model, w.W_Q, layer, head).detach()
    W_K = _select(model, w.W_K, layer, head).detach()
    return FactoredMatrix(W_Q, W_K.transpose(-2, -1))


def _ov(model: Any, layer: Any, head: Any) -> FactoredMatrix:
    w = weights(model)
    W_V = _select(model, w.W_V, layer, head).detach()
    W_O = _select(model, w.W_O, layer, head).detach()
    return FactoredMatrix(W_V, W_O)


def qk_circuit(model: Any, layer: int | None = None, head: int | None = None
               ) -> FactoredMatrix:
    """The QK circuit ``W_Q W_K^T`` of every head, of one layer's heads, or of one.

    Shape ``(n_layers, n_heads, d_model, d_model)`` for every head (``layer`` and
    ``head`` None), ``(n_heads, d_model, d_model)`` for one layer's heads, and
    ``(d_model, d_model)`` for one head.

    The attention score from query vector ``x_q`` to key vector ``x_k`` is ``x_q W_Q
    W_K^T x_k^T`` (plus bias terms, before the ``1/sqrt(d_head)`` scale). The
    LayerNorm in front of the attention layer is ignored (see the module docstring).
    Equals a bridge's ``QK``.

    Raises:
        ValueError: ``layer`` or ``head`` out of range, or a head without a layer.
    """
    return _qk(model, layer, head)


def ov_circuit(model: Any, layer: int | None = None, head: int | None = None
               ) -> FactoredMatrix:
    """The OV circuit ``W_V W_O`` of every head, of one layer's heads, or of one.

    Shape ``(n_layers, n_heads, d_model, d_model)`` for every head (``layer`` and
    ``head`` None), ``(n_heads, d_model, d_model)`` for one layer's heads, and
    ``(d_model, d_model)`` for one head.

    A head that attends fully to a source vector ``x`` adds ``x W_V W_O`` (plus
    ``b_V W_O``) to the residual stream; the LayerNorm before it is ignored. Equals
    a bridge's ``OV``.

    Raises:
        ValueError: ``layer`` or ``head`` out of range, or a head without a layer.
    """
    return _ov(model, layer, head)


def full_ov_circuit(model: Any, layer: int | None = None, head: int | None = None
                    ) -> FactoredMatrix:
    """The full OV circuit ``W_E W_V W_O W_U`` (``d_vocab x d_vocab`` per head).

    Row ``s`` is the direct effect on every logit of the head attending to a
    position holding token ``s`` (ignoring the positional embedding, the LayerNorms,
    the biases and the other layers): ARENA 1.2's ``W_E @ OV @ W_U``. A copying head
    has the largest entry of each row on the diagonal (`copying_score`).

    Raises:
        ValueError: ``layer`` or ``head`` out of range, or a head without a layer.
    """
    w = weights(model)
    return w.W_E.detach() @ _ov(model, layer, head) @ w.W_U.detach()


_SIDES = ("token", "pos")


def _embedding(model: Any, side: str, which: str) -> Tensor:
    if side not in _SIDES:
        raise ValueError(f"{which} should be one of {_SIDES} (token embedding W_E "
                         f"or positional W_pos), got {side!r}")
    w = weights(model)
    return (w.W_E if side == "token" else w.W_pos).detach()


def full_qk_circuit(model: Any, layer: int | None = None, head: int | None = None,
                    query: str = "token", key: str = "token") -> FactoredMatrix:
    """The full QK circuit ``X_q W_Q W_K^T X_k^T``, ``X`` = ``W_E`` or ``W_pos``.

    ``query="token", key="token"`` is ``W_E W_Q W_K^T W_E^T`` (``d_vocab x
    d_vocab``): which token attends to which. ``query="pos", key="pos"`` is ``W_pos
    W_Q W_K^T W_pos^T`` (``n_ctx x n_ctx``), where a previous-token head has its
    mass on the sub-diagonal (ARENA 1.2). Rows are queries, columns keys. Raw
    scores: no ``1/sqrt(d_head)``, no mask, no LayerNorm (`pos_attention_pattern`
    adds them).

    Raises:
        ValueError: ``query``/``key`` not ``"token"`` or ``"pos"``, or a bad layer
            or head.
    """
    X_q, X_k = _embedding(model, query, "query"), _embedding(model, key, "key")
    return X_q @ _qk(model, layer, head) @ X_k.T


def pos_attention_pattern(model: Any, layer: int, head: int, ln: bool = False
                          ) -> Float[Tensor, "n_ctx n_ctx"]:
    """The attention pattern a head would have from positions alone.

    ``ln=False`` is ARENA 1.2's weights-only reading, ``softmax(mask(W_pos W_QK
    W_pos^T / sqrt(d_head)))``: no LayerNorm, no biases. A real head sees ``LN(x)``:
    LayerNorm divides the stream by its scale before ``W_Q`` and ``W_K``, which
    multiplies every score by ``1/scale^2`` and so sharpens or flattens the softmax.
    ``ln=True`` passes each row of ``W_pos`` through the block's LayerNorm
    (``blocks[layer].ln1``, with its weight and bias) and adds ``b_Q, b_K``: the
    pattern the head has on a stream that holds the positional embedding alone. A
    previous-token head has its mass on the sub-diagonal, ``pattern.diagonal(-1)``;
    future keys get 0.

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


def full_k_composition_circuit(model: Any, sender: tuple[int, int],
                               receiver: tuple[int, int]) -> FactoredMatrix:
    """The full K-composition circuit ``W_E W_QK^receiver (W_E W_OV^sender)^T``.

    A ``d_vocab x d_vocab`` matrix. Entry ``(a, b)``: the score with which a query
    holding token ``a`` attends to a key position into which the ``sender`` head has
    copied token ``b`` (ARENA 1.2's ``find_K_comp_full_circuit``; for a
    previous-token sender, ``b`` is the token *before* the key). For an induction
    head fed by a previous-token head it is near-diagonal: "attend to where my token
    came before".

    Raises:
        ValueError: a bad head, or a receiver not in a later layer than the sender.
    """
    (ls, hs), (lr, hr) = check_head(model, *sender), check_head(model, *receiver)
    if lr <= ls:
        raise ValueError(f"the receiver {receiver} should be in a later layer than "
                         f"the sender {sender}")
    W_E = weights(model).W_E.detach()
    return W_E @ _qk(model, lr, hr) @ (W_E @ _ov(model, ls, hs)).T


def _as_factored(matrix: Any) -> FactoredMatrix:
    if isinstance(matrix, FactoredMatrix):
        return matrix
    matrix = _check_factor(matrix, "matrix")
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    return FactoredMatrix(matrix, eye)


def copying_score(matrix: FactoredMatrix | Tensor, measure: str = "top_k",
                  k: int = 1, batch_size: int = 1024) -> Float[Tensor, "*batch"]:
    """How much a square circuit (rows = source tokens) copies, per leading index.

    * ``measure="top_k"`` (ARENA 1.2): the fraction of rows ``t`` whose own column
      ``t`` is among the row's ``k`` largest entries; 1 for the identity, 0 for its
      negative. Rows are formed ``batch_size`` at a time, so a GPT-2 vocabulary fits
      in memory.
    * ``measure="eigenvalues"`` (Elhage et al. 2021): ``sum(lambda) /
      sum(|lambda|)`` over the eigenvalues (the nonzero ones, from ``B A``): +1 for
      the identity, -1 for its negative, NaN (0/0) where every eigenvalue is 0.

    Raises:
        ValueError: a non-square matrix, an unknown measure, or ``k`` not in
            ``[1, d_vocab]``.
    """
    M = _as_factored(matrix)
    if M.ldim != M.rdim:
        raise ValueError(f"a copying score needs a square matrix (source token x "
                         f"output token), got {tuple(M.shape)}")
    if measure not in COPYING_MEASURES:
        raise ValueError(f"measure should be one of {COPYING_MEASURES}, "
                         f"got {measure!r}")
    if measure == "eigenvalues":
        lam = M.eigenvalues
        return lam.sum(-1).real / lam.abs().sum(-1)  # 0/0 = NaN if all are 0
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= M.rdim:
        raise ValueError(f"k should be an int in [1, {M.rdim}] (the number of "
                         f"columns), got {k!r}")
    hits = torch.zeros(M.shape[:-2], dtype=M.A.dtype, device=M.A.device)
    for start in range(0, M.ldim, batch_size):
        stop = min(start + batch_size, M.ldim)
        rows = torch.arange(start, stop, device=M.A.device)
        top = (M.A[..., rows, :] @ M.B).topk(k, dim=-1).indices
        hits += (top == rows[:, None]).any(-1).sum(-1).to(hits.dtype)
    return hits / M.ldim


def copying_scores(model: Any, measure: str = "top_k", k: int = 1
                   ) -> Float[Tensor, "n_layers n_heads"]:
    """`copying_score` of every head's full OV circuit, a ``(layer, head)`` table.

    Raises:
        ValueError: an unknown measure or a bad ``k``.
    """
    return copying_score(full_ov_circuit(model), measure=measure, k=k)


def _frobenius(M: FactoredMatrix | Tensor) -> Tensor:
    if isinstance(M, FactoredMatrix):
        return M.norm()
    return torch.linalg.matrix_norm(M)


def composition_score(W_A: FactoredMatrix | Tensor, W_B: FactoredMatrix | Tensor
                      ) -> Float[Tensor, "*batch"]:
    """``||W_A W_B||_F / (||W_A||_F ||W_B||_F)`` (Elhage et al. 2021).

    ``W_A`` is the sender's OV circuit (what it writes), ``W_B`` what the receiver
    reads
    with: its ``W_QK`` (Q-composition), ``W_QK^T`` (K-) or ``W_OV`` (V-composition).
        The
    score is 0 when ``W_B`` ignores everything ``W_A`` writes, 1 only for aligned
    rank-one matrices, and it does not change when either matrix is rescaled.
    Leading axes broadcast.

    Raises:
        ValueError: ``W_A``'s columns and ``W_B``'s rows differ in number, or a norm
            is 0.
    """
    for name, M in (("W_A", W_A), ("W_B", W_B)):
        if not isinstance(M, FactoredMatrix):
            _check_factor(M, name)
    if W_A.shape[-1] != W_B.shape[-2]:
        raise ValueError(f"W_A @ W_B needs W_A's columns to match W_B's rows, "
                         f"got shapes {tuple(W_A.shape)} and {tuple(W_B.shape)}")
    norms = _frobenius(W_A) * _frobenius(W_B)
    if bool((norms == 0).any()):
        raise ValueError("the composition score is undefined for a zero matrix "
                         "(its norm is 0)")
    return _frobenius(W_A @ W_B) / norms


def _pairs(left: FactoredMatrix, right: FactoredMatrix
           ) -> tuple[FactoredMatrix, FactoredMatrix]:
    """All (sender, receiver) pairs: two new axes after ``left``'s, two before ``right``'s."""
    left = FactoredMatrix(left.A[:, :, None, None], left.B[:, :, None, None])
    return left, FactoredMatrix(right.A[None, None], right.B[None, None])


def composition_scores(model: Any, kind: str
                       ) -> Float[Tensor, "n_layers n_heads n_layers n_heads"]:
    """Scores of every head pair, ``scores[l1, h1, l2, h2]``, 0 unless ``l1 < l2``.

    The sender ``(l1, h1)``'s OV circuit against the receiver ``(l2, h2)``'s
    ``W_QK`` (``kind="q"``), ``W_QK^T`` (``"k"``) or ``W_OV`` (``"v"``):
    TransformerLens's ``all_composition_scores(mode)``, whose ``"Q"``, ``"K"``,
    ``"V"`` are accepted too. Read the scores against `random_composition_baseline`.

    Raises:
        ValueError: ``kind`` is not one of q, k, v.
    """
    if not isinstance(kind, str) or kind.lower() not in COMPOSITION_KINDS:
        raise ValueError(f"kind should be one of {COMPOSITION_KINDS} (queries, "
                         f"keys or values), got {kind!r}")
    left = _ov(model, None, None)
    read_with = {"q": _qk, "k": lambda *a: _qk(*a).T, "v": _ov}[kind.lower()]
    right = read_with(model, None, None)
    scores = composition_score(*_pairs(left, right))
    layer = torch.arange(model_spec(model).n_layers, device=scores.device)
    later = layer[:, None, None, None] < layer[None, None, :, None]
    later = later.expand_as(scores)
    return torch.where(later, scores, torch.zeros_like(scores))


@dataclass(frozen=True)
class CompositionBaseline:
    """Composition scores of random matrices with a model's shapes: chance level."""

    samples: Float[Tensor, "n_samples"]
    """One score per pair of random rank-``d_head`` ``d_model``-square matrices."""
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
        """The ``q``-quantile of the random scores (0.99: 1 pair in 100 above)."""
        return float(torch.quantile(self.samples.double(), float(q)))


def random_composition_baseline(
    model: Any = None, n_samples: int = 300, *, d_model: int | None = None,
    d_head: int | None = None, generator: torch.Generator | None = None,
    distribution: str = "normal",
) -> CompositionBaseline:
    """The composition score of random matrices of a model's shapes, many times.

    As ARENA 1.2: each sample draws four ``d_model x d_head`` factors, forms ``W_A =
    L_A R_A^T`` and ``W_B = L_B R_B^T`` (rank ``d_head``, like an OV or QK circuit)
    and scores them with `composition_score`. ``distribution="normal"`` draws
    Gaussian entries, ``"uniform"`` uniform ones as ARENA's ``kaiming_uniform_``
    (the scale does not matter: the score is scale-free).

    Args:
        model: a GPT or bridge to read ``d_model`` and ``d_head`` from, or None to
            pass them.
        n_samples: how many random pairs.
        generator: the torch generator to draw from (explicit randomness).

    Raises:
        ValueError: neither a model nor both sizes, a bad size, or an unknown
            distribution.
    """
    if model is not None:
        spec = model_spec(model)
        d_model, d_head = spec.d_model, spec.d_head
    sizes = (("d_model", d_model), ("d_head", d_head), ("n_samples", n_samples))
    for name, value in sizes:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} should be a positive int (or pass a model), "
                             f"got {value!r}")
    if distribution not in ("normal", "uniform"):
        raise ValueError(f"distribution should be 'normal' or 'uniform', got "
                         f"{distribution!r}")
    shape = (4, n_samples, d_model, d_head)
    if distribution == "normal":
        factors = torch.randn(shape, generator=generator, dtype=torch.float64)
    else:
        unit = torch.rand(shape, generator=generator, dtype=torch.float64)
        factors = 2 * unit - 1
    L_A, R_A, L_B, R_B = factors
    W_A = FactoredMatrix(L_A, R_A.transpose(-2, -1))
    W_B = FactoredMatrix(L_B, R_B.transpose(-2, -1))
    return CompositionBaseline(composition_score(W_A, W_B), d_model, d_head)
