"""``credstore doctor``: one report of what is wrong with how this account keeps its keys, each with its fix.

Findings have a severity: ``ok`` and ``info`` are not problems; ``warning`` and ``error`` are (the command then exits
1). Checks: the protection level of each profile (keyfile is a warning), StrictModes-style permissions, the kernel
keyring and the OS keyring, plaintext keys where they leak today (``~/.netrc`` entries for the W&B hosts,
``export NAME=...`` of a secret in shell rc files, the Hugging Face token file, a W&B settings file with an api_key,
git's ``credential.helper=store`` and its ``~/.git-credentials``),
variables in the environment that shadow stored values, and other login sessions of the same Unix account.

Nothing here ever prints a value: findings name files, lines and variables only.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import pwd
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from credstore import catalog, config, fsutil, sources
from credstore.app.context import Context
from credstore.crypto.protection import protection
from credstore.errors import CredstoreError, LockedError, NotFoundError, PermissionProblem


@dataclass(frozen=True)
class Finding:
    severity: str
    topic: str
    message: str
    fix: str = ""

    @property
    def is_problem(self) -> bool:
        return self.severity in ("warning", "error")

    def render(self) -> str:
        line = f"[{self.severity}] {self.topic}: {self.message}"
        return line + (f"\n    fix: {self.fix}" if self.fix else "")


def _flag(profile: str) -> str:
    return config.profile_flag(profile)


def _from_permission(exc: CredstoreError, topic: str = "permissions") -> Finding:
    message, _, fix = str(exc).partition("; fix it with: ")
    return Finding("error", topic, message, fix or "make the path private to you (owner you, mode 700 / 600)")


# -- the store -----------------------------------------------------------------------------------------------------


def check_store(environ: Mapping[str, str], selected: str) -> tuple[list[Finding], list[str]]:
    """Permissions and protection level of every profile; returns (findings, protection kinds in use)."""
    findings: list[Finding] = []
    kinds: list[str] = []
    home = config.store_home(environ)
    profiles_dir = home / "profiles"
    if not profiles_dir.exists():
        findings.append(
            Finding(
                "info", "store", f"no profile yet under {home}", "create one: credstore init --protection passphrase"
            )
        )
        return findings, kinds
    try:
        fsutil.check_dir(profiles_dir)
    except (PermissionProblem, NotFoundError) as exc:
        findings.append(_from_permission(exc))
        return findings, kinds  # do not read anything below an unsafe directory
    state = config.state_dir(environ)
    if state.exists():
        try:
            fsutil.check_dir(state)
        except (PermissionProblem, NotFoundError) as exc:
            findings.append(_from_permission(exc))
    stores = sorted(profiles_dir.glob("*.store"))
    if not stores:
        findings.append(Finding("info", "store", f"no profile yet in {profiles_dir}", "create one: credstore init"))
    for path in stores:
        profile = path.stem
        key_path = path.with_suffix(".key")
        problems = False
        for file, secret in ((path, False), (key_path, True)):
            if file == key_path and not file.exists() and not file.is_symlink():
                continue
            try:
                fsutil.check_file(file, secret_file=secret)
            except (PermissionProblem, NotFoundError) as exc:
                findings.append(_from_permission(exc))
                problems = True
            except CredstoreError as exc:
                findings.append(Finding("error", "permissions", str(exc)))
                problems = True
        if problems:
            continue
        try:
            store = config.open_local(profile, environ=environ, use_session_cache=False)
            kind = store.protection_kind()
        except CredstoreError as exc:
            findings.append(Finding("error", "store", f"profile '{profile}': {exc}"))
            continue
        kinds.append(kind)
        findings.extend(_protection_finding(profile, kind, store))
    if selected not in {p.stem for p in stores} and stores:
        findings.append(Finding("info", "store", f"the selected profile '{selected}' does not exist"))
    return findings, kinds


def _protection_finding(profile: str, kind: str, store) -> list[Finding]:
    header = store.read_header()[0]
    levels = [protection(slot.kind, for_reading=True) for slot in header.slots]
    if len(levels) == 1 and levels[0].only_slot_warning:
        return [
            Finding(
                "warning",
                "protection",
                f"profile '{profile}': {levels[0].only_slot_warning}",
                f"credstore {_flag(profile)}protect add passphrase   (a recovery slot)",
            ),
            *_protection_finding_for(profile, kind, store, levels[0]),
        ]
    weakest = min(levels, key=lambda level: level.strength)
    return _protection_finding_for(profile, kind, store, weakest)


def _protection_finding_for(profile: str, kind: str, store, level) -> list[Finding]:
    if level.strength <= 1:
        return [
            Finding(
                "warning",
                "protection",
                f"profile '{profile}' uses {kind} protection: anyone who can read your home directory (a backup, "
                "an NFS snapshot, another person on this account) can decrypt it",
                f"credstore {_flag(profile)}protect passphrase   (or: protect keyring, on a desktop)",
            )
        ]
    ok, reason = level.available()
    if not ok:
        return [
            Finding(
                "error",
                "protection",
                f"profile '{profile}' is protected by {kind}, which is not reachable: {reason}",
                "log in to the desktop session (or start its Secret Service) that holds the key",
            )
        ]
    state = ""
    if level.needs_unlock:
        from credstore.crypto.session_cache import SessionDekCache

        header = store.read_header()[0]
        unlocked = SessionDekCache().get(header.store_id) is not None
        state = "; unlocked in this login session" if unlocked else "; locked"
    detail = f" ({reason})" if reason else ""
    return [Finding("ok", "protection", f"profile '{profile}' is protected by {kind}{detail}{state}")]


# -- keyrings ------------------------------------------------------------------------------------------------------


def check_keyrings(kinds: list[str]) -> list[Finding]:
    from credstore.crypto import oskeyring
    from credstore.crypto.session_cache import state

    findings = []
    kind, reason = state()
    if kind == "unavailable":
        severity = "warning" if "passphrase" in kinds else "info"
        findings.append(
            Finding(
                severity,
                "kernel keyring",
                f"unavailable: {reason}; `credstore unlock` cannot cache, passphrase profiles ask every time",
                "run outside the container sandbox, or allow keyctl/add_key in its seccomp profile",
            )
        )
    elif kind == "user-session":
        findings.append(
            Finding(
                "info",
                "kernel keyring",
                "usable, but this shell has no session keyring of its own; `credstore unlock` will give it one",
            )
        )
    else:
        findings.append(Finding("ok", "kernel keyring", "usable; this login has its own session keyring"))
    from credstore.crypto.session_cache import session_keyring_shared_with_other_uid

    shared = session_keyring_shared_with_other_uid()
    if shared:
        findings.append(
            Finding(
                "info",
                "kernel keyring",
                f"{shared}; an unlock cached there is useless to them (the other half is a file private to you)",
                "start a login of your own for each person (ssh, or `keyctl session -` before `credstore unlock`)",
            )
        )
    ok, reason = oskeyring.status()
    findings.append(Finding("ok" if ok else "info", "OS keyring", reason if ok else f"not available: {reason}"))
    return findings


# -- plaintext keys --------------------------------------------------------------------------------------------------


def check_netrc(home: Path, environ: Mapping[str, str]) -> list[Finding]:
    path = sources.netrc_path(environ)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    hosts = set(catalog.SERVICES["wandb"].netrc_hosts)
    base_url = environ.get("WANDB_BASE_URL", "")
    match = re.match(r"https?://([^/\s]+)", base_url)
    if match:
        hosts.add(match.group(1))
    findings = []
    for machine, line, has_password in sources.netrc_machines(text):
        if machine in hosts and has_password:
            findings.append(
                Finding(
                    "warning",
                    "plaintext key",
                    f"{path} line {line} holds a W&B API key in plaintext (machine {machine}); on a shared account "
                    "everyone's runs use it",
                    "credstore import netrc --remove-source   (moves it into the store and deletes only that entry; "
                    "never run `wandb login` on a shared account)",
                )
            )
    if findings:
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                findings.append(
                    Finding("error", "permissions", f"{path} is readable by other users", f"chmod 600 {path}")
                )
    return findings


def check_rc_files(home: Path) -> list[Finding]:
    findings = []
    for path, number, name, literal in sources.startup_assignments(home):
        if not literal or not catalog.looks_secret(name):
            continue
        findings.append(
            Finding(
                "warning",
                "plaintext key",
                f"{path} line {number} sets {name} to a key in plaintext (copied into backups and dotfile repos)",
                f"credstore import env {name}   (in a shell where it is set), then delete line {number} of {path}",
            )
        )
    return findings


def check_other_files(home: Path, environ: Mapping[str, str]) -> list[Finding]:
    findings = []
    token = sources.hf_token_path({**environ, "HOME": str(home)})
    for path in (token, token.with_name("stored_tokens")):
        try:
            has_data = path.is_file() and path.stat().st_size > 0
        except OSError:
            has_data = False
        if has_data:
            findings.append(
                Finding(
                    "warning",
                    "plaintext key",
                    f"{path} holds a Hugging Face token in plaintext (huggingface_hub reads it when HF_TOKEN is unset)",
                    "credstore import hf --remove-source"
                    if path == token
                    else f"move each named token in: credstore set NAME, then remove {path}",
                )
            )
    wandb_settings = (
        (Path(environ["XDG_CONFIG_HOME"]).expanduser() if environ.get("XDG_CONFIG_HOME") else home / ".config")
        / "wandb"
        / "settings"
    )
    with contextlib.suppress(OSError):
        for number, line in enumerate(wandb_settings.read_text(errors="replace").splitlines(), 1):
            if re.match(r"\s*api_key\s*[=:]\s*\S", line):
                findings.append(
                    Finding(
                        "warning",
                        "plaintext key",
                        f"{wandb_settings} line {number} holds a W&B api_key in plaintext",
                        f"store it with `credstore set WANDB_API_KEY`, then delete line {number} of {wandb_settings}",
                    )
                )
    return findings


def _git_helpers(home: Path, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(config key, value) of every ``credential.helper`` / ``credential.<url>.helper`` git sees from the home
    directory (system, global and XDG config); empty when git is not installed."""
    import shutil

    git = shutil.which("git", path=environ.get("PATH") or os.defpath)
    if git is None:
        return []
    try:
        out = subprocess.run(
            [git, "config", "--includes", "--null", "--get-regexp", r"^credential\..*helper$"],
            capture_output=True,
            timeout=5,
            stdin=subprocess.DEVNULL,
            cwd=home if home.is_dir() else "/",
            env={**environ, "GIT_TERMINAL_PROMPT": "0"},
        ).stdout.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return []
    helpers = []
    for record in out.split("\0"):
        key, _, value = record.partition("\n")
        if key:
            helpers.append((key, value.strip()))
    return helpers


def check_git(home: Path, environ: Mapping[str, str]) -> list[Finding]:
    """git's ``store`` credential helper and the plaintext files it writes (``~/.git-credentials``)."""
    import shlex

    findings = []
    default_files = sources.git_credentials_paths({**environ, "HOME": str(home)})
    files = list(default_files)
    for key, value in _git_helpers(home, environ):
        try:
            words = shlex.split(value)
        except ValueError:
            words = value.split()
        program = words[0] if words else ""
        if program != "store" and program.rpartition("/")[2] != "git-credential-store":
            continue
        for index, word in enumerate(words):
            if word.startswith("--file="):
                files.append(Path(word.partition("=")[2]).expanduser())
            elif word == "--file" and index + 1 < len(words):
                files.append(Path(words[index + 1]).expanduser())
        findings.append(
            Finding(
                "warning",
                "plaintext key",
                f"git is configured with {key}={value}: every password git is given is written to a plaintext file",
                "credstore import git-credentials --remove-source   (then: git config --global --replace-all "
                "credential.helper credstore '^store')",
            )
        )
    for path in dict.fromkeys(files):
        try:
            has_data = path.is_file() and path.stat().st_size > 0
        except OSError:
            has_data = False
        if has_data:
            findings.append(
                Finding(
                    "warning",
                    "plaintext key",
                    f"{path} holds git passwords and tokens in plaintext (git's credential.helper=store)",
                    "credstore import git-credentials --remove-source"
                    + ("" if path in default_files else f" --file {path}"),
                )
            )
    return findings


# -- the environment -------------------------------------------------------------------------------------------------


def check_environment(environ: Mapping[str, str], profile: str) -> list[Finding]:
    from credstore.resolver.exported import exported_unchanged

    try:
        store = config.open_backend(profile, environ=environ)
        if not store.exists():
            return []
        snapshot = store.read()
    except LockedError:
        return [
            Finding(
                "info",
                "environment",
                f"profile '{profile}' is locked, so the environment was not compared with its values",
                f"credstore {_flag(profile)}unlock, then run doctor again",
            )
        ]
    except CredstoreError:
        return []  # reported by check_store
    key = bytes.fromhex(snapshot.settings.get("fingerprint_key", ""))
    ours = exported_unchanged(key, environ) if key else {}
    findings = []
    for name, entry in sorted(snapshot.entries.items()):
        if name not in environ or name in ours:
            continue
        if hmac.compare_digest(environ[name].encode(), entry.value.encode()):
            continue
        findings.append(
            Finding(
                "warning",
                "environment",
                f"{name} is set in this environment to a different value than profile '{profile}' stores, and "
                "the environment wins (it was not exported by credstore)",
                f"unset {name}, and remove whatever sets it (grep -n {name} ~/.bashrc ~/.profile ~/.zshrc)",
            )
        )
    return findings


# -- other sessions of this account ----------------------------------------------------------------------------------


def _proc_sessions(uid: int) -> dict[int, set[int]]:
    """{session id: set of tty numbers} for this uid's processes that have a controlling terminal."""
    sessions: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) < 5:
            continue
        session, tty_nr = int(fields[3]), int(fields[4])
        if session > 0 and tty_nr != 0:
            sessions.setdefault(session, set()).add(tty_nr)
    return sessions


def _who(user: str) -> list[str]:
    try:
        out = subprocess.run(["who"], capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.splitlines() if line.split()[:1] == [user]]


def check_sessions() -> list[Finding]:
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    mine = os.getsid(0)
    others = {sid for sid in _proc_sessions(uid) if sid != mine}
    my_tty = ""
    with contextlib.suppress(OSError):
        my_tty = os.ttyname(0).removeprefix("/dev/")
    logins = [line for line in _who(user) if line.split()[1:2] != [my_tty]]
    if not others and not logins:
        return [Finding("ok", "sessions", f"no other terminal session of user {user} is running")]
    parts = []
    if others:
        parts.append(f"{len(others)} other terminal session(s)")
    if logins:
        parts.append(f"{len(logins)} other login(s) in utmp")
    return [
        Finding(
            "info",
            "sessions",
            f"user {user} has {' and '.join(parts)}: if other people share this account, every key exported into "
            "an environment is readable by their processes",
            "give each person a passphrase profile (`credstore --profile NAME init --protection passphrase`, then "
            "`credstore --profile NAME unlock`), prefer `credstore exec -- CMD` over exporting, and ask for "
            "separate Unix accounts",
        )
    ]


# -- all of it -------------------------------------------------------------------------------------------------------


def check_hooks(environ: Mapping[str, str], command: Sequence[str], probe: str) -> list[Finding]:
    """Each installed hook file is what ``credstore hook install`` writes now (``command``, ``probe``: this
    install's, from the CLI); one written by another install (since removed) or an older credstore may load
    nothing into new shells."""
    from credstore import shells
    from credstore.app import hook as hook_app

    findings: list[Finding] = []
    # The same interpreter under its other names (python, python3, python3.11 in one bin directory, or its real
    # path): a hook written by `python3 -m credstore` is this install's too.
    program = os.path.realpath(command[0])
    folder = os.path.dirname(command[0])
    names = [
        command[0],
        program,
        *(os.path.join(folder, n) for n in ("python", "python3", f"python3.{sys.version_info[1]}")),
    ]
    interpreters = [p for p in dict.fromkeys(names) if os.path.realpath(p) == program]
    for shell in shells.HOOK_SHELLS:
        path = hook_app.hook_file(shell, environ)
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError:
            continue
        if all(text != shells.hook_text(shell, [p, *command[1:]], probe) for p in interpreters):
            findings.append(
                Finding(
                    "warning",
                    "hook",
                    f"{path} was written by another install of credstore or an older version; new {shell} shells "
                    "may load nothing",
                    fix=f"credstore hook install --shell {shell}",
                )
            )
    return findings


def run(ctx: Context, hook: tuple[Sequence[str], str] | None = None) -> list[Finding]:
    """Every check; ``hook``: this install's hook command and probe (``cli/fast.hook_command``), to check the
    installed hook files against."""
    env = dict(ctx.environ)
    selected = ctx.profile
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    findings, kinds = check_store(env, selected)
    findings += check_keyrings(kinds)
    findings += check_netrc(home, env)
    findings += check_rc_files(home)
    findings += check_other_files(home, env)
    findings += check_git(home, env)
    findings += check_environment(env, selected)
    findings += check_sessions()
    if hook is not None:
        findings += check_hooks(env, *hook)
    return findings
