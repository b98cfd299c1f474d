"""Per-login secrets (crypto/session_secret.py) and the unlocked data key on them, against the real kernel keyring,
real Unix users, real ``su`` / ``runuser`` / ``keyctl`` (no mocks).

Scenarios run in child processes that start in a session keyring of their own (``keyctl session -``), so the pytest
process's keyring is never changed. A scenario with two users runs as root in a fresh anonymous session keyring that
is handed to alice (``keyctl chown``), as her login's keyring would be; from it ``runuser -u alice`` runs her steps and
``su bob`` (without ``-``) / ``runuser -u bob`` run bob's, which inherit the keyring as they do after a real login.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from credstore.crypto import kernel_keyring as kk

ROOT = Path(__file__).resolve().parents[1]
PW = "correct horse battery staple"
VALUE = "wandb-v1-0123456789abcdef0123456789abcdef01234567"

_OK, _REASON = kk.available()
pytestmark = pytest.mark.skipif(not _OK, reason=f"kernel keyring unusable here: {_REASON}")

HELPER = textwrap.dedent(
    '''
    """Helpers for the child processes of test_session_secret."""
    import errno
    import json
    import os
    import subprocess
    import sys

    from credstore.crypto import kernel_keyring as kk
    from credstore.crypto import session_cache

    try:
        from credstore.crypto import session_secret as ss
    except ImportError:  # code from before session_secret (each test was first run against it, to see it fail)
        ss = None
    shared_with_other_uid = getattr(session_cache, "session_keyring_shared_with_other_uid", lambda: "unknown")

    KEYCTL_UPDATE = 2


    def out(**kw):
        print(json.dumps(kw), flush=True)


    def entry(name):
        """(session serial, key serial, keyring payload) of a session secret, or None."""
        return kk.load_entry(ss.KEY_PREFIX + name)


    def update_key(key_id, payload):
        kk._keyctl(KEYCTL_UPDATE, key_id, payload, len(payload))


    def flip(data, bit):
        b = bytearray(data)
        b[bit // 8] ^= 1 << (bit % 8)
        return bytes(b)


    def files():
        """This session's files (the directory is shared by every login of the uid)."""
        d = ss.runtime_directory()
        mark = f".{kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING):x}."
        return {n: os.path.join(d, n) for n in os.listdir(d) if mark in n}


    def keyctl(*args, data=None):
        r = subprocess.run(["keyctl", *args], input=data, capture_output=True)
        return r.returncode, r.stdout, r.stderr.decode(errors="replace").strip()
    '''
)


@pytest.fixture(scope="module")
def helper_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="sst-"))
    d.chmod(0o755)  # readable by the other users' children
    (d / "sst.py").write_text(HELPER)
    (d / "sst.py").chmod(0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _keyctl() -> str:
    path = shutil.which("keyctl")
    if path is None:
        pytest.skip("keyctl (package keyutils) is not installed")
    return path


def run_in_session(helper_dir: Path, code: str, *, env: dict[str, str] | None = None) -> dict:
    """Run code (helpers imported) in a fresh anonymous session keyring as this user; its last JSON line."""
    e = dict(os.environ)
    e.update(env or {})
    e["PYTHONPATH"] = f"{helper_dir}:{ROOT}"
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    src = "from sst import *\n" + textwrap.dedent(code)
    r = subprocess.run(
        [_keyctl(), "session", "-", sys.executable, "-c", src], capture_output=True, text=True, env=e, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- the primitive, one user ------------------------------------------------------------------------------------------


def test_round_trip_replace_remove_and_what_each_half_holds(helper_dir: Path) -> None:
    r = run_in_session(
        helper_dir,
        """
        import stat
        small, big = os.urandom(1024), os.urandom(100 * 1024)
        ss.put("t-small", small, 600)
        ss.put("t-big", big, 600)
        got = [ss.get("t-small") == small, ss.get("t-big") == big]
        payload = entry("t-small")[2]
        half_files = {n: open(p, "rb").read() for n, p in files().items()}
        d = ss.runtime_directory()
        modes = sorted({oct(os.stat(p).st_mode & 0o777) for p in files().values()})
        ss.put("t-small", b"replaced", 600)
        replaced = ss.get("t-small")
        n_small = sum(n.startswith("t-small.") for n in files())
        removed = [ss.remove("t-small"), ss.remove("t-big"), ss.remove("t-big")]
        out(got=got, payload_len=len(payload), small_in_key=small[:16] in payload,
            small_in_file=any(small[:16] in b for b in half_files.values()),
            big_in_file=any(big[:16] in b for b in half_files.values()),
            dir_mode=oct(os.stat(d).st_mode & 0o777), file_modes=modes, replaced=replaced.decode(),
            n_small=n_small, removed=removed, after=[ss.get("t-small"), ss.get("t-big")],
            left=[n for n in files() if n.startswith("t-")], empty=(ss.put("t-e", b"", 60), ss.get("t-e"))[1] == b"",
            rm_empty=ss.remove("t-e"))
        """,
    )
    assert r["got"] == [True, True]
    assert r["payload_len"] == 89  # version, file id, expiry, length, pad key, MAC key: no data at all
    assert r["small_in_key"] is False
    assert r["small_in_file"] is False and r["big_in_file"] is False
    assert r["dir_mode"] == "0o700"
    assert r["file_modes"] == ["0o600"]
    assert r["replaced"] == "replaced"
    assert r["n_small"] == 1  # a replace leaves one file per name and session
    assert r["removed"] == [True, True, False]
    assert r["after"] == [None, None]
    assert r["left"] == []
    assert r["empty"] is True


def test_bit_flips_in_the_keyring_half_are_detected(helper_dir: Path) -> None:
    r = run_in_session(
        helper_dir,
        """
        data = os.urandom(300)
        results = []
        for bit in range(0, 89 * 8, 13):  # every field of the payload: version, file id, expiry, length, E, K
            ss.put("t-flip", data, 600)
            _session, key_id, payload = entry("t-flip")
            update_key(key_id, flip(payload, bit))
            got = ss.get("t-flip")
            results.append([bit, got is None, entry("t-flip") is None,
                            [n for n in files() if n.startswith("t-flip.")]])
        ss.put("t-flip", data, 600)
        _session, key_id, payload = entry("t-flip")
        update_key(key_id, payload + b"x")  # longer
        longer = ss.get("t-flip")
        ss.put("t-flip", data, 600)
        same = ss.get("t-flip") == data
        ss.remove("t-flip")
        out(results=results, longer=longer, same=same)
        """,
    )
    assert len(r["results"]) > 50
    for bit, none, key_gone, files_left in r["results"]:
        assert none, f"bit {bit}: get returned bytes"
        assert key_gone and files_left == [], f"bit {bit}: the altered entry was not removed"
    assert r["longer"] is None
    assert r["same"] is True


def test_bit_flips_in_the_file_half_are_detected(helper_dir: Path) -> None:
    r = run_in_session(
        helper_dir,
        """
        import stat
        data = os.urandom(200)
        results = []
        size = None
        for bit in list(range(0, (4 + 200 + 32) * 8, 37)) + [(4 + 200 + 32) * 8 - 1]:  # magic, C, tag
            ss.put("t-file", data, 600)
            (fname, path), = [(n, p) for n, p in files().items() if n.startswith("t-file.")]
            body = open(path, "rb").read()
            size = len(body)
            with open(path, "wb") as f:
                f.write(flip(body, bit))
            results.append([bit, ss.get("t-file") is None, entry("t-file") is None, os.path.exists(path)])
        other = {}
        for how in ("truncated", "extended", "mode 0644", "symlink", "fifo"):
            ss.put("t-file", data, 600)
            (fname, path), = [(n, p) for n, p in files().items() if n.startswith("t-file.")]
            body = open(path, "rb").read()
            if how == "truncated":
                open(path, "wb").write(body[:-1])
            elif how == "extended":
                open(path, "ab").write(b"\\0")
            elif how == "mode 0644":
                os.chmod(path, 0o644)
            elif how == "symlink":
                copy = path + "-copy"
                os.rename(path, copy)
                os.symlink(copy, path)
            else:
                os.unlink(path)
                os.mkfifo(path, 0o600)
            other[how] = ss.get("t-file")
            for n, p in files().items():
                if n.startswith("t-file"):
                    os.unlink(p)
        ss.put("t-file", data, 600)
        ok = ss.get("t-file") == data
        ss.remove("t-file")
        out(results=results, other=other, ok=ok, size=size)
        """,
    )
    assert r["size"] == 4 + 200 + 32
    assert len(r["results"]) > 40
    for bit, none, key_gone, file_left in r["results"]:
        assert none, f"bit {bit}: get returned bytes"
        assert key_gone and not file_left, f"bit {bit}: the altered entry was not removed"
    assert r["other"] == {"truncated": None, "extended": None, "mode 0644": None, "symlink": None, "fifo": None}
    assert r["ok"] is True


def test_a_large_secret_is_sealed_with_libcrypto_and_every_alteration_is_detected(helper_dir: Path) -> None:
    """The second form (ChaCha20-Poly1305 from libcrypto, ``AEAD_MIN`` bytes or more): the same two halves, with
    flips in every byte of the keyring payload (the MAC key too, which this form does not use but binds), sampled
    flips in the file (magic, ciphertext, tag), and the file's other alterations."""
    r = run_in_session(
        helper_dir,
        """
        from credstore.crypto import libcrypto
        n = ss.AEAD_MIN + 1000
        data = os.urandom(n)
        ss.put("t-aead", data, 600)
        (fname, path), = [(k, p) for k, p in files().items() if k.startswith("t-aead.")]
        body = open(path, "rb").read()
        payload = entry("t-aead")[2]
        form = [body[:4].hex(), payload[0], len(body), ss.get("t-aead") == data, data[:32] in body]
        key_results = []
        for byte in range(89):  # version, file id, expiry, length, E, K
            ss.put("t-aead", data, 600)
            _session, key_id, payload = entry("t-aead")
            update_key(key_id, flip(payload, byte * 8 + byte % 8))
            key_results.append([byte, ss.get("t-aead") is None, entry("t-aead") is None])
        file_results = []
        for bit in [0, 31, 40, 41 * 8 + 3, (4 + n) * 8 - 1, (4 + n) * 8, (4 + n + 16) * 8 - 1]:
            ss.put("t-aead", data, 600)
            (fname, path), = [(k, p) for k, p in files().items() if k.startswith("t-aead.")]
            body = open(path, "rb").read()
            with open(path, "wb") as f:
                f.write(flip(body, bit))
            file_results.append([bit, ss.get("t-aead") is None, entry("t-aead") is None, os.path.exists(path)])
        other = {}
        for how in ("truncated", "extended", "swapped for the small form"):
            ss.put("t-aead", data, 600)
            (fname, path), = [(k, p) for k, p in files().items() if k.startswith("t-aead.")]
            body = open(path, "rb").read()
            if how == "truncated":
                open(path, "wb").write(body[:-1])
            elif how == "extended":
                open(path, "ab").write(b"\\0")
            else:  # the payload says version 1 and the file starts with its magic: no form accepts the other's
                _session, key_id, payload = entry("t-aead")
                update_key(key_id, bytes([1]) + payload[1:])
                open(path, "wb").write(b"CSS\\x01" + body[4:])
            other[how] = ss.get("t-aead")
        ss.put("t-aead", data, 600)
        libcrypto._loaded.clear(); libcrypto._why_not.append("gone for this test")
        without = ss.get("t-aead")
        libcrypto._why_not.clear()
        ss.put("t-aead", data, 600)
        ok = ss.get("t-aead") == data
        libcrypto._why_not.append("gone for this test")
        ss.put("t-aead", data, 600)
        small_form = [entry("t-aead")[2][0], ss.get("t-aead") == data]
        ss.remove("t-aead")
        out(form=form, key_results=key_results, file_results=file_results, other=other, without=without, ok=ok,
            small_form=small_form)
        """,
    )
    magic, version, size, same, plain_in_file = r["form"]
    assert (magic, version, same, plain_in_file) == ("43535302", 2, True, False)
    assert size == 4 + ss_aead_min() + 1000 + 16
    assert len(r["key_results"]) == 89
    for byte, none, key_gone in r["key_results"]:
        assert none and key_gone, f"payload byte {byte}: not detected"
    for bit, none, key_gone, file_left in r["file_results"]:
        assert none and key_gone and not file_left, f"file bit {bit}: not detected"
    assert r["other"] == {"truncated": None, "extended": None, "swapped for the small form": None}
    assert r["without"] is None  # libcrypto gone since the put: nothing, not an error
    assert r["ok"] is True
    assert r["small_form"] == [1, True]  # a writer without libcrypto uses the BLAKE2b form, whatever the size


#: An OpenSSL 3 configuration that loads only the base provider: libcrypto loads and has every EVP_* symbol, but no
#: cipher implementation (as on a system in FIPS mode, whose provider has no ChaCha20-Poly1305).
NO_CHACHA_CONF = """openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
base = base_sect
[base_sect]
activate = 1
"""


def test_a_large_secret_is_kept_where_libcrypto_loads_but_has_no_chacha20_poly1305(
    helper_dir: Path, tmp_path: Path
) -> None:
    """``missing()`` must say so when libcrypto's ChaCha20-Poly1305 cannot be set up (not only when the library or a
    symbol is absent): a writer then uses the BLAKE2b form, and a large secret is kept, not refused."""
    conf = tmp_path / "no-chacha.cnf"
    conf.write_text(NO_CHACHA_CONF)
    r = run_in_session(
        helper_dir,
        """
        from credstore.crypto import libcrypto
        data = os.urandom(ss.AEAD_MIN + 1000)
        try:
            ss.put("t-noaead", data, 600)
            error = None
        except Exception as exc:
            error = type(exc).__name__
        out(missing=libcrypto.missing(), error=error, same=ss.get("t-noaead") == data,
            form=None if entry("t-noaead") is None else entry("t-noaead")[2][0])
        ss.remove("t-noaead")
        """,
        env={"OPENSSL_CONF": str(conf)},
    )
    if r["missing"] is None and r["error"] is None and r["form"] == 2:
        pytest.skip("this libcrypto ignores OPENSSL_CONF's providers (not OpenSSL 3): ChaCha20-Poly1305 still works")
    assert r["error"] is None  # no CryptoUnavailable out of put
    assert r["missing"] is not None  # missing() names the reason
    assert r["same"] is True and r["form"] == 1  # kept, in the BLAKE2b form


def ss_aead_min() -> int:
    from credstore.crypto import session_secret

    return session_secret.AEAD_MIN


def test_an_old_pair_of_halves_does_not_come_back(helper_dir: Path) -> None:
    """A saved keyring payload put back after a newer put (what a possessor of the keyring could try) finds no file
    it verifies against: the newer put removed the older file."""
    r = run_in_session(
        helper_dir,
        """
        ss.put("t-old", b"old value", 600)
        old_payload = entry("t-old")[2]
        ss.put("t-old", b"new value", 600)
        _session, key_id, _payload = entry("t-old")
        update_key(key_id, old_payload)
        replayed = ss.get("t-old")
        out(replayed=replayed)
        """,
    )
    assert r["replayed"] is None


def test_ttl_expiry_and_the_sweep(helper_dir: Path) -> None:
    r = run_in_session(
        helper_dir,
        """
        import time
        ss.put("t-ttl", b"short lived", 1)
        ss.put("t-keep", b"kept", 600)
        before = ss.get("t-ttl")
        time.sleep(2.5)
        after = ss.get("t-ttl")
        left_after_get = [n for n in files() if n.startswith("t-ttl.")]  # the file half waits for a put
        ss.put("t-ttl2", b"x", 1)
        time.sleep(2.5)
        ss.put("t-other", b"y", 600)  # sweeps expired files of any name
        left_after_put = [n for n in files() if n.startswith(("t-ttl.", "t-ttl2."))]
        kept = ss.get("t-keep")
        for n in ("t-keep", "t-other", "t-ttl2"):
            ss.remove(n)
        out(before=before.decode(), after=after, left_after_get=left_after_get, left_after_put=left_after_put,
            kept=kept.decode())
        """,
    )
    # A miss costs no directory scan (the file stays until a put sweeps: this session's, or any process's of the uid).
    assert len(r.pop("left_after_get")) <= 1
    assert r == {"before": "short lived", "after": None, "left_after_put": [], "kept": "kept"}


def test_refused_without_a_session_keyring_of_this_login(helper_dir: Path) -> None:
    r = run_in_session(
        helper_dir,
        """
        kk._keyctl(kk.KEYCTL_JOIN_SESSION_KEYRING, f"_uid_ses.{os.getuid()}".encode())  # cron / container
        try:
            ss.put("t-nosession", b"x", 60)
            err = None
        except ss.SessionSecretUnavailable as e:
            err = str(e)
        out(err=err, get=ss.get("t-nosession"), rm=ss.remove("t-nosession"))
        """,
    )
    assert r["err"] is not None and "no session keyring" in r["err"]
    assert r["get"] is None and r["rm"] is False


@pytest.mark.parametrize("bad", ["", "a.b", "a/b", "x" * 65, "café", "a b"])
def test_bad_names_rejected(bad: str) -> None:
    from credstore.crypto import session_secret as ss

    for call in (lambda: ss.put(bad, b"x", 60), lambda: ss.get(bad), lambda: ss.remove(bad)):
        with pytest.raises(ValueError):
            call()


# --- finding 11: a named session keyring is refused -------------------------------------------------------------------


def test_named_session_keyring_is_refused_with_the_reason(helper_dir: Path) -> None:
    keyctl = _keyctl()
    e = dict(os.environ, PYTHONPATH=f"{helper_dir}:{ROOT}", PYTHONDONTWRITEBYTECODE="1")
    code = textwrap.dedent(
        """
        from sst import *
        try:
            ss.put("t-named", b"x", 60)
            err = None
        except ss.SessionSecretUnavailable as e:
            err = str(e)
        out(err=err, perm=kk._describe(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))[3])
        """
    )
    name = f"cs-test-{os.getpid()}"
    r = subprocess.run([keyctl, "session", name, sys.executable, "-c", code], capture_output=True, text=True, env=e)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["perm"] & kk.KEY_USR_LINK  # what `keyctl session NAME` makes
    assert got["err"] is not None
    assert "link" in got["err"] and "keyctl session -" in got["err"] and "\n" not in got["err"]


# --- two users, two logins -------------------------------------------------------------------------------------------


def _scenario_env(user, user_python, helper_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = user.base_env()
    env.update(user_python.env)
    env["PYTHONPATH"] = str(helper_dir)  # credstore itself: the readable copy installed in user_python's venv
    env["CREDSTORE_HOME"] = str(user.home / ".local" / "share" / "credstore")
    env["CREDSTORE_TEST_WEAK_KDF"] = "1"
    env.update(extra or {})
    return env


def _cleanup_runtime_dirs(*users) -> None:
    for user in users:
        shutil.rmtree(f"/dev/shm/credstore-{user.uid}", ignore_errors=True)


DRIVER = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from credstore.crypto import kernel_keyring as kk
    KEYCTL_CHOWN = 4
    plan = json.loads(os.environ["PLAN"])
    # This root process sits in a fresh anonymous session keyring (keyctl session -); give it to alice, as her
    # login's keyring (pam_keyinit) would be hers. Every step below inherits it.
    kk._keyctl(KEYCTL_CHOWN, kk.KEY_SPEC_SESSION_KEYRING, plan["alice_uid"], -1)
    results = []
    background = []
    for who, code in plan["steps"]:
        env = dict(plan["env"][who.split("-")[0]], CODE="from sst import *\\n" + code)
        py = plan["python"]
        if who == "alice":
            argv = ["runuser", "-u", plan["alice"], "-m", "--", py, "-c", env["CODE"]]
        elif who == "alice-other-login":
            argv = ["runuser", "-u", plan["alice"], "-m", "--", "keyctl", "session", "-", py, "-c", env["CODE"]]
        elif who == "bob-su":
            # su without "-": bob's shell keeps the environment and the session keyring
            argv = ["su", plan["bob"], "-c", '"$PY" -c "$CODE"']
            env = dict(env, PY=py)
        elif who == "bob-runuser":
            argv = ["runuser", "-u", plan["bob"], "--", py, "-c", env["CODE"]]
        elif who == "bob-background":
            background.append(subprocess.Popen(["su", plan["bob"], "-c", "sleep 60"], env=env))
            continue
        else:
            raise ValueError(who)
        r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", timeout=120)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        results.append({"who": who, "rc": r.returncode, "out": json.loads(lines[-1]) if lines else None,
                        "stderr": r.stderr[-2000:]})
    for p in background:
        p.kill()
        p.wait()
    print(json.dumps(results))
    """
)


def run_scenario(helper_dir: Path, user_python, alice, bob, steps, env_extra=None) -> list[dict]:
    keyctl = _keyctl()
    plan = {
        "alice": alice.name,
        "bob": bob.name,
        "alice_uid": alice.uid,
        "python": str(user_python.python),
        "env": {
            "alice": _scenario_env(alice, user_python, helper_dir, env_extra),
            "bob": _scenario_env(bob, user_python, helper_dir, env_extra),
        },
        "steps": [[who, textwrap.dedent(code)] for who, code in steps],
    }
    env = dict(os.environ, PLAN=json.dumps(plan), PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run(
        [keyctl, "session", "-", sys.executable, "-c", DRIVER],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        start_new_session=True,  # its own process session: the /proc heuristic sees only this scenario
    )
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for step in results:
        assert step["out"] is not None, f"{step['who']} failed ({step['rc']}): {step['stderr']}"
    return results


ALICE_PUTS = """
secret = b"alice's secret " + os.urandom(int(os.environ.get("PROBE_BYTES", "16"))).hex().encode()
ss.put("probe", secret, 600)
_session, key_id, payload = entry("probe")
out(secret=secret.hex(), payload=payload.hex(), dir=ss.runtime_directory(), key_id=key_id)
"""

ALICE_READS = """
got = ss.get("probe")
out(got=None if got is None else got.hex(), key=entry("probe") is not None)
"""


#: A small secret (the BLAKE2b form) and a large one (the libcrypto form: 300 KiB of hex).
PROBE_SIZES = pytest.mark.parametrize("probe_bytes", [16, 150 * 1024], ids=["small", "large"])


@PROBE_SIZES
def test_other_uid_that_inherited_the_keyring_learns_nothing_and_cannot_change_it(
    unix_users, user_python, helper_dir: Path, probe_bytes: int
) -> None:
    alice, bob = unix_users.create("csa"), unix_users.create("csb")
    bob_reads = """
    rc, raw, err = keyctl("pipe", "%user:credstore:probe")
    d = os.environ.get("XDG_RUNTIME_DIR") or "/dev/shm/credstore-" + os.environ["ALICE_UID"]
    try:
        listing = os.listdir(d)
    except OSError as e:
        listing = errno.errorcode[e.errno]
    out(uid=os.getuid(), rc=rc, raw=raw.hex(), err=err, listing=listing, own=ss.get("probe"),
        state=kk.session_keyring_state())
    """
    bob_changes_key = """
    rc, raw, err = keyctl("pipe", "%user:credstore:probe")
    key_id = int(subprocess.run(["keyctl", "search", "@s", "user", "credstore:probe"], capture_output=True,
                                text=True).stdout)
    forged = raw[:-1] + bytes([raw[-1] ^ 1])  # the MAC key, one bit
    update_key(key_id, forged)
    out(changed=kk._read_buffer(kk.KEYCTL_READ, key_id).hex() == forged.hex())
    """
    bob_changes_pad = """
    rc, raw, err = keyctl("pipe", "%user:credstore:probe")
    key_id = int(subprocess.run(["keyctl", "search", "@s", "user", "credstore:probe"], capture_output=True,
                                text=True).stdout)
    forged = raw[:30] + bytes([raw[30] ^ 0x80]) + raw[31:]  # the pad key, one bit: a flip in C without the file
    update_key(key_id, forged)
    out(changed=True)
    """
    bob_plants_own_key = """
    rc, _o, err = keyctl("padd", "user", "credstore:probe", "@s", data=os.urandom(89))
    out(rc=rc, err=err)
    """
    env_extra = {"ALICE_UID": str(alice.uid), "PROBE_BYTES": str(probe_bytes)}
    try:
        steps = [
            ("alice", ALICE_PUTS),
            ("bob-su", bob_reads),
            ("bob-runuser", bob_reads),
            ("bob-su", bob_changes_key),
            ("alice", ALICE_READS),
            ("alice", ALICE_PUTS),
            ("bob-runuser", bob_changes_pad),
            ("alice", ALICE_READS),
            ("alice", ALICE_PUTS),
            ("bob-su", bob_plants_own_key),
            ("alice", ALICE_READS),
            ("alice", ALICE_PUTS),
            ("alice", ALICE_READS),
        ]
        results = run_scenario(helper_dir, user_python, alice, bob, steps, env_extra)
    finally:
        _cleanup_runtime_dirs(alice, bob)
    put1, su_read, ru_read, change_k, after_k, put2, change_e, after_e, put3, plant, after_plant, put4, last = (
        s["out"] for s in results
    )
    secret = put1["secret"]
    assert put1["payload"][:2] == ("02" if probe_bytes > 1000 else "01")  # the form meant (version byte)
    assert put1["dir"] == f"/dev/shm/credstore-{alice.uid}"
    for read in (su_read, ru_read):
        assert read["uid"] == bob.uid
        assert read["rc"] == 0, read["err"]  # bob does possess alice's keyring (the kernel's model) ...
        assert read["raw"] == put1["payload"]  # ... and reads the keyring half,
        assert secret not in read["raw"]  # which holds nothing of the secret
        assert read["listing"] == "EACCES"  # the file half is out of his reach
        assert read["own"] is None  # and credstore as bob finds nothing
        assert read["state"] == "user-session"  # a keyring of another uid is not bob's session keyring
    assert change_k["changed"] is True
    assert after_k == {"got": None, "key": False}  # never other bytes; the altered entry is dropped
    assert after_e == {"got": None, "key": False}
    assert plant["rc"] == 0, plant["err"]  # the kernel lets bob link his own key into alice's keyring ...
    assert after_plant["got"] is None  # ... and alice ignores it
    assert last["got"] == put4["secret"]


@PROBE_SIZES
def test_another_login_of_the_same_user_cannot_read(
    unix_users, user_python, helper_dir: Path, probe_bytes: int
) -> None:
    alice, bob = unix_users.create("csa"), unix_users.create("csb")
    other_login = """
    mine = kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING)
    proc_keys = [l.split() for l in open("/proc/keys")]
    keyrings = [int(f[0], 16) for f in proc_keys if f[7] == "keyring" and f[8] == "_ses:" and int(f[0], 16) != mine]
    visible_keys = [f[8] for f in proc_keys if f[7] == "user"]
    linked = []
    for serial in keyrings:
        rc, _o, err = keyctl("link", str(serial), "@s")
        linked.append([rc, err])
    d = ss.runtime_directory()
    half = {n: open(os.path.join(d, n), "rb").read().hex() for n in os.listdir(d)}  # all of alice's files
    out(get=ss.get("probe"), visible_keys=visible_keys, linked=linked, files=half, n_keyrings=len(keyrings))
    """
    try:
        results = run_scenario(
            helper_dir,
            user_python,
            alice,
            bob,
            [("alice", ALICE_PUTS), ("alice-other-login", other_login)],
            {"PROBE_BYTES": str(probe_bytes)},
        )
    finally:
        _cleanup_runtime_dirs(alice, bob)
    put, other = (s["out"] for s in results)
    assert other["get"] is None
    assert "credstore:probe" not in " ".join(other["visible_keys"])  # the key is possessor-only: not even listed
    assert other["n_keyrings"] >= 1  # alice's first login keyring is listed (view) ...
    assert all(rc != 0 and "Permission denied" in err for rc, err in other["linked"])  # ... but cannot be linked
    assert len(other["files"]) == 1  # the other login does read the file half (same uid) ...
    assert put["secret"] not in next(iter(other["files"].values()))  # ... which shows nothing of the secret


def test_no_private_runtime_directory_is_refused_with_the_reason(unix_users, user_python, helper_dir: Path) -> None:
    alice, bob = unix_users.create("csa"), unix_users.create("csb")
    squat = Path(f"/dev/shm/credstore-{alice.uid}")
    attempt = """
    try:
        ss.put("probe", b"x", 60)
        err = None
    except ss.SessionSecretUnavailable as e:
        err = str(e)
    out(err=err, get=ss.get("probe"))
    """
    try:
        squat.mkdir(mode=0o700)
        os.chown(squat, bob.uid, bob.gid)  # bob made alice's fallback directory first
        results = run_scenario(
            helper_dir,
            user_python,
            alice,
            bob,
            [("alice", attempt)],
            {"XDG_RUNTIME_DIR": str(bob.home)},  # not hers either
        )
    finally:
        _cleanup_runtime_dirs(alice, bob)
    r = results[0]["out"]
    assert r["get"] is None
    assert r["err"] is not None and "\n" not in r["err"]
    assert "no private runtime directory" in r["err"]
    assert str(squat) in r["err"] and str(bob.home) in r["err"]


FIRST_SET_WITHOUT_A_RUNTIME_DIRECTORY = (
    "import subprocess, sys\n"
    + f"""
r = subprocess.run([sys.executable, "-m", "credstore", "init", "--protection", "passphrase"], capture_output=True,
                   text=True, input="{PW}\\n")
env = subprocess.run([sys.executable, "-m", "credstore", "env", "--shell", "sh"], capture_output=True, text=True)
out(rc=r.returncode, err=r.stderr, env_rc=env.returncode)
"""
)


def test_a_first_write_says_when_the_new_store_could_not_stay_unlocked(
    unix_users, user_python, helper_dir: Path
) -> None:
    """trial4: another user made alice's fallback runtime directory first (no XDG_RUNTIME_DIR, no /run/user/UID,
    as on a machine without systemd-logind). Creating her store (``init``, or the first ``set`` / ``add``) could
    not keep it unlocked and said nothing of it (only "created profile"), so the README's ``credstore add wandb &&
    eval "$(credstore env)"`` failed on a locked store with no word of why. It now says so in one line, with the
    reason."""
    alice, bob = unix_users.create("csa"), unix_users.create("csb")
    if os.path.exists(f"/run/user/{alice.uid}"):
        pytest.skip("/run/user/UID exists here: the fallback directory is not used")
    squat = Path(f"/dev/shm/credstore-{alice.uid}")
    try:
        squat.mkdir(mode=0o700)
        os.chown(squat, bob.uid, bob.gid)
        results = run_scenario(
            helper_dir,
            user_python,
            alice,
            bob,
            [("alice", FIRST_SET_WITHOUT_A_RUNTIME_DIRECTORY)],
            {"XDG_RUNTIME_DIR": ""},
        )
    finally:
        _cleanup_runtime_dirs(alice, bob)
    r = results[0]["out"]
    assert r["rc"] == 0, r["err"]
    assert r["env_rc"] == 4  # locked, as the warning says
    assert "created profile" in r["err"]
    said = [line for line in r["err"].splitlines() if "locked" in line]
    assert len(said) == 1, r["err"]
    assert said[0].startswith("credstore: ") and str(squat) in said[0]  # one line, with the reason
    assert PW not in r["err"]


def test_xdg_runtime_dir_is_used_when_it_is_yours(unix_users, user_python, helper_dir: Path) -> None:
    alice, bob = unix_users.create("csa"), unix_users.create("csb")
    run_dir = Path(f"/run/user/{alice.uid}")
    try:
        run_dir.mkdir(mode=0o700, parents=False, exist_ok=True)
        os.chown(run_dir, alice.uid, alice.gid)
        results = run_scenario(
            helper_dir,
            user_python,
            alice,
            bob,
            [("alice", ALICE_PUTS), ("alice", ALICE_READS)],
            {"XDG_RUNTIME_DIR": str(run_dir)},
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        _cleanup_runtime_dirs(alice, bob)
    put, read = (s["out"] for s in results)
    assert put["dir"] == f"{run_dir}/credstore"
    assert read["got"] == put["secret"]


# --- finding 4 at the command line: the unlocked data key ------------------------------------------------------------

CLI_STEP = """
def cli(*args, input=None):
    r = subprocess.run([sys.executable, "-m", "credstore", *args], input=input, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr
"""

ALICE_UNLOCKS = (
    CLI_STEP
    + f"""
init = cli("init", "--protection", "passphrase", input="{PW}\\n")
unlock = cli("unlock", input="{PW}\\n")
setv = cli("set", "WANDB_API_KEY", input="{VALUE}")
from credstore.crypto.session_cache import SessionDekCache
names = [kk._describe(m)[4] for m in kk._keyring_members(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))]
store_hex = [n.split(":", 1)[1] for n in names if n.startswith("credstore:") and "render-" not in n][0]
dek = SessionDekCache().get(bytes.fromhex(store_hex))
env = cli("env", "--shell", "sh")
out(rc=[init[0], unlock[0], setv[0], env[0]], err=init[2] + unlock[2] + setv[2], env=env[1],
    dek=None if dek is None else dek.hex(), shared=shared_with_other_uid())
"""
)

ALICE_ENV = (
    CLI_STEP
    + """
env = cli("env", "--shell", "sh")
out(rc=env[0], env=env[1], err=env[2], shared=shared_with_other_uid())
"""
)

FIND_KEY = """
ours = [m for m in kk._keyring_members(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))
        if kk._describe(m)[4].startswith("credstore:") and not kk._describe(m)[4].startswith("credstore:render-")]
key_id = ours[0]
"""

BOB_TAKES_THE_KEY = (
    FIND_KEY
    + """
rc, raw, err = keyctl("pipe", str(key_id))
out(uid=os.getuid(), rc=rc, raw=raw.hex(), err=err, shared=shared_with_other_uid())
"""
)

BOB_WRITES_A_KEY = (
    FIND_KEY
    + """
update_key(key_id, bytes(32))  # what the old cache would have handed alice as her data key
out(now=kk._read_buffer(kk.KEYCTL_READ, key_id).hex())
"""
)


def test_unlocked_data_key_is_useless_to_another_uid_in_the_session(unix_users, user_python, helper_dir) -> None:
    """Finding 4: after alice's unlock, `su bob` and `runuser -u bob` processes possess her session keyring; what
    they read there is not her data key, and what they write there does not become her data key."""
    alice, bob = unix_users.create("csa"), unix_users.create("csb")
    steps = [
        ("alice", ALICE_UNLOCKS),
        ("bob-background", ""),
        ("alice", ALICE_ENV),
        ("bob-su", BOB_TAKES_THE_KEY),
        ("bob-runuser", BOB_TAKES_THE_KEY),
        ("bob-su", BOB_WRITES_A_KEY),
        ("alice", ALICE_ENV),
    ]
    try:
        results = run_scenario(helper_dir, user_python, alice, bob, steps)
    finally:
        _cleanup_runtime_dirs(alice, bob)
    unlocked, env_shared, su_read, ru_read, written, after = (s["out"] for s in results)
    assert unlocked["rc"] == [0, 0, 0, 0], unlocked["err"]
    assert VALUE in unlocked["env"]
    dek = unlocked["dek"]
    assert dek is not None and len(dek) == 64
    for read in (su_read, ru_read):
        assert read["uid"] == bob.uid
        assert read["rc"] == 0, read["err"]  # bob possesses the keyring and reads the key ...
        assert dek not in read["raw"]  # ... which is not the data key
    assert written["now"] == bytes(32).hex()
    assert after["rc"] == 4, after  # locked: never a key bob chose
    assert VALUE not in after["env"]
    assert "locked" in after["err"]
    # what unlock / doctor can say about it
    assert unlocked["shared"] is None  # nobody else in this terminal session yet
    assert env_shared["rc"] == 0
    assert env_shared["shared"] is not None and bob.name in env_shared["shared"]  # bob's `su` shell is running
    for read in (su_read, ru_read):
        assert read["shared"] is not None and alice.name in read["shared"]  # bob is told whose keyring it is


# --- finding 11 at the command line: two logins of one user, one in a named session keyring -------------------------


def test_unlock_refuses_a_named_session_keyring_another_login_could_link(unix_users, user_python) -> None:
    """Login A runs in `keyctl session NAME` (permissions let the owner's other processes link it). Login B of the
    same user finds it in /proc/keys and links it: with a cached unlock there, B would read the data key. unlock
    must refuse to cache there, saying why, so B finds nothing."""
    keyctl = _keyctl()
    alice = unix_users.create("csa")
    env = _scenario_env(alice, user_python, Path("/nonexistent"))
    env["PY"] = str(user_python.python)
    ring = f"csnamed-{os.urandom(4).hex()}"
    sync = alice.home / "sync"

    def login(script: str, keyring: str = "-", **kw) -> subprocess.Popen:
        argv = ["runuser", "-u", alice.name, "-m", "--", keyctl, "session", keyring, "bash", "-c", script]
        return subprocess.Popen(argv, env=env, cwd=alice.home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

    try:
        setup = login(
            f"""
            printf '%s\\n' '{PW}' | "$PY" -m credstore init --protection passphrase || exit 10
            printf '%s\\n' '{PW}' | "$PY" -m credstore unlock || exit 11
            printf '%s' '{VALUE}' | "$PY" -m credstore set WANDB_API_KEY || exit 12
            mkdir {sync}
            """
        )
        out, err = setup.communicate(timeout=120)
        assert setup.returncode == 0, err.decode()
        a = login(
            f"""
            printf '%s\\n' '{PW}' | "$PY" -m credstore unlock 2>{sync}/a-unlock.err; echo $? >{sync}/a-unlock.rc
            touch {sync}/a-ready
            for i in $(seq 600); do [ -e {sync}/b-done ] && break; sleep 0.1; done
            """,
            keyring=ring,
        )
        try:
            deadline = time.monotonic() + 120
            while not (sync / "a-ready").exists():
                assert a.poll() is None, a.stderr.read().decode()
                assert time.monotonic() < deadline, "login A did not get ready"
                time.sleep(0.05)
            b = login(
                f"""
                serial=$(awk '$8 == "keyring" && $9 == "{ring}:" {{print $1}}' /proc/keys)
                [ -n "$serial" ] || {{ echo "no {ring} in /proc/keys"; exit 20; }}
                ring_id=$(printf '%d' "0x$serial")
                keyctl link "$ring_id" @s; echo "link=$?"
                for k in $(keyctl rlist "$ring_id"); do
                    case "$(keyctl rdescribe "$k" 2>/dev/null)" in
                        "user;"*";credstore:"*) keyctl pipe "$k" >/dev/null 2>&1 && echo "read-a-cached-key";;
                    esac
                done
                "$PY" -m credstore env --shell sh; echo "env=$?"
                """
            )
            b_out, b_err = (x.decode() for x in b.communicate(timeout=120))
        finally:
            (sync / "b-done").touch()
            a.communicate(timeout=120)
        a_rc = (sync / "a-unlock.rc").read_text().strip()
        a_err = (sync / "a-unlock.err").read_text()
    finally:
        _cleanup_runtime_dirs(alice)
    assert "link=0" in b_out, (b_out, b_err)  # the kernel does let login B link login A's named keyring ...
    assert "read-a-cached-key" not in b_out  # ... but nothing was cached there for B to read
    assert "env=4" in b_out, (b_out, b_err)
    assert VALUE not in b_out
    assert a_rc == "1"  # A's unlock refused to cache, with the reason on one line
    assert "cannot be cached here" in a_err and "link" in a_err and "keyctl session -" in a_err
    assert "Traceback" not in a_err
