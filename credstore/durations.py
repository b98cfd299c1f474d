"""Durations as people type them: ``30s``, ``15m``, ``12h``, ``7d``, ``2w``, or combined (``1d12h``).

One parser for every option that takes a duration (``--grace``, ``--max-age``, ``--since``, ...). A bare number is
refused: "90" could mean seconds or days, and a wrong guess in ``check --max-age`` would hide stale keys.
"""

from __future__ import annotations

from credstore.errors import UsageError

UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Patterns for ``re``, imported when a duration is parsed: ``age`` is on the hot path of ``list``, where ``re`` would
# cost 3 ms.
_PART = r"(\d{1,9})([smhdw])"
_WHOLE = r"(?:\d{1,9}[smhdw])+\Z"


def parse_duration(text: str, *, option: str = "duration") -> float:
    """``"7d"`` -> 604800.0 seconds. Malformed input raises ``UsageError`` (exit 2) naming ``option``."""
    import re

    cleaned = text.strip().lower()
    if not cleaned or not re.match(_WHOLE, cleaned):
        raise UsageError(
            f"{option}: {text[:40]!r} is not a duration; use a number with a unit s, m, h, d or w "
            "(for example 90m, 12h, 7d, 2w or 1d12h)"
        )
    return float(sum(int(n) * UNITS[unit] for n, unit in re.findall(_PART, cleaned)))


def format_duration(seconds: float) -> str:
    """A short human form, largest unit first, at most two parts: 93784 -> ``1d2h``."""
    seconds = max(0, int(seconds))
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    for unit in ("w", "d", "h", "m", "s"):
        size = UNITS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)


def age(seconds_since_epoch: float, now: float) -> str:
    """How long ago, in its largest whole unit (``list``'s AGE column): ``3d``, ``5h``, ``12m``, ``40s``."""
    delta = max(0.0, now - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit}"
    return f"{int(delta)}s"
