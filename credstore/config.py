"""Where things live, which profile is meant, and which backend holds it.

This is the only module that opens backends: the person's profile (``open_backend``), its local encrypted store
(``open_local``) and service accounts (``open_service``). Everything above it is handed backends already open.

Routing without decrypting: the non-secret facts about a profile (which backend; for OpenBao the URL, mount, path,
CA file, timeouts, cache age) live in a plain 0600 *profile file* beside the store, ``profiles/<name>.profile``, so
choosing the backend reads that file and nothing else. The encrypted store keeps an authenticated copy of the same
text (setting ``profile``): a profile file changed outside credstore is refused when the store is read, so nobody
who can only write files can send the OpenBao token elsewhere. A store made before profile files existed has none:
it is routed by its encrypted settings once, and migrated (file written, copy recorded) on that first open
(docs/FORMAT.md, "Profile file").
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from credstore import fsutil
from credstore.errors import CorruptStoreError, NotFoundError, PermissionProblem, StoreIOError, UsageError
from credstore.errors import profile_flag as errors_profile_flag
from credstore.store.base import Backend
from credstore.store.local import BINDING_SETTING, LocalStore
from credstore.store.payload import check_store_name

DEFAULT_PROFILE = "default"
BACKEND = "backend"
LOCAL = "local"
VAULT = "vault"
#: Settings of stores made before profile files existed that are routing facts (moved into the profile file).
_LEGACY_ROUTING_PREFIX = "vault."
_LEGACY_SECRET_SETTINGS = frozenset(
    {
        "vault.token",
        "vault.token_source",
        "vault.token_expires",
        "vault.token_ttl",
        "vault.token_renewable",
        "vault.cache",
    }
)


# -- paths -----------------------------------------------------------------------------------------------------------


def store_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``CREDSTORE_HOME``, else ``platformdirs.user_data_dir("credstore")``."""
    override = environ.get("CREDSTORE_HOME")
    if override:
        return Path(override).expanduser().absolute()
    if sys.platform == "linux":
        # What platformdirs.user_data_dir returns on Linux, without its import on the hot path (tested equal).
        base = environ.get("XDG_DATA_HOME", "").strip() or os.path.expanduser("~/.local/share")
        return Path(base) / "credstore"
    import platformdirs

    return Path(platformdirs.user_data_dir("credstore", appauthor=False))


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where credstore remembers things about stores outside them (highest generation seen)."""
    override = environ.get("CREDSTORE_STATE_DIR")
    if override:
        return Path(override).expanduser().absolute()
    if environ.get("CREDSTORE_HOME"):
        return Path(environ["CREDSTORE_HOME"]).expanduser().absolute() / "state"
    if sys.platform == "linux":
        base = environ.get("XDG_STATE_HOME", "").strip() or os.path.expanduser("~/.local/state")
        return Path(base) / "credstore"
    import platformdirs

    return Path(platformdirs.user_state_dir("credstore", appauthor=False))


def shared_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The shared directory of this machine's service accounts: ``CREDSTORE_SHARED_DIR``, else /etc/credstore."""
    from credstore.store.shared import DEFAULT_SHARED_DIR

    override = environ.get("CREDSTORE_SHARED_DIR")
    return Path(override).expanduser().absolute() if override else Path(DEFAULT_SHARED_DIR)


def audit_log(environ: Mapping[str, str] = os.environ) -> Path:
    return store_home(environ) / "audit.log"


def shared_audit_log(environ: Mapping[str, str] = os.environ) -> Path:
    return shared_dir(environ) / "audit.log"


def lock_timeout(environ: Mapping[str, str] = os.environ) -> float:
    return float(environ.get("CREDSTORE_LOCK_TIMEOUT", "10"))


def profile_name(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """``--profile`` (``explicit``), else ``CREDSTORE_PROFILE``, else the profile whose ssh-agent slot holds a key of
    the person's agent (see :func:`choose_profile`), else ``default``.

    Only ``None`` means "not given": an explicitly empty profile (``--profile ""``, ``profile=""``) is a usage error,
    never a silent fall back to another profile. An empty ``CREDSTORE_PROFILE`` counts as unset, since
    ``CREDSTORE_PROFILE=`` (or ``export CREDSTORE_PROFILE=``) is how a shell clears a variable for one command.
    """
    return choose_profile(explicit, environ)[0]


#: Automatic choices made in this process: (home, agent socket, $SSH_USER_AUTH) -> (profile, why, key).
_AUTO_CHOICES: dict[tuple[str, str, str], tuple[str, str, str | None]] = {}


def choose_profile(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> tuple[str, str, str | None]:
    """(profile, why it was chosen, the SSH key fingerprint that chose it or None).

    Without ``--profile`` and ``$CREDSTORE_PROFILE``: when some profile of this home has an ssh-agent key slot (the
    index ``profiles/ssh-agent.index``, rebuilt by credstore whenever slots change, says so without opening any
    store), the agent's keys are listed (no signature, no prompt) and the profile whose slot holds one of them is
    chosen; ``$SSH_USER_AUTH`` (sshd's ``ExposeAuthInfo``: the key the person logged in with) breaks a tie; more
    than one match is an error naming them; no match is ``default``. A convenience, not authentication: the chosen
    store still has to be opened by its own key slots.
    """
    if explicit is not None:
        if explicit == "":
            raise UsageError(
                "--profile is empty: name a profile, or leave the option out for $CREDSTORE_PROFILE / default"
            )
        return check_store_name(explicit), "--profile was given", None
    if environ.get("CREDSTORE_PROFILE"):
        return check_store_name(environ["CREDSTORE_PROFILE"]), "$CREDSTORE_PROFILE is set", None
    key = (str(store_home(environ)), environ.get("SSH_AUTH_SOCK", ""), environ.get("SSH_USER_AUTH", ""))
    if key not in _AUTO_CHOICES:
        index = _read_ssh_index(environ)
        if not index:
            why = "no --profile, no $CREDSTORE_PROFILE, and no profile has an ssh-agent key slot"
            _AUTO_CHOICES[key] = (DEFAULT_PROFILE, why, None)
        else:
            _AUTO_CHOICES[key] = _choose_by_agent(index, environ)
    return _AUTO_CHOICES[key]


def _choose_by_agent(index: dict[str, list[str]], environ: Mapping[str, str]) -> tuple[str, str, str | None]:
    from credstore.crypto.ssh_agent import SSHAgent, SSHAgentError

    sock = environ.get("SSH_AUTH_SOCK", "")
    if not sock:
        return DEFAULT_PROFILE, "no ssh agent ($SSH_AUTH_SOCK is not set), so no profile was chosen by key", None
    try:
        with SSHAgent.connect(sock) as agent:
            fingerprints = [key.fingerprint for key in agent.list_identities()]
    except SSHAgentError as exc:
        return DEFAULT_PROFILE, f"the ssh agent could not be asked ({exc})", None
    matches: dict[str, str] = {}  # profile -> fingerprint of the agent key its slot holds
    for fp in fingerprints:
        for name in index.get(fp, []):
            matches.setdefault(name, fp)
    if not matches:
        return DEFAULT_PROFILE, "no key in the ssh agent belongs to a profile's ssh-agent slot", None
    if len(matches) > 1:
        logged_in = _user_auth_fingerprints(environ)
        narrowed = {name: fp for name, fp in matches.items() if fp in logged_in}
        if len(narrowed) == 1:
            ((name, fp),) = narrowed.items()
            return name, f"the ssh key {fp} you logged in with ($SSH_USER_AUTH) opens its ssh-agent slot", fp
        listing = ", ".join(f"{name} ({fp})" for name, fp in sorted(matches.items()))
        raise UsageError(
            f"the ssh agent holds keys of several profiles: {listing}; choose one with --profile NAME or "
            "CREDSTORE_PROFILE"
        )
    ((name, fp),) = matches.items()
    return name, f"the ssh agent holds key {fp}, which opens its ssh-agent slot", fp


def _user_auth_fingerprints(environ: Mapping[str, str]) -> set[str]:
    """Fingerprints of the public keys in sshd's ``ExposeAuthInfo`` file (``publickey TYPE BASE64`` lines)."""
    import base64
    import binascii

    from credstore.crypto.ssh_agent import fingerprint

    path = environ.get("SSH_USER_AUTH")
    if not path:
        return set()
    try:
        with open(path, "rb") as handle:
            text = handle.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return set()
    found: set[str] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "publickey":
            try:
                found.add(fingerprint(base64.b64decode(fields[2], validate=True)))
            except (binascii.Error, ValueError):
                continue
    return found


SSH_INDEX = "ssh-agent.index"


def ssh_index_path(environ: Mapping[str, str] = os.environ) -> Path:
    return store_home(environ) / "profiles" / SSH_INDEX


def _read_ssh_index(environ: Mapping[str, str]) -> dict[str, list[str]]:
    """fingerprint -> profiles, from the index; empty when there is none (one failed open on the hot path)."""
    try:
        fd = os.open(ssh_index_path(environ), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        with open(fd, "rb") as handle:
            text = handle.read(1 << 20).decode("ascii", "replace")
    except OSError:  # a directory, an I/O error: no index (the choice is a convenience)
        return {}
    index: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2:
            index.setdefault(fields[0], []).append(fields[1])
    return index


def update_ssh_index(environ: Mapping[str, str] = os.environ) -> None:
    """Rebuild ``profiles/ssh-agent.index`` (``FINGERPRINT PROFILE`` lines) from the headers of this home's stores
    (nothing is decrypted); removed when no store has an ssh-agent slot. Best effort."""
    from credstore.crypto import envelope
    from credstore.crypto.ssh_agent import fingerprint
    from credstore.crypto.sshagent_level import public_key_of

    directory = store_home(environ) / "profiles"
    lines: list[str] = []
    with contextlib.suppress(OSError):
        for path in sorted(directory.glob("*.store")):
            try:
                header, _, _ = envelope.parse(fsutil.read_private(path))
            except Exception:  # noqa: S112 - an unreadable store is simply not indexed
                continue
            for slot in header.slots:
                if slot.kind == "ssh-agent":
                    with contextlib.suppress(Exception):
                        lines.append(f"{fingerprint(public_key_of(slot.params))} {path.stem}\n")
    target = directory / SSH_INDEX
    with contextlib.suppress(StoreIOError, PermissionProblem, OSError):
        if lines:
            fsutil.atomic_replace(target, "".join(sorted(set(lines))).encode("ascii"))
        elif target.exists():
            target.unlink()


def profile_flag(profile: str) -> str:
    """``--profile NAME `` for hints that name a command, empty for the default profile."""
    return errors_profile_flag(profile)


# -- the profile file ------------------------------------------------------------------------------------------------


def profile_file(profile: str, environ: Mapping[str, str] = os.environ) -> Path:
    return store_home(environ) / "profiles" / f"{profile}.profile"


def encode_facts(facts: Mapping[str, str]) -> str:
    """The one text form of a profile's routing facts (the profile file, and its copy inside the store)."""
    return json.dumps(dict(sorted(facts.items())), sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"


def decode_facts(text: str, where: object) -> dict[str, str]:
    try:
        data: Any = json.loads(text)
        if not isinstance(data, dict) or data.get(BACKEND) not in (LOCAL, VAULT):
            raise ValueError
        facts = {str(k): str(v) for k, v in data.items()}
    except ValueError:
        raise CorruptStoreError(
            f"{where} is not a credstore profile file; remove it to rebuild it from the store"
        ) from None
    return facts


def _read_profile_file(path: Path) -> str | None:
    try:
        data = fsutil.read_private(path)
    except NotFoundError:
        return None
    except StoreIOError:
        if not path.parent.is_dir():  # no profiles directory (e.g. the home is a file): the store says the rest
            return None
        raise
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptStoreError(
            f"{path} is not a credstore profile file; remove it to rebuild it from the store"
        ) from None


def _write_profile_file(path: Path, text: str) -> None:
    fsutil.ensure_private_dir(path.parent)
    fsutil.atomic_replace(path, text.encode("ascii"))


def routing(profile: str | None = None, environ: Mapping[str, str] = os.environ) -> dict[str, str] | None:
    """The profile's routing facts from its plain profile file, or None when it has none (no profile, or a store
    made before profile files: then only its encrypted settings say)."""
    name = profile_name(profile, environ)
    path = profile_file(name, environ)
    text = _read_profile_file(path)
    return None if text is None else decode_facts(text, path)


# -- opening ---------------------------------------------------------------------------------------------------------


def open_local(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
    use_session_cache: bool = True,
    options: Mapping[str, str] | None = None,
) -> LocalStore:
    """The profile's local encrypted store (for a vault profile: the one holding its token and cache). Unless
    ``use_session_cache`` is false, an unlocked data key is looked up in this login's kernel session keyring, for
    levels whose ``caches_data_key`` says so (a new or re-keyed store's key is put there either way). ``options``:
    level options for opening key slots (``ssh-signature``: recovery without the agent)."""
    from credstore.crypto.session_cache import SessionDekCache

    dek_cache = SessionDekCache()
    name = profile_name(profile, environ)
    path = profile_file(name, environ)
    return LocalStore(
        store_home(environ),
        name,
        state_dir=state_dir(environ),
        interactive=interactive,
        ask_passphrase=ask_passphrase,
        dek_cache=dek_cache,
        lock_timeout=lock_timeout(environ),
        binding=_read_profile_file(path),
        unbound=_legacy_binding,
        read_cache=use_session_cache,
        environ=environ,
        options=options,
    )


def open_backend(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
) -> Backend:
    """The backend that holds the profile's entries: the local store itself, or, for a profile connected with
    ``credstore init --backend vault``, its OpenBao / Vault KV v2 path. Chosen from the plain profile file: nothing
    is decrypted here (except once, to migrate a store made before profile files). The remote module (and ``hvac``)
    is imported for a vault profile only."""
    local = open_local(profile, environ=environ, interactive=interactive, ask_passphrase=ask_passphrase)
    if local.binding is None:
        if not local.exists():
            return local
        facts = _migrate(local, environ)
    else:
        facts = decode_facts(local.binding, profile_file(local.profile, environ))
    return _backend_for(local, facts, environ)


def _backend_for(local: LocalStore, facts: Mapping[str, str], environ: Mapping[str, str]) -> Backend:
    if facts.get(BACKEND) != VAULT:
        return local
    from credstore.store.vault_profile import VaultProfile

    return VaultProfile(local, facts, environ=environ)


def legacy_facts(settings: Mapping[str, str]) -> dict[str, str]:
    """The routing facts of a store written before profile files, from its encrypted settings."""
    if settings.get(BINDING_SETTING):
        return decode_facts(settings[BINDING_SETTING], "the profile copy inside the store")
    if settings.get(BACKEND) != VAULT:
        return {BACKEND: LOCAL}
    facts = {k: v for k, v in settings.items() if k.startswith(_LEGACY_ROUTING_PREFIX)}
    facts = {k: v for k, v in facts.items() if k not in _LEGACY_SECRET_SETTINGS}
    facts[BACKEND] = VAULT
    return facts


def _legacy_binding(settings: dict[str, str]) -> str:
    return encode_facts(legacy_facts(settings))


def _migrate(local: LocalStore, environ: Mapping[str, str]) -> dict[str, str]:
    """Route a store that has no profile file by its encrypted settings and write the file (best effort: a
    read-only home is routed the same way next time). The store itself records its copy at its next write."""
    facts = legacy_facts(local.read().settings)
    text = encode_facts(facts)
    local.binding = text
    with contextlib.suppress(StoreIOError, PermissionProblem):
        _write_profile_file(profile_file(local.profile, environ), text)
    return facts


def create_local(
    local: LocalStore,
    kind: str,
    facts: Mapping[str, str] | None = None,
    environ: Mapping[str, str] = os.environ,
    options: Mapping[str, str] | None = None,
) -> None:
    """Create the profile's encrypted store at level ``kind`` with its profile file (default: the local backend)."""
    text = encode_facts(facts or {BACKEND: LOCAL})
    local.binding = text
    local.create(kind, options=options)
    _write_profile_file(profile_file(local.profile, environ), text)
    update_ssh_index(environ)


def set_routing(local: LocalStore, facts: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> None:
    """Replace the profile's routing facts: the copy inside the store first, then the plain file."""
    text = encode_facts(facts)
    local.rebind(text)
    _write_profile_file(profile_file(local.profile, environ), text)


def open_service(
    name: str,
    *,
    profile: str | None = None,
    opened: Backend | None = None,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
) -> Backend:
    """Service account NAME as the person's profile reaches it: beside a remote profile on the same engine (access
    by the engine's policies, with the profile's token), else the shared directory of this machine (access by Unix
    group). ``opened``: the profile's backend when the caller has it open already. A local profile's store is never
    opened (nor its passphrase asked) to reach a shared service account."""
    from credstore.store.shared import check_service_name

    check_service_name(name)
    if opened is None:
        facts = routing(profile, environ)
        if facts is None:
            # No profile file: no profile (shared service), or a store made before profile files (ask the store).
            local = open_local(profile, environ=environ)
            if local.exists():
                opened = open_backend(profile, environ=environ, interactive=interactive, ask_passphrase=ask_passphrase)
        elif facts.get(BACKEND) == VAULT:
            opened = open_backend(profile, environ=environ, interactive=interactive, ask_passphrase=ask_passphrase)
    beside = opened.service_account(name) if opened is not None else None
    if beside is not None:
        return beside
    return open_shared_service(name, environ)


def open_shared_service(name: str, environ: Mapping[str, str] = os.environ):  # -> ServiceStore
    """Service account NAME in this machine's shared directory (access by Unix group)."""
    from credstore.store.shared import ServiceStore

    return ServiceStore(shared_root(environ), name, state_dir=state_dir(environ), lock_timeout=lock_timeout(environ))


def shared_root(environ: Mapping[str, str] = os.environ):  # -> SharedRoot
    from credstore.store.shared import SharedRoot

    return SharedRoot(shared_dir(environ), explicit=bool(environ.get("CREDSTORE_SHARED_DIR")))
