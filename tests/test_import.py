"""Imports from real netrc, Hugging Face token and .env files, and from the environment."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest


def wkey() -> str:
    return "imp" + secrets.token_hex(24)


@pytest.fixture
def home(cli):
    cli("init", "--protection", "keyfile", check=True)
    return cli


def stored(cli) -> dict[str, str]:
    r = cli("env", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def no_value_in(result, *values: str) -> None:
    for v in values:
        assert v not in result.stdout and v not in result.stderr


NETRC = """# my logins
machine github.com
  login me
  password {gh}

machine api.wandb.ai
  login user
  password {wb}

machine files.example.org login anon password "with space"
"""


def test_netrc_default_host_and_remove_source(home) -> None:
    gh, wb = "ghp_" + secrets.token_hex(10), wkey()
    netrc = home.home / ".netrc"
    netrc.write_text(NETRC.format(gh=gh, wb=wb))
    netrc.chmod(0o644)  # too open for the stdlib's ~/.netrc check; the import must still work (and fix it)
    r = home("import", "netrc", "--remove-source")
    assert r.returncode == 0, r.stderr
    no_value_in(r, wb, gh)
    assert "imported WANDB_API_KEY" in r.stderr
    values = stored(home)
    assert values["WANDB_API_KEY"] == wb and "WANDB_BASE_URL" not in values
    text = netrc.read_text()
    assert wb not in text and "api.wandb.ai" not in text
    assert gh in text and "machine github.com" in text and '"with space"' in text and "# my logins" in text
    assert (netrc.stat().st_mode & 0o777) == 0o644  # mode kept


def test_netrc_prefers_coreweave_and_warns_on_a_different_wandb_key(home) -> None:
    a, b = wkey(), wkey()
    netrc = home.home / ".netrc"
    netrc.write_text(
        f"machine api.wandb.ai login user password {a}\nmachine api.forge.coreweave.com login user password {b}\n"
    )
    netrc.chmod(0o600)
    r = home("import", "netrc", "--remove-source")
    assert r.returncode == 0, r.stderr
    no_value_in(r, a, b)
    assert "different key for api.wandb.ai" in r.stderr
    assert stored(home)["WANDB_API_KEY"] == b
    text = netrc.read_text()
    assert a in text and b not in text
    assert (netrc.stat().st_mode & 0o777) == 0o600


def test_netrc_removing_the_only_entry_removes_the_file(home) -> None:
    k = wkey()
    netrc = home.home / "other.netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {k}\n")
    r = home("import", "netrc", "--remove-source", env={"NETRC": str(netrc)})
    assert r.returncode == 0, r.stderr
    assert not netrc.exists()
    assert stored(home)["WANDB_API_KEY"] == k


@pytest.mark.parametrize(
    ("host", "machine", "url"),
    [
        ("wandb.corp.example:8443", "wandb.corp.example:8443", "https://wandb.corp.example:8443"),
        ("http://localhost:8080", "localhost:8080", "http://localhost:8080"),
        ("api.wandb.ai", "api.wandb.ai", None),
    ],
)
def test_netrc_host(home, host: str, machine: str, url: str | None) -> None:
    k = wkey()
    (home.home / ".netrc").write_text(f"machine {machine} login u password {k}\n")
    r = home("import", "netrc", "--host", host)
    assert r.returncode == 0, r.stderr
    values = stored(home)
    assert values["WANDB_API_KEY"] == k
    assert values.get("WANDB_BASE_URL") == url


def test_netrc_errors(home) -> None:
    k = wkey()
    netrc = home.home / ".netrc"
    netrc.write_text(f"machine github.com login u password {k}\n")
    r = home("import", "netrc")
    assert r.returncode == 3 and "api.forge.coreweave.com or api.wandb.ai" in r.stderr
    netrc.write_text(f"machine api.wandb.ai login u password {k}\nbogus {k}\n")
    r = home("import", "netrc")
    assert r.returncode == 2 and "line" in r.stderr
    no_value_in(r, k)
    netrc.unlink()
    assert home("import", "netrc").returncode == 3


def test_conflict_keeps_source_and_overwrite_replaces(home) -> None:
    first, second = wkey(), wkey()
    home("set", "WANDB_API_KEY", input=first, check=True)
    netrc = home.home / ".netrc"
    netrc.write_text(f"machine api.wandb.ai login u password {second}\n")
    r = home("import", "netrc", "--remove-source")
    assert r.returncode == 1 and "--overwrite" in r.stderr and "left in place" in r.stderr
    assert netrc.exists() and stored(home)["WANDB_API_KEY"] == first
    r = home("import", "netrc", "--overwrite", "--remove-source")
    assert r.returncode == 0, r.stderr
    assert stored(home)["WANDB_API_KEY"] == second and not netrc.exists()
    # Same value again: nothing to do, still fine.
    netrc.write_text(f"machine api.wandb.ai login u password {second}\n")
    r = home("import", "netrc")
    assert r.returncode == 0 and "already stored" in r.stderr


@pytest.mark.parametrize("where", ["default", "xdg", "hf_home", "token_path"])
def test_hf_token_file(home, where: str) -> None:
    token = "hf_" + secrets.token_hex(17)
    env: dict[str, str] = {}
    if where == "default":
        path = home.home / ".cache" / "huggingface" / "token"
    elif where == "xdg":
        env["XDG_CACHE_HOME"] = str(home.home / "xdg")
        path = home.home / "xdg" / "huggingface" / "token"
    elif where == "hf_home":
        env["HF_HOME"] = str(home.home / "hfh")
        path = home.home / "hfh" / "token"
    else:
        env["HF_TOKEN_PATH"] = str(home.home / "tok")
        path = home.home / "tok"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n")
    r = home("import", "hf", "--remove-source", env=env)
    assert r.returncode == 0, r.stderr
    no_value_in(r, token)
    assert "imported HF_TOKEN" in r.stderr
    assert not path.exists()
    assert stored(home)["HF_TOKEN"] == token


def test_hf_missing(home) -> None:
    r = home("import", "hf")
    assert r.returncode == 3 and "token" in r.stderr


def test_dotenv(home) -> None:
    s1, s2, s3 = secrets.token_hex(20), secrets.token_hex(20), secrets.token_hex(20)
    f = home.home / "project.env"
    f.write_text(
        "# comment\n"
        f"export OPENAI_API_KEY={s1}\n"
        f"ANTHROPIC_API_KEY='{s2}'   # trailing comment\n"
        f'MULTI="line1\\nline2 {s3}"\n'
        "WANDB_PROJECT=proj # comment\n"
        "SPACED = spaced value\n"
        "DOLLAR='$HOME'\n"
        f"this line is broken {s3}\n"
        "EMPTY=\n"
    )
    r = home("import", "dotenv", str(f), "--remove-source")
    assert r.returncode == 0, r.stderr
    no_value_in(r, s1, s2, s3)
    assert f"{f}:8: not NAME=VALUE; skipped" in r.stderr
    assert "EMPTY is empty" in r.stderr
    values = stored(home)
    assert values["OPENAI_API_KEY"] == s1
    assert values["ANTHROPIC_API_KEY"] == s2
    assert values["MULTI"] == f"line1\nline2 {s3}"
    assert values["WANDB_PROJECT"] == "proj"
    assert values["SPACED"] == "spaced value"
    assert values["DOLLAR"] == "$HOME"
    assert not f.exists()
    r = home("list", "--json")
    secret = {row["name"]: row["secret"] for row in json.loads(r.stdout)}
    assert secret["OPENAI_API_KEY"] is True and secret["WANDB_PROJECT"] is False


def test_dotenv_without_remove_keeps_file(home) -> None:
    f = home.home / ".env"
    f.write_text("COMET_API_KEY=abc\n")
    assert home("import", "dotenv", str(f)).returncode == 0
    assert f.exists()
    empty = home.home / "empty.env"
    empty.write_text("# nothing\n")
    assert home("import", "dotenv", str(empty)).returncode == 3


def test_env_import_points_at_startup_files(home) -> None:
    k = wkey()
    (home.home / ".bashrc").write_text(f"alias ll='ls -l'\nexport WANDB_API_KEY={k}\n")
    r = home("import", "env", "WANDB_API_KEY", "MISSING_ONE", env={"WANDB_API_KEY": k})
    assert r.returncode == 0, r.stderr
    no_value_in(r, k)
    assert ".bashrc line 2" in r.stderr and "MISSING_ONE is not set" in r.stderr
    assert stored(home)["WANDB_API_KEY"] == k
    assert home("import", "env", "NOPE_NOT_SET").returncode == 3


def test_import_into_missing_store_follows_the_default_level_rule(cli) -> None:
    f = cli.home / "a.env"
    f.write_text("NEPTUNE_API_TOKEN=tok\n")
    # No terminal and no OS keyring here: no silent keyfile store, a one-line error naming the choices.
    r = cli("import", "dotenv", str(f), "--remove-source")
    assert r.returncode == 2 and "--protection keyfile" in r.stderr and "tok" not in r.stderr
    assert f.exists()
    cli("init", "--protection", "keyfile", check=True)
    r = cli("import", "dotenv", str(f))
    assert r.returncode == 0, r.stderr
    assert stored(cli)["NEPTUNE_API_TOKEN"] == "tok"


def test_remove_netrc_machines_unit() -> None:
    from credstore.sources import remove_netrc_machines

    text = (
        "machine a login x password machine\nmachine b login y password z\nmacdef init\ncd /\n\nmachine c password q\n"
    )
    out = remove_netrc_machines(text, {"a"})
    assert out == "machine b login y password z\nmacdef init\ncd /\n\nmachine c password q\n"
    out = remove_netrc_machines(text, {"b"})
    assert out == "machine a login x password machine\nmacdef init\ncd /\n\nmachine c password q\n"
    assert remove_netrc_machines("machine a login x password y", {"a"}) == ""
    assert Path  # keep the import used


def test_a_large_import_says_how_many_in_a_line_of_bounded_length(home) -> None:
    """trial4: `import dotenv` of 5,000 variables printed every name on one line (about 80 KB on a terminal). A few
    names are still listed; many are counted, with the first and last, and `list` shows them all."""
    env_file = home.home / "many.env"
    env_file.write_text("".join(f"API_KEY_{i:05d}=v{secrets.token_hex(20)}\n" for i in range(2000)))
    first = home("import", "dotenv", str(env_file))
    assert first.returncode == 0, first.stderr
    again = home("import", "dotenv", str(env_file))  # every value already stored
    assert again.returncode == 0, again.stderr
    for result in (first, again):
        assert result.stderr.count("\n") <= 2, result.stderr[:300]
        assert max(len(line) for line in result.stderr.splitlines()) < 300, result.stderr[:300]
        assert "2000" in result.stderr and "API_KEY_00000" in result.stderr and "API_KEY_01999" in result.stderr
    assert "imported" in first.stderr and "already stored" in again.stderr
    assert len(stored(home)) == 2000
    few = home.home / "few.env"
    few.write_text("A_ONE=1\nA_TWO=2\n")
    r = home("import", "dotenv", str(few))
    assert "imported A_ONE, A_TWO from" in r.stderr  # a few names: all of them, as before
