"""Roles (ccrm_core.foundation.access), roles.toml validation, the audit log (ccrm_core.foundation.audit) and the CLI's
audit rows. Page-level masking per role is in tests/test_pii_pages.py."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ccrm_core import cli
from ccrm_core.conductor import audience
from ccrm_core.foundation import access, audit, privacy, store
from ccrm_core.foundation.access import AccessDenied, User

ROOT = Path(__file__).resolve().parent.parent

# The matrix, written out by hand: (action, roles that may do it). Any change to
# access.PERMISSIONS must change this table and the docstring table (checked below).
EXPECTED = {
    "view_page:command_center": {"executive", "marketer", "analyst", "admin"},
    "view_page:segment_explorer": {"marketer", "analyst", "admin"},
    "view_page:customer_360": {"marketer", "analyst", "admin"},
    "view_page:data_hygiene": {"executive", "analyst", "admin"},
    "view_page:attribution": {"executive", "marketer", "analyst", "admin"},
    "view_page:budget_simulator": {"executive", "marketer", "analyst", "admin"},
    "view_page:data": {"admin"},
    "view_records": {"marketer", "analyst", "admin"},
    "save_segment": {"marketer", "analyst", "admin"},
    "save_scenario": {"executive", "marketer", "analyst", "admin"},
    "export_audience": {"marketer", "analyst", "admin"},
    "download_failing_rows": {"analyst", "admin"},
    "override_identity": {"analyst", "admin"},
    "ingest": {"admin"},
    "rebuild": {"admin"},
    "reveal_pii": {"admin"},
    "export_clear_text": {"admin"},
    "view_audit_log": {"admin"},
}


def user(role: str, email: str | None = None) -> User:
    return User(email=email or f"{role}@example.com", name=role.title(), role=role)


def test_expected_table_covers_every_action_and_page():
    assert set(EXPECTED) == set(access.ACTIONS) | {f"view_page:{p}" for p in access.PAGES}
    # every page in the navigation has a permission entry
    from ccrm_ui import navigation

    assert {Path(p[1]).stem for p in navigation.PAGES} == set(access.PAGES)


@pytest.mark.parametrize("role", access.ROLES)
@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_role_matrix(role, action):
    u = user(role)
    assert access.allowed(u, action) == (role in EXPECTED[action])
    if role in EXPECTED[action]:
        access.require(u, action)
    else:
        with pytest.raises(AccessDenied) as exc:
            access.require(u, action)
        message = str(exc.value)
        assert u.email in message and f"role {role}" in message
        assert all(r in message for r in EXPECTED[action])  # who may, so the user can ask


def test_the_docstring_table_matches_the_permissions():
    """The documented matrix (module docstring, pasted into the README) is the real one."""
    rows = re.findall(r"^\| ([^|]+?)\s*\|(.*)\|\s*$", access.__doc__, flags=re.M)
    documented = {}
    for names, cells in rows:
        if names.strip() == "action" or names.startswith("-"):
            continue
        marks = [c.strip() == "x" for c in cells.split("|")]
        roles = {r for r, m in zip(access.ROLES, marks, strict=True) if m}
        for name in names.split(","):
            documented[name.strip().split(" ")[0]] = roles
    assert documented == EXPECTED


def test_unknown_action_and_missing_user():
    with pytest.raises(ValueError, match="unknown action 'reveal'"):
        access.allowed(user("admin"), "reveal")
    with pytest.raises(AccessDenied, match="sign in first"):
        access.require(None, "view_page:command_center")
    with pytest.raises(ValueError, match="unknown role 'boss'"):
        User("a@b.co", "A", "boss")
    assert access.pages_for(user("executive")) == [
        "command_center",
        "data_hygiene",
        "attribution",
        "budget_simulator",
    ]


# --- roles.toml -------------------------------------------------------------------------------


def test_the_shipped_roles_file_is_valid():
    roles = access.load_roles(ROOT / "roles.toml")
    assert roles.groups["ccrm-admins"] == "admin" and roles.default_role is None


def test_role_resolution_email_wins_then_highest_group_then_default():
    roles = access.parse_roles(
        """
        [settings]
        groups_claim = "roles"
        default_role = "executive"
        [users]
        "Boss@Example.com" = "marketer"
        [groups]
        "staff" = "executive"
        "analysts" = "analyst"
        "admins" = "admin"
        """
    )
    assert roles.groups_claim == "roles"
    assert roles.role_for("boss@example.COM ", ["admins"]) == "marketer"  # e-mail wins
    assert roles.role_for("x@example.com", ["staff", "analysts"]) == "analyst"
    assert roles.role_for("x@example.com", ["admins", "staff"]) == "admin"
    assert roles.role_for("x@example.com", ["nobody"]) == "executive"  # default_role
    strict = access.parse_roles('[groups]\n"a" = "analyst"\n')
    assert strict.role_for("x@example.com", ["b"]) is None and strict.groups_claim == "groups"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[users]\n"a@b.com" = "boss"\n', "[users] 'a@b.com' = 'boss' is not a role"),
        ('[groups]\n"g" = 3\n', "[groups] 'g' = 3 is not a role"),
        ('[user]\n"a@b.com" = "admin"\n', "unknown section or key 'user'"),
        ('[users]\n"alice" = "admin"\n', "[users] key 'alice' is not an e-mail address"),
        ('[users]\n"a@b.com" = "admin"\n"A@B.com" = "analyst"\n', "lists 'A@B.com' twice"),
        ('[settings]\ngroups_claim = ""\n', "groups_claim = '' must be a non-empty claim name"),
        ('[settings]\ndefault_role = "root"\n', "[settings].default_role = 'root' is not a role"),
        ('[settings]\nclaim = "groups"\n', "unknown key [settings].claim"),
        ("users = 3\n", "users must be a table"),
        ('[users\n"a@b.com" = "admin"\n', "not valid TOML"),
    ],
)
def test_bad_roles_files_are_refused_naming_the_key_and_value(tmp_path, text, message):
    path = tmp_path / "roles.toml"
    path.write_text(text)
    with pytest.raises(access.RolesFileError) as exc:
        access.load_roles(path)
    assert message in str(exc.value) and str(path) in str(exc.value)


def test_roles_file_from_the_environment_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("CCRM_ROLES", str(tmp_path / "nope.toml"))
    assert access.roles_file() == tmp_path / "nope.toml"
    with pytest.raises(access.RolesFileError, match="roles file not found"):
        access.load_roles()


def test_navigation_lists_only_the_pages_of_the_role():
    from ccrm_ui import navigation

    titles = {r: [p[2] for p in navigation.visible_pages(user(r))] for r in access.ROLES}
    assert "Customer 360" not in titles["executive"] and "Data" not in titles["executive"]
    assert "Data Hygiene" in titles["executive"]
    assert "Data Hygiene" not in titles["marketer"] and "Segment Explorer" in titles["marketer"]
    assert "Data" not in titles["analyst"] and len(titles["analyst"]) == 6
    assert len(titles["admin"]) == len(navigation.PAGES)
    assert navigation.visible_pages(None) == []


# --- privacy ----------------------------------------------------------------------------------


def test_mask_text_masks_emails_and_phones_but_not_dates_or_ids():
    text = (
        "line 7, column email, value 'Jane.Doe@example.com': invalid; phone +1 (415) 555-0123; "
        "ts 2024-03-05 10:00:00, order 12345"
    )
    assert privacy.mask_text(text) == (
        "line 7, column email, value 'J***@example.com': invalid; phone ***-***-0123; "
        "ts 2024-03-05 10:00:00, order 12345"
    )
    assert privacy.mask_full_name("Jane van Doe") == "J*** v*** D***"
    assert privacy.mask_value("name", None) is None


# --- audit log --------------------------------------------------------------------------------


def test_a_version_1_database_gets_the_audit_log(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    monkeypatch.setattr(store, "SCHEMA_VERSION", 1)
    store.connect_writer(path).close()
    monkeypatch.undo()
    con = store.connect_writer(path)
    try:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [
            (store.SCHEMA_VERSION,)
        ]
        assert store.table_exists(con, "audit_log")
    finally:
        con.close()


def _audit(db: Path) -> pd.DataFrame:
    con = store.connect_reader(db)
    try:
        return con.execute("SELECT * FROM audit_log ORDER BY audit_id").df()
    finally:
        con.close()


def test_cli_ingest_and_build_are_audited_with_the_as_user(tmp_path):
    db = tmp_path / "x.duckdb"
    good = tmp_path / "campaigns.csv"
    good.write_text(
        "campaign_id,name,channel,offer,start_date,end_date\nC1,A,email,,,\nC2,B,sms,,,\n"
    )
    bad = tmp_path / "orders.csv"
    bad.write_text("order_id,ts\n1,2024-01-01\n")  # required columns missing: refused
    assert cli.main(["ingest", str(good), "--db", str(db), "--as", "ops@example.com"]) == 0
    assert cli.main(["ingest", str(bad), "--db", str(db), "--as", "ops@example.com"]) == 1
    assert cli.main(["build", "--db", str(db), "--stage", "daily_kpis", "--as", "ops@x.org"]) in (
        0,
        1,
    )
    log = _audit(db)
    assert list(log["action"]) == ["ingest", "ingest", "rebuild"]
    assert list(log["actor"]) == ["ops@example.com", "ops@example.com", "ops@x.org"]
    assert set(log["role"]) == {"admin"} and set(log["via"]) == {"cli"}
    assert log["rows"].iloc[0] == 2 and log["status"].iloc[0] == "ok"
    assert log["target"].iloc[0] == "campaigns.csv -> campaigns"
    assert log["status"].iloc[1] == "failed" and log["rows"].iloc[1] == 0
    assert log["detail"].iloc[1]  # the refusal reason
    assert log["target"].iloc[2] == "daily_kpis"
    assert (log["ended_at"] >= log["started_at"]).all()


def test_cli_user_defaults_to_the_account(monkeypatch):
    monkeypatch.setenv("USER", "carol")
    monkeypatch.setenv("LOGNAME", "carol")
    u = access.local_user()
    assert u.email == "carol@localhost" and u.role == "admin"
    assert access.local_user("ops@example.com").email == "ops@example.com"


@pytest.fixture()
def demo_rw(demo_db_copy):
    con = store.connect_writer(demo_db_copy)
    yield con
    con.close()


def _segment(con) -> tuple[str, str]:
    name = con.execute(
        "SELECT rfm_segment FROM mart_customer GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchall()[0][0]
    return audience.resolve_segment(con, name, "rfm_segment")


def test_exports_are_role_checked_hashed_by_default_and_audited(demo_rw):
    scheme, segment = _segment(demo_rw)
    hashed = audience.export_audience(demo_rw, user("marketer"), scheme, segment, "email")
    assert list(hashed.audience.columns) == ["customer_id", "email_sha256", "phone_sha256"]
    assert len(hashed.audience) > 0
    with pytest.raises(AccessDenied, match="marketer@example.com \\(role marketer\\)"):
        audience.export_audience(
            demo_rw, user("marketer"), scheme, segment, "email", clear_text=True
        )
    with pytest.raises(AccessDenied):
        audience.export_audience(demo_rw, user("executive"), scheme, segment, "email")
    clear = audience.export_audience(
        demo_rw, user("admin"), scheme, segment, "email", clear_text=True
    )
    assert {"email", "phone"} <= set(clear.audience.columns)
    # the clear email hashes to the exported hash
    row = clear.audience.dropna(subset=["email"]).iloc[0]
    assert privacy.sha256_hex(row["email"]) == row["email_sha256"]
    log = audit.audit_entries(demo_rw, user("admin"))[::-1].reset_index(drop=True)
    assert list(zip(log["actor"], log["action"], log["status"], strict=True)) == [
        ("marketer@example.com", "export_audience", "ok"),
        ("marketer@example.com", "export_clear_text", "refused"),
        ("executive@example.com", "export_audience", "refused"),
        ("admin@example.com", "export_clear_text", "ok"),
    ]
    assert log["rows"].iloc[0] == len(hashed.audience) and log["rows"].iloc[3] == len(
        clear.audience
    )
    assert log["target"].iloc[0] == f"segment {segment} ({scheme}) on email"
    with pytest.raises(AccessDenied, match="read the audit log"):
        audit.audit_entries(demo_rw, user("analyst"))


def test_reveal_ingest_rebuild_and_failing_rows_are_gated_and_audited(demo_rw, tmp_path):
    from ccrm_core.librarian import hygiene

    cid = demo_rw.execute("SELECT min(customer_id) FROM customers").fetchall()[0][0]
    for role in ("executive", "marketer", "analyst"):
        with pytest.raises(AccessDenied, match="show a customer's email and phone unmasked"):
            audit.reveal_customer(demo_rw, user(role), cid)
        with pytest.raises(AccessDenied):
            audit.ingest_files(demo_rw, user(role), [tmp_path / "campaigns.csv"])
        with pytest.raises(AccessDenied):
            audit.build(demo_rw, user(role), ["daily_kpis"])
    audit.reveal_customer(demo_rw, user("admin"), cid)
    check = hygiene.checks_for_run(demo_rw, hygiene.runs(demo_rw)[-1])
    check_id = check.sort_values("failed_rows").iloc[-1]["check_id"]
    with pytest.raises(AccessDenied):
        hygiene.download_failing_rows(demo_rw, user("marketer"), check_id)
    data = hygiene.download_failing_rows(demo_rw, user("analyst"), check_id)
    csv = tmp_path / "campaigns.csv"
    csv.write_text("campaign_id,name,channel,offer,start_date,end_date\nZ9,Z,email,,,\n")
    reports = audit.ingest_files(demo_rw, user("admin"), [csv])
    assert reports[0].status == "loaded"
    results = audit.build(demo_rw, user("admin"), ["daily_kpis"])
    log = audit.audit_entries(demo_rw, user("admin"))[::-1].reset_index(drop=True)
    refused = log[log["status"] == "refused"]
    assert len(refused) == 10 and set(refused["rows"]) == {0}
    ok = log[log["status"] == "ok"].reset_index(drop=True)
    assert list(ok["action"]) == ["reveal_pii", "download_failing_rows", "ingest", "rebuild"]
    assert ok["target"].iloc[0] == f"customer {cid}" and ok["rows"].iloc[0] == 1
    assert ok["rows"].iloc[1] == data.decode().count("\n") - 1  # rows in the file, not the header
    assert ok["rows"].iloc[2] == 1 and ok["rows"].iloc[3] == sum(r.rows or 0 for r in results)
    assert set(ok["actor"]) == {"analyst@example.com", "admin@example.com"}


def test_a_load_commits_with_its_audit_row_or_not_at_all(tmp_path, monkeypatch):
    """The audit row of an ingest is written in the file's own transaction: if it cannot be
    written, the rows and the ingest_log entry are rolled back with it."""
    con = store.connect_writer(tmp_path / "a.duckdb")
    csv = tmp_path / "campaigns.csv"
    csv.write_text("campaign_id,name,channel,offer,start_date,end_date\nZ9,Z,email,,,\n")

    def audit_fails(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(audit, "_append", audit_fails)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        audit.ingest_files(con, user("admin"), [csv])
    counts = [
        con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in ("campaigns", "ingest_log", "audit_log")
    ]
    assert counts == [0, 0, 0]
    monkeypatch.undo()
    [report] = audit.ingest_files(con, user("admin"), [csv])
    log = con.execute("SELECT action, status, rows, target FROM audit_log").fetchall()
    assert report.status == "loaded"
    assert log == [("ingest", "ok", 1, "campaigns.csv -> campaigns")]
    con.close()


def test_an_unwritable_audit_log_stops_the_action(demo_db_copy):
    con = store.connect_reader(demo_db_copy)
    try:
        cid = con.execute("SELECT min(customer_id) FROM customers").fetchall()[0][0]
        with pytest.raises(audit.AuditUnavailable, match="read-only"):
            audit.reveal_customer(con, user("admin"), cid)
    finally:
        con.close()


def test_cli_export_clear_text_is_audited(demo_db_copy, tmp_path):
    con = store.connect_writer(demo_db_copy)
    try:
        _, segment = _segment(con)
    finally:
        con.close()
    out = tmp_path / "aud.csv"
    args = ["export", "audience", "--segment", segment, "--channel", "email", "--out", str(out)]
    args += ["--scheme", "rfm_segment", "--db", str(demo_db_copy)]
    assert cli.main([*args, "--clear-text", "--as", "dpo@example.com"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["customer_id", "email_sha256", "phone_sha256", "email", "phone"]
    assert cli.main(args) == 0
    assert list(pd.read_csv(out).columns) == ["customer_id", "email_sha256", "phone_sha256"]
    log = _audit(demo_db_copy)
    assert list(log["action"]) == ["export_clear_text", "export_audience"]
    assert log["actor"].iloc[0] == "dpo@example.com" and log["rows"].iloc[0] == len(frame)


def test_the_audit_names_users_by_verified_identities_only():
    claims = {"sub": "abc-123", "email": "boss@example.com", "name": "Boss"}
    assert access.audit_identity(claims) == "boss@example.com"  # verified unless said otherwise
    assert access.audit_identity({**claims, "email_verified": True}) == "boss@example.com"
    assert access.audit_identity({**claims, "email_verified": False}) == "subject abc-123"
    assert access.verified_email({**claims, "email_verified": False}) == ""


def test_cli_as_with_control_characters_is_refused(tmp_path):
    from conftest import ccrm

    proc = ccrm("build", "--db", str(tmp_path / "x.duckdb"), "--as", "ana\x1b[31m@example.com")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: --as has a control or invisible character (U+001B) at position 4; use letters, "
        "digits, spaces and punctuation\n"
    )
    assert not (tmp_path / "x.duckdb").exists()
