"""credstore: per-user encrypted credentials for shared machines.

``credstore.resolve(...)`` and ``credstore.environ(...)`` are the Python API (see ``credstore/api.py``). They are
imported on first use so that the command-line hot path does not pay for them.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["environ", "resolve"]

# No typing import here: this package is imported by every `credstore env` (about 2 ms for typing alone).


def __getattr__(name: str) -> object:
    if name in __all__:
        from credstore import api

        return getattr(api, name)
    raise AttributeError(f"module 'credstore' has no attribute {name!r}")
