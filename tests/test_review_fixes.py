"""Small bugs found by the adversarial review, each pinned by a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from credstore import config
from credstore.errors import EXIT_USAGE, UsageError

# -- an explicitly empty profile is a usage error, not the default profile ------------------------------------------


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


# -- a value UTF-8 cannot encode is a usage error naming the variable ----------------------------------------------

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


# -- the W&B attribution warning fires for a service account wherever it lives ----------------------------------------

VAULT_SERVICE = "vault:secret/credstore/services/ml-team"
VAULT_PROFILE = "vault:secret/credstore/users/alice/default"


def _gathered(layers, service: str | None = "ml-team", service_source: str | None = VAULT_SERVICE):
    from credstore.resolver.gather import Gathered
    from credstore.store.base import Snapshot

    return Gathered(layers, None, b"", Snapshot(), service, service_source)


def _layers(service_values: dict, profile_values: dict, environment: dict | None = None, service=VAULT_SERVICE):
    from credstore.resolver.layers import ARGUMENT, ENVIRONMENT, Layer, Value

    def values(d: dict) -> dict:
        return {k: Value(v, True) for k, v in d.items()}

    return [
        Layer(ARGUMENT, {}),
        Layer(ENVIRONMENT, values(environment or {})),
        Layer(service, values(service_values)),
        Layer(VAULT_PROFILE, values(profile_values)),
    ]


def _warning(capsys, gathered, environ: dict | None = None) -> str:
    from credstore.resolver.gather import warn_attribution

    warn_attribution(gathered, environ or {})
    return capsys.readouterr().err


def test_attribution_warning_for_a_service_account_on_openbao(capsys) -> None:
    err = _warning(capsys, _gathered(_layers({"WANDB_API_KEY": "k"}, {})))
    assert f"WANDB_API_KEY comes from {VAULT_SERVICE} but WANDB_USERNAME is not set" in err


def test_attribution_warning_for_a_local_service_account(capsys) -> None:
    layers = _layers({"WANDB_API_KEY": "k"}, {}, service="service:ml-team")
    assert "WANDB_USERNAME is not set" in _warning(capsys, _gathered(layers, service_source="service:ml-team"))


def test_no_attribution_warning_when_the_key_is_not_the_services(capsys) -> None:
    # The person's own key wins (environment), or the key is only in the person's profile.
    assert _warning(capsys, _gathered(_layers({"WANDB_API_KEY": "k"}, {}, environment={"WANDB_API_KEY": "e"}))) == ""
    assert _warning(capsys, _gathered(_layers({}, {"WANDB_API_KEY": "mine"}))) == ""
    # No service in use at all, even if a layer's source looks like one.
    layers = _layers({"WANDB_API_KEY": "k"}, {}, service="service:ml-team")
    assert _warning(capsys, _gathered(layers, service=None, service_source=None)) == ""


def test_no_attribution_warning_when_the_person_is_named(capsys) -> None:
    assert _warning(capsys, _gathered(_layers({"WANDB_API_KEY": "k"}, {"WANDB_USERNAME": "alice"}))) == ""
    assert _warning(capsys, _gathered(_layers({"WANDB_API_KEY": "k"}, {})), {"WANDB_USERNAME": "alice"}) == ""
