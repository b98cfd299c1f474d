"""A value the terminal's character set cannot show: a clean one-line error that quotes no part of it, with or
without CREDSTORE_DEBUG=1 (issue 13, informational finding). Run in a real ISO-8859-1 locale made with
``localedef`` (in a private LOCPATH, not the system's locale archive), PYTHONIOENCODING and PYTHONUTF8 unset."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fixtures_services import REQUIRE_ENV, require_binary

SECRET_TAIL = secrets.token_hex(6)
# 12 characters before the euro sign, as in the report ("character '\u20ac' in position 12").
VALUE = "abcdefghijkl\u20acmno-" + SECRET_TAIL


@pytest.fixture(scope="module")
def latin1_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    localedef = require_binary("localedef")
    if not Path("/usr/share/i18n/charmaps/ISO-8859-1.gz").exists():
        reason = "the ISO-8859-1 charmap is missing: apt-get install locales (scripts/test.sh does it as root)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    where = tmp_path_factory.mktemp("locales")
    made = subprocess.run(
        [localedef, "-i", "en_US", "-f", "ISO-8859-1", str(where / "en_US.ISO-8859-1")],
        capture_output=True,
        text=True,
    )
    # localedef exits 1 for warnings (e.g. characters the charset lacks) while still writing the locale.
    if not (where / "en_US.ISO-8859-1" / "LC_CTYPE").exists():
        pytest.skip(f"localedef could not build en_US.ISO-8859-1: {made.stderr.strip()[-300:]}")
    env = {"LOCPATH": str(where), "LANG": "en_US.ISO-8859-1", "LC_ALL": "en_US.ISO-8859-1"}
    check = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.stdout.encoding)"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert check.stdout.strip().lower().replace("_", "-") in ("iso8859-1", "iso-8859-1", "latin-1"), check
    return env


def leaks(text: str) -> list[str]:
    """Every part of VALUE (or a trace of the unencodable character) that appears in ``text``."""
    found = [part for part in ("\u20ac", "\\u20ac", "u20ac", "position", "abcdefghijkl", SECRET_TAIL) if part in text]
    return found


@pytest.mark.parametrize("debug", ["", "1"])
def test_get_in_a_latin1_locale_is_a_clean_error_without_the_value(cli, latin1_env: dict[str, str], debug) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "MY_TOKEN", input=VALUE.encode(), check=True)  # stored from a UTF-8 locale
    env = {**latin1_env, "CREDSTORE_DEBUG": debug}
    for args in (
        ("get", "MY_TOKEN"),
        ("env",),
        ("env", "--shell", "fish"),
        ("env", "--format", "dotenv"),
        ("exec", "--", "true"),  # the child's environment is encoded in the locale's character set too
    ):
        r = cli(*args, env=env)
        err = r.stderr
        assert r.returncode == 1, (args, r.returncode, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("credstore: "), (args, err)
        assert "character set" in err and "Traceback" not in err, (args, err)
        assert leaks(err) == [] and leaks(r.stdout) == [], (args, err)
        assert r.stdout == "", args
    # JSON escapes non-ASCII, so it works in any locale.
    r = cli("env", "--format", "json", env=env)
    assert r.returncode == 0 and "\\u20ac" in r.stdout
    # The stored value is intact and still read in a UTF-8 locale.
    assert cli("get", "MY_TOKEN").stdout_bytes == VALUE.encode() + b"\n"


FORCED_ERROR = """
import sys
from credstore.app import entries

def broken(ctx, name):
    secret = {value!r}
    raise ValueError("could not handle " + secret)  # a bug whose message quotes data

entries.get = broken
from credstore.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_debug_traceback_names_the_error_but_quotes_no_message(cli) -> None:
    cli("init", "--protection", "keyfile", check=True)
    env = {**cli.env, "CREDSTORE_DEBUG": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", FORCED_ERROR.format(value=VALUE), "get", "MY_TOKEN"],
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1
    # Useful for a developer: where it happened and what kind of error it was.
    assert "Traceback" in err and "ValueError" in err and "broken" in err
    assert "could not handle" not in err and leaks(err) == [], err
