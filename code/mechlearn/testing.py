"""Testing helpers: named tolerances, reference comparisons that teach, and gradient checks.

Three habits, borrowed from ARENA's ``tests.py`` and micrograd's tests:

* **Tolerances have names.** ``FLOAT64`` means "two float64 computations of the same maths
  that differ only in rounding"; ``GRADCHECK`` means "an analytic gradient against a central
  finite difference in float64". Pages and tests use the names, so a reader knows what a
  tolerance claims, and a tolerance is changed in one place.
* **Failures teach.** A wrong shape is reported as a wrong shape (with the likely cause),
  not as a broadcasting error; wrong values report how many entries are off and the worst one.
* **Gradients are checked by finite differences in float64.** The central difference
  ``(f(x + h) - f(x - h)) / 2h`` has error ``O(h^2)`` from truncation and ``O(eps / h)``
  from rounding (about ``eps * |f| / h``); with ``h = 1e-6`` both are around ``1e-10`` for
  functions of order one, and the rounding part grows with ``|f|`` (Day 1 measures it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "Tolerance",
    "EXACT",
    "FLOAT64",
    "FLOAT32",
    "FLOAT32_MODEL",
    "GRADCHECK",
    "REPLAY",
    "TOLERANCES",
    "Comparison",
    "compare",
    "assert_close",
    "ErrorCheck",
    "expect_error",
    "Verdict",
    "Checks",
    "numerical_gradient",
    "gradcheck",
    "random_expression",
]


@dataclass(frozen=True)
class Tolerance:
    """An ``rtol``/``atol`` pair with a name: ``|actual - expected| <= atol + rtol * |expected|``."""

    name: str
    rtol: float
    atol: float
    """Absolute tolerance, which governs entries near zero."""

    def __post_init__(self) -> None:
        if self.rtol < 0 or self.atol < 0:
            raise ValueError(f"tolerances must be non-negative, got rtol={self.rtol}, atol={self.atol}")

    def __str__(self) -> str:
        return f"{self.name} (rtol={self.rtol:g}, atol={self.atol:g})"


EXACT = Tolerance("EXACT", 0.0, 0.0)
"""Bit-for-bit equality: for results that must not depend on rounding at all."""
FLOAT64 = Tolerance("FLOAT64", 1e-10, 1e-12)
"""The same maths computed twice in float64, differing only in the order of rounding."""
FLOAT32 = Tolerance("FLOAT32", 1e-5, 1e-6)
"""The same maths computed twice in float32."""
GRADCHECK = Tolerance("GRADCHECK", 1e-6, 1e-8)
"""An analytic float64 gradient against a central finite difference with ``h = 1e-6``."""

FLOAT32_MODEL = Tolerance("FLOAT32_MODEL", 1e-5, 1e-5)
"""A whole float32 network (logits, activations) computed twice with different operation orders.

Rounding errors accumulate over layers, so entries near zero need an absolute 1e-5.
"""
REPLAY = Tolerance("REPLAY", 1e-4, 1e-4)
"""Re-running a committed float32 computation (a checkpoint's loss), possibly on another BLAS build."""

TOLERANCES: dict[str, Tolerance] = {t.name: t for t in (EXACT, FLOAT64, FLOAT32, FLOAT32_MODEL, GRADCHECK, REPLAY)}
"""Every named tolerance, by name."""


def _as_array(x: Any, what: str) -> np.ndarray:
    """Turn a number, list, NumPy array or torch tensor into a NumPy array, without copying grads."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; avoid importing torch
        x = x.detach().cpu().numpy()
    elif hasattr(x, "data") and type(x).__name__ == "Value":  # a mechlearn scalar Value
        x = x.data
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{what} should be numeric (number, array or tensor), got {type(x).__name__}")
    return arr


@dataclass(frozen=True)
class Comparison:
    """The result of comparing an implementation with a reference; shows itself on a page."""

    name: str
    passed: bool
    max_abs_err: float
    max_rel_err: float
    tolerance: Tolerance
    shape: tuple[int, ...]
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return (
            f"{mark} {self.name}: max |ours - reference| = {self.max_abs_err:.3g} "
            f"(max relative {self.max_rel_err:.3g}) over shape {self.shape}, tolerance {self.tolerance}"
        )

    def _repr_markdown_(self) -> str:
        mark = "✅" if self.passed else "❌"
        return (
            f"{mark} **{self.name}** · max error `{self.max_abs_err:.2g}` · `{self.tolerance.name}`"
            + ("" if self.passed else f"\n\n**Failed:** {_md_escape(self.message)}")
        )

    def __repr__(self) -> str:
        return str(self)


def compare(actual: Any, expected: Any, tol: Tolerance = FLOAT64, name: str = "comparison") -> Comparison:
    """Compare ``actual`` (ours) with ``expected`` (the reference) and explain any difference.

    Args:
        actual: our result: a number, array, or torch tensor.
        expected: the reference result, of the same shape.
        tol: a named `Tolerance`.
        name: what is being compared, for the message.

    Returns:
        A `Comparison`, truthy when every entry is within tolerance. Shapes that differ
        never pass and are reported as such; NaN in ``actual`` where ``expected`` is finite fails.
    """
    if not isinstance(tol, Tolerance):
        raise TypeError(f"tol should be a Tolerance such as testing.FLOAT64, got {type(tol).__name__}")
    a, e = _as_array(actual, "actual"), _as_array(expected, "expected")
    if a.shape != e.shape:
        hint = ""
        if sorted(a.shape) == sorted(e.shape):
            hint = " The same sizes in another order: a missing transpose or a wrong axis?"
        elif a.size == e.size:
            hint = " The same number of entries: a missing reshape?"
        elif a.ndim != e.ndim:
            hint = " A different number of axes: a missing or extra keepdims / squeeze?"
        msg = f"{name}: wrong shape: got {a.shape}, expected {e.shape}.{hint}"
        return Comparison(name, False, math.inf, math.inf, tol, tuple(a.shape), msg)
    if a.size == 0:
        return Comparison(name, True, 0.0, 0.0, tol, tuple(a.shape), f"{name}: both empty")
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    nan_mismatch = np.isnan(a64) != np.isnan(e64)
    same_special = (np.isinf(a64) & (a64 == e64)) | (np.isnan(a64) & np.isnan(e64))
    with np.errstate(invalid="ignore", divide="ignore"):  # inf - inf and x / 0 are handled just below
        diff = np.where(same_special, 0.0, np.abs(a64 - e64))
        diff = np.where(nan_mismatch | np.isnan(diff), np.inf, diff)
        rel = np.where(diff == 0, 0.0, diff / np.abs(e64))
    bound = tol.atol + tol.rtol * np.abs(np.where(np.isfinite(e64), e64, 0.0))
    bad = ~(diff <= bound)
    max_abs = float(np.max(diff))
    max_rel = float(np.max(np.where(np.isnan(rel), np.inf, rel)))
    if not bad.any():
        return Comparison(name, True, max_abs, max_rel, tol, tuple(a.shape), f"{name}: all {a.size} entries agree")
    worst = np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), a.shape)
    where = f" at index {tuple(int(i) for i in worst)}" if a.ndim else ""
    msg = (
        f"{name}: correct shape {a.shape}, but wrong values: {int(bad.sum())} of {a.size} entries are outside "
        f"{tol}. Worst{where}: got {a64[worst]!r}, expected {e64[worst]!r} (difference {diff[worst]:.3g})."
    )
    if np.isnan(a64).any() and not np.isnan(e64).any():
        msg += " Ours has NaN where the reference does not: an overflow, or a log/sqrt of a non-positive number?"
    return Comparison(name, False, max_abs, max_rel, tol, tuple(a.shape), msg)


def assert_close(actual: Any, expected: Any, tol: Tolerance = FLOAT64, name: str = "comparison") -> Comparison:
    """Like `compare`, but raise ``AssertionError`` with the teaching message on failure."""
    result = compare(actual, expected, tol=tol, name=name)
    if not result.passed:
        raise AssertionError(result.message)
    return result


@dataclass(frozen=True)
class ErrorCheck:
    """The result of `expect_error`: did bad input raise the expected, clearly worded error?"""

    name: str
    passed: bool
    message: str
    """The error's text, or what happened instead."""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"{'✅' if self.passed else '❌'} **{self.name}** · {_md_code(self.message)}"

    def __repr__(self) -> str:
        return str(self)


def expect_error(
    fn: Callable[[], Any], error: type[BaseException], match: str, name: str = "bad input is refused"
) -> ErrorCheck:
    """Call ``fn()`` and check that it raises ``error`` whose message contains ``match``.

    A page shows the result, so the reader sees the error text and the check can fail: if ``fn``
    returns normally, raises another type, or says something else, the result is ❌.

    Args:
        fn: a call with no arguments that should raise.
        error: the exception type expected (subclasses count).
        match: a fragment the message must contain (case-sensitive).
        name: what is being checked, for the display.
    """
    if not (isinstance(error, type) and issubclass(error, BaseException)):
        raise TypeError(f"error should be an exception type such as ValueError, got {error!r}")
    try:
        fn()
    except error as err:
        text = str(err)
        if match in text:
            return ErrorCheck(name, True, f"{type(err).__name__}: {text}")
        return ErrorCheck(name, False, f"{type(err).__name__} raised, but its message does not contain {match!r}: {text}")
    except Exception as err:  # noqa: BLE001 -- reported, not swallowed silently
        return ErrorCheck(name, False, f"expected {error.__name__}, got {type(err).__name__}: {err}")
    return ErrorCheck(name, False, f"expected {error.__name__}, but the call returned normally")


def _md_escape(text: str) -> str:
    """Text that Markdown shows as written, inside a table cell or a paragraph."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_").replace("\n", " ")


def _md_code(text: str) -> str:
    """Inline code for any text: a backtick fence longer than any run of backticks inside it."""
    text = text.replace("\n", " ").replace("|", "¦")
    fence = "`" * (max((len(r) for r in text.split("`")[1::2]), default=0) + 1 if "`" in text else 1)
    return f"{fence} {text} {fence}" if "`" in text else f"`{text}`"


@dataclass(frozen=True)
class Verdict:
    """A check that is not a numeric comparison: a condition computed on the page, and its evidence.

    For example a statistical test (``p > 1e-4``) or "the loss beats the bigram baseline". The
    condition must be computed from results, never written as a constant.
    """

    name: str
    passed: bool
    evidence: str
    """What was measured, in a few words (shown in the table)."""

    def __post_init__(self) -> None:
        if not isinstance(self.passed, (bool, np.bool_)):
            raise TypeError(f"passed should be a bool computed from results, got {type(self.passed).__name__}")

    def __bool__(self) -> bool:
        return bool(self.passed)

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.evidence}"

    def _repr_markdown_(self) -> str:
        return f"{'✅' if self.passed else '❌'} **{self.name}** · {self.evidence}"

    def __repr__(self) -> str:
        return str(self)


CheckResult = Comparison | ErrorCheck | Verdict


class Checks:
    """A group of checks shown as one compact table: what was compared, the verdict, the error.

    On a page, collect the results of `compare`, `gradcheck`, `expect_error` or a `Verdict`,
    then make the group the cell's last expression::

        checks = Checks("our LayerNorm against torch.nn.LayerNorm")
        checks.compare(ours(x), ref(x), FLOAT64, name="float64, eps 1e-5")
        checks.expect_error(lambda: ours(bad), ValueError, "d_model", name="wrong width is refused")
        checks

    The table's first line says how many checks passed. A failed check is never folded away: its
    row is marked ❌, and the reason is printed in full above the table. The tolerances' rtol/atol
    and each comparison's relative error and shape are in a collapsible details block. A group
    with no checks shows ❌ (a check that cannot fail, or never ran, proves nothing).

    Args:
        title: what is compared with what, shown as the table's heading.
    """

    def __init__(self, title: str) -> None:
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"title should be a non-empty string saying what is checked, got {title!r}")
        self.title = title
        self.results: list[CheckResult] = []

    def add(self, result: CheckResult) -> CheckResult:
        """Add a `Comparison`, `ErrorCheck` or `Verdict`; returns it, so ``if checks.add(...)`` works."""
        if not isinstance(result, (Comparison, ErrorCheck, Verdict)):
            raise TypeError(
                f"Checks.add takes a Comparison, ErrorCheck or Verdict (from compare, gradcheck, expect_error or "
                f"Verdict(...)), got {type(result).__name__}"
            )
        self.results.append(result)
        return result

    def compare(self, actual: Any, expected: Any, tol: Tolerance = FLOAT64, name: str = "comparison") -> Comparison:
        """`compare` ``actual`` with ``expected`` and add the result to the group."""
        return self.add(compare(actual, expected, tol=tol, name=name))

    def expect_error(self, fn: Callable[[], Any], error: type[BaseException], match: str, name: str = "bad input is refused") -> ErrorCheck:
        """`expect_error` and add the result to the group."""
        return self.add(expect_error(fn, error, match, name=name))

    def verify(self, passed: bool | np.bool_, name: str, evidence: str) -> Verdict:
        """Add a `Verdict`: ``passed`` must be computed from results (a bool), ``evidence`` says what was measured."""
        return self.add(Verdict(name, bool(passed) if isinstance(passed, np.bool_) else passed, evidence))

    @property
    def passed(self) -> bool:
        """True when the group has at least one check and every check passed."""
        return bool(self.results) and all(bool(r) for r in self.results)

    def __bool__(self) -> bool:
        return self.passed

    def __len__(self) -> int:
        return len(self.results)

    def __str__(self) -> str:
        n_ok = sum(bool(r) for r in self.results)
        lines = [f"{'PASS' if self.passed else 'FAIL'} {self.title}: {n_ok} of {len(self.results)} checks pass"]
        lines += [f"  {r}" for r in self.results]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    @staticmethod
    def _error_cell(r: CheckResult) -> str:
        if isinstance(r, Comparison):
            if math.isinf(r.max_abs_err) and not r.passed:
                return "shape differs"
            return "0" if r.max_abs_err == 0 else f"{r.max_abs_err:.1e}"
        if isinstance(r, ErrorCheck):
            return _md_code(r.message.split(":", 1)[0]) if r.passed else "–"
        return _md_escape(r.evidence)

    @staticmethod
    def _tol_cell(r: CheckResult) -> str:
        if isinstance(r, Comparison):
            return f"`{r.tolerance.name}`"
        return "error raised" if isinstance(r, ErrorCheck) else "condition"

    def _repr_markdown_(self) -> str:
        n_ok = sum(bool(r) for r in self.results)
        if not self.results:
            return f"❌ **{_md_escape(self.title)}**: no checks ran, so nothing was verified."
        if self.passed:
            head = f"✅ **{_md_escape(self.title)}**: all {len(self.results)} checks pass" if len(self.results) > 1 else \
                   f"✅ **{_md_escape(self.title)}**: the check passes"
        else:
            head = f"❌ **{_md_escape(self.title)}: {len(self.results) - n_ok} of {len(self.results)} checks FAILED**"
        parts = [f"::: {{.checks .checks-{'pass' if self.passed else 'fail'}}}", "", head, ""]
        for r in self.results:
            if not r:
                reason = r.message if isinstance(r, (Comparison, ErrorCheck)) else r.evidence
                parts += [f"> ❌ **{_md_escape(r.name)}**: {_md_escape(reason)}", ""]
        parts += ["| | check | max error or result | tolerance |", "|:-:|:------------------------------|-----------------:|:----------|"]
        for r in self.results:
            parts.append(f"| {'✅' if r else '❌'} | {_md_escape(r.name)} | {self._error_cell(r)} | {self._tol_cell(r)} |")
        details = []
        tols = {r.tolerance.name: r.tolerance for r in self.results if isinstance(r, Comparison)}
        for t in tols.values():
            details.append(f"- `{t.name}`: \\|ours − reference\\| ≤ atol + rtol · \\|reference\\| with rtol {t.rtol:g}, atol {t.atol:g}")
        for r in self.results:
            if isinstance(r, Comparison):
                rel = (f"max relative error {r.max_rel_err:.2g}" if math.isfinite(r.max_rel_err) or not r.passed else
                       "relative error undefined (the reference has zero entries; the absolute error decides)")
                details.append(f"- {_md_escape(r.name)}: shape `{r.shape}`, {rel}")
            elif isinstance(r, ErrorCheck):
                details.append(f"- {_md_escape(r.name)}: {_md_code(r.message)}")
        if details:
            parts += ["", "<details><summary>Tolerances and details</summary>", "", *details, "", "</details>"]
        parts += ["", ":::"]
        return "\n".join(parts) + "\n"


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference gradient of a scalar function of a float64 array.

    ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h)``. ``x`` is not modified.

    Args:
        f: maps an array shaped like ``x`` to a real number.
        x: the point, a float64 array (float32 rounding would swamp the difference).
        h: the step.

    Returns:
        An array shaped like ``x``.
    """
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise TypeError(
            f"numerical_gradient needs a float64 array, got {x.dtype}: in float32 the rounding error "
            f"(~1e-7 / h) swamps the finite difference"
        )
    if not h > 0:
        raise ValueError(f"step h must be positive, got {h}")
    x = x.copy()
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f(x)
        flat[i] = old - h
        fm = f(x)
        flat[i] = old
        for v in (fp, fm):
            if np.ndim(v) != 0:
                raise ValueError(f"f must return a scalar, got an array of shape {np.shape(v)}")
        gflat[i] = (float(fp) - float(fm)) / (2 * h)
    return grad


def gradcheck(
    f: Callable[[np.ndarray], float],
    grad: np.ndarray,
    x: np.ndarray,
    tol: Tolerance = GRADCHECK,
    name: str = "gradient vs finite differences",
) -> Comparison:
    """Compare an analytic gradient ``grad`` of ``f`` at ``x`` with central finite differences."""
    return compare(grad, numerical_gradient(f, x), tol=tol, name=name)


_UNARY = ("tanh", "sigmoid", "relu", "square", "exp_tanh", "log1p_square")
_BINARY = ("add", "sub", "mul")


def random_expression(rng: np.random.Generator, n_inputs: int = 3, n_ops: int = 10) -> tuple[Callable[..., Any], str]:
    """A random scalar expression that works on any numbers with the usual methods.

    The same expression runs on mechlearn ``Value`` objects and on torch scalar tensors, so
    it can check one autograd against another. Operations are bounded so no input overflows:
    ``+ - *``, ``tanh``, ``sigmoid``, ``relu``, ``x**2``, ``exp(tanh(x))``, ``log(1 + x**2)``.

    Args:
        rng: the generator that draws the expression.
        n_inputs: how many inputs the expression takes (at least 1).
        n_ops: how many operations it applies (at least 1).

    Returns:
        ``(f, text)``: ``f(*inputs)`` evaluates the expression; ``text`` is its formula.
    """
    if n_inputs < 1 or n_ops < 1:
        raise ValueError(f"need n_inputs >= 1 and n_ops >= 1, got {n_inputs} and {n_ops}")
    program: list[tuple[str, int, int]] = []
    n_values = n_inputs
    for _ in range(n_ops):
        if rng.random() < 0.5:
            op = _BINARY[int(rng.integers(len(_BINARY)))]
            program.append((op, int(rng.integers(n_values)), int(rng.integers(n_values))))
        else:
            op = _UNARY[int(rng.integers(len(_UNARY)))]
            program.append((op, int(rng.integers(n_values)), -1))
        n_values += 1
    # Sum every intermediate that nothing consumed, so every input can matter.
    used = {i for _, i, j in program for i in (i, j) if i >= 0}
    outputs = [k for k in range(n_values) if k not in used]

    def f(*xs: Any) -> Any:
        if len(xs) != n_inputs:
            raise TypeError(f"this expression takes {n_inputs} inputs, got {len(xs)}")
        vals = list(xs)
        for op, i, j in program:
            a = vals[i]
            if op == "add":
                vals.append(a + vals[j])
            elif op == "sub":
                vals.append(a - vals[j])
            elif op == "mul":
                vals.append(a * vals[j])
            elif op == "tanh":
                vals.append(a.tanh())
            elif op == "sigmoid":
                vals.append(a.sigmoid())
            elif op == "relu":
                vals.append(a.relu())
            elif op == "square":
                vals.append(a**2)
            elif op == "exp_tanh":
                vals.append(a.tanh().exp())
            else:  # log1p_square
                vals.append((a**2 + 1).log())
        out = vals[outputs[0]]
        for k in outputs[1:]:
            out = out + vals[k]
        return out

    names = [f"x{i}" for i in range(n_inputs)]
    fmt = {
        "add": "({a} + {b})", "sub": "({a} - {b})", "mul": "{a}·{b}", "tanh": "tanh({a})",
        "sigmoid": "σ({a})", "relu": "relu({a})", "square": "{p}²", "exp_tanh": "exp(tanh({a}))",
        "log1p_square": "log(1 + {a}²)",
    }
    for op, i, j in program:
        a = names[i]
        p = a if a.isidentifier() else f"({a})"  # parenthesise before a postfix ², so x²² cannot appear
        names.append(fmt[op].format(a=a, p=p, b=names[j] if j >= 0 else ""))
    text = " + ".join(names[k] for k in outputs)
    return f, text
