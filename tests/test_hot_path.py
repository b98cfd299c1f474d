"""What the shell-start hot path imports (deterministic, unlike wall time: see scripts/bench.py for speed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
