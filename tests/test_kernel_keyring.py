"""Tests for credstore.crypto.kernel_keyring against the real kernel keyring (no mocks).

Every scenario that touches a keyring runs in a child process that first joins a keyring of its own choosing (a fresh
anonymous session keyring, or the user-session keyring to model cron/containers), so the pytest process's own session
keyring is never changed and no test depends on how the developer logged in. Children use the small helper module
``kkt`` written to a temporary directory (see ``HELPER``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

from credstore.crypto import kernel_keyring as kk
from tests.fixtures_services import install_package_copy

_OK, _REASON = kk.available()
pytestmark = pytest.mark.skipif(not _OK, reason=f"kernel keyring unusable here: {_REASON}")

HELPER = textwrap.dedent(
    '''
    """Helpers for child processes of test_kernel_keyring."""
    import errno
    import json
    import os
    import subprocess
    import sys

    from credstore.crypto import kernel_keyring as kk


    def join(name=None):
        """Join a session keyring: a fresh anonymous one (name None) or the named one."""
        return kk._keyctl(kk.KEYCTL_JOIN_SESSION_KEYRING, None if name is None else name.encode())


    def join_user_session():
        """Make the user-session keyring our session keyring: what cron / containers / setsid without PAM get."""
        return join(f"_uid_ses.{os.getuid()}")


    def out(**kw):
        print(json.dumps(kw), flush=True)


    def child(code, *, new_session=False, user=None):
        """Run code in a child python (optionally after joining a fresh session keyring); its last JSON line."""
        pre = "from kkt import *\\n" + ("join()\\n" if new_session else "")
        kw = {} if user is None else {"user": user, "group": user, "extra_groups": []}
        py = sys.executable if user is None else os.environ["OTHER_USER_PY"]
        r = subprocess.run([py, "-c", pre + code], capture_output=True, text=True, **kw)
        if r.returncode != 0:
            raise RuntimeError(f"child failed ({r.returncode}): {r.stderr}")
        return json.loads(r.stdout.strip().splitlines()[-1])


    def members(spec):
        return sorted(kk._keyring_members(kk._keyring_id(spec)))


    def key_id(name):
        return kk._find_direct(kk._session_id(), name.encode())


    def raw_read(serial):
        """Read a key by serial number; the payload as hex, or the errno name."""
        try:
            return kk._read_buffer(kk.KEYCTL_READ, serial).hex()
        except OSError as e:
            return errno.errorcode[e.errno]


    def describe(serial):
        try:
            return list(kk._describe(serial))
        except OSError as e:
            return errno.errorcode[e.errno]


    def proc_keys_has(serial):
        with open("/proc/keys") as f:
            return any(int(line.split()[0], 16) == serial for line in f)
    '''
)


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    d = tempfile.mkdtemp(prefix="kkt-")
    os.chmod(d, 0o755)  # readable by the other-user test's child
    Path(d, "kkt.py").write_text(HELPER)
    os.chmod(Path(d, "kkt.py"), 0o644)
    # Children (some run as another user, who may not be able to enter the checkout) import a copy of the package.
    install_package_copy(Path(d))
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([d, e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e["PY"] = sys.executable
    e["OTHER_USER_PY"] = other_user_python() or ""
    yield e
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def name() -> str:
    return f"credstore:test-{uuid.uuid4().hex}"


def run(env: dict[str, str], code: str, *, setup: str = "join()", name: str = "", user: int | None = None) -> dict:
    """Run code in a child python after setup (default: join a fresh anonymous session keyring); last JSON line."""
    e = dict(env, NAME=name)
    kw = {} if user is None else {"user": user, "group": user, "extra_groups": []}
    src = "from kkt import *\n" + setup + "\nNAME = os.environ['NAME']\n" + textwrap.dedent(code)
    r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, env=e, **kw)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- input checks (no keyring touched) ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", ".hidden", "a;b", "a b", "x" * 256, "café"])
def test_bad_names_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        kk.store(bad, b"k" * 32, 60)
    with pytest.raises(ValueError):
        kk.load(bad)


@pytest.mark.parametrize(("data", "ttl"), [(b"", 60), (b"x" * 32768, 60), (b"k", 0), (b"k", -5), (b"k", True)])
def test_bad_data_or_ttl_rejected(data: bytes, ttl: int) -> None:
    with pytest.raises(ValueError) as info:
        kk.store("credstore:x", data, ttl)
    assert "k" * 3 not in str(info.value)


# --- machine facts ---------------------------------------------------------------------------------------------------


def test_available_reports_reason() -> None:
    ok, reason = kk.available()
    assert ok is True
    assert "usable" in reason
    assert kk.session_keyring_state() in ("session", "user-session")


def test_state_session_vs_user_session(env: dict[str, str]) -> None:
    assert run(env, "out(state=kk.session_keyring_state())")["state"] == "session"
    r = run(env, "out(state=kk.session_keyring_state(), ok=kk.available())", setup="join_user_session()")
    assert r["state"] == "user-session"
    assert r["ok"][0] is True and "user-session" in r["ok"][1]


# --- store / load / remove ------------------------------------------------------------------------------------------


def test_round_trip_replace_remove(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        a, b = os.urandom(32), os.urandom(48)
        kk.store(NAME, a, 60)
        got_a = kk.load(NAME)
        kk.store(NAME, b, 60)
        got_b = kk.load(NAME)
        same_name = [m for m in members(kk.KEY_SPEC_SESSION_KEYRING) if describe(m)[4] == NAME]
        removed = kk.remove(NAME)
        out(ok_a=got_a == a, ok_b=got_b == b, n_same=len(same_name), removed=removed,
            after=kk.load(NAME), removed_again=kk.remove(NAME), other=kk.load(NAME + "-other"))
        """,
        name=name,
    )
    assert r == {
        "ok_a": True,
        "ok_b": True,
        "n_same": 1,
        "removed": True,
        "after": None,
        "removed_again": False,
        "other": None,
    }


def test_binary_payload_and_large_payload(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        small = bytes(range(256)) * 2          # NULs and high bytes, larger than the first read buffer
        big = os.urandom(kk.USER_KEY_MAX_PAYLOAD)
        kk.store(NAME, small, 60); s = kk.load(NAME)
        kk.store(NAME, big, 60); b = kk.load(NAME)
        kk.remove(NAME)
        out(small=s == small, big=b == big)
        """,
        name=name,
    )
    assert r == {"small": True, "big": True}


def test_ttl_expiry(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        import time
        kk.store(NAME, b"k" * 32, 1)
        serial = key_id(NAME)
        time.sleep(2.5)
        out(serial=serial, after=kk.load(NAME), read=raw_read(serial))
        """,
        name=name,
    )
    assert r["serial"] is not None
    assert r["after"] is None
    assert r["read"] in ("EKEYEXPIRED", "ENOKEY")


def test_timeout_is_set_in_kernel(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        kk.store(NAME, b"k" * 32, 3600)
        serial = key_id(NAME)
        line = [l for l in open("/proc/keys") if int(l.split()[0], 16) == serial][0]
        kk.remove(NAME)
        out(expiry=line.split()[3])
        """,
        name=name,
    )
    # /proc/keys column 4 is "perm" for keys without a timeout, else the time left ("59m", "1h", ...)
    assert r["expiry"] != "perm"
    assert r["expiry"][-1] in "smhdw"


def test_permissions_possessor_only(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        kk.store(NAME, b"k" * 32, 60)
        d = describe(key_id(NAME))
        kk.remove(NAME)
        out(desc=d, euid=os.geteuid())
        """,
        name=name,
    )
    type_, uid, _gid, perm, desc = r["desc"]
    assert (type_, desc, uid) == ("user", name, r["euid"])
    assert perm & kk.KEY_NON_POSSESSOR_MASK == 0  # nothing for user, group, other
    assert perm & kk.KEY_POS_READ and perm & kk.KEY_POS_SEARCH and perm & kk.KEY_POS_VIEW
    assert not perm & kk.KEY_POS_SETATTR
    assert perm == kk.KEY_PERM


def test_key_is_in_session_keyring_not_user_keyrings(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        kk._keyctl(kk.KEYCTL_LINK, kk.KEY_SPEC_USER_KEYRING, kk.KEY_SPEC_SESSION_KEYRING)  # as PAM does
        kk.store(NAME, b"k" * 32, 60)
        serial = key_id(NAME)
        try:
            in_u = kk._keyctl(kk.KEYCTL_SEARCH, kk.KEY_SPEC_USER_KEYRING, b"user", NAME.encode(), 0)
        except OSError as e:
            in_u = e.errno
        out(serial=serial, s=members(kk.KEY_SPEC_SESSION_KEYRING), u=members(kk.KEY_SPEC_USER_KEYRING),
            us=members(kk.KEY_SPEC_USER_SESSION_KEYRING), search_u=in_u, ENOKEY=errno.ENOKEY, rm=kk.remove(NAME))
        """,
        name=name,
    )
    assert r["serial"] in r["s"]
    assert r["serial"] not in r["u"]
    assert r["serial"] not in r["us"]
    assert r["search_u"] == r["ENOKEY"]
    assert r["rm"] is True


def test_key_reachable_only_through_linked_user_keyring_is_ignored(env: dict[str, str], name: str) -> None:
    # pam_keyinit links @u into @s, so KEYCTL_SEARCH from @s also finds keys in @u, which every login of the
    # account shares. load() must not accept such a key (it would be a shared or planted "unlock").
    r = run(
        env,
        """
        kk._keyctl(kk.KEYCTL_LINK, kk.KEY_SPEC_USER_KEYRING, kk.KEY_SPEC_SESSION_KEYRING)
        planted = kk._add_key(b"user", NAME.encode(), b"planted-by-another-login", kk.KEY_SPEC_USER_KEYRING)
        try:
            found = kk._keyctl(kk.KEYCTL_SEARCH, kk.KEY_SPEC_SESSION_KEYRING, b"user", NAME.encode(), 0)
            loaded = kk.load(NAME)
            removed = kk.remove(NAME)
            still_there = raw_read(planted)
        finally:
            kk._keyctl(kk.KEYCTL_INVALIDATE, planted)
        out(found_by_search=found == planted, loaded=loaded, removed=removed, still=still_there)
        """,
        name=name,
    )
    assert r["found_by_search"] is True  # the kernel search does descend into @u ...
    assert r["loaded"] is None  # ... but load() ignores it
    assert r["removed"] is False
    assert r["still"] == b"planted-by-another-login".hex()


# --- who can see the key --------------------------------------------------------------------------------------------


def test_child_of_same_session_sees_it(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        d = os.urandom(32)
        kk.store(NAME, d, 60)
        c = child("out(v=kk.load(os.environ['NAME']).hex(), state=kk.session_keyring_state())")
        kk.remove(NAME)
        out(same=c["v"] == d.hex(), state=c["state"])
        """,
        name=name,
    )
    assert r == {"same": True, "state": "session"}


def test_new_session_does_not_see_it(env: dict[str, str], name: str) -> None:
    # Two login sessions of one Unix account must not share an unlock: a process in another session keyring (same
    # uid, here even root) neither finds the key nor can read it by serial number.
    r = run(
        env,
        """
        kk.store(NAME, b"k" * 32, 60)
        serial = key_id(NAME)
        code = (f"out(v=kk.load(os.environ['NAME']), read=raw_read({serial}), desc=describe({serial}),"
                f" proc=proc_keys_has({serial}), state=kk.session_keyring_state())")
        c = child(code, new_session=True)
        kk.remove(NAME)
        out(c=c)
        """,
        name=name,
    )
    assert r["c"]["state"] == "session"
    assert r["c"]["v"] is None
    assert r["c"]["read"] == "EACCES"
    assert r["c"]["desc"] == "EACCES"
    assert r["c"]["proc"] is False


def other_user_python() -> str | None:
    """A python that uid 65534 can execute (the test interpreter may live under a private home)."""
    for py in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        p = Path(py)
        if p.exists() and all(d.stat().st_mode & 0o001 for d in p.resolve().parents) and p.stat().st_mode & 0o001:
            return py
    return None


needs_other_user = pytest.mark.skipif(
    os.geteuid() != 0 or other_user_python() is None,
    reason="needs root and a python executable by uid 65534 to run a child as another user",
)


@needs_other_user
def test_other_user_cannot_read(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        kk.store(NAME, b"k" * 32, 60)
        serial = key_id(NAME)
        code = (f"out(uid=os.getuid(), v=kk.load(os.environ['NAME']), read=raw_read({serial}),"
                f" proc=proc_keys_has({serial}))")
        c = child(code, new_session=True, user=65534)
        kk.remove(NAME)
        out(c=c)
        """,
        name=name,
    )
    assert r["c"] == {"uid": 65534, "v": None, "read": "EACCES", "proc": False}


@needs_other_user
def test_possession_follows_the_session_keyring_not_the_uid(env: dict[str, str], name: str) -> None:
    # Documents the kernel model: a process started from this session keeps its session keyring even after changing
    # uid (sudo / runuser / su without pam_keyinit), and possessors may read the key. load() itself still refuses
    # a key owned by another uid; a login of another user (own session keyring) cannot read it at all (test above).
    r = run(
        env,
        """
        d = os.urandom(32)
        kk.store(NAME, d, 60)
        serial = key_id(NAME)
        c = child(f"out(uid=os.getuid(), v=kk.load(os.environ['NAME']), raw=raw_read({serial}))", user=65534)
        kk.remove(NAME)
        out(uid=c["uid"], load=c["v"], raw_same=c["raw"] == d.hex())
        """,
        name=name,
    )
    assert r == {"uid": 65534, "load": None, "raw_same": True}


# --- user-session keyring: refuse, then hand a fresh session keyring to the shell ----------------------------------


def test_user_session_keyring_is_refused(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        try:
            kk.store(NAME, b"k" * 32, 60)
            err = None
        except kk.NoSessionKeyring as e:
            err = str(e)
        us = members(kk.KEY_SPEC_USER_SESSION_KEYRING)
        out(err=err, load=kk.load(NAME), rm=kk.remove(NAME), state=kk.session_keyring_state(),
            leaked=[m for m in us if describe(m) != "EACCES" and describe(m)[4] == NAME])
        """,
        setup="join_user_session()",
        name=name,
    )
    assert r["err"] is not None and "ensure_session_keyring" in r["err"]
    assert (r["load"], r["rm"], r["state"], r["leaked"]) == (None, False, "user-session", [])


def test_ensure_session_keyring_is_noop_with_session(env: dict[str, str]) -> None:
    r = run(
        env,
        """
        before = kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING)
        kk.ensure_session_keyring()
        out(same=before == kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))
        """,
    )
    assert r == {"same": True}


LOAD = (
    'from kkt import *; out(step="load", state=kk.session_keyring_state(), '
    'v=(kk.load(os.environ["NAME"]) or b"").hex())'
)
STORE = (
    'from kkt import *; kk.ensure_session_keyring(); d = os.urandom(32); kk.store(os.environ["NAME"], d, 60); '
    'out(step="store", v=d.hex())'
)
STATE = 'from kkt import *; out(step="state", state=kk.session_keyring_state())'
REMOVE = 'from kkt import *; out(step="remove", removed=kk.remove(os.environ["NAME"]))'

SCRIPTS = {
    # credstore unlock as a plain command, later credstore env plain and inside $(...)
    "plain": f"""
        "$PY" -c '{STATE}'
        "$PY" -c '{STORE}'
        "$PY" -c '{LOAD}'
        x=$("$PY" -c '{LOAD}'); echo "$x"
        "$PY" -c '{REMOVE}'
    """,
    # the unlocking process itself runs inside $(...) / eval "$(...)"
    "subst": f"""
        "$PY" -c '{STATE}'
        x=$("$PY" -c '{STORE}'); echo "$x"
        "$PY" -c '{LOAD}'
        x=$("$PY" -c '{LOAD}'); echo "$x"
        "$PY" -c '{REMOVE}'
    """,
}


def run_shell(env: dict[str, str], shell: str, script: str, name: str) -> list[dict]:
    """Run script in a real shell whose session keyring is the user-session keyring (no PAM session)."""
    launcher = f"from kkt import *\njoin_user_session()\nos.execvp({shell!r}, [{shell!r}, '-c', os.environ['SCRIPT']])"
    e = dict(env, NAME=name, SCRIPT=textwrap.dedent(script))
    r = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, env=e)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("variant", ["plain", "subst"])
@pytest.mark.parametrize("shell", ["bash", "dash", "zsh"])
def test_session_to_parent_shell(env: dict[str, str], name: str, shell: str, variant: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    steps = run_shell(env, shell, SCRIPTS[variant], name)
    assert [s["step"] for s in steps] == ["state", "store", "load", "load", "remove"]
    assert steps[0]["state"] == "user-session"  # the shell started with only the user-session keyring
    stored = steps[1]["v"]
    assert steps[2] == {"step": "load", "state": "session", "v": stored}  # a later child of the shell
    assert steps[3] == {"step": "load", "state": "session", "v": stored}  # ... also from $(...)
    assert steps[4] == {"step": "remove", "removed": True}


def test_compound_command_substitution_does_not_reach_the_shell(env: dict[str, str], name: str) -> None:
    # Documented limitation: in $(a; b) the shell forks a subshell that does not exec, so the keyring is handed to
    # that subshell, which exits; the interactive shell keeps only the user-session keyring.
    script = f"""
        x=$("$PY" -c '{STORE}'; true); echo "$x"
        "$PY" -c '{LOAD}'
    """
    steps = run_shell(env, "bash", script, name)
    assert steps[0]["step"] == "store"
    assert steps[1] == {"step": "load", "state": "user-session", "v": ""}


def test_session_to_parent_refused_by_multithreaded_parent(env: dict[str, str], name: str) -> None:
    # The kernel hands a keyring only to a single-threaded parent. ensure_session_keyring() must then fail loudly and
    # leave the child on the user-session keyring, so store() refuses instead of caching into a keyring that dies.
    r = run(
        env,
        """
        import threading
        stop = threading.Event()
        t = threading.Thread(target=stop.wait, daemon=True)
        t.start()
        c = child(
            "try:\\n"
            "    kk.ensure_session_keyring(); err = None\\n"
            "except kk.NoSessionKeyring as e:\\n"
            "    err = str(e)\\n"
            "state = kk.session_keyring_state()\\n"
            "try:\\n"
            "    kk.store(os.environ['NAME'], b'k' * 32, 60); stored = True\\n"
            "except kk.NoSessionKeyring:\\n"
            "    stored = False\\n"
            "out(err=err, state=state, stored=stored)"
        )
        stop.set()
        out(c=c, parent_state=kk.session_keyring_state())
        """,
        setup="join_user_session()",
        name=name,
    )
    assert r["c"]["err"] is not None and "parent" in r["c"]["err"] and "EPERM" in r["c"]["err"]
    assert r["c"]["state"] == "user-session"
    assert r["c"]["stored"] is False
    assert r["parent_state"] == "user-session"


# --- blocked keyctl (a real seccomp filter, as Docker's default profile installs) ----------------------------------

SECCOMP = """
import ctypes, struct
nr_add_key, nr_keyctl = kk._get_sys().nr_add_key, kk._get_sys().nr_keyctl
def ins(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)
prog = (ins(0x20, 0, 0, 0)                      # A = seccomp_data.nr
        + ins(0x15, 2, 0, nr_keyctl)            # if A == keyctl goto deny
        + ins(0x15, 1, 0, nr_add_key)           # if A == add_key goto deny
        + ins(0x06, 0, 0, 0x7FFF0000)           # allow
        + ins(0x06, 0, 0, 0x00050000 | ERRNO))  # deny: SECCOMP_RET_ERRNO | errno
class FProg(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
buf = ctypes.create_string_buffer(prog, len(prog))
fprog = FProg(len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
assert libc.prctl(22, ctypes.c_ulong(2), ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
"""


@pytest.mark.parametrize("err", ["EPERM", "ENOSYS"])
def test_blocked_by_seccomp(env: dict[str, str], name: str, err: str) -> None:
    r = run(
        env,
        """
        def attempt(f):
            try:
                return ["ok", f()]
            except kk.KeyringUnavailable as e:
                return [type(e).__name__, str(e)]
        out(available=kk.available(), state=kk.session_keyring_state(),
            store=attempt(lambda: kk.store(NAME, b"k" * 32, 60)), load=attempt(lambda: kk.load(NAME)),
            ensure=attempt(kk.ensure_session_keyring))
        """,
        setup=f"import errno\nERRNO = errno.{err}\n" + SECCOMP,
        name=name,
    )
    assert r["available"][0] is False
    assert "keyctl blocked" in r["available"][1] and err in r["available"][1]
    assert r["state"] == "unavailable"
    for op in ("store", "load", "ensure"):
        assert r[op][0] == "KeyringUnavailable", op
        assert "keyctl blocked" in r[op][1]


@needs_other_user
def test_session_keyring_inherited_from_another_user_is_not_used(env: dict[str, str], name: str) -> None:
    # The reverse of the test above: a process of uid 65534 that kept *our* session keyring (a uid change without
    # pam_keyinit) must not cache its key there, or every process of ours would possess, and so could read, it.
    r = run(
        env,
        """
        code = ("import errno\\n"
                "state = kk.session_keyring_state()\\n"
                "try:\\n"
                "    kk.store(os.environ['NAME'], b'k' * 32, 60); stored = True\\n"
                "except kk.NoSessionKeyring:\\n"
                "    stored = False\\n"
                "out(uid=os.getuid(), state=state, stored=stored)")
        c = child(code, user=65534)
        out(c=c, ours=kk.load(NAME))
        """,
        name=name,
    )
    assert r == {"c": {"uid": 65534, "state": "user-session", "stored": False}, "ours": None}


# --- finding 11: a session keyring other processes may link ---------------------------------------------------------


def test_named_session_keyring_is_refused_anonymous_is_not(env: dict[str, str], name: str) -> None:
    # `keyctl session NAME` (join by name) gives the keyring user view/read/LINK; an anonymous one (pam_keyinit,
    # `keyctl session -`, ensure_session_keyring) only view/read. Another login of the uid can link the named one
    # into its own session from /proc/keys and so possess every key in it.
    code = """
        perm = kk._describe(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))[3]
        try:
            kk.store(NAME, b"k" * 32, 60)
            err = None
        except kk.SessionKeyringExposed as e:
            err = str(e)
        out(perm=perm, err=err, exposure=kk.session_keyring_exposure(), load=(kk.load(NAME) or b"").hex(),
            rm=kk.remove(NAME))
        """
    named = run(env, code, setup=f"join('cs-kkt-{uuid.uuid4().hex[:8]}')", name=name)
    anonymous = run(env, code, name=name)
    assert named["perm"] & kk.KEY_USR_LINK
    assert named["err"] is not None and named["err"] == named["exposure"]
    assert "link" in named["err"] and "keyctl session -" in named["err"]
    assert (named["load"], named["rm"]) == ("", False)
    assert not anonymous["perm"] & kk.SESSION_EXPOSING_MASK
    assert (anonymous["err"], anonymous["exposure"], anonymous["load"], anonymous["rm"]) == (
        None,
        None,
        "6b" * 32,
        True,
    )


def test_load_entry_and_invalidate_by_serial(env: dict[str, str], name: str) -> None:
    r = run(
        env,
        """
        kk.store(NAME, b"first", 60)
        session, first, data = kk.load_entry(NAME)
        kk.store(NAME, b"second", 60)
        displaced = kk.invalidate(first)  # no longer possessed: a reader holding an old serial cannot hurt the new key
        now = kk.load(NAME)
        second = kk.load_entry(NAME)[1]
        out(session_ok=session == kk.session_keyring_id(), data=data.decode(), displaced=displaced, now=now.decode(),
            gone=kk.invalidate(second), after=kk.load(NAME))
        """,
        name=name,
    )
    assert r == {"session_ok": True, "data": "first", "displaced": False, "now": "second", "gone": True, "after": None}
