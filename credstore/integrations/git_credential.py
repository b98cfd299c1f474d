"""``git-credential-credstore``: a git credential helper whose items are credstore keyring items.

Enable it with ``git config --global credential.helper credstore`` (the bare name: git runs
``git credential-credstore OPERATION``, and Hugging Face's ``--add-to-git-credential`` recognises a configured
helper by that name). ``credstore --profile NAME`` as the helper's value selects a profile.

The protocol (gitcredentials(7), git-credential(1)): git writes ``key=value`` lines on stdin, up to a blank line or
the end; the operation is the last argument.

- ``get``: prints ``username=`` / ``password=`` for the item of ``(protocol, host[, path], username)`` when one is
  stored, and nothing otherwise. Without a username, one item of that host (the one stored most recently). For
  ``https://huggingface.co`` with no stored item it answers with the profile's ``HF_TOKEN`` (as ``credstore exec``
  would resolve it) and the username ``hf_user`` (huggingface_hub's own default) unless git gave one.
- ``store``: keeps the password (``git credential approve``, after a successful login). Prints nothing.
- ``erase``: deletes the matching items (``git credential reject``); when git sends the rejected password, only an
  item holding that password is deleted. Prints nothing.
- Unknown operations and keys are ignored. It never prompts: a locked store answers nothing, with one line on stderr.

Items are keyed as keyring items with service ``git:<protocol>://<host>[/<path>]`` (the host with its port) and the
username as given (none given is kept distinct from an empty one).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from credstore.app.context import Context

#: Hosts whose git password is a Hugging Face token.
HF_HOSTS = ("huggingface.co", "hf.co")
#: The git username huggingface_hub uses (huggingface_hub.utils._git_credential.set_git_credential).
HF_USERNAME = "hf_user"
OPERATIONS = ("get", "store", "erase")


def parse_attributes(data: bytes) -> dict[str, str]:
    """``key=value`` lines up to the first blank line; the first value of each key wins; ``key[]`` lists and lines
    without ``=`` are ignored. Bytes that are not UTF-8 survive the round trip (surrogateescape)."""
    attributes: dict[str, str] = {}
    for raw in data.split(b"\n"):
        line = raw.decode("utf-8", "surrogateescape").removesuffix("\r")
        if line == "":
            break
        key, sep, value = line.partition("=")
        if not sep or key.endswith("[]") or key in attributes:
            continue
        attributes[key] = value
    if "url" in attributes and not attributes.get("host"):
        from urllib.parse import urlsplit

        parts = urlsplit(attributes["url"])
        attributes.setdefault("protocol", parts.scheme)
        attributes["host"] = parts.netloc.rpartition("@")[2]
        if parts.path.strip("/") and "path" not in attributes:
            attributes["path"] = parts.path.lstrip("/")
    return attributes


def service_of(attributes: Mapping[str, str]) -> str | None:
    """The keyring service of a git credential, None when git named no protocol or host."""
    from credstore.app.keyring_items import git_service

    protocol, host = attributes.get("protocol", ""), attributes.get("host", "")
    if not protocol or not host:
        return None
    return git_service(protocol, host, attributes.get("path", ""))


class Unrepresentable(Exception):
    """A stored value git's line protocol cannot carry (a newline or NUL): answered with nothing."""


def _line(key: str, value: str) -> bytes:
    if "\n" in value or "\0" in value:
        raise Unrepresentable(key)
    return f"{key}={value}\n".encode("utf-8", "surrogateescape")


def answer(ctx: Context, attributes: Mapping[str, str]) -> bytes:
    """What ``get`` prints for ``attributes``."""
    from credstore.app import keyring_items

    service = service_of(attributes)
    if service is None:
        return b""
    username = attributes.get("username")
    item = keyring_items.get(ctx, service, username) if username is not None else keyring_items.get_any(ctx, service)
    if item is not None:
        out = _line("username", item.username) if item.username is not None else b""
        return out + _line("password", item.password)
    if attributes.get("protocol") == "https" and attributes.get("host") in HF_HOSTS:
        token = hf_token(ctx)
        if token:
            return _line("username", username if username is not None else HF_USERNAME) + _line("password", token)
    return b""


def hf_token(ctx: Context) -> str | None:
    """The HF_TOKEN ``credstore exec`` would give (audited as a read), None when there is none."""
    from credstore.app import delivery
    from credstore.errors import NotFoundError

    try:
        resolved = delivery.resolve(ctx, ["HF_TOKEN"], {})
    except NotFoundError:
        return None
    item = resolved.get("HF_TOKEN")
    return item.value if item is not None and item.value else None


def store(ctx: Context, attributes: Mapping[str, str]) -> None:
    from credstore.app import keyring_items

    service = service_of(attributes)
    password = attributes.get("password")
    if service is None or not password:
        return
    keyring_items.put(ctx, service, attributes.get("username"), password)  # an unchanged password is not rewritten


def erase(ctx: Context, attributes: Mapping[str, str]) -> None:
    from credstore.app import keyring_items

    service = service_of(attributes)
    if service is None:
        return
    username = attributes.get("username")
    keyring_items.remove_matching(ctx, service, None if username is None else [username], attributes.get("password"))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    profile = None
    if len(args) >= 3 and args[0] == "--profile":
        profile = args[1]
        args = args[2:]
    elif args and args[0].startswith("--profile="):
        profile = args[0].partition("=")[2]
        args = args[1:]
    if len(args) != 1:
        sys.stderr.write("usage: git-credential-credstore [--profile NAME] get|store|erase  (run by git)\n")
        return 2
    operation = args[0]
    data = sys.stdin.buffer.read()
    if operation not in OPERATIONS:
        return 0  # the protocol: helpers ignore operations they do not know
    from credstore.app.context import Context
    from credstore.errors import CredstoreError

    ctx = Context(profile, ask_passphrase=None, via="git-credential")
    attributes = parse_attributes(data)
    try:
        if operation == "get":
            try:
                out = answer(ctx, attributes)
            except Unrepresentable as exc:
                sys.stderr.write(f"credstore: git credential get: the stored {exc} holds a newline; not answered\n")
                return 0
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
        elif operation == "store":
            store(ctx, attributes)
        else:
            erase(ctx, attributes)
    except CredstoreError as exc:
        sys.stderr.write(f"credstore: git credential {operation}: {exc}\n")
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
