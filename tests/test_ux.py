"""The first five minutes (issue 12), without a terminal: did-you-mean, `exec SERVICE CMD` without `--`, a way back
(`set` keeps the previous value, `rollback`), `unload` in real shells, help, completion, `-q`, the man page, and
messages that keep the `--profile` given."""

from __future__ import annotations

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
