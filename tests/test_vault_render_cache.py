"""The render cache for OpenBao profiles (app/render_cache.py, SECURITY.md "The render cache"), against a real
OpenBao dev server: a second `env` of the login answers without hvac, requests or cryptography; every write
credstore makes through this login drops it at once; a change made elsewhere shows within the freshness bound
(``CREDSTORE_VAULT_CACHE_SECONDS``, 0 = never cache).

As in tests/test_hot_path.py, `lean` runs credstore with `python -S` (no site-packages: no hvac, no cryptography),
so only the render cache can answer it: "lean prints X" proves a hit with X, "lean fails" proves a miss.
"""

from __future__ import annotations

import ast
import json
import secrets
import sys
from pathlib import Path

import pytest

from tests.conftest import CLI, REPO
from tests.fixtures_services import OpenBao
from tests.test_hot_path import LEAN, LEAN_PROBE, SECTION, sections
from tests.test_protection import in_session
from tests.test_vault_cli import connect, host, make_token, new_user

pytest.importorskip("hvac", reason="hvac not installed (pip install 'credstore[vault]')")

BOUND = "CREDSTORE_VAULT_CACHE_SECONDS"


def person(openbao: OpenBao, tmp_path: Path, name: str = "h") -> tuple[CLI, str, str]:
    """A host connected to a fresh personal path with a root token; (cli, user, token)."""
    cli = host(tmp_path, name)
    user, token = new_user(), make_token(openbao)
    connect(cli, openbao, user, token)
    return cli, user, token


def write_elsewhere(openbao: OpenBao, user: str, name: str, value: str) -> None:
    """Another client (another machine, an admin) changes an entry on the server: the hvac client directly."""
    import hvac

    client = hvac.Client(url=openbao.url, token=openbao.root_token)
    path = f"credstore/users/{user}/default/vars/{name}"
    current = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    data = dict(current["data"]["data"])
    data["value"] = value
    client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")


def test_a_second_env_of_an_openbao_profile_imports_no_hvac_requests_or_cryptography(
    openbao: OpenBao, tmp_path: Path
) -> None:
    cli, _user, _token = person(openbao, tmp_path)
    cli("set", "MY_TOKEN", input="tok-first", check=True)
    probe = f'PYTHONPATH="{REPO}" "{sys.executable}" -S -c \'{LEAN_PROBE}\' env --shell bash'
    script = f"full=$(credstore env --shell bash) || exit 10\nprintf '%s\\n' \"$full\"\necho ==\n{probe}\n"
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    full, cached = result.stdout.split("==\n")
    assert "export MY_TOKEN='tok-first'" in full
    assert cached.strip() == full.strip()  # the same text, from the cache
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES"))
    loaded = set(ast.literal_eval(line[len("MODULES") :]))
    assert "credstore.app.render_cache" in loaded
    heavy = {"hvac", "requests", "urllib3", "cryptography", "click", "json", "pathlib", "http", "ssl", "socket"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
    # the cached env is audited like the full one, with the OpenBao source
    log = (cli.store_dir / "audit.log").read_text().splitlines()
    reads = [json.loads(x) for x in log if '"event":"env"' in x]
    assert len(reads) == 2
    assert list(reads[-1]["sources"]) == list(reads[-2]["sources"])
    assert next(iter(reads[-1]["sources"])).startswith("vault:secret/credstore/users/")


def test_every_write_through_this_login_drops_the_cache_at_once(openbao: OpenBao, tmp_path: Path) -> None:
    """set, rm, rotate, rollback, a write to the service account (through its own profile, and rotate --service),
    logout and login: the next lean env misses, the full one shows the change and is cached again."""
    cli, _user, token = person(openbao, tmp_path)
    team = f"team-{secrets.token_hex(3)}"
    made = cli("--profile", team, "init", "--backend", "vault", "--url", openbao.url, "--service", team,
               "--protection", "keyfile", input=make_token(openbao))  # fmt: skip
    assert made.returncode == 0, made.stderr
    cli("--profile", team, "set", "WANDB_ENTITY", "e1", check=True)
    cli("set", "MY_TOKEN", input="v1", check=True)
    cli("set", "OTHER_TOKEN", input="o1", check=True)
    cli("use-service", team, check=True)
    script = (
        LEAN
        + SECTION
        + f"""
credstore env >/dev/null || exit 9
show hit; lean env
show get; lean get MY_TOKEN
printf v2 | credstore set MY_TOKEN
show set; lean env; credstore env; lean env
credstore rm OTHER_TOKEN >/dev/null 2>&1
show rm; lean env; credstore env; lean env
printf v3 | credstore rotate MY_TOKEN >/dev/null 2>&1
show rotate; lean env; credstore env; lean env
credstore rotate MY_TOKEN --rollback >/dev/null 2>&1
show rollback; lean env; credstore env; lean env
credstore --profile {team} set WANDB_ENTITY e2 2>/dev/null
show service-set; lean env; credstore env; lean env
printf e3 | credstore rotate WANDB_ENTITY --service {team} >/dev/null 2>&1
show service-rotate; lean env; credstore env; lean env
credstore vault logout 2>/dev/null
show logout; lean env; credstore env; echo "rc=$?"
printf '%s' '{token}' | credstore vault login 2>/dev/null
show login; lean env; credstore env; lean env
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert "export MY_TOKEN='v1'" in got["hit"] and "WANDB_ENTITY='e1'" in got["hit"] and "rc=0" in got["hit"]
    assert got["get"].splitlines() == ["v1", "rc=0"]
    steps = {
        "set": "MY_TOKEN='v2'",
        "rm": "MY_TOKEN='v2'",
        "rotate": "MY_TOKEN='v3'",
        "rollback": "MY_TOKEN='v2'",
        "service-set": "WANDB_ENTITY='e2'",
        "service-rotate": "WANDB_ENTITY='e3'",
        "login": "WANDB_ENTITY='e3'",
    }
    for step, expected in steps.items():
        first, _, rest = got[step].partition("rc=")
        assert first == "" and not rest.startswith("0"), (step, got[step])  # a miss: lean printed nothing
        assert expected in rest, (step, got[step])  # the full road shows the change
        assert rest.rstrip().endswith("rc=0"), (step, got[step])  # and the next one is a hit again
    assert "OTHER_TOKEN" not in got["rm"]
    first, _, rest = got["logout"].partition("rc=")
    assert first == "" and not rest.startswith("0") and "MY_TOKEN" not in rest
    assert rest.rstrip().endswith("rc=5"), got["logout"]  # no token: the full road's auth error


def test_a_change_made_elsewhere_shows_within_the_bound(openbao: OpenBao, tmp_path: Path) -> None:
    """The documented trade-off: within the bound a change made by another client is not seen; once the bound
    has passed (bounded wait, no timing assertion), the next env reads the server again."""
    cli, user, _token = person(openbao, tmp_path)
    cli("set", "MY_TOKEN", input="v1", check=True)
    # A login that lives across the write: the keyring session is held open by a waiting script.
    sync = cli.home / "sync"
    script = (
        LEAN
        + SECTION
        + f"""
credstore env >/dev/null || exit 9
show before; lean env
touch {sync}.cached
i=0; while [ ! -e {sync}.written ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
i=0; while lean env >/dev/null && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
show expired; lean env; credstore env
"""
    )
    import subprocess

    from tests.test_protection import need_keyctl, shell_env

    env = shell_env(cli, {BOUND: "2"})
    proc = subprocess.Popen(
        [need_keyctl(), "session", "-", "bash", "-c", script],
        env=env,
        cwd=cli.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import time

        deadline = time.monotonic() + 60
        while not (cli.home / "sync.cached").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=10)
            time.sleep(0.05)
        write_elsewhere(openbao, user, "MY_TOKEN", "v2")
    finally:
        (cli.home / "sync.written").touch()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    got = sections(out)
    assert "export MY_TOKEN='v1'" in got["before"] and "rc=0" in got["before"]
    # the lean run eventually misses with no local change at all (the bound passed), and the full road reads v2
    first, _, rest = got["expired"].partition("rc=")
    assert first == "" and not rest.startswith("0"), got
    assert "export MY_TOKEN='v2'" in rest, got


def test_the_trade_off_within_the_bound(openbao: OpenBao, tmp_path: Path) -> None:
    """With the default bound (60 s), a change made on the server by another client is not seen by a cached env
    right after: the cache really answers; the change arrives at the latest when the bound has passed."""
    cli, user, _token = person(openbao, tmp_path)
    cli("set", "MY_TOKEN", input="v1", check=True)
    cli("set", "WANDB_ENTITY", "team1", check=True)
    sync = cli.home / "sync"
    script = (
        LEAN
        + SECTION
        + f"""
credstore env >/dev/null || exit 9
touch {sync}.cached
i=0; while [ ! -e {sync}.written ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
show stale; lean env
show explain; credstore explain; credstore list
show zero; {BOUND}=0 lean env; {BOUND}=0 credstore env
"""
    )
    import subprocess
    import time

    from tests.test_protection import need_keyctl, shell_env

    proc = subprocess.Popen(
        [need_keyctl(), "session", "-", "bash", "-c", script],
        env=shell_env(cli),
        cwd=cli.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (cli.home / "sync.cached").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=10)
            time.sleep(0.05)
        write_elsewhere(openbao, user, "MY_TOKEN", "v2")
        write_elsewhere(openbao, user, "WANDB_ENTITY", "team2")
    finally:
        (cli.home / "sync.written").touch()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    got = sections(out)
    assert "export MY_TOKEN='v1'" in got["stale"] and "rc=0" in got["stale"]
    # explain and list always ask the server (only env, exec and get take the bound)
    assert "WANDB_ENTITY: vault:" in got["explain"] and "= team2" in got["explain"], got["explain"]
    assert "team1" not in got["explain"]
    # a bound of 0 set later refuses the cached render at once: the full road reads the server
    first, _, rest = got["zero"].partition("rc=")
    assert first == "" and not rest.startswith("0") and "export MY_TOKEN='v2'" in rest


def test_a_bound_of_zero_never_caches_and_an_environment_token_is_not_cached(openbao: OpenBao, tmp_path: Path) -> None:
    cli, _user, token = person(openbao, tmp_path)
    cli("set", "MY_TOKEN", input="v1", check=True)
    script = (
        LEAN
        + SECTION
        + f"""
show zero; {BOUND}=0 credstore env >/dev/null || exit 9; lean env
show default; credstore env >/dev/null || exit 9; lean env
show token; BAO_TOKEN='{token}' lean env; BAO_TOKEN='{token}' credstore env >/dev/null || exit 9
BAO_TOKEN='{token}' lean env
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert got["zero"].splitlines() == [got["zero"].splitlines()[0]] and "rc=0" not in got["zero"]
    assert "export MY_TOKEN='v1'" in got["default"] and "rc=0" in got["default"]
    # a token from the environment is not the one the render was read with: never answered from the cache
    assert "rc=0" not in got["token"] and "MY_TOKEN" not in got["token"]


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "", " ", "99999999", "1e3"])
def test_a_bad_bound_is_a_one_line_usage_error(openbao: OpenBao, tmp_path: Path, bad: str) -> None:
    cli, _user, _token = person(openbao, tmp_path, name=f"h{abs(hash(bad)) % 1000}")
    cli("set", "MY_TOKEN", input="v1", check=True)
    if bad.strip() == "":
        # empty: not set (the default applies), as with the other CREDSTORE_VAULT_* settings
        result = cli("env", "--shell", "bash", env={BOUND: bad})
        assert result.returncode == 0 and "MY_TOKEN='v1'" in result.stdout, result.stderr
        return
    for command in (("env", "--shell", "bash"), ("exec", "--", "printenv", "MY_TOKEN"), ("get", "MY_TOKEN")):
        result = cli(*command, env={BOUND: bad})
        assert result.returncode == 2, (command, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("credstore: ") and BOUND in lines[0], result.stderr
        assert "Traceback" not in result.stderr and "v1" not in result.stderr


def test_the_profile_setting_exec_and_get(openbao: OpenBao, tmp_path: Path) -> None:
    """`vault config --render-cache SECONDS` sets the profile's bound (0: never; checked like the variable); `exec`
    and `get` are answered from the same render."""
    cli, _user, _token = person(openbao, tmp_path)
    cli("set", "MY_TOKEN", input="v1", check=True)
    bad = cli("vault", "config", "--render-cache", "soon")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--render-cache" in bad.stderr, bad.stderr
    shown = cli("vault", "config", "--render-cache", "30", check=True)
    assert "env cached 30 s" in shown.stderr
    script = (
        LEAN
        + SECTION
        + """
credstore env >/dev/null || exit 9
show exec; lean exec -- sh -c 'printf "%s\\n" "$MY_TOKEN"'
show get; lean get MY_TOKEN
credstore vault config --render-cache 0 2>/dev/null || exit 10
show off; lean env; credstore env >/dev/null || exit 11; lean env
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert got["exec"].splitlines() == ["v1", "rc=0"]  # sh ran with the cached value
    assert got["get"].splitlines() == ["v1", "rc=0"]
    assert "rc=0" not in got["off"] and "MY_TOKEN" not in got["off"]


def test_a_read_answered_by_the_fallback_copy_is_not_cached(openbao: OpenBao, tmp_path: Path) -> None:
    """The server does not answer: env falls back to the last-known-good copy (with its warning) every time; the
    render cache never answers for it, so the warning is never lost."""
    cli = host(tmp_path, "h")
    connect(cli, openbao, new_user(), make_token(openbao), "--cache-max-age", "1d")
    cli("set", "MY_TOKEN", input="v1", check=True)
    fill = cli("env", env={BOUND: "0"})  # fills the last-known-good copy, no render cache
    assert fill.returncode == 0, fill.stderr
    script = LEAN + SECTION + 'show down; credstore env; echo "rc=$?"; lean env\n'
    openbao.pause()
    try:
        result = in_session(cli, script, env={"CREDSTORE_VAULT_DEADLINE": "1", "CREDSTORE_VAULT_TIMEOUT": "1"})
    finally:
        openbao.resume()
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)["down"]
    assert "export MY_TOKEN='v1'" in got and "rc=0" in got  # the fallback answered the full env
    assert "using the cached copy" in result.stderr
    assert got.rstrip().splitlines()[-1] != "rc=0"  # and the lean one found nothing cached
