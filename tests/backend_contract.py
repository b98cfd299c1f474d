"""The contract every ``credstore.store.base.Backend`` must keep, as a reusable test class.

In the spirit of ``keyring.testing.backend.BackendBasicTests``: a test module subclasses :class:`BackendContract`
once per backend (see ``tests/test_backend_contract.py``) and provides a ``backend_factory`` fixture returning a
:class:`BackendFactory`; every test here then runs against that backend, for real (files, locks, OpenBao).

What the contract says (``credstore/store/base.py``):

- before it is created a store does not exist, and reading it is ``NotFoundError`` (or, for a remote engine where
  "created" only means "written once", an empty snapshot: ``read_before_create``);
- what ``modify`` wrote, ``read`` returns (entries with every field, settings), also through another handle;
- ``modify`` returns what ``change`` returned; a ``change`` that raises leaves the store exactly as it was and the
  store writable;
- a ``read`` sees a whole ``modify`` or none of it, and never waits for a writer;
- concurrent writers (threads, and processes where the backend allows) lose nothing;
- a service account store never keeps attribution variables (they name the person, never the service); a person's
  profile does keep them.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from credstore.errors import NotFoundError
from credstore.store.base import Backend, Entry, Snapshot

# Non-ASCII text from several scripts (as keyring's UNICODE_CHARS), plus emoji outside the BMP.
UNICODE_TEXT = "זה כיף סתם לשמוע ξεσκεπάζω Съешь же ещё этих 中文字符 ключ-🔑-😀"
ATTRIBUTION = ("WANDB_USERNAME", "WANDB_USER_EMAIL")
WRITERS = 8
ROUNDS = 5
# Bounded waits only: a writer that has not finished by then has hung.
WAIT = 300.0
# How long a read may take while a writer sits inside modify before we call it blocked.
READ_BOUND = 60.0


class BackendFactory(ABC):
    """Opens the backend under test. One factory per test; everything it makes is the test's own."""

    @abstractmethod
    def make_backend(self) -> Backend:
        """A new store: created, empty (no entries), writable."""

    @abstractmethod
    def make_missing_backend(self) -> Backend:
        """A handle on a store that was never created."""

    @abstractmethod
    def reopen(self, backend: Backend) -> Callable[[], Backend]:
        """A picklable zero-argument callable opening a new handle on the same store, as another program would
        (nothing cached from ``backend``); used by other threads and processes."""


def make_entry(name: str, value: str, *, secret: bool = True, **fields: Any) -> Entry:
    now = time.time()
    return Entry(name, value, secret, fields.pop("created", now), fields.pop("updated", now), **fields)


def put_entries(*entries: Entry) -> Callable[[Snapshot], None]:
    def change(snapshot: Snapshot) -> None:
        for entry in entries:
            snapshot.entries[entry.name] = entry

    return change


def stored_fields(entry: Entry, *, with_times: bool) -> tuple[Any, ...]:
    """What a backend must give back exactly (times only for backends that keep the writer's times)."""
    fields = (entry.name, entry.value, entry.secret, entry.rotations, entry.previous, entry.previous_expires)
    return (*fields, entry.created, entry.updated) if with_times else fields


def bump(me: str, snapshot: Snapshot) -> None:
    """One writer's step: count in its own variable and in the variable every writer shares."""
    for name in (f"OWN_{me}", "SHARED"):
        old = snapshot.entries.get(name)
        snapshot.entries[name] = old.with_value(str(int(old.value) + 1)) if old else make_entry(name, "1", secret=False)


def writer(open_backend: Callable[[], Backend], me: str, rounds: int, barrier: Any, results: Any) -> None:
    """Body of a concurrent writer (thread or process): open a handle, wait for the others, bump ``rounds`` times."""
    try:
        backend = open_backend()
        barrier.wait(WAIT)
        for _ in range(rounds):
            backend.modify(functools.partial(bump, me))
        results.put((me, None))
    except BaseException as exc:  # reported to the test, which fails with it
        results.put((me, f"{type(exc).__name__}: {exc}"))


class ChangeFailed(Exception):
    """Raised by a test's ``change`` to abandon a modification."""


class BackendContract:
    """Subclass per backend; provide a ``backend_factory`` fixture and set the class attributes below."""

    #: The store is a team service account: attribution variables are never kept.
    is_service: ClassVar[bool] = False
    #: What ``read`` does on a store never created: ``"not-found"`` (NotFoundError) or ``"empty"``.
    read_before_create: ClassVar[str] = "not-found"
    #: ``created`` / ``updated`` come back as written (False: the backend sets them itself, e.g. a server clock).
    keeps_entry_times: ClassVar[bool] = True
    #: Writers in separate processes are part of the test (each opens its own handle).
    supports_processes: ClassVar[bool] = True
    #: Why ``read`` may see part of a multi-variable ``modify`` (None: it never does). A known gap, reported as
    #: xfail so it stays visible; remove it once the backend reads atomically.
    torn_reads: ClassVar[str | None] = None

    factory: BackendFactory

    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        raise NotImplementedError("a BackendContract subclass must provide the backend_factory fixture")

    @pytest.fixture(autouse=True)
    def _bind_factory(self, backend_factory: BackendFactory) -> None:
        self.factory = backend_factory

    # -- helpers -------------------------------------------------------------------------------------------------

    def make_backend(self) -> Backend:
        return self.factory.make_backend()

    def other_handle(self, backend: Backend) -> Backend:
        return self.factory.reopen(backend)()

    def fields(self, entry: Entry) -> tuple[Any, ...]:
        return stored_fields(entry, with_times=self.keeps_entry_times)

    def assert_entries(self, snapshot: Snapshot, expected: list[Entry]) -> None:
        got = {name: self.fields(entry) for name, entry in snapshot.entries.items()}
        assert got == {entry.name: self.fields(entry) for entry in expected}

    # -- existence -----------------------------------------------------------------------------------------------

    def test_missing_store_before_create(self) -> None:
        missing = self.factory.make_missing_backend()
        assert missing.exists() is False
        if self.read_before_create == "not-found":
            with pytest.raises(NotFoundError):
                missing.read()
        else:
            assert self.read_before_create == "empty"
            assert missing.read().entries == {}
        assert missing.exists() is False  # reading does not create it

    def test_created_store_exists_and_is_empty(self) -> None:
        backend = self.make_backend()
        assert backend.exists() is True
        assert self.other_handle(backend).exists() is True
        assert backend.read().entries == {}

    # -- round trips ---------------------------------------------------------------------------------------------

    def test_written_entries_and_settings_are_read_back(self) -> None:
        backend = self.make_backend()
        entries = [
            make_entry("HF_TOKEN", "hf_" + secrets.token_hex(17)),
            make_entry("WANDB_ENTITY", "the-team", secret=False),
        ]

        def change(snapshot: Snapshot) -> None:
            put_entries(*entries)(snapshot)
            snapshot.settings["default_service"] = "ml-team"
            snapshot.settings["note"] = "a = b\nsecond line ünï"

        backend.modify(change)
        for reader in (backend, self.other_handle(backend)):
            snapshot = reader.read()
            self.assert_entries(snapshot, entries)
            assert snapshot.settings["default_service"] == "ml-team"
            assert snapshot.settings["note"] == "a = b\nsecond line ünï"
            if not self.keeps_entry_times:
                for entry in snapshot.entries.values():
                    assert 0 < entry.created <= entry.updated

        def forget(snapshot: Snapshot) -> None:
            del snapshot.settings["note"]
            del snapshot.entries["HF_TOKEN"]

        backend.modify(forget)
        snapshot = self.other_handle(backend).read()
        assert "note" not in snapshot.settings and snapshot.settings["default_service"] == "ml-team"
        self.assert_entries(snapshot, entries[1:])

    def test_a_removed_entry_can_be_written_again(self) -> None:
        backend = self.make_backend()
        backend.modify(put_entries(make_entry("API_KEY", "first")))
        backend.modify(lambda snapshot: snapshot.entries.pop("API_KEY"))
        assert "API_KEY" not in self.other_handle(backend).read().entries
        again = make_entry("API_KEY", "second", secret=False)
        backend.modify(put_entries(again))
        self.assert_entries(self.other_handle(backend).read(), [again])

    def test_secret_and_plain_flags_round_trip(self) -> None:
        backend = self.make_backend()
        entries = [
            make_entry("SECRET_ONE", "s3cret", secret=True),
            make_entry("PLAIN_ONE", "visible", secret=False),
        ]
        backend.modify(put_entries(*entries))
        got = self.other_handle(backend).read().entries
        assert got["SECRET_ONE"].secret is True
        assert got["PLAIN_ONE"].secret is False
        # Flipping the flag alone is a change that is kept.
        backend.modify(put_entries(entries[0]._replace(secret=False), entries[1]._replace(secret=True)))
        got = self.other_handle(backend).read().entries
        assert (got["SECRET_ONE"].secret, got["PLAIN_ONE"].secret) == (False, True)

    def test_rotation_history_and_previous_value_round_trip(self) -> None:
        backend = self.make_backend()
        expires = float(int(time.time()) + 86_400) + 0.5  # in the future: nothing may drop it yet
        rotated = make_entry(
            "WANDB_API_KEY",
            "new-" + secrets.token_hex(20),
            rotations=(1_700_000_000.5, 1_700_100_000.25),
            previous="old-" + secrets.token_hex(20),
            previous_expires=expires,
        )
        backend.modify(put_entries(rotated))
        got = self.other_handle(backend).read().entries["WANDB_API_KEY"]
        assert got.rotations == (1_700_000_000.5, 1_700_100_000.25)
        assert got.previous == rotated.previous
        assert got.previous_expires == expires
        self.assert_entries(self.other_handle(backend).read(), [rotated])

        # A later plain update keeps the history; a rollback clears the previous value.
        updated = rotated.with_value("newer-" + secrets.token_hex(20))
        backend.modify(put_entries(updated))
        self.assert_entries(self.other_handle(backend).read(), [updated])
        cleared = updated._replace(previous=None, previous_expires=None, rotations=(*updated.rotations, 1.7e9))
        backend.modify(put_entries(cleared))
        got = self.other_handle(backend).read().entries["WANDB_API_KEY"]
        assert got.previous is None and got.previous_expires is None
        assert got.rotations == (1_700_000_000.5, 1_700_100_000.25, 1.7e9)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("UNICODE_VALUE", UNICODE_TEXT),
            ("BIG_VALUE", secrets.token_urlsafe(100 * 1024)[: 100 * 1024]),
            ("EQUALS_VALUE", "a=b==c=" + "=" * 10),
            ("MULTILINE_VALUE", "line one\nline two\r\nline three\n"),
            ("SHELL_VALUE", "$HOME `id` $(id) 'single' \"double\" \\ ; | & * ? ~ #"),
            ("SPACES_VALUE", "  leading and trailing\t "),
            ("_", "underscore only"),
            ("a", "lower case one letter"),
            ("X" * 200, "a long name"),
            ("lower__Mixed_9", "mixed"),
        ],
        ids=["unicode", "100KiB", "equals", "newlines", "shell-syntax", "spaces", "underscore", "one-letter",
             "long-name", "mixed-name"],
    )  # fmt: skip
    def test_unusual_but_valid_names_and_values_round_trip(self, name: str, value: str) -> None:
        backend = self.make_backend()
        entry = make_entry(name, value)
        backend.modify(put_entries(entry))
        got = self.other_handle(backend).read().entries
        assert list(got) == [name]
        assert got[name].value == value
        self.assert_entries(self.other_handle(backend).read(), [entry])

    # -- modify semantics -----------------------------------------------------------------------------------------

    def test_modify_returns_what_the_change_returned(self) -> None:
        backend = self.make_backend()
        token = object()
        assert backend.modify(lambda snapshot: token) is token

        def change(snapshot: Snapshot) -> list[str]:
            put_entries(make_entry("A_VAR", "1"))(snapshot)
            return sorted(snapshot.entries)

        assert backend.modify(change) == ["A_VAR"]
        assert backend.modify(lambda snapshot: None) is None

    def test_modify_sees_what_another_handle_wrote(self) -> None:
        backend = self.make_backend()
        assert backend.read().entries == {}  # this handle has read (and may cache) the empty store
        self.other_handle(backend).modify(put_entries(make_entry("FROM_OTHER", "x")))
        assert "FROM_OTHER" in backend.read().entries
        seen = backend.modify(lambda snapshot: sorted(snapshot.entries))
        assert seen == ["FROM_OTHER"]

    def test_a_failing_change_leaves_the_store_unchanged(self) -> None:
        backend = self.make_backend()
        keep = make_entry("KEEP_ME", "original")

        def setup(snapshot: Snapshot) -> None:
            put_entries(keep)(snapshot)
            snapshot.settings["mode"] = "before"

        backend.modify(setup)
        before = self.other_handle(backend).read()

        def failing(snapshot: Snapshot) -> None:
            snapshot.entries["KEEP_ME"] = keep.with_value("changed")
            snapshot.entries["NEW_ONE"] = make_entry("NEW_ONE", "new")
            snapshot.settings["mode"] = "after"
            raise ChangeFailed("abandon this change")

        with pytest.raises(ChangeFailed, match="abandon this change"):
            backend.modify(failing)
        after = self.other_handle(backend).read()
        assert after == before  # entries, settings and generation
        self.assert_entries(after, [keep])
        # Nothing was left held: the next writer gets through, through either handle.
        backend.modify(put_entries(make_entry("NEXT", "1")))
        self.other_handle(backend).modify(put_entries(make_entry("NEXT_2", "2")))
        assert sorted(backend.read().entries) == ["KEEP_ME", "NEXT", "NEXT_2"]

    def test_a_read_during_a_modify_sees_the_state_before_it_without_waiting(self) -> None:
        backend = self.make_backend()
        backend.modify(put_entries(make_entry("PAIR_A", "0"), make_entry("PAIR_B", "0")))
        inside, release = threading.Event(), threading.Event()
        writer_errors: list[BaseException] = []
        seen: queue.Queue[tuple[str, str] | BaseException] = queue.Queue()

        def slow_change(snapshot: Snapshot) -> None:
            for name in ("PAIR_A", "PAIR_B"):
                snapshot.entries[name] = snapshot.entries[name].with_value("1")
            inside.set()
            if not release.wait(WAIT):
                raise ChangeFailed("the reader never finished")

        def write() -> None:
            try:
                backend.modify(slow_change)
            except BaseException as exc:
                writer_errors.append(exc)

        def read() -> None:
            try:
                entries = self.other_handle(backend).read().entries
                seen.put((entries["PAIR_A"].value, entries["PAIR_B"].value))
            except BaseException as exc:
                seen.put(exc)

        writer_thread = threading.Thread(target=write, daemon=True)
        writer_thread.start()
        try:
            assert inside.wait(WAIT)
            # The writer is inside modify, holding whatever it holds, and stays there until the read is over: a
            # reader that waited for it would never answer.
            threading.Thread(target=read, daemon=True).start()
            try:
                during = seen.get(timeout=READ_BOUND)
            except queue.Empty:
                pytest.fail(f"read() waited for a writer (no answer within {READ_BOUND:g} s)")
        finally:
            release.set()
            writer_thread.join(WAIT)
        assert during == ("0", "0")  # the state before the modify, not half of it
        assert not writer_thread.is_alive() and writer_errors == []
        after = self.other_handle(backend).read().entries
        assert (after["PAIR_A"].value, after["PAIR_B"].value) == ("1", "1")

    def test_reads_never_see_half_of_a_modify(self, request: pytest.FixtureRequest) -> None:
        """A writer sets two variables to the same new value in each modify; a concurrent reader never sees them
        differ."""
        if self.torn_reads is not None:
            request.applymarker(pytest.mark.xfail(reason=self.torn_reads, strict=False))
        backend = self.make_backend()
        backend.modify(put_entries(make_entry("PAIR_A", "0"), make_entry("PAIR_B", "0")))
        rounds = 30
        done = threading.Event()
        errors: list[BaseException] = []

        def write() -> None:
            writer_backend = self.other_handle(backend)
            try:
                for i in range(1, rounds + 1):

                    def change(snapshot: Snapshot, i: int = i) -> None:
                        for name in ("PAIR_A", "PAIR_B"):
                            snapshot.entries[name] = snapshot.entries[name].with_value(str(i))

                    writer_backend.modify(change)
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()

        reader = self.other_handle(backend)
        thread = threading.Thread(target=write)
        thread.start()
        torn: list[tuple[str, str]] = []
        reads = 0
        try:
            while not done.is_set() or reads == 0:
                entries = reader.read().entries
                reads += 1
                pair = (entries["PAIR_A"].value, entries["PAIR_B"].value)
                if pair[0] != pair[1]:
                    torn.append(pair)
        finally:
            thread.join(WAIT)
        assert errors == []
        assert torn == [], f"{len(torn)} of {reads} reads saw half a modify, e.g. {torn[:3]}"
        final = reader.read().entries
        assert (final["PAIR_A"].value, final["PAIR_B"].value) == (str(rounds), str(rounds))

    # -- concurrent writers ---------------------------------------------------------------------------------------

    def check_counts(self, backend: Backend, writers: list[str]) -> None:
        entries = self.other_handle(backend).read().entries
        assert {name: entries[name].value for name in entries} == {
            "SHARED": str(len(writers) * ROUNDS),
            **{f"OWN_{me}": str(ROUNDS) for me in writers},
        }

    def test_two_writers_in_threads_are_both_kept(self) -> None:
        backend = self.make_backend()
        first, second = self.other_handle(backend), self.other_handle(backend)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def write(handle: Backend, name: str) -> None:
            try:
                barrier.wait(WAIT)
                handle.modify(put_entries(make_entry(name, name.lower())))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(h, n)) for h, n in ((first, "ONE"), (second, "TWO"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert errors == []
        got = self.other_handle(backend).read().entries
        assert {name: entry.value for name, entry in got.items()} == {"ONE": "one", "TWO": "two"}

    @pytest.mark.parametrize("handles", ["one-handle", "a-handle-each"])
    def test_concurrent_writer_threads_lose_nothing(self, handles: str) -> None:
        backend = self.make_backend()
        shared = backend if handles == "one-handle" else None
        names = [str(i) for i in range(WRITERS)]
        barrier = threading.Barrier(WRITERS)
        results: queue.Queue[tuple[str, str | None]] = queue.Queue()
        opener = self.factory.reopen(backend) if shared is None else (lambda: shared)
        threads = [
            threading.Thread(target=writer, args=(opener, me, ROUNDS, barrier, results), daemon=True) for me in names
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        outcomes = dict(results.get(timeout=WAIT) for _ in names)
        assert outcomes == {me: None for me in names}
        self.check_counts(backend, names)

    def test_concurrent_writer_processes_lose_nothing(self) -> None:
        if not self.supports_processes:
            pytest.skip(f"{type(self).__name__}: this backend is not shared between processes")
        backend = self.make_backend()
        names = [str(i) for i in range(WRITERS)]
        # spawn, not fork: each writer starts as a new program would, with no state copied from this process.
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(WRITERS)
        results = ctx.Queue()
        opener = self.factory.reopen(backend)
        procs = [ctx.Process(target=writer, args=(opener, me, ROUNDS, barrier, results)) for me in names]
        for proc in procs:
            proc.start()
        try:
            outcomes = dict(results.get(timeout=WAIT) for _ in names)
        finally:
            for proc in procs:
                proc.join(WAIT)
                if proc.is_alive():
                    proc.kill()
        assert outcomes == {me: None for me in names}
        assert [proc.exitcode for proc in procs] == [0] * WRITERS
        self.check_counts(backend, names)

    # -- attribution ----------------------------------------------------------------------------------------------

    def test_attribution_variables_only_in_a_persons_store(self) -> None:
        backend = self.make_backend()
        key = make_entry("WANDB_API_KEY", "svc" + secrets.token_hex(24))
        backend.modify(
            put_entries(
                key,
                make_entry("WANDB_USERNAME", "robot", secret=False),
                make_entry("WANDB_USER_EMAIL", "robot@example.com", secret=False),
            )
        )
        got = self.other_handle(backend).read().entries
        assert got["WANDB_API_KEY"].value == key.value
        if self.is_service:
            # A service account's runs are attributed to the person using it, never to the service.
            assert not set(ATTRIBUTION) & set(got)
        else:
            assert {name: got[name].value for name in ATTRIBUTION} == {
                "WANDB_USERNAME": "robot",
                "WANDB_USER_EMAIL": "robot@example.com",
            }
