"""The refresh marker's text: ``CREDSTORE_EXPORTED`` (``resolver/exported.py`` says what it is for).

``"v1 NAME:fp NAME:fp ..."``: every variable ``env`` exported, with a keyed fingerprint of its value. Linux refuses
to start any program whose environment holds one string longer than 128 KiB (``MAX_ARG_STRLEN``; execve fails with
E2BIG, "Argument list too long"), and at about 3,700 variables the marker alone would be that long: after
``eval "$(credstore env)"`` the shell could run nothing. So the text is cut, between two entries, into pieces of at
most ``PIECE`` characters: ``CREDSTORE_EXPORTED`` holds the first, ``CREDSTORE_EXPORTED_2``, ``_3``, ... the rest.

String functions only, no imports: the render cache's hot path and the resolver share them.
"""

from __future__ import annotations

MARKER = "CREDSTORE_EXPORTED"
VERSION = "v1"
#: The longest piece: half of MAX_ARG_STRLEN, whatever the name's length and the locale's bytes per character
#: (names and fingerprints are ASCII).
PIECE = 64 * 1024


def continuation(number: int) -> str:
    """The variable of the ``number``-th piece (2, 3, ...)."""
    return f"{MARKER}_{number}"


def variables_in(environ) -> list[str]:
    """The marker's variables present in ``environ``: ``CREDSTORE_EXPORTED`` and its continuations, in order (the
    continuations stop at the first missing number)."""
    if MARKER not in environ:
        return []
    found = [MARKER]
    while continuation(len(found) + 1) in environ:
        found.append(continuation(len(found) + 1))
    return found


def all_variables(environ) -> list[str]:
    """Every variable of the marker's family in ``environ``, read or not: ``CREDSTORE_EXPORTED`` and any
    ``CREDSTORE_EXPORTED_<n>`` (also one left behind when the first was unset, or after a gap). These are what
    credstore removes when it rewrites or drops the marker, so no stale piece is ever joined to a later marker."""
    prefix = MARKER + "_"
    numbered = [name for name in environ if name.startswith(prefix) and _is_number(name[len(prefix) :])]
    numbered.sort(key=lambda name: int(name[len(prefix) :]))
    return [MARKER, *numbered] if MARKER in environ else numbered


def _is_number(text: str) -> bool:
    """ASCII digits only, and a sane length: ``"²".isdigit()`` is true but ``int("²")`` fails."""
    return 0 < len(text) <= 9 and text.isascii() and text.isdigit()


def read(environ) -> str | None:
    """The whole marker text in ``environ`` (its pieces joined), or None."""
    names = variables_in(environ)
    return " ".join(environ[name] for name in names) if names else None


def parse(text: str | None) -> dict[str, str]:
    """``"v1 NAME:fp NAME:fp"`` -> {NAME: fp}; anything malformed counts as no marker (then nothing is refreshed)."""
    if not text:
        return {}
    parts = text.split(" ")
    if parts[0] != VERSION:
        return {}
    out: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, fp = part.partition(":")
        if sep and name and fp:
            out[name] = fp
    return out


def text_of(names, fingerprints) -> str:
    """The marker text for ``names`` (sorted) and their ``fingerprints`` (in the same order)."""
    return " ".join([VERSION, *map("{}:{}".format, names, fingerprints)])


def assignments(text: str, environ) -> tuple[list[tuple[str, str]], list[str]]:
    """(assignments, unsets) that leave exactly ``text`` in the marker's variables: the pieces, and every other
    variable of the family that ``environ`` holds (``all_variables``)."""
    pieces: list[str] = []
    start = 0
    while len(text) - start > PIECE:
        cut = text.rfind(" ", start, start + PIECE + 1)
        if cut <= start:  # one entry longer than a piece (a name of 64 K characters): it stays whole
            cut = text.find(" ", start + PIECE)
            if cut < 0:
                break
        pieces.append(text[start:cut])
        start = cut + 1
    pieces.append(text[start:])
    names = [MARKER, *(continuation(number) for number in range(2, len(pieces) + 1))]
    stale = [name for name in all_variables(environ) if name not in names]
    return list(zip(names, pieces, strict=True)), stale
