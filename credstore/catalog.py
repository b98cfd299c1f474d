"""Built-in knowledge of well-known variables: which service they belong to, whether they are secret, and a format
check that matches what the real client accepts (see shared reference: credential-facts.md).

Checks only warn: where the client is lenient credstore must not be stricter. Any other valid variable name can be
stored too and is secret unless marked plain.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would compile string annotations (see store/base).

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from credstore.errors import UsageError

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# W&B: optional "prefix-" then >= 40 of [A-Za-z0-9_-]; since "-" is allowed in the body too, this is "all of
# [A-Za-z0-9_-], at least 40 long". A JWT (three base64url parts) is accepted as well.
_WANDB_KEY = re.compile(r"[A-Za-z0-9_-]{40,}\Z")
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\Z")
_WANDB_MODES = ("online", "offline", "disabled", "dryrun", "shared", "run")


def _check_wandb_key(value: str) -> str | None:
    if _WANDB_KEY.match(value) or _JWT.match(value):
        return None
    return "does not look like a W&B API key (expected at least 40 letters, digits, '_' or '-', or a JWT)"


def _check_wandb_mode(value: str) -> str | None:
    if value in _WANDB_MODES:
        return None
    return f"is not a mode wandb accepts ({', '.join(_WANDB_MODES)}); wandb will reject it"


def _check_url(value: str) -> str | None:
    if re.match(r"https?://[^\s/]+", value):
        return None
    return "does not look like an http(s) URL"


def _check_email(value: str) -> str | None:
    return None if re.match(r"[^@\s]+@[^@\s]+\Z", value) else "does not look like an e-mail address"


def _prefix(*prefixes: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value.startswith(prefixes):
            return None
        return f"does not start with {' or '.join(repr(p) for p in prefixes)} as such keys usually do"

    return check


class KnownVariable(NamedTuple):
    name: str
    service: str
    secret: bool
    description: str
    check: Callable[[str], str | None] | None = None
    # Asked for by `credstore add SERVICE`, in this order.
    prompt: bool = True
    # Names the person a run is attributed to: always the person's own, never taken from a service account.
    attribution: bool = False


class Service(NamedTuple):
    name: str
    title: str
    variables: tuple[KnownVariable, ...]
    # Where people get a key (shown by `credstore add`).
    key_url: str | None = None
    # netrc `machine` entries the service's client reads its key from, in the order it reads them.
    netrc_hosts: tuple[str, ...] = ()


def _svc(name: str, title: str, *variables: tuple, key_url: str | None = None, netrc_hosts: tuple = ()) -> Service:
    known = tuple(KnownVariable(v[0], name, *v[1:]) for v in variables)
    return Service(name, title, known, key_url, netrc_hosts)


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        _svc(
            "wandb",
            "Weights & Biases",
            ("WANDB_API_KEY", True, "API key", _check_wandb_key),
            ("WANDB_USERNAME", False, "user a service-account run is attributed to", None, True, True),
            (
                "WANDB_USER_EMAIL",
                False,
                "attribution by e-mail; the username wins if both are set",
                _check_email,
                True,
                True,
            ),
            ("WANDB_ENTITY", False, "team or user the runs go to"),
            ("WANDB_PROJECT", False, "project"),
            ("WANDB_BASE_URL", False, "server (the key is sent here)", _check_url, False),
            ("WANDB_MODE", False, "online / offline / disabled ...", _check_wandb_mode, False),
            key_url="https://wandb.ai/authorize",
            # wandb >= 0.31 reads the CoreWeave host first and falls back to api.wandb.ai (credential-facts.md).
            netrc_hosts=("api.forge.coreweave.com", "api.wandb.ai"),
        ),
        _svc(
            "hf",
            "Hugging Face",
            ("HF_TOKEN", True, "access token", _prefix("hf_")),
            ("HUGGING_FACE_HUB_TOKEN", True, "legacy token variable", _prefix("hf_"), False),
            ("HF_ENDPOINT", False, "server", _check_url, False),
            key_url="https://huggingface.co/settings/tokens",
        ),
        _svc(
            "openai",
            "OpenAI",
            ("OPENAI_API_KEY", True, "API key", _prefix("sk-")),
            ("OPENAI_ADMIN_KEY", True, "admin key", _prefix("sk-"), False),
            ("OPENAI_ORG_ID", False, "organization id"),
            ("OPENAI_PROJECT_ID", False, "project id"),
            ("OPENAI_BASE_URL", False, "server", _check_url, False),
            key_url="https://platform.openai.com/api-keys",
        ),
        _svc(
            "anthropic",
            "Anthropic",
            ("ANTHROPIC_API_KEY", True, "API key", _prefix("sk-ant-")),
            ("ANTHROPIC_AUTH_TOKEN", True, "bearer token", None, False),
            ("ANTHROPIC_BASE_URL", False, "server", _check_url, False),
            key_url="https://console.anthropic.com/settings/keys",
        ),
        _svc(
            "mlflow",
            "MLflow",
            ("MLFLOW_TRACKING_URI", False, "tracking server", None),
            ("MLFLOW_TRACKING_USERNAME", False, "user name"),
            ("MLFLOW_TRACKING_PASSWORD", True, "password"),
            ("MLFLOW_TRACKING_TOKEN", True, "token", None, False),
        ),
        _svc(
            "comet",
            "Comet",
            ("COMET_API_KEY", True, "API key"),
            ("COMET_URL_OVERRIDE", False, "server", _check_url, False),
        ),
        _svc(
            "neptune",
            "Neptune",
            ("NEPTUNE_API_TOKEN", True, "API token"),
            ("NEPTUNE_PROJECT", False, "workspace/project"),
        ),
        _svc(
            "aws",
            "AWS",
            ("AWS_ACCESS_KEY_ID", False, "access key id", _prefix("AKIA", "ASIA")),
            ("AWS_SECRET_ACCESS_KEY", True, "secret access key"),
            ("AWS_SESSION_TOKEN", True, "session token (temporary credentials)", None, False),
            ("AWS_DEFAULT_REGION", False, "region"),
        ),
    )
}

VARIABLES: dict[str, KnownVariable] = {v.name: v for s in SERVICES.values() for v in s.variables}
ATTRIBUTION_VARIABLES = frozenset(v.name for v in VARIABLES.values() if v.attribution)

# Names that change how programs, their loaders or shells run, or where they send data and whom they trust. Whoever
# sets one in another person's environment runs code as that person (LD_PRELOAD, BASH_ENV, PATH...) or reads their
# traffic. A service account never exports them (refused by `service set`, filtered when read); a person stores one
# in their own profile only with `credstore set --allow-dangerous`. Compared in upper case (curl reads http_proxy).
DANGEROUS_NAMES: frozenset[str] = frozenset(
    (
        # shells: startup files, prompts run as commands, word splitting, options, the command search path
        "BASH_ENV", "ENV", "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS3", "PS4", "IFS", "PATH", "CDPATH", "SHELLOPTS",
        "BASHOPTS", "GLOBIGNORE", "ZDOTDIR", "FPATH", "HISTFILE", "HOME", "SHELL", "USER", "LOGNAME", "TMPDIR",
        # locale: a multibyte locale changes how a shell reads the bytes of quoted text (LANG, LANGUAGE; LC_* below)
        "LANG", "LANGUAGE",
        # glibc: character set converters, locale files, resolver and tunables loaded into every program
        "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "NLSPATH", "RESOLV_HOST_CONF",
        "RES_OPTIONS", "TZDIR", "GLIBC_TUNABLES",
        # interpreters: modules and options loaded at startup (Python's family is by prefix below)
        "NODE_OPTIONS", "NODE_PATH", "PERL5LIB", "PERL5OPT", "PERLLIB", "PERL5DB", "RUBYOPT", "RUBYLIB",
        "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "R_PROFILE", "R_PROFILE_USER",
        # commands other programs run: editors, pagers, ssh for git, password helpers
        "EDITOR", "VISUAL", "PAGER", "MANPAGER", "LESSOPEN", "LESSCLOSE", "BROWSER", "SSH_ASKPASS", "SUDO_ASKPASS",
        # agents and buses a program trusts with keys (ssh, gpg, the Secret Service, Kerberos)
        "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "GNUPGHOME", "DBUS_SESSION_BUS_ADDRESS", "KRB5CCNAME",
        # whom TLS clients trust, where their traffic goes, what OpenSSL loads and where it writes session keys
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY", "OPENSSL_CONF", "OPENSSL_ENGINES",
        "OPENSSL_MODULES", "SSLKEYLOGFILE", "DOCKER_HOST",
        # client configurations that run helper commands to fetch credentials
        "KUBECONFIG", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "BOTO_CONFIG",
        # package indexes: an install then runs the index owner's code
        "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX",
        "UV_DEFAULT_INDEX", "CONDARC",
    )
)  # fmt: skip
DANGEROUS_PREFIXES: tuple[str, ...] = (
    "LD_",  # the dynamic loader: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT...
    "DYLD_",  # the same on macOS
    "MALLOC_",  # glibc's allocator (MALLOC_TRACE writes files)
    "LC_",  # locale categories (see LANG)
    "BASH_FUNC_",  # exported bash functions: any command name becomes code
    "BASH_",  # bash's own variables (BASH_ENV, BASH_XTRACEFD, BASH_LOADABLES_PATH...)
    "PYTHON",  # PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, PYTHONWARNINGS, PYTHONBREAKPOINT... all of Python's startup
    "GIT_",  # GIT_SSH_COMMAND, GIT_CONFIG_* (any config, core.sshCommand too), GIT_EXEC_PATH, GIT_ASKPASS...
    "XDG_",  # where programs read their configuration (fish's, git's) and keep state (credstore's own)
    "CREDSTORE_",  # credstore itself: another home, shared directory or profile for the person
    "NPM_CONFIG_",  # npm's settings (npm reads npm_config_*): registry, scripts, node options
)


def is_dangerous(name: str) -> bool:
    """Whether ``name`` changes how programs or shells run (see DANGEROUS_NAMES): never exported from a service."""
    upper = name.upper()
    return upper in DANGEROUS_NAMES or upper.startswith(DANGEROUS_PREFIXES)


# Unknown names that look like they hold a secret (for `doctor`'s scan of shell startup files).
_SECRET_LOOKING = re.compile(r"[A-Z0-9_]*(API_KEY|TOKEN|SECRET|PASSWORD|ACCESS_KEY)[A-Z0-9_]*\Z")


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(f"invalid variable name {name!r}: use letters, digits and '_', not starting with a digit")
    return name


def check_value(name: str, value: str, profile_flag: str = "") -> None:
    """Refuse values no environment can carry: NUL bytes, empty values, text UTF-8 cannot encode. ``profile_flag``:
    ``--profile NAME `` for the hint, when one was given."""
    if "\0" in value:
        raise UsageError(f"the value for {name} contains a NUL byte, which no environment variable can hold")
    if value == "":
        raise UsageError(f"the value for {name} is empty; to remove it run: credstore {profile_flag}rm {name}")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            # A lone surrogate (from the Python API, or argv bytes Python could not decode): not UTF-8 text.
            raise UsageError(
                f"the value for {name} is not valid Unicode text (it holds a lone surrogate), so it cannot be encoded "
                "as UTF-8"
            ) from None


def is_secret(name: str) -> bool:
    known = VARIABLES.get(name)
    return True if known is None else known.secret


def looks_secret(name: str) -> bool:
    """Whether a variable set somewhere else (a shell startup file) probably holds a secret."""
    known = VARIABLES.get(name)
    return known.secret if known is not None else bool(_SECRET_LOOKING.match(name.upper()))


def service_of(name: str) -> str | None:
    known = VARIABLES.get(name)
    return None if known is None else known.service


def format_warning(name: str, value: str) -> str | None:
    """A warning (never the value) when the value would not pass the real client's own check."""
    known = VARIABLES.get(name)
    if known is None or known.check is None:
        return None
    problem = known.check(value)
    return None if problem is None else f"warning: {name} {problem}"


def close_match(word: str, candidates: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The candidate ``word`` was most likely meant to be (case does not count: ``hf_token`` is ``HF_TOKEN``)."""
    import difflib

    by_key = {candidate.upper(): candidate for candidate in candidates}
    found = difflib.get_close_matches(word.upper(), list(by_key), n=1, cutoff=cutoff)
    return by_key[found[0]] if found and by_key[found[0]] != word else None


def near_miss(name: str) -> str | None:
    """For ``set``: a warning when ``name`` is not a known variable but nearly one (``WANDB_APIKEY``)."""
    if name in VARIABLES:
        return None
    meant = close_match(name, VARIABLES, cutoff=0.85)
    if meant is None:
        return None
    return f"warning: {name} is not a variable any client reads; did you mean {meant}? (stored as {name} anyway)"


def unknown_token_warning(token: str, known_names: Iterable[str]) -> str | None:
    """For ``env`` / ``exec`` / ``explain``: a warning when ``token`` is neither a service, a known variable nor one
    of ``known_names`` (stored or set), with the closest service or name."""
    names = set(known_names)
    if token in SERVICES or token in VARIABLES or token in names:
        return None
    meant = close_match(token, [*SERVICES, *names, *VARIABLES])
    if meant is not None:
        return f"warning: '{token}' is neither a service nor a variable stored or set anywhere; did you mean {meant}?"
    return f"warning: '{token}' is neither a service ({', '.join(SERVICES)}) nor a variable stored or set anywhere"


def expand(tokens: list[str] | tuple[str, ...]) -> list[str] | None:
    """Service names and variable names -> variable names, in order; None when nothing was asked for (= all)."""
    if not tokens:
        return None
    names: list[str] = []
    for token in tokens:
        if token in SERVICES:
            names.extend(v.name for v in SERVICES[token].variables)
        elif NAME_RE.match(token):
            names.append(token)
        else:
            known = ", ".join(SERVICES)
            raise UsageError(f"{token!r} is neither a known service ({known}) nor a valid variable name")
    return list(dict.fromkeys(names))
