"""An explicitly empty profile (`--profile ""`, `--profile=`, the API's `profile=""`) is a usage error, never the
default profile; an empty CREDSTORE_PROFILE means unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from credstore import config
from credstore.errors import EXIT_USAGE, UsageError


@pytest.mark.parametrize(
    "args",
    [
        ("--profile", "", "list"),
        ("--profile=", "list"),
        ("--profile", "", "set", "WANDB_USERNAME", "alice"),
        ("--profile", "", "env"),  # the hand-parsed hot path
        ("--profile=", "exec", "--", "true"),
    ],
)
def test_empty_profile_option_is_a_usage_error(cli, args: tuple[str, ...]) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_USERNAME", "default-user", check=True)
    result = cli(*args)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert result.stderr.startswith("credstore: --profile is empty")
    assert "default-user" not in result.stdout
    assert cli("get", "WANDB_USERNAME").stdout.strip() == "default-user"  # nothing was written anywhere


def test_empty_environment_profile_means_unset(cli) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_USERNAME", "default-user", check=True)
    result = cli("get", "WANDB_USERNAME", env={"CREDSTORE_PROFILE": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "default-user"


def test_profile_name_distinguishes_none_from_empty() -> None:
    assert config.profile_name(None, {}) == "default"
    assert config.profile_name(None, {"CREDSTORE_PROFILE": ""}) == "default"
    assert config.profile_name(None, {"CREDSTORE_PROFILE": "work"}) == "work"
    assert config.profile_name("mine", {"CREDSTORE_PROFILE": "work"}) == "mine"
    with pytest.raises(UsageError, match="--profile is empty"):
        config.profile_name("", {"CREDSTORE_PROFILE": "work"})


def test_python_api_empty_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import credstore

    monkeypatch.setenv("CREDSTORE_HOME", str(tmp_path / "store"))
    with pytest.raises(UsageError, match="--profile is empty"):
        credstore.resolve("wandb", profile="")
