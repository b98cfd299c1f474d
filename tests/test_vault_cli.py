"""The real `credstore` command on an OpenBao / Vault KV v2 profile, against a real OpenBao dev server. No mocks.

Every "host" is a separate HOME (its own local encrypted store holding the token); one person's hosts share the
entries through the engine.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CLI, credstore_argv
from tests.fixtures_services import OpenBao, start_openbao

pytest.importorskip("hvac", reason="hvac not installed (pip install 'credstore[vault]')")

WANDB = "a1b2c3d4e5f6a7b8c9d0" * 2  # 40 hex characters, the shape of a W&B key


def host(tmp_path: Path, name: str) -> CLI:
    home = tmp_path / name
    home.mkdir(mode=0o700)
    return CLI(home)


def new_user() -> str:
    return f"u{secrets.token_hex(4)}"


def make_token(bao: OpenBao, *, policies: list[str] | None = None, ttl: str = "1h", **extra: object) -> str:
    data = {"policies": policies or ["root"], "ttl": ttl, **extra}
    if policies and "root" not in policies:
        data["no_parent"] = True
    return bao.request("POST", "auth/token/create", data)["auth"]["client_token"]


def connect(cli: CLI, bao: OpenBao, user: str, token: str, *extra: str, profile: str | None = None) -> None:
    args = ["--profile", profile] if profile else []
    result = cli(
        *args,
        "init",
        "--backend",
        "vault",
        "--url",
        bao.url,
        "--user",
        user,
        "--protection",
        "keyfile",
        *extra,
        input=token,
    )
    assert result.returncode == 0, result.stderr
    assert "connected to" in result.stderr and token not in result.stderr


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def assert_not_on_disk(root: Path, *needles: str) -> None:
    for path in files_under(root):
        data = path.read_bytes()
        for needle in needles:
            assert needle.encode() not in data, f"{needle[:6]}... found in plaintext in {path}"


# -- the same entries everywhere ----------------------------------------------------------------------------------


def test_two_hosts_of_one_person_see_the_same_entries(openbao: OpenBao, tmp_path: Path) -> None:
    user, token = new_user(), make_token(openbao)
    a, b = host(tmp_path, "host-a"), host(tmp_path, "host-b")
    connect(a, openbao, user, token)
    connect(b, openbao, user, token)
    assert a("set", "WANDB_API_KEY", input=WANDB).returncode == 0
    assert a("set", "WANDB_ENTITY", "alice").returncode == 0

    assert b("get", "WANDB_API_KEY", check=True).stdout == WANDB + "\n"
    listed = json.loads(b("list", "--json", check=True).stdout)
    assert {r["name"] for r in listed} == {"WANDB_API_KEY", "WANDB_ENTITY"}
    assert b("set", "HF_TOKEN", input="hf_" + "x" * 34).returncode == 0
    env_a = a("env", "--shell", "bash", check=True).stdout
    assert f"export WANDB_API_KEY='{WANDB}'" in env_a and "export HF_TOKEN='hf_" in env_a
    assert a("rm", "WANDB_ENTITY").returncode == 0
    assert b("get", "WANDB_ENTITY").returncode == 3
    # The local stores hold no entries: only the connection and the token.
    assert_not_on_disk(a.home, WANDB, token)
    assert_not_on_disk(b.home, WANDB, token)


def test_every_command_works_on_vault(openbao: OpenBao, tmp_path: Path) -> None:
    user = new_user()
    cli = host(tmp_path, "h")
    connect(cli, openbao, user, make_token(openbao))
    source = f"vault:secret/credstore/users/{user}/default"

    assert cli("list").stderr.strip().endswith("is empty")
    assert cli("set", "WANDB_API_KEY", input=WANDB).returncode == 0
    assert cli("set", "WANDB_PROJECT", "demo").returncode == 0
    refused = cli("set", "WANDB_API_KEY", WANDB)  # a secret on argv is refused before the server is asked
    assert refused.returncode == 2 and WANDB not in refused.stderr

    table = cli("list", check=True).stdout
    assert "WANDB_API_KEY" in table and "********" in table and WANDB not in table and "demo" in table

    explained = cli("explain", "wandb", check=True).stdout
    assert f"WANDB_API_KEY: {source} = ********" in explained
    assert f"WANDB_PROJECT: {source} = demo" in explained
    shadow = cli("explain", "WANDB_PROJECT", env={"WANDB_PROJECT": "mine"}, check=True).stdout
    assert f"WANDB_PROJECT: environment = mine  (shadows {source})" in shadow
    as_json = json.loads(cli("explain", "--json", check=True).stdout)
    assert {r["source"] for r in as_json} == {source}

    env = cli("env", "--shell", "bash", check=True).stdout
    assert f"export WANDB_API_KEY='{WANDB}'" in env and "CREDSTORE_EXPORTED" in env
    dotenv = cli("env", "--format", "docker", "wandb", check=True).stdout
    assert f"WANDB_API_KEY={WANDB}" in dotenv
    ran = cli("exec", "--", "sh", "-c", 'printf %s "$WANDB_API_KEY:$WANDB_PROJECT"', check=True)
    assert ran.stdout == f"{WANDB}:demo"
    assert cli("exec", "--", "false").returncode == 1  # the command's own status

    new = "f" * 40
    assert cli("set", "WANDB_API_KEY", input=new).returncode == 0
    assert cli("get", "WANDB_API_KEY", check=True).stdout == new + "\n"

    assert cli("rm", "WANDB_PROJECT").returncode == 0
    missing = cli("rm", "WANDB_PROJECT")
    assert missing.returncode == 3 and "not stored" in missing.stderr
    assert cli("get", "WANDB_PROJECT").returncode == 3
    # The value history lives in KV v2: the data of the rotated key was written as new versions.
    meta = openbao.request("GET", f"secret/metadata/credstore/users/{user}/default/vars/WANDB_API_KEY")["data"]
    assert int(meta["current_version"]) >= 2


def test_refreshes_old_export_across_hosts(openbao: OpenBao, tmp_path: Path) -> None:
    """Host A changes the key; host B's shell, which exported the old value, gets the new one on its next env."""
    user, token = new_user(), make_token(openbao)
    a, b = host(tmp_path, "a"), host(tmp_path, "b")
    connect(a, openbao, user, token)
    connect(b, openbao, user, token)
    a("set", "WANDB_API_KEY", input=WANDB, check=True)
    cmd = " ".join(credstore_argv())
    script = f"""
        eval "$({cmd} env --shell bash)"
        printf '%s\\n' "$WANDB_API_KEY"
        read -r _
        eval "$({cmd} env --shell bash)"
        printf '%s\\n' "$WANDB_API_KEY"
    """
    proc = subprocess.Popen(
        ["bash", "-c", script], env=b.env, cwd=b.home, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == WANDB
    a("set", "WANDB_API_KEY", input="e" * 40, check=True)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "e" * 40
    assert proc.wait(timeout=60) == 0


# -- tokens -------------------------------------------------------------------------------------------------------


def test_token_never_leaks(openbao: OpenBao, tmp_path: Path) -> None:
    user, token = new_user(), make_token(openbao)
    cli = host(tmp_path, "h")
    connect(cli, openbao, user, token, "--cache-max-age", "1d")
    cli("set", "WANDB_API_KEY", input=WANDB, check=True)
    outputs = [
        cli("list", "--json"),
        cli("env", "--format", "json"),
        cli("explain", "--json"),
        cli("vault", "status"),
        cli("vault", "status", "--json"),
        cli("exec", "--", "env"),  # the child's whole environment
    ]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert token not in result.stdout and token not in result.stderr
    assert WANDB in outputs[1].stdout and WANDB in outputs[5].stdout
    assert "vault.token" not in outputs[1].stdout
    assert [r["name"] for r in json.loads(outputs[0].stdout)] == ["WANDB_API_KEY"]  # no reserved entry listed
    status = json.loads(outputs[4].stdout)
    assert status["token_from"] == "local store (token)" and status["entries"] == 1
    assert status["cache"]["entries"] == 1
    assert not (cli.home / ".vault-token").exists()
    assert_not_on_disk(cli.home, token, WANDB)


def test_token_argv_is_refused_and_login_replaces_it(openbao: OpenBao, tmp_path: Path) -> None:
    user = new_user()
    cli = host(tmp_path, "h")
    connect(cli, openbao, user, make_token(openbao))
    extra = cli("vault", "login", "s.sometoken")
    assert extra.returncode == 2 and "s.sometoken" not in extra.stderr
    second = make_token(openbao)
    login = cli("vault", "login", input=second + "\n")
    assert login.returncode == 0 and "token stored" in login.stderr and second not in login.stderr
    assert cli("set", "WANDB_ENTITY", "x").returncode == 0
    # Revoke it: the next command fails cleanly, naming the fix.
    openbao.request("POST", "auth/token/revoke", {"token": second})
    failed = cli("env")
    assert failed.returncode == 5 and failed.stdout == ""
    assert "credstore vault login" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    no_traceback(failed)
    assert cli("vault", "logout").returncode == 0
    gone = cli("list")
    assert gone.returncode == 5 and "credstore vault login" in gone.stderr


def test_wrong_and_expired_tokens_are_clean_auth_errors(openbao: OpenBao, tmp_path: Path) -> None:
    user = new_user()
    cli = host(tmp_path, "h")
    bad = "s." + secrets.token_hex(12)
    refused = cli(
        "init", "--backend", "vault", "--url", openbao.url, "--user", user, "--protection", "keyfile", input=bad
    )
    assert refused.returncode == 5 and bad not in refused.stderr
    no_traceback(refused)
    assert files_under(cli.home) == [] or not (cli.store_dir / "profiles" / "default.store").exists()

    short = make_token(openbao, ttl="3s", renewable=False)
    connect(cli, openbao, user, short)
    assert cli("set", "WANDB_ENTITY", "alice").returncode == 0
    time.sleep(4.5)
    for args in (("env",), ("list",), ("get", "WANDB_ENTITY"), ("set", "WANDB_ENTITY", "bob"), ("exec", "--", "true")):
        result = cli(*args)
        assert result.returncode == 5, (args, result.stderr)
        assert result.stdout == "" and "expired or invalid; run `credstore vault login`" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        no_traceback(result)
    # A wrong token from the environment wins (the engines' convention) and is named as the culprit.
    fresh = make_token(openbao)
    assert cli("vault", "login", input=fresh).returncode == 0
    assert cli("get", "WANDB_ENTITY", check=True).stdout == "alice\n"
    via_env = cli("get", "WANDB_ENTITY", env={"VAULT_TOKEN": bad})
    assert via_env.returncode == 5 and "$VAULT_TOKEN" in via_env.stderr and bad not in via_env.stderr
    assert cli("get", "WANDB_ENTITY", env={"BAO_TOKEN": fresh}).stdout == "alice\n"


def test_env_token_only_profile(openbao: OpenBao, tmp_path: Path) -> None:
    """VAULT_TOKEN alone (nothing stored) is honoured."""
    user, token = new_user(), make_token(openbao)
    cli = host(tmp_path, "h")
    connect(cli, openbao, user, token)
    assert cli("vault", "logout").returncode == 0
    assert cli("set", "WANDB_ENTITY", "e", env={"VAULT_TOKEN": token}).returncode == 0
    status = json.loads(cli("vault", "status", "--json", env={"VAULT_TOKEN": token}, check=True).stdout)
    assert status["token_from"] == "$VAULT_TOKEN"
    assert_not_on_disk(cli.home, token)


def test_approle_login_and_renewal(openbao: OpenBao, tmp_path: Path) -> None:
    user = new_user()
    policy = f"""
    path "secret/data/credstore/users/{user}/*"     {{ capabilities = ["create", "read", "update"] }}
    path "secret/metadata/credstore/users/{user}/*" {{ capabilities = ["read", "list"] }}
    """
    openbao.request("PUT", f"sys/policies/acl/cs-{user}", {"policy": policy})
    auths = openbao.request("GET", "sys/auth")
    if "approle/" not in auths.get("data", auths):
        openbao.request("POST", "sys/auth/approle", {"type": "approle"})
    openbao.request(
        "POST",
        f"auth/approle/role/{user}",
        {"token_policies": [f"cs-{user}"], "token_ttl": "10m", "token_max_ttl": "1h"},
    )
    role_id = openbao.request("GET", f"auth/approle/role/{user}/role-id")["data"]["role_id"]
    secret_id = openbao.request("POST", f"auth/approle/role/{user}/secret-id")["data"]["secret_id"]

    cli = host(tmp_path, "ci")
    result = cli(
        "init",
        "--backend",
        "vault",
        "--url",
        openbao.url,
        "--user",
        user,
        "--protection",
        "keyfile",
        "--approle",
        "--role-id",
        role_id,
        input=secret_id,
    )
    assert result.returncode == 0, result.stderr
    assert secret_id not in result.stderr
    assert cli("set", "WANDB_ENTITY", "ci-bot").returncode == 0
    status = json.loads(cli("vault", "status", "--json", check=True).stdout)
    assert status["token_renewable"] is True and status["token_renewed"] is True
    assert 0 < status["token_ttl"] <= 3600 and f"cs-{user}" in status["policies"]
    assert status["token_from"] == "local store (approle)"
    wrong = cli("vault", "login", "--approle", "--role-id", role_id, input=secrets.token_hex(16))
    assert wrong.returncode == 5
    no_traceback(wrong)
    again = openbao.request("POST", f"auth/approle/role/{user}/secret-id")["data"]["secret_id"]
    assert cli("vault", "login", "--approle", "--role-id", role_id, input=again).returncode == 0
    assert cli("get", "WANDB_ENTITY", check=True).stdout == "ci-bot\n"
    assert_not_on_disk(cli.home, secret_id, again)


# -- access policies ----------------------------------------------------------------------------------------------


def test_alice_token_cannot_read_bobs_path(openbao: OpenBao, tmp_path: Path) -> None:
    alice, bob = new_user(), new_user()
    policy = f"""
    path "secret/data/credstore/users/{alice}/*"     {{ capabilities = ["create", "read", "update"] }}
    path "secret/metadata/credstore/users/{alice}/*" {{ capabilities = ["read", "list"] }}
    """
    openbao.request("PUT", f"sys/policies/acl/cs-{alice}", {"policy": policy})
    alice_token = make_token(openbao, policies=[f"cs-{alice}"])

    bob_host = host(tmp_path, "bob")
    connect(bob_host, openbao, bob, make_token(openbao))
    bob_host("set", "WANDB_API_KEY", input=WANDB, check=True)

    alice_host = host(tmp_path, "alice")
    connect(alice_host, openbao, alice, alice_token)
    alice_host("set", "WANDB_API_KEY", input="a" * 40, check=True)
    assert alice_host("get", "WANDB_API_KEY", check=True).stdout == "a" * 40 + "\n"

    # Alice points a profile at bob's path: the engine's policy says no, whatever the client is told.
    sneaky = alice_host(
        "--profile",
        "bob",
        "init",
        "--backend",
        "vault",
        "--url",
        openbao.url,
        "--user",
        bob,
        "--protection",
        "keyfile",
        input=alice_token,
    )
    assert sneaky.returncode == 0 and "denied" in sneaky.stderr
    for args in (("env",), ("list",), ("get", "WANDB_API_KEY"), ("explain",)):
        result = alice_host("--profile", "bob", *args)
        assert result.returncode == 8, (args, result.stderr)
        assert WANDB not in result.stdout + result.stderr and alice_token not in result.stderr
        assert f"credstore/users/{bob}" in result.stderr
        no_traceback(result)
    write = alice_host("--profile", "bob", "set", "WANDB_API_KEY", input="x" * 40)
    assert write.returncode == 8
    assert bob_host("get", "WANDB_API_KEY", check=True).stdout == WANDB + "\n"


# -- concurrency --------------------------------------------------------------------------------------------------


def test_concurrent_writers_from_several_processes_lose_nothing(openbao: OpenBao, tmp_path: Path) -> None:
    user, token = new_user(), make_token(openbao)
    hosts = [host(tmp_path, f"h{i}") for i in range(2)]
    for h in hosts:
        connect(h, openbao, user, token)
    procs = []
    for i in range(8):
        h = hosts[i % 2]
        procs.append(
            subprocess.Popen(
                [*credstore_argv(), "set", f"VAR_{i}", "--plain", f"value-{i}"],
                env=h.env,
                cwd=h.home,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    listed = {r["name"]: r["value"] for r in json.loads(hosts[0]("list", "--json", check=True).stdout)}
    assert listed == {f"VAR_{i}": f"value-{i}" for i in range(8)}


# -- a server that goes away --------------------------------------------------------------------------------------


@pytest.fixture
def private_bao(tmp_path_factory: pytest.TempPathFactory):
    server = start_openbao(tmp_path_factory.mktemp("bao-private"))
    yield server
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def test_server_down_cache_or_clean_error(private_bao: OpenBao, tmp_path: Path) -> None:
    bao = private_bao
    user = new_user()
    cached, uncached = host(tmp_path, "cached"), host(tmp_path, "uncached")
    connect(cached, bao, user, bao.root_token, "--cache-max-age", "1d", "--timeout", "1")
    connect(uncached, bao, user, bao.root_token, "--timeout", "1")
    cached("set", "WANDB_API_KEY", input=WANDB, check=True)
    cached("set", "WANDB_ENTITY", "alice", check=True)
    online = cached("env", "--shell", "bash", check=True).stdout
    assert uncached("env", "--shell", "bash", check=True).stdout.count("export") == 3

    # Hung server (port open, no answer): bounded by the timeout.
    os.kill(bao.process.pid, signal.SIGSTOP)
    try:
        hung = uncached("env", timeout=30)
        assert hung.returncode == 12 and hung.stdout == ""
        assert "did not answer within 1.0 s" in hung.stderr and len(hung.stderr.strip().splitlines()) == 1
        from_cache = cached("env", "--shell", "bash", timeout=30)
        assert from_cache.returncode == 0 and from_cache.stdout == online
        assert "using the cached copy" in from_cache.stderr
    finally:
        os.kill(bao.process.pid, signal.SIGCONT)

    bao.stop()  # gone for good
    down = uncached("env")
    assert down.returncode == 12 and down.stdout == ""
    assert "not answering" in down.stderr and len(down.stderr.strip().splitlines()) == 1
    no_traceback(down)
    for args in (("list",), ("get", "WANDB_API_KEY"), ("set", "WANDB_ENTITY", "x"), ("exec", "--", "true")):
        result = uncached(*args)
        assert result.returncode == 12, (args, result.stderr)
        no_traceback(result)

    from_cache = cached("env", "--shell", "bash")
    assert from_cache.returncode == 0 and from_cache.stdout == online
    ran = cached("exec", "--", "sh", "-c", 'printf %s "$WANDB_API_KEY"')
    assert ran.returncode == 0 and ran.stdout == WANDB
    assert cached("explain", "WANDB_ENTITY", check=True).stdout.startswith("WANDB_ENTITY: vault:secret/")
    # Writes never go to the cache.
    write = cached("set", "WANDB_ENTITY", "bob")
    assert write.returncode == 12
    no_traceback(write)

    # Older than allowed: a clean error again, and still nothing on stdout.
    assert cached("vault", "cache", "--max-age", "1s").returncode == 0
    time.sleep(1.5)
    stale = cached("env")
    assert stale.returncode == 12 and stale.stdout == "" and "older than the allowed 1s" in stale.stderr
    assert len(stale.stderr.strip().splitlines()) == 1
    no_traceback(stale)
    # The cache never held plaintext on disk, token neither.
    assert_not_on_disk(cached.home, WANDB, "alice", bao.root_token)
    # Turning the cache off drops it.
    assert cached("vault", "cache", "--max-age", "0").returncode == 0
    assert cached("env").returncode == 12


def test_cache_is_refreshed_and_never_plaintext(openbao: OpenBao, tmp_path: Path) -> None:
    user = new_user()
    cli = host(tmp_path, "h")
    connect(cli, openbao, user, make_token(openbao), "--cache-max-age", "12h")
    cli("set", "WANDB_API_KEY", input=WANDB, check=True)
    cli("env", check=True)
    store = cli.store_dir / "profiles" / "default.store"
    first = store.read_bytes()
    cli("env", check=True)
    assert store.read_bytes() == first  # unchanged content: no rewrite on every shell
    cli("set", "WANDB_API_KEY", input="b" * 40, check=True)
    cli("env", check=True)
    assert store.read_bytes() != first
    status = json.loads(cli("vault", "status", "--json", check=True).stdout)
    assert status["cache"]["enabled"] and status["cache"]["entries"] == 1 and status["cache"]["max_age"] == 43200
    assert_not_on_disk(cli.home, WANDB, "b" * 40)


# -- odds and ends ------------------------------------------------------------------------------------------------


def test_init_checks(openbao: OpenBao, tmp_path: Path) -> None:
    cli = host(tmp_path, "h")
    assert cli("init", "--backend", "vault", input="t").returncode == 2  # no --url
    assert cli("init", "--backend", "vault", "--url", "ftp://x", input="t").returncode == 2
    # Plain http only to loopback: elsewhere the token and values would cross the network unencrypted.
    plain = cli("init", "--backend", "vault", "--url", "http://bao.example.org:8200", input="t")
    assert plain.returncode == 2 and "https://" in plain.stderr and len(plain.stderr.splitlines()) == 1
    missing = cli("init", "--backend", "vault", "--url", openbao.url, "--ca-cert", "/nonexistent.pem", input="t")
    assert missing.returncode == 3
    assert cli("init", "--url", openbao.url).returncode == 2  # vault options without --backend vault
    assert cli("init", "--backend", "vault", "--url", openbao.url, "--user", "../x", input="t").returncode == 2
    # A local profile that already holds entries is not silently switched to the server.
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_ENTITY", "local", check=True)
    switched = cli("init", "--backend", "vault", "--url", openbao.url, "--user", new_user(), input=openbao.root_token)
    assert switched.returncode == 2 and "already holds 1 entries" in switched.stderr
    assert cli("get", "WANDB_ENTITY", check=True).stdout == "local\n"
    assert cli("vault", "status").returncode == 2  # not a vault profile
    unreachable = host(tmp_path, "u")(
        "init", "--backend", "vault", "--url", "http://127.0.0.1:9", "--timeout", "1", input="t"
    )
    assert unreachable.returncode == 12
    no_traceback(unreachable)


def test_local_env_does_not_import_hvac(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_ENTITY", "local", check=True)
    probe = (
        "import sys; from credstore.__main__ import main; rc = main(['env']); "
        "sys.stderr.write('HVAC' if 'hvac' in sys.modules or 'requests' in sys.modules else 'CLEAN'); sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=cli.env,
        cwd=cli.home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "WANDB_ENTITY='local'" in result.stdout
    assert result.stderr.endswith("CLEAN")


# -- rotation, reports and service accounts on the engine (commands from the `service` branch) --------------------


def test_rotate_verify_rollback_on_vault(openbao: OpenBao, tmp_path: Path) -> None:
    user, token = new_user(), make_token(openbao)
    a, b = host(tmp_path, "a"), host(tmp_path, "b")
    connect(a, openbao, user, token)
    connect(b, openbao, user, token)
    a("set", "WANDB_API_KEY", input=WANDB, check=True)
    meta_path = f"secret/metadata/credstore/users/{user}/default/vars/WANDB_API_KEY"
    v1 = int(openbao.request("GET", meta_path)["data"]["current_version"])

    refused = a("rotate", "WANDB_API_KEY", "--verify", 'test "$WANDB_API_KEY" = never', input="c" * 40)
    assert refused.returncode == 1 and "was not changed" in refused.stderr
    assert int(openbao.request("GET", meta_path)["data"]["current_version"]) == v1
    assert b("get", "WANDB_API_KEY", check=True).stdout == WANDB + "\n"

    ok = a("rotate", "WANDB_API_KEY", "--verify", f'test "$WANDB_API_KEY" = {"c" * 40}', input="c" * 40)
    assert ok.returncode == 0, ok.stderr
    assert "c" * 40 not in ok.stdout + ok.stderr
    assert int(openbao.request("GET", meta_path)["data"]["current_version"]) == v1 + 1  # a new KV version
    assert b("get", "WANDB_API_KEY", check=True).stdout == "c" * 40 + "\n"  # the other host sees it at once
    status = json.loads(b("status", "--json", check=True).stdout)
    (row,) = [r for r in status if r["name"] == "WANDB_API_KEY"]
    assert row["rotations"] == 1 and row["previous_until"] and row["scope"].startswith("vault:secret/")
    assert row["created"] <= row["updated"] and row["value"] == "********"

    back = b("rotate", "WANDB_API_KEY", "--rollback")
    assert back.returncode == 0, back.stderr
    assert a("get", "WANDB_API_KEY", check=True).stdout == WANDB + "\n"
    assert int(openbao.request("GET", meta_path)["data"]["current_version"]) == v1 + 2
    again = a("rotate", "WANDB_API_KEY", "--rollback")
    assert again.returncode == 3

    assert a("check", "--max-age", "1d").returncode == 0
    time.sleep(1.2)
    old = a("check", "--max-age", "1s")
    assert old.returncode == 1 and "WANDB_API_KEY" in old.stdout


def test_service_account_on_vault(openbao: OpenBao, tmp_path: Path) -> None:
    """An admin keeps the team's key at services/NAME; a member reads it read-only by policy; rotation reaches
    the member's next env, including a shell that exported the old value."""
    team, member = f"team-{secrets.token_hex(3)}", new_user()
    policy = f"""
    path "secret/data/credstore/users/{member}/*"     {{ capabilities = ["create", "read", "update"] }}
    path "secret/metadata/credstore/users/{member}/*" {{ capabilities = ["read", "list"] }}
    path "secret/data/credstore/services/{team}/*"     {{ capabilities = ["read"] }}
    path "secret/metadata/credstore/services/{team}/*" {{ capabilities = ["read", "list"] }}
    """
    openbao.request("PUT", f"sys/policies/acl/cs-{member}", {"policy": policy})
    member_token = make_token(openbao, policies=[f"cs-{member}"])

    admin = host(tmp_path, "admin")
    result = admin("--profile", team, "init", "--backend", "vault", "--url", openbao.url, "--service", team,
                   "--protection", "keyfile", input=make_token(openbao))  # fmt: skip
    assert result.returncode == 0 and f"services/{team}" in result.stderr, result.stderr
    admin("--profile", team, "set", "WANDB_API_KEY", input=WANDB, check=True)
    admin("--profile", team, "set", "WANDB_ENTITY", "the-team", check=True)

    m = host(tmp_path, "member")
    connect(m, openbao, member, member_token)
    m("set", "WANDB_USERNAME", "member", check=True)
    used = m("use-service", team)
    assert used.returncode == 0, used.stderr
    explained = m("explain", "wandb", check=True).stdout
    assert f"WANDB_API_KEY: vault:secret/credstore/services/{team} = ********" in explained
    assert f"WANDB_USERNAME: vault:secret/credstore/users/{member}/default = member" in explained
    assert m("exec", "--", "sh", "-c", 'printf %s "$WANDB_API_KEY"', check=True).stdout == WANDB
    assert m("exec", "--service", team, "--", "sh", "-c", 'printf %s "$WANDB_ENTITY"', check=True).stdout == (
        "the-team"
    )
    # Read-only by policy: the member cannot change the team's key.
    denied = m("rotate", "WANDB_API_KEY", "--service", team, input="d" * 40)
    assert denied.returncode == 8 and WANDB not in denied.stderr
    status = json.loads(m("status", "--json", check=True).stdout)
    assert {(r["scope"], r["name"]) for r in status} >= {(f"service:{team}", "WANDB_API_KEY")}

    cmd = " ".join(credstore_argv())
    script = f"""
        eval "$({cmd} env --shell bash)"
        printf '%s\\n' "$WANDB_API_KEY"
        read -r _
        eval "$({cmd} env --shell bash)"
        printf '%s\\n' "$WANDB_API_KEY"
    """
    proc = subprocess.Popen(
        ["bash", "-c", script], env=m.env, cwd=m.home, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == WANDB
    rotated = admin("--profile", team, "rotate", "WANDB_API_KEY", input="d" * 40)
    assert rotated.returncode == 0, rotated.stderr
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "d" * 40
    assert proc.wait(timeout=60) == 0
