"""Reading JSON that a user hands over (bundles, records, proofs, credentials) without trusting its shape."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "load_json"]

MAX_JSON_DEPTH = 200
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def load_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` for files a user hands over, refusing (ValueError) JSON nested deeper than `max_depth`
    before parsing it: the parser recurses, and with the recursion limit some libraries raise on import
    (py-evm, py_ecc: 100,000) a deep file would overflow the C stack instead of raising RecursionError."""
    depth = peak = 0
    for bracket in _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > peak:
            peak = depth
            if peak > max_depth:
                raise ValueError(f"its JSON is nested more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("its JSON is nested too deeply") from None
