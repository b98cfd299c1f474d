"""``--format dotenv`` read back by the real python-dotenv and by docker compose's rules; ``--format docker`` for
``docker run --env-file`` (issue 12, item 11).

python-dotenv is the real package (``dotenv_values()`` in this process, ``load_dotenv()`` in a fresh one), with its
default interpolation on. docker compose's reader is compose-go's ``dotenv`` package (Go); neither it nor the
``docker compose`` plugin can be installed here (Debian 12 has only the Python docker-compose 1.x, which itself
reads env files with python-dotenv; PyPI has no compose-go; the npm wrapper of compose-go downloads its binary
from outside the registries), so ``ComposeReader`` below follows compose-go's ``dotenv/parser.go`` and
``template/template.go`` rule by rule, and is itself checked against expectations from compose-go's own tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credstore.errors import UnrepresentableValue, UsageError
from credstore.shells import render

try:  # works whether or not tests/ is a package
    from tests.test_shells import HOSTILE, VALUES
except ImportError:  # pragma: no cover
    from test_shells import HOSTILE, VALUES  # type: ignore[no-redef]

dotenv = pytest.importorskip("dotenv", reason="python-dotenv is in the test extra: pip install -e '.[test]'")

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- docker compose's reader (compose-go)


class ComposeError(Exception):
    pass


def _go_is_space(ch: str) -> bool:  # Go's unicode.IsSpace
    return ch in "\t\n\v\f\r \x85\xa0" or (ch.isspace() and ch not in "\x1c\x1d\x1e\x1f")


def _compose_inline_space(ch: str) -> bool:  # parser.go's isSpace: no line break
    return ch in "\t\v\f\r \x85\xa0"


_COMPOSE_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-9]{0,3})")
_GO_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_GO_SIMPLE_ESCAPES['"'] = '"'
# template.go's pattern, "\$(?i:(\$)|([_a-z][_a-z0-9]*)|{(?:([_a-z][_a-z0-9]*(?::?[-+?](.*))?)}|()))", with Go's case
# folding of [_a-z] spelled out: A-Z plus U+017F and U+212A (Python's re.I would add U+0130 and U+0131, Go's does
# not; credstore treats those two as letters anyway).
_GO_NAME_START = "[_a-zA-Z\u017f\u212a\u0130\u0131]"
_GO_NAME = f"{_GO_NAME_START}[_a-zA-Z0-9\u017f\u212a\u0130\u0131]*"
_COMPOSE_TEMPLATE = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<named>{_GO_NAME})|\{{(?:(?P<braced>{_GO_NAME}(?::?[-+?](.*))?)\}}|(?P<invalid>)))"
)


def _compose_expand_escapes(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        seq = match.group()
        if seq == "\\$":
            return "$$"
        if seq.startswith("\\0"):
            seq = "\\" + seq[2:]  # compose rewrites \0NNN to Go's \NNN, and returns the rewritten text on error
            digits = seq[1:]
            if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) <= 0o377:
                return chr(int(digits, 8))
            return seq
        return _GO_SIMPLE_ESCAPES.get(seq[1], seq)  # \c is in the pattern but no Go escape: kept

    return _COMPOSE_ESCAPE.sub(one, text)


def _compose_substitute(text: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return env.get(match.group("named"), "")
        braced = match.group("braced")
        if braced is not None:
            if re.fullmatch(_GO_NAME, braced):
                return env.get(braced, "")
            raise ComposeError(f"substitution with a modifier: {braced!r}")  # never expected from credstore
        raise ComposeError("Invalid template")

    return _COMPOSE_TEMPLATE.sub(one, text)


def compose_read(text: str) -> dict[str, str]:
    """What docker compose reads from an ``env_file:`` / ``.env`` file (compose-go dotenv.ParseWithLookup with no
    outside variables): the rules of compose-go's dotenv/parser.go, one by one."""
    out: dict[str, str] = {}
    src = text.removeprefix("\ufeff")
    while True:
        # getStatementStart: skip whitespace and comment lines
        while True:
            pos = next((i for i, ch in enumerate(src) if not _go_is_space(ch)), -1)
            if pos == -1:
                return out
            src = src[pos:]
            if src[0] != "#":
                break
            newline = src.find("\n")
            if newline == -1:
                return out
            src = src[newline:]
        # locateKeyName
        if re.match(r"export[\t\n\f\r ]+", src):
            src = src[len("export") :].lstrip("\t\v\f\r \x85\xa0")
        for i, ch in enumerate(src):
            if _compose_inline_space(ch):
                continue
            if ch in "=:\n":
                key, offset, inherited = src[:i], i + 1, ch == "\n"
                break
            if not (ch in "_.-[]" or ch.isalpha() or ch.isnumeric()):
                raise ComposeError(f"unexpected character {ch!r} in variable name")
        else:
            raise ComposeError("no '=' after a name")
        key = key.rstrip()
        src = src[offset:].lstrip("\t\v\f\r \x85\xa0")
        if " " in key:
            raise ComposeError("key cannot contain a space")
        if inherited:
            continue
        # extractVarValue
        if not src or src[0] not in "'\"":
            value, _, src = src.partition("\n")
            value = value.split(" #", 1)[0]
            while value and _go_is_space(value[-1]):
                value = value[:-1]
            out[key] = _compose_substitute(value, out)
            continue
        quote = src[0]
        chars: list[str] = []
        escaped = False
        for i in range(1, len(src)):
            ch = src[i]
            if ch != quote:
                if not escaped and ch == "\\":
                    escaped = True
                    continue
                if escaped:
                    escaped = False
                    chars.append("\\")
                chars.append(ch)
                continue
            if escaped:  # \" or \' (the quote in use) stands for the quote
                escaped = False
                chars.append(ch)
                continue
            value = "".join(chars)
            if quote == '"':
                value = _compose_substitute(_compose_expand_escapes(value), out)
            out[key] = value
            src = src[i + 1 :]
            break
        else:
            raise ComposeError("unterminated quoted value")


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [  # expectations from compose-go's dotenv/godotenv_test.go (Go string literals written as Python ones)
        ('FOO="escaped\\"bar"', "FOO", 'escaped"bar'),
        ('FOO="\\"quoted\\""', "FOO", '"quoted"'),
        ("FOO='bar'", "FOO", "bar"),
        ("export OPTION_B='\\n'", "OPTION_B", "\\n"),
        ('FOO="bar\\nbaz"', "FOO", "bar\nbaz"),
        ("FOO=a\\tb", "FOO", "a\\tb"),
        ('KEY="Z\\aZ\\bZ\\fZ\\nZ\\rZ\\tZ\\vZ\\\\Z\\0123Z"', "KEY", "Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\ZSZ"),
        ("FOO=bar #this is foo", "FOO", "bar"),
        ("FOO=123#not-an-inline-comment", "FOO", "123#not-an-inline-comment"),
        ("FOO='bar#baz' # comment", "FOO", "bar#baz"),
        ('FOO="bar\\\\\\n\\ b\\az"', "FOO", "bar\\\n\\ b\az"),
        ('FOO="bar\\nbaz\\\\"', "FOO", "bar\nbaz\\"),
        ('KEY="\\x07"', "KEY", "\\x07"),
        ("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar"),
        ("FOO=bar ", "FOO", "bar"),
        ("FOO=$$x", "FOO", "$x"),
        ('FOO="\\$x"', "FOO", "$x"),
        ("FOO='$x'", "FOO", "$x"),
        ("FOO=$UNSET_IN_TEST", "FOO", ""),
    ],
)
def test_compose_reader_agrees_with_compose_go_tests(line: str, key: str, value: str) -> None:
    assert compose_read(line) == {key: value}


def test_compose_reader_rejects_what_compose_rejects() -> None:
    for bad in ("FOO='unterminated", 'FOO="a\\"', "FOO=${", "FO O=x"):
        with pytest.raises(ComposeError):
            compose_read(bad)


# --------------------------------------------------------------------------- python-dotenv (real)


def python_dotenv_values(text: str, tmp_path: Path) -> dict[str, str | None]:
    path = tmp_path / "values.env"
    path.write_bytes(text.encode("utf-8"))
    return dict(dotenv.dotenv_values(path))  # interpolation on: the default


_LOADER = """
import json, os, sys
from dotenv import load_dotenv
before = set(os.environ)
assert load_dotenv(sys.argv[1])  # interpolation on, the default
sys.stdout.write(json.dumps({k: v for k, v in os.environ.items() if k not in before}))
"""


def python_load_dotenv(text: str, tmp_path: Path) -> dict[str, str]:
    """``load_dotenv()`` in a fresh interpreter: what a Python program started next to the file would see."""
    path = tmp_path / "load.env"
    path.write_bytes(text.encode("utf-8"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    proc = subprocess.run(
        [sys.executable, "-c", _LOADER, str(path)], env=env, capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    return json.loads(proc.stdout)


def both_read(text: str, tmp_path: Path) -> tuple[dict[str, str | None], dict[str, str]]:
    return python_dotenv_values(text, tmp_path), compose_read(text)


# --------------------------------------------------------------------------- the dotenv format


def assert_no_form_carries(value: str, tmp_path: Path) -> None:
    """A refusal is needed: each form a .env file offers (double quotes with escapes, single quotes, unquoted) is
    misread by python-dotenv or by compose, or breaks the line after it."""
    double = '"' + value.translate(str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})) + '"'
    single = "'" + value.replace("'", "\\'") + "'"
    for candidate in (double, single, value):
        text = f'A={candidate}\nB="after"\n'
        try:
            read = both_read(text, tmp_path)
        except ComposeError:
            continue
        assert read != ({"A": value, "B": "after"}, {"A": value, "B": "after"}), f"{candidate!r} would do"


# Values the dotenv format must refuse, and why: python-dotenv expands ${HOME} in every form (CMDSUB); a '$' that
# compose expands together with backslashes the two read differently in single quotes (FISH_ESC, BACKSLASH).
HOSTILE_REFUSED = {"CMDSUB", "FISH_ESC", "BACKSLASH"}


def test_issue_example_comment_and_quotes_round_trip(tmp_path: Path) -> None:
    # Issue 12, item 11: ` #hash` came back truncated from python-dotenv, quotes and $ were changed.
    values = {
        "HASH": "abc #hash",
        "QUOTED": "'single' \"double\"",
        "DOLLAR": "pa$$word $USER",
        "SPACES": "  padded  ",
        "EMPTY": "",
        "MULTI": "line1\nline2\r\n",
    }
    text = render(list(values.items()), fmt="dotenv")
    assert both_read(text, tmp_path) == (values, values)
    assert python_load_dotenv(text, tmp_path) == values


def test_hostile_values_round_trip_or_are_refused(tmp_path: Path) -> None:
    carried: dict[str, str] = {}
    refused: set[str] = set()
    for name, value in HOSTILE.items():
        try:
            render([(name, value)], fmt="dotenv")
        except UnrepresentableValue as exc:
            assert name in str(exc) and value not in str(exc)
            refused.add(name)
        else:
            carried[name] = value
    assert refused == HOSTILE_REFUSED
    text = render(list(carried.items()), fmt="dotenv")
    values, compose = both_read(text, tmp_path)
    assert values == carried
    assert compose == carried
    assert python_load_dotenv(text, tmp_path) == {k: v for k, v in carried.items()}


@pytest.mark.parametrize(
    ("value", "form"),
    [
        ("plain", '"plain"'),
        ('it\'s "q"\n\r\\', None),  # ends with a backslash, has a line break: refused
        ("C:\\dir\\", "C:\\dir\\"),  # ends with a backslash: unquoted
        ("#x\\", "#x\\"),  # a '#' with no space before it is no comment
        ("\tx\\", None),  # unquoted, both readers strip the tab
        ("\u3000x\\", None),  # ... and any Unicode space
        ("x\u2028#y\\", None),  # python-dotenv cuts a comment after any space, compose after ' ' only
        ("x #y\\", None),
        ("'x\\", None),  # unquoted it would start a quoted value
        ("$HOME 'x' \\n", "'$HOME \\'x\\' \\n'"),  # compose's '$': single quotes
        ("$0 $( $", '"$0 $( $"'),  # a '$' compose leaves alone: double quotes
    ],
)
def test_each_form(value: str, form: str | None, tmp_path: Path) -> None:
    if form is None:
        with pytest.raises(UnrepresentableValue):
            render([("A", value)], fmt="dotenv")
        assert_no_form_carries(value, tmp_path)
        return
    text = render([("A", value)], fmt="dotenv")
    assert text == f"A={form}\n"
    assert both_read(text, tmp_path) == ({"A": value}, {"A": value})


# Characters that matter to either reader, frequent; any other character too (not NUL, not lone surrogates).
DOTENV_CHAR = st.characters(blacklist_categories=("Cs",), blacklist_characters="\0") | st.sampled_from(
    [*"$${}\\\\''\"\"#  \t\n\r=:_aZ\x85\xa0\u2028\u212a\x1c", "\\'", '\\"', " #", "${", "$$", "\\\\", "\r\n"]
)
DOTENV_VALUES = st.lists(st.lists(DOTENV_CHAR, max_size=24).map("".join), min_size=1, max_size=8)


@settings(max_examples=400, deadline=None)
@given(values=DOTENV_VALUES | VALUES)
def test_any_value_round_trips_or_is_refused(values: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp_path = tmp_path_factory.mktemp("dotenv")
    carried: dict[str, str] = {}
    for i, value in enumerate(values):
        name = f"V{i}"
        try:
            render([(name, value)], fmt="dotenv")
        except UnrepresentableValue as exc:
            assert name in str(exc)
            assert_no_form_carries(value, tmp_path)
            continue
        carried[name] = value
    text = render(list(carried.items()), fmt="dotenv")
    assert both_read(text, tmp_path) == (carried, carried)


def test_load_dotenv_over_property_examples(tmp_path: Path) -> None:
    # load_dotenv() in a real process, over a fixed sample of the property test's hard cases.
    values = {
        "A": "\\'\\\"\\\\ # $ { } \n\r\n",
        "B": "$x '\\n' #",
        "C": "x\\",
        "D": "\u2028\x85\xa0 \u212a",
        "E": "#not a comment",
        "F": "$\u212a",
    }
    text = render(list(values.items()), fmt="dotenv")
    assert python_load_dotenv(text, tmp_path) == values
    assert compose_read(text) == values


@pytest.mark.parametrize(
    "secret",
    [
        "${HOME}hunter2",
        "hunter2a${X:-y}b",
        "${}hunter2",
        "$x hunter2\r",
        "$x hunter2\\\\",
        "$x hunter2\\'",
        "$x hunter2\\",
        "hunter2\n\\",
        " hunter2\\",
        "'hunter2\\",
        "a #hunter2\\",
    ],
)
def test_refused_values_name_the_variable_only(secret: str) -> None:
    with pytest.raises(UnrepresentableValue) as info:
        render([("OK", "fine"), ("HF_TOKEN", secret)], fmt="dotenv")
    message = str(info.value)
    assert "HF_TOKEN" in message and "hunter2" not in message
    assert "\n" not in message and "\r" not in message
    assert isinstance(info.value, UsageError)


def test_nul_is_refused_in_dotenv() -> None:
    with pytest.raises(UnrepresentableValue):
        render([("A", "a\0b")], fmt="dotenv")


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def store_env(tmp_path: Path) -> dict[str, str]:
    env = {
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "CREDSTORE_HOME": str(tmp_path / "store"),
        "PYTHONPATH": str(REPO),
        "SHELL": "/bin/sh",
    }
    init = [sys.executable, "-m", "credstore", "init", "--protection", "keyfile"]
    subprocess.run(init, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=True)
    return env


def _credstore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "credstore", *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120
    )


def test_cli_dotenv_and_docker_formats(store_env: dict[str, str], tmp_path: Path) -> None:
    values = {"HASH_KEY": "abc #hash", "QUOTE_KEY": 'it\'s "x" $1', "BACKSLASH_KEY": "a\\b\\"}
    sets = [arg for name, value in values.items() for arg in ("--set", f"{name}={value}")]
    out = _credstore(store_env, "env", "--format", "dotenv", *sets)
    assert out.returncode == 0, out.stderr
    assert python_load_dotenv(out.stdout.decode(), tmp_path) == values
    assert compose_read(out.stdout.decode()) == values
    docker = _credstore(store_env, "env", "--format", "docker", *sets)
    assert docker.returncode == 0, docker.stderr
    lines = docker.stdout.decode().splitlines()
    assert sorted(lines) == sorted(f"{k}={v}" for k, v in values.items())


def test_cli_dotenv_refusal_is_exit_2_with_nothing_on_stdout(store_env: dict[str, str]) -> None:
    out = _credstore(store_env, "env", "--format", "dotenv", "--set", "GOOD=x", "--set", "BAD_KEY=s3cret${HOME}")
    assert out.returncode == 2 and out.stdout == b""
    assert b"BAD_KEY" in out.stderr and b"s3cret" not in out.stderr
    assert out.stderr.startswith(b"credstore: ") and out.stderr.count(b"\n") == 1
    multi = _credstore(store_env, "env", "--format", "docker", "--set", "MULTI_KEY=two\nlines")
    assert multi.returncode == 2 and multi.stdout == b"" and b"MULTI_KEY" in multi.stderr
