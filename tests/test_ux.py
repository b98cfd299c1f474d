"""The first five minutes (issue 12), without a terminal: did-you-mean, `exec SERVICE CMD` without `--`, a way back
(`set` keeps the previous value, `rollback`), `unload` in real shells, help, completion, `-q`, the man page, and
messages that keep the `--profile` given."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import CLI, REPO

KEY = "wandbkey0123456789wandbkey0123456789abcd"
NEW_KEY = "wandbkey9876543210wandbkey9876543210zyxw"
WEAK = {"CREDSTORE_TEST_WEAK_KDF": "1"}


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


# -- help and habits ---------------------------------------------------------------------------------------------------


def test_bare_credstore_prints_the_command_list_and_exits_0(cli):
    result = cli()
    assert result.returncode == 0
    for command in ("add", "env", "exec", "unload", "rollback", "help", "completion", "man", "vault"):
        assert f"\n  {command} " in result.stdout, command


def test_help_command_shows_the_list_or_one_command(cli):
    assert cli("help").stdout == cli("--help").stdout
    result = cli("help", "rollback")
    assert result.returncode == 0 and "Usage: credstore rollback [OPTIONS] NAME" in result.stdout
    result = cli("help", "service", "add")
    assert result.returncode == 0 and "Usage: credstore service add" in result.stdout
    result = cli("help", "nosuch")
    assert result.returncode == 2 and "no command 'nosuch'" in result.stderr


def test_bash_completion_completes_a_command_name(cli):
    from tests.test_protection import shell_env

    script = """eval "$(credstore completion bash)"
COMP_WORDS=(credstore unl); COMP_CWORD=1; _credstore_completion credstore
echo "[${COMPREPLY[*]}]"
COMP_WORDS=(credstore ro); COMP_CWORD=1; COMPREPLY=(); _credstore_completion credstore
echo "[${COMPREPLY[*]}]"
"""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=shell_env(cli), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[unload unlock]", "[rollback rotate]"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_completion_scripts_for_zsh_and_fish(cli, shell):
    result = cli("completion", shell)
    assert result.returncode == 0
    assert "_CREDSTORE_COMPLETE" in result.stdout
    if shutil.which(shell):  # the shell parses it
        check = ["zsh", "-n", "-c", result.stdout] if shell == "zsh" else ["fish", "--no-execute", "-c", result.stdout]
        assert subprocess.run(check, capture_output=True, timeout=60).returncode == 0


def test_quiet_silences_informational_lines_but_not_warnings(cli):
    assert cli("-q", "init", "--protection", "keyfile").stderr.count("\n") == 1  # the weakest-level warning stays
    assert cli("-q", "set", "WANDB_ENTITY", "team").stderr == ""
    assert cli("--quiet", "set", "WANDB_APIKEY", input="x" * 40).stderr.count("did you mean WANDB_API_KEY?") == 1
    assert cli("-q", "env").returncode == 0
    assert cli("-q", "exec", "--", "true").returncode == 0
    assert "stored WANDB_ENTITY" in cli("set", "WANDB_ENTITY", "other").stderr


def test_man_page_is_generated_from_the_click_tree_and_readable(cli):
    result = cli("man")
    assert result.returncode == 0
    page = result.stdout
    assert page.startswith(".TH CREDSTORE 1 ")
    for section in (".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH COMMANDS", ".SH EXIT STATUS"):
        assert f"\n{section}\n" in page
    for command in ("init", "env", "exec", "unload", "rollback", "service add", "vault login"):
        assert f'.SS "credstore {command}"' in page, command
    assert not any(line.startswith((".", "'")) and line[1:2] == " " for line in page.splitlines())
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff (package groff-base) is not installed; the structure was checked")
    proc = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z"], input=page, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = subprocess.run([groff, "-man", "-Tascii"], input=page, capture_output=True, text=True, timeout=60).stdout
    text = " ".join(re.sub(".\b", "", text).split())  # no bold/underline overstrikes, no line breaks
    assert "credstore rollback" in text and "Restore NAME's previous value" in text


def test_main_help_and_readme_recommend_the_same_hook(cli):
    helped = " ".join(cli("--help").stdout.split())
    readme = (REPO / "README.md").read_text()
    hook_lines = set(re.findall(r'eval "\$\(credstore hook \w+\)"', readme)) | set(
        re.findall(r"credstore hook install", readme)
    )
    assert hook_lines, "README recommends no hook"
    assert any(line in helped for line in hook_lines)
    assert 'put eval "$(credstore env)" in your shell profile' not in helped


def test_readme_command_table_lists_every_command(cli):
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Commands") : readme.index("### Known variables")]
    listed = cli("--help").stdout.split("Commands:\n")[1].split("\n\n")[0]
    for line in listed.splitlines():
        name = line.split()[0]
        assert name in table, name


# -- messages ----------------------------------------------------------------------------------------------------------


def test_hints_keep_the_profile_given(cli):
    result = cli("--profile", "nosuch", "env")
    assert result.returncode == 3
    assert "credstore --profile nosuch init" in result.stderr
    result = cli("--profile", "nosuch", "set", "WANDB_ENTITY", "team")
    assert "credstore --profile nosuch init --protection keyfile" in result.stderr
    cli("--profile", "p", "init", "--protection", "keyfile", check=True)
    result = cli("--profile", "p", "set", "WANDB_ENTITY", input="")
    assert "credstore --profile p rm WANDB_ENTITY" in result.stderr


def test_store_creation_is_one_short_plain_line(cli):
    result = cli("init", "--protection", "passphrase", input="correct horse battery staple\n", env=WEAK)
    created = [line for line in result.stderr.splitlines() if "created profile" in line]
    assert created == ["credstore: created profile 'default' (protection: passphrase)"]
    assert "keyring.backends" not in result.stderr
