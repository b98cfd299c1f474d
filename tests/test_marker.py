"""The refresh marker in pieces (credstore/marker.py): Linux refuses to exec a program whose environment holds a
string over 128 KiB, and at a few thousand variables ``CREDSTORE_EXPORTED`` would be that long, so that after
``eval "$(credstore env)"`` the shell could run nothing. Real bash, real exec, both roads (click and the cache)."""

from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from credstore import marker
from tests.conftest import CLI
from tests.test_hot_path import FULL, REPO

NAME = st.from_regex(r"[A-Z_][A-Z0-9_]{0,40}", fullmatch=True)


@given(st.dictionaries(NAME, st.from_regex(r"[0-9a-f]{24}", fullmatch=True), max_size=60), st.integers(1, 400))
def test_pieces_are_short_and_read_back_whole(fingerprints: dict[str, str], piece: int) -> None:
    names = sorted(fingerprints)
    text = marker.text_of(names, [fingerprints[n] for n in names])
    old_piece, marker.PIECE = marker.PIECE, piece
    try:
        stale = {marker.MARKER: "x", **{marker.continuation(i): "x" for i in range(2, 40)}}
        assignments, unsets = marker.assignments(text, stale)
    finally:
        marker.PIECE = old_piece
    environ = dict(assignments)
    assert marker.read(environ) == text
    assert marker.parse(marker.read(environ)) == fingerprints
    longest_entry = max((len(n) + 25 for n in names), default=2)  # an entry, or "v1", is never cut
    assert all(len(value) <= max(piece, longest_entry) for _name, value in assignments)
    assert [name for name, _ in assignments] == marker.variables_in(environ)
    assert unsets == [marker.continuation(i) for i in range(len(assignments) + 1, 40)]


def test_a_continuation_after_a_gap_is_not_read_and_any_stray_piece_is_removed() -> None:
    environ = {marker.MARKER: "v1 A:1", marker.continuation(3): "B:2"}
    assert marker.variables_in(environ) == [marker.MARKER]
    assert marker.parse(marker.read(environ)) == {"A": "1"}
    assert marker.all_variables(environ) == [marker.MARKER, marker.continuation(3)]
    # pieces left behind when the first was unset are never read, and the next marker removes them
    orphans = {marker.continuation(10): "C:3", marker.continuation(2): "B:2", "CREDSTORE_EXPORTED_X": "kept"}
    # not numbers of ours (int() refuses some of them, and a shell cannot name them): left alone, never a crash
    odd = ("\u00b2", "\u0663", "9" * 30)
    orphans |= {f"CREDSTORE_EXPORTED_{suffix}": "x" for suffix in odd}
    assert marker.read(orphans) is None
    assert marker.all_variables(orphans) == [marker.continuation(2), marker.continuation(10)]
    assert marker.assignments("v1 A:1", orphans) == ([(marker.MARKER, "v1 A:1")], marker.all_variables(orphans))


COUNT = 4000  # about 140 KiB of marker text: more than one environment string may hold


def test_thousands_of_variables_leave_a_shell_that_can_still_run_programs(cli: CLI) -> None:
    from tests.test_protection import in_session

    cli("init", "--protection", "keyfile", check=True)
    dotenv = cli.home / "many.env"
    dotenv.write_text("".join(f"VAR_{i:05d}=value-{i:05d}\n" for i in range(COUNT)))
    dotenv.chmod(0o600)
    cli("import", "dotenv", "--remove-source", str(dotenv), check=True)
    lean = f'PYTHONPATH="{REPO}" "{sys.executable}" -S -m credstore'
    script = (
        FULL
        + f"""
eval "$(credstore env)" || exit 10
/bin/true && echo exec-ok
echo "pieces=$(env | grep -c '^CREDSTORE_EXPORTED')"
for v in $(env | grep -o '^CREDSTORE_EXPORTED[_0-9]*='); do
    eval "n=\\${{#${{v%=}}}}"; [ "$n" -le 65536 ] || echo "too long: $v $n"
done
VAR_00007=typed
echo "lean=$({lean} env | grep -c '^export VAR_')"
echo "full=$(full env | grep -c '^export VAR_')"
echo "child=$({lean} exec -- sh -c 'env | grep -c ^CREDSTORE_EXPORTED')"
eval "$({lean} env)"; eval "$(full env)"; /bin/true && echo still-ok
eval "$(credstore unload 2>/dev/null)"
echo "after-unload=$(env | grep -c '^CREDSTORE_EXPORTED') ${{VAR_00001-unset}} $VAR_00007"
eval "$(credstore env)"; unset CREDSTORE_EXPORTED  # the values are the person's own now; the rest is litter
echo "headless-child=$({lean} exec -- sh -c 'env | grep -c ^CREDSTORE_EXPORTED')"
eval "$({lean} env)"
echo "headless=$(env | grep -c '^CREDSTORE_EXPORTED')"
"""
    )
    result = in_session(cli, script)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "exec-ok\n" in out and "still-ok\n" in out, result.stderr[-2000:]
    assert "pieces=3\n" in out and "too long" not in out  # CREDSTORE_EXPORTED, _2, _3
    # the pieces were read back as one marker: every exported value is credstore's own, but VAR_00007 typed by hand
    assert f"lean={COUNT - 1}\n" in out and f"full={COUNT - 1}\n" in out
    assert "child=0\n" in out
    assert "after-unload=0 unset typed\n" in out
    assert "headless-child=0\n" in out and "headless=0\n" in out
