"""``git-credential-credstore`` with the real git: ``git credential fill / approve / reject`` with
``credential.helper=credstore`` in the person's ~/.gitconfig, Hugging Face's token for huggingface.co,
huggingface_hub's helper detection (offline: only its git part), ``credstore import git-credentials`` and the
doctor finding for ``credential.helper=store``.

git finds the helper as ``git-credential-credstore`` on PATH, written from pyproject.toml's script-files (bin/) as an
install would (tests/integration_support.py). ``GIT_TERMINAL_PROMPT=0``: a git that would prompt fails instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from credstore.audit import names_of
from tests.conftest import CLI
from tests.fixtures_services import require_binary
from tests.integration_support import Registered, register_checkout

HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345"  # the shape of a Hugging Face token
TOKEN = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    return register_checkout(tmp_path_factory.mktemp("registered"))


class Person:
    """A home with a credstore profile and git, as one person on a headless box."""

    def __init__(self, registered: Registered, home: Path) -> None:
        self.home = home
        self.git = require_binary("git")
        self.env = registered.env(home, GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1")
        self.cli = CLI(home)
        self.cli.env = dict(self.env)

    def run(self, *argv: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=120,
            cwd=self.home,
        )

    def credential(self, action: str, text: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.git, "credential", action, input=text)

    def fill(self, text: str) -> dict[str, str] | None:
        """git's answer as a dict, None when git found nothing (it would have prompted)."""
        result = self.credential("fill", text)
        if result.returncode != 0:
            return None
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


@pytest.fixture
def person(registered: Registered, tmp_path: Path) -> Person:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    p = Person(registered, home)
    p.cli("init", "--protection", "keyfile", check=True)
    assert p.run(p.git, "config", "--global", "credential.helper", "credstore").returncode == 0
    return p


def test_approve_fill_reject(person: Person) -> None:
    assert person.fill("protocol=https\nhost=git.example.org\n\n") is None  # nothing stored: git would prompt
    approved = person.credential("approve", f"protocol=https\nhost=git.example.org\nusername=alice\npassword={TOKEN}\n")
    assert approved.returncode == 0 and approved.stdout == ""
    answer = person.fill("protocol=https\nhost=git.example.org\n\n")
    assert answer == {"protocol": "https", "host": "git.example.org", "username": "alice", "password": TOKEN}
    # git parses URLs into protocol / host (with port) / path before asking the helper.
    assert person.fill("url=https://git.example.org/team/repo.git\n\n")["password"] == TOKEN
    assert person.fill("url=https://git.example.org:8443/team/repo.git\n\n") is None
    assert person.fill("protocol=https\nhost=git.example.org\nusername=bob\n\n") is None  # another user
    assert person.fill("protocol=http\nhost=git.example.org\n\n") is None  # another protocol

    # A reject carrying an older password does not erase the current one; the matching one does.
    person.credential("reject", "protocol=https\nhost=git.example.org\nusername=alice\npassword=old\n")
    assert person.fill("protocol=https\nhost=git.example.org\n\n")["password"] == TOKEN
    rejected = person.credential("reject", f"protocol=https\nhost=git.example.org\nusername=alice\npassword={TOKEN}\n")
    assert rejected.returncode == 0 and rejected.stdout == ""
    assert person.fill("protocol=https\nhost=git.example.org\n\n") is None

    listed = json.loads(person.cli("keyring", "list", "--json", check=True).stdout)
    assert listed == []
    for path in person.home.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_paths_usernames_and_store_without_username(person: Person) -> None:
    person.run(person.git, "config", "--global", "credential.useHttpPath", "true")
    person.credential("approve", "protocol=https\nhost=h.example\npath=a/b.git\nusername=u\npassword=p-ab\n")
    person.credential("approve", "protocol=https\nhost=h.example\npath=c.git\nusername=u\npassword=p-c\n")
    assert person.fill("url=https://h.example/a/b.git\n\n")["password"] == "p-ab"
    assert person.fill("url=https://h.example/c.git\n\n")["password"] == "p-c"
    # The helper alone, as git runs it: no username stored, then a lookup with none.
    helper = "git-credential-credstore"
    stored = person.run(helper, "store", input="protocol=https\nhost=t.example\npassword=tok\n\n")
    assert stored.returncode == 0 and stored.stdout == ""
    got = person.run(helper, "get", input="protocol=https\nhost=t.example\n\n")
    assert got.stdout == "password=tok\n"
    assert person.cli("keyring", "get", "git:https://t.example", check=True).stdout == "tok\n"


def test_protocol_rules_unknown_operations_and_keys(person: Person) -> None:
    helper = "git-credential-credstore"
    person.credential("approve", "protocol=https\nhost=x.example\nusername=u\npassword=pw\n")
    for operation in ("capability", "frobnicate"):
        ignored = person.run(helper, operation, input="protocol=https\nhost=x.example\n\n")
        assert (ignored.returncode, ignored.stdout, ignored.stderr) == (0, "", "")
    # Keys git added later (capabilities, wwwauth[], state) and unknown ones are ignored; the blank line ends input.
    text = (
        "capability[]=authtype\nwwwauth[]=Basic realm=x\nprotocol=https\nfuture-key=1\nhost=x.example\n\n"
        "host=other.example\n"
    )
    got = person.run(helper, "get", input=text)
    assert got.stdout == "username=u\npassword=pw\n" and got.returncode == 0
    nothing = person.run(helper, "get", input="protocol=https\n\n")  # no host: nothing to look up
    assert (nothing.returncode, nothing.stdout) == (0, "")
    usage = person.run(helper)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_a_locked_store_never_prompts(registered: Registered, tmp_path: Path) -> None:
    from tests.test_protection import in_session

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    p = Person(registered, home)
    p.run(p.git, "config", "--global", "credential.helper", "credstore")
    made = in_session(
        p.cli,
        "printf 'pw\\n' | credstore init --protection passphrase && "
        "printf 'protocol=https\\nhost=l.example\\nusername=u\\npassword=pw\\n' | git credential approve && "
        "credstore lock",
        env={**p.env, "CREDSTORE_TEST_WEAK_KDF": "1"},
    )
    assert made.returncode == 0, made.stderr
    result = p.credential("fill", "protocol=https\nhost=l.example\n\n")
    assert result.returncode != 0 and "password=" not in result.stdout  # git would now prompt; it may not
    assert "credstore: git credential get: profile 'default' is locked" in result.stderr


def test_huggingface_answered_with_hf_token(person: Person) -> None:
    assert person.fill("protocol=https\nhost=huggingface.co\n\n") is None
    person.cli("set", "HF_TOKEN", input=HF_TOKEN, check=True)
    answer = person.fill("url=https://huggingface.co/datasets/org/name\n\n")
    assert (answer["username"], answer["password"]) == ("hf_user", HF_TOKEN)
    assert person.fill("protocol=https\nhost=huggingface.co\nusername=alice\n\n")["username"] == "alice"
    assert person.fill("protocol=https\nhost=example.org\n\n") is None  # only Hugging Face gets the token
    # A git credential stored for huggingface.co wins over HF_TOKEN.
    person.credential("approve", "protocol=https\nhost=huggingface.co\nusername=hf_user\npassword=hf_stored\n")
    assert person.fill("protocol=https\nhost=huggingface.co\n\n")["password"] == "hf_stored"
    events = [json.loads(line) for line in (person.cli.store_dir / "audit.log").read_text().splitlines()]
    assert any(e["event"] == "get" and names_of(e) == ["HF_TOKEN"] and e.get("via") == "git-credential" for e in events)


def test_huggingface_hub_detects_the_helper_and_stores_through_it(person: Person) -> None:
    """`hf auth login --add-to-git-credential`, offline: its git part (helper detection, approve, reject)."""
    pytest.importorskip("huggingface_hub", reason="huggingface_hub not installed (the test extra has it)")
    code = (
        "import sys\n"
        "from huggingface_hub import _login\n"
        "from huggingface_hub.utils import _git_credential as g\n"
        "print(g.list_credential_helpers())\n"
        "print(_login._is_git_credential_helper_configured())\n"
        "g.set_git_credential(sys.argv[1])\n"
    )
    hf = person.run(sys.executable, "-c", code, HF_TOKEN, env={"HF_HUB_OFFLINE": "1"})
    assert hf.returncode == 0, hf.stderr
    assert hf.stdout.splitlines() == ["['credstore']", "True"]
    listed = json.loads(person.cli("keyring", "list", "--json", check=True).stdout)
    assert [(r["service"], r["username"]) for r in listed] == [("git:https://huggingface.co", "hf_user")]
    assert person.fill("protocol=https\nhost=huggingface.co\n\n")["password"] == HF_TOKEN
    unset = person.run(
        sys.executable, "-c", "from huggingface_hub.utils import _git_credential as g; g.unset_git_credential()"
    )
    assert unset.returncode == 0, unset.stderr
    assert person.fill("protocol=https\nhost=huggingface.co\n\n") is None


# -- git's plaintext store: doctor and import ------------------------------------------------------------------------


def findings(person: Person) -> list[str]:
    out = person.cli("doctor").stdout
    return [line for line in out.splitlines() if "git" in line or "fix:" in line]


def test_doctor_reports_the_store_helper_and_import_moves_the_file_in(person: Person) -> None:
    git = person.git
    person.run(git, "config", "--global", "credential.helper", "store")
    assert (
        person.credential(
            "approve", f"protocol=https\nhost=git.example.org\nusername=alice\npassword={TOKEN}\n"
        ).returncode
        == 0
    )
    person.credential("approve", "protocol=https\nhost=gitlab.example:8443\nusername=bob@corp\npassword=p@ss w:rd/\n")
    plaintext = person.home / ".git-credentials"
    assert TOKEN in plaintext.read_text()  # git's own store: a plaintext file
    report = person.cli("doctor")
    assert report.returncode == 1
    assert "credential.helper=store" in report.stdout
    assert f"{plaintext} holds git passwords and tokens in plaintext" in report.stdout
    assert "fix: credstore import git-credentials --remove-source" in report.stdout

    imported = person.cli("import", "git-credentials", "--remove-source")
    assert imported.returncode == 0, imported.stderr
    assert TOKEN not in imported.stderr and "p@ss" not in imported.stderr
    assert not plaintext.exists()
    person.run(git, "config", "--global", "--replace-all", "credential.helper", "credstore", "^store")
    assert person.fill("protocol=https\nhost=git.example.org\n\n")["password"] == TOKEN
    answer = person.fill("url=https://gitlab.example:8443/group/project.git\n\n")
    assert (answer["username"], answer["password"]) == ("bob@corp", "p@ss w:rd/")
    after = person.cli("doctor").stdout
    assert "credential.helper=store" not in after and ".git-credentials" not in after


def test_import_keeps_what_it_could_not_import(person: Person) -> None:
    plaintext = person.home / ".git-credentials"
    plaintext.write_text(f"https://alice:{TOKEN}@git.example.org\nnot a url line\n")
    plaintext.chmod(0o600)
    person.credential("approve", "protocol=https\nhost=git.example.org\nusername=alice\npassword=different\n")
    result = person.cli("import", "git-credentials", "--remove-source")
    assert result.returncode == 1 and "a different password is already stored" in result.stderr
    assert f"{plaintext}:2: not a protocol://user:password@host line; skipped" in result.stderr
    assert plaintext.read_text().startswith(f"https://alice:{TOKEN}@")  # left in place
    assert person.fill("protocol=https\nhost=git.example.org\n\n")["password"] == "different"
    forced = person.cli("import", "git-credentials", "--remove-source", "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert plaintext.read_text() == "not a url line\n"  # only the imported line was removed
    assert person.fill("protocol=https\nhost=git.example.org\n\n")["password"] == TOKEN
    missing = person.cli("import", "git-credentials", "--file", str(person.home / "nope"))
    assert missing.returncode == 3


def test_repeated_approve_does_not_rewrite_the_store_and_profile_option(person: Person) -> None:
    text = "protocol=https\nhost=r.example\nusername=u\npassword=pw\n"
    person.credential("approve", text)
    store = person.cli.store_dir / "profiles" / "default.store"
    before = store.read_bytes()
    person.credential("approve", text)  # git approves after every successful use
    assert store.read_bytes() == before
    events = [json.loads(line)["event"] for line in (person.cli.store_dir / "audit.log").read_text().splitlines()]
    assert events.count("keyring-set") == 1

    person.cli("--profile", "work", "init", "--protection", "keyfile", check=True)
    person.run(person.git, "config", "--global", "credential.helper", "credstore --profile work")
    assert person.fill("protocol=https\nhost=r.example\n\n") is None  # the default profile's item is not in "work"
    person.credential("approve", "protocol=https\nhost=r.example\nusername=u\npassword=work-pw\n")
    work = person.cli("--profile", "work", "keyring", "get", "git:https://r.example", "u", check=True)
    assert work.stdout == "work-pw\n"
    assert person.cli("keyring", "get", "git:https://r.example", "u", check=True).stdout == "pw\n"


def test_huggingface_with_use_http_path(person: Person) -> None:
    person.run(person.git, "config", "--global", "credential.useHttpPath", "true")
    person.cli("set", "HF_TOKEN", input=HF_TOKEN, check=True)
    assert person.fill("url=https://huggingface.co/org/model\n\n")["password"] == HF_TOKEN
