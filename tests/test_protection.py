"""Protection levels end to end: passphrase (Argon2id), OS keyring (a real Secret Service), keyfile; protect, passwd,
wrong / empty / non-UTF-8 passphrases, the default level for a new store, header parameter bounds.

Passphrases go in on stdin (the commands read one per line when stdin is not a terminal). Commands that need the
kernel session keyring run inside `keyctl session -` (a fresh session keyring, as a login has), so nothing here
touches the session keyring of the test runner.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from credstore.crypto import envelope, passphrase
from tests.conftest import CLI, Result

WEAK = {"CREDSTORE_TEST_WEAK_KDF": "1"}
PW = "correct horse battery staple"
KEY = "wandbkey0123456789wandbkey0123456789abcd"


# -- helpers shared with test_unlock.py and test_doctor.py ------------------------------------------------------------


def credstore_bin(cli: CLI) -> Path:
    """A `credstore` command on PATH that execs this checkout (so the shell is its parent, as in real use)."""
    bin_dir = cli.home.parent / "bin"
    script = bin_dir / "credstore"
    if not script.exists():
        bin_dir.mkdir(exist_ok=True)
        script.write_text(f'#!/bin/sh\nexec {sys.executable} -m credstore "$@"\n')
        script.chmod(0o755)
    return bin_dir


def shell_env(cli: CLI, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(cli.env)
    env["PATH"] = f"{credstore_bin(cli)}:{env['PATH']}"
    env.update(extra or {})
    return env


def need_keyctl() -> str:
    path = shutil.which("keyctl")
    if path is None:
        pytest.skip("keyctl (package keyutils) is not installed; it starts the login-like session keyrings")
    from credstore.crypto import kernel_keyring

    ok, reason = kernel_keyring.available()
    if not ok:
        pytest.skip(f"the kernel keyring is not usable on this machine: {reason}")
    return path


def in_session(
    cli: CLI, script: str, *, input: bytes = b"", env: dict[str, str] | None = None, shell: str = "bash"
) -> Result:
    """Run a shell script as one login would: in a fresh session keyring of its own (`keyctl session -`)."""
    keyctl = need_keyctl()
    proc = subprocess.run(
        [keyctl, "session", "-", shell, "-c", script],
        input=input,
        capture_output=True,
        env=shell_env(cli, env),
        cwd=cli.home,
        timeout=120,
    )
    return Result(
        proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"), proc.stdout
    )


def store_file(cli: CLI, profile: str = "default") -> Path:
    return cli.store_dir / "profiles" / f"{profile}.store"


def header_of(cli: CLI, profile: str = "default") -> envelope.Header:
    return envelope.parse(store_file(cli, profile).read_bytes())[0]


def init_passphrase(cli: CLI, pw: str = PW, profile: str = "default", env: dict[str, str] | None = None) -> None:
    args = ("--profile", profile) if profile != "default" else ()
    result = cli(*args, "init", "--protection", "passphrase", input=pw + "\n", env={**WEAK, **(env or {})})
    assert result.returncode == 0, result.stderr
    assert "protection: passphrase" in result.stderr


# -- passphrase level --------------------------------------------------------------------------------------------------


def test_passphrase_store_uses_default_argon2_cost_and_roundtrips(cli):
    # The real default cost (m=64 MiB, t=3, p=4), not the weak test setting.
    script = f"""
printf '%s\\n' '{PW}' | credstore init --protection passphrase || exit 10
printf '%s' '{KEY}' | credstore set WANDB_API_KEY || exit 11
credstore get WANDB_API_KEY
"""
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == KEY
    header = header_of(cli)
    assert header.kek_kind == "passphrase"
    m, t, p, salt = passphrase.decode_params(header.kek_params)
    assert (m, t, p) == (64 * 1024, 3, 4)
    assert len(salt) == 16
    assert PW.encode() not in store_file(cli).read_bytes()
    assert KEY.encode() not in store_file(cli).read_bytes()


def test_weak_kdf_setting_is_exactly_the_owasp_floor(cli):
    init_passphrase(cli)
    m, t, p, _ = passphrase.decode_params(header_of(cli).kek_params)
    assert (m, t, p) == (19 * 1024, 2, 1)


def test_locked_store_env_prints_nothing_and_exits_4(cli):
    init_passphrase(cli)
    result = cli("env")
    assert result.returncode == 4
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "locked" in lines[0] and "credstore unlock" in lines[0]


def test_set_get_without_terminal_on_a_locked_store_say_locked(cli):
    init_passphrase(cli)
    result = cli("set", "WANDB_API_KEY", input=KEY)
    assert result.returncode == 4 and "credstore unlock" in result.stderr
    assert cli("get", "WANDB_API_KEY").returncode == 4


def test_empty_passphrase_is_refused_at_init(cli):
    result = cli("init", "--protection", "passphrase", input="\n", env=WEAK)
    assert result.returncode == 2
    assert "empty passphrase" in result.stderr
    assert not store_file(cli).exists()


def test_non_utf8_passphrase_on_stdin_is_a_clear_error(cli):
    result = cli("init", "--protection", "passphrase", input=b"\xff\xfepass\n", env=WEAK)
    assert result.returncode == 2
    assert "not valid UTF-8" in result.stderr
    assert "Traceback" not in result.stderr
    assert not store_file(cli).exists()


def test_wrong_passphrase_is_auth_error_and_changes_nothing(cli):
    init_passphrase(cli)
    before = store_file(cli).read_bytes()
    for args, data in ((("unlock",), "wrong\n"), (("passwd",), "wrong\nnew-passphrase\n")):
        result = in_session(cli, f"credstore {' '.join(args)}", input=data.encode(), env=WEAK)
        assert result.returncode == 5, result.stderr
        assert "wrong passphrase" in result.stderr
        assert store_file(cli).read_bytes() == before
    protect = in_session(cli, "credstore protect keyfile", input=b"wrong\n")
    assert protect.returncode == 5
    assert store_file(cli).read_bytes() == before
    assert not store_file(cli).with_suffix(".key").exists()


def test_empty_passphrase_at_unlock_is_refused(cli):
    init_passphrase(cli)
    result = in_session(cli, "credstore unlock", input=b"\n")
    assert result.returncode == 5
    assert "empty passphrase" in result.stderr


def test_five_wrong_passphrases_then_a_delay_and_success_resets(cli):
    init_passphrase(cli)
    counter = passphrase.AttemptCounter.for_store(cli.store_dir / "state", header_of(cli).store_id)
    for attempt in range(1, 6):
        result = cli("unlock", input="nope\n", env=WEAK)
        assert result.returncode == 5
        assert "waiting" not in result.stderr
        assert counter.failures() == attempt
    sixth = cli("unlock", input="nope\n", env=WEAK)
    assert sixth.returncode == 5
    assert "5 wrong passphrases in a row; waiting 1 s" in sixth.stderr
    assert counter.failures() == 6
    # The right one still waits (2 s now), then works and resets the counter; `protect` with no change needs none.
    ok = in_session(cli, "credstore unlock", input=(PW + "\n").encode(), env=WEAK)
    assert ok.returncode == 0, ok.stderr
    assert "waiting 2 s" in ok.stderr
    assert counter.failures() == 0
    assert not counter.path.exists()


def test_passwd_rewraps_the_key_and_keeps_entries(cli):
    init_passphrase(cli)
    script = f"""
printf '%s\\n' '{PW}' | credstore unlock || exit 10
printf '%s' '{KEY}' | credstore set WANDB_API_KEY || exit 11
printf '%s\\n%s\\n' '{PW}' 'a new passphrase' | credstore passwd || exit 12
credstore lock
printf '%s\\n' '{PW}' | credstore unlock && exit 13
printf '%s\\n' 'a new passphrase' | credstore unlock || exit 14
credstore get WANDB_API_KEY
"""
    before = header_of(cli)
    result = in_session(cli, script, env=WEAK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == KEY
    after = header_of(cli)
    assert after.store_id != before.store_id  # a new data key comes with a new store id (issue 13, finding 3)
    assert after.wrapped_dek != before.wrapped_dek
    assert after.kek_params != before.kek_params  # a fresh salt


def test_passwd_on_a_keyfile_store_points_to_protect(cli):
    cli("init", "--protection", "keyfile", check=True)
    result = cli("passwd", input="x\ny\n")
    assert result.returncode == 2
    assert "protect passphrase" in result.stderr


# -- header parameter bounds -------------------------------------------------------------------------------------------


def _with_params(header: envelope.Header, params: bytes) -> envelope.Header:
    return header.replace(kek_params=params)


def _tamper_params(cli: CLI, memory_kib: int, iterations: int, lanes: int) -> None:
    path = store_file(cli)
    data = path.read_bytes()
    header, ad, ciphertext = envelope.parse(data)
    salt = header.kek_params[-16:]
    params = struct.pack(">BIII", 1, memory_kib, iterations, lanes) + salt
    head = _with_params(header, params).encode()
    path.write_bytes(head + struct.pack(">I", len(ciphertext)) + ciphertext)


@pytest.mark.parametrize(
    ("cost", "code", "words"),
    [
        ((4 * 1024 * 1024, 3, 4), 7, "above what credstore accepts"),  # 4 GiB: refused before running the KDF
        ((65536, 1000, 4), 7, "above what credstore accepts"),
        ((65536, 3, 64), 7, "above what credstore accepts"),
        ((1024, 3, 4), 6, "below the minimum"),
        ((65536, 1, 4), 6, "below the minimum"),
    ],
)
def test_header_kdf_parameters_out_of_bounds_are_refused_before_the_kdf(cli, cost, code, words):
    init_passphrase(cli)
    _tamper_params(cli, *cost)
    result = cli("unlock", input=PW + "\n")
    assert result.returncode == code, result.stderr
    assert words in result.stderr


def test_unknown_kdf_algorithm_is_unsupported(cli):
    init_passphrase(cli)
    path = store_file(cli)
    header, _, ciphertext = envelope.parse(path.read_bytes())
    head = _with_params(header, b"\x09" + header.kek_params[1:]).encode()
    path.write_bytes(head + struct.pack(">I", len(ciphertext)) + ciphertext)
    assert cli("unlock", input=PW + "\n").returncode == 7


def test_params_codec_is_canonical():
    salt = os.urandom(16)
    params = passphrase.encode_params(65536, 3, 4, salt)
    assert passphrase.decode_params(params) == (65536, 3, 4, salt)
    with pytest.raises(Exception, match="malformed"):
        passphrase.decode_params(params + b"\0")
    with pytest.raises(Exception, match="below the minimum"):
        passphrase.encode_params(1024, 1, 1, salt)


# -- default level ----------------------------------------------------------------------------------------------------


def test_first_set_without_keyring_or_terminal_explains_how_to_proceed(cli):
    result = cli("set", "WANDB_API_KEY", input=KEY)
    assert result.returncode == 2
    assert "credstore init --protection keyfile" in result.stderr
    assert "--protection passphrase" in result.stderr
    assert not store_file(cli).exists()
    assert KEY not in result.stderr
    # init without --protection follows the same rule
    again = cli("init")
    assert again.returncode == 2 and "credstore init --protection keyfile" in again.stderr


def test_explicit_keyfile_says_it_is_the_weakest(cli):
    result = cli("init", "--protection", "keyfile")
    assert result.returncode == 0
    assert "protection: keyfile" in result.stderr
    assert "weakest" in result.stderr
    assert cli("set", "WANDB_API_KEY", input=KEY).returncode == 0
    assert cli("get", "WANDB_API_KEY").stdout.strip() == KEY


# -- OS keyring level (real Secret Service) ---------------------------------------------------------------------------


def test_keyring_is_the_default_when_a_secret_service_runs(cli, secret_service):
    env = secret_service.env
    result = cli("set", "WANDB_API_KEY", input=KEY, env=env)
    assert result.returncode == 0, result.stderr
    assert "protection: keyring" in result.stderr
    header = header_of(cli)
    assert header.kek_kind == "keyring"
    account = header.kek_params.decode()
    assert account.startswith(str(store_file(cli)) + "#")
    # The KEK really is in the Secret Service, and nowhere beside the store.
    item = subprocess.run(
        [sys.executable, "-c", f"import keyring; print(keyring.get_password('credstore', {account!r}) or '')"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    ).stdout.strip()
    assert len(item) == 44  # base64 of 32 bytes
    assert not store_file(cli).with_suffix(".key").exists()
    # No unlock needed: the OS keyring is the unlock. Without the Secret Service the store cannot be opened.
    assert cli("get", "WANDB_API_KEY", env=env).stdout.strip() == KEY
    without = cli("get", "WANDB_API_KEY")
    assert without.returncode == 12
    assert "OS keyring" in without.stderr


def test_keyring_item_deleted_means_auth_error(cli, secret_service):
    env = secret_service.env
    cli("init", "--protection", "keyring", env=env, check=True)
    account = header_of(cli).kek_params.decode()
    subprocess.run(
        [sys.executable, "-c", f"import keyring; keyring.delete_password('credstore', {account!r})"],
        check=True,
        env={**os.environ, **env},
    )
    result = cli("list", env=env)
    assert result.returncode == 5
    assert "has no key for this store" in result.stderr


def test_protect_cycle_keyfile_passphrase_keyring_keyfile_keeps_every_entry(cli, secret_service):
    env = {**secret_service.env, **WEAK}
    cli("init", "--protection", "keyfile", check=True)
    entries = {"WANDB_API_KEY": KEY, "HF_TOKEN": "hf_" + "x" * 30, "WANDB_ENTITY": "team-a", "MY_SECRET": "s p a c e"}
    for name, value in entries.items():
        cli("set", name, input=value, check=True)
    key_path = store_file(cli).with_suffix(".key")
    store_id = header_of(cli).store_id

    def values() -> dict[str, str]:
        return {name: cli("get", name, env=env, check=True).stdout.rstrip("\n") for name in entries}

    # keyfile -> passphrase: the new passphrase on stdin; the key file goes away
    result = cli("protect", "passphrase", input=PW + "\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "from keyfile to passphrase; 4 entries kept" in result.stderr
    assert not key_path.exists()
    assert header_of(cli).kek_kind == "passphrase"
    got = in_session(
        cli,
        f"printf '%s\\n' '{PW}' | credstore unlock >/dev/null 2>&1 && for n in {' '.join(entries)}; do "
        'credstore get "$n"; done',
        env=env,
    )
    assert got.stdout.splitlines() == list(entries.values())
    # passphrase -> keyring: the current passphrase on stdin
    result = cli("protect", "keyring", input=PW + "\n", env=env)
    assert result.returncode == 0, result.stderr
    assert header_of(cli).kek_kind == "keyring"
    assert values() == entries
    account = header_of(cli).kek_params.decode()
    # keyring -> keyfile: no passphrase needed; the keyring item is deleted
    result = cli("protect", "keyfile", env=env)
    assert result.returncode == 0, result.stderr
    assert "weakest" in result.stderr
    assert key_path.exists()
    assert values() == entries
    assert header_of(cli).store_id != store_id  # each protect made a new data key, and so a new store id
    leftover = subprocess.run(
        [sys.executable, "-c", f"import keyring; print(keyring.get_password('credstore', {account!r}))"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    ).stdout.strip()
    assert leftover == "None"


def test_protect_same_level_is_a_no_op(cli):
    cli("init", "--protection", "keyfile", check=True)
    before = store_file(cli).read_bytes()
    result = cli("protect", "keyfile")
    assert result.returncode == 0 and "already" in result.stderr
    assert store_file(cli).read_bytes() == before
