"""JSON object format: ``{"NAME": "value", ...}`` followed by a newline.

Non-ASCII characters are written as ``\\uXXXX`` escapes, so the output is plain ASCII and survives any locale.
A name given twice keeps its last value, as in a shell.
"""

from __future__ import annotations

import json as _json
from collections.abc import Sequence


def render(assignments: Sequence[tuple[str, str]]) -> str:
    return _json.dumps(dict(assignments), ensure_ascii=True, indent=None) + "\n"
