"""scripts/install.sh on the machine's own Debian Python (PEP 668), as a real user with /etc/skel dotfiles, and as root.

Everything is real: useradd'ed users, Debian's /usr/bin/python3 with its EXTERNALLY-MANAGED marker, pip from the
package index, login shells started by runuser, pipx and uv from the package index. Root only (CI runs it as root).

One user installs once (module fixture, with the README's own first command) and the read-only checks share that
install; reinstall and uninstall come last, in ``test_reinstall_then_uninstall``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures_services import (
    SAFE_PATH,
    UnixUser,
    UnixUsers,
    is_root,
    require_binary,
    run_as,
)

REPO = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3")
# The PATH of a stock shell before its profile adds ~/.local/bin: what a user has right after installing.
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"

pytestmark = pytest.mark.skipif(not is_root(), reason="creates Unix users (useradd) and runs as them: needs root")


def _copy_checkout(dest: Path) -> Path:
    """This checkout's files (tracked and untracked, not ignored, no .git) copied to ``dest``, readable by all."""
    if (REPO / ".git").exists() and shutil.which("git"):
        listing = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        ).stdout
        files = [Path(name) for name in listing.decode().split("\0") if name]
    else:
        files = [
            p.relative_to(REPO)
            for p in REPO.rglob("*")
            if p.is_file() and ".git" not in p.parts and "__pycache__" not in p.parts
        ]
    for rel in files:
        src = REPO / rel
        if not src.is_file():  # deleted in the work tree but still tracked
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(dest)], check=True)
    return dest


def console_scripts() -> list[str]:
    """The commands the project installs (plain scripts, see bin/credstore)."""
    from tests.integration_support import script_files

    return [path.name for path in script_files()]


def _tree(root: Path) -> set[str]:
    """Every path below ``root`` (relative), symlinks not followed."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _login(user: UnixUser, script: str, *, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``script`` in a new login shell of ``user`` (runuser -l: the user's shell, /etc/profile, ~/.profile)."""
    return subprocess.run(
        [require_binary("runuser"), "-l", user.name, "-c", script],
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": SAFE_PATH, "LANG": "C.UTF-8"},
    )


def _fresh_machine_command() -> str:
    """The README's first command (section "On a fresh machine")."""
    text = (REPO / "README.md").read_text()
    section = text.split("## On a fresh machine", 1)[1]
    match = re.search(r"```sh\n(.+?)\n```", section, re.S)
    assert match, "README: no sh block under 'On a fresh machine'"
    return match.group(1).strip()


def _user_env(user: UnixUser, **extra: str) -> dict[str, str]:
    return {"PATH": PLAIN_PATH, "SHELL": "/bin/bash", **extra}


@dataclass
class Installed:
    user: UnixUser
    checkout: Path
    result: subprocess.CompletedProcess[str]
    home_before: set[str]

    @property
    def data(self) -> Path:
        return self.user.home / ".local" / "share" / "credstore"

    @property
    def link(self) -> Path:
        return self.user.home / ".local" / "bin" / "credstore"

    def install(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_as(self.user, ["sh", str(self.checkout / "scripts" / "install.sh"), *args], env=_user_env(self.user))


@pytest.fixture(scope="module")
def checkout() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="credstore-install-src-"))
    base.chmod(0o755)
    try:
        yield _copy_checkout(base / "credstore")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def system_python() -> Path:
    if not SYSTEM_PYTHON.exists():
        pytest.skip("/usr/bin/python3 is absent: these tests are about Debian's/Ubuntu's own Python (apt: python3)")
    return SYSTEM_PYTHON


@pytest.fixture(scope="module")
def installed(checkout: Path, system_python: Path) -> Iterator[Installed]:
    """A user made by useradd -m (Debian's /etc/skel) who ran the README's first command, up to the install.

    The README command is run for real up to the point where it needs a terminal (``credstore add`` prompts):
    the install and the PATH fix for the current shell, followed by ``command -v credstore`` in that same shell.
    """
    users = UnixUsers()
    try:
        user = users.create("csinst")
        home_before = _tree(user.home)
        assert (user.home / ".profile").exists(), "useradd -m did not copy /etc/skel/.profile"
        command = _fresh_machine_command()
        prefix, sep, _ = command.partition(" && credstore ")
        assert sep and "scripts/install.sh" in prefix, f"README command does not start with the installer: {command}"
        tools_present = [t for t in ("pipx", "uv") if shutil.which(t, path=PLAIN_PATH)]
        if tools_present:
            # This test is about the private venv; pipx and uv have tests of their own below.
            prefix = prefix.replace("scripts/install.sh", "scripts/install.sh --method venv", 1)
        # In the checkout, as the README says; dash (Debian's sh) is the strictest shell that runs it.
        result = run_as(
            user, ["sh", "-c", f"{prefix} && command -v credstore"], env=_user_env(user), cwd=checkout, timeout=600
        )
        yield Installed(user, checkout, result, home_before)
    finally:
        users.cleanup()


def test_plain_pip_install_is_refused_by_pep_668(installed: Installed, system_python: Path) -> None:
    """The case the installer exists for: Debian's Python is externally managed and pip refuses to install into it."""
    markers = list(Path("/usr/lib").glob("python3*/EXTERNALLY-MANAGED"))
    assert markers, "no /usr/lib/python3*/EXTERNALLY-MANAGED: this is not the PEP 668 case"
    has_pip = subprocess.run([str(system_python), "-c", "import pip"], capture_output=True).returncode == 0
    if not has_pip:
        pytest.fail("Debian's python3 has no pip (install python3-pip; scripts/test.sh does it as root)")
    refused = run_as(
        installed.user,
        [str(system_python), "-m", "pip", "install", "--user", str(installed.checkout)],
        env=_user_env(installed.user),
        timeout=300,
    )
    assert refused.returncode != 0
    assert "externally-managed-environment" in refused.stdout + refused.stderr


def test_install_says_what_it_did(installed: Installed) -> None:
    result = installed.result
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    venv = installed.data / "venv"
    assert f"method: venv (private venv {venv})" in out
    assert "python: /usr/bin/python3 (Python 3." in out and "externally managed: left untouched" in out
    assert f"command: {installed.link} -> {venv}/bin/credstore" in out
    assert f"uninstall with: sh {installed.checkout}/scripts/install.sh --uninstall" in out
    assert f"a new login shell (/bin/bash) finds credstore at {installed.link}" in out
    # The README's `export PATH=...` made it reachable in the installing shell itself.
    assert out.rstrip().splitlines()[-1] == str(installed.link)
    assert installed.link.is_symlink() and os.readlink(installed.link) == f"{venv}/bin/credstore"
    # Nothing went into Debian's Python: no --user site, no build output left in the checkout.
    assert not (installed.user.home / ".local" / "lib").exists()
    assert not (installed.checkout / "build").exists()
    assert not list(installed.checkout.glob("*.egg-info"))
    # The store's home exists private: credstore refuses a store directory others can read.
    assert (installed.data.stat().st_mode & 0o777) == 0o700


def test_next_login_shell_runs_credstore_end_to_end(installed: Installed) -> None:
    assert installed.result.returncode == 0, installed.result.stderr
    found = _login(installed.user, "command -v credstore && credstore --version")
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines() == [str(installed.link), "credstore, version 0.1.0"]

    init = _login(installed.user, "credstore init --protection keyfile")
    assert init.returncode == 0, init.stderr
    stored = _login(installed.user, "credstore set HF_TOKEN", input="hf_installtest_0123456789abcdef")
    assert stored.returncode == 0, stored.stderr
    loaded = _login(installed.user, 'eval "$(credstore env)" && printf "%s\\n" "$HF_TOKEN"')
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines() == ["hf_installtest_0123456789abcdef"]
    assert (installed.data / "profiles" / "default.store").exists()


def test_reinstall_then_uninstall(installed: Installed) -> None:
    """Runs last in this module: a second run upgrades in place (here adding --vault), --uninstall removes exactly
    what was installed and nothing else (the store stays)."""
    assert installed.result.returncode == 0, installed.result.stderr
    store = installed.data / "profiles" / "default.store"
    if not store.exists():  # when run on its own
        assert _login(installed.user, "credstore init --protection keyfile").returncode == 0
    venv = installed.data / "venv"

    # The second run installs from a wheel (the other kind of SOURCE), with the vault extra.
    build = Path(tempfile.mkdtemp(prefix="credstore-install-wheel-"))
    try:
        shutil.copytree(installed.checkout, build / "src")
        wheel = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(build / "dist"), str(build / "src")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert wheel.returncode == 0, wheel.stderr[-2000:]
        (wheel_file,) = (build / "dist").glob("credstore-*.whl")
        subprocess.run(["chmod", "-R", "a+rX", str(build)], check=True)
        again = installed.install("--vault", str(wheel_file))
    finally:
        shutil.rmtree(build, ignore_errors=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"upgrading the venv in {venv}" in again.stdout
    assert f"installed credstore from {wheel_file} with the vault extra" in again.stdout
    hvac = run_as(installed.user, [str(venv / "bin" / "python"), "-c", "import hvac"], env=_user_env(installed.user))
    assert hvac.returncode == 0, hvac.stderr
    assert os.readlink(installed.link) == f"{venv}/bin/credstore"
    command = (venv / "bin" / "credstore").read_text()  # the plain script (bin/credstore), not pip's wrapper
    assert command.startswith(f"#!{venv}/bin/python") and "import re" not in command, command
    manifest = (installed.data / "install-manifest").read_text()
    assert manifest.count("\nlink\t") == len(console_scripts()), manifest  # credstore, git-credential-credstore
    assert _login(installed.user, "credstore --version").returncode == 0

    store_files = _tree(installed.data / "profiles")
    gone = installed.install("--uninstall")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "credstore is uninstalled" in gone.stdout
    assert not installed.link.exists() and not installed.link.is_symlink()
    assert not venv.exists()
    assert not (installed.data / "install-manifest").exists()
    # ~/.local/bin was made by the installer and is empty again: removed, like everything else it made.
    assert not (installed.user.home / ".local" / "bin").exists()
    assert _login(installed.user, "command -v credstore").returncode != 0
    # Nothing else removed: the skeleton's files and the store are all still there.
    after = _tree(installed.user.home)
    assert installed.home_before <= after, installed.home_before - after
    assert store.exists() and _tree(installed.data / "profiles") == store_files

    twice = installed.install("--uninstall")
    assert twice.returncode == 0 and "nothing to uninstall" in twice.stdout


# --------------------------------------------------------------------------------------------------------------
# root
# --------------------------------------------------------------------------------------------------------------


def test_root_install_links_into_usr_local_bin(checkout: Path, tmp_path: Path) -> None:
    """root with Debian's stock dotfiles (base-files): ~/.local/bin is never on root's PATH, /usr/local/bin is.

    Run with the interpreter running these tests (pyenv's in CI), in a throwaway HOME for root so that root's real
    data is not touched.
    """
    link = Path("/usr/local/bin/credstore")
    if link.exists() or link.is_symlink():
        pytest.skip(f"{link} already exists on this machine; this test would have to replace it")
    stock = Path("/usr/share/base-files")
    if not (stock / "dot.profile").exists():
        pytest.skip("/usr/share/base-files/dot.profile (Debian's stock /root/.profile) is absent: not Debian")
    home = tmp_path / "root-home"
    home.mkdir(mode=0o700)
    shutil.copy(stock / "dot.profile", home / ".profile")
    shutil.copy(stock / "dot.bashrc", home / ".bashrc")
    before = _tree(home)
    env = {"HOME": str(home), "PATH": f"{Path(sys.executable).parent}:{SAFE_PATH}", "LANG": "C.UTF-8"}

    def login_shell(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["env", "-i", f"HOME={home}", "TERM=dumb", "LANG=C.UTF-8", "bash", "-l", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    install = [str(checkout / "scripts" / "install.sh"), "--method", "venv", "--python", sys.executable]
    try:
        result = subprocess.run(["sh", *install], env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        venv = home / ".local" / "share" / "credstore" / "venv"
        real_python = subprocess.run(
            [sys.executable, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True
        ).stdout.strip()
        assert f"python: {real_python} (Python 3." in result.stdout
        assert os.readlink(link) == f"{venv}/bin/credstore"
        # Why not ~/.local/bin: Debian's root profile never adds it, even when it exists.
        (home / ".local" / "bin").mkdir()
        path = login_shell('printf "%s\\n" "$PATH"')
        assert f"{home}/.local/bin" not in path.stdout.split(":") and "/usr/local/bin" in path.stdout.split(":")
        (home / ".local" / "bin").rmdir()

        found = login_shell("command -v credstore && credstore --version")
        assert found.stdout.splitlines() == [str(link), "credstore, version 0.1.0"], found.stderr
        works = login_shell(
            "credstore init --protection keyfile >/dev/null 2>&1 && printf x1 | credstore set DEMO_TOKEN"
            ' && eval "$(credstore env)" && printf "%s\\n" "$DEMO_TOKEN"'
        )
        assert works.stdout.splitlines()[-1:] == ["x1"], works.stderr

        gone = subprocess.run(["sh", *install[:1], "--uninstall"], env=env, capture_output=True, text=True)
        assert gone.returncode == 0, gone.stdout + gone.stderr
        assert not link.exists() and not link.is_symlink()
        assert not venv.exists()
        assert before <= _tree(home)
        assert (home / ".local" / "share" / "credstore" / "profiles" / "default.store").exists()
    finally:
        if link.is_symlink() and os.readlink(link).startswith(str(home)):
            link.unlink()


# --------------------------------------------------------------------------------------------------------------
# pipx, uv, and a Python without ensurepip
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools(system_python: Path) -> Iterator[Path]:
    """pipx and uv from the package index, in a venv every user can run; yields its bin directory."""
    base = Path(tempfile.mkdtemp(prefix="credstore-install-tools-"))
    base.chmod(0o755)
    try:
        made = subprocess.run([str(system_python), "-m", "venv", str(base / "venv")], capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        pip = subprocess.run(
            [str(base / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "pipx", "uv"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert pip.returncode == 0, pip.stderr[-2000:]
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
        yield base / "venv" / "bin"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _tool_env(bin_dir: Path) -> dict[str, str]:
    # uv reads no pip.conf: point it at the system CA bundle (the package index may sit behind a TLS proxy).
    env = {"PATH": f"{bin_dir}:{PLAIN_PATH}", "SHELL": "/bin/bash"}
    if Path("/etc/ssl/certs/ca-certificates.crt").exists():
        env["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"
    return env


@pytest.mark.parametrize("tool", ["pipx", "uv"])
def test_pipx_or_uv_when_present(
    tool: str, tools: Path, checkout: Path, system_python: Path, unix_users: UnixUsers
) -> None:
    """auto picks pipx when it is on PATH, else uv; either is given Debian's Python, and --uninstall undoes it."""
    # A PATH directory holding only this tool (uv alone shows that auto falls back to uv without pipx).
    only = Path(tempfile.mkdtemp(prefix=f"credstore-install-{tool}-"))
    only.chmod(0o755)
    (only / tool).symlink_to(tools / tool)
    if tool == "uv":
        assert not shutil.which("pipx", path=PLAIN_PATH), "pipx on the plain PATH: cannot show that auto picks uv"
    user = unix_users.create("cstool")
    before = _tree(user.home)
    script = str(checkout / "scripts" / "install.sh")
    result = run_as(user, ["sh", script, "--python", str(system_python)], env=_tool_env(only), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"method: {tool}" in result.stdout
    assert f"python: {system_python} (Python 3." in result.stdout
    link = user.home / ".local" / "bin" / "credstore"
    assert link.is_symlink()
    found = _login(user, "command -v credstore && credstore --version")
    assert found.stdout.splitlines() == [str(link), "credstore, version 0.1.0"], found.stderr

    gone = run_as(user, ["sh", script, "--uninstall"], env=_tool_env(only))
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"removed credstore from {tool}" in gone.stdout
    assert not link.exists() and not link.is_symlink()
    assert _login(user, "command -v credstore").returncode != 0
    assert before <= _tree(user.home)
    shutil.rmtree(only)


def test_python_without_ensurepip_fails_with_the_fix(
    checkout: Path, system_python: Path, unix_users: UnixUsers, tmp_path: Path
) -> None:
    """A stock Debian without python3-venv: one clear line naming the fix, nothing left behind, no fallback.

    ensurepip (what python3-venv ships) is hidden with a bind mount in a private mount namespace, so Debian's
    real interpreter runs without it, as on a machine where the package was never installed.
    """
    unshare = shutil.which("unshare", path=SAFE_PATH)
    if unshare is None:
        pytest.skip("unshare (util-linux) not found")
    version = subprocess.run(
        [str(system_python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()
    ensurepip = Path(f"/usr/lib/python{version}/ensurepip")
    if not ensurepip.is_dir():
        pytest.skip(f"{ensurepip} is absent already (python3-venv not installed); scripts/test.sh installs it")
    probe = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "mount", "--bind", str(tmp_path), str(ensurepip)],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot bind-mount in a private mount namespace here: {probe.stderr.strip()}")
    user = unix_users.create("csnovenv")
    before = _tree(user.home)
    empty = tmp_path / "empty"
    empty.mkdir()
    script = str(checkout / "scripts" / "install.sh")
    result = subprocess.run(
        [
            unshare, "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$1" "$2" && exec "$5" -u "$3" -m -- sh "$4" --method venv',
            "sh", str(empty), str(ensurepip), user.name, script, require_binary("runuser"),
        ],
        env={**user.base_env(), **_user_env(user)},
        cwd=str(user.home),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "credstore-install: /usr/bin/python3 cannot make a venv (no ensurepip): run 'sudo apt-get install "
        "python3-venv' (or install pipx: 'sudo apt-get install pipx') and run this again"
    ]
    assert "--break-system-packages" not in result.stdout + result.stderr
    assert _tree(user.home) == before


def test_refusals_leave_no_trace(checkout: Path, system_python: Path, unix_users: UnixUsers) -> None:
    """A command of the same name not made by the installer (here: what `pip install --user` leaves), and root with
    a user's HOME (`sudo` without -H): one line, exit 1, nothing changed."""
    user = unix_users.create("csrefuse")
    script = str(checkout / "scripts" / "install.sh")
    foreign = user.home / ".local" / "bin" / "credstore"
    run_as(user, ["mkdir", "-p", str(foreign.parent)], check=True)
    run_as(user, ["sh", "-c", f"printf '#!/bin/sh\\n' > {foreign} && chmod +x {foreign}"], check=True)
    before = _tree(user.home)
    refused = run_as(user, ["sh", script, "--method", "venv"], env=_user_env(user))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith(f"credstore-install: {foreign} already exists and was not made by this script")
    assert _tree(user.home) == before and foreign.read_text() == "#!/bin/sh\n"

    as_root = subprocess.run(
        ["sh", script, "--method", "venv"],
        env={"HOME": str(user.home), "PATH": PLAIN_PATH, "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_root.returncode == 1, as_root.stdout + as_root.stderr
    assert as_root.stderr.splitlines() == [
        f"credstore-install: HOME={user.home} belongs to uid {user.uid}, not to you (uid 0): "
        "run this as that user, or with sudo -H"
    ]
    assert _tree(user.home) == before


def test_login_shell_without_local_bin_gets_the_fix(checkout: Path, system_python: Path, unix_users: UnixUsers) -> None:
    """zsh does not read ~/.profile: the installer runs the user's real login shell, sees that it would not find
    credstore, and says what to add (it does not edit dotfiles itself)."""
    zsh = require_binary("zsh")
    user = unix_users.create("cszsh", shell=zsh)
    script = str(checkout / "scripts" / "install.sh")
    result = run_as(user, ["sh", script, "--method", "venv"], env={**_user_env(user), "SHELL": zsh}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    bin_dir = user.home / ".local" / "bin"
    warning = f"warning: a new login shell ({zsh}) does not find credstore: add {bin_dir} to PATH in its profile"
    assert warning in result.stdout
    assert _login(user, "command -v credstore").returncode != 0
    # Following the advice for zsh makes the next login shell find it.
    run_as(user, ["sh", "-c", f"echo 'export PATH=\"{bin_dir}:$PATH\"' >> ~/.zprofile"], check=True)
    assert _login(user, "command -v credstore").stdout.strip() == str(bin_dir / "credstore")
