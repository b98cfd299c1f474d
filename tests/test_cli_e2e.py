"""End to end through the real `credstore` command and real shells (bash, zsh, dash, fish)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import CLI, credstore_argv

WANDB_KEY = "local-" + "k3y_" * 12  # 54 chars of the W&B alphabet
HOSTILE = {
    "QUOTES": 'it\'s "quoted"',
    "DOLLAR": "$HOME $(id) `id` ${PATH}",
    "BACKSLASH": "a\\b\\\\c\\",
    "NEWLINES": "line1\nline2\r\n\tend",
    "UNICODE": "héllo 日本 🚀",
    "BANG": "!!oops !$ %s %%",
    "DASH": "-n -e",
}
SHELLS = {"bash": "bash", "zsh": "zsh", "dash": "sh", "fish": "fish"}


def _store_basics(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=WANDB_KEY, check=True)
    for name, value in {
        "WANDB_USERNAME": "alice",
        "WANDB_USER_EMAIL": "alice@example.org",
        "WANDB_ENTITY": "ml-team",
    }.items():
        cli("set", name, value, check=True)


def _shell_argv(shell: str) -> list[str]:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed (scripts/test.sh installs it when run as root)")
    return {
        "bash": [exe, "--norc", "--noprofile", "-c"],
        "zsh": [exe, "-f", "-c"],
        "dash": [exe, "-c"],
        "fish": [exe, "--no-config", "-c"],
    }[shell]


def _dump_env(cli: CLI, shell: str, script: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """Run `script` in a real shell; it must end by running `env -0`; return that environment."""
    proc = subprocess.run(
        [*_shell_argv(shell), script],
        env={**cli.env, **(env or {})},
        capture_output=True,
        timeout=60,
        cwd=cli.home,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = {}
    for item in proc.stdout.split(b"\0"):
        if item:
            k, _, v = item.partition(b"=")
            out[k.decode()] = v.decode()
    return out


def _cmd() -> str:
    return " ".join(shlex.quote(a) for a in credstore_argv())


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_env_evaluated_by_real_shell_round_trips_hostile_values(cli: CLI, shell: str) -> None:
    _store_basics(cli)
    for name, value in HOSTILE.items():
        cli("set", name, input=value.encode() + b"\n", check=True)  # piped secret; one trailing newline stripped
    if shell == "fish":
        script = f"{_cmd()} env --shell fish | source; env -0"
    else:
        script = f'eval "$({_cmd()} env --shell {SHELLS[shell]})"; env -0'
    got = _dump_env(cli, shell, script)
    for name, value in HOSTILE.items():
        assert got[name] == value.rstrip("\n") if name != "NEWLINES" else got[name] == "line1\nline2\r\n\tend"
    assert got["WANDB_API_KEY"] == WANDB_KEY
    assert got["WANDB_USERNAME"] == "alice"
    assert got["WANDB_ENTITY"] == "ml-team"


def test_secret_on_argv_is_refused_and_nothing_stored(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    r = cli("set", "WANDB_API_KEY", WANDB_KEY)
    assert r.returncode == 2
    assert "printf %s" in r.stderr and WANDB_KEY not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert cli("get", "WANDB_API_KEY").returncode == 3
    # --plain makes argv acceptable for a deliberately non-secret custom value.
    assert cli("set", "MY_FLAG", "on", "--plain").returncode == 0
    assert cli("get", "MY_FLAG").stdout == "on\n"


def test_unknown_variables_default_to_secret(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    assert cli("set", "MY_TOKEN", "abc").returncode == 2
    cli("set", "MY_TOKEN", input="abc", check=True)
    rows = json.loads(cli("list", "--json").stdout)
    assert rows == [
        {
            "profile": "default",
            "name": "MY_TOKEN",
            "service": "-",
            "secret": True,
            "age": rows[0]["age"],
            "value": "********",
        }
    ]


def test_no_plaintext_on_disk_and_private_modes(cli: CLI) -> None:
    _store_basics(cli)
    assert oct(cli.store_dir.stat().st_mode & 0o777) == "0o700"
    files = list(cli.store_dir.rglob("*"))
    assert any(f.suffix == ".store" for f in files)
    for path in files:
        mode = path.stat().st_mode & 0o777
        assert mode in (0o600, 0o700), (path, oct(mode))
        if path.is_file():
            data = path.read_bytes()
            for needle in (WANDB_KEY, "alice@example.org", "ml-team"):
                assert needle.encode() not in data, path


def test_list_masks_secrets_entirely(cli: CLI) -> None:
    _store_basics(cli)
    out = cli("list").stdout
    assert "alice" in out and "********" in out
    for i in range(4, len(WANDB_KEY)):
        assert WANDB_KEY[:i] not in out and WANDB_KEY[-i:] not in out


def test_get_rm_and_not_found(cli: CLI) -> None:
    _store_basics(cli)
    assert cli("get", "WANDB_API_KEY").stdout == WANDB_KEY + "\n"
    assert cli("rm", "WANDB_ENTITY").returncode == 0
    r = cli("get", "WANDB_ENTITY")
    assert r.returncode == 3 and "not stored" in r.stderr
    r = cli("rm", "WANDB_ENTITY", "WANDB_USERNAME")
    assert r.returncode == 3
    assert cli("get", "WANDB_USERNAME").stdout == "alice\n"  # nothing removed when one name is missing


def test_add_wandb_guided(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    lines = f"{WANDB_KEY}\nbob\n\nteam-b\n\n"  # key, username, (skip e-mail), entity, (skip project)
    r = cli("add", "wandb", input=lines)
    assert r.returncode == 0, r.stderr
    names = {row["name"] for row in json.loads(cli("list", "--json").stdout)}
    assert names == {"WANDB_API_KEY", "WANDB_USERNAME", "WANDB_ENTITY"}
    assert WANDB_KEY not in r.stderr + r.stdout


def test_format_warning_but_stored(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    r = cli("set", "WANDB_API_KEY", input="short")
    assert r.returncode == 0 and "does not look like a W&B API key" in r.stderr and "short" not in r.stderr
    r = cli("set", "WANDB_MODE", "sometimes")
    assert r.returncode == 0 and "wandb will reject it" in r.stderr


def test_explain_json_each_precedence_case(cli: CLI) -> None:
    _store_basics(cli)
    env = {"WANDB_ENTITY": "from-env", "WANDB_USERNAME": "env-user"}
    r = cli(
        "explain",
        "--json",
        "--set",
        "WANDB_USERNAME=arg-user",
        "WANDB_USERNAME",
        "WANDB_ENTITY",
        "WANDB_API_KEY",
        "WANDB_PROJECT",
        env=env,
    )
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["WANDB_USERNAME"]["source"] == "argument"
    assert rows["WANDB_USERNAME"]["shadowed"] == ["environment", "profile:default"]
    assert rows["WANDB_USERNAME"]["value"] == "arg-user"
    assert rows["WANDB_ENTITY"]["source"] == "environment"
    assert rows["WANDB_ENTITY"]["shadowed"] == ["profile:default"]
    assert rows["WANDB_API_KEY"]["source"] == "profile:default"
    assert rows["WANDB_API_KEY"]["value"] == "********"
    assert rows["WANDB_PROJECT"]["source"] is None
    assert WANDB_KEY not in r.stdout


def test_env_skips_what_environment_decides_and_set_wins(cli: CLI) -> None:
    _store_basics(cli)
    out = cli("env", "--shell", "bash", "--set", "WANDB_PROJECT=p1", env={"WANDB_ENTITY": "mine"}).stdout
    lines = [line for line in out.splitlines() if line.startswith("export WANDB_ENTITY=")]
    assert lines == []
    assert "export WANDB_PROJECT='p1'" in out


def test_env_selection_by_service_and_name(cli: CLI) -> None:
    _store_basics(cli)
    cli("set", "HF_TOKEN", input="hf_abc", check=True)
    out = cli("env", "--shell", "sh", "hf").stdout
    assert "HF_TOKEN" in out and "WANDB_API_KEY=" not in out
    out = cli("env", "--shell", "sh", "WANDB_USERNAME").stdout
    assert "export WANDB_USERNAME='alice'" in out and "HF_TOKEN=" not in out
    r = cli("env", "nosuch-service")
    assert r.returncode == 2 and r.stdout == ""


def test_rotated_value_reaches_an_open_shell_but_hand_set_value_is_kept(cli: CLI) -> None:
    _store_basics(cli)
    cmd = _cmd()
    new_key = "local-" + "n3w_" * 12
    script = (
        f'eval "$({cmd} env --shell bash)"\n'
        f"printf %s {shlex.quote(new_key)} | {cmd} set WANDB_API_KEY 2>/dev/null\n"
        "export WANDB_ENTITY=typed-by-hand\n"
        f"{cmd} set WANDB_ENTITY other-team 2>/dev/null\n"
        f'eval "$({cmd} env --shell bash)"\n'
        "env -0"
    )
    got = _dump_env(cli, "bash", script)
    assert got["WANDB_API_KEY"] == new_key  # refreshed: credstore had exported the old one
    assert got["WANDB_ENTITY"] == "typed-by-hand"  # kept: the person set it by hand


def test_removed_entry_is_unset_in_open_shell(cli: CLI) -> None:
    _store_basics(cli)
    cmd = _cmd()
    script = (
        f'eval "$({cmd} env --shell bash)"\n{cmd} rm WANDB_ENTITY 2>/dev/null\neval "$({cmd} env --shell bash)"\nenv -0'
    )
    got = _dump_env(cli, "bash", script)
    assert "WANDB_ENTITY" not in got and got["WANDB_USERNAME"] == "alice"


def test_env_formats_dotenv_json_and_apptainer(cli: CLI) -> None:
    _store_basics(cli)
    data = json.loads(cli("env", "--format", "json").stdout)
    assert data["WANDB_API_KEY"] == WANDB_KEY and "CREDSTORE_EXPORTED" not in data
    docker = cli("env", "--format", "docker").stdout
    assert f"WANDB_API_KEY={WANDB_KEY}\n" in docker
    assert f'WANDB_API_KEY="{WANDB_KEY}"\n' in cli("env", "--format", "dotenv").stdout
    app = cli("env", "--for", "apptainer", "--shell", "sh").stdout
    assert "export APPTAINERENV_WANDB_USERNAME='alice'" in app and "CREDSTORE_EXPORTED" not in app
    sing = cli("env", "--for", "singularity", "--shell", "sh").stdout
    assert "SINGULARITYENV_WANDB_ENTITY" in sing
    cli("set", "MULTI", input="a\nb", check=True)
    r = cli("env", "--format", "docker")
    assert r.returncode == 2 and "MULTI" in r.stderr and r.stdout == ""
    r = cli("env", "--prefix", "X_", "--for", "apptainer")
    assert r.returncode == 2 and r.stdout == ""


def test_env_on_missing_store_prints_nothing(cli: CLI) -> None:
    r = cli("env")
    assert r.returncode == 3 and r.stdout == "" and len(r.stderr.splitlines()) == 1


def test_env_on_corrupt_store_prints_nothing(cli: CLI) -> None:
    _store_basics(cli)
    store = next(cli.store_dir.rglob("*.store"))
    data = bytearray(store.read_bytes())
    data[-5] ^= 1
    store.write_bytes(bytes(data))
    r = cli("env")
    assert r.returncode == 6 and r.stdout == "" and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_exec_passes_variables_and_exit_status(cli: CLI) -> None:
    _store_basics(cli)
    r = cli("exec", "--", "sh", "-c", 'printf "%s|%s" "$WANDB_USERNAME" "$WANDB_API_KEY"; exit 7')
    assert r.returncode == 7
    assert r.stdout == f"alice|{WANDB_KEY}"
    r = cli("exec", "--set", "WANDB_USERNAME=bob", "wandb", "--", "sh", "-c", 'printf %s "$WANDB_USERNAME"')
    assert r.stdout == "bob"
    assert cli("exec", "--", "no-such-command-xyz").returncode == 127
    assert cli("exec").returncode == 2


def test_exec_replaces_the_process_so_signals_reach_the_command(cli: CLI) -> None:
    _store_basics(cli)
    proc = subprocess.Popen(
        [
            *credstore_argv(),
            "exec",
            "--",
            sys.executable,
            "-c",
            "import os,signal,sys,time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(42)); "
            "print(os.getpid(), flush=True); time.sleep(30)",
        ],
        env=cli.env,
        stdout=subprocess.PIPE,
        cwd=cli.home,
    )
    pid_line = proc.stdout.readline()
    assert int(pid_line) == proc.pid  # same process: credstore replaced itself
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 42
    proc = subprocess.Popen([*credstore_argv(), "exec", "--", "sleep", "30"], env=cli.env, cwd=cli.home)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=20) == -signal.SIGINT


def test_invalid_names_and_values(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    for bad in ("1ABC", "A-B", "", "A B"):
        r = cli("set", bad, input="x")
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert cli("set", "X_EMPTY", input="").returncode == 2
    assert cli("set", "X_NUL", input=b"a\0b").returncode == 2
    assert cli("set", "X_UTF", input=b"\xff\xfe").returncode == 2
    r = cli("env", "--set", "NOEQUALS")
    assert r.returncode == 2 and r.stdout == ""


def test_help_documents_precedence_and_exit_codes(cli: CLI) -> None:
    out = cli("--help").stdout
    assert "Precedence, highest first" in out and "Exit codes" in out and "127" in out


def test_python_m_credstore_works(cli: CLI) -> None:
    r = subprocess.run([sys.executable, "-m", "credstore", "--version"], capture_output=True, text=True, env=cli.env)
    assert r.returncode == 0 and "0.1.0" in r.stdout
