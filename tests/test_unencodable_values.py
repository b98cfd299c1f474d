"""A value UTF-8 cannot encode (a lone surrogate, or argv bytes that are not UTF-8) is a usage error naming the
variable, never echoing the value; nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from credstore.errors import EXIT_USAGE, UsageError

LONE = "key-\ud800-rest"


def test_check_value_refuses_a_lone_surrogate() -> None:
    from credstore.catalog import check_value

    with pytest.raises(UsageError) as info:
        check_value("MY_TOKEN", LONE)
    message = str(info.value)
    assert "MY_TOKEN" in message and "UTF-8" in message
    assert "\ud800" not in message and "key-" not in message
    check_value("MY_TOKEN", "ключ-🔑")  # other non-ASCII text is fine


def test_python_api_refuses_a_lone_surrogate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import credstore

    monkeypatch.setenv("CREDSTORE_HOME", str(tmp_path / "store"))
    with pytest.raises(UsageError, match="the value for X is not valid Unicode text"):
        credstore.resolve(X=LONE)
    with pytest.raises(UsageError, match="the value for X"), credstore.environ(X=LONE):
        pass
    assert "X" not in os.environ


def test_cli_refuses_undecodable_argv_bytes(cli) -> None:
    """Bytes that are not UTF-8 in argv reach Python as lone surrogates: refused with exit 2, nothing stored."""
    import subprocess

    from tests.conftest import credstore_argv

    cli("init", "--protection", "keyfile", check=True)
    for args in ([b"set", b"--plain", b"MY_SETTING", b"caf\xe9"], [b"env", b"--set", b"MY_SETTING=caf\xe9"]):
        proc = subprocess.run([*credstore_argv(), *args], env=cli.env, capture_output=True, timeout=60)
        assert proc.returncode == EXIT_USAGE, proc.stderr
        assert proc.stderr.startswith(b"credstore: the value for MY_SETTING is not valid Unicode text")
        assert b"caf" not in proc.stderr + proc.stdout
    assert cli("get", "MY_SETTING").returncode != 0
