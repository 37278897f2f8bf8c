"""A helper the hypothesis fuzz tests share: a call either works or fails with an informative error."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


def result_or_clear_error(call: Callable[[], Any], informative: re.Pattern[str]) -> Any:
    """Return ``call()``, or None when it raises a ValueError/TypeError whose message matches ``informative``.

    An error whose message does not match fails the test: bad input must say what was expected.
    """
    try:
        return call()
    except (ValueError, TypeError) as err:
        assert informative.search(str(err)), f"uninformative {type(err).__name__}: {err}"
        return None
