"""Assert which failure it was by its code (nbcall/_errors.py), not by its English words."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from nbcall._errors import ERROR_CODES, CallError


@contextlib.contextmanager
def raises_code(code: str) -> Iterator[pytest.ExceptionInfo[CallError]]:
    """Like ``pytest.raises(CallError)``, and the error's ``code`` must be ``code``."""
    assert code in ERROR_CODES, f"{code!r} is not a declared error code"
    with pytest.raises(CallError) as info:
        yield info
    assert info.value.code == code, f"CallError code {info.value.code!r} ({info.value}), expected {code!r}"
