"""GenerationWatch: the rollback marker shared by the personal and the service stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from credstore.errors import RollbackError, StoreIOError
from credstore.store.generations import GenerationWatch

STORE_ID = bytes(range(16))


def _rollback(generation: int, seen: int) -> RollbackError:
    return RollbackError(f"at {generation}, seen {seen}")


def test_remembers_the_newest_and_refuses_an_older_one(tmp_path: Path) -> None:
    watch = GenerationWatch(tmp_path / "state", STORE_ID)
    assert watch.seen() == -1
    watch.check(3, _rollback)
    assert watch.seen() == 3
    assert (tmp_path / "state" / "generations" / STORE_ID.hex()).read_text() == "3"
    watch.check(3, _rollback)  # the same generation again is fine
    with pytest.raises(RollbackError, match="at 2, seen 3"):
        watch.check(2, _rollback)
    assert watch.seen() == 3
    watch.accept(2)  # a deliberate restore
    watch.check(2, _rollback)
    assert watch.seen() == 2


def test_without_a_state_directory_nothing_is_checked(tmp_path: Path) -> None:
    watch = GenerationWatch(None, STORE_ID)
    watch.check(5, _rollback)
    watch.check(1, _rollback)
    watch.accept(7)
    assert watch.seen() == -1
    assert list(tmp_path.iterdir()) == []


def test_garbage_marker_counts_as_unseen(tmp_path: Path) -> None:
    watch = GenerationWatch(tmp_path, STORE_ID)
    watch.path.parent.mkdir(mode=0o700)
    watch.path.write_text("not a number")
    assert watch.seen() == -1
    watch.check(1, _rollback)
    assert watch.seen() == 1


def test_unreadable_marker_is_an_error_unless_asked_otherwise(tmp_path: Path) -> None:
    strict = GenerationWatch(tmp_path, STORE_ID)
    strict.path.mkdir(parents=True)  # a directory where the marker should be: reading it fails
    with pytest.raises(IsADirectoryError):
        strict.check(1, _rollback)
    lenient = GenerationWatch(tmp_path, STORE_ID, unreadable_is_unseen=True)
    assert lenient.seen() == -1
    lenient.check(1, _rollback)  # the marker cannot be rewritten either; the read still succeeds


def test_remember_never_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    watch = GenerationWatch(blocker, STORE_ID)
    watch.remember(4)  # advisory: swallowed
    with pytest.raises(StoreIOError, match="Not a directory"):  # accept is not advisory
        watch.accept(4)
