"""The real `wandb` client, offline, picks up what `credstore env` / `credstore exec` deliver."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

import pytest

from tests.conftest import CLI, credstore_argv

pytest.importorskip("wandb", reason="wandb is installed by scripts/test.sh; without it this client test cannot run")

KEY = "local-" + "w4ndb_" * 8
PROBE = (
    "import json, wandb\n"
    "run = wandb.init()\n"
    "s = run.settings\n"
    "print('RESULT' + json.dumps({k: getattr(s, k) for k in "
    "('username', 'email', 'entity', 'project', 'api_key')}))\n"
    "run.finish()\n"
)


def _probe(cli: CLI, argv: list[str]) -> dict[str, str]:
    env = {**cli.env, "WANDB_MODE": "offline", "WANDB_DIR": str(cli.home), "WANDB_SILENT": "true"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=cli.home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


@pytest.fixture
def wandb_store(cli: CLI) -> CLI:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    for name, value in {
        "WANDB_USERNAME": "alice",
        "WANDB_USER_EMAIL": "alice@example.org",
        "WANDB_ENTITY": "ml-team",
        "WANDB_PROJECT": "sweeps",
    }.items():
        cli("set", name, value, check=True)
    return cli


def test_wandb_reads_credentials_exported_by_env_in_bash(wandb_store: CLI) -> None:
    bash = shutil.which("bash")
    assert bash
    cmd = " ".join(shlex.quote(a) for a in credstore_argv())
    script = f'eval "$({cmd} env --shell bash wandb)"; exec python3 -c {shlex.quote(PROBE)}'
    got = _probe(wandb_store, [bash, "--norc", "--noprofile", "-c", script])
    assert got == {
        "username": "alice",
        "email": "alice@example.org",
        "entity": "ml-team",
        "project": "sweeps",
        "api_key": KEY,
    }


def test_wandb_reads_credentials_through_exec_and_explicit_argument_wins(wandb_store: CLI) -> None:
    got = _probe(
        wandb_store,
        [*credstore_argv(), "exec", "--set", "WANDB_PROJECT=override", "wandb", "--", "python3", "-c", PROBE],
    )
    assert got["api_key"] == KEY and got["username"] == "alice" and got["project"] == "override"
