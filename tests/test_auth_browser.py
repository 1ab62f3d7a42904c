"""Login end to end in a real browser: the app with an [auth] section signs in against a local
OpenID Connect provider (tests/oidc_provider.py, loopback only), applies the role from
roles.toml (an executive's navigation has no Customer 360, Segment Explorer or Data), and logs
out; a user without a role gets the "Not authorised" page.

The app runs from a temporary working directory holding a copy of .streamlit/config.toml and a
secrets.toml pointing at the provider (Streamlit reads secrets from the working directory), so
the repository never holds a real secrets file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import _free_port, streamlit_server
from oidc_provider import OidcProvider

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
NAV = "[data-testid='stSidebarNav']"


@pytest.fixture()
def login_app(demo_db, tmp_path):
    client_id, client_secret = "ccrm-test", "s3cret"
    with OidcProvider(client_id, client_secret, {"email": "exec@example.com"}) as provider:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        work = tmp_path / "work"
        (work / ".streamlit").mkdir(parents=True)
        shutil.copy(ROOT / ".streamlit" / "config.toml", work / ".streamlit" / "config.toml")
        (work / ".streamlit" / "secrets.toml").write_text(
            "[auth]\n"
            f'redirect_uri = "{base}/oauth2callback"\n'
            'cookie_secret = "test-cookie-secret-0123456789abcdef"\n'
            f'client_id = "{client_id}"\n'
            f'client_secret = "{client_secret}"\n'
            f'server_metadata_url = "{provider.metadata_url}"\n'
            'client_kwargs = { scope = "openid email profile groups", prompt = "login" }\n'
        )
        roles = tmp_path / "roles.toml"
        roles.write_text(
            '[users]\n"exec@example.com" = "executive"\n[groups]\n"admins" = "admin"\n'
        )
        db = tmp_path / "app.duckdb"
        shutil.copy(demo_db, db)
        env = {"CCRM_ROLES": str(roles)}
        with streamlit_server(db, tmp_path / "streamlit.log", cwd=work, env=env, port=port) as url:
            assert url == base
            yield base, provider, tmp_path / "streamlit.log"


def _idle(page) -> None:
    page.wait_for_selector(IDLE, timeout=120_000)
    page.wait_for_timeout(500)
    page.wait_for_selector(IDLE, timeout=120_000)


def test_login_applies_the_role_and_logout_signs_out(login_app, browser):
    base, provider, log = login_app
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(base, wait_until="domcontentloaded", timeout=60_000)
        _idle(page)
        assert page.locator(NAV).count() == 0  # nothing but the sign-in screen
        page.get_by_role("button", name="Sign in").click()
        # -> /auth/login -> provider /authorize -> /oauth2callback -> the app, signed in
        page.wait_for_selector(NAV, timeout=60_000)
        _idle(page)
        assert "/token" in provider.log, (provider.log, log.read_text()[-2000:])
        nav = page.locator(NAV).inner_text()
        for title in ("Command Center", "Data Hygiene", "Attribution", "Budget Simulator"):
            assert title in nav, nav
        for title in ("Customer 360", "Segment Explorer", "Data\n"):
            assert title not in nav + "\n", nav
        # the e-mail comes from the identity provider: shown as text, with an invisible word
        # joiner before the @ that keeps it from becoming a mailto link
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
        assert "exec\u2060@example.com" in sidebar and "executive" in sidebar
        assert page.locator("[data-testid='stException']").count() == 0 and not errors
        # a page outside the role is not reachable by its URL either
        page.goto(f"{base}/customer_360", wait_until="domcontentloaded", timeout=60_000)
        _idle(page)
        assert page.get_by_role("heading", name="Customer 360").count() == 0
        dialog = page.get_by_role("dialog")
        assert dialog.count() == 0 or "not found" in dialog.first.inner_text().lower()
        page.goto(base, wait_until="domcontentloaded", timeout=60_000)
        _idle(page)
        page.get_by_role("button", name="Log out").first.click()
        page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
        assert "/logout" in provider.log  # the provider's end_session endpoint was used
        assert page.locator(NAV).count() == 0
        # someone the roles file does not know is let in by the provider, but not by the app
        provider.user = {"email": "stranger@example.com", "groups": ["sales"]}
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Not authorised").wait_for(timeout=60_000)
        # the page streams its elements: the message may follow the heading a moment later
        page.get_by_text("has no role").first.wait_for(timeout=60_000)
        body = page.locator("[data-testid='stMain']").inner_text()
        assert "stranger\u2060@example.com has no role" in body
        assert page.locator(NAV).count() == 0
        assert page.locator("[data-testid='stException']").count() == 0 and not errors
    finally:
        context.close()
