"""The render cache (app/render_cache.py) against real Unix users: a process of another uid that inherited alice's
session keyring (``su`` without ``-``, ``runuser -u``) learns nothing of what ``env`` printed and cannot change what
her next ``env`` prints. Scenarios as in test_session_secret.py (alice's steps run the package copy installed in
``user_python``'s venv, never the checkout)."""

from __future__ import annotations

from pathlib import Path

from tests.test_session_secret import (  # noqa: F401 - helper_dir is a fixture
    CLI_STEP,
    PW,
    VALUE,
    _cleanup_runtime_dirs,
    helper_dir,
    pytestmark,
    run_scenario,
)

ALICE_CACHES = (
    CLI_STEP
    + f"""
init = cli("init", "--protection", "passphrase", input="{PW}\\n")
unlock = cli("unlock", input="{PW}\\n")
setv = cli("set", "WANDB_API_KEY", input="{VALUE}")
env = cli("env", "--shell", "sh")
names = [kk._describe(m)[4] for m in kk._keyring_members(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))]
again = cli("env", "--shell", "sh")
out(rc=[init[0], unlock[0], setv[0], env[0], again[0]], err=init[2] + unlock[2] + setv[2] + env[2], env=env[1],
    again=again[1], names=names, files=sorted(os.listdir(ss.runtime_directory())))
"""
)

FIND_RENDER = """
ours = [m for m in kk._keyring_members(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))
        if kk._describe(m)[4].startswith("credstore:render-")]
key_id = ours[0]
"""

BOB_READS = (
    FIND_RENDER
    + """
rc, raw, err = keyctl("pipe", str(key_id))
d = "/dev/shm/credstore-" + os.environ["ALICE_UID"]
try:
    listing = os.listdir(d)
except OSError as e:
    listing = errno.errorcode[e.errno]
out(uid=os.getuid(), rc=rc, raw=raw.hex(), err=err, listing=listing)
"""
)

BOB_FLIPS = (
    FIND_RENDER
    + """
rc, raw, err = keyctl("pipe", str(key_id))
update_key(key_id, flip(raw, 8 * 40 + 3))  # one bit of the pad key
out(changed=kk._read_buffer(kk.KEYCTL_READ, key_id) != raw)
"""
)

BOB_SWAPS = (
    FIND_RENDER
    + """
dek = [m for m in kk._keyring_members(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))
       if kk._describe(m)[4].startswith("credstore:") and m != key_id][0]
update_key(key_id, kk._read_buffer(kk.KEYCTL_READ, dek))  # another secret's halves paired with this file
out(changed=True)
"""
)

ALICE_ENV = (
    CLI_STEP
    + """
env = cli("env", "--shell", "sh")
out(rc=env[0], env=env[1], err=env[2])
"""
)


def test_another_uid_in_the_session_keyring_can_neither_read_nor_change_the_render(
    unix_users,
    user_python,
    helper_dir: Path,  # noqa: F811 - the fixture imported above
) -> None:
    alice, bob = unix_users.create("csa"), unix_users.create("csb")
    steps = [
        ("alice", ALICE_CACHES),
        ("bob-su", BOB_READS),
        ("bob-runuser", BOB_READS),
        ("bob-su", BOB_FLIPS),
        ("alice", ALICE_ENV),
        ("alice", ALICE_ENV),
        ("bob-runuser", BOB_SWAPS),
        ("alice", ALICE_ENV),
    ]
    try:
        results = run_scenario(helper_dir, user_python, alice, bob, steps, {"ALICE_UID": str(alice.uid)})
    finally:
        _cleanup_runtime_dirs(alice, bob)
    cached, su_read, ru_read, flipped, after_flip, refreshed, swapped, after_swap = (s["out"] for s in results)
    assert cached["rc"] == [0, 0, 0, 0, 0], cached["err"]
    assert VALUE in cached["env"] and cached["again"] == cached["env"]
    assert any(n.startswith("credstore:render-") for n in cached["names"])  # the cache was written
    assert any(f.startswith("render-") for f in cached["files"])
    for read in (su_read, ru_read):
        assert read["uid"] == bob.uid
        assert read["rc"] == 0, read["err"]  # bob possesses the keyring half ...
        assert VALUE.encode().hex() not in read["raw"]  # ... which holds nothing of what env prints
        assert read["listing"] == "EACCES"  # and cannot reach the file half
    assert flipped["changed"] and swapped["changed"]
    for after in (after_flip, refreshed, after_swap):
        assert after["rc"] == 0, after["err"]
        assert after["env"] == cached["env"]  # never other text: the altered cache is dropped, the store read again


# -- a large render: sealed by libcrypto, its layers kept apart in a second entry (render-<hash>-layers) -----------

ENV_STEP = """
def cli_env(*args, extra=None):
    e = dict(os.environ, **(extra or {}))
    r = subprocess.run([sys.executable, "-m", "credstore", *args], capture_output=True, text=True, env=e)
    return r.returncode, r.stdout, r.stderr

def views():
    new = cli_env("env", "--shell", "sh")
    typed = cli_env("env", "--shell", "sh", extra={"VAR_00001": "typed"})
    got = cli_env("get", "VAR_02999")
    return {"rc": [new[0], typed[0], got[0]], "new": new[1], "typed": typed[1], "get": got[1],
            "err": new[2] + typed[2] + got[2]}
"""

ALICE_CACHES_LARGE = (
    ENV_STEP
    + """
home = os.path.expanduser("~")
init = cli_env("init", "--protection", "keyfile")
source = os.path.join(home, "many.env")
with open(os.open(source, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
    f.write("".join(f"VAR_{i:05d}=value-{i:05d}-{'x' * 16}\\n" for i in range(3000)))
imported = cli_env("import", "dotenv", "--remove-source", source)
fill = cli_env("env", "--shell", "sh")
names = [kk._describe(m)[4] for m in kk._keyring_members(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))]
out(setup=[init[0], imported[0], fill[0]], setup_err=init[2] + imported[2] + fill[2], names=names, **views())
"""
)

FIND_LARGE = """
members = {kk._describe(m)[4]: m for m in kk._keyring_members(kk._keyring_id(kk.KEY_SPEC_SESSION_KEYRING))}
record_key = next(m for n, m in members.items() if n.startswith("credstore:render-") and not n.endswith("-layers"))
layers_key = next(m for n, m in members.items() if n.startswith("credstore:render-") and n.endswith("-layers"))
"""

BOB_FLIPS_LAYERS = (
    FIND_LARGE
    + """
raw = kk._read_buffer(kk.KEYCTL_READ, layers_key)
update_key(layers_key, flip(raw, 8 * 40 + 3))  # one bit of the layers entry's key
out(changed=kk._read_buffer(kk.KEYCTL_READ, layers_key) != raw)
"""
)

BOB_SWAPS_LAYERS = (
    FIND_LARGE
    + """
record = kk._read_buffer(kk.KEYCTL_READ, record_key)
update_key(record_key, kk._read_buffer(kk.KEYCTL_READ, layers_key))  # the layers' halves paired with the record's name
update_key(layers_key, record)  # and the record's with the layers' name
out(changed=True)
"""
)

ALICE_VIEWS = ENV_STEP + "\nout(**views())\n"


def test_another_uid_cannot_change_a_large_render_through_its_layers_entry(
    unix_users,
    user_python,
    helper_dir: Path,  # noqa: F811 - the fixture imported above
) -> None:
    """3,000 variables: the record and its layers apart are both sealed with libcrypto. Bob (in alice's session
    keyring) flips a bit of the layers entry's key half, then swaps the two entries' key halves: alice's new shell,
    a name typed in her environment, and ``get`` still print exactly what they printed before (the altered entries
    are dropped and the store is read again)."""
    alice, bob = unix_users.create("csl"), unix_users.create("csm")
    steps = [
        ("alice", ALICE_CACHES_LARGE),
        ("bob-su", BOB_FLIPS_LAYERS),
        ("alice", ALICE_VIEWS),
        ("bob-runuser", BOB_SWAPS_LAYERS),
        ("alice", ALICE_VIEWS),
        ("alice", ALICE_VIEWS),
    ]
    try:
        results = run_scenario(helper_dir, user_python, alice, bob, steps, {"ALICE_UID": str(alice.uid)})
    finally:
        _cleanup_runtime_dirs(alice, bob)
    cached, flipped, after_flip, swapped, after_swap, refilled = (s["out"] for s in results)
    assert cached["setup"] == [0, 0, 0], cached["setup_err"]
    assert any(n.endswith("-layers") for n in cached["names"])  # the layers were kept apart
    assert cached["rc"] == [0, 0, 0], cached["err"]
    assert cached["new"].count("export VAR_") == 3000 and "VAR_00001" not in cached["typed"].split("CREDSTORE_")[0]
    assert cached["get"] == "value-02999-xxxxxxxxxxxxxxxx\n"
    assert flipped["changed"] and swapped["changed"]
    for after in (after_flip, after_swap, refilled):
        assert after["rc"] == [0, 0, 0], after["err"]
        assert (after["new"], after["typed"], after["get"]) == (cached["new"], cached["typed"], cached["get"])
