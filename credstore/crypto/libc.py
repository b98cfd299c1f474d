"""The three libc functions credstore calls directly (``syscall``, ``prctl``, ``setrlimit``), without ``ctypes``.

Importing the ``ctypes`` package costs about 1.5 ms (it defines hundreds of classes in Python); its C core
``_ctypes`` alone costs about 0.4 ms. Both the kernel keyring (every ``env`` of an unlocked store) and the process
hardening (every command) need only a few integer-and-pointer calls into libc, so this module builds the four C types
it needs on ``_ctypes`` directly. ``_ctypes`` is the private base of ``ctypes`` and has kept this interface
(``_SimpleCData``, ``CFuncPtr``, ``dlopen``, ``dlsym``, ``get_errno``) since Python 2.5.

Every function raises ``OSError`` (with the C ``errno``) when the call returns -1, and ``LibcUnavailable`` when the
platform has no such function (not Linux, or no ``_ctypes``).
"""

from __future__ import annotations

import os

try:
    import _ctypes
except ImportError:  # a Python built without libffi
    _ctypes = None  # type: ignore[assignment]


class LibcUnavailable(OSError):
    """libc cannot be called from here (no ``_ctypes``, or the symbol is missing)."""


if _ctypes is not None:

    class c_long(_ctypes._SimpleCData):
        _type_ = "l"

    class c_ulong(_ctypes._SimpleCData):
        _type_ = "L"

    class c_int(_ctypes._SimpleCData):
        _type_ = "i"

    class c_char(_ctypes._SimpleCData):
        _type_ = "c"

    class _LongFunction(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = c_long

    class _IntFunction(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = c_int


_functions: dict[str, object] = {}


def _function(name: str, kind: str) -> object:
    fn = _functions.get(name)
    if fn is None:
        if _ctypes is None:
            raise LibcUnavailable(0, "this Python has no _ctypes module (built without libffi)")
        try:
            address = _ctypes.dlsym(_ctypes.dlopen(None), name)
        except OSError as exc:
            raise LibcUnavailable(0, f"libc has no {name}(): {exc}") from None
        fn = (_LongFunction if kind == "long" else _IntFunction)(address)
        _functions[name] = fn
    return fn


def missing(name: str) -> str | None:
    """Why libc function ``name`` cannot be called (one line), or None when it can."""
    try:
        _function(name, "long" if name == "syscall" else "int")
    except LibcUnavailable as exc:
        return exc.strerror
    return None


def _call(fn: object, args: tuple[object, ...]) -> int:
    _ctypes.set_errno(0)
    ret = fn(*args)  # type: ignore[operator]
    if ret == -1:
        err = _ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def _arg(value: object) -> object:
    """Integers travel as C ``long`` (a variadic function reads a full register); bytes, buffers, None as pointers."""
    if isinstance(value, int):
        return c_long(value)
    return value


def syscall(number: int, *args: object) -> int:
    """``syscall(number, args...)``: the result, or OSError with the errno."""
    fn = _function("syscall", "long")
    return _call(fn, (c_long(number), *map(_arg, args)))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    fn = _function("prctl", "int")
    return _call(fn, (c_int(option), c_ulong(arg2), c_ulong(arg3), c_ulong(arg4), c_ulong(arg5)))


def getrlimit(resource: int) -> tuple[int, int]:
    fn = _function("getrlimit", "int")
    limits = (c_ulong * 2)()
    _call(fn, (c_int(resource), limits))
    return int(limits[0]), int(limits[1])


def setrlimit(resource: int, soft: int, hard: int) -> None:
    fn = _function("setrlimit", "int")
    limits = (c_ulong * 2)(soft, hard)
    _call(fn, (c_int(resource), limits))


def buffer(data_or_size: bytes | int) -> object:
    """A zero-filled (or data-filled) C ``char`` array; pass it as a pointer, read it with ``.raw``."""
    if _ctypes is None:
        raise LibcUnavailable(0, "this Python has no _ctypes module (built without libffi)")
    if isinstance(data_or_size, int):
        return (c_char * data_or_size)()
    buf = (c_char * len(data_or_size))()
    buf.raw = data_or_size
    return buf


def wipe(buf: object) -> None:
    """Overwrite a ``buffer`` with zero bytes (Python cannot wipe ``bytes`` objects; at least our buffers)."""
    buf.raw = bytes(_ctypes.sizeof(buf))  # type: ignore[attr-defined]
