"""The exception the widget's actions raise (exported as ``nbcall.CallError``)."""

from __future__ import annotations


class CallError(RuntimeError):
    """An action that cannot work right now; the message says why."""
