"""PII on the pages, per role (AppTest with a signed-in user): no page shows a real e-mail,
phone, full name or street address to a role that may not reveal, in tables, texts, selectbox
labels or charts' hover data; pages and actions a role may not use are refused.

The user is injected the way Streamlit itself does it: `at.secrets["auth"]` turns login on and
`at.user` is the signed-in user; roles come from a temporary roles.toml ($CCRM_ROLES).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import privacy, store
from ccrm_core.foundation.rendering import markdown_text

ROOT = Path(__file__).resolve().parent.parent
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "test-cookie-secret",
    "client_id": "ccrm",
    "client_secret": "secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
ROLES_TOML = """
[users]
"exec@example.com" = "executive"
"mark@example.com" = "marketer"
[groups]
"analysts" = "analyst"
"""


@pytest.fixture()
def env(demo_db_copy, tmp_path, monkeypatch):
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES_TOML)
    monkeypatch.setenv("CCRM_ROLES", str(roles))
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    return demo_db_copy


def page_test(page: str, email: str, groups=(), **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=180)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": email, "name": "Test User", "groups": list(groups)}
    for key, value in query.items():
        at.query_params[key] = value
    return at


class Pii:
    """Every PII value in the database, for finding leaks in rendered text."""

    def __init__(self, db: Path):
        con = store.connect_reader(db)
        try:
            rows = con.execute(
                "SELECT first_name, last_name, email, phone, address_line FROM src_customers "
                "UNION ALL SELECT first_name, last_name, email, phone, address_line FROM customers"
            ).fetchall()
        finally:
            con.close()
        self.emails = {r[2].strip().lower() for r in rows if r[2]}
        self.phones = {re.sub(r"\D", "", r[3])[-10:] for r in rows if r[3]}
        self.phones.discard("")
        self.names = {f"{r[0]} {r[1]}" for r in rows if r[0] and r[1]}
        self.addresses = {r[4] for r in rows if r[4]}

    def leaks(self, text: str) -> list[str]:
        found = [
            e
            for e in re.findall(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", text)
            if e.lower() in self.emails
        ]
        for run in re.findall(r"(?<![\d.])\+?\d[\d ().-]{8,}\d", text):
            if re.search(r"\.\d{5,}", run):
                continue  # a decimal number (chart data), not a phone
            digits = re.sub(r"\D", "", run)
            if len(digits) >= 10 and digits[-10:] in self.phones:
                found.append(run)
        found += [n for n in re.findall(r"[A-Z][\w'-]+ [A-Z][\w'-]+", text) if n in self.names]
        for m in re.findall(r"\b\d{1,5}(?: [A-Z][a-z]+){1,3}", text):
            words = m.split(" ")
            found += [
                " ".join(words[:k]) for k in range(2, len(words) + 1)
                if " ".join(words[:k]) in self.addresses
            ]  # fmt: skip
        return found


def rendered(at: AppTest) -> tuple[str, list[pd.DataFrame]]:
    """All text of the rendered page (element protos: markdown, labels, options, chart specs)
    and the data frames it shows."""
    texts: list[str] = []
    frames: list[pd.DataFrame] = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        if children:
            for child in children.values():
                walk(child)
            return
        if getattr(node, "type", None) in ("arrow_data_frame", "dataframe", "table"):
            frames.append(node.value)
        elif getattr(node, "proto", None) is not None:
            texts.append(str(node.proto))

    walk(at._tree)
    texts += [df.to_csv(index=False) for df in frames]
    return "\n".join(texts), frames


def assert_no_pii(at: AppTest, pii: Pii) -> None:
    assert not at.exception, at.exception
    text, frames = rendered(at)
    leaks = pii.leaks(text)
    assert not leaks, leaks[:5]
    for frame in frames:  # PII columns hold masked values only
        for col in set(frame.columns) & (set(privacy.PII_COLUMNS) | {"name"}):
            shown = [v for v in frame[col] if isinstance(v, str) and v]
            assert all("***" in v for v in shown), (col, shown[:3])


@pytest.mark.parametrize(
    ("email", "groups"), [("mark@example.com", ()), ("ana@example.com", ("analysts",))]
)
def test_customer_360_masks_everything_for_roles_without_reveal(env, email, groups):
    pii = Pii(env)
    con = store.connect_reader(env)
    try:
        cid, last = con.execute(
            "SELECT customer_id, last_name FROM customers WHERE email IS NOT NULL AND phone IS "
            "NOT NULL AND address_line IS NOT NULL AND last_name IS NOT NULL ORDER BY customer_id "
            "LIMIT 1"
        ).fetchall()[0]
    finally:
        con.close()
    at = page_test("app_pages/customer_360.py", email, groups, customer_id=cid).run()
    assert_no_pii(at, pii)
    assert not at.toggle  # no reveal switch for this role
    at.text_input(key="c360_query").input(last).run()
    assert_no_pii(at, pii)
    assert at.dataframe[0].value["name"].str.contains(r"\*\*\*").all()


def test_analyst_sees_every_analytic_page_masked(env):
    pii = Pii(env)
    for page in (
        "app_pages/segment_explorer.py",
        "app_pages/data_hygiene.py",
        "app_pages/command_center.py",
        "app_pages/attribution.py",
        "app_pages/budget_simulator.py",
    ):
        at = page_test(page, "ana@example.com", ("analysts",)).run()
        assert_no_pii(at, pii)
        assert not at.error, (page, [e.value for e in at.error])
    # the segment drill-down lists (masked) customers; the hygiene page its failing rows
    at = page_test("app_pages/segment_explorer.py", "ana@example.com", ("analysts",)).run()
    assert any("first_name" in df.value.columns for df in at.dataframe)
    # no clear-text option, and the prepared export holds hashes only
    assert not [c for c in at.checkbox if c.key == "export_clear_text"]
    at.button(key="export_prepare").click().run()
    assert_no_pii(at, pii)
    data = at.session_state["export_file"][1].decode()
    assert data.splitlines()[0] == "customer_id,email_sha256,phone_sha256"
    assert not pii.leaks(data)


def test_executive_sees_aggregates_only(env):
    pii = Pii(env)
    at = page_test("app_pages/data_hygiene.py", "exec@example.com").run()
    assert_no_pii(at, pii)
    assert not at.exception and not at.error
    captions = " ".join(c.value for c in at.caption)
    assert "Failing-row samples are not shown to your role" in captions
    assert "Matched record pairs are not shown to your role" in captions
    assert not any({"source_id", "first_name"} & set(df.value.columns) for df in at.dataframe)
    for page in ("customer_360", "segment_explorer", "data"):
        denied = page_test(f"app_pages/{page}.py", "exec@example.com").run()
        assert not denied.exception
        assert markdown_text("(role executive) may not open the") in denied.error[0].value
        assert not denied.dataframe


def test_marketer_cannot_open_data_or_hygiene(env):
    for page in ("data", "data_hygiene"):
        at = page_test(f"app_pages/{page}.py", "mark@example.com").run()
        assert markdown_text("(role marketer) may not open the") in at.error[0].value


def test_app_sign_in_not_authorised_and_navigation(env):
    app = "app.py"
    at = AppTest.from_file(str(ROOT / app), default_timeout=180)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": False}
    at.run()
    assert at.button(key="auth_login").label == "Sign in" and not at.exception
    stranger = page_test(app, "stranger@example.com", ("sales",)).run()
    assert stranger.title[0].value == "Not authorised"
    assert markdown_text("stranger@example.com has no role") in stranger.error[0].value
    assert stranger.button(key="auth_logout_denied").label == "Log out"
    exec_ = page_test(app, "exec@example.com").run()
    assert not exec_.exception
    assert "role **executive**" in " ".join(c.value for c in exec_.sidebar.caption)


def test_a_broken_roles_file_lets_nobody_in(env, tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text('[users]\n"mark@example.com" = "superuser"\n')
    monkeypatch.setenv("CCRM_ROLES", str(bad))
    at = page_test("app.py", "mark@example.com").run()
    assert markdown_text("'superuser' is not a role") in at.error[0].value
    page = page_test("app_pages/segment_explorer.py", "mark@example.com").run()
    assert "Sign in first" in page.error[0].value and not page.dataframe


def test_local_mode_refuses_a_non_loopback_address(env):
    from streamlit import config

    before = config.get_option("server.address")
    try:
        config.set_option("server.address", "0.0.0.0")
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
        assert at.title[0].value == "Login required"
        assert "refuses to run" in at.error[0].value
        config.set_option("server.address", "127.0.0.1")
        at = AppTest.from_file(str(ROOT / "app_pages/data.py"), default_timeout=180).run()
        assert not at.exception and not at.error
        assert any(s.value == "Audit log" for s in at.subheader)  # admin in local mode
    finally:
        config.set_option("server.address", before)
