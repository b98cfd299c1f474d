"""Two people, one Unix account, each their own profile, chosen by the key in their forwarded agent (issue 15).

Everything real: a throwaway Unix account (useradd), an unprivileged OpenSSH ``sshd`` run as that account on
127.0.0.1 (its own host key, ``UsePAM no``, ``AllowAgentForwarding yes``, ``ExposeAuthInfo yes``), two people's
``ssh-agent`` processes holding their own keys, and ``ssh -A`` into the account. credstore runs there from a copy of
this checkout that the account can read (``user_python``), each command in a new session keyring as a login has.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fixtures_services import UnixUsers, UserPython
    from tests.ssh_fixtures import AgentProcess, SSHKeys, SSHServer

pytest_plugins = ["tests.ssh_fixtures"]

ALICE_KEY = "a" * 40
BOB_KEY = "b" * 40


@pytest.fixture
def second_agent() -> Iterator[AgentProcess]:
    from tests.ssh_fixtures import start_ssh_agent

    directory = Path(tempfile.mkdtemp(prefix="cs-agent2-"))
    agent = start_ssh_agent(directory)
    try:
        yield agent
    finally:
        agent.stop()
        shutil.rmtree(directory, ignore_errors=True)


class Account:
    """The shared account behind sshd: ``run(agent, *credstore_args)`` is ``ssh -A`` + ``credstore ARGS`` there."""

    def __init__(self, server: SSHServer, python: UserPython) -> None:
        self.server = server
        self.python = python

    def run(self, agent: AgentProcess, *args: str, input: str = "", unset: tuple[str, ...] = ()):
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.python.env.items())
        drop = " ".join(f"-u {name}" for name in unset)
        command = " ".join(shlex.quote(a) for a in self.python.argv("-m", "credstore", *args))
        result = self.server.ssh(agent, f"keyctl session - env {drop} {env} {command}", input=input)
        result.stderr = "".join(
            line for line in result.stderr.splitlines(True) if not line.startswith("Joined session keyring")
        )
        return result


@pytest.fixture
def shared_account(
    unix_users: UnixUsers,
    user_python: UserPython,
    ssh_agent: AgentProcess,
    second_agent: AgentProcess,
    ssh_keys: SSHKeys,
) -> Iterator[tuple[Account, AgentProcess, AgentProcess]]:
    """(the account, Alice's agent with her key, Bob's agent with his), both keys (and Carol's, who has no profile)
    authorized for the account, and a profile each, made through ssh -A with their own agent."""
    from tests.ssh_fixtures import start_sshd

    account_user = unix_users.create("csshr")
    alice, bob = ssh_keys.make("ed25519", name="alice"), ssh_keys.make("rsa", 3072, name="bob")
    carol = ssh_keys.make("ed25519", name="carol")
    ssh_agent.add(alice)
    second_agent.add(bob)
    server = start_sshd(account_user.name, account_user.home, [alice, bob, carol])
    try:
        account = Account(server, user_python)
        for agent, name, value in ((ssh_agent, "alice", ALICE_KEY), (second_agent, "bob", BOB_KEY)):
            made = account.run(agent, "--profile", name, "init", "--protection", "ssh-agent")
            assert made.returncode == 0, made.stderr + server.log()[-2000:]
            stored = account.run(agent, "--profile", name, "set", "WANDB_API_KEY", input=value)
            assert stored.returncode == 0, stored.stderr
        yield account, ssh_agent, second_agent
    finally:
        server.stop()


def test_each_person_gets_their_own_values_with_no_profile_option(shared_account) -> None:
    account, alice_agent, bob_agent = shared_account
    for agent, name, value in ((alice_agent, "alice", ALICE_KEY), (bob_agent, "bob", BOB_KEY)):
        got = account.run(agent, "env", "--shell", "bash")
        assert got.returncode == 0, got.stderr
        assert value in got.stdout and (ALICE_KEY if name == "bob" else BOB_KEY) not in got.stdout
        who = account.run(agent, "whoami")
        assert who.returncode == 0, who.stderr
        assert who.stdout.startswith(f"{name}: ") and "ssh" in who.stdout, who.stdout
        # The agent's key was used, not $SSH_USER_AUTH alone: without the agent the store stays locked.
        run = account.run(agent, "exec", "--", "sh", "-c", 'printf %s "$WANDB_API_KEY"')
        assert run.returncode == 0 and run.stdout == value, run.stderr


def test_an_agent_with_both_keys_is_an_error_unless_the_login_key_decides(shared_account, ssh_keys: SSHKeys) -> None:
    account, alice_agent, _ = shared_account
    alice_agent.add(ssh_keys.make("rsa", 3072, name="bob"))  # Alice's agent now also holds Bob's key
    # Logged in with the agent's first key (Alice's): $SSH_USER_AUTH breaks the tie.
    who = account.run(alice_agent, "whoami")
    assert who.returncode == 0 and who.stdout.startswith("alice: ") and "SSH_USER_AUTH" in who.stdout, who
    # Without it, two matching profiles: an error naming both, nothing on stdout.
    both = account.run(alice_agent, "env", unset=("SSH_USER_AUTH",))
    assert both.returncode == 2 and both.stdout == ""
    assert "alice" in both.stderr and "bob" in both.stderr and len(both.stderr.splitlines()) == 1, both.stderr


def test_a_key_of_no_profile_falls_back_to_default(shared_account, ssh_keys: SSHKeys) -> None:
    account, alice_agent, _ = shared_account
    alice_agent.remove_all()
    alice_agent.add(ssh_keys.make("ed25519", name="carol"))  # authorized for the account, no profile's slot
    who = account.run(alice_agent, "whoami")
    assert who.returncode == 0 and who.stdout.startswith("default: "), who
    assert "no key in the ssh agent" in who.stdout
    # default does not exist on the account: env says so, and prints nothing
    got = account.run(alice_agent, "env")
    assert got.returncode == 3 and got.stdout == "", got.stderr
