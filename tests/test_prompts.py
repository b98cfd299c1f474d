"""Prompts on a real terminal (pexpect): background jobs never touch the terminal, Ctrl-C / Ctrl-D exit 130, wrong
passphrases get three tries, a mismatched or empty new passphrase is asked again without losing what was typed,
weak passphrases are confirmed, `set` asks before replacing a secret, `add` shows what is stored."""

from __future__ import annotations

import re

import pexpect
import pytest

from tests.conftest import CLI
from tests.test_protection import KEY, PW, WEAK, header_of, init_passphrase, shell_env

NEW_KEY = "wandbkey9876543210wandbkey9876543210zyxw"


def spawn(cli: CLI, *args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    """`credstore ARGS` on its own pseudo-terminal (its controlling terminal, foreground process group)."""
    full = shell_env(cli, {**WEAK, "TERM": "dumb", **(env or {})})
    return pexpect.spawn("credstore", list(args), env=full, cwd=str(cli.home), timeout=30, encoding="utf-8")


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    return child.exitstatus


def interactive_bash(cli: CLI) -> pexpect.spawn:
    (cli.home / ".bashrc").write_text('PS1="PROMPT> "\n')
    env = shell_env(cli, {**WEAK, "TERM": "dumb"})
    child = pexpect.spawn(
        "bash",
        ["--noprofile", "--rcfile", str(cli.home / ".bashrc"), "-i"],
        env=env,
        cwd=str(cli.home),
        timeout=30,
        encoding="utf-8",
    )
    child.expect("PROMPT> ")
    return child


# -- never touch the terminal from the background ----------------------------------------------------------------------


def test_background_exec_on_a_locked_store_exits_4_and_never_stops(cli):
    """`nohup credstore exec -- true </dev/null >log 2>&1 &` from an interactive shell on a terminal: the job is in a
    background process group, so credstore must not open /dev/tty (that stops the job: `Stopped (tty output)`)."""
    init_passphrase(cli)
    shell = interactive_bash(cli)
    try:
        shell.sendline("nohup credstore exec -- true </dev/null >log 2>&1 & wait $!; echo RC=$?")
        # A bounded wait: a stopped job never reports, and `wait` would hang until the timeout.
        which = shell.expect([r"RC=(\d+)", "Stopped"], timeout=20)
        assert which == 0, shell.before
        assert shell.match.group(1) == "4"
        assert "Stopped" not in shell.before
    finally:
        shell.close(force=True)
    log = (cli.home / "log").read_text()
    assert "is locked; run `credstore unlock`" in log
    assert len(log.strip().splitlines()) == 1


def test_background_get_and_set_never_prompt(cli):
    init_passphrase(cli)
    shell = interactive_bash(cli)
    try:
        shell.sendline("credstore get WANDB_API_KEY </dev/null >out 2>err & wait $!; echo RC=$?")
        which = shell.expect([r"RC=(\d+)", "Stopped"], timeout=20)
        assert which == 0 and shell.match.group(1) == "4", shell.before
    finally:
        shell.close(force=True)


# -- Ctrl-C and Ctrl-D at a prompt -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["\x03", "\x04"], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_at_a_passphrase_prompt_exits_130(cli, key):
    init_passphrase(cli)
    child = spawn(cli, "get", "WANDB_API_KEY")
    child.expect("Passphrase for credstore profile 'default': ")
    child.send(key)
    assert finish(child) == 130
    assert "Traceback" not in child.before


@pytest.mark.parametrize("key", ["\x03", "\x04"], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_at_a_value_prompt_exits_130_and_stores_nothing(cli, key):
    cli("init", "--protection", "keyfile", check=True)
    child = spawn(cli, "set", "WANDB_ENTITY")
    child.expect("WANDB_ENTITY: ")
    child.send(key)
    assert finish(child) == 130
    assert "WANDB_ENTITY" not in cli("list").stdout


# -- three tries at a wrong passphrase ---------------------------------------------------------------------------------


def keyctl_spawn(cli: CLI, *args: str) -> pexpect.spawn:
    from tests.test_protection import need_keyctl

    keyctl = need_keyctl()
    full = shell_env(cli, {**WEAK, "TERM": "dumb"})
    return pexpect.spawn(
        keyctl, ["session", "-", "credstore", *args], env=full, cwd=str(cli.home), timeout=30, encoding="utf-8"
    )


def test_unlock_forgives_two_wrong_passphrases(cli):
    init_passphrase(cli)
    child = keyctl_spawn(cli, "unlock")
    for left in (2, 1):
        child.expect("Passphrase for credstore profile 'default': ")
        child.sendline("not the passphrase")
        child.expect(f"wrong passphrase for profile 'default'; try again \\({left} left\\)")
    child.expect("Passphrase for credstore profile 'default': ")
    child.sendline(PW)
    child.expect("unlocked profile 'default'")
    assert finish(child) == 0
    assert PW not in child.before


def test_three_wrong_passphrases_are_exit_5(cli):
    init_passphrase(cli)
    child = spawn(cli, "get", "WANDB_API_KEY")
    for _ in range(3):
        child.expect("Passphrase for credstore profile 'default': ")
        child.sendline("wrong")
    child.expect(r"cannot open key slot 1 \(passphrase\): wrong passphrase")
    assert finish(child) == 5
    # every wrong one was counted against the store (the slow-down after 5 sees them all)
    counter = cli.store_dir / "state" / "attempts" / header_of(cli).store_id.hex()
    assert counter.read_text().strip() == "3"


def test_exec_and_set_forgive_a_wrong_or_empty_passphrase(cli):
    init_passphrase(cli)
    child = spawn(cli, "set", "WANDB_API_KEY")
    child.expect("WANDB_API_KEY: ")
    child.sendline(KEY)
    child.expect("Passphrase for credstore profile 'default': ")
    child.sendline("")
    child.expect(r"empty passphrase; the store was not unlocked; try again \(2 left\)")
    child.expect("Passphrase for credstore profile 'default': ")
    child.sendline("wrong")
    child.expect(r"try again \(1 left\)")
    child.expect("Passphrase for credstore profile 'default': ")
    child.sendline(PW)
    child.expect("stored WANDB_API_KEY")
    assert finish(child) == 0
    child = spawn(cli, "exec", "--", "sh", "-c", 'echo "VAL=[$WANDB_API_KEY]"')
    child.expect("Passphrase for credstore profile 'default': ")
    child.sendline("wrong")
    child.expect("Passphrase for credstore profile 'default': ")
    child.sendline(PW)
    child.expect(re.escape(f"VAL=[{KEY}]"))
    assert finish(child) == 0


def test_a_pipe_gets_one_try(cli):
    init_passphrase(cli)
    result = cli("unlock", input="wrong\n" + PW + "\n", env=WEAK)
    assert result.returncode == 5


# -- new passphrases: mismatch, empty, weak ----------------------------------------------------------------------------


def test_mismatched_repeat_during_add_keeps_the_key_and_fields(cli):
    child = spawn(cli, "--profile", "p", "add", "openai")
    child.expect("OPENAI_API_KEY")
    child.sendline("sk-" + "a" * 40)
    child.expect("OPENAI_ORG_ID")
    child.sendline("org-1")
    child.expect("OPENAI_PROJECT_ID")
    child.sendline("")
    child.expect("New passphrase for credstore profile 'p': ")
    child.sendline("")
    child.expect("an empty passphrase protects nothing")
    child.expect("New passphrase for credstore profile 'p': ")
    child.sendline(PW)
    child.expect("Repeat the new passphrase: ")
    child.sendline(PW + "x")
    child.expect(r"the two passphrases differ; try again \(1 left\)")
    child.expect("New passphrase for credstore profile 'p': ")
    child.sendline(PW)
    child.expect("Repeat the new passphrase: ")
    child.sendline(PW)
    child.expect("stored OPENAI_API_KEY, OPENAI_ORG_ID in profile 'p'")
    assert finish(child) == 0
    assert header_of(cli, "p").kek_kind == "passphrase"


def test_three_mismatches_create_nothing(cli):
    child = spawn(cli, "init", "--protection", "passphrase")
    for _ in range(3):
        child.expect("New passphrase")
        child.sendline(PW)
        child.expect("Repeat the new passphrase: ")
        child.sendline("something else entirely")
    child.expect("the two passphrases differ; nothing was changed")
    assert finish(child) == 2
    assert not (cli.store_dir / "profiles" / "default.store").exists()


@pytest.mark.parametrize("weak", ["abc", "password123"])
def test_weak_passphrase_is_warned_about_and_confirmed(cli, weak):
    child = spawn(cli, "init", "--protection", "passphrase")
    child.expect("New passphrase")
    child.sendline(weak)
    child.expect("warning: this passphrase is (shorter than 8 characters|one of the most common passwords)")
    child.expect(r"Use it anyway\? \[y/N\] ")
    child.sendline("")  # no: asked again
    child.expect("New passphrase")
    child.sendline(weak)
    child.expect(r"Use it anyway\? \[y/N\] ")
    child.sendline("y")
    child.expect("Repeat the new passphrase: ")
    child.sendline(weak)
    child.expect("protection: passphrase")
    assert finish(child) == 0
    assert header_of(cli).kek_kind == "passphrase"


def test_strong_passphrase_is_not_questioned(cli):
    child = spawn(cli, "init", "--protection", "passphrase")
    child.expect("New passphrase")
    child.sendline(PW)
    child.expect("Repeat the new passphrase: ")
    child.sendline(PW)
    child.expect("protection: passphrase")
    assert finish(child) == 0
    assert "warning" not in child.before


# -- a way back -------------------------------------------------------------------------------------------------------


def test_set_on_a_terminal_asks_before_replacing_a_secret_and_rollback_restores_it(cli):
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    child = spawn(cli, "set", "WANDB_API_KEY")
    child.expect("WANDB_API_KEY: ")
    child.sendline(NEW_KEY)
    child.expect(r"WANDB_API_KEY is already stored in profile 'default'; replace\? \[y/N\] ")
    child.sendline("")
    child.expect("kept the stored WANDB_API_KEY; nothing changed")
    assert finish(child) == 1
    assert cli("get", "WANDB_API_KEY").stdout.strip() == KEY
    child = spawn(cli, "set", "WANDB_API_KEY")
    child.expect("WANDB_API_KEY: ")
    child.sendline(NEW_KEY)
    child.expect(r"replace\? \[y/N\] ")
    child.sendline("y")
    child.expect("stored WANDB_API_KEY")
    child.expect("credstore rollback WANDB_API_KEY")
    assert finish(child) == 0
    assert cli("get", "WANDB_API_KEY").stdout.strip() == NEW_KEY
    result = cli("rollback", "WANDB_API_KEY")
    assert result.returncode == 0, result.stderr
    assert cli("get", "WANDB_API_KEY").stdout.strip() == KEY


def test_set_force_does_not_ask(cli):
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    child = spawn(cli, "set", "--force", "WANDB_API_KEY")
    child.expect("WANDB_API_KEY: ")
    child.sendline(NEW_KEY)
    child.expect("stored WANDB_API_KEY")
    assert finish(child) == 0
    assert "replace?" not in child.before


def test_add_shows_what_is_stored_and_enter_keeps_it(cli):
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    cli("set", "WANDB_USERNAME", "alice", check=True)
    child = spawn(cli, "add", "wandb")
    child.expect(r"WANDB_API_KEY, API key from https://wandb.ai/authorize \(hidden; stored already, Enter keeps it\): ")
    child.sendline("")
    child.expect(r"WANDB_USERNAME, user a service-account run is attributed to \[alice\]: ")
    child.sendline("")
    child.expect(r"WANDB_USER_EMAIL, attribution by e-mail; the username wins if both are set \(Enter skips\): ")
    child.sendline("")
    child.expect(r"WANDB_ENTITY, team or user the runs go to \(Enter skips\): ")
    child.sendline("my-team")
    child.expect(r"WANDB_PROJECT, project \(Enter skips\): ")
    child.sendline("")
    child.expect("stored WANDB_ENTITY in profile 'default'")
    assert finish(child) == 0
    assert cli("get", "WANDB_API_KEY").stdout.strip() == KEY
    assert cli("get", "WANDB_USERNAME").stdout.strip() == "alice"
    assert "((" not in child.before and ")) " not in child.before


def test_add_on_a_locked_store_asks_the_passphrase_once_before_the_fields(cli):
    init_passphrase(cli)
    child = spawn(cli, "add", "hf")
    child.expect("Passphrase for credstore profile 'default': ")
    child.sendline(PW)
    child.expect(r"HF_TOKEN, access token from https://huggingface.co/settings/tokens \(hidden; Enter skips\): ")
    child.sendline("hf_" + "t" * 34)
    child.expect("stored HF_TOKEN")
    assert finish(child) == 0
    assert child.before.count("Passphrase for") == 0


def test_passwd_with_a_mismatched_repeat_asks_again_after_the_old_passphrase(cli):
    init_passphrase(cli)
    child = spawn(cli, "passwd")
    child.expect("Passphrase for credstore profile 'default': ")
    child.sendline(PW)
    child.expect("New passphrase for credstore profile 'default': ")
    child.sendline("a new long passphrase")
    child.expect("Repeat the new passphrase: ")
    child.sendline("a new long passphrasf")
    child.expect(r"the two passphrases differ; try again \(2 left\)")
    child.expect("New passphrase for credstore profile 'default': ")
    child.sendline("a new long passphrase")
    child.expect("Repeat the new passphrase: ")
    child.sendline("a new long passphrase")
    child.expect("passphrase of profile 'default' changed")
    assert finish(child) == 0
    # the new passphrase is the one that opens the store now (passwd from a pipe: old line, then new line)
    assert cli("passwd", input="a new long passphrase\nyet another passphrase\n", env=WEAK).returncode == 0


def test_init_says_it_unlocked_and_for_how_long(cli):
    child = keyctl_spawn(cli, "init", "--protection", "passphrase")
    child.expect("New passphrase")
    child.sendline(PW)
    child.expect("Repeat the new passphrase: ")
    child.sendline(PW)
    child.expect(r"created profile 'default' \(protection: passphrase\)")
    child.expect(r"unlocked it for this login session for 8h \(until \d\d:\d\d\); `credstore lock` locks it")
    assert finish(child) == 0
