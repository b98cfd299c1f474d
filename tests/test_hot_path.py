"""What the shell-start hot path imports (deterministic, unlike wall time: see scripts/bench.py for speed)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import CLI, REPO

PROBE = """
import json, sys
from credstore.__main__ import main
code = main(sys.argv[1:])
sys.stdout.flush()
print("\\nMODULES" + json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""
# hashlib/hmac: the system OpenSSL beside the one cryptography links (+4 MiB RSS, see crypto/primitives.py).
HEAVY = ("click", "keyring", "hvac", "requests", "platformdirs", "dataclasses", "argparse", "getpass")
HEAVY += ("hashlib", "hmac")


def _modules(cli: CLI, *args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env={**cli.env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stderr.splitlines() if line.startswith("MODULES"))
    return set(json.loads(line[len("MODULES") :]))


@pytest.fixture
def store(cli: CLI) -> CLI:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input="k" * 40, check=True)
    return cli


@pytest.mark.parametrize("args", [("env",), ("env", "--shell", "fish", "wandb"), ("env", "--format", "json")])
def test_env_does_not_import_the_cli_framework_or_keyring(store: CLI, args: tuple[str, ...]) -> None:
    loaded = _modules(store, *args)
    assert "credstore.resolver.deliver" in loaded  # the probe really ran env
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []


def test_full_cli_still_serves_everything_else(store: CLI) -> None:
    loaded = _modules(store, "list")
    assert "click" in loaded  # the fast path handed over


def test_platformdirs_agrees_with_the_inlined_linux_paths(tmp_path) -> None:
    import platformdirs

    from credstore import config

    env = {"HOME": str(tmp_path)}
    for xdg in ({}, {"XDG_DATA_HOME": str(tmp_path / "d"), "XDG_STATE_HOME": str(tmp_path / "s")}):
        code = (
            "import json, platformdirs\n"
            "from credstore import config\n"
            "import os\n"
            "print(json.dumps([str(config.store_home(os.environ)), platformdirs.user_data_dir('credstore', False),"
            " str(config.state_dir(os.environ)), platformdirs.user_state_dir('credstore', False)]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **xdg, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ours, theirs, our_state, their_state = json.loads(out)
        assert ours == theirs and our_state == their_state
    assert platformdirs and config


# -- the per-login render cache (app/render_cache.py) -------------------------------------------------------------
#
# `lean` runs credstore with `python -S`: no site-packages, so no cryptography, click or keyring can be imported.
# Only the render cache can answer it; when the cache must not answer (something changed), it fails instead. So
# "lean prints X" proves a cache hit with X, and "lean fails, credstore prints Y" proves a miss and the full road.

LEAN = f'lean() {{ PYTHONPATH="{REPO}" "{sys.executable}" -S -m credstore "$@" 2>/dev/null; echo "rc=$?"; }}\n'
SECTION = 'show() { echo "== $1"; }\n'


def sections(out: str) -> dict[str, str]:
    found: dict[str, str] = {}
    name = None
    for line in out.splitlines():
        if line.startswith("== "):
            name = line[3:]
            found[name] = ""
        elif name is not None:
            found[name] += line + "\n"
    return found


LEAN_PROBE = """
import sys
from credstore.__main__ import main
code = main(sys.argv[1:])
sys.stdout.flush()
print("\\nMODULES" + repr(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def test_the_installed_command_imports_nothing_before_credstore(cli: CLI) -> None:
    """``bin/credstore`` (what pip installs as the ``credstore`` command) adds no import of its own: pip's wrapper
    for a [project.scripts] entry point imports ``re`` first, a third of a cached ``env``."""
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_ENTITY", "me", check=True)
    launcher = REPO / "bin" / "credstore"
    probe = f'PYTHONPATH="{REPO}" "{sys.executable}" -S -X importtime "{launcher}" env --shell bash'
    script = f"credstore env --shell bash >/dev/null || exit 10\n{probe}\n"
    from tests.test_protection import in_session

    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    assert "export WANDB_ENTITY='me'" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "credstore.app.render_cache" in imported  # served from the cache
    assert {"re", "enum", "functools", "collections"} & imported == set()


@pytest.mark.parametrize("level", ["keyfile", "passphrase"])
def test_a_cached_env_imports_no_cryptography_click_keyring_hvac_or_pathlib(cli: CLI, level: str) -> None:
    from tests.test_protection import PW, WEAK, in_session, init_passphrase

    if level == "passphrase":
        init_passphrase(cli)
    else:
        cli("init", "--protection", "keyfile", check=True)
    probe = f'PYTHONPATH="{REPO}" "{sys.executable}" -S -c \'{LEAN_PROBE}\' env --shell bash'
    unlock = f"printf '%s\\n' '{PW}' | credstore unlock || exit 9\n" if level == "passphrase" else ""
    unlock += "printf tok-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | credstore set MY_TOKEN 2>/dev/null || exit 8\n"
    script = f"{unlock}full=$(credstore env --shell bash) || exit 10\nprintf '%s\\n' \"$full\"\necho ==\n{probe}\n"
    result = in_session(cli, script, env=WEAK)
    assert result.returncode == 0, result.stderr
    full, cached = result.stdout.split("==\n")
    assert "export MY_TOKEN='tok-" in full
    assert cached.strip() == full.strip()  # the same text, from the cache
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES"))
    loaded = set(ast.literal_eval(line[len("MODULES") :]))
    assert "credstore.app.render_cache" in loaded
    heavy = {"cryptography", "click", "keyring", "hvac", "pathlib", "json", "re", "typing", "hashlib", "hmac"}
    heavy |= {"contextlib", "collections", "enum", "functools", "importlib"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
    # one audit line per env, each name once
    log = (cli.store_dir / "audit.log").read_text().splitlines()
    reads = [json.loads(x) for x in log if '"event":"env"' in x]
    assert len(reads) == 2
    assert reads[-1]["sources"] == {"profile:default": ["MY_TOKEN"]}


def test_every_change_reaches_the_next_env_passphrase_level(cli: CLI) -> None:
    """set, rm, rotate, rollback, passwd, lock, the unlock timeout, a restored older store, protect; --set and the
    environment still win; CREDSTORE_EXPORTED still refreshes what credstore exported and leaves hand-set values."""
    from tests.test_protection import PW, WEAK, in_session, init_passphrase

    init_passphrase(cli)
    pw2 = "another horse battery staple"
    saved = cli.home / "saved.store"
    store = cli.store_dir / "profiles" / "default.store"
    script = (
        LEAN
        + SECTION
        + f"""
printf '%s\\n' '{PW}' | credstore unlock || exit 9
printf v1 | credstore set MY_TOKEN || exit 10
printf o1 | credstore set OTHER_TOKEN || exit 10
credstore env >/dev/null
show hit; lean env
printf v2 | credstore set MY_TOKEN
show set; lean env; credstore env; lean env
credstore rm OTHER_TOKEN >/dev/null 2>&1
show rm; lean env; credstore env
printf v3 | credstore rotate MY_TOKEN >/dev/null 2>&1
show rotate; lean env; credstore env
credstore rotate MY_TOKEN --rollback >/dev/null 2>&1
show rollback; lean env; credstore env; lean env
printf '%s\\n%s\\n' '{PW}' '{pw2}' | credstore passwd 2>/dev/null
show passwd; lean env; credstore env; lean env
show set-arg; lean env --set MY_TOKEN=arg; credstore env --set MY_TOKEN=arg
show environment; MY_TOKEN=typed lean env
eval "$(credstore env)"
env -u MY_TOKEN -u CREDSTORE_EXPORTED sh -c 'printf v4 | credstore set MY_TOKEN; credstore env >/dev/null'
show refresh; lean env
show by-hand; MY_TOKEN=mine lean env
credstore lock 2>/dev/null
show lock; lean env; credstore env; echo "rc=$?"
printf '%s\\n' '{pw2}' | credstore unlock --ttl 3s || exit 11
credstore env >/dev/null
show ttl-hit; lean env
sleep 4
show ttl; lean env; credstore env; echo "rc=$?"
printf '%s\\n' '{pw2}' | credstore unlock || exit 12
cp -p {store} {saved}
printf v5 | credstore set MY_TOKEN
credstore env >/dev/null
cp -p {saved} {store}
show restored; lean env; credstore env; echo "rc=$?"
credstore accept-rollback >/dev/null 2>&1
credstore env >/dev/null
printf '%s\\n' '{pw2}' | credstore protect keyfile >/dev/null 2>&1
show protect; lean env; credstore env; lean env
"""
    )
    result = in_session(cli, script, env=WEAK)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert "export MY_TOKEN='v1'" in got["hit"] and "rc=0" in got["hit"]
    # after each change: the lean run cannot answer (a miss), the full road prints the change, and caches it again
    for step, value in (("set", "v2"), ("rollback", "v2"), ("passwd", "v2"), ("protect", "v4")):
        text = got[step]
        first, _, rest = text.partition("rc=")
        assert "MY_TOKEN" not in first and not rest.startswith("0"), (step, text)
        assert f"export MY_TOKEN='{value}'" in rest, (step, text)
        assert rest.rstrip().endswith("rc=0"), (step, text)  # the next one is a hit again
    assert "OTHER_TOKEN" not in got["rm"] and "rc=0" not in got["rm"].split("\n")[0]
    assert "rc=0" not in got["rotate"].splitlines()[0] and "MY_TOKEN='v3'" in got["rotate"]
    assert "MY_TOKEN='arg'" in got["set-arg"] and got["set-arg"].startswith("rc=") and "rc=0" not in got["set-arg"]
    env_text = got["environment"]
    assert "rc=0" in env_text and "MY_TOKEN=" not in env_text  # a hit, and the environment's value is left alone
    assert "export MY_TOKEN='v4'" in got["refresh"] and "rc=0" in got["refresh"]  # the exported v2 is refreshed
    assert "rc=0" in got["by-hand"] and "MY_TOKEN=" not in got["by-hand"]  # a value typed by hand wins
    assert got["lock"].splitlines() == [got["lock"].splitlines()[0], "rc=4"] and "rc=0" not in got["lock"]
    assert "rc=0" in got["ttl-hit"]
    assert "MY_TOKEN" not in got["ttl"] and got["ttl"].rstrip().endswith("rc=4") and "rc=0" not in got["ttl"]
    assert "MY_TOKEN" not in got["restored"] and got["restored"].rstrip().endswith("rc=11")


def test_a_service_rotation_by_the_admin_reaches_the_next_env(cli: CLI, tmp_path) -> None:
    import grp
    import os

    from tests.test_protection import in_session

    cli.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "shared")
    group = grp.getgrgid(os.getegid()).gr_name
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_USERNAME", "me", check=True)
    cli("service", "add", "team", "--group", group, check=True)
    cli("service", "allow", "team", "TEAM_TOKEN", check=True)  # not a catalog name: the admin allows it
    cli("service", "set", "team", "TEAM_TOKEN", input="t1", check=True)
    cli("use-service", "team", check=True)
    script = (
        LEAN
        + SECTION
        + """
credstore env >/dev/null
show hit; lean env
printf t2 | credstore rotate TEAM_TOKEN --service team >/dev/null 2>&1
show rotated; lean env; credstore env; lean env
show explicit; credstore env --service team >/dev/null; lean env --service team; lean env
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert "export TEAM_TOKEN='t1'" in got["hit"] and "rc=0" in got["hit"]
    first, _, rest = got["rotated"].partition("rc=")
    assert "TEAM_TOKEN" not in first and not rest.startswith("0")
    assert "export TEAM_TOKEN='t2'" in rest and rest.rstrip().endswith("rc=0")
    # --service on the command line is its own request: cached for it, and the plain request then misses once
    explicit = got["explicit"].split("rc=")
    assert "TEAM_TOKEN='t2'" in explicit[0] and explicit[1].startswith("0")


def test_another_login_of_the_account_does_not_get_the_cached_render(cli: CLI) -> None:
    """Login A unlocks and runs env (cache written); login B of the same account finds the store locked, and its
    lean run (which only the cache could answer) fails: B does not possess A's session keyring half."""
    from tests.test_protection import PW, WEAK, in_session, init_passphrase

    init_passphrase(cli)
    a = in_session(
        cli, f"printf '%s\\n' '{PW}' | credstore unlock && printf secret-of-a | credstore set MY_TOKEN", env=WEAK
    )
    assert a.returncode == 0, a.stderr
    # A's login ended with its shell here, so run both logins at once: A keeps its keyring alive while B tries.
    sync = cli.home / "sync"
    script_a = (
        LEAN
        + f"""
printf '%s\\n' '{PW}' | credstore unlock || exit 9
credstore env >/dev/null
lean env > {sync}.lean
touch {sync}.a
i=0; while [ ! -e {sync}.b ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
"""
    )
    import shutil

    keyctl = shutil.which("keyctl")
    from tests.test_protection import shell_env

    proc = subprocess.Popen([keyctl, "session", "-", "bash", "-c", script_a], env=shell_env(cli, WEAK), cwd=cli.home)
    try:
        import time

        deadline = time.monotonic() + 60
        while not (cli.home / "sync.a").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        b = in_session(cli, LEAN + 'lean env; credstore env; echo "rc=$?"', env=WEAK)
    finally:
        (cli.home / "sync.b").touch()
        proc.wait(timeout=60)
    a_lean = (cli.home / "sync.lean").read_text()
    assert "export MY_TOKEN='secret-of-a'" in a_lean and "rc=0" in a_lean  # A's own next env is a cache hit
    assert "secret-of-a" not in b.stdout
    assert b.stdout.split() == ["rc=1", "rc=4"] or b.stdout.split()[-1] == "rc=4"
    assert "rc=0" not in b.stdout


def _record_for(gathered, chosen: bool):  # noqa: ANN001, ANN202
    from credstore.app import render_cache
    from credstore.resolver.exported import Fingerprinter

    record = render_cache.Record()
    record.fp_key = gathered.fp_key
    fp = Fingerprinter(gathered.fp_key) if gathered.fp_key else None
    for layer in gathered.layers:
        if layer.source in ("argument", "environment"):
            continue
        values = {n: (v.value, v.secret, fp(n, v.value) if fp else "") for n, v in layer.values.items()}
        record.layers.append((layer.source, values))
    if gathered.service:
        record.service, record.service_source, record.service_chosen = gathered.service, gathered.service_source, chosen
    return render_cache.decode(render_cache.encode(record))  # through the stored form


@pytest.mark.parametrize("service", [None, "default", "chosen"])
@pytest.mark.parametrize("fp_key", ["", "5a" * 32])
def test_the_cached_plan_is_the_resolver_plan(service: str | None, fp_key: str) -> None:
    """The lean plan (app/render_cache.py) against resolver/plan.py, over environments that exercise precedence and
    the refresh marker: nothing set, credstore's own exports, a value changed by hand, a stale marker entry, a
    value exported before a rotation (not cached: its fingerprint is computed)."""
    from credstore.app import render_cache
    from credstore.resolver.exported import MARKER, fingerprint
    from credstore.resolver.gather import ServiceValues, gather
    from credstore.store.base import Entry, Snapshot

    key = bytes.fromhex(fp_key) if fp_key else b""
    entries = {"A": Entry("A", "a1"), "B": Entry("B", "b'1", secret=False), "C": Entry("C", "c\n1")}
    snapshot = Snapshot(entries=entries, settings={"fingerprint_key": fp_key} if fp_key else {})
    svc_entries = {"A": Entry("A", "svc-a"), "S": Entry("S", "s1")}
    values = None if service is None else ServiceValues("team", "service:team", svc_entries, service == "chosen")

    def fps(pairs: dict[str, str]) -> str:
        return "v1 " + " ".join(f"{n}:{fingerprint(key, n, v) if key else 'x'}" for n, v in sorted(pairs.items()))

    environs = [
        {},
        {"A": "a1", "B": "b'1", MARKER: fps({"A": "a1", "B": "b'1"})},
        {"A": "typed", MARKER: fps({"A": "a1"})},
        {"A": "old-before-rotation", "GONE": "g", MARKER: fps({"A": "old-before-rotation", "GONE": "g"})},
        {"S": "by-hand", "C": "c\n1", MARKER: "garbage"},
        {MARKER: fps({"A": "a1"})},
    ]
    for environ in environs:
        gathered = gather("profile:default", snapshot, [], {}, environ, values)
        expected = gathered.plan(environ)
        got = render_cache.plan(_record_for(gathered, service == "chosen"), environ)
        if gathered.warnings:
            assert got is None
            continue
        assert got is not None
        assignments, unsets, delivered = got
        assert assignments == expected.assignments, environ
        assert unsets == expected.unsets, environ
        assert delivered == {r.name: r.source for r in gathered.resolved() if r.source != "environment"}


def test_lean_helpers_agree_with_the_reference_ones(tmp_path) -> None:
    from credstore import config
    from credstore.app import render_cache
    from credstore.crypto.primitives import hmac_sha256
    from credstore.resolver.exported import fingerprint
    from credstore.shells import check_name

    for environ in (
        {"HOME": str(tmp_path)},
        {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "d")},
        {"HOME": str(tmp_path), "CREDSTORE_HOME": str(tmp_path / "h")},
        {"HOME": str(tmp_path), "CREDSTORE_HOME": "~/x"},
        {"HOME": str(tmp_path), "CREDSTORE_HOME": "~/a/../x/./y/"},
        {"HOME": str(tmp_path), "CREDSTORE_HOME": "rel//x"},
        {"HOME": str(tmp_path), "CREDSTORE_HOME": "//net/x"},
        {"HOME": str(tmp_path), "CREDSTORE_HOME": "///x"},
        {"HOME": f"{tmp_path}//h/./home/"},
        {"HOME": str(tmp_path), "XDG_DATA_HOME": f"{tmp_path}//data/"},
        {"HOME": str(tmp_path), "XDG_DATA_HOME": "relative/data"},
    ):
        assert render_cache.store_home(environ) == str(config.store_home(environ))
    for key in (b"", b"k", b"k" * 64, b"k" * 65, bytes(range(200))):
        for message in (b"", b"x", b"A\0value" * 50):
            assert render_cache._hmac_sha256(key, message) == hmac_sha256(key, message)  # noqa: SLF001
    assert render_cache.fingerprint(b"k" * 32, "A", "v\u00e9") == fingerprint(b"k" * 32, "A", "v\u00e9")
    from credstore.resolver.layers import MASK

    assert render_cache.MASK == MASK

    for name in ("A", "_", "a1", "1a", "", "A-B", "\u00e9", "A B", "ABC_def_123", "\u0661", "a\n"):
        ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None
        try:
            check_name(name)
            assert ok, name
        except Exception:
            assert not ok, name


def test_the_lazy_command_table_matches_every_command_module() -> None:
    import importlib
    import pkgutil

    import credstore.cli
    from credstore.cli import main

    defined = {}
    for info in pkgutil.iter_modules(credstore.cli.__path__):
        module = importlib.import_module(f"credstore.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            defined[command.name] = info.name
    assert defined == main.COMMAND_MODULES


@pytest.mark.parametrize(("command", "module"), [("list", "entries"), ("get", "entries"), ("explain", "delivery")])
def test_list_get_explain_import_only_their_own_command_module(store: CLI, command: str, module: str) -> None:
    loaded = _modules(store, command, *(["WANDB_API_KEY"] if command == "get" else []))
    assert "click" in loaded
    cli_modules = {m for m in loaded if m.startswith("credstore.cli.")}
    others = {"credstore.cli." + m for m in ("protection", "service", "rotation", "imports", "vault")} - {
        "credstore.cli." + module
    }
    assert f"credstore.cli.{module}" in cli_modules
    assert not cli_modules & others


def test_exec_and_get_use_the_render_cache_with_the_same_rules(cli: CLI) -> None:
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    cli("set", "MY_TOKEN", input="v1", check=True)
    show = "sh -c 'echo \"T=[$MY_TOKEN] M=[${CREDSTORE_EXPORTED-unset}]\"'"
    script = (
        LEAN
        + SECTION
        + f"""
credstore env >/dev/null
show exec; lean exec -- {show}
show typed; MY_TOKEN=typed lean exec -- {show}
show get; lean get MY_TOKEN
show missing; lean exec -- no-such-command-here
printf v2 | credstore set MY_TOKEN 2>/dev/null
show after-set; lean exec -- {show}; lean get MY_TOKEN; credstore exec -- {show}; credstore get MY_TOKEN
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert got["exec"] == "T=[v1] M=[unset]\nrc=0\n"  # the marker never reaches the command
    assert got["typed"] == "T=[typed] M=[unset]\nrc=0\n"  # the environment still wins
    assert got["get"] == "v1\nrc=0\n"
    assert got["missing"] == "rc=127\n"
    after = got["after-set"]
    assert after.startswith("rc=1\nrc=1\n") and "T=[v2]" in after and after.rstrip().endswith("v2")
    log = [json.loads(x) for x in (cli.store_dir / "audit.log").read_text().splitlines()]
    cached_exec = [e for e in log if e["event"] == "exec"][0]
    assert cached_exec["command"] == "sh" and cached_exec["sources"] == {"profile:default": ["MY_TOKEN"]}
    assert any(e["event"] == "get" and audit_names(e) == ["MY_TOKEN"] for e in log)


def audit_names(item: dict) -> list[str]:
    from credstore import audit

    return audit.names_of(item)


def test_an_automatic_profile_choice_is_left_to_the_full_road(cli: CLI) -> None:
    """With profiles/ssh-agent.index (profiles chosen by the keys of the person's ssh-agent), a plain `env` is not
    answered by the cache, which would otherwise assume `default`; --profile and $CREDSTORE_PROFILE still are."""
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    cli("set", "MY_TOKEN", input="v1", check=True)
    index = cli.store_dir / "profiles" / "ssh-agent.index"
    script = (
        LEAN
        + SECTION
        + f"""
credstore env >/dev/null
show plain; lean env
: > {index}
show indexed; lean env
show named; lean --profile default env; CREDSTORE_PROFILE=default lean env
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert "MY_TOKEN='v1'" in got["plain"] and "rc=0" in got["plain"]
    assert got["indexed"].strip().startswith("rc=") and "rc=0" not in got["indexed"]
    assert got["named"].count("rc=0") == 2


FULL = (
    f'full() {{ PYTHONPATH="{REPO}" "{sys.executable}" -c '
    "'import sys; from credstore.cli.main import cli; cli(sys.argv[1:], prog_name=\"credstore\")' "
    '"$@" 2>/dev/null; echo "rc=$?"; }\n'
)


def test_list_and_explain_from_the_render_cache_print_what_the_full_road_prints(cli: CLI) -> None:
    """A cached `list` / `explain` (with or without --json) is the click command's text, byte for byte, in every
    precedence case: a value typed into the shell, credstore's own exports (refreshed), one changed by hand since;
    and it loads neither click nor cryptography."""
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    cli("set", "MY_TOKEN", input="tok-1", check=True)
    cli("set", "WANDB_ENTITY", "team", check=True)
    cli("set", "WANDB_PROJECT", "proj", check=True)
    cases = ["list", "list --json", "explain", "explain --json"]
    compare = "".join(f"say {{0}} {case}; lean {case}; say {{0}} {case} full; full {case}\n" for case in cases)
    probe = f'PYTHONPATH="{REPO}" "{sys.executable}" -S -c \'{LEAN_PROBE}\''
    script = (
        LEAN
        + FULL
        + 'say() { echo "== $*"; }\n'
        + "credstore env >/dev/null\n"
        + compare.format("plain")
        + "export MY_TOKEN=typed\n"
        + compare.format("typed")
        + 'unset MY_TOKEN; eval "$(credstore env)"\n'
        + compare.format("exported")
        + "WANDB_PROJECT=changed\n"
        + compare.format("changed")
        + f"{probe} list >/dev/null; {probe} explain >/dev/null\n"
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert len(got) == 32, result.stdout[:3000]
    for situation in ("plain", "typed", "exported", "changed"):
        for case in cases:
            lean, full = (re.sub(r"\b\d+s\b", "Ns", got[f"{situation} {case}{how}"]) for how in ("", " full"))
            assert lean == full, (situation, case)  # the same text, but for an AGE that ticked in between
            assert got[f"{situation} {case}"].endswith("rc=0\n")
    assert "MY_TOKEN: environment = ********  (shadows profile:default)" in got["typed explain"]
    assert "MY_TOKEN: profile:default = ********\n" in got["exported explain"]
    assert "WANDB_PROJECT: environment = changed  (shadows profile:default)" in got["changed explain"]
    assert "WANDB_ENTITY   wandb    no" in got["plain list"] and "tok-1" not in result.stdout
    probes = [line for line in result.stderr.splitlines() if line.startswith("MODULES")]
    assert len(probes) == 2
    for line in probes:
        loaded = set(ast.literal_eval(line[len("MODULES") :]))
        assert "credstore.app.render_cache" in loaded
        assert sorted(m for m in loaded if m.split(".")[0] in {"click", "cryptography", "json", "re"}) == []


def test_list_and_explain_leave_what_the_cache_does_not_hold_to_the_full_road(cli: CLI, tmp_path) -> None:
    """`explain` with a default service account (what its admin allowed is not cached), an empty profile (`list`
    says so on stderr) and any option beyond --json go through click, with its text."""
    import grp
    import os

    from tests.test_protection import in_session

    cli.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "shared")
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_ENTITY", "team", check=True)
    cli("set", "WANDB_USERNAME", "me", check=True)
    cli("service", "add", "team", "--group", grp.getgrgid(os.getegid()).gr_name, check=True)
    cli("service", "allow", "team", "TEAM_TOKEN", check=True)
    cli("service", "set", "team", "TEAM_TOKEN", input="t1", check=True)
    script = (
        LEAN
        + SECTION
        + f"""
credstore env >/dev/null
probe() {{ PYTHONPATH="{REPO}" "{sys.executable}" -c '{LEAN_PROBE}' "$@" 2>&1 >/dev/null | grep -c "'click'"; }}
show plain; probe list; probe explain
show options; probe explain WANDB_ENTITY; probe list --json --json
credstore use-service team 2>/dev/null; credstore env >/dev/null
show service; probe explain; credstore explain | grep TEAM_TOKEN; probe list
credstore use-service --none || exit 7; credstore rm WANDB_ENTITY 2>/dev/null; credstore rm WANDB_USERNAME 2>/dev/null
credstore env >/dev/null
show empty; probe list; credstore list
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert got["plain"] == "0\n0\n"
    assert got["options"] == "1\n1\n"
    assert got["service"] == "1\nTEAM_TOKEN: service:team = ********  (allowed by the service's admin)\n0\n"
    assert got["empty"] == "1\n"
    assert "profile 'default' is empty" in result.stderr


def test_a_profile_of_more_than_listing_max_entries_is_listed_by_the_full_road(cli: CLI) -> None:
    """Every `env` decrypts what the cache keeps for `list`, so it keeps it only up to LISTING_MAX entries; a
    larger profile's `list` is answered by click, with the same rows."""
    from credstore.app.render_cache import LISTING_MAX
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    dotenv = cli.home / "many.env"
    dotenv.write_text("".join(f"V_{i:05d}=v{i}\n" for i in range(LISTING_MAX + 1)))
    dotenv.chmod(0o600)
    cli("import", "dotenv", "--remove-source", str(dotenv), check=True)
    probe = f'PYTHONPATH="{REPO}" "{sys.executable}" -c \'{LEAN_PROBE}\''
    script = f"credstore env >/dev/null\n{probe} list | grep -c '^default  V_'\n{probe} explain | grep -c '^V_'\n"
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(LISTING_MAX + 1)] * 2
    probes = [set(ast.literal_eval(x[len("MODULES") :])) for x in result.stderr.splitlines() if x.startswith("MODULES")]
    assert ["click" in loaded for loaded in probes] == [True, False]  # list by click, explain still from the cache


def test_a_directory_opened_to_others_stops_the_cache_as_it_stops_the_full_road(cli: CLI) -> None:
    """The full road refuses a store directory others can enter, or a parent others can write (exit 8); the cache
    watches the same directories, so a cached env, get, list or explain refuses too instead of answering."""
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_ENTITY", "team", check=True)
    profiles = cli.store_dir / "profiles"
    script = (
        LEAN
        + SECTION
        + f"""
credstore env >/dev/null
show before; lean env; lean list
chmod 777 {profiles}
show opened; lean env; lean get WANDB_ENTITY; lean list; lean explain; credstore env; echo "full=$?"
chmod 700 {profiles}; chmod 777 {cli.store_dir}
show parent; lean env; credstore env; echo "full=$?"
chmod 700 {cli.store_dir}; credstore env >/dev/null
show again; lean env
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert got["before"].count("rc=0") == 2
    # a miss (lean runs without site-packages, so only the cache can answer it), and the full road refuses
    assert got["opened"] == "rc=1\n" * 4 + "full=8\n" and "team" not in got["opened"]
    assert got["parent"] == "rc=1\nfull=8\n"
    assert "export WANDB_ENTITY='team'" in got["again"] and "rc=0" in got["again"]
    assert "is accessible by other users" in result.stderr and "writable by group or others" in result.stderr


def test_control_characters_of_a_value_reach_no_terminal_through_list_or_explain(cli: CLI) -> None:
    """A plain value with an escape sequence (one a service's admin set, say) is shown escaped by `list` and
    `explain`, from the cache and from the full road alike; --json escapes it as JSON does."""
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    cli("set", "--plain", "MY_NOTE", input="a\x1b]0;pwned\x07\x1b[2Jb", check=True)
    cli("set", "--plain", "MY_SIDE", input="x\u202eevil\u2066y\u2028z", check=True)
    script = LEAN + FULL + 'say() { echo "== $*"; }\ncredstore env >/dev/null\n'
    for case in ("list", "explain", "list --json"):
        script += f"say {case}; lean {case}; say {case} full; full {case}\n"
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\u202e" not in result.stdout and "\u2066" not in result.stdout and "\u2028" not in result.stdout
    assert "MY_SIDE: profile:default = x\\u202eevil\\u2066y\\u2028z" in got["explain"]
    assert got["explain"] == got["explain full"] and got["explain"].endswith("rc=0\n")
    assert "MY_NOTE: profile:default = a\\x1b]0;pwned\\x07\\x1b[2Jb\n" in got["explain"]
    assert "a\\x1b]0;pwned\\x07\\x1b[2Jb" in got["list"] and got["list"].endswith("rc=0\n")
    assert '"value": "a\\u001b]0;pwned\\u0007\\u001b[2Jb"' in got["list --json"]


def test_a_service_directory_opened_to_others_stops_the_cache_as_it_stops_the_full_road(cli: CLI, tmp_path) -> None:
    """The full road refuses a service directory everyone may enter and a shared root others may write (exit 8);
    the cache watches the service's directory and every one above it, so it does not answer either."""
    import grp
    import os

    from tests.test_protection import in_session

    shared = tmp_path / "shared"
    cli.env["CREDSTORE_SHARED_DIR"] = str(shared)
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_USERNAME", "me", check=True)
    cli("service", "add", "team", "--group", grp.getgrgid(os.getegid()).gr_name, check=True)
    cli("service", "allow", "team", "TEAM_TOKEN", check=True)
    cli("service", "set", "team", "TEAM_TOKEN", input="t1", check=True)
    cli("use-service", "team", check=True)
    script = (
        LEAN
        + SECTION
        + f"""
credstore env >/dev/null
show before; lean env
chmod o+rwx {shared / "team"}
show service-dir; lean env; credstore env >/dev/null; echo "full=$?"
chmod o-rwx {shared / "team"}; credstore env >/dev/null
show again; lean env
chmod o+w {shared}
show root; lean env; credstore env >/dev/null; echo "full=$?"
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert "export TEAM_TOKEN='t1'" in got["before"] and "rc=0" in got["before"]
    assert got["service-dir"] == "rc=1\nfull=8\n"  # a miss (lean has no site-packages), and the full road refuses
    assert "export TEAM_TOKEN='t1'" in got["again"] and "rc=0" in got["again"]
    assert got["root"] == "rc=1\nfull=8\n"


def test_an_unusual_spelling_of_the_store_home_still_gets_the_cache(cli: CLI) -> None:
    """`CREDSTORE_HOME=~/a/../x/` and a doubled slash name the same store; the lean path spells the home as
    config.py does, so the cache is filled and used (it was never used before)."""
    from tests.test_protection import in_session

    home = str(cli.store_dir)
    cli.env["CREDSTORE_HOME"] = f"{home}/../{cli.store_dir.name}/./"
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_ENTITY", "team", check=True)
    result = in_session(cli, LEAN + SECTION + "credstore env >/dev/null\nshow hit; lean env\n")
    assert result.returncode == 0, result.stderr
    hit = sections(result.stdout)["hit"]
    assert "export WANDB_ENTITY='team'" in hit and "rc=0" in hit


def test_a_large_profile_is_served_prepared_to_a_new_shell_and_as_the_full_road_serves_it(cli: CLI) -> None:
    """3,000 variables: the record is sealed with libcrypto and its layers are kept apart. A new shell gets the
    prepared text (``Record.clean``), byte for byte the full road's, with the same audit line and without
    cryptography or click; every other case (a stored name in the environment, credstore's own exports refreshed,
    ``--hook``, ``exec``, ``get``) still equals the full road; without the layers kept apart, only the new shell is
    answered from the cache."""
    from credstore.app import render_cache
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    dotenv = cli.home / "many.env"
    dotenv.write_text("".join(f"VAR_{i:05d}=value-{i:05d}-{'x' * 16}\n" for i in range(3000)))
    dotenv.chmod(0o600)
    cli("import", "dotenv", "--remove-source", str(dotenv), check=True)
    name = render_cache.secret_name(str(cli.store_dir), "default", {})
    probe = f'PYTHONPATH="{REPO}" "{sys.executable}" -S -c \'{LEAN_PROBE}\' env --shell bash'
    where = "from credstore.crypto import session_secret as s; print(s.runtime_directory())"
    show = "sh -c 'echo \"A=[$VAR_00001] Z=[$VAR_02999] M=[${CREDSTORE_EXPORTED-unset}]\"'"
    script = (
        LEAN
        + FULL
        + SECTION
        + f"""
credstore env --shell bash >/dev/null
d=$(PYTHONPATH="{REPO}" "{sys.executable}" -c "{where}")
show forms; for f in "$d"/{name}.* "$d"/{name}-layers.*; do head -c 4 "$f" | od -An -c | tr -d ' '; done
show new-lean; lean env --shell bash
show new-full; full env --shell bash
show probe; {probe} >/dev/null; echo "rc=$?"
show hook-lean; lean env --shell bash --hook
show typed-lean; VAR_00001=typed lean env --shell bash
show typed-full; VAR_00001=typed full env --shell bash
eval "$(credstore env --shell bash)"
show exported-lean; lean env --shell bash
show exported-full; full env --shell bash
unset $(compgen -v VAR_) $(compgen -v CREDSTORE_EXPORTED)
show exec; lean exec -- {show}
show get; lean get VAR_02999
keyctl invalidate "$(keyctl search @s user credstore:{name}-layers)"
show apart-gone-new; lean env --shell bash | tail -n 1
show apart-gone-zsh; lean env --shell zsh | tail -n 1
show apart-gone-fish; lean env --shell fish | tail -n 1
show apart-gone-typed; VAR_00001=typed lean env --shell bash | tail -n 1
show apart-gone-exec; lean exec -- true
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    forms = got["forms"].split()
    assert len(forms) == 2 and forms[0] == "CSS002"  # the record sealed by libcrypto; its layers kept apart
    for case in ("new", "typed", "exported"):
        lean, full = got[f"{case}-lean"], got[f"{case}-full"]
        assert lean.endswith("rc=0\n") and lean == full, case
    assert got["new-lean"].count("\nexport VAR_") == 2999 and "CREDSTORE_EXPORTED=" in got["new-lean"]
    assert "VAR_00001" not in got["typed-lean"].split("CREDSTORE_EXPORTED")[0]  # the environment decides
    hooked = got["hook-lean"].removeprefix(got["new-lean"].removesuffix("rc=0\n"))
    assert re.fullmatch(r"export CREDSTORE_GENERATION='[0-9a-f]{32}'\nrc=0\n", hooked)
    assert got["exec"] == "A=[value-00001-xxxxxxxxxxxxxxxx] Z=[value-02999-xxxxxxxxxxxxxxxx] M=[unset]\nrc=0\n"
    assert got["get"] == "value-02999-xxxxxxxxxxxxxxxx\nrc=0\n"
    assert got["apart-gone-new"].endswith("rc=0\n")  # the new shell needs only the record
    assert got["apart-gone-zsh"] == got["apart-gone-new"]  # zsh gets bash's text: prepared once for both
    assert got["apart-gone-fish"] == "rc=1\n"  # another syntax: through the layers, which are gone
    assert got["apart-gone-typed"] == "rc=1\n" and got["apart-gone-exec"] == "rc=1\n"  # the rest: the full road
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES"))
    loaded = set(ast.literal_eval(line[len("MODULES") :]))
    assert "credstore.crypto.libcrypto" in loaded
    heavy = {"cryptography", "click", "keyring", "hvac", "pathlib", "json", "re", "typing", "hashlib", "hmac"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
    # the prepared audit line is the full road's, but for when, by which process
    log = [json.loads(x) for x in (cli.store_dir / "audit.log").read_text().splitlines()]
    reads = [e for e in log if e["event"] == "env"]
    first, prepared = reads[0], reads[1]
    for item in (first, prepared):
        for field in ("time", "ts", "pid"):
            item.pop(field)
    assert prepared == first
    assert prepared["sources"] == {"profile:default": [f"VAR_{i:05d}" for i in range(3000)]}


@pytest.mark.parametrize("fmt", ["json", "dotenv"])
def test_a_file_format_env_keeps_the_prepared_text_for_a_new_shell(cli: CLI, fmt: str) -> None:
    """A script's ``env --format json`` (or dotenv) refills the cache on the full road. The record it keeps must
    still carry the text prepared for this login's shell: the next ``env`` is a cache hit that never refills, so a
    record without it would leave every new shell on the per-variable road until the store changes."""
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    cli("set", "MY_TOKEN", input="tok-1", check=True)
    show = (
        f'PYTHONPATH="{REPO}" "{sys.executable}" -S -c "import os; from credstore.app import render_cache as r; '
        "rec = r.load('default', os.environ); print('shell=' + (rec.shell if rec else 'none'))\""
    )
    script = (
        LEAN
        + SECTION
        + f"""
export SHELL=/bin/bash
credstore env >/dev/null
show shell-fill; {show}
credstore env --format {fmt} >/dev/null
show file-fill; {show}
show new; lean env
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr
    got = sections(result.stdout)
    assert got["shell-fill"] == "shell=bash\n"
    assert "export MY_TOKEN='tok-1'" in got["new"] and got["new"].endswith("rc=0\n")
    assert got["file-fill"] == "shell=bash\n"  # still prepared for the shell of $SHELL


@given(
    names=st.sets(
        st.text(alphabet="AB_1\u00e9\n", min_size=1, max_size=5).filter(lambda n: "\n" not in n), max_size=40
    ),
    probes=st.lists(st.text(alphabet="AB_1\u00e9\n", max_size=6), max_size=20),
)
def test_a_stored_name_is_found_by_the_binary_search_exactly_when_it_is_stored(names: set[str], probes: list[str]):
    """``Record.stores_any`` looks a new shell's variable names up in the stored, sorted list without splitting it."""
    from credstore.app.render_cache import _in_sorted_lines

    listed = sorted(name.encode() for name in names)
    body = b"\n" + b"\n".join(listed) + b"\n" if listed else b""
    data = bytearray(b"head\0" + body + b"\0tail")
    for probe in [*names, *probes]:
        assert _in_sorted_lines(data, 5, 5 + len(body), probe.encode()) == (probe in names)
