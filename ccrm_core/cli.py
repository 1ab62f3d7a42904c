"""The `ccrm` command line: sample, ingest, build, app, export, bench.

Every command has --help and exits non-zero with a one-line reason on bad input.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ccrm_core.foundation import store


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def _progress_bar(label: str):
    """A one-line text progress bar on stderr (only when stderr is a terminal)."""
    tty = sys.stderr.isatty()

    def update(fraction: float, message: str = "") -> None:
        if not tty:
            return
        width = 30
        filled = int(max(0.0, min(1.0, fraction)) * width)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{label} [{bar}] {fraction:5.0%} {message[:40]:<40}")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return update


# ---------------------------------------------------------------------------------------------
# sample


def cmd_sample(args: argparse.Namespace) -> int:
    if args.customers < 10:
        raise CliError(f"--customers must be at least 10 (got {args.customers})")
    if args.days < 30:
        raise CliError(f"--days must be at least 30 (got {args.days})")
    db = store.database_path(args.db)
    if db.exists() and not args.replace:
        raise CliError(
            f"{db} already exists; pass --replace to overwrite its raw tables, or choose --db"
        )
    from ccrm_core.synthetic import sample

    print(f"generating {args.customers:,} customers over {args.days} days (seed {args.seed})")
    data = sample.generate(args.customers, args.days, args.seed)
    con = store.connect_writer(db)
    try:
        sample.write_sample(con, data)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    raw = [t for t in store.RAW_TABLES if t in data]
    print("wrote " + ", ".join(f"{t} {len(data[t]):,}" for t in raw) + f" to {db}")
    if args.csv:
        sample.write_csv(data, Path(args.csv))
        print(f"wrote CSV files to {args.csv}")
    return 0


# ---------------------------------------------------------------------------------------------
# ingest


def cmd_ingest(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"file not found: {', '.join(missing)}")
    if not 0 <= args.max_reject_rate <= 1:
        raise CliError(f"--max-reject-rate must be between 0 and 1 (got {args.max_reject_rate})")
    from ccrm_core.foundation import access, audit, ingest

    try:
        # before the database is opened: a named pipe would hold its write lock forever, and a
        # bad size or date setting would refuse every file
        for p in paths:
            ingest.check_regular_file(p)
        limit = ingest.ingest_limit()
        store.date_window()
    except ValueError as exc:  # IngestError too
        raise CliError(str(exc)) from exc
    user = access.local_user(args.as_user)  # checked before the database is touched
    con = store.connect_writer(args.db)
    try:
        reports = audit.ingest_files(
            con,
            user,
            paths,
            via="cli",
            table=args.table,
            max_reject_rate=args.max_reject_rate,
            progress=_progress_bar("ingest"),
            size_limit=limit,
        )
    finally:
        con.close()
    refused = 0
    for r in reports:
        if r.status == "loaded":
            for w in r.warnings:
                print(f"warning: {r.file}: {w}", file=sys.stderr)
            print(
                f"{r.file} -> {r.table}: {r.rows_loaded:,} rows loaded "
                f"({r.rows_replaced:,} replaced), {r.rows_rejected:,} rejected"
            )
            if r.rejects:
                first = r.rejects[0]
                where = f"line {first.line}" if first.line is not None else "a row"
                print(
                    f"  rejected rows are in table ingest_rejects (ingest {r.ingest_id}); first: "
                    f"{where}, column {first.column}, value {first.value!r}: {first.reason}"
                )
        else:
            refused += 1
            print(f"error: {r.message}", file=sys.stderr)
    return 1 if refused else 0


# ---------------------------------------------------------------------------------------------
# build


def cmd_build(args: argparse.Namespace) -> int:
    from ccrm_core.foundation import access, audit, pipeline

    unknown = [s for s in args.stage or [] if s not in pipeline.stage_names()]
    if unknown:
        raise CliError(
            f"unknown stage {', '.join(unknown)}; choose from: {', '.join(pipeline.stage_names())}"
        )
    try:
        params = pipeline.parse_params(args.param or [])
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    user = access.local_user(args.as_user)  # checked before the database is touched
    con = store.connect_writer(args.db)
    try:
        if args.threads:
            con.execute(f"SET threads = {int(args.threads)}")
        if args.if_needed:
            stale = pipeline.stale_stages(con)
            if not stale:
                print("build is up to date (no ingest since the last complete build)")
                return 0
            stage, why = next(iter(stale.items()))
            print(
                f"build needed: {len(stale)} of {len(pipeline.STAGES)} stages out of date "
                f"(first: {stage}, {why})"
            )
        results = audit.build(
            con,
            user,
            stages=args.stage or None,
            params=params,
            via="cli",
            progress=lambda stage, i, n: print(
                f"[{i + 1}/{n}] {stage}" if stage != "done" else "",
                end="\n" if stage != "done" else "",
            ),
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    width = max(len(r.stage) for r in results)
    for r in results:
        rows = f"{r.rows:>12,}" if r.rows is not None else " " * 12
        print(f"{r.stage:<{width}}  {r.status:<7} {rows} rows {r.seconds:8.2f}s  {r.error or ''}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        print(
            f"error: stage {failed[0].stage} failed: {failed[0].error}; previous outputs are intact",
            file=sys.stderr,
        )
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# app


def cmd_app(args: argparse.Namespace) -> int:
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.exists():
        raise CliError(f"{app} not found; run `ccrm app` from a source checkout")
    from ccrm_core.foundation import access, ingest

    if not access.is_loopback(args.address) and not access.login_configured(app.parent):
        raise CliError(
            f"--address {args.address}: no login is configured (no [auth] in "
            ".streamlit/secrets.toml), so anyone who can reach that address would be admin; "
            "serve on 127.0.0.1, or configure login (see .streamlit/secrets.example.toml)"
        )
    try:
        upload_mb = ingest.max_upload_mb()
    except ingest.IngestError as exc:
        raise CliError(str(exc)) from exc
    env = dict(os.environ)
    if args.db:
        env["CCRM_DB"] = str(Path(args.db).resolve())
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
        # Streamlit refuses a larger upload before buffering it: the same limit as the app's
        "--server.maxUploadSize",
        str(max(1, math.ceil(upload_mb))),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(app.parent)
    # the server replaces this process: a signal sent to `ccrm app` (Ctrl+C, kill -TERM,
    # a service manager) reaches Streamlit itself, which stops and releases the database
    os.execve(sys.executable, cmd, env)


# ---------------------------------------------------------------------------------------------
# bench


def cmd_bench(args: argparse.Namespace) -> int:
    from ccrm_core import bench

    measurements = bench.run_bench(
        args.scale,
        only=args.only or None,
        out_dir=Path(args.out),
        workdir=Path(args.workdir) if args.workdir else None,
        progress=lambda m: print(m, file=sys.stderr),
        runs=args.runs,
    )
    print(bench.format_table(measurements))
    print(f"saved to {Path(args.out) / (args.scale + '.json')}")
    return 0


# ---------------------------------------------------------------------------------------------
# export


def cmd_export_audience(args: argparse.Namespace) -> int:
    """`ccrm export audience --segment NAME --channel CH --out FILE [--scheme S] [--db PATH]`."""
    from ccrm_core.conductor import audience
    from ccrm_core.foundation import access
    from ccrm_core.radar import segments

    try:
        # the file's name and folder are checked before the database is opened or anything is
        # exported; export_audience checks them again for every caller
        out = audience.check_export_path(args.out)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not store.database_path(args.db).exists():
        raise store.DatabaseMissingError(
            f"database {store.database_path(args.db)} does not exist; create it with "
            "`ccrm sample` or `ccrm ingest`"
        )
    user = access.local_user(getattr(args, "as_user", None))
    # read-write: the export is written to the audit log (the CLI user is an admin locally)
    con = store.connect_writer(args.db)
    try:
        try:
            scheme, segment = audience.resolve_segment(con, args.segment, args.scheme)
            export = audience.export_audience(
                con,
                user,
                scheme,
                segment,
                args.channel,
                clear_text=bool(getattr(args, "clear_text", False)),
                via="cli",
                out=out,  # written before the audit row records 'ok'; a failure is 'failed'
            )
        except (ValueError, segments.RuleError) as exc:
            raise CliError(str(exc)) from exc
    finally:
        con.close()
    print(
        f"{segment} ({scheme}) on {args.channel}: {export.members:,} members, "
        f"{len(export.audience):,} exported to {out}, {export.excluded:,} excluded"
    )
    for reason, customers in zip(
        export.exclusions["reason"], export.exclusions["customers"], strict=True
    ):
        print(f"  excluded {customers:,}: {reason}")
    return 0


# ---------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


DB_HELP = "database file (default: $CCRM_DB or data/ccrm.duckdb)"
AS_HELP = "who to record in the audit log (default: $USER@localhost; the CLI runs as admin)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccrm", description="Connected CRM command center: customers and marketing money."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_sample, _add_ingest, _add_build, _add_app, _add_bench, _add_export):
        add(sub)
    return parser


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="generate a synthetic company with ground truth")
    p.add_argument("--customers", type=int, default=20_000, help="people to generate (20000)")
    p.add_argument("--days", type=int, default=730, help="days of history (730)")
    p.add_argument("--seed", type=int, default=42, help="random seed (42); same seed, same data")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--csv", metavar="DIR", help="also write the raw tables as CSV files to DIR")
    p.add_argument("--replace", action="store_true", help="overwrite an existing database")
    p.set_defaults(func=cmd_sample)


def _add_ingest(sub) -> None:
    p = sub.add_parser("ingest", help="load CSV (also .gz) or Parquet files into raw tables")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to load")
    p.add_argument("--table", choices=list(store.TABLES), help="target table (default: from name)")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--max-reject-rate",
        type=float,
        default=0.01,
        help="refuse a file when more than this share of rows is rejected (0.01)",
    )
    p.add_argument("--as", dest="as_user", metavar="EMAIL", help=AS_HELP)
    p.set_defaults(func=cmd_ingest)


def _add_build(sub) -> None:
    p = sub.add_parser("build", help="run the pipeline stages")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--stage", action="append", metavar="NAME", help="run only this stage (repeat)")
    p.add_argument(
        "--if-needed", action="store_true", help="skip when nothing changed since the last build"
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="STAGE.NAME=VALUE",
        help="a stage setting, e.g. identity.threshold=0.9 or paths.lookback_days=14 (repeat)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="database threads for the build (default: one per core); results are the same "
        "whatever the number",
    )
    p.add_argument("--as", dest="as_user", metavar="EMAIL", help=AS_HELP)
    p.set_defaults(func=cmd_build)


def _add_app(sub) -> None:
    p = sub.add_parser("app", help="serve the Streamlit app")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1", help="bind address (127.0.0.1)")
    p.set_defaults(func=cmd_app)


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="time whole operations at a named scale")
    p.add_argument("--scale", choices=["S", "M"], default="S", help="S=20k, M=1M customers")
    p.add_argument("--only", action="append", metavar="OPERATION", help="run only this operation")
    p.add_argument("--out", default="bench/results", help="results folder (bench/results)")
    p.add_argument("--workdir", help="keep generated inputs here and reuse them between runs")
    p.add_argument(
        "--runs", type=int, help="runs per operation (default 3; the median is reported)"
    )
    p.set_defaults(func=cmd_bench)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export data for activation")
    export_sub = p.add_subparsers(dest="export_what", required=True, metavar="WHAT")
    p = export_sub.add_parser(
        "audience",
        help="a segment's customers for one channel: customer_id + SHA-256 of email and phone",
        description="Write a segment's customers for one channel (customer_id, email_sha256, "
        "phone_sha256), leaving out customers without an opt_in for the channel or suppressed "
        "by the contact policy; prints how many were left out and why.",
    )
    p.add_argument("--segment", required=True, metavar="NAME", help="segment or saved segment")
    p.add_argument("--channel", required=True, metavar="CH", help="channel, e.g. email, sms")
    p.add_argument("--out", required=True, metavar="FILE", help="output .csv, .csv.gz or .parquet")
    p.add_argument(
        "--scheme",
        choices=["rfm_segment", "value_tier", "needs_segment", "saved"],
        help="where to look the segment up (default: wherever the name is unique)",
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--clear-text",
        action="store_true",
        help="also write plain email and phone columns (admins; recorded in the audit log)",
    )
    p.add_argument("--as", dest="as_user", metavar="EMAIL", help=AS_HELP)
    p.set_defaults(func=cmd_export_audience)


def _audit_unavailable() -> type[Exception]:
    from ccrm_core.foundation.audit import AuditUnavailable

    return AuditUnavailable


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except store.DatabaseBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (store.DatabaseMissingError, store.DatabaseUnusableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (PermissionError, _audit_unavailable()) as exc:  # access.AccessDenied, audit
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing partial was committed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
