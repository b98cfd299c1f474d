"""Quoting that is safe in every locale (issue 13, finding 9), proved in real shells in real GBK, Big5 and Shift_JIS
locales generated with ``localedef``.

In these charsets the second byte of a two-byte character may be ``\\`` (0x5C) or a backtick (0x60). A shell that
reads the emitted text in such a locale may join a byte of the value with the following byte of the quoting, and
an escape the emitter wrote (``\\\\``, ``\\047``) loses its backslash: with bash's ``$'...'`` form, and with fish's
``\\'`` inside quotes, the value ran on into the next statement and a later value ran as a command. Each test loads
the emitted text into bash, zsh, dash and fish running in the locale, reads every variable back byte for byte (as
the shell sees it and as a child process sees it) and checks that a canary file that several values try to create
never appears.

Two ways the text reaches the shell: as UTF-8 (credstore run with ``PYTHONIOENCODING=utf-8``, the case of the
finding: the shell then splits UTF-8 bytes into the locale's characters) and in the locale's own charset (what
Python writes by default in that locale).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from credstore.shells import render

try:  # works whether or not tests/ is a package
    from tests.test_shells import HOSTILE
except ImportError:  # pragma: no cover
    from test_shells import HOSTILE  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent

# Python codec -> (locale source, glibc charmap, generated locale name)
LOCALES: dict[str, tuple[str, str, str]] = {
    "gbk": ("zh_CN", "GBK", "zh_CN.GBK"),
    "big5": ("zh_TW", "BIG5", "zh_TW.BIG5"),
    "shift_jis": ("ja_JP", "SHIFT_JIS", "ja_JP.SJIS"),
}
# Test shell -> credstore shell, argv before the script
SHELLS: dict[str, tuple[str, list[str]]] = {
    "bash": ("bash", ["--norc", "--noprofile"]),
    "zsh": ("zsh", ["-f"]),
    "dash": ("sh", []),
    "fish": ("fish", ["--no-config"]),
}
HAZARD_TRAILS = (0x5C, 0x27, 0x60)  # '\\', "'", '`'


@functools.cache
def trail_byte_chars(codec: str, trail: int) -> list[str]:
    """Every character whose encoding in ``codec`` is two bytes ending in ``trail``."""
    found = []
    for lead in range(0x81, 0x100):
        try:
            text = bytes([lead, trail]).decode(codec)
        except UnicodeDecodeError:
            continue
        if len(text) == 1:
            found.append(text)
    return found


@functools.cache
def utf8_swallowers(codec: str) -> list[str]:
    """Every BMP character whose UTF-8 bytes, read as ``codec``, leave a lead byte that takes a following ``\\`` or
    backtick as its second byte (the finding's case: UTF-8 output read in a multibyte locale)."""
    found = []
    for cp in range(0x80, 0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        raw = chr(cp).encode("utf-8")
        if any(not (raw + tail).decode(codec, "replace").endswith(tail.decode()) for tail in (b"\\", b"`")):
            found.append(chr(cp))
    return found


@pytest.fixture(scope="session")
def locpath(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LOCPATH directory holding the three generated locales (nothing is written to the system's locale
    archive, so this works for any user)."""
    localedef = shutil.which("localedef")
    if localedef is None or not Path("/usr/share/i18n/charmaps/GBK.gz").exists():
        pytest.skip("localedef and the locale sources are needed (apt-get install -y locales)")
    directory = tmp_path_factory.mktemp("locales")
    for source, charmap, name in LOCALES.values():
        # --no-warnings=ascii: glibc's SHIFT_JIS maps 0x5C to YEN SIGN and says so; the locale is still made.
        proc = subprocess.run(
            [localedef, "--no-warnings=ascii", "-i", source, "-f", charmap, str(directory / name)],
            capture_output=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"localedef {name}: {proc.stderr.decode(errors='replace')}"
        check = subprocess.run(
            ["locale", "charmap"], env=_env(directory, name), capture_output=True, timeout=60, check=True
        )
        assert check.stdout.strip() == charmap.encode(), f"{name} is not in effect: {check.stderr!r}"
        assert check.stderr == b""
    return directory


def _env(locpath: Path, locale_name: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(locpath),
        "LOCPATH": str(locpath),
        "LANG": locale_name,
        "LC_ALL": locale_name,
    }


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def hostile_corpus(codec: str, output_encoding: str, canary: Path) -> list[tuple[str, str]]:
    """Values that put every hazardous character of ``codec`` next to each quoting character, interleaved with
    values that run a command (touching ``canary``) if any quote is lost, plus the shared hostile corpus."""
    chars: list[str] = []
    for trail in HAZARD_TRAILS:
        chars += trail_byte_chars(codec, trail)
    if output_encoding == "utf-8":
        chars += utf8_swallowers(codec)
    tails = ("\\", "'", "`", "\\\n", "'\\''", "\\'", "\n", "$(", "\\\\", "")
    pairs: list[tuple[str, str]] = []
    for number, chunk in enumerate(_chunks(chars, 48)):
        mixed = "".join(c + tails[i % len(tails)] for i, c in enumerate(chunk))
        # A control character made bash's old emitter use $'...'; each value ends with a character then a
        # backslash (or directly before the closing quote), and a command follows.
        pairs.append((f"MIX{number}", "\x01" + mixed + chunk[-1] + "\\"))
        pairs.append((f"RUN{number}", f" ; touch {canary} ; #"))
        pairs.append((f"END{number}", "".join(chunk)))
        pairs.append((f"SUB{number}", f"$(touch {canary})`touch {canary}`"))
        pairs.append((f"BS{number}", "\x7f" + "\\".join(chunk) + "\\"))
        pairs.append((f"SEMI{number}", f"' ; touch {canary} ; '"))
    for name, value in HOSTILE.items():
        try:
            value.encode(output_encoding)
        except UnicodeEncodeError:
            continue  # not in this charset: Python could not write it in the locale's encoding either
        pairs.append((name, value))
    return pairs


def _driver(test_shell: str, names: list[str], script: Path, mode: str, dump: Path) -> str:
    if test_shell == "fish":  # "eval" is fish's pipe into source, "dot" its source FILE
        lines = [f"cat {script} | source" if mode == "eval" else f"source {script}"]
        for name in names:
            lines.append(f"if set -q {name}; printf 'S%s\\0' \"${name}\"; else; printf 'U\\0'; end")
    else:
        lines = [f'eval "$(cat {script})"' if mode == "eval" else f". {script}"]
        for name in names:
            lines.append(f"if [ \"${{{name}+x}}\" = x ]; then printf 'S%s\\0' \"${name}\"; else printf 'U\\0'; fi")
    lines.append(f"exec env -0 >{dump}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("mode", ["eval", "dot"])
@pytest.mark.parametrize("output_encoding", ["utf-8", "locale"])
@pytest.mark.parametrize("codec", list(LOCALES))
@pytest.mark.parametrize("test_shell", list(SHELLS))
def test_values_round_trip_in_multibyte_locale(
    locpath: Path, tmp_path: Path, test_shell: str, codec: str, output_encoding: str, mode: str
) -> None:
    exe = shutil.which(test_shell)
    if exe is None:
        pytest.skip(f"{test_shell} is not installed (apt-get install -y {test_shell})")
    credstore_shell, options = SHELLS[test_shell]
    encoding = codec if output_encoding == "locale" else "utf-8"
    canary = tmp_path / "CANARY"
    pairs = hostile_corpus(codec, encoding, canary)
    script = tmp_path / "emitted"
    script.write_bytes(render(pairs, shell=credstore_shell).encode(encoding))
    dump = tmp_path / "env.bin"
    driver = tmp_path / "driver"
    names = [name for name, _ in pairs]
    driver.write_text(_driver(test_shell, names, script, mode, dump), encoding="ascii")
    proc = subprocess.run(
        [exe, *options, str(driver)],
        env=_env(locpath, LOCALES[codec][2]),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    assert not canary.exists(), f"{test_shell} in {LOCALES[codec][2]} ran a command from a value"
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr[-2000:]
    records = proc.stdout.split(b"\0")[:-1]
    assert len(records) == len(pairs)
    exported = {}
    for entry in dump.read_bytes().split(b"\0"):
        key, _, value = entry.partition(b"=")
        exported[key] = value
    wrong = [
        name
        for (name, value), record in zip(pairs, records)
        if record != b"S" + value.encode(encoding) or exported.get(name.encode()) != value.encode(encoding)
    ]
    assert not wrong, f"{len(wrong)} of {len(pairs)} values differ in {test_shell}, e.g. {wrong[:5]}"


def test_hazard_sets_are_not_empty() -> None:
    # The test above proves nothing if the generated characters miss the hazard. No two-byte character of these
    # charsets ends in 0x27 (their second bytes start at 0x40), which is why a plain '...' quote is safe.
    for codec in LOCALES:
        assert len(trail_byte_chars(codec, 0x5C)) > 30
        assert len(trail_byte_chars(codec, 0x60)) > 30
        assert trail_byte_chars(codec, 0x27) == []
        assert len(utf8_swallowers(codec)) > 10000


def test_credstore_env_in_gbk_locale_with_utf8_output(locpath: Path, tmp_path: Path) -> None:
    """The finding end to end: the real `credstore env --shell bash` with PYTHONIOENCODING=utf-8, evaluated by a
    bash running in zh_CN.GBK."""
    canary = tmp_path / "CANARY"
    swallower = "\u4e03"  # UTF-8 E4 B8 83: GBK reads E4 B8 as one character, and 83 takes the next byte
    assert swallower in utf8_swallowers("gbk")
    values = {"A_KEY": f"\x01{swallower}\\", "B_KEY": f" ; touch {canary} ; #", "C_KEY": f"{swallower}'\n`x`"}
    env = {**_env(locpath, "zh_CN.GBK"), "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(REPO)}
    env["CREDSTORE_HOME"] = str(tmp_path / "store")
    init = [sys.executable, "-m", "credstore", "init", "--protection", "keyfile"]
    subprocess.run(init, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=True)
    argv: list[str | bytes] = [sys.executable, "-m", "credstore", "env", "--shell", "bash"]
    for name, value in values.items():
        argv += ["--set", f"{name}={value}".encode("gbk")]  # Python decodes argv in the locale's charset
    out = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    script = tmp_path / "emitted"
    script.write_bytes(out.stdout)
    reader = 'eval "$(cat emitted)"; for n in A_KEY B_KEY C_KEY; do printf "%s\\0" "${!n}"; done'
    bash = ["bash", "--norc", "--noprofile", "-c", reader]
    proc = subprocess.run(bash, env=_env(locpath, "zh_CN.GBK"), cwd=tmp_path, capture_output=True, timeout=120)
    assert not canary.exists()
    assert proc.stdout.split(b"\0")[:-1] == [v.encode() for v in values.values()]
