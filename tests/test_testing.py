"""The testing helpers themselves: a check that cannot fail is a defect, so make them fail."""

import numpy as np
import pytest
import torch

from conftest import unchecked
from mechlearn import set_seed
from mechlearn.testing import (
    EXACT,
    FLOAT64,
    GRADCHECK,
    TOLERANCES,
    Tolerance,
    assert_close,
    compare,
    gradcheck,
    numerical_gradient,
    random_expression,
)


def test_compare_passes_equal_and_fails_different_values_with_a_teaching_message():
    assert compare([1.0, 2.0], [1.0, 2.0], EXACT)
    bad = compare(np.array([[1.0, 2.0], [3.0, 4.5]]), np.array([[1.0, 2.0], [3.0, 4.0]]), FLOAT64, name="x")
    assert not bad
    assert "correct shape (2, 2), but wrong values: 1 of 4" in bad.message
    assert "index (1, 1)" in bad.message


@pytest.mark.parametrize(
    "a_shape, e_shape, hint",
    [((2, 3), (3, 2), "transpose"), ((6,), (2, 3), "reshape"), ((2, 3), (2, 3, 4), "keepdims")],
)
def test_compare_names_the_likely_shape_mistake(a_shape, e_shape, hint):
    result = compare(np.zeros(a_shape), np.zeros(e_shape))
    assert not result and "wrong shape" in result.message and hint in result.message


def test_compare_treats_nan_and_inf_honestly():
    assert not compare([np.nan], [1.0])
    assert "NaN" in compare([np.nan], [1.0]).message
    assert compare([np.inf, -np.inf], [np.inf, -np.inf], EXACT)
    assert not compare([np.inf], [-np.inf])
    assert not compare([1.0], [np.nan])


def test_compare_accepts_torch_tensors_and_rejects_non_numbers():
    assert compare(torch.tensor([1.0, 2.0], requires_grad=True), np.array([1.0, 2.0]), EXACT)
    with pytest.raises(TypeError, match="numeric"):
        compare(["a"], [1.0])
    with pytest.raises(TypeError, match="Tolerance"):
        unchecked(compare)([1.0], [1.0], tol=1e-6)


def test_tolerance_bounds_are_what_they_say():
    tol = Tolerance("T", rtol=1e-3, atol=0.0)
    assert compare([1000.9], [1000.0], tol) and not compare([1001.1], [1000.0], tol)
    with pytest.raises(ValueError):
        Tolerance("bad", -1.0, 0.0)
    assert set(TOLERANCES) == {"EXACT", "FLOAT64", "FLOAT32", "FLOAT32_MODEL", "GRADCHECK", "REPLAY"}


def test_assert_close_raises_the_message():
    with pytest.raises(AssertionError, match="wrong values"):
        assert_close([1.0], [2.0])


def test_numerical_gradient_matches_a_closed_form_and_catches_a_wrong_gradient():
    x = np.array([0.3, -1.2, 2.0])
    f = lambda v: float(np.sum(np.sin(v) * v**2))  # noqa: E731
    true = np.cos(x) * x**2 + 2 * x * np.sin(x)
    assert_close(numerical_gradient(f, x), true, GRADCHECK)
    assert gradcheck(f, true, x)
    assert not gradcheck(f, true * 1.001, x)  # a 0.1% error is caught
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(f, x.astype(np.float32))
    with pytest.raises(ValueError, match="scalar"):
        numerical_gradient(lambda v: v, x)


def test_random_expression_is_reproducible_and_validates():
    f1, t1 = random_expression(np.random.default_rng(5), 2, 6)
    f2, t2 = random_expression(np.random.default_rng(5), 2, 6)
    assert t1 == t2
    args = [torch.tensor(0.3, dtype=torch.float64), torch.tensor(-0.4, dtype=torch.float64)]
    assert f1(*args).item() == f2(*args).item()
    with pytest.raises(ValueError):
        random_expression(np.random.default_rng(0), 0, 3)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        unchecked(f1)(torch.tensor(1.0))


def test_set_seed_makes_every_generator_repeat_and_checks_its_argument():
    g1 = set_seed(3)
    a = (np.random.rand(), torch.rand(1).item(), g1.random())
    g2 = set_seed(3)
    b = (np.random.rand(), torch.rand(1).item(), g2.random())
    assert a == b
    for bad, error in (("3", TypeError), (1.5, TypeError), (True, TypeError), (-1, ValueError), (2**32, ValueError)):
        with pytest.raises(error, match="seed"):
            unchecked(set_seed)(bad)


def test_expect_error_passes_only_for_the_right_error_with_the_right_words():
    from mechlearn.testing import expect_error

    def bad():
        raise ValueError("token id 7 is out of range")

    ok = expect_error(bad, ValueError, "out of range", name="ids checked")
    assert ok and "token id 7" in ok.message and ok._repr_markdown_().startswith("✅")
    assert not expect_error(bad, ValueError, "too long")  # the wrong words
    assert not expect_error(bad, TypeError, "out of range")  # the wrong type
    silent = expect_error(lambda: 3, ValueError, "x")
    assert not silent and "returned normally" in silent.message and silent._repr_markdown_().startswith("❌")
    with pytest.raises(TypeError, match="exception type"):
        unchecked(expect_error)(bad, "ValueError", "x")  # what a user without beartype gets


def test_a_check_group_shows_a_compact_table_and_a_failure_cannot_be_missed():
    from mechlearn.testing import Checks, Verdict

    checks = Checks("ours against the reference")
    assert not checks and "no checks ran" in checks._repr_markdown_()  # an empty group proves nothing
    assert checks.compare(np.ones(3), np.ones(3), EXACT, name="ones")
    assert checks.expect_error(lambda: int("x"), ValueError, "invalid literal", name="bad text is refused")
    assert checks.verify(np.float64(1.0) < 2.0, "beats the baseline", "1.00 vs 2.00")
    shown = checks._repr_markdown_()
    assert checks and "✅" in shown and "❌" not in shown and "all 3 checks pass" in shown
    assert shown.count("\n| ✅ |") == 3 and "<details>" in shown and "checks-pass" in shown
    checks.compare(np.array([1.0, 2.0]), np.array([1.0, 2.5]), FLOAT64, name="a wrong entry")
    shown = checks._repr_markdown_()
    assert not checks and "checks-fail" in shown and "1 of 4 checks FAILED" in shown
    # The reason is quoted in full above the table, outside the folded details.
    reason = shown.index("1 of 2 entries are outside")
    assert reason < shown.index("| | check |") and reason < shown.index("<details>")
    with pytest.raises(TypeError):  # our message, or the test run's type checker's, first
        Verdict("constant", "yes", "…")
    with pytest.raises(TypeError, match="Comparison, ErrorCheck or Verdict"):
        unchecked(Checks.add)(checks, True)
    with pytest.raises(ValueError, match="non-empty string"):
        Checks("  ")


def test_table_cells_survive_pipes_and_backticks():
    from mechlearn.testing import Checks

    checks = Checks("a | b")
    checks.expect_error(lambda: (_ for _ in ()).throw(ValueError("use `x` | y")), ValueError, "use", name="n|m")
    rows = [line for line in checks._repr_markdown_().splitlines() if line.startswith("| ✅")]
    assert len(rows) == 1 and rows[0].count(" | ") == 3, rows
