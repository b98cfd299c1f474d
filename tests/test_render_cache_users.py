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
