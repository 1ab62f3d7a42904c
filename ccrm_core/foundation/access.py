"""Who may do what: roles, the permission matrix, and the role mapping file (roles.toml).

Four roles. Every page and every action that changes data or shows personal data (PII: names,
emails, phones, addresses, birth dates) asks `require(user, action)` in the core function that
does it, so a page that forgets a check still cannot export, ingest or reveal.

| action                       | executive | marketer | analyst | admin |
|------------------------------|:---------:|:--------:|:-------:|:-----:|
| view_page:command_center     |     x     |    x     |    x    |   x   |
| view_page:segment_explorer   |           |    x     |    x    |   x   |
| view_page:customer_360       |           |    x     |    x    |   x   |
| view_page:data_hygiene       |     x     |          |    x    |   x   |
| view_page:attribution        |     x     |    x     |    x    |   x   |
| view_page:budget_simulator   |     x     |    x     |    x    |   x   |
| view_page:data               |           |          |         |   x   |
| view_records (masked rows)   |           |    x     |    x    |   x   |
| save_segment                 |           |    x     |    x    |   x   |
| export_audience (hashed)     |           |    x     |    x    |   x   |
| save_scenario                |     x     |    x     |    x    |   x   |
| download_failing_rows        |           |          |    x    |   x   |
| override_identity            |           |          |    x    |   x   |
| ingest, rebuild              |           |          |         |   x   |
| reveal_pii, export_clear_text|           |          |         |   x   |
| view_audit_log               |           |          |         |   x   |

- executive: aggregates only. KPI tiles, attribution, budget what-ifs (and saving a scenario,
  which holds no personal data), hygiene scores and checks; never a row about one customer, so
  no Customer 360, no Segment Explorer customer lists, no failing-row samples or matched pairs.
- marketer: segments, their (masked) members, saved rule segments, hashed audience exports,
  Customer 360 with contact details masked, and the channel views that plan campaigns.
- analyst: everything analytic, PII masked: all pages but Data, hygiene drill-downs and
  failing-row downloads (masked), and identity overrides (forcing two source records into one
  customer or apart; applied at the next build, each one audited).
- admin: everything, including ingest and rebuild from the app, revealing contact details in
  Customer 360 and clear-text audience exports (each one written to the audit log).

Role mapping (`roles.toml` at the repository root, or the file named by $CCRM_ROLES):

    [settings]
    groups_claim = "groups"   # the OIDC claim that lists a signed-in user's groups
    default_role = ""         # role for signed-in users with no mapping; "" = not authorised

    [users]                   # e-mail address (case-insensitive) -> role; wins over groups
    "cfo@example.com" = "executive"

    [groups]                  # group name (exact) -> role; several groups: the highest role
    "ccrm-analysts" = "analyst"

A wrong file is refused on load with an error naming the file, the key and the value.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROLES: tuple[str, ...] = ("executive", "marketer", "analyst", "admin")
# Precedence when a user's groups map to several roles: the later in this tuple wins.
ROLE_PRECEDENCE = {role: i for i, role in enumerate(ROLES)}

PAGES: tuple[str, ...] = (
    "command_center",
    "segment_explorer",
    "customer_360",
    "data_hygiene",
    "attribution",
    "budget_simulator",
    "data",
)

ACTIONS: dict[str, str] = {
    "view_records": "see rows about single customers (masked): segment members, failing rows",
    "save_segment": "save, replace, rename or delete a rule segment",
    "save_scenario": "save or delete a budget scenario",
    "export_audience": "download an audience file with hashed identifiers",
    "download_failing_rows": "download a hygiene check's failing rows (masked)",
    "override_identity": "force two source records into one customer, or apart",
    "ingest": "load files into the raw tables",
    "rebuild": "run the pipeline",
    "reveal_pii": "show a customer's email and phone unmasked",
    "export_clear_text": "download an audience with clear-text email and phone",
    "view_audit_log": "read the audit log",
}

_ALL_PAGES = frozenset(f"view_page:{p}" for p in PAGES)
PERMISSIONS: dict[str, frozenset[str]] = {
    "executive": frozenset(
        {
            "view_page:command_center",
            "view_page:data_hygiene",
            "view_page:attribution",
            "view_page:budget_simulator",
            "save_scenario",
        }
    ),
    "marketer": frozenset(
        {
            "view_page:command_center",
            "view_page:segment_explorer",
            "view_page:customer_360",
            "view_page:attribution",
            "view_page:budget_simulator",
            "view_records",
            "save_segment",
            "save_scenario",
            "export_audience",
        }
    ),
    "analyst": (_ALL_PAGES - {"view_page:data"})
    | {
        "view_records",
        "save_segment",
        "save_scenario",
        "export_audience",
        "download_failing_rows",
        "override_identity",
    },
    "admin": _ALL_PAGES | frozenset(ACTIONS),
}

DEFAULT_ROLES_FILE = Path(__file__).resolve().parents[2] / "roles.toml"


LOOPBACK_NAMES = ("localhost",)


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; False for '' / None (all interfaces). Without
    login the app runs everyone as admin, so it may listen on such an address only."""
    if not address:
        return False
    if address.strip().lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def login_configured(app_folder: Path) -> bool:
    """True when Streamlit's secrets (the app folder's .streamlit/secrets.toml, or the user's
    ~/.streamlit/secrets.toml) have an [auth] section, i.e. the app asks users to sign in."""
    for path in (
        app_folder / ".streamlit" / "secrets.toml",
        Path.home() / ".streamlit" / "secrets.toml",
    ):
        try:
            if "auth" in tomllib.loads(path.read_text(encoding="utf-8")):
                return True
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
    return False


class AccessDenied(PermissionError):
    """A user asked for something their role does not allow."""


class RolesFileError(ValueError):
    """roles.toml is missing, not TOML, or holds an unknown key or role."""


@dataclass(frozen=True)
class User:
    """A signed-in (or local) user. `role` is one of ROLES; `groups` as the identity provider
    sent them (used only for the mapping)."""

    email: str
    name: str
    role: str
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; use one of {', '.join(ROLES)}")

    @property
    def label(self) -> str:
        """How the user is named in messages and the audit log."""
        return self.email or self.name or "unknown user"


def is_known_action(action: str) -> bool:
    return action in ACTIONS or action in _ALL_PAGES


def allowed(user: User | None, action: str) -> bool:
    """True when the user's role grants the action. Unknown actions are refused (ValueError):
    a typo must fail loudly, not silently deny or allow."""
    if not is_known_action(action):
        raise ValueError(
            f"unknown action {action!r}; use view_page:<page> or one of {', '.join(ACTIONS)}"
        )
    return user is not None and action in PERMISSIONS[user.role]


def require(user: User | None, action: str) -> None:
    """Raise AccessDenied with a message naming the user, role and action unless allowed."""
    if allowed(user, action):
        return
    if user is None:
        raise AccessDenied(f"sign in first: {_describe(action)} needs a signed-in user")
    who = [r for r in ROLES if action in PERMISSIONS[r]]
    raise AccessDenied(
        f"{user.label} (role {user.role}) may not {_describe(action)}; "
        f"roles that may: {', '.join(who)}. Ask an admin to change your role in roles.toml."
    )


def _describe(action: str) -> str:
    if action.startswith("view_page:"):
        return f"open the {action.split(':', 1)[1].replace('_', ' ')} page"
    return ACTIONS.get(action, action)


def pages_for(user: User | None) -> list[str]:
    """The pages (file stems, in PAGES order) the user may open."""
    return [p for p in PAGES if allowed(user, f"view_page:{p}")]


# ---------------------------------------------------------------------------------------------
# roles.toml


@dataclass(frozen=True)
class RoleMap:
    """The validated role mapping: email -> role (emails lower-cased), group -> role."""

    users: dict[str, str]
    groups: dict[str, str]
    groups_claim: str = "groups"
    default_role: str | None = None
    source: str = ""

    def role_for(self, email: str | None, groups: tuple[str, ...] | list[str] = ()) -> str | None:
        """The role of a signed-in user: their email's mapping, else the highest role among
        their groups' mappings, else default_role (None = not authorised)."""
        if email and email.strip().lower() in self.users:
            return self.users[email.strip().lower()]
        found = [self.groups[g] for g in groups if g in self.groups]
        if found:
            return max(found, key=ROLE_PRECEDENCE.__getitem__)
        return self.default_role


def roles_file() -> Path:
    """$CCRM_ROLES, else roles.toml at the repository root."""
    return Path(os.environ.get("CCRM_ROLES") or DEFAULT_ROLES_FILE)


def _check_role(path: str, where: str, value: object) -> str:
    if not isinstance(value, str) or value not in ROLES:
        raise RolesFileError(
            f"{path}: {where} = {value!r} is not a role; use one of {', '.join(ROLES)}"
        )
    return value


def parse_roles(text: str, source: str = "roles.toml") -> RoleMap:
    """Validate the text of a roles file; RolesFileError names the file, key and value."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RolesFileError(f"{source}: not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - {"settings", "users", "groups"})
    if unknown:
        raise RolesFileError(
            f"{source}: unknown section or key {unknown[0]!r}; "
            "use only [settings], [users] and [groups]"
        )
    for section in ("settings", "users", "groups"):
        if not isinstance(data.get(section, {}), dict):
            raise RolesFileError(f"{source}: {section} must be a table ([{section}])")
    settings = data.get("settings", {})
    bad = sorted(set(settings) - {"groups_claim", "default_role"})
    if bad:
        raise RolesFileError(
            f"{source}: unknown key [settings].{bad[0]}; use groups_claim or default_role"
        )
    claim = settings.get("groups_claim", "groups")
    if not isinstance(claim, str) or not claim.strip():
        raise RolesFileError(
            f"{source}: [settings].groups_claim = {claim!r} must be a non-empty claim name"
        )
    default = settings.get("default_role", "")
    if default != "":
        default = _check_role(source, "[settings].default_role", default)
    users: dict[str, str] = {}
    for email, role in data.get("users", {}).items():
        key = email.strip().lower()
        local, at, domain = key.partition("@")
        if not (local and at and "." in domain) or any(c.isspace() for c in key):
            raise RolesFileError(
                f"{source}: [users] key {email!r} is not an e-mail address (name@domain.tld)"
            )
        if key in users:
            raise RolesFileError(f"{source}: [users] lists {email!r} twice (case-insensitive)")
        users[key] = _check_role(source, f"[users] {email!r}", role)
    groups: dict[str, str] = {}
    for group, role in data.get("groups", {}).items():
        if not group.strip():
            raise RolesFileError(f"{source}: [groups] has an empty group name")
        groups[group] = _check_role(source, f"[groups] {group!r}", role)
    return RoleMap(users, groups, claim.strip(), default or None, source)


def load_roles(path: str | os.PathLike | None = None) -> RoleMap:
    """Read and validate a roles file (default: `roles_file()`)."""
    file = Path(path) if path else roles_file()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RolesFileError(
            f"{file}: roles file not found; create it (see roles.toml in the repository) or "
            "point CCRM_ROLES at it"
        ) from exc
    except UnicodeDecodeError as exc:
        raise RolesFileError(f"{file}: not UTF-8 text ({exc})") from exc
    return parse_roles(text, str(file))


def verified_email(claims: dict) -> str:
    """The e-mail of an identity provider's claims, or "" when the provider says it is not
    verified (an unverified e-mail could be anyone's)."""
    if claims.get("email_verified", True) is False:
        return ""
    return str(claims.get("email") or "").strip()


def audit_identity(claims: dict) -> str:
    """Who a signed-in user is in the audit log: what the provider vouches for, a verified
    e-mail, else its subject id ("subject <sub>")."""
    return verified_email(claims) or f"subject {claims.get('sub') or 'unknown'}"


def local_user(email: str | None = None) -> User:
    """The user of a local session (no login configured, or the command line): `email` (the
    CLI's --as) or the operating system account as `<account>@localhost`, as admin. Local mode
    only listens on 127.0.0.1, so this is whoever already has the machine."""
    import getpass

    from ccrm_core.foundation.validation import clean_name

    if email is not None:
        # it is written to the audit log as the actor: one readable line, like any name
        email = clean_name(email, "--as", 254, error=AccessDenied, example="ana@example.com")
        return User(email=email, name=email.partition("@")[0], role="admin")
    try:
        account = getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or password database
        account = "local"
    return User(email=f"{account}@localhost", name=account, role="admin")
