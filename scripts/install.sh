#!/bin/sh
# Install credstore for the user who runs this script, on any Python >= 3.10 (Debian/Ubuntu system Python with
# PEP 668's EXTERNALLY-MANAGED, conda, pyenv, a venv's Python), as root or as an ordinary user.
#
#   sh scripts/install.sh [--vault] [--python PYTHON] [--method auto|pipx|uv|venv] [--bin-dir DIR] [SOURCE]
#   sh scripts/install.sh --uninstall
#
# SOURCE is a project directory or a wheel (default: the checkout this script lives in). The project is copied to a
# temporary directory first, so the checkout may be read-only and pip leaves no build/ or *.egg-info in it.
#
# Method (auto picks the first present): pipx, then uv, then a private venv made with PYTHON (default: python3 on
# PATH) under ${XDG_DATA_HOME:-~/.local/share}/credstore/venv, with a symlink for each console script the project
# declares in ~/.local/bin (Debian's and Ubuntu's ~/.profile put it on PATH at login if it exists; this script
# creates it). root's ~/.profile does not add ~/.local/bin, so for root the links go to /usr/local/bin instead.
# pipx and uv are given the same PYTHON. Nothing is installed into PYTHON itself (no --break-system-packages).
#
# What it installed is recorded in ${XDG_DATA_HOME:-~/.local/share}/credstore/install-manifest; --uninstall
# removes exactly that (your encrypted store next to it is never touched). Running it again upgrades in place.
#
# Exit status: 0 installed / uninstalled, 1 failure (one line on stderr saying what to do), 2 bad usage.
set -eu

PROG="credstore-install"
say() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}
usage_error() {
    printf '%s: %s (see: sh %s --help)\n' "$PROG" "$*" "$0" >&2
    exit 2
}

TAB="$(printf '\t')"
NL='
'

# --- arguments ----------------------------------------------------------------------------------------------------
action=install
method=auto
python_arg=""
extras=""
bin_dir_arg=""
source_arg=""
while [ "$#" -gt 0 ]; do
    case "$1" in
    --uninstall) action=uninstall ;;
    --vault) extras="vault" ;;
    --python)
        [ "$#" -ge 2 ] || usage_error "--python needs a value"
        python_arg="$2"
        shift
        ;;
    --python=*) python_arg="${1#--python=}" ;;
    --method)
        [ "$#" -ge 2 ] || usage_error "--method needs a value"
        method="$2"
        shift
        ;;
    --method=*) method="${1#--method=}" ;;
    --bin-dir)
        [ "$#" -ge 2 ] || usage_error "--bin-dir needs a value"
        bin_dir_arg="$2"
        shift
        ;;
    --bin-dir=*) bin_dir_arg="${1#--bin-dir=}" ;;
    -h | --help)
        sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    --) ;;
    -*) usage_error "unknown option $1" ;;
    *)
        [ -z "$source_arg" ] || usage_error "one SOURCE only (got $source_arg and $1)"
        source_arg="$1"
        ;;
    esac
    shift
done
case "$method" in
auto | pipx | uv | venv) ;;
*) usage_error "--method must be auto, pipx, uv or venv, not '$method'" ;;
esac

# --- who and where ------------------------------------------------------------------------------------------------
uid="$(id -u)"
[ -n "${HOME:-}" ] || die "HOME is not set"
case "$HOME" in
/*) ;;
*) die "HOME must be an absolute path, not '$HOME'" ;;
esac
case "$HOME" in
*"$NL"* | *"$TAB"*) die "HOME contains a tab or newline; not supported" ;;
esac
if [ -d "$HOME" ]; then
    # sudo without -H keeps the caller's HOME: root-owned files there would break that user's own install later.
    home_owner="$(ls -nd "$HOME" | awk '{print $3}')"
    if [ "$home_owner" != "$uid" ] && [ "$home_owner" != 0 ]; then
        die "HOME=$HOME belongs to uid $home_owner, not to you (uid $uid): run this as that user, or with sudo -H"
    fi
fi
data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
cs_data="$data_home/credstore"
manifest="$cs_data/install-manifest"
venv_dir="$cs_data/venv"
if [ -n "$bin_dir_arg" ]; then
    bin_dir="$bin_dir_arg"
elif [ "$uid" -eq 0 ]; then
    # Debian's /root/.profile (from base-files) never adds ~/.local/bin; /etc/profile gives root /usr/local/bin.
    bin_dir=/usr/local/bin
else
    bin_dir="$HOME/.local/bin"
fi

# --- the manifest: what this script made, one record per line, fields separated by tabs -------------------------
#   method <m> / python <path> / venv <dir> / tool <pipx|uv> <abs path of the tool> / link <path> <target> / dir <path>
m_method=""
m_python=""
m_venv=""
m_tool=""
m_links=""
m_dirs=""

read_manifest() {
    [ -f "$manifest" ] || return 0
    while IFS="$TAB" read -r kind a b; do
        case "$kind" in
        method) m_method="$a" ;;
        python) m_python="$a" ;;
        venv) m_venv="$a" ;;
        tool) m_tool="$a$TAB$b" ;;
        link) m_links="$m_links$a$TAB$b$NL" ;;
        dir) m_dirs="$m_dirs$a$NL" ;;
        esac
    done <"$manifest"
}

write_manifest() {
    mkdir -p "$cs_data"
    {
        printf '# written by credstore scripts/install.sh; "sh scripts/install.sh --uninstall" removes these\n'
        [ -z "$m_method" ] || printf 'method\t%s\n' "$m_method"
        [ -z "$m_python" ] || printf 'python\t%s\n' "$m_python"
        [ -z "$m_venv" ] || printf 'venv\t%s\n' "$m_venv"
        [ -z "$m_tool" ] || printf 'tool\t%s\n' "$m_tool"
        printf '%s' "$m_links" | while IFS="$TAB" read -r l t; do
            [ -z "$l" ] || printf 'link\t%s\t%s\n' "$l" "$t"
        done
        printf '%s' "$m_dirs" | while IFS= read -r d; do
            [ -z "$d" ] || printf 'dir\t%s\n' "$d"
        done
    } >"$manifest.tmp"
    mv -f "$manifest.tmp" "$manifest"
}

has_line() { # has_line LIST LINE
    case "$NL$1" in
    *"$NL$2$NL"*) return 0 ;;
    esac
    return 1
}

# make_dir DIR [MODE]: create DIR and missing parents, recording each one created (so uninstall can rmdir them).
make_dir() {
    [ -d "$1" ] && return 0
    make_dir "$(dirname "$1")"
    if [ -n "${2:-}" ]; then
        mkdir -m "$2" "$1"
    else
        mkdir "$1"
    fi
    # Recorded before the manifest's own directory may exist: kept in m_dirs and written with the manifest.
    has_line "$m_dirs" "$1" || m_dirs="$m_dirs$1$NL"
}

# remove_link PATH TARGET: remove PATH only if it is still our symlink to TARGET.
remove_link() {
    if [ -L "$1" ] && [ "$(readlink "$1")" = "$2" ]; then
        rm -f "$1"
        say "removed $1"
    elif [ -e "$1" ] || [ -L "$1" ]; then
        say "left $1 alone: it no longer points to $2"
    fi
}

remove_venv() { # remove_venv DIR: only a directory that is a venv (pyvenv.cfg) at our own path
    [ -n "$1" ] || return 0
    [ -e "$1" ] || return 0
    [ "$1" = "$venv_dir" ] || die "manifest names $1 as the venv, not $venv_dir; remove it yourself if it is yours"
    [ -f "$1/pyvenv.cfg" ] || die "$1 is not a venv (no pyvenv.cfg); move it away and run again"
    rm -rf "$1"
    say "removed $1"
}

tool_uninstall() { # undo a pipx/uv install recorded as "<name>\t<path>"
    [ -n "$1" ] || return 0
    t_name="${1%%"$TAB"*}"
    t_path="${1#*"$TAB"}"
    if [ ! -x "$t_path" ]; then
        t_path="$(command -v "$t_name" || true)"
    fi
    [ -n "$t_path" ] || die "credstore was installed with $t_name, which is no longer on PATH: run '$t_name uninstall credstore' where it is"
    case "$t_name" in
    pipx) "$t_path" uninstall credstore >/dev/null 2>&1 || say "$t_name: credstore was not installed any more" ;;
    uv) "$t_path" tool uninstall credstore >/dev/null 2>&1 || say "$t_name: credstore was not installed any more" ;;
    esac
    say "removed credstore from $t_name ($t_path)"
}

remove_empty_dirs() { # rmdir the recorded directories that are empty, deepest first
    printf '%s' "$m_dirs" | awk 'NF { print length($0) "\t" $0 }' | sort -rn | cut -f2- | while IFS= read -r d; do
        if [ -d "$d" ] && rmdir "$d" 2>/dev/null; then
            say "removed empty directory $d"
        fi
    done
}

uninstall() {
    if [ ! -f "$manifest" ]; then
        say "nothing to uninstall: no $manifest (nothing was installed by this script as uid $uid with HOME=$HOME)"
        return 0
    fi
    read_manifest
    printf '%s' "$m_links" | while IFS="$TAB" read -r l t; do
        [ -z "$l" ] || remove_link "$l" "$t"
    done
    tool_uninstall "$m_tool"
    remove_venv "$m_venv"
    rm -f "$manifest"
    say "removed $manifest"
    remove_empty_dirs
    if [ -d "$cs_data" ]; then
        say "kept $cs_data (your store; delete it yourself only if you mean to lose every secret in it)"
    fi
    say "credstore is uninstalled"
}

if [ "$action" = uninstall ]; then
    uninstall
    exit 0
fi

# --- the Python ---------------------------------------------------------------------------------------------------
if [ -n "$python_arg" ]; then
    py="$python_arg"
    command -v "$py" >/dev/null 2>&1 || die "--python $py: not found or not executable"
else
    py="$(command -v python3 || command -v python || true)"
    [ -n "$py" ] || die "no python3 on PATH: install Python 3.10 or newer (Debian/Ubuntu: sudo apt-get install python3 python3-venv)"
fi
# The real interpreter (a pyenv shim or a conda activation resolves here), its version, and its EXTERNALLY-MANAGED.
py_info="$("$py" -c 'import sys, sysconfig, os
print(sys.executable)
print("%d.%d.%d" % sys.version_info[:3])
print(int(sys.version_info >= (3, 10)))
print(int(os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))' 2>/dev/null)" ||
    die "$py does not run as Python"
py_exe="$(printf '%s\n' "$py_info" | sed -n 1p)"
py_version="$(printf '%s\n' "$py_info" | sed -n 2p)"
py_ok="$(printf '%s\n' "$py_info" | sed -n 3p)"
py_managed="$(printf '%s\n' "$py_info" | sed -n 4p)"
[ "$py_ok" = 1 ] || die "$py_exe is Python $py_version; credstore needs 3.10 or newer (pass one with --python)"
py_mm="${py_version%.*}"

# --- the source ---------------------------------------------------------------------------------------------------
script_dir="$(cd "$(dirname "$0")" && pwd -P)"
src="${source_arg:-$script_dir/..}"
[ -e "$src" ] || die "source $src does not exist"
stage="$(mktemp -d "${TMPDIR:-/tmp}/credstore-install.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE
if [ -d "$src" ]; then
    src="$(cd "$src" && pwd -P)"
    [ -f "$src/pyproject.toml" ] || die "$src has no pyproject.toml: give the credstore project directory or a wheel"
    # Copy the project (not its .git, build output or caches) so that pip builds outside the checkout.
    (cd "$src" && tar -cf - --exclude=./.git --exclude=./build --exclude=./dist --exclude=./.venv \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
        --exclude=.hypothesis .) | (cd "$stage" && tar -xf -) || die "cannot copy $src to $stage"
    chmod -R u+rwX "$stage"
    install_path="$stage"
    source_desc="$src"
else
    case "$src" in
    *.whl) ;;
    *) die "$src is neither a directory nor a .whl file" ;;
    esac
    src="$(cd "$(dirname "$src")" && pwd -P)/$(basename "$src")"
    # Keep the wheel's file name: pip reads the name and version from it.
    cp "$src" "$stage/" || die "cannot read $src"
    install_path="$stage/$(basename "$src")"
    source_desc="$src"
fi
spec_extras=""
[ -z "$extras" ] || spec_extras="[$extras]"
# PEP 508 direct reference for pipx and uv (extras included, for a directory and a wheel alike).
spec="credstore$spec_extras @ file://$install_path"

# --- the method ---------------------------------------------------------------------------------------------------
read_manifest
if [ "$method" = auto ]; then
    if command -v pipx >/dev/null 2>&1; then
        method=pipx
    elif command -v uv >/dev/null 2>&1; then
        method=uv
    else
        method=venv
    fi
fi

# ensure_venv_support: Debian/Ubuntu split ensurepip into python3-venv; without it "python3 -m venv" fails.
ensure_venv_support() {
    if ! "$py_exe" -c 'import ensurepip, venv; ensurepip.version()' >/dev/null 2>&1; then
        venv_pkg=python3-venv
        if [ -x /usr/bin/python3 ] && [ "$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$py_mm" ]; then
            venv_pkg="python$py_mm-venv"
        fi
        case "$py_exe" in
        /usr/bin/* | /bin/*) debian_python=1 ;;
        *) debian_python=0 ;;
        esac
        if [ "$debian_python" = 1 ] && [ "$uid" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "$py_exe has no ensurepip: installing $venv_pkg with apt-get"
            if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$venv_pkg" >"$stage/apt.log" 2>&1; then
                DEBIAN_FRONTEND=noninteractive apt-get update -q >"$stage/apt.log" 2>&1 || true
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$venv_pkg" >"$stage/apt.log" 2>&1 ||
                    die "apt-get install $venv_pkg failed: $(tail -n 1 "$stage/apt.log")"
            fi
            "$py_exe" -c 'import ensurepip, venv; ensurepip.version()' >/dev/null 2>&1 ||
                die "$py_exe still has no ensurepip after installing $venv_pkg"
        elif [ "$debian_python" = 1 ]; then
            die "$py_exe cannot make a venv (no ensurepip): run 'sudo apt-get install $venv_pkg' (or install pipx: 'sudo apt-get install pipx') and run this again"
        else
            die "$py_exe cannot make a venv (no ensurepip module): install your Python's venv/ensurepip support, or pipx or uv, or pass another --python"
        fi
    fi
}

# link_is_free LINK TARGET RECORDED_LINKS: LINK is absent, already points to TARGET, or is a link this script made.
link_is_free() {
    [ -L "$1" ] || [ -e "$1" ] || return 0
    lf_current="$(readlink "$1" || true)"
    [ -n "$lf_current" ] || return 1
    [ "$lf_current" = "$2" ] || has_line "$3" "$1$TAB$lf_current"
}
refuse_link() {
    die "$1 already exists and was not made by this script ($(ls -ld "$1" | cut -c1-200)): remove it (pip uninstall credstore, if pip put it there) or pass --bin-dir"
}

# Checked before anything is changed: a refusal leaves no trace.
[ "$method" != venv ] || ensure_venv_support
if [ "$method" = venv ] || [ "$uid" -eq 0 ] || [ -n "$bin_dir_arg" ]; then
    # The main command's link; others the project may declare are checked again once they are known.
    link_is_free "$bin_dir/credstore" "$venv_dir/bin/credstore" "$m_links" || refuse_link "$bin_dir/credstore"
fi

# A previous install by another method (or of another Python's venv) is removed first; its links are pruned below.
if [ -n "$m_method" ] && { [ "$m_method" != "$method" ] || { [ "$method" = venv ] && [ "$m_python" != "$py_exe" ]; }; }; then
    say "replacing the previous install ($m_method, $m_python)"
    tool_uninstall "$m_tool"
    remove_venv "$m_venv"
    m_tool=""
    m_venv=""
fi
old_links="$m_links"
m_links=""

# console_scripts PY: the commands the installed project put in its environment's bin directory: its plain scripts
# (the files its RECORD lists there; credstore ships its commands so, see bin/credstore) and any entry-point scripts.
console_scripts() {
    "$1" -I - <<'EOF'
import importlib.metadata as md
import os
import sysconfig

dist = md.distribution("credstore")
names = {ep.name for ep in dist.entry_points if ep.group == "console_scripts"}
scripts = os.path.realpath(sysconfig.get_path("scripts"))
for path in dist.files or ():
    where = os.path.realpath(str(dist.locate_file(path)))
    if os.path.dirname(where) == scripts:
        names.add(os.path.basename(where))
print("\n".join(sorted(names)))
EOF
}

# Make sure the credstore data directory exists private (0700): credstore refuses a store home others can read.
make_dir "$cs_data" 700

case "$method" in
venv)
    if [ -e "$venv_dir" ] && ! "$venv_dir/bin/python" -c 'import sys' >/dev/null 2>&1; then
        # A venv whose Python is gone (or a half-made one from an interrupted run): start over.
        remove_venv "$venv_dir"
    elif [ -e "$venv_dir" ] && [ -z "$m_venv" ] && [ ! -f "$venv_dir/pyvenv.cfg" ]; then
        die "$venv_dir exists and is not a venv made by this script; move it away and run again"
    fi
    if [ ! -e "$venv_dir" ]; then
        say "creating a venv with $py_exe (Python $py_version) in $venv_dir"
        m_venv="$venv_dir"
        m_method=venv
        m_python="$py_exe"
        write_manifest
        "$py_exe" -m venv "$venv_dir" >"$stage/venv.log" 2>&1 || die "$py_exe -m venv $venv_dir failed: $(tail -n 1 "$stage/venv.log")"
    else
        say "upgrading the venv in $venv_dir"
    fi
    m_venv="$venv_dir"
    m_method=venv
    m_python="$py_exe"
    write_manifest
    say "pip install $install_path$spec_extras"
    # --force-reinstall: the same version from a changed checkout is still reinstalled; dependencies come from
    # pip's cache when they are already there. A plain path, not a file:// URL: pip caches no wheel built from it.
    "$venv_dir/bin/python" -m pip install --disable-pip-version-check --no-input -q --upgrade --force-reinstall \
        "$install_path$spec_extras" >"$stage/pip.log" 2>&1 || {
        tail -n 20 "$stage/pip.log" >&2
        die "pip install into $venv_dir failed (above); nothing was installed outside it"
    }
    scripts_dir="$venv_dir/bin"
    env_python="$venv_dir/bin/python"
    ;;
pipx)
    tool="$(command -v pipx)" || die "--method pipx: pipx is not on PATH"
    say "pipx install --python $py_exe $spec"
    "$tool" install --force --python "$py_exe" "$spec" >"$stage/pipx.log" 2>&1 || {
        tail -n 20 "$stage/pipx.log" >&2
        die "pipx install failed (above)"
    }
    m_method=pipx
    m_python="$py_exe"
    m_tool="pipx$TAB$tool"
    write_manifest
    pipx_venvs="$("$tool" environment --value PIPX_LOCAL_VENVS 2>/dev/null)" || die "pipx environment --value PIPX_LOCAL_VENVS failed"
    scripts_dir="$pipx_venvs/credstore/bin"
    env_python="$scripts_dir/python"
    tool_bin="$("$tool" environment --value PIPX_BIN_DIR)"
    ;;
uv)
    tool="$(command -v uv)" || die "--method uv: uv is not on PATH"
    say "uv tool install --python $py_exe $spec"
    UV_PYTHON_DOWNLOADS=never "$tool" tool install --force --reinstall --python "$py_exe" "$spec" \
        >"$stage/uv.log" 2>&1 || {
        tail -n 20 "$stage/uv.log" >&2
        die "uv tool install failed (above)"
    }
    m_method=uv
    m_python="$py_exe"
    m_tool="uv$TAB$tool"
    write_manifest
    scripts_dir="$("$tool" tool dir)/credstore/bin"
    env_python="$scripts_dir/python"
    tool_bin="$("$tool" tool dir --bin)"
    ;;
esac

names="$(console_scripts "$env_python")" || die "cannot read credstore's console scripts from $env_python"
[ -n "$names" ] || die "the installed credstore declares no console scripts"

# --- links --------------------------------------------------------------------------------------------------------
# venv: always. pipx/uv link into their own bin directory; root also gets links in /usr/local/bin (or --bin-dir).
link_scripts=1
if [ "$method" != venv ] && [ -z "$bin_dir_arg" ] && [ "$uid" -ne 0 ]; then
    link_scripts=0
    bin_dir="$tool_bin"
fi
# Debian's ~/.profile adds ~/.local/bin only if it exists at login: make sure it does.
make_dir "$bin_dir"
write_manifest
new_links=""
for name in $names; do
    target="$scripts_dir/$name"
    [ -x "$target" ] || die "$target is missing after the install"
    [ "$link_scripts" = 1 ] || continue
    link="$bin_dir/$name"
    link_is_free "$link" "$target" "$old_links" || refuse_link "$link"
    ln -sfn "$target" "$link.credstore-new"
    mv -f "$link.credstore-new" "$link"
    new_links="$new_links$link$TAB$target$NL"
    m_links="$new_links"
    write_manifest
done
# Links of an earlier install that this one did not make again (a script no longer declared, another method).
printf '%s' "$old_links" | while IFS="$TAB" read -r l t; do
    [ -n "$l" ] || continue
    has_line "$new_links" "$l$TAB$(readlink "$l" 2>/dev/null || true)" || remove_link "$l" "$t"
done
m_links="$new_links"
write_manifest

# --- report -------------------------------------------------------------------------------------------------------
say "installed credstore from $source_desc${extras:+ with the $extras extra}"
say "  method: $method$([ "$method" = venv ] && printf ' (private venv %s)' "$venv_dir")"
say "  python: $py_exe (Python $py_version$([ "$py_managed" = 1 ] && printf ', externally managed: left untouched'))"
for name in $names; do
    if [ "$link_scripts" = 1 ]; then
        say "  command: $bin_dir/$name -> $scripts_dir/$name"
    else
        say "  command: $bin_dir/$name"
    fi
done
say "  record: $manifest"
say "uninstall with: sh $script_dir/install.sh --uninstall"
if [ "$uid" -eq 0 ] && [ "$link_scripts" = 1 ]; then
    say "note: these commands are root's own (their Python lives in $HOME); other users install their own with this script"
fi

# Does a new login shell find it? Run the user's own login shell the way a login starts it (clean environment).
login_shell="$(getent passwd "$uid" 2>/dev/null | cut -d: -f7)"
[ -n "$login_shell" ] || login_shell="${SHELL:-/bin/sh}"
first="$(printf '%s\n' "$names" | sed -n 1p)"
found=""
checked=0
command -v timeout >/dev/null 2>&1 || login_shell=""
case "$(basename "${login_shell:-none}")" in
bash | zsh | sh | dash | ksh | mksh | fish)
    checked=1
    found="$(cd / && timeout 20 env -i HOME="$HOME" USER="$(id -un)" LOGNAME="$(id -un)" SHELL="$login_shell" \
        LANG="${LANG:-C.UTF-8}" TERM=dumb "$login_shell" -l -c "command -v $first" </dev/null 2>/dev/null |
        tail -n 1)" || true
    ;;
esac
case "$PATH" in
*":$bin_dir:"* | "$bin_dir:"* | *":$bin_dir" | "$bin_dir") on_path_now=1 ;;
*) on_path_now=0 ;;
esac
if [ "$checked" = 0 ]; then
    say "not checked whether a new login shell finds $first (no timeout(1), or a login shell this script cannot run)"
elif [ "$found" = "$bin_dir/$first" ]; then
    say "a new login shell ($login_shell) finds $first at $found"
elif [ -n "$found" ]; then
    say "warning: a new login shell ($login_shell) finds another $first first: $found (remove it, or put $bin_dir earlier in PATH)"
else
    say "warning: a new login shell ($login_shell) does not find $first: add $bin_dir to PATH in its profile, e.g.: echo 'export PATH=\"$bin_dir:\$PATH\"' >> ~/.profile (zsh: ~/.zprofile; fish: fish_add_path $bin_dir)"
fi
if [ "$on_path_now" = 0 ]; then
    say "this shell's PATH does not have $bin_dir yet: run  export PATH=\"$bin_dir:\$PATH\"  (or log in again)"
fi
