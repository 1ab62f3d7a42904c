"""`ccrm bench` operations for the Librarian stages (standardise, identity, hygiene): each runs one
stage on a copy of the bench database and reports its figures."""

from __future__ import annotations

from ccrm_core.librarian.identity.results import latest_run


def _bench_stage(ctx, stage: str) -> tuple[int, dict]:
    """Run one build stage on a copy of the bench database; (source records, figures)."""
    import shutil

    from ccrm_core.foundation import pipeline, store

    work = ctx.fresh_db(f"bench_{stage}")
    shutil.copy(ctx.db, work)
    con = store.connect_writer(work)
    try:
        result = pipeline.build(con, [stage])[0]
        if result.status != "ok":
            raise RuntimeError(f"{stage} failed: {result.error}")
        records = con.execute("SELECT count(*) FROM src_customers").fetchall()[0][0]
        figures: dict = {"stage_s": round(result.seconds, 2)}
        if stage == "identity" and store.table_exists(con, "ground_truth_identity"):
            tp, predicted, actual = con.execute(
                """
                WITH j AS (SELECT m.customer_id, g.person_id FROM identity_map m
                           JOIN ground_truth_identity g USING (source_system, source_id)),
                b AS (SELECT count(*) n FROM j GROUP BY customer_id, person_id),
                c AS (SELECT count(*) n FROM j GROUP BY customer_id),
                p AS (SELECT count(*) n FROM j GROUP BY person_id)
                SELECT (SELECT sum(n*(n-1)/2) FROM b), (SELECT sum(n*(n-1)/2) FROM c),
                       (SELECT sum(n*(n-1)/2) FROM p)
                """
            ).fetchall()[0]
            figures["precision"] = round(tp / predicted, 4) if predicted else None
            figures["recall"] = round(tp / actual, 4) if actual else None
            run = latest_run(con)
            figures["customers"] = int(run["customers"])
            figures["probabilistic_pairs"] = int(run["probabilistic_pairs"])
    finally:
        con.close()
    return int(records), figures


def bench_identity(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: the identity stage on the built database (figures: precision,
    recall against ground truth, customers, stored pairs)."""
    return _bench_stage(ctx, "identity")


def bench_standardise(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: the standardise stage on the built database."""
    return _bench_stage(ctx, "standardise")


def bench_hygiene(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: the hygiene stage on the built database."""
    return _bench_stage(ctx, "hygiene")


def bench_identity_without_contacts(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: resolve the company's source records with email and phone
    removed and the duplicates made harder (evaluation.records_without_contacts); figures:
    precision and recall against ground truth."""
    from ccrm_core.bench import BENCH_DAYS, BENCH_SEED
    from ccrm_core.librarian.identity.evaluation import accuracy_without_contacts

    result = accuracy_without_contacts(ctx.customers, BENCH_SEED, BENCH_DAYS)
    figures = {
        "precision": round(result["precision"], 4),
        "recall": round(result["recall"], 4),
        "resolve_s": round(result["seconds"], 2),
    }
    return int(result["records"]), figures
