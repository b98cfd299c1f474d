"""Docker ``--env-file`` format: one ``NAME=value`` line per variable.

Docker reads each line literally after the first ``=``: no quotes, no escapes, no ``$`` expansion. So a value
can hold anything except a line break: a newline ends the line, and a carriage return is dropped at the end of
a line, so neither (nor NUL) can be carried. Such a value raises UnrepresentableValue naming the variable only.
Note: Docker Compose's ``env_file``/``.env`` parser is different (it strips quotes and expands ``$``); this
format is for ``docker run --env-file``. Docker also refuses lines longer than 64 KiB.
"""

from __future__ import annotations

from collections.abc import Sequence

from credstore.errors import UnrepresentableValue

_FORBIDDEN = {"\n": "a newline", "\r": "a carriage return", "\0": "a NUL character"}


def render(assignments: Sequence[tuple[str, str]]) -> str:
    lines = []
    for name, value in assignments:
        for ch, what in _FORBIDDEN.items():
            if ch in value:
                raise UnrepresentableValue(
                    f"value of {name} contains {what}, which a Docker env file cannot hold; "
                    "use the shell or json format, or `credstore exec`"
                )
        lines.append(f"{name}={value}\n")
    return "".join(lines)
