"""The first five minutes (issue 12), without a terminal: did-you-mean, `exec SERVICE CMD` without `--`, a way back
(`set` keeps the previous value, `rollback`), `unload` in real shells, help, completion, `-q`, the man page, and
messages that keep the `--profile` given."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import CLI

KEY = "wandbkey0123456789wandbkey0123456789abcd"
NEW_KEY = "wandbkey9876543210wandbkey9876543210zyxw"


@pytest.fixture
def stored(cli: CLI) -> CLI:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    cli("set", "WANDB_ENTITY", "team", check=True)
    cli("set", "MY_CUSTOM_TOKEN", input="custom-value", check=True)
    return cli


def click_path(cli: CLI, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The same command through click (the hand parser of env / exec switched off)."""
    code = (
        "import sys\nimport credstore.cli.fast as fast\nfast.run = lambda args: None\n"
        "from credstore.__main__ import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**cli.env, **(env or {})},
        cwd=cli.home,
        timeout=60,
    )


# -- did you mean ------------------------------------------------------------------------------------------------------


def test_env_with_a_mistyped_service_warns_and_still_exits_0(stored):
    result = stored("env", "wandbb")
    assert result.returncode == 0  # a shell profile never breaks over a typo
    assert "'wandbb' is neither a service nor a variable stored or set anywhere; did you mean wandb?" in result.stderr
    assert KEY not in result.stdout


def test_env_exec_explain_suggest_a_stored_name(stored):
    result = stored("env", "MY_CUSTOM_TOKN")
    assert result.returncode == 0
    assert "did you mean MY_CUSTOM_TOKEN?" in result.stderr
    result = stored("exec", "MY_CUSTOM_TOKN", "--", "true")
    assert result.returncode == 0
    assert "did you mean MY_CUSTOM_TOKEN?" in result.stderr
    result = stored("explain", "wandb_entity")
    assert "did you mean WANDB_ENTITY?" in result.stderr


def test_env_names_the_services_when_nothing_is_close(stored):
    result = stored("env", "zzzz")
    assert result.returncode == 0
    assert "'zzzz' is neither a service (wandb, hf," in result.stderr


def test_known_or_present_names_do_not_warn(stored):
    assert stored("env", "wandb", "HF_TOKEN", "MY_CUSTOM_TOKEN").stderr == ""
    assert stored("env", "SOMETHING_SET", env={"SOMETHING_SET": "x"}).stderr == ""


def test_get_of_a_mistyped_name_suggests_the_stored_one(stored):
    result = stored("get", "WANDB_APIKEY")
    assert result.returncode == 3
    assert "WANDB_APIKEY is not stored in profile 'default'; did you mean WANDB_API_KEY?" in result.stderr


@pytest.mark.parametrize(("typed", "meant"), [("WANDB_APIKEY", "WANDB_API_KEY"), ("hf_token", "HF_TOKEN")])
def test_set_of_a_near_miss_of_a_catalog_name_warns(cli, typed, meant):
    cli("init", "--protection", "keyfile", check=True)
    result = cli("set", typed, input="hf_" + "x" * 30)
    assert result.returncode == 0
    assert f"did you mean {meant}?" in result.stderr


def test_set_of_an_unrelated_name_does_not_warn(cli):
    cli("init", "--protection", "keyfile", check=True)
    assert "did you mean" not in cli("set", "MY_OWN_THING", input="v").stderr


# -- exec SERVICE CMD without a separator ---------------------------------------------------------------------------


def test_exec_service_without_separator_is_refused_with_both_fixes(stored):
    result = stored("exec", "wandb", "printenv", "WANDB_ENTITY")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "`credstore exec wandb -- printenv WANDB_ENTITY`" in result.stderr
    assert "`credstore exec -- wandb printenv WANDB_ENTITY`" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_exec_refusal_keeps_the_profile(stored):
    stored("--profile", "p", "init", "--protection", "keyfile", check=True)
    result = stored("--profile", "p", "exec", "wandb", "printenv")
    assert result.returncode == 2
    assert "`credstore --profile p exec wandb -- printenv`" in result.stderr


def test_exec_with_a_separator_is_unambiguous(stored):
    assert stored("exec", "wandb", "--", "printenv", "WANDB_ENTITY").stdout == "team\n"
    assert stored("exec", "--", "printenv", "WANDB_ENTITY").stdout == "team\n"
    assert stored("exec", "printenv", "WANDB_ENTITY").stdout == "team\n"  # no service word: as before


def test_exec_through_click_refuses_the_same_and_sees_a_leading_separator(stored):
    refused = click_path(stored, "exec", "wandb", "printenv")
    assert refused.returncode == 2, refused.stderr
    assert "ambiguous" in refused.stderr
    bin_dir = stored.home / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text("#!/bin/sh\necho ran aws $WANDB_ENTITY\n")
    (bin_dir / "aws").chmod(0o755)
    path = {"PATH": f"{bin_dir}:{stored.env['PATH']}"}
    ran = click_path(stored, "exec", "--", "aws", env=path)  # a leading -- that click swallows
    assert (ran.returncode, ran.stdout) == (0, "ran aws team\n"), ran.stderr
    assert stored("exec", "--", "aws", env=path).stdout == "ran aws team\n"


# -- a way back --------------------------------------------------------------------------------------------------------


def test_set_from_a_pipe_replaces_keeping_the_previous_value_for_rollback(stored):
    result = stored("set", "WANDB_API_KEY", input=NEW_KEY)
    assert result.returncode == 0, result.stderr
    assert "the previous value of WANDB_API_KEY is kept for 7 days" in result.stderr
    assert "credstore rollback WANDB_API_KEY" in result.stderr
    assert stored("get", "WANDB_API_KEY").stdout.strip() == NEW_KEY
    assert stored("rollback", "WANDB_API_KEY").returncode == 0
    assert stored("get", "WANDB_API_KEY").stdout.strip() == KEY
    result = stored("rollback", "WANDB_API_KEY")
    assert result.returncode == 3 and "no previous value" in result.stderr


def test_rotate_rollback_after_set_is_the_same(stored):
    stored("set", "WANDB_API_KEY", input=NEW_KEY, check=True)
    assert stored("rotate", "WANDB_API_KEY", "--rollback").returncode == 0
    assert stored("get", "WANDB_API_KEY").stdout.strip() == KEY


def test_rollback_hint_keeps_the_profile(cli):
    cli("--profile", "p", "init", "--protection", "keyfile", check=True)
    cli("--profile", "p", "set", "WANDB_API_KEY", input=KEY, check=True)
    result = cli("--profile", "p", "set", "WANDB_API_KEY", input=NEW_KEY)
    assert "credstore --profile p rollback WANDB_API_KEY" in result.stderr


def test_add_from_stdin_keeps_stored_values_on_empty_lines(stored):
    # WANDB_API_KEY, USERNAME, USER_EMAIL, ENTITY, PROJECT
    result = stored("add", "wandb", input="\nbob\n\n\nproj\n")
    assert result.returncode == 0, result.stderr
    assert "stored WANDB_USERNAME, WANDB_PROJECT" in result.stderr
    assert stored("get", "WANDB_API_KEY").stdout.strip() == KEY
    assert stored("get", "WANDB_ENTITY").stdout.strip() == "team"


def test_add_help_lists_the_fields_of_the_service(cli):
    result = cli("add", "wandb", "--help")
    assert result.returncode == 0
    for name in ("WANDB_API_KEY", "WANDB_USERNAME", "WANDB_USER_EMAIL", "WANDB_ENTITY", "WANDB_PROJECT"):
        assert name in result.stdout
    assert "https://wandb.ai/authorize" in result.stdout
    assert "HF_TOKEN" not in result.stdout
    assert "HF_TOKEN" in cli("add", "--help").stdout


# -- unload ------------------------------------------------------------------------------------------------------------

UNLOAD_SCRIPTS = {
    "bash": """eval "$(credstore env)"
export WANDB_ENTITY=mine
export MINE=kept
eval "$(credstore unload)"
echo "KEY=[${WANDB_API_KEY-unset}] ENTITY=[${WANDB_ENTITY-unset}] MINE=[$MINE] MARKER=[${CREDSTORE_EXPORTED-unset}]"
""",
    "zsh": """eval "$(credstore env --shell zsh)"
export WANDB_ENTITY=mine
export MINE=kept
eval "$(credstore unload --shell zsh)"
echo "KEY=[${WANDB_API_KEY-unset}] ENTITY=[${WANDB_ENTITY-unset}] MINE=[$MINE] MARKER=[${CREDSTORE_EXPORTED-unset}]"
""",
    "fish": """credstore env --shell fish | source
set -gx WANDB_ENTITY mine
set -gx MINE kept
credstore unload --shell fish | source
set -q WANDB_API_KEY; and set k $WANDB_API_KEY; or set k unset
set -q CREDSTORE_EXPORTED; and set m $CREDSTORE_EXPORTED; or set m unset
echo "KEY=[$k] ENTITY=[$WANDB_ENTITY] MINE=[$MINE] MARKER=[$m]"
""",
}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_unload_in_a_real_shell_unsets_what_credstore_exported_and_keeps_hand_set_values(stored, shell):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    from tests.test_protection import shell_env

    proc = subprocess.run(
        [shell, "-c", UNLOAD_SCRIPTS[shell]], capture_output=True, text=True, env=shell_env(stored), timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "KEY=[unset] ENTITY=[mine] MINE=[kept] MARKER=[unset]", proc.stderr
    assert "keeping WANDB_ENTITY: changed by hand" in proc.stderr


def test_unload_with_nothing_exported_prints_nothing(stored):
    result = stored("unload")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "nothing to unload" in result.stderr


def test_lock_says_exported_values_remain_and_how_to_unload(cli):
    cli("--profile", "p", "init", "--protection", "keyfile", check=True)
    result = cli("--profile", "p", "lock")
    assert result.returncode == 0
    assert "stay there" in result.stderr
    assert 'eval "$(credstore --profile p unload)"' in result.stderr


def test_unload_after_lock_unsets_every_exported_name(cli):
    from tests.test_protection import PW, WEAK, in_session, init_passphrase

    init_passphrase(cli)
    script = f"""
printf '%s\\n' '{PW}' | credstore unlock || exit 10
printf '%s' '{KEY}' | credstore set WANDB_API_KEY || exit 11
credstore set WANDB_ENTITY team || exit 12
eval "$(credstore env --shell bash)" || exit 13
export WANDB_ENTITY=mine MINE=kept
credstore lock || exit 14
eval "$(credstore unload --shell bash)" || exit 15
echo "KEY=[${{WANDB_API_KEY-unset}}] ENTITY=[${{WANDB_ENTITY-unset}}] MINE=[$MINE]"
"""
    result = in_session(cli, script, env=WEAK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "KEY=[unset] ENTITY=[unset] MINE=[kept]"
    assert "the profile is locked" in result.stderr
