"""Docker ``--env-file`` format (``--format docker``): one ``NAME=value`` line per variable.

``docker run --env-file`` reads each line literally after the first ``=``: no quotes, no escapes, no ``$``
expansion. So a value can hold anything except a line break: a newline ends the line, and a carriage return is
dropped at the end of a line, so neither (nor NUL) can be carried. Such a value raises UnrepresentableValue naming
the variable only. Docker also refuses lines longer than 64 KiB.

This is not what docker compose (``env_file:``, ``.env``) or python-dotenv read: they strip quotes, cut ``#``
comments and expand ``$``. For them use ``--format dotenv`` (credstore/shells/dotenv.py).
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
                    "use --format dotenv, json or shell, or `credstore exec`"
                )
        lines.append(f"{name}={value}\n")
    return "".join(lines)
