"""The W&B attribution warning: a service account's WANDB_API_KEY in use without the person's WANDB_USERNAME is
warned about, wherever the service lives (local service store or OpenBao), and only then."""

from __future__ import annotations

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
    from credstore.resolver.gather import attribution_warning

    return attribution_warning(gathered, environ or {}) or ""


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
