"""Service accounts under attack, with real Unix users, groups and shells (root only; issue 13, findings 2, 8, 10).

- A member who saved ``service.key`` and was removed from the group opens nothing after ``service rekey`` and a
  rotation, not even the previous value in a later copy of ``service.store``; ``service members`` names who can read.
- A member who owns a directory in ``CREDSTORE_SHARED_DIR``'s path cannot swap the whole service for another member;
  a different admin or a recreated store is refused until the reader accepts it (``service accept``).
- A service never exports names that change how programs or shells run, nor names outside the catalog the admin did
  not allow; a personal ``set`` of such a name needs ``--allow-dangerous``.

Other users run the readable copy of the package that ``user_python`` installs, never the checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from credstore.crypto import envelope
from credstore.errors import AuthError, CorruptStoreError
from credstore.store.payload import decode_payload
from credstore.store.shared import ServiceStore, SharedRoot
from tests.fixtures_services import UnixUser, UnixUsers, UserPython, real_shell, require_binary

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="multi-user tests create Unix users (useradd): need root")


def wandb_key() -> str:
    return "svc" + secrets.token_hex(24)


@dataclass
class Team:
    base: Path  # root-owned, 0755
    shared: Path
    group: str
    alice: UnixUser
    mallory: UnixUser
    users: UnixUsers
    python: UserPython
    admin: object  # the `cli` fixture, running as root

    def env_for(self, shared: Path | None = None) -> dict[str, str]:
        return {**self.python.env, "CREDSTORE_SHARED_DIR": str(shared or self.shared)}

    def run(
        self, user: UnixUser, *args: str, input: str | None = None, shared: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = self.python.argv("-m", "credstore", *args)
        return self.users.run_as(user, argv, env=self.env_for(shared), input=input)

    def admin_run(self, *args: str, input: str | None = None):
        return self.admin(*args, input=input, env={"CREDSTORE_SHARED_DIR": str(self.shared)})  # type: ignore[operator]


@pytest.fixture
def team(unix_users: UnixUsers, user_python: UserPython, cli) -> Iterator[Team]:
    base = Path(tempfile.mkdtemp(prefix="credstore-hard-"))
    base.chmod(0o755)
    group = unix_users.group("ml")
    alice = unix_users.create("alice", groups=[group])
    mallory = unix_users.create("mall", groups=[group])
    t = Team(base, base / "credstore", group, alice, mallory, unix_users, user_python, cli)
    for user, who in ((alice, "alice"), (mallory, "mallory")):
        r = t.run(user, "init", "--protection", "keyfile")
        assert r.returncode == 0, r.stderr
        r = t.run(user, "set", "WANDB_USERNAME", f"{who}-{user.uid}")
        assert r.returncode == 0, r.stderr
    try:
        yield t
    finally:
        shutil.rmtree(base, ignore_errors=True)


def make_service(team: Team, key: str) -> Path:
    r = team.admin_run("service", "add", "ml-team", "--group", team.group)
    assert r.returncode == 0, r.stderr
    r = team.admin_run("service", "set", "ml-team", "WANDB_API_KEY", input=key)
    assert r.returncode == 0, r.stderr
    r = team.admin_run("service", "set", "ml-team", "WANDB_ENTITY", "the-team")
    assert r.returncode == 0, r.stderr
    return team.shared / "ml-team"


def env_of(team: Team, user: UnixUser, *flags: str) -> dict[str, str]:
    r = team.run(user, "exec", *flags, "--", "env")
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("credstore: ") and "Traceback" not in stderr, stderr
    return lines[0]


# -- finding 2: removing a member, re-keying ---------------------------------------------------------------------


def test_removed_member_with_a_saved_key_opens_nothing_after_rekey_and_rotation(team: Team) -> None:
    old = wandb_key()
    svc = make_service(team, old)
    # mallory, a member, saves the group key file (and could derive the data key from it).
    r = team.users.run_as(team.mallory, ["cat", str(svc / "service.key")], text=False)
    assert r.returncode == 0 and len(r.stdout) == 32
    saved_key = r.stdout
    header, _, _ = envelope.parse((svc / "service.store").read_bytes())
    saved_dek = envelope.unwrap_dek(header, saved_key)  # what her key opens today

    # The removal procedure: out of the group, re-key, rotate at the provider.
    subprocess.run([require_binary("gpasswd"), "-d", team.mallory.name, team.group], check=True, capture_output=True)
    r = team.admin_run("service", "rekey", "ml-team")
    assert r.returncode == 0, r.stderr
    new = wandb_key()
    r = team.admin_run("rotate", "WANDB_API_KEY", "--service", "ml-team", input=new)
    assert r.returncode == 0, r.stderr

    assert (svc / "service.key").read_bytes() != saved_key
    later_copy = (svc / "service.store").read_bytes()  # e.g. a backup she gets hold of later
    header, ad, ciphertext = envelope.parse(later_copy)
    with pytest.raises(AuthError):
        envelope.unwrap_dek(header, saved_key)
    with pytest.raises(CorruptStoreError):
        envelope.open_payload(header, ad, ciphertext, saved_dek)
    # The copy does hold both values (so the failures above are not vacuous), history kept, same store id.
    dek = envelope.unwrap_dek(header, (svc / "service.key").read_bytes())
    entry = decode_payload(envelope.open_payload(header, ad, ciphertext, dek), header.generation).entries[
        "WANDB_API_KEY"
    ]
    assert entry.value == new and entry.previous == old and len(entry.rotations) == 1
    # Files keep their modes and group; a remaining member reads the new key, the rollback still works.
    for name in ("service.key", "service.store"):
        st = (svc / name).stat()
        assert (st.st_mode & 0o777) == 0o640 and st.st_gid == (svc.stat().st_gid)
    assert env_of(team, team.alice, "--service", "ml-team")["WANDB_API_KEY"] == new
    r = team.admin_run("rotate", "WANDB_API_KEY", "--service", "ml-team", "--rollback")
    assert r.returncode == 0, r.stderr
    assert env_of(team, team.alice, "--service", "ml-team")["WANDB_API_KEY"] == old
    shared_log = (team.shared / "audit.log").read_text()
    assert '"event":"service-rekey"' in shared_log and old not in shared_log and new not in shared_log
    # Her login is no longer a member: refused by the file system and by credstore.
    r = team.run(team.mallory, "env", "--service", "ml-team")
    assert r.returncode == 8 and r.stdout == "" and new not in r.stderr


def test_members_lists_the_group_now_and_warns_about_running_processes(team: Team) -> None:
    make_service(team, wandb_key())
    # A user whose *primary* group is the service's group is a member too.
    useradd = require_binary("useradd")
    primary_name = f"prim-{secrets.token_hex(4)}"
    subprocess.run([useradd, "--no-create-home", "-g", team.group, primary_name], check=True, capture_output=True)
    import pwd

    pw = pwd.getpwnam(primary_name)
    team.users.users.append(UnixUser(primary_name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir)))

    # mallory starts a long job, then is removed from the group: the job keeps the group's rights.
    runuser = require_binary("runuser")
    job = subprocess.Popen(
        [runuser, "-u", team.mallory.name, "--", "sleep", "300"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        r = team.admin_run("service", "members", "ml-team")
        assert r.returncode == 0, r.stderr
        listed = r.stdout.split()
        assert team.alice.name in listed and team.mallory.name in listed and primary_name in listed
        subprocess.run(
            [require_binary("gpasswd"), "-d", team.mallory.name, team.group], check=True, capture_output=True
        )
        r = team.admin_run("service", "members", "ml-team")
        assert r.returncode == 0, r.stderr
        assert team.alice.name in r.stdout.split() and primary_name in r.stdout.split()
        assert team.mallory.name not in r.stdout
        # The warning: in general, and naming her process that still holds the group.
        assert "started before" in r.stderr
        sleeper = [line for line in r.stderr.splitlines() if team.mallory.name in line]
        assert sleeper and any(str(pid) in sleeper[0] for pid in _children_and_self(job.pid)), r.stderr
        # A member can ask too; JSON for scripts.
        r = team.run(team.alice, "service", "members", "ml-team", "--json")
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert team.alice.name in data["members"] and team.mallory.name not in data["members"]
        assert team.mallory.name in {p["user"] for p in data["lingering"]}
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)


def _children_and_self(pid: int) -> list[int]:
    """``pid`` and its children (runuser forks the command it runs)."""
    out = [pid]
    with contextlib.suppress(OSError):
        out += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return out


# -- finding 8: the shared directory is checked and opened as one ----------------------------------------------------


def test_member_owning_a_directory_in_the_path_cannot_swap_the_service(team: Team) -> None:
    """/base/real/credstore is the admin's; /base/m is mallory's, holding the symlink link -> /base/real that the
    members' CREDSTORE_SHARED_DIR goes through. She points the link at a shared directory of her own, with her
    key and her server."""
    real = team.base / "real"
    real.mkdir(mode=0o755)
    team.shared = real / "credstore"
    make_service(team, wandb_key())
    mine = team.base / "m"
    mine.mkdir(mode=0o755)
    os.chown(mine, team.mallory.uid, team.mallory.gid)
    link = mine / "link"
    r = team.users.run_as(team.mallory, ["ln", "-s", str(real), str(link)])
    assert r.returncode == 0, r.stderr
    through_link = link / "credstore"
    first = team.run(team.alice, "env", "--service", "ml-team", shared=through_link)  # whatever it says today

    # mallory builds her own service account and swaps the link.
    fake = mine / "fake" / "credstore"
    r = team.users.run_as(team.mallory, ["mkdir", "-p", str(fake.parent)])
    assert r.returncode == 0, r.stderr
    her_key = "mallory" + secrets.token_hex(24)
    her_url = f"https://collector-{secrets.token_hex(4)}.example.org"
    for args, data in (
        (("service", "add", "ml-team", "--group", team.group), None),
        (("service", "set", "ml-team", "WANDB_API_KEY"), her_key),
        (("service", "set", "ml-team", "WANDB_BASE_URL", her_url), None),
    ):
        r = team.run(team.mallory, *args, input=data, shared=fake)
        assert r.returncode == 0, (args, r.stderr)
    r = team.users.run_as(team.mallory, ["ln", "-sfn", str(fake.parent), str(link)])
    assert r.returncode == 0, r.stderr

    for args in (
        ("env", "--service", "ml-team"),
        ("explain", "--service", "ml-team"),
        ("exec", "--service", "ml-team", "--", "env"),
    ):
        r = team.run(team.alice, *args, shared=through_link)
        assert r.returncode in (6, 8), (args, r.returncode, r.stdout, r.stderr)
        assert her_key not in r.stdout + r.stderr and her_url not in r.stdout + r.stderr
        assert r.stdout == ""
        one_line(r.stderr)
    assert first.returncode in (0, 6, 8)


def test_a_directory_of_another_user_in_the_path_is_refused(team: Team) -> None:
    """Without any symlink: mallory owns a directory above the shared one (root moved it there). Refused for
    alice, naming that directory."""
    real = team.base / "real"
    real.mkdir(mode=0o755)
    team.shared = real / "credstore"
    make_service(team, wandb_key())
    mine = team.base / "m"
    mine.mkdir(mode=0o755)
    os.rename(real, mine / "real")
    os.chown(mine, team.mallory.uid, team.mallory.gid)
    team.shared = mine / "real" / "credstore"
    r = team.run(team.alice, "env", "--service", "ml-team")
    assert r.returncode == 8 and r.stdout == ""
    assert str(mine) in one_line(r.stderr)


def test_symlink_anywhere_in_the_path_is_refused(team: Team) -> None:
    real = team.base / "real"
    real.mkdir(mode=0o755)
    team.shared = real / "credstore"
    make_service(team, wandb_key())
    (team.base / "alias").symlink_to(real)
    r = team.run(team.alice, "env", "--service", "ml-team", shared=team.base / "alias" / "credstore")
    assert r.returncode == 8 and r.stdout == ""
    assert "symlink" in one_line(r.stderr)


def test_a_recreated_store_or_another_admin_is_refused_until_accepted(team: Team) -> None:
    first = wandb_key()
    make_service(team, first)
    assert env_of(team, team.alice, "--service", "ml-team")["WANDB_API_KEY"] == first  # remembered now

    # The admin removes and recreates the service: another store id.
    assert team.admin_run("service", "rm", "ml-team").returncode == 0
    second = wandb_key()
    make_service(team, second)
    for args in (("env", "--service", "ml-team"), ("explain", "--service", "ml-team")):
        r = team.run(team.alice, *args)
        assert r.returncode == 6, (args, r.returncode, r.stderr)
        line = one_line(r.stderr)
        assert "credstore service accept ml-team" in line and r.stdout == "" and second not in line
    r = team.run(team.alice, "service", "accept", "ml-team")
    assert r.returncode == 0, r.stderr
    assert env_of(team, team.alice, "--service", "ml-team")["WANDB_API_KEY"] == second
    # The admin's own later reads are not refused: it made the store.
    r = team.admin_run("service", "show", "ml-team")
    assert r.returncode == 0, r.stderr

    # Another admin takes over the whole shared directory.
    other = team.users.create("adm")
    subprocess.run(["chown", "-R", other.name, str(team.shared)], check=True)
    r = team.run(team.alice, "env", "--service", "ml-team")
    assert r.returncode == 8, (r.returncode, r.stderr)
    line = one_line(r.stderr)
    assert other.name in line and "credstore service accept ml-team" in line and r.stdout == ""
    r = team.run(team.alice, "service", "accept", "ml-team")
    assert r.returncode == 0, r.stderr
    assert env_of(team, team.alice, "--service", "ml-team")["WANDB_API_KEY"] == second


# -- finding 10: what a service may export -----------------------------------------------------------------------

PLANTED = ("LD_PRELOAD", "BASH_ENV", "PROMPT_COMMAND", "PATH", "PYTHONPATH", "PS1", "NODE_OPTIONS", "CREDSTORE_HOME")


def plant(team: Team, values: dict[str, str]) -> None:
    """A tampering admin writes straight into the service store through the API, past `service set`'s checks."""
    from credstore.store.base import Entry

    store = ServiceStore(SharedRoot(team.shared, explicit=True), "ml-team")

    def change(snapshot) -> None:  # type: ignore[no-untyped-def]
        for name, value in values.items():
            snapshot.entries[name] = Entry(name, value, False, 1.0, 1.0)

    store.modify(change)


@pytest.mark.parametrize("shell", ["bash", "zsh", "dash"])
def test_a_service_never_exports_names_that_change_how_programs_run(team: Team, shell: str) -> None:
    key = wandb_key()
    make_service(team, key)
    canary = "canary" + secrets.token_hex(8)
    planted = {name: f"/nonexistent/{canary}/{name.lower()}" for name in PLANTED}
    planted["UNLISTED_THING"] = canary + "-unlisted"
    plant(team, planted)

    sh = real_shell(shell)
    python = str(team.python.python)
    script = (
        f'eval "$({python} -m credstore env --service ml-team)" || exit 9\n'
        'echo "K=$WANDB_API_KEY"\n'
        'echo "LD=${LD_PRELOAD-unset} BE=${BASH_ENV-unset} PC=${PROMPT_COMMAND-unset} PP=${PYTHONPATH-unset}"\n'
        'echo "NO=${NODE_OPTIONS-unset} CH=${CREDSTORE_HOME-unset} UT=${UNLISTED_THING-unset}"\n'
        'echo "PATH=$PATH"\n'
    )
    r = team.users.run_as(team.alice, [sh, "-c", script], env=team.env_for())
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"K={key}" in out
    assert "LD=unset BE=unset PC=unset PP=unset" in out and "NO=unset CH=unset UT=unset" in out
    assert canary not in out and f"PATH={team.alice.base_env()['PATH']}" in out
    # One warning naming the refused names, never a value.
    warnings = [line for line in r.stderr.splitlines() if "LD_PRELOAD" in line]
    assert len(warnings) == 1, r.stderr
    for name in ("LD_PRELOAD", "BASH_ENV", "PROMPT_COMMAND", "PATH", "PYTHONPATH", "PS1"):
        assert name in warnings[0]
    assert "UNLISTED_THING" in r.stderr
    assert canary not in r.stderr

    # exec and the Python API's view (explain) agree.
    child = env_of(team, team.alice, "--service", "ml-team")
    assert not any(canary in v for v in child.values()) and child["WANDB_API_KEY"] == key
    r = team.run(team.alice, "explain", "--service", "ml-team")
    assert r.returncode == 0 and canary not in r.stdout + r.stderr and "LD_PRELOAD" not in r.stdout
    # The admin sees what is stored and what is never handed out (values of plain entries are shown to the admin).
    r = team.admin_run("service", "show", "ml-team")
    (line,) = [line for line in r.stdout.splitlines() if line.strip().startswith("LD_PRELOAD ")]
    assert "never exported" in line
    (line,) = [line for line in r.stdout.splitlines() if line.strip().startswith("UNLISTED_THING ")]
    assert "credstore service allow ml-team UNLISTED_THING" in line


def test_service_set_refuses_dangerous_and_unlisted_names_until_allowed(team: Team) -> None:
    make_service(team, wandb_key())
    for name in ("LD_PRELOAD", "BASH_ENV", "PROMPT_COMMAND", "PATH", "PYTHONSTARTUP", "PS1", "IFS", "LD_AUDIT"):
        r = team.admin_run("service", "set", "ml-team", name, "/x")
        assert r.returncode == 2, (name, r.stderr)
        assert name in one_line(r.stderr)
        r = team.admin_run("service", "allow", "ml-team", name)
        assert r.returncode == 2, (name, r.stderr)
    # A name outside the catalog needs the admin's explicit allow first.
    r = team.admin_run("service", "set", "ml-team", "TEAM_REGION", "eu-west", "--plain")
    assert r.returncode == 2 and "credstore service allow ml-team TEAM_REGION" in one_line(r.stderr)
    r = team.admin_run("service", "allow", "ml-team", "TEAM_REGION")
    assert r.returncode == 0, r.stderr
    r = team.admin_run("service", "set", "ml-team", "TEAM_REGION", "eu-west", "--plain")
    assert r.returncode == 0, r.stderr
    assert env_of(team, team.alice, "--service", "ml-team")["TEAM_REGION"] == "eu-west"
    r = team.run(team.alice, "explain", "--service", "ml-team", "TEAM_REGION")
    assert "TEAM_REGION: service:ml-team = eu-west" in r.stdout and "allowed" in r.stdout, r.stdout
    r = team.admin_run("service", "show", "ml-team")
    assert "TEAM_REGION" in r.stdout and "allowed" in r.stdout, r.stdout
    # Taking the allowance back stops the export (the value stays stored, with a warning on read).
    r = team.admin_run("service", "allow", "ml-team", "TEAM_REGION", "--remove")
    assert r.returncode == 0, r.stderr
    r = team.run(team.alice, "exec", "--service", "ml-team", "--", "env")
    assert r.returncode == 0 and "TEAM_REGION=" not in r.stdout and "TEAM_REGION" in r.stderr


def test_personal_set_of_a_dangerous_name_needs_allow_dangerous(team: Team) -> None:
    r = team.run(team.alice, "set", "LD_PRELOAD", "/x.so", "--plain")
    assert r.returncode == 2 and "--allow-dangerous" in one_line(r.stderr)
    r = team.run(team.alice, "set", "PYTHONPATH", input="/opt/mine")
    assert r.returncode == 2
    r = team.run(team.alice, "set", "--allow-dangerous", "PYTHONPATH", "/opt/mine", "--plain")
    assert r.returncode == 0, r.stderr
    r = team.run(team.alice, "exec", "--", "env")
    assert "PYTHONPATH=/opt/mine" in r.stdout  # her own choice, hers to make


def test_an_openbao_service_admin_cannot_export_dangerous_names_either(openbao, tmp_path: Path) -> None:
    """On OpenBao the service admin is whoever may write services/NAME: the same filter applies on every read, and
    `service allow` keeps its list in the service path's settings."""
    pytest.importorskip("hvac", reason="hvac not installed (pip install 'credstore[vault]')")
    from tests.test_vault_cli import connect, host, make_token, new_user

    team, member = f"team-{secrets.token_hex(3)}", new_user()
    policy = f"""
    path "secret/data/credstore/users/{member}/*"     {{ capabilities = ["create", "read", "update"] }}
    path "secret/metadata/credstore/users/{member}/*" {{ capabilities = ["read", "list"] }}
    path "secret/data/credstore/services/{team}/*"     {{ capabilities = ["read"] }}
    path "secret/metadata/credstore/services/{team}/*" {{ capabilities = ["read", "list"] }}
    """
    openbao.request("PUT", f"sys/policies/acl/cs-{member}", {"policy": policy})
    admin = host(tmp_path, "admin")
    r = admin("--profile", team, "init", "--backend", "vault", "--url", openbao.url, "--service", team,
              "--protection", "keyfile", input=make_token(openbao))  # fmt: skip
    assert r.returncode == 0, r.stderr
    key, canary = wandb_key(), "canary" + secrets.token_hex(8)
    admin("--profile", team, "set", "WANDB_API_KEY", input=key, check=True)
    for name in ("LD_PRELOAD", "BASH_ENV", "PROMPT_COMMAND", "PATH"):
        admin("--profile", team, "set", "--allow-dangerous", name, f"/{canary}/{name}", "--plain", check=True)
    admin("--profile", team, "set", "TEAM_REGION", f"eu-{canary}", "--plain", check=True)

    m = host(tmp_path, "member")
    connect(m, openbao, member, make_token(openbao, policies=[f"cs-{member}"]))
    script = (
        f'eval "$({sys.executable} -m credstore env --service {team})" || exit 9\n'
        'echo "K=$WANDB_API_KEY LD=${LD_PRELOAD-unset} BE=${BASH_ENV-unset} PC=${PROMPT_COMMAND-unset}"\n'
        'echo "TR=${TEAM_REGION-unset} PATH=$PATH"\n'
    )
    r = subprocess.run([real_shell("bash"), "-c", script], env=m.env, cwd=m.home, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"K={key} LD=unset BE=unset PC=unset" in r.stdout and "TR=unset" in r.stdout
    assert canary not in r.stdout and f"PATH={m.env['PATH']}" in r.stdout
    assert "LD_PRELOAD" in r.stderr and "TEAM_REGION" in r.stderr and canary not in r.stderr

    r = admin("--profile", team, "service", "allow", team, "TEAM_REGION")
    assert r.returncode == 0, r.stderr
    r = m("explain", "--service", team, "TEAM_REGION")
    assert f"TEAM_REGION: vault:secret/credstore/services/{team} = eu-{canary}" in r.stdout
    assert "allowed" in r.stdout, r.stdout


# -- a re-key killed at any point ------------------------------------------------------------------------------------


def test_rekey_killed_at_every_write_fsync_and_rename_leaves_a_readable_service(cli, tmp_path: Path) -> None:
    """SIGKILL before and after every write, fsync and rename of `service rekey` (the driver of test_crash.py):
    the service still reads with the key files on disk, and the next admin write completes or drops the re-key
    (afterwards service.key alone opens the store and no service.key.next is left)."""
    import grp
    import json as json_module

    from tests.test_crash import DRIVER

    group = grp.getgrgid(os.getegid()).gr_name
    key = wandb_key()

    def run(home: Path, shared: Path, target: int, when: str, *args: str, stdin: bytes = b""):
        env = {**cli.env, "CREDSTORE_HOME": str(home), "CREDSTORE_SHARED_DIR": str(shared)}
        return subprocess.run(
            [sys.executable, "-c", DRIVER, str(target), when, *args],
            input=stdin,
            capture_output=True,
            env=env,
            cwd=cli.home,
            timeout=60,
        )

    def code_of(done: subprocess.CompletedProcess) -> int:
        """The exit code main() returned (the driver itself exits 0 after reporting it)."""
        assert done.returncode == 0, done.stderr.decode()
        return int(json_module.loads(done.stdout.decode().strip().splitlines()[-1])["code"])

    def fresh(n: int) -> tuple[Path, Path, bytes]:
        home, shared = tmp_path / f"home-{n}", tmp_path / f"shared-{n}"
        home.mkdir(mode=0o700)
        for args, data in (
            (("service", "add", "t", "--group", group), b""),
            (("service", "set", "t", "WANDB_API_KEY"), key.encode()),
        ):
            assert code_of(run(home, shared, 0, "never", *args, stdin=data)) == 0
        return home, shared, (shared / "t" / "service.key").read_bytes()

    home, shared, _ = fresh(0)
    done = run(home, shared, 0, "never", "service", "rekey", "t")
    assert code_of(done) == 0
    calls = json_module.loads(done.stdout.decode().strip().splitlines()[-1])["calls"]
    assert calls.count("replace") >= 3  # the next key, the store, the key file

    for target in range(1, len(calls) + 1):
        for when in ("before", "after"):
            home, shared, old_kek = fresh(target * 2 + (when == "after"))
            crashed = run(home, shared, target, when, "service", "rekey", "t")
            assert crashed.returncode == -signal.SIGKILL, (target, when, crashed.stderr.decode())
            r = run(home, shared, 0, "never", "env", "--service", "t", "--format", "json")
            assert code_of(r) == 0, (target, when, r.stderr.decode())
            assert json_module.loads(r.stdout.decode().splitlines()[0])["WANDB_API_KEY"] == key
            r = run(home, shared, 0, "never", "service", "set", "t", "WANDB_ENTITY", "x")
            assert code_of(r) == 0, (target, when, r.stderr.decode())
            svc = shared / "t"
            assert not (svc / "service.key.next").exists(), (target, when)
            header, _, _ = envelope.parse((svc / "service.store").read_bytes())
            envelope.unwrap_dek(header, (svc / "service.key").read_bytes())  # the key file alone opens it
            if (svc / "service.key").read_bytes() != old_kek:
                with pytest.raises(AuthError):
                    envelope.unwrap_dek(header, old_kek)


def test_the_dangerous_list_spares_every_catalog_variable_and_covers_each_family() -> None:
    from credstore import catalog

    assert [name for name in catalog.VARIABLES if catalog.is_dangerous(name)] == []
    for name in ("LD_PRELOAD", "LD_AUDIT", "BASH_ENV", "BASH_FUNC_ls%%", "ENV", "PROMPT_COMMAND", "PS0", "PS4", "IFS",
                 "PATH", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "NODE_OPTIONS", "PERL5LIB", "PERL5OPT",
                 "RUBYOPT", "SHELLOPTS", "BASHOPTS", "CDPATH", "GCONV_PATH", "MALLOC_CHECK_", "LC_ALL",
                 "GIT_SSH_COMMAND", "CREDSTORE_HOME", "XDG_CONFIG_HOME", "http_proxy", "OPENSSL_CONF"):  # fmt: skip
        assert catalog.is_dangerous(name), name
    assert not catalog.is_dangerous("TEAM_REGION") and not catalog.is_dangerous("PATHOLOGY_DB")
