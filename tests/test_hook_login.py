"""The shell hook in real LOGIN shells (bash, zsh, fish) of a fresh user with Debian's /etc/skel dotfiles, on a real
pty (pexpect), with credstore installed as ~/.local/bin/credstore (a console script of a venv, as pipx or
scripts/install.sh leave it). Debian's ~/.profile sources ~/.bashrc before it puts ~/.local/bin on PATH: the hook
calls credstore by its absolute path, so nothing says `command not found`.

Checked: `hook install` is idempotent and `hook uninstall` undoes it; a login shell gets the values; a nested
interactive shell that inherited them starts no credstore process when nothing changed (no audit line) and does
when the store changed; Ctrl-C at the unlock prompt (and at the passphrase prompt) skips only the unlock, the rest of
the rc file and ~/.profile run; with credstore removed a login shell prints no error; `env --hook` reports the
terminal's foreground only to a foreground process (the hook never prompts from a background job).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

TOKEN = "tok-0123456789abcdef"
PW = "correct horse battery staple"
SHELLS = {"bash": "/bin/bash", "zsh": "/usr/bin/zsh", "fish": "/usr/bin/fish"}


def _install_credstore(user, user_python) -> Path:  # noqa: ANN001
    """~/.local/bin/credstore: what pip writes as the console script, for user_python's venv (package copy)."""
    bin_dir = user.home / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "credstore"
    script.write_text(f"#!{user_python.python}\nimport sys\nfrom credstore.__main__ import main\nsys.exit(main())\n")
    script.chmod(0o755)
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(user.home / ".local")], check=True)
    return script


def _as_user(unix_users, user, *args: str, input: str | None = None) -> subprocess.CompletedProcess:  # noqa: ANN001
    env = {"CREDSTORE_TEST_WEAK_KDF": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return unix_users.run_as(user, [str(user.home / ".local" / "bin" / "credstore"), *args], env=env, input=input)


@pytest.fixture
def runtime_dirs():  # noqa: ANN201
    """Makes /run/user/UID as logind would (this container has no logind); removes them afterwards (uids are reused
    by later tests' users, which must not find another user's leftovers)."""
    made: list[Path] = []

    def make(user) -> Path:  # noqa: ANN001
        path = Path(f"/run/user/{user.uid}")
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        os.chown(path, user.uid, user.gid)
        path.chmod(0o700)
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


class Login:
    """A login shell of ``user`` on a pty: ``runuser -l`` (PAM gives it a fresh session keyring, as a login does)."""

    def __init__(self, user) -> None:  # noqa: ANN001
        self.log = io.StringIO()
        env = {
            "TERM": "dumb",
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "CREDSTORE_TEST_WEAK_KDF": "1",
        }
        self.child = pexpect.spawn(
            "runuser", ["-l", user.name, "-w", "CREDSTORE_TEST_WEAK_KDF"], env=env, encoding="utf-8", timeout=60
        )
        self.child.logfile_read = self.log

    def run(self, command: str, marker: str) -> str:
        """Send ``command; echo <marker>`` and return what came before the marker."""
        self.child.sendline(f"{command}; printf '@@%s@@\\n' {marker}")  # the echo of what is typed never matches
        self.child.expect(f"@@{marker}@@\r?\n")
        out: str = self.child.before
        return out

    def close(self) -> str:
        if self.child.isalive():
            self.child.sendline("exit")
            try:
                self.child.expect(pexpect.EOF, timeout=10)
            except pexpect.TIMEOUT:
                self.child.terminate(force=True)
        return self.log.getvalue()


def _audit_envs(user) -> int:  # noqa: ANN001
    log = user.home / ".local" / "share" / "credstore" / "audit.log"
    return log.read_text().count('"event":"env"') if log.exists() else 0


def _need(shell: str) -> str:
    path = SHELLS[shell]
    if not Path(path).exists():
        pytest.skip(f"{shell} is not installed")
    return path


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_hook_install_in_login_shells_of_a_fresh_user(unix_users, user_python, runtime_dirs, shell: str) -> None:
    user = unix_users.create("csh", shell=_need(shell))
    _install_credstore(user, user_python)
    runtime_dirs(user)
    assert _as_user(unix_users, user, "init", "--protection", "keyfile").returncode == 0
    assert _as_user(unix_users, user, "set", "MY_TOKEN", input=TOKEN).returncode == 0
    first = _as_user(unix_users, user, "hook", "install", "--shell", shell)
    again = _as_user(unix_users, user, "hook", "install", "--shell", shell)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    rc = {"bash": ".bashrc", "zsh": ".zshrc", "fish": ".config/fish/config.fish"}[shell]
    rc_text = (user.home / rc).read_text()
    assert rc_text.count("# >>> credstore hook >>>") == 1  # idempotent
    if shell == "bash":
        assert "# ~/.bashrc: executed by bash(1) for non-login shells." in rc_text  # Debian's skel file, kept
    hook_file = user.home / ".config" / "credstore" / f"hook.{shell}"
    hook_text = hook_file.read_text()  # absolute paths, no PATH search: the interpreter, and its credstore package
    assert f"'{user_python.python}' '-c'" in hook_text
    assert f"[ -e '{user_python.package}/__init__.py' ]" in hook_text or shell == "fish"
    login = Login(user)
    try:
        echo = {"fish": 'echo "T=[$MY_TOKEN]"'}.get(shell, 'echo "T=[$MY_TOKEN]"')
        assert f"T=[{TOKEN}]" in login.run(echo, "one")
        before = _audit_envs(user)
        nested = login.run(f"{SHELLS[shell]} -i -c 'echo \"N=[$MY_TOKEN]\"'", "two")
        assert f"N=[{TOKEN}]" in nested
        assert _audit_envs(user) == before  # the nested shell started no credstore process
        login.run(f"printf new-value | {user.home}/.local/bin/credstore set MY_TOKEN 2>/dev/null", "three")
        nested = login.run(f"{SHELLS[shell]} -i -c 'echo \"N=[$MY_TOKEN]\"'", "four")
        assert "N=[new-value]" in nested  # a change reaches the nested shell
        assert _audit_envs(user) == before + 1
    finally:
        transcript = login.close()
    assert "command not found" not in transcript and "credstore:" not in transcript, transcript
    # uninstall, then a login shell without the hook
    out = _as_user(unix_users, user, "hook", "uninstall")
    assert out.returncode == 0, out.stderr
    assert "credstore hook" not in (user.home / rc).read_text()
    assert not hook_file.exists()


def test_ctrl_c_at_the_unlock_prompt_skips_only_the_unlock(unix_users, user_python) -> None:
    user = unix_users.create("csh", shell="/bin/bash")
    shutil.rmtree(f"/dev/shm/credstore-{user.uid}", ignore_errors=True)
    script = _install_credstore(user, user_python)
    assert _as_user(unix_users, user, "init", "--protection", "passphrase", input=PW + "\n").returncode == 0
    assert _as_user(unix_users, user, "hook", "install", "--shell", "bash").returncode == 0
    with open(user.home / ".bashrc", "a") as f:
        f.write('echo "BASHRC-REST"\n')
    with open(user.home / ".profile", "a") as f:
        f.write('echo "PROFILE-REST"\n')
    for answer in ("ctrl-c at the question", "ctrl-c at the passphrase"):
        login = Login(user)
        try:
            login.child.expect(r"Unlock now\? \[Y/n\] ")
            if answer == "ctrl-c at the passphrase":
                login.child.sendline("y")
                login.child.expect(r"(?i)passphrase")
            login.child.sendcontrol("c")
            login.child.expect("BASHRC-REST")
            login.child.expect("PROFILE-REST")
            path = login.run('echo "P=[$PATH]"', "path")
            assert f"{user.home}/.local/bin" in path  # ~/.profile ran to its end
            assert "L=[locked]" in login.run(f"{script} env >/dev/null 2>&1 || echo L=[locked]", "env")
        finally:
            login.close()
    # a background process never gets the foreground answer (so the hook never reads the terminal from it)
    login = Login(user)
    try:
        login.child.expect(r"Unlock now\? \[Y/n\] ")
        login.child.sendline("n")
        login.child.expect("PROFILE-REST")
        fg = login.run(f"{script} env --hook; echo rc=$?", "fg")
        bg = login.run(f"{script} env --hook & wait $!; echo rc=$?", "bg")
        assert "# credstore: foreground" in fg and "rc=4" in fg
        assert "# credstore: foreground" not in bg and "rc=4" in bg
    finally:
        login.close()
    # credstore removed (its package and its command): no error in a new login shell, the rest runs
    script.unlink()
    hook_file = user.home / ".config" / "credstore" / "hook.bash"
    hook_file.write_text(hook_file.read_text().replace(str(user_python.package), "/opt/removed/credstore"))
    login = Login(user)
    try:
        login.child.expect("PROFILE-REST")
        assert re.search(r"T=\[\]", login.run('echo "T=[${MY_TOKEN-}]"', "gone"))
    finally:
        transcript = login.close()
    assert "command not found" not in transcript and "No such file" not in transcript, transcript
    shutil.rmtree(f"/dev/shm/credstore-{user.uid}", ignore_errors=True)


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_ctrl_c_at_the_unlock_prompt_in_zsh_and_fish(unix_users, user_python, shell: str) -> None:
    user = unix_users.create("csh", shell=_need(shell))
    shutil.rmtree(f"/dev/shm/credstore-{user.uid}", ignore_errors=True)
    script = _install_credstore(user, user_python)
    assert _as_user(unix_users, user, "init", "--protection", "passphrase", input=PW + "\n").returncode == 0
    assert _as_user(unix_users, user, "hook", "install", "--shell", shell).returncode == 0
    rc = user.home / {"zsh": ".zshrc", "fish": ".config/fish/config.fish"}[shell]
    with open(rc, "a") as f:
        f.write('echo "RC-REST"\n')
    # fish cancels the rest of config.fish on a Ctrl-C while a child runs (credstore's passphrase prompt), whatever
    # the hook does (an --on-signal INT handler or job control do not stop it): only the question is covered there.
    answers = ["ctrl-c at the question"] + (["ctrl-c at the passphrase"] if shell == "zsh" else [])
    try:
        for answer in answers:
            login = Login(user)
            try:
                login.child.expect(r"Unlock now\? \[Y/n\] ")
                if answer == "ctrl-c at the passphrase":
                    login.child.sendline("y")
                    login.child.expect(r"(?i)passphrase")
                login.child.sendcontrol("c")
                login.child.expect("RC-REST")  # the rest of the rc file ran
                status = "$status" if shell == "fish" else "$?"
                out = login.run(f"{script} env >/dev/null 2>&1; echo rc={status}", "env")
                assert "rc=4" in out  # still locked: only the unlock was skipped
            finally:
                transcript = login.close()
            assert "command not found" not in transcript
    finally:
        shutil.rmtree(f"/dev/shm/credstore-{user.uid}", ignore_errors=True)
