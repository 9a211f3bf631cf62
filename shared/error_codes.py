"""Stable error codes: ``family`` or ``family:detail`` (docs/contract.md#error-codes).

Every stage writes them: the validator's checks (``invalid_reason_code:foo``), the persister's
``persist_rejected``, the consumer's ``delivery_attempts_exceeded``. Metrics label dead letters
by family (a bounded label set) and ops filter and count them by family.
"""

from __future__ import annotations


def code_family(code: str) -> str:
    """The family of an error code: ``invalid_reason_code:foo`` -> ``invalid_reason_code``."""
    return code.split(":", 1)[0]
