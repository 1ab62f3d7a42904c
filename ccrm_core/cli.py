"""The `ccrm` command line: sample, ingest, build, app, export, bench, identity.

Every command has --help and exits non-zero with a one-line reason on bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    if args.delta_days is not None and not args.csv:
        raise CliError("--delta-days needs --csv DIR (the day files are written there)")
    if args.delta_days is not None and not 1 <= args.delta_days <= 365:
        raise CliError(f"--delta-days must be between 1 and 365 (got {args.delta_days})")
    db = store.database_path(args.db)
    if db.exists() and not args.replace:
        raise CliError(
            f"{db} already exists; pass --replace to overwrite its raw tables, or choose --db"
        )
    from ccrm_core.synthetic import deltas, sample

    print(f"generating {args.customers:,} customers over {args.days} days (seed {args.seed})")
    split = None
    if args.delta_days:
        print(f"  plus {args.delta_days} days of daily deltas after them")
        split = deltas.generate_with_deltas(args.customers, args.days, args.seed, args.delta_days)
    data = split.base if split else sample.generate(args.customers, args.days, args.seed)
    con = store.connect_writer(db)
    try:
        sample.write_sample(con, data)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    raw = [t for t in store.RAW_TABLES if t in data]
    print("wrote " + ", ".join(f"{t} {len(data[t]):,}" for t in raw) + f" to {db}")
    if split:
        for folder, rows in deltas.write_deltas(split, Path(args.csv)).items():
            print(f"wrote {args.csv}/{folder}: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
    elif args.csv:
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
        if args.propose_mapping:
            return _propose_mapping(paths, args.propose_mapping, limit)
        samples = [_header_sample(p, limit) for p in paths]
        given = args.mapping
        if given and given.lower().endswith(".toml"):
            given = ingest.resolve_mapping(None, given)  # a bad file stops before the database
    except ValueError as exc:  # IngestError too
        raise CliError(str(exc)) from exc
    user = access.local_user(args.as_user)  # checked before the database is touched
    con = store.connect_writer(args.db)
    try:
        mappings = _mappings_for(con, paths, samples, given, args.table)
        reports = audit.ingest_files(
            con,
            user,
            paths,
            via="cli",
            table=args.table,
            max_reject_rate=args.max_reject_rate,
            progress=_progress_bar("ingest"),
            size_limit=limit,
            mappings=mappings,
        )
        used = next((m for m in mappings if m is not None), None)
        if args.save_mapping and used is not None and any(r.ok for r in reports):
            header = tuple(samples[0].header) if samples[0] is not None else used.header
            named = dataclasses.replace(used, name=args.save_mapping, header=header)
            ingest.save_mapping(con, user, named)
            print(f"saved mapping {args.save_mapping!r} for files with this header")
    except ValueError as exc:  # MappingError: an unknown mapping, one that does not fit
        raise CliError(str(exc)) from exc
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


def _header_sample(path: Path, limit):
    """The file's header, to find a mapping saved for it; None for a file ingest will refuse
    anyway (it says why, in its report)."""
    from ccrm_core.foundation import ingest

    try:
        return ingest.read_sample(path, str(path), limit, rows=0)
    except ingest.IngestError:
        return None


def _mappings_for(con, paths, samples, given, table):
    """Per file: the mapping named by --mapping, else a saved mapping made for its header
    (said on stdout), else None (a file in the contract's form)."""
    from ccrm_core.foundation import ingest

    if isinstance(given, str):
        given = ingest.resolve_mapping(con, given)
    if given is not None:
        if table is not None and table != given.table:
            raise CliError(f"--table {table} contradicts mapping {given.name!r} ({given.table})")
        return [given] * len(paths)
    mappings = []
    for path, sample in zip(paths, samples, strict=True):
        found = None if sample is None else ingest.mapping_for_header(con, sample.header)
        if found is not None:
            print(f"{path}: using saved mapping {found.name!r} (made for this header)")
        mappings.append(found)
    return mappings


def _propose_mapping(paths, out: str, limit) -> int:
    """`--propose-mapping FILE.toml`: write the mapping proposed for the file; load nothing."""
    from ccrm_core.foundation import ingest

    if len(paths) != 1:
        raise CliError("--propose-mapping takes one file")
    if not out.lower().endswith(".toml"):
        raise CliError(f"--propose-mapping {out}: name the output file .toml")
    proposal = ingest.propose(ingest.read_sample(paths[0], str(paths[0]), limit), paths[0].name)
    Path(out).write_text(ingest.mapping_to_toml(proposal.mapping), encoding="utf-8")
    for note in proposal.notes:
        print(f"note: {note}")
    print(
        f"wrote the {proposal.origin} mapping onto {proposal.mapping.table} to {out}; check it, "
        f"then `ccrm ingest {paths[0]} --mapping {out}`"
    )
    return 0


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
    """`ccrm export audience --segment NAME [--destination D] [--channel CH] --out FILE
    [--activation NAME [--holdout SHARE]] [--scheme S] [--db PATH]`."""
    from ccrm_core.conductor import audience
    from ccrm_core.foundation import access
    from ccrm_core.radar import segments

    destination = getattr(args, "destination", None) or "generic"
    generic = destination == "generic"
    try:
        if generic and not args.channel:
            raise CliError(
                "--channel is required with --destination generic (e.g. --channel email)"
            )
        if generic and (args.activation or args.holdout):
            raise CliError("--activation and --holdout need --destination google_ads or meta")
        if args.holdout and not args.activation:
            raise CliError("--holdout needs --activation NAME (the holdout is kept per activation)")
        if not generic and args.channel:
            raise CliError(
                f"--channel does not apply to --destination {destination}: its consent and "
                "caps follow the destination's own channel"
            )
        holdout = audience.parse_holdout(args.holdout) if args.holdout else None
        # the file's name and folder are checked before the database is opened or anything is
        # exported; the export functions check them again for every caller
        out = (
            audience.check_export_path(args.out)
            if generic
            else audience.check_destination_path(args.out)
        )
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
            if generic:
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
            else:
                export = audience.export_destination(
                    con,
                    user,
                    scheme,
                    segment,
                    destination,
                    activation=args.activation,
                    holdout=holdout,
                    clear_text=bool(getattr(args, "clear_text", False)),
                    via="cli",
                    out=out,
                )
        except (ValueError, segments.RuleError) as exc:
            raise CliError(str(exc)) from exc
    finally:
        con.close()
    if generic:
        print(
            f"{segment} ({scheme}) on {args.channel}: {export.members:,} members, "
            f"{len(export.audience):,} exported to {out}, {export.excluded:,} excluded"
        )
        exclusions = export.exclusions
    else:
        aud = export.audience
        print(
            f"{segment} ({scheme}) to {aud.destination.label}: {aud.members:,} members, "
            f"{export.sent:,} people ({export.table.num_rows:,} rows) exported to {out}, "
            f"{aud.excluded:,} excluded"
        )
        exclusions = aud.exclusions
    for reason, customers in zip(exclusions["reason"], exclusions["customers"], strict=True):
        print(f"  excluded {customers:,}: {reason}")
    if not generic and export.sync is not None:
        sync = export.sync
        adds, removes = audience.sync_paths(out)
        print(
            f"activation {sync.activation}, export {sync.run}: {sync.held_out:,} held out "
            f"({sync.holdout_share:.0%}), {sync.added:,} people added and {sync.removed:,} "
            f"removed since the last export; {len(sync.adds):,} rows to add in {adds}, "
            f"{len(sync.removes):,} identifiers to remove in {removes}"
        )
    return 0


def cmd_export_bids(args: argparse.Namespace) -> int:
    """`ccrm export bids --scheme S --out FILE [--db PATH]`."""
    from ccrm_core.conductor import audience
    from ccrm_core.foundation import csv_export

    try:
        out = csv_export.check_output_path(args.out, csv_export.CSV_SUFFIXES)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    con = store.connect_reader(args.db)
    try:
        try:
            bids = audience.segment_bids(con, args.scheme, args.min_multiplier, args.max_multiplier)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    finally:
        con.close()
    try:
        audience.write_bids(bids, out)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(f"bids for {len(bids):,} segments of {args.scheme} written to {out}")
    return 0


# ---------------------------------------------------------------------------------------------
# identity


def cmd_identity_override(args: argparse.Namespace) -> int:
    """`ccrm identity override link|split|clear SYSTEM:ID SYSTEM:ID [--note TEXT]`."""
    from ccrm_core.foundation import access
    from ccrm_core.librarian.identity import overrides

    try:
        first = overrides.parse_record_key(args.first)
        second = overrides.parse_record_key(args.second)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not store.database_path(args.db).exists():
        raise store.DatabaseMissingError(
            f"database {store.database_path(args.db)} does not exist; create it with "
            "`ccrm sample` or `ccrm ingest`"
        )
    user = access.local_user(args.as_user)
    con = store.connect_writer(args.db)
    try:
        try:
            override_id = overrides.record_override(
                con, user, args.decision, first, second, args.note, via="cli"
            )
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    finally:
        con.close()
    print(
        f"decision {override_id}: {args.decision} {args.first} + {args.second}; applied at the "
        "next `ccrm build` (stage identity)"
    )
    return 0


def cmd_identity_overrides(args: argparse.Namespace) -> int:
    """`ccrm identity overrides`: the decisions in force, newest first."""
    from ccrm_core.foundation import privacy
    from ccrm_core.librarian.identity import overrides

    con = store.connect_reader(args.db)
    try:
        current = overrides.current_overrides(con)
    finally:
        con.close()
    for r in current.itertuples():
        note = f"  ({privacy.mask_text(r.note)})" if isinstance(r.note, str) else ""
        print(
            f"{r.override_id:>5}  {r.decision:<5}  {r.source_system_l}:{r.source_id_l} + "
            f"{r.source_system_r}:{r.source_id_r}  {r.actor}  {r.decided_at:%Y-%m-%d %H:%M}{note}"
        )
    print(f"{len(current)} decision(s) in force")
    return 0


def _add_identity(sub) -> None:
    p = sub.add_parser("identity", help="a data steward's identity decisions")
    identity_sub = p.add_subparsers(dest="identity_what", required=True, metavar="WHAT")
    p = identity_sub.add_parser(
        "override",
        help="force two source records together (link), apart (split), or undo (clear)",
        description="Record a decision about two source records: 'link' (the same person), "
        "'split' (different persons) or 'clear' (back to the matcher). Stored, written to the "
        "audit log and applied on every build of the identity stage.",
    )
    p.add_argument("decision", choices=["link", "split", "clear"])
    p.add_argument("first", metavar="SYSTEM:ID", help="a source record, e.g. ecommerce:EC0001")
    p.add_argument("second", metavar="SYSTEM:ID", help="the other source record")
    p.add_argument("--note", help="why (stored with the decision)")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--as", dest="as_user", metavar="EMAIL", help=AS_HELP)
    p.set_defaults(func=cmd_identity_override)
    p = identity_sub.add_parser("overrides", help="list the decisions in force")
    p.add_argument("--db", help=DB_HELP)
    p.set_defaults(func=cmd_identity_overrides)


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
    for add in (
        _add_sample, _add_ingest, _add_build, _add_app, _add_bench, _add_export, _add_identity,
    ):  # fmt: skip
        add(sub)
    return parser


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="generate a synthetic company with ground truth")
    p.add_argument("--customers", type=int, default=20_000, help="people to generate (20000)")
    p.add_argument("--days", type=int, default=730, help="days of history (730)")
    p.add_argument("--seed", type=int, default=42, help="random seed (42); same seed, same data")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--csv", metavar="DIR", help="also write the raw tables as CSV files to DIR")
    p.add_argument(
        "--delta-days",
        type=int,
        metavar="K",
        help="also make K days after the history: the database and DIR/base/ get the history, "
        "DIR/day_YYYY-MM-DD/ each day's new and changed rows (needs --csv DIR)",
    )
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
    p.add_argument(
        "--mapping",
        metavar="NAME|FILE.toml",
        help="map the files' columns onto the contract first: a saved mapping, a preset "
        "(shopify_orders, google_ads_campaigns, ...) or a mapping file; without it, a mapping "
        "saved for a file's header is used",
    )
    p.add_argument("--save-mapping", metavar="NAME", help="save the --mapping used under NAME")
    p.add_argument(
        "--propose-mapping",
        metavar="FILE.toml",
        help="write the mapping proposed for the file to FILE.toml and load nothing",
    )
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
        help="a segment's customers for a channel, Google Ads or Meta, consent applied",
        description="Write a segment's customers for one channel (--destination generic: "
        "customer_id, email_sha256, phone_sha256), or a Google Ads Customer Match or Meta "
        "Custom Audience upload file (every linked email and phone, normalised and hashed as "
        "the platform documents), leaving out customers without consent (ad purposes for ad "
        "platforms, opt-in in the EEA, UK and Switzerland) or suppressed by the contact "
        "policy; prints how many were left out and why. With --activation, the export is "
        "remembered and the adds and removes since the last one are written beside the file.",
    )
    p.add_argument("--segment", required=True, metavar="NAME", help="segment or saved segment")
    p.add_argument(
        "--destination",
        choices=["generic", "google_ads", "meta"],
        default="generic",
        help="generic (one channel's file; default), google_ads or meta",
    )
    p.add_argument("--channel", metavar="CH", help="channel, e.g. email, sms (generic only)")
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output .csv, .csv.gz (or .parquet for generic)",
    )
    p.add_argument(
        "--activation",
        metavar="NAME",
        help="remember this export under NAME and write NAME's adds and removes (google_ads, meta)",
    )
    p.add_argument(
        "--holdout",
        metavar="SHARE",
        help="withhold this share of eligible people, e.g. 10%% (set when the activation is new)",
    )
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
    p = export_sub.add_parser(
        "bids",
        help="each segment's expected 12-month value per person and bid multiplier",
        description="Write the bid file of a segment scheme for media buying: per segment, the "
        "customers, the mean 12-month CLV per person, and a bid multiplier (value relative to "
        "the average customer, bounded) with the matching bid adjustment in percent.",
    )
    p.add_argument(
        "--scheme",
        required=True,
        choices=["rfm_segment", "value_tier", "needs_segment", "saved"],
        help="which segments to price",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="output .csv or .csv.gz")
    p.add_argument("--min-multiplier", type=float, default=0.5, help="lowest multiplier (0.5)")
    p.add_argument("--max-multiplier", type=float, default=3.0, help="highest multiplier (3.0)")
    p.add_argument("--db", help=DB_HELP)
    p.set_defaults(func=cmd_export_bids)


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
