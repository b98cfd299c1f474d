"""Shell and format emitters, checked through the real shells (bash, zsh, dash, fish; pwsh when installed)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credstore.errors import UnrepresentableValue, UsageError
from credstore.shells import FORMATS, SHELLS, detect_shell, render
from credstore.shells import powershell as ps_mod

try:  # works whether or not tests/ is a package
    from tests import shell_harness as h
except ImportError:  # pragma: no cover
    import shell_harness as h  # type: ignore[no-redef]

# Values chosen to break naive quoting in at least one shell.
HOSTILE: dict[str, str] = {
    "SQ": "it's 'quoted'",
    "SQ_ONLY": "'",
    "SQ_RUN": "''''",
    "SQ_EDGES": "'middle'",
    "DQ": 'say "hi" ""',
    "CMDSUB": "$(id) and ${HOME} and $HOME and $0",
    "BACKTICK": "`id` `echo pwned`",
    "BACKSLASH": "a\\b\\\\c\\'d\\\"e\\$f\\n",
    "TRAIL_BS": "ends with backslash\\",
    "ONLY_BS": "\\",
    "NEWLINE": "line1\nline2\n",
    "LEADING_NL": "\n\nafter two newlines",
    "ONLY_NL": "\n",
    "CR": "carriage\rreturn\r",
    "CRLF": "windows\r\nline\r\n",
    "TAB": "tab\there\t",
    "BANG": "hello!world !! !$ !-1 ^a^b !#",
    "PERCENT": "100% %PATH% %s %n",
    "NON_ASCII": "café é 日本語 Ünïcödé",
    "EMOJI": "key 🔑 and 👩‍💻 and \U0010ffff",
    "EMPTY": "",
    "SPACES": "  padded  ",
    "DASH": "-e",
    "DASH2": "--help",
    "DASH_N": "-n",
    "GLOB": "* ? [a-z] ~ ~root {a,b}",
    "SEMI": "a; rm -rf / # && || | > < &",
    "EQUALS": "a=b==c",
    "FISH_ESC": "\\' \\\\ \\x41 \\u0041 {$x} (echo hi)",
    "PS_QUOTES": "\u2018a\u2019 \u201ab\u201b '\u2018\u2019'",
    "PS_SPECIAL": "@' '@ `$x `n ${env:PATH} $(Get-Date)",
    "CONTROL": "\x01\x02\x1b[31m\x7f\x80\x9b",
    "ZSH_META": "\x83\x84\x9f\xa0 =cmd ^x",
    "NL_MIX": "a\n\x01\x02\x7f\x80'!\\\n^x^y\r\n\\0477 \\x41 é\n",
    "BIG": ("0123456789abcdef" * 6400) + "'\n$",  # about 100 KiB
}

# Real shells the tests run, and the loading methods each one gets.
REAL_SHELLS = [("bash", m) for m in h.POSIX_MODES] + [("zsh", m) for m in h.POSIX_MODES]
REAL_SHELLS += [("dash", m) for m in h.POSIX_MODES] + [("fish", m) for m in h.FISH_MODES]


def require(test_shell: str) -> None:
    if h.find_shell(test_shell) is None:
        pytest.skip(f"{test_shell} is not installed (apt-get install -y zsh fish dash)")


def emit(test_shell: str, assignments, unsets=()) -> str:
    return render(assignments, unsets, shell=h.SHELL_BINARIES[test_shell][0])


def expect_bytes(values: dict[str, str]) -> dict[str, bytes]:
    return {k: v.encode("utf-8") for k, v in values.items()}


# --------------------------------------------------------------------------- real shells: fixed hostile values


@pytest.mark.parametrize(("test_shell", "mode"), REAL_SHELLS)
def test_hostile_values_round_trip(test_shell: str, mode: str) -> None:
    require(test_shell)
    names = list(HOSTILE)
    result = h.run(test_shell, emit(test_shell, list(HOSTILE.items())), names, mode=mode)
    want = expect_bytes(HOSTILE)
    for name in names:
        assert result.shell_view[name] == want[name], f"{test_shell}/{mode}: {name} differs in the shell"
        assert result.env_view[name] == want[name], f"{test_shell}/{mode}: {name} not exported exactly"
    assert result.stderr == b""


@pytest.mark.parametrize("test_shell", ["bash", "zsh", "dash", "fish"])
def test_hostile_values_round_trip_in_c_locale(test_shell: str) -> None:
    require(test_shell)
    values = {k: HOSTILE[k] for k in ("NON_ASCII", "EMOJI", "CONTROL", "ZSH_META", "FISH_ESC", "PS_QUOTES", "SQ")}
    result = h.run(test_shell, emit(test_shell, list(values.items())), list(values), lang="C")
    assert result.env_view == expect_bytes(values)


@pytest.mark.parametrize(
    ("test_shell", "preamble"),
    [
        ("zsh", "setopt rcquotes"),  # '' inside single quotes means a quote
        ("zsh", "setopt shwordsplit globsubst nomatch"),
        ("zsh", "emulate sh"),
        ("bash", "set -o posix; set -H"),
        ("bash", "shopt -s extglob failglob nullglob"),
    ],
)
def test_shell_options_do_not_change_values(test_shell: str, preamble: str) -> None:
    require(test_shell)
    names = list(HOSTILE)
    result = h.run(test_shell, emit(test_shell, list(HOSTILE.items())), names, preamble=preamble)
    assert result.env_view == expect_bytes(HOSTILE)


@pytest.mark.parametrize("test_shell", ["bash", "zsh"])
def test_pasted_into_interactive_shell_with_history_expansion(test_shell: str) -> None:
    require(test_shell)
    values = {k: HOSTILE[k] for k in ("BANG", "SQ", "NEWLINE", "CMDSUB", "BACKTICK", "TRAIL_BS", "EMPTY")}
    if test_shell == "zsh":
        # zsh takes a pasted multi-line quote whole. bash expands history line by line and lets readline act on
        # control characters; its output stays plain '...' (safe in every locale, see credstore/shells/posix.py),
        # so these values are exact only through eval, as documented there.
        values["MULTILINE_BANG"] = "first line\n!! second !$ line\n^a^b !-2"
        values["NL_MIX"] = HOSTILE["NL_MIX"]
        values["CR"] = HOSTILE["CR"]
        values["CONTROL"] = HOSTILE["CONTROL"]
        values["TAB"] = HOSTILE["TAB"]
        values["ALL_C0"] = "".join(chr(c) for c in range(1, 0x20)) + "\x7f'!\\"
    got, hist_on = h.run_interactive(test_shell, emit(test_shell, list(values.items())), list(values))
    assert hist_on, f"history expansion was off in interactive {test_shell}; the test would prove nothing"
    assert got == expect_bytes(values)


@pytest.mark.parametrize(("test_shell", "mode"), REAL_SHELLS)
def test_unsets_remove_variables(test_shell: str, mode: str) -> None:
    require(test_shell)
    preset = {"OLD_ONE": "stale", "OLD_TWO": "also stale", "KEEP": "kept"}
    text = emit(test_shell, [("NEW", "fresh"), ("OLD_TWO", "reset")], ["OLD_ONE", "OLD_TWO", "NEVER_SET"])
    result = h.run(test_shell, text, ["OLD_ONE", "OLD_TWO", "NEVER_SET", "NEW", "KEEP"], mode=mode, preset=preset)
    for view in (result.shell_view, result.env_view):
        assert view["OLD_ONE"] is h.UNSET
        assert view["NEVER_SET"] is h.UNSET  # unsetting an absent name is harmless
        assert view["OLD_TWO"] == b"reset"  # unset and assigned: the assignment wins
        assert view["NEW"] == b"fresh"
        assert view["KEEP"] == b"kept"
    assert result.stderr == b""


@pytest.mark.parametrize("test_shell", ["bash", "zsh", "dash", "fish"])
def test_overwrites_existing_value(test_shell: str) -> None:
    require(test_shell)
    result = h.run(
        test_shell,
        emit(test_shell, [("WANDB_API_KEY", "new'value")]),
        ["WANDB_API_KEY"],
        preset={"WANDB_API_KEY": "old"},
    )
    assert result.env_view["WANDB_API_KEY"] == b"new'value"


# --------------------------------------------------------------------------- real shells: property test

# Any character but NUL and lone surrogates, with the ones that matter to quoting made frequent.
CHAR = st.characters(blacklist_categories=("Cs",), blacklist_characters="\0") | st.sampled_from(
    list("\n\r\t'\"\\$`!^%#~*?[]{}()|&;<> =-\x01\x7f\u2018\u2019\u201a\u201b") + ["\\'", "'\\", "\n^", "\\0"]
)
VALUE = st.lists(CHAR, max_size=30).map("".join)
VALUES = st.lists(VALUE, min_size=1, max_size=6)


@pytest.mark.parametrize("test_shell", ["bash", "zsh", "dash", "fish"])
def test_any_value_round_trips_through_real_shell(test_shell: str) -> None:
    require(test_shell)

    examples = 150 if test_shell == "fish" else 200  # fish starts slower; keep the whole file near 25 s

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(values=VALUES)
    def check(values: list[str]) -> None:
        pairs = [(f"V{i}", v) for i, v in enumerate(values)]
        result = h.run(test_shell, emit(test_shell, pairs), [n for n, _ in pairs])
        for name, value in pairs:
            assert result.env_view[name] == value.encode("utf-8")
            assert result.shell_view[name] == value.encode("utf-8")

    check()


# --------------------------------------------------------------------------- emitted text, shell by shell


def test_posix_text() -> None:
    text = render([("A", "it's"), ("B", "")], ["C"], shell="bash")
    assert text == "unset -v C\nexport A='it'\\''s'\nexport B=''\n"
    assert render([("A", "x")], shell="zsh") == render([("A", "x")], shell="sh") == "export A='x'\n"


def test_bash_zsh_sh_get_the_same_plain_single_quotes() -> None:
    # No $'...' or backslash escape in any POSIX output: its safety would depend on the reader's locale (finding 9,
    # tests/test_shells_locale.py). Newlines and control characters stay literal inside the quotes.
    text = render(list(HOSTILE.items()), ["GONE"], shell="bash")
    assert text == render(list(HOSTILE.items()), ["GONE"], shell="zsh") == render(list(HOSTILE.items()), ["GONE"])
    plain = "".join(f"export {k}='" + v.replace("'", "'\\''") + "'\n" for k, v in HOSTILE.items())
    assert text == "unset -v GONE\n" + plain
    assert render([("A", "a\nb\x01\\")], shell="bash") == "export A='a\nb\x01\\'\n"


def test_fish_text() -> None:
    text = render([("A", "it's a \\ back\nslash")], ["C"], shell="fish")
    # \\ and \' go between quoted segments, after a quote: no value byte is ever next to a backslash.
    assert text == "set -e C\nset -gx A 'it'\\''s a '\\\\' back\nslash'\n"


def test_powershell_text() -> None:
    text = render([("A", "it's \u2018x\u2019 $env:HOME `n"), ("B", "plain 'q'")], ["C"], shell="powershell")
    assert text == (
        "Remove-Item Env:C -ErrorAction SilentlyContinue\n"
        "$env:A = -join ('it''s ', [char]0x2018, 'x', [char]0x2019, ' $env:HOME `n')\n"
        "$env:B = 'plain ''q'''\n"
    )
    assert render([("A", "a\nb\U0001f511")], shell="powershell") == (
        "$env:A = -join ('a', [char]0x000A, 'b', [char]0xD83D, [char]0xDD11)\n"
    )
    assert render([("A", "")], shell="powershell") == "$env:A = ''\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_every_statement_on_its_own_line_and_newline_terminated(shell: str) -> None:
    text = render([("A", "1"), ("B", "2")], ["C", "D"], shell=shell)
    assert text.endswith("\n")
    assert len(text.splitlines()) == 4
    assert render([], shell=shell) == ""


# --------------------------------------------------------------------------- PowerShell


_PS_CHAR = re.compile(r"\[char\]0x([0-9A-F]{4})")


def _ps_verbatim(text: str, pos: int) -> tuple[str, int]:
    """A verbatim string at ``pos``: any of ' U+2018 U+2019 U+201A U+201B ends it, unless the next character is
    also one of them: then the pair stands for the second one. Nothing else is special."""
    quotes = ps_mod.SINGLE_QUOTES
    assert text[pos] in quotes, text[pos : pos + 40]
    pos += 1
    chars = []
    while True:
        c = text[pos]  # IndexError = unterminated string
        if c in quotes:
            if pos + 1 < len(text) and text[pos + 1] in quotes:
                chars.append(text[pos + 1])
                pos += 2
                continue
            return "".join(chars), pos + 1
        chars.append(c)
        pos += 1


def _ps_expression(text: str, pos: int) -> tuple[str, int]:
    """``'...'`` or ``-join (ITEM, ITEM, ...)``, each ITEM a verbatim string or ``[char]0xHHHH``."""
    if not text.startswith("-join (", pos):
        return _ps_verbatim(text, pos)
    pos += len("-join (")
    units: list[str] = []
    while True:
        match = _PS_CHAR.match(text, pos)
        if match:
            units.append(chr(int(match.group(1), 16)))
            pos = match.end()
        else:
            item, pos = _ps_verbatim(text, pos)
            units.append(item)
        if text.startswith(", ", pos):
            pos += 2
            continue
        assert text[pos] == ")", text[pos : pos + 40]
        # -join concatenates UTF-16 code units: a surrogate pair in two [char] items makes one character.
        joined = "".join(units).encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        return joined, pos + 1


def parse_powershell(text: str) -> tuple[dict[str, str], list[str]]:
    """Reference parser for what the PowerShell emitter writes, following PowerShell's tokenizer rules, reading the
    whole text at once (``. file``, ``| Out-String | Invoke-Expression``)."""
    values: dict[str, str] = {}
    removed: list[str] = []
    pos = 0
    while pos < len(text):
        if text.startswith("Remove-Item Env:", pos):
            end = text.index("\n", pos)
            name, rest = text[pos + len("Remove-Item Env:") : end].split(" ", 1)
            assert rest == "-ErrorAction SilentlyContinue"
            removed.append(name)
            pos = end + 1
            continue
        assert text.startswith("$env:", pos), text[pos : pos + 40]
        eq = text.index(" = ", pos)
        name = text[pos + len("$env:") : eq]
        value, pos = _ps_expression(text, eq + 3)
        assert text[pos] == "\n", "statement must end after its value"
        pos += 1
        values[name] = value
    return values, removed


def parse_powershell_line_by_line(text: str) -> tuple[dict[str, str], list[str]]:
    """What ``credstore env --shell powershell | Invoke-Expression`` does: PowerShell reads a native command's
    output as lines (split at CR LF, LF or CR, as .NET's ReadLine does) and Invoke-Expression runs each line as a
    script of its own."""
    values: dict[str, str] = {}
    removed: list[str] = []
    for line in re.split(r"\r\n|\n|\r", text.removesuffix("\n")):
        line_values, line_removed = parse_powershell(line + "\n")
        values.update(line_values)
        removed += line_removed
    return values, removed


def test_powershell_hostile_values_parse_back() -> None:
    text = render(list(HOSTILE.items()), ["GONE"], shell="powershell")
    assert parse_powershell(text) == (HOSTILE, ["GONE"])


def test_powershell_survives_line_by_line_invoke_expression() -> None:
    # Issue 13: `| Invoke-Expression` split a multi-line value. Every statement is now one line of its own.
    text = render(list(HOSTILE.items()), ["GONE"], shell="powershell")
    assert parse_powershell_line_by_line(text) == (HOSTILE, ["GONE"])


def test_powershell_output_is_printable_ascii() -> None:
    # Windows PowerShell decodes a native command's output in the console code page (437, 850, 932, 1252, ...):
    # ASCII reads the same in all of them, so no byte of a value can turn into a quote character on the way.
    text = render(list(HOSTILE.items()), ["GONE"], shell="powershell")
    assert all(" " <= ch <= "~" for line in text.split("\n") for ch in line)


def test_powershell_reference_parser_catches_undoubled_quote() -> None:
    # The parsers must reject text a naive emitter would write, or they prove nothing.
    naive = "$env:A = 'a\u2019b'\n"
    with pytest.raises((AssertionError, IndexError)):
        assert parse_powershell(naive) == ({"A": "a\u2019b"}, [])
    multi_line = "$env:A = 'a\nb'\n"
    assert parse_powershell(multi_line) == ({"A": "a\nb"}, [])
    with pytest.raises((AssertionError, IndexError)):
        parse_powershell_line_by_line(multi_line)


@settings(max_examples=200, deadline=None)
@given(values=VALUES)
def test_powershell_any_value_parses_back(values: list[str]) -> None:
    pairs = [(f"V{i}", v) for i, v in enumerate(values)]
    text = render(pairs, shell="powershell")
    assert parse_powershell(text)[0] == dict(pairs)
    assert parse_powershell_line_by_line(text)[0] == dict(pairs)


def test_powershell_real_shell() -> None:
    if h.find_shell("pwsh") is None:
        pytest.skip(
            "pwsh is not installable here: Debian has no powershell package, PyPI has none, and the npm `pwsh` "
            "package downloads from outside the registries; the emitter is checked by the reference parser above"
        )
    values = {k: v for k, v in HOSTILE.items() if k != "EMPTY"}  # PowerShell removes a variable set to ''
    result = h.run(
        "pwsh", render(list(values.items()), ["GONE"], shell="powershell"), [*values, "GONE"], preset={"GONE": "x"}
    )
    for name, value in values.items():
        assert result.env_view[name] == value.encode("utf-8")
    assert result.env_view["GONE"] is h.UNSET


# ------------------------------------------------------------ docker --env-file (dotenv: test_dotenv_dialects.py)


def parse_docker_env_file(text: str) -> list[tuple[str, str]]:
    """What `docker run --env-file` reads (docker/cli opts/parse.go): lines split on \\n, a trailing \\r dropped,
    leading whitespace and comment lines skipped, everything after the first '=' taken literally."""
    out = []
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"line without '=': {line!r}"
        out.append((name, value))
    return out


def test_docker_exact_lines() -> None:
    pairs = [("A", "plain"), ("B", ""), ("C", 'it\'s "q" $x `y` \\ # not a comment'), ("D", "  sp ="), ("E", "é🔑")]
    text = render(pairs, ["IGNORED"], fmt="docker")
    assert text == 'A=plain\nB=\nC=it\'s "q" $x `y` \\ # not a comment\nD=  sp =\nE=é🔑\n'
    assert parse_docker_env_file(text) == pairs


@pytest.mark.parametrize("bad", ["line1\nline2", "trailing\r", "cr\rin middle", "\n", "nul\0byte"])
def test_docker_refuses_unrepresentable_value_without_showing_it(bad: str) -> None:
    secret = "hunter2-" + bad
    with pytest.raises(UnrepresentableValue) as info:
        render([("OK", "fine"), ("HF_TOKEN", secret)], fmt="docker")
    message = str(info.value)
    assert "HF_TOKEN" in message
    assert "hunter2" not in message and secret not in message
    assert "\n" not in message and "\r" not in message
    assert isinstance(info.value, UsageError)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\n\r")), min_size=1, max_size=6
    )
)
def test_docker_any_single_line_value_round_trips(values: list[str]) -> None:
    pairs = [(f"V{i}", v) for i, v in enumerate(values)]
    assert parse_docker_env_file(render(pairs, fmt="docker")) == pairs


# --------------------------------------------------------------------------- json


def test_json_hostile_round_trip() -> None:
    text = render(list(HOSTILE.items()), ["IGNORED"], fmt="json")
    assert text.endswith("}\n") and text.count("\n") == 1
    assert json.loads(text) == HOSTILE
    assert text.isascii()
    assert render([], fmt="json") == "{}\n"


@settings(max_examples=200, deadline=None)
@given(values=VALUES)
def test_json_any_value_round_trips(values: list[str]) -> None:
    pairs = [(f"V{i}", v) for i, v in enumerate(values)]
    assert json.loads(render(pairs, fmt="json")) == dict(pairs)


# --------------------------------------------------------------------------- errors and detection


@pytest.mark.parametrize("kwargs", [{"shell": "tcsh"}, {"shell": "BASH"}, {"fmt": "yaml"}, {"fmt": "env"}])
def test_unknown_shell_or_format_is_usage_error(kwargs) -> None:
    with pytest.raises(UsageError):
        render([("A", "b")], **kwargs)


@pytest.mark.parametrize("bad_name", ["", "1ABC", "A-B", "A B", "A=B", "A;id", "$(id)", "é", "A\n", 7, None])
@pytest.mark.parametrize("fmt", FORMATS)
def test_invalid_name_is_usage_error(bad_name, fmt: str) -> None:
    with pytest.raises(UsageError):
        render([(bad_name, "secret-value")], fmt=fmt)


@pytest.mark.parametrize("shell", SHELLS)
def test_invalid_unset_name_is_usage_error(shell: str) -> None:
    with pytest.raises(UsageError):
        render([], ["OK", "NOT;OK"], shell=shell)
    with pytest.raises(UsageError):
        render([], "NAME", shell=shell)  # a bare string is not a list of names


@pytest.mark.parametrize("shell", SHELLS)
def test_nul_in_value_is_refused_without_showing_it(shell: str) -> None:
    with pytest.raises(UnrepresentableValue) as info:
        render([("WANDB_API_KEY", "abc\0secretpart")], shell=shell)
    assert "WANDB_API_KEY" in str(info.value)
    assert "secretpart" not in str(info.value)


def test_non_text_value_is_usage_error() -> None:
    with pytest.raises(UsageError):
        render([("A", b"bytes")])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("shell_env", "expected"),
    [
        ("/bin/bash", "bash"),
        ("/usr/local/bin/bash", "bash"),
        ("/usr/bin/zsh", "zsh"),
        ("/opt/homebrew/bin/fish", "fish"),
        ("/bin/dash", "sh"),
        ("/bin/ash", "sh"),
        ("/bin/ksh", "sh"),
        ("/bin/sh", "sh"),
        ("/usr/bin/pwsh", "powershell"),
        ("/opt/microsoft/powershell/7/pwsh", "powershell"),
        ("powershell", "powershell"),
        ("-bash", "bash"),
        ("/usr/bin/nologin", "sh"),
        ("", "sh"),
    ],
)
def test_detect_shell(shell_env: str, expected: str) -> None:
    assert detect_shell({"SHELL": shell_env}) == expected


def test_detect_shell_without_shell_variable() -> None:
    assert detect_shell({}) == "sh"
    assert detect_shell({"FISH_VERSION": "3.6"}) == "sh"


def test_public_constants() -> None:
    assert SHELLS == ("bash", "zsh", "sh", "fish", "powershell")
    assert FORMATS == ("shell", "dotenv", "docker", "json")
    assert all(detect_shell({"SHELL": "/bin/" + s}) in SHELLS for s in SHELLS)


def test_shells_said_to_get_the_same_text_get_it_and_the_others_do_not() -> None:
    """``same_text`` (the render cache prepares one text per syntax) against what ``render`` really writes."""
    from credstore import shells

    assignments = [("A", "plain"), ("B", 'it\'s $HOME `x` \\ "q"\nline'), ("C", ""), ("D", "ключ 🔑 \t")]
    texts = {shell: shells.render(assignments, ["E"], shell=shell) for shell in shells.SHELLS}
    for one in shells.SHELLS:
        for other in shells.SHELLS:
            assert shells.same_text(one, other) == (texts[one] == texts[other]), (one, other)
    assert shells.same_text("bash", "zsh") and not shells.same_text("bash", "fish")
    assert not shells.same_text("bash", "tcsh") and shells.same_text("nosuch", "nosuch")
