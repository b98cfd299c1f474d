"""The application layer: every operation credstore offers, as plain functions over backends.

The click commands (``cli/``), the hand-parsed hot path (``cli/fast.py``) and the Python API (``api.py``) all call
these, so each operation has one road: the same backend choice, the same audit lines, the same errors. Nothing here
prints to stdout or imports the CLI: a ``Context`` carries the environment, whether (and how) a person may be asked,
and where one-line warnings go.

Modules: ``context`` (the caller's view), ``delivery`` (env / exec / explain / resolve), ``entries`` (set, get,
rm, list, add), ``protection`` (create, unlock, lock, passwd, protect), ``rotation`` (rotate, rollback, status,
check), ``imports`` (merging imported values), ``services`` (team service accounts), ``doctor``.
"""
