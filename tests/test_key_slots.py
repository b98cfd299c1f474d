"""Key slots (issue 15) and re-keying / pinning (issue 13, findings 3 and 6), through the real command.

Real OpenSSH throughout: ``ssh-agent``, ``ssh-add`` and ``ssh-keygen`` from Debian's openssh-client (fixtures in
tests/ssh_fixtures.py), and the kernel session keyring: every "new login session" below is a real new session
keyring (``keyctl session -``), so an unlock cached by one never helps another.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from credstore.crypto import envelope
from credstore.errors import EXIT_AUTH, EXIT_CORRUPT, EXIT_LOCKED, EXIT_USAGE
from tests.adversarial_support import assert_one_line_error
from tests.conftest import CLI, Result
from tests.fixtures_services import require_binary

if TYPE_CHECKING:
    from tests.ssh_fixtures import AgentProcess, SSHKey, SSHKeys

pytest_plugins = ["tests.ssh_fixtures"]

KEY = "k" * 40
PW = "slot passphrase ✓ 42"
WEAK = {"CREDSTORE_TEST_WEAK_KDF": "1"}


def _keyring_or_skip() -> None:
    from credstore.crypto import kernel_keyring

    ok, reason = kernel_keyring.available()
    if not ok:
        pytest.skip(f"the kernel session keyring is not usable here: {reason}")


def in_new_session(cli: CLI, script: str, env: dict[str, str] | None = None, input: str = "") -> Result:
    """Run ``sh -c script`` in a new login session keyring (``keyctl session -``), with ``credstore`` meaning this
    checkout's command. What it caches dies with it."""
    _keyring_or_skip()
    argv = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "credstore"])
    full = {**cli.env, **(env or {}), "CS": argv}
    proc = subprocess.run(
        [require_binary("keyctl"), "session", "-", "sh", "-c", re.sub(r"(?<![/\w.-])credstore(?= )", "$CS", script)],
        input=input.encode(),
        capture_output=True,
        env=full,
        timeout=120,
        cwd=cli.home,
    )
    stderr = proc.stderr.decode(errors="replace")
    stderr = "".join(line for line in stderr.splitlines(True) if not line.startswith("Joined session keyring"))
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), stderr, proc.stdout)


def unlock_and_set(cli: CLI, value: str, env: dict[str, str]) -> None:
    """In one new session: unlock with the passphrase, then store WANDB_API_KEY (each reads its own stdin)."""
    script = 'printf "%s\\n" "$PW" | credstore unlock && printf %s "$VALUE" | credstore set WANDB_API_KEY'
    result = in_new_session(cli, script, env={**env, "PW": PW, "VALUE": value})
    assert result.returncode == 0, result.stderr


def agent_env(agent: AgentProcess) -> dict[str, str]:
    return dict(agent.env)


NO_AGENT: dict[str, str] = {"SSH_AUTH_SOCK": ""}


def ssh_store(cli: CLI, agent: AgentProcess, key: SSHKey) -> None:
    """A profile protected only by an ssh-agent slot for ``key``, holding WANDB_API_KEY."""
    agent.add(key)
    cli("init", "--protection", "ssh-agent", "--ssh-key", str(key.public), env=agent_env(agent), check=True)
    cli("set", "WANDB_API_KEY", input=KEY, env=agent_env(agent), check=True)
    cli("lock", env=agent_env(agent))  # whatever `set` cached in the test runner's session goes


def header(cli: CLI, profile: str = "default") -> envelope.Header:
    return envelope.parse((cli.store_dir / "profiles" / f"{profile}.store").read_bytes())[0]


# -- the ssh-agent slot opens the store, with no passphrase, in a new session --------------------------------------


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", None), ("rsa", 3072)])
def test_agent_key_opens_store_in_a_new_session_and_the_cache_serves_the_rest(
    cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys, kind: str, bits: int | None
) -> None:
    key = ssh_keys.make(kind, bits)
    ssh_store(cli, ssh_agent, key)
    assert [s.kind for s in header(cli).slots] == ["ssh-agent"]
    # A new login session: env opens the store through the agent (no prompt, no unlock), then caches it, so the
    # second env in the same session works with the agent gone.
    result = in_new_session(
        cli,
        "credstore env --shell bash && SSH_AUTH_SOCK=/nonexistent credstore env --shell bash",
        env=agent_env(ssh_agent),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(f"WANDB_API_KEY={KEY}") + result.stdout.count(f"WANDB_API_KEY='{KEY}'") == 2
    # exec and get open it the same way.
    ran = in_new_session(cli, "credstore exec -- sh -c 'printf %s \"$WANDB_API_KEY\"'", env=agent_env(ssh_agent))
    assert ran.returncode == 0 and ran.stdout == KEY, ran.stderr
    got = in_new_session(cli, "credstore get WANDB_API_KEY", env=agent_env(ssh_agent))
    assert got.returncode == 0 and got.stdout.strip() == KEY, got.stderr


def test_without_the_key_the_store_is_locked(cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> None:
    key = ssh_keys.make("ed25519")
    ssh_store(cli, ssh_agent, key)
    other = ssh_keys.make("ed25519", name="other")
    # another key only
    ssh_agent.remove_all()
    ssh_agent.add(other)
    for env in (agent_env(ssh_agent), NO_AGENT, {"SSH_AUTH_SOCK": str(cli.home / "no-such-socket")}):
        for command in ("credstore env", "credstore get WANDB_API_KEY", "credstore exec -- true"):
            result = in_new_session(cli, command, env=env)
            assert result.stdout == "", (command, env)
            assert_one_line_error(result, EXIT_LOCKED)
            assert key.fingerprint in result.stderr, result.stderr  # names the key that is missing
    # an empty agent
    ssh_agent.remove_all()
    result = in_new_session(cli, "credstore env", env=agent_env(ssh_agent))
    assert result.stdout == ""
    assert_one_line_error(result, EXIT_LOCKED)
    assert key.fingerprint in result.stderr


def test_ecdsa_and_destination_constrained_keys_are_refused_at_enrolment(
    cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys
) -> None:
    ecdsa = ssh_keys.make("ecdsa")
    ssh_agent.add(ecdsa)
    result = cli("init", "--protection", "ssh-agent", "--ssh-key", str(ecdsa.public), env=agent_env(ssh_agent))
    assert_one_line_error(result, EXIT_USAGE)
    assert "ecdsa" in result.stderr.lower()
    assert not (cli.store_dir / "profiles" / "default.store").exists()
    ssh_agent.remove_all()
    constrained = ssh_keys.make("ed25519", name="constrained")
    host = ssh_keys.make("ed25519", name="hostkey")
    known_hosts = cli.home / "known_hosts"
    known_hosts.write_text(f"gpu.example {' '.join(host.public.read_text().split()[:2])}\n")
    ssh_agent.add(constrained, "-H", str(known_hosts), "-h", "gpu.example")
    result = cli("init", "--protection", "ssh-agent", "--ssh-key", str(constrained.public), env=agent_env(ssh_agent))
    assert_one_line_error(result)
    assert result.returncode != 0 and "-h" in result.stderr
    assert not (cli.store_dir / "profiles" / "default.store").exists()


def test_tampering_with_the_ssh_slot_is_detected(cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> None:
    key = ssh_keys.make("ed25519")
    ssh_store(cli, ssh_agent, key)
    path = cli.store_dir / "profiles" / "default.store"
    good = path.read_bytes()
    head = header(cli)
    (slot,) = head.slots
    variants = {
        "wrapped key": head._replace(slots=(slot._replace(wrapped_dek=bytes(48)),)),
        "salt": head._replace(slots=(slot._replace(params=slot.params[:-40] + bytes(1) + slot.params[-39:]),)),
        "slot id": head._replace(slots=(slot._replace(slot_id=9),)),
        "created": head._replace(slots=(slot._replace(created=slot.created + 1),)),
    }
    body_start = len(envelope.parse(good)[1]) - 4
    for what, forged in variants.items():
        path.write_bytes(forged.encode() + good[body_start:])
        result = in_new_session(cli, "credstore env", env=agent_env(ssh_agent))
        assert result.stdout == "", what
        assert_one_line_error(result)
        assert result.returncode in (EXIT_AUTH, EXIT_CORRUPT), (what, result.returncode, result.stderr)
    path.write_bytes(good)
    assert in_new_session(cli, "credstore env", env=agent_env(ssh_agent)).returncode == 0


def test_ssh_keygen_signature_recovers_the_store_without_the_agent(
    cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys
) -> None:
    key = ssh_keys.make("ed25519")
    ssh_store(cli, ssh_agent, key)
    challenge = cli.home / "challenge"
    out = cli("protect", "challenge", env=NO_AGENT, check=True)
    challenge.write_bytes(out.stdout_bytes)
    subprocess.run(
        [
            require_binary("ssh-keygen"),
            "-Y",
            "sign",
            "-n",
            "credstore-unlock-v1@credstore",
            "-f",
            str(key.private),
            str(challenge),
        ],
        env={"PATH": os.environ["PATH"], "HOME": str(cli.home)},
        check=True,
        capture_output=True,
    )
    signature = challenge.with_name("challenge.sig")
    result = in_new_session(
        cli, f"credstore unlock --ssh-signature {shlex.quote(str(signature))} && credstore env", env=NO_AGENT
    )
    assert result.returncode == 0, result.stderr
    assert KEY in result.stdout
    # A signature by another key, or over another challenge, opens nothing.
    other = ssh_keys.make("ed25519", name="other")
    second = cli.home / "challenge-other"
    shutil.copyfile(challenge, second)
    signature = second.with_name("challenge-other.sig")
    subprocess.run(
        [
            require_binary("ssh-keygen"),
            "-Y",
            "sign",
            "-n",
            "credstore-unlock-v1@credstore",
            "-f",
            str(other.private),
            str(second),
        ],
        env={"PATH": os.environ["PATH"], "HOME": str(cli.home)},
        check=True,
        capture_output=True,
    )
    result = in_new_session(cli, f"credstore unlock --ssh-signature {shlex.quote(str(signature))}", env=NO_AGENT)
    assert_one_line_error(result, EXIT_AUTH)


# -- several slots ----------------------------------------------------------------------------------------------


def test_passphrase_and_ssh_slots_open_with_either_and_the_last_slot_stays(
    cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys
) -> None:
    key = ssh_keys.make("ed25519")
    ssh_agent.add(key)
    env = {**agent_env(ssh_agent), **WEAK}
    cli("init", "--protection", "passphrase", input=PW + "\n", env=env, check=True)
    unlock_and_set(cli, KEY, env=env)
    added = in_new_session(cli, "credstore protect add ssh-agent", env=env, input=PW + "\n")
    assert added.returncode == 0, added.stderr
    assert key.fingerprint in added.stderr
    listing = cli("protect", "list", env=env, check=True).stdout
    assert "passphrase" in listing and "ssh-agent" in listing and key.fingerprint in listing
    # by the agent, no passphrase
    by_agent = in_new_session(cli, "credstore env", env=env)
    assert by_agent.returncode == 0 and KEY in by_agent.stdout, by_agent.stderr
    # no agent: locked for env; the passphrase opens it
    locked = in_new_session(cli, "credstore env", env={**NO_AGENT, **WEAK})
    assert locked.stdout == ""
    assert_one_line_error(locked, EXIT_LOCKED)
    by_pw = in_new_session(cli, "credstore unlock && credstore env", env={**NO_AGENT, **WEAK}, input=PW + "\n")
    assert by_pw.returncode == 0 and KEY in by_pw.stdout, by_pw.stderr
    # remove the passphrase slot, then the last slot is refused
    slot_ids = [s.slot_id for s in header(cli).slots]
    removed = cli("protect", "remove", str(slot_ids[0]), env=env)
    assert removed.returncode == 0, removed.stderr
    last = cli("protect", "remove", str(slot_ids[1]), env=env)
    assert_one_line_error(last, EXIT_USAGE)
    assert "last key slot" in last.stderr
    assert [s.kind for s in header(cli).slots] == ["ssh-agent"]
    assert KEY in in_new_session(cli, "credstore env", env=env).stdout


def test_confirmation_denied_leaves_the_store_locked(cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> None:
    key = ssh_keys.make("ed25519")
    ssh_agent.set_confirmation(True)
    ssh_agent.add(key, "-c")
    cli("init", "--protection", "ssh-agent", env=agent_env(ssh_agent), check=True)
    cli("set", "WANDB_API_KEY", input=KEY, env=agent_env(ssh_agent), check=True)
    before = ssh_agent.confirmations()
    ssh_agent.set_confirmation(False)
    denied = in_new_session(cli, "credstore env", env=agent_env(ssh_agent))
    assert denied.stdout == ""
    assert_one_line_error(denied, EXIT_LOCKED)
    assert ssh_agent.confirmations() == before + 1  # asked once, denied
    ssh_agent.set_confirmation(True)
    allowed = in_new_session(cli, "credstore env && credstore env", env=agent_env(ssh_agent))
    assert allowed.returncode == 0 and allowed.stdout.count(KEY) == 2, allowed.stderr
    assert ssh_agent.confirmations() == before + 2  # one confirmation for the session, the cache did the rest


def test_rotate_slot_makes_a_captured_signature_useless(cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> None:
    key = ssh_keys.make("ed25519")
    ssh_store(cli, ssh_agent, key)
    challenge = cli.home / "challenge"
    challenge.write_bytes(cli("protect", "challenge", check=True).stdout_bytes)
    subprocess.run(
        [
            require_binary("ssh-keygen"),
            "-Y",
            "sign",
            "-n",
            "credstore-unlock-v1@credstore",
            "-f",
            str(key.private),
            str(challenge),
        ],
        env={"PATH": os.environ["PATH"], "HOME": str(cli.home)},
        check=True,
        capture_output=True,
    )
    slot_id = header(cli).slots[0].slot_id
    rotated = cli("protect", "rotate-slot", str(slot_id), env=agent_env(ssh_agent))
    assert rotated.returncode == 0, rotated.stderr
    captured = in_new_session(cli, f"credstore unlock --ssh-signature {shlex.quote(str(challenge))}.sig", env=NO_AGENT)
    assert_one_line_error(captured, EXIT_AUTH)
    assert KEY in in_new_session(cli, "credstore env", env=agent_env(ssh_agent)).stdout


def test_doctor_warns_when_the_only_slot_is_an_ssh_key(cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> None:
    ssh_store(cli, ssh_agent, ssh_keys.make("ed25519"))
    report = cli("doctor", env=agent_env(ssh_agent))
    assert "only key slot is an ssh key" in report.stdout, report.stdout
    assert "protect add passphrase" in report.stdout


# -- issue 13, finding 3: protect and passwd make a new data key ----------------------------------------------------


def test_old_key_file_backup_does_not_open_the_store_after_protect_passphrase(cli: CLI, tmp_path: Path) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    profiles = cli.store_dir / "profiles"
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy2(profiles / "default.store", backup / "default.store")
    shutil.copy2(profiles / "default.key", backup / "default.key")
    result = cli("protect", "passphrase", input=PW + "\n", env=WEAK)
    assert result.returncode == 0, result.stderr
    assert "new data key" in result.stderr
    unlock_and_set(cli, "n" * 40, env=WEAK)
    # The old key file opens the old store's data key ...
    old_header, _, _ = envelope.parse((backup / "default.store").read_bytes())
    old_dek = envelope.unwrap_dek(old_header, (backup / "default.key").read_bytes())
    # ... which opens nothing of the new store, whatever header the attacker pairs it with.
    new_header, ad, ciphertext = envelope.parse((profiles / "default.store").read_bytes())
    assert [s.kind for s in new_header.slots] == ["passphrase"]
    assert new_header.store_id != old_header.store_id
    with pytest.raises(Exception) as info:
        envelope.open_payload(new_header, ad, ciphertext, old_dek)
    assert type(info.value).__name__ == "CorruptStoreError"
    # And through the command: the old key file put back beside the new store opens nothing.
    shutil.copy2(backup / "default.key", profiles / "default.key")
    for command in ("credstore env", "credstore get WANDB_API_KEY"):
        got = in_new_session(cli, command)
        assert got.stdout == "" and got.returncode != 0, got


def test_passwd_makes_a_new_data_key_and_rewraps_the_ssh_slot(
    cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys
) -> None:
    key = ssh_keys.make("ed25519")
    ssh_agent.add(key)
    env = {**agent_env(ssh_agent), **WEAK}
    cli("init", "--protection", "passphrase", input=PW + "\n", env=env, check=True)
    unlock_and_set(cli, KEY, env=env)
    assert in_new_session(cli, "credstore protect add ssh-agent", env=env, input=PW + "\n").returncode == 0
    before = header(cli)
    changed = in_new_session(cli, "credstore passwd", env=env, input=PW + "\nnew " + PW + "\n")
    assert changed.returncode == 0, changed.stderr
    after = header(cli)
    assert after.store_id != before.store_id and [s.kind for s in after.slots] == ["passphrase", "ssh-agent"]
    assert KEY in in_new_session(cli, "credstore env", env=env).stdout  # the ssh slot was re-wrapped
    # Without the agent, passwd refuses (it cannot re-wrap the ssh slot) unless told to drop it.
    refused = in_new_session(cli, "credstore passwd", env={**NO_AGENT, **WEAK}, input="new " + PW + "\n" + PW + "\n")
    assert_one_line_error(refused, EXIT_USAGE)
    assert "--drop-other-slots" in refused.stderr and "ssh-agent" in refused.stderr
    dropped = in_new_session(
        cli, "credstore passwd --drop-other-slots", env={**NO_AGENT, **WEAK}, input="new " + PW + "\n" + PW + "\n"
    )
    assert dropped.returncode == 0, dropped.stderr
    assert [s.kind for s in header(cli).slots] == ["passphrase"]


def test_rekey_command(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    before = header(cli)
    result = cli("rekey")
    assert result.returncode == 0, result.stderr
    after = header(cli)
    assert after.store_id != before.store_id and after.generation == before.generation + 1
    assert cli("get", "WANDB_API_KEY", check=True).stdout.strip() == KEY


# -- issue 13, finding 6: a store replaced or downgraded outside credstore is refused -------------------------------


def test_key_file_store_copied_over_a_passphrase_profile_is_refused(cli: CLI, tmp_path: Path) -> None:
    cli("init", "--protection", "passphrase", input=PW + "\n", env=WEAK, check=True)
    unlock_and_set(cli, KEY, env=WEAK)
    # The attacker's store, made elsewhere at the key file level with their own WANDB_BASE_URL.
    attacker = CLI(tmp_path / "attacker-home")
    attacker.home.mkdir(mode=0o700)
    attacker("init", "--protection", "keyfile", check=True)
    attacker("set", "WANDB_BASE_URL", "https://evil.example", check=True)
    profiles = cli.store_dir / "profiles"
    for suffix in (".store", ".key", ".profile"):
        shutil.copyfile(attacker.store_dir / "profiles" / f"default{suffix}", profiles / f"default{suffix}")
        (profiles / f"default{suffix}").chmod(0o600)
    for command in ("credstore env", "credstore get WANDB_BASE_URL", "credstore exec -- env"):
        result = in_new_session(cli, command)
        assert result.stdout == "", command
        assert_one_line_error(result, EXIT_CORRUPT)
        assert "credstore accept-store" in result.stderr
    # Writing under the attacker's key is refused too.
    assert_one_line_error(cli("set", "HF_TOKEN", input="hf_" + "x" * 34), EXIT_CORRUPT)
    # The same store at the same id but weaker: a downgrade made by hand (the header says keyfile).
    # An intended change is accepted explicitly, and then reads work.
    accepted = cli("accept-store")
    assert accepted.returncode == 0, accepted.stderr
    assert "evil.example" in cli("get", "WANDB_BASE_URL", check=True).stdout


def test_credstore_own_changes_move_the_pin(cli: CLI) -> None:
    cli("init", "--protection", "passphrase", input=PW + "\n", env=WEAK, check=True)
    assert cli("protect", "keyfile", input=PW + "\n", env=WEAK).returncode == 0
    assert cli("set", "WANDB_API_KEY", input=KEY).returncode == 0  # weaker now, but credstore made it so
    assert cli("get", "WANDB_API_KEY", check=True).stdout.strip() == KEY


# -- each person their own profile on a shared account --------------------------------------------------------


def two_people(cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> tuple[SSHKey, SSHKey]:
    alice, bob = ssh_keys.make("ed25519", name="alice"), ssh_keys.make("ed25519", name="bob")
    for name, key in (("alice", alice), ("bob", bob)):
        ssh_agent.remove_all()
        ssh_agent.add(key)
        env = agent_env(ssh_agent)
        cli("--profile", name, "init", "--protection", "ssh-agent", env=env, check=True)
        cli("--profile", name, "set", "WANDB_API_KEY", input=name * 10, env=env, check=True)
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input="d" * 40, check=True)
    ssh_agent.remove_all()
    return alice, bob


def test_profile_is_chosen_by_the_agents_key(cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> None:
    alice, bob = two_people(cli, ssh_agent, ssh_keys)
    env = agent_env(ssh_agent)
    for name, key in (("alice", alice), ("bob", bob)):
        ssh_agent.remove_all()
        ssh_agent.add(key)
        got = in_new_session(cli, "credstore get WANDB_API_KEY", env=env)
        assert got.returncode == 0 and got.stdout.strip() == name * 10, got.stderr
        who = cli("whoami", env=env, check=True).stdout
        assert who.startswith(f"{name}: ") and key.fingerprint in who
    # --profile and CREDSTORE_PROFILE still win; no matching key: default
    assert cli("--profile", "default", "whoami", env=env, check=True).stdout.startswith("default: --profile")
    ssh_agent.remove_all()
    assert cli("whoami", env=env, check=True).stdout.startswith("default: ")
    assert cli("get", "WANDB_API_KEY", env=env, check=True).stdout.strip() == "d" * 40
    # both keys: an error naming both profiles, nothing on stdout
    ssh_agent.add(alice)
    ssh_agent.add(bob)
    both = cli("env", env=env)
    assert both.stdout == ""
    assert_one_line_error(both, EXIT_USAGE)
    assert "alice" in both.stderr and "bob" in both.stderr
    # $SSH_USER_AUTH (sshd's ExposeAuthInfo) names the key the person logged in with: it breaks the tie
    auth = cli.home / "user-auth"
    auth.write_text(f"publickey {bob.public.read_text().split()[0]} {bob.public.read_text().split()[1]}\n")
    tie = {**env, "SSH_USER_AUTH": str(auth)}
    assert cli("whoami", env=tie, check=True).stdout.startswith("bob: ")
    assert in_new_session(cli, "credstore get WANDB_API_KEY", env=tie).stdout.strip() == "bob" * 10


def test_audit_names_profile_and_key(cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> None:
    alice, _ = two_people(cli, ssh_agent, ssh_keys)
    ssh_agent.add(alice)
    in_new_session(cli, "credstore env", env=agent_env(ssh_agent))
    explained = cli("explain", env=agent_env(ssh_agent))
    assert "profile 'alice'" in explained.stderr and alice.fingerprint in explained.stderr, explained.stderr
    log = (cli.store_dir / "audit.log").read_text().splitlines()
    last = [line for line in log if '"event":"env"' in line][-1]
    assert '"profile":"alice"' in last and alice.fingerprint in last


def test_shell_hook_loads_an_ssh_agent_store_with_no_prompt(
    cli: CLI, ssh_agent: AgentProcess, ssh_keys: SSHKeys
) -> None:
    ssh_store(cli, ssh_agent, ssh_keys.make("ed25519"))
    bindir = cli.home / "bin"
    bindir.mkdir()
    wrapper = bindir / "credstore"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m credstore "$@"\n')
    wrapper.chmod(0o755)
    bash = require_binary("bash")
    script = 'eval "$(credstore hook bash)"; printf "<%s>" "$WANDB_API_KEY"'
    env = {**cli.env, **agent_env(ssh_agent), "PATH": f"{bindir}:{cli.env['PATH']}"}
    proc = subprocess.run(
        [require_binary("keyctl"), "session", "-", bash, "--norc", "-i", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=cli.home,
    )
    assert f"<{KEY}>" in proc.stdout, proc.stderr
