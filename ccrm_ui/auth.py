"""Who is using the app, and the role they get.

Two modes, chosen by `.streamlit/secrets.toml`:
- **Login** (an `[auth]` section): OpenID Connect through `st.login`. The signed-in user's
  e-mail and groups claim are mapped to a role by roles.toml (ccrm_core.foundation.access). A user with no
  mapping sees a "not authorised" page with a logout button; a broken roles file stops the app
  with its error (fail closed).
- **Local** (no `[auth]`): the app must listen on a loopback address only (127.0.0.1, set in
  .streamlit/config.toml and by `ccrm app`); it runs as admin, the operating-system account,
  and says so in the sidebar. If it is bound to anything else it refuses to run: an
  unauthenticated admin must never be reachable from the network.

There is no other way in: no environment variable or query parameter picks a role.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ccrm_core.foundation import access
from ccrm_core.foundation.access import User, is_loopback
from ccrm_core.foundation.rendering import markdown_text


def auth_configured() -> bool:
    """True when secrets.toml has an [auth] section (login required)."""
    return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)


def _groups(claim) -> tuple[str, ...]:
    """The groups claim as a tuple: identity providers send a list, a string or nothing."""
    if claim is None:
        return ()
    if isinstance(claim, str):
        return (claim,)
    try:
        return tuple(str(g) for g in claim)
    except TypeError:
        return (str(claim),)


@st.cache_resource(show_spinner=False, ttl=30)
def _role_map(path: str, mtime: float) -> access.RoleMap:
    return access.load_roles(path)


def role_map() -> access.RoleMap:
    """roles.toml, re-read when it changes (an admin edits it without restarting the app)."""
    path = access.roles_file()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = -1.0  # load_roles then names the missing file
    return _role_map(str(path), mtime)


def signed_in_user() -> tuple[User | None, str]:
    """(user, why) for the logged-in OIDC user: user None when they have no role, with why."""
    roles = role_map()
    info = st.user.to_dict()
    email = str(info.get("email") or "").strip()
    # An unverified e-mail must not grant a role by itself; groups still apply.
    trusted_email = access.verified_email(info)
    groups = _groups(info.get(roles.groups_claim))
    role = roles.role_for(trusted_email, groups)
    name = str(info.get("name") or email or "signed-in user")
    identity = access.audit_identity(info)
    if role is None:
        listed = ", ".join(groups) if groups else "none"
        return None, (
            f"{email or name} has no role in {roles.source} (groups claim "
            f"'{roles.groups_claim}': {listed}). Ask an admin to add your e-mail or a group."
        )
    return User(email=identity, name=name, role=role, groups=groups), ""


def current_user() -> User | None:
    """The user of this session, or None when nobody may use the app yet (not signed in, no
    role, or local mode on a non-loopback address)."""
    if auth_configured():
        if not st.user.is_logged_in:
            return None
        try:
            return signed_in_user()[0]
        except access.RolesFileError:
            return None  # fail closed; app.py's gate shows the error
    if not is_loopback(st.get_option("server.address")):
        return None
    return access.local_user()


def gate() -> User:
    """Run at the top of app.py: shows the sign-in, not-authorised or refused screen and stops,
    or returns the user and puts who they are (and local mode) in the sidebar."""
    if auth_configured():
        if not st.user.is_logged_in:
            st.title("Connected CRM Command Center")
            st.write("Sign in with your company account to continue.")
            st.button("Sign in", type="primary", on_click=st.login, key="auth_login")
            st.stop()
        try:
            user, why = signed_in_user()
        except access.RolesFileError as exc:
            st.error(f"The role mapping is broken, so nobody can be let in: {markdown_text(exc)}")
            st.button("Log out", on_click=st.logout, key="auth_logout_broken")
            st.stop()
        if user is None:
            st.title("Not authorised")
            st.error(markdown_text(why))
            st.button("Log out", on_click=st.logout, key="auth_logout_denied")
            st.stop()
        with st.sidebar:
            st.caption(
                f"Signed in as **{markdown_text(user.label)}** · role **{markdown_text(user.role)}**"
            )
            st.button("Log out", on_click=st.logout, key="auth_logout")
        return user
    address = st.get_option("server.address")
    if not is_loopback(address):
        st.title("Login required")
        st.error(
            "No login is configured and the app listens on "
            f"{markdown_text(repr(address or 'every interface'))}: "
            "it would let anyone on the network in as admin, so it refuses to run. Either bind "
            'it to this machine (server.address = "127.0.0.1" in .streamlit/config.toml, or '
            "`ccrm app`), or configure login: an [auth] section in .streamlit/secrets.toml "
            "(see .streamlit/secrets.example.toml) and roles in roles.toml."
        )
        st.stop()
    user = access.local_user()
    with st.sidebar:
        st.warning(
            f"**Local mode**: no login configured; you are **{markdown_text(user.label)}** with "
            f"role **admin**. Only this machine can reach the app ({markdown_text(address)}).",
            icon=":material/lock_open:",
        )
    return user


def require_page(page_file: str) -> User:
    """Run at the top of a page: the user, or stop with the reason they may not see it.
    `page_file` is the page's `__file__`; its stem names the page (view_page:<stem>)."""
    page = Path(page_file).stem
    user = current_user()
    if user is None:
        st.error("Sign in first (open the app's home page), or ask an admin for a role.")
        st.stop()
    try:
        access.require(user, f"view_page:{page}")
    except access.AccessDenied as exc:
        st.error(markdown_text(exc))
        st.stop()
    return user
