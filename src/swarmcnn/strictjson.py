"""JSON as every reader accepts it: a number that is not one (NaN, ±Infinity) is written as null.

Python's `json` writes NaN and Infinity by default, which is not JSON: jq, browsers and most other languages
refuse the whole file. Everything the project writes for others to read goes through `dumps`.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """The value with every non-finite float, in dicts, lists and tuples too, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """json.dumps of `finite(value)`; raises ValueError rather than write a non-finite number."""
    return json.dumps(finite(value), allow_nan=False, **options)
