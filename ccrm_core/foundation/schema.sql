-- Raw layer of the data contract (schema version 1).
-- Natural keys are listed in ccrm_core/store.py (TABLES) and enforced by `ccrm ingest`
-- (duplicates inside a file are refused, re-ingested keys replace the stored row).
-- They are not declared as PRIMARY KEY: DuckDB's ART index cuts bulk-load speed of
-- events and orders by an order of magnitude (measured: 2.1M -> 0.8M rows/s on CSV,
-- upserts 16x slower), and the ingest check gives the same guarantee.

CREATE TABLE IF NOT EXISTS src_customers (
    source_system  VARCHAR NOT NULL,   -- system of record, e.g. ecommerce, loyalty, call_center
    source_id      VARCHAR NOT NULL,   -- the record's id inside that system
    first_name     VARCHAR,
    last_name      VARCHAR,
    email          VARCHAR,
    phone          VARCHAR,            -- as typed in the source, any format
    address_line   VARCHAR,
    city           VARCHAR,
    region         VARCHAR,
    postal_code    VARCHAR,
    country        VARCHAR,            -- ISO 3166-1 alpha-2 where known
    birth_date     DATE,
    created_at     TIMESTAMP,
    updated_at     TIMESTAMP
);

CREATE TABLE IF NOT EXISTS events (
    event_id       VARCHAR NOT NULL,
    ts             TIMESTAMP NOT NULL,
    channel        VARCHAR NOT NULL,   -- email, direct_mail, sms, push, paid_search, display, social, call_center, web
    event_type     VARCHAR NOT NULL,   -- impression, send, open, click, visit, call, login, unsubscribe
    source_system  VARCHAR,            -- known person: source_system + source_id
    source_id      VARCHAR,
    anonymous_id   VARCHAR,            -- cookie or device id; a login event carries both
    campaign_id    VARCHAR,
    value          DOUBLE,
    CHECK (source_id IS NOT NULL OR anonymous_id IS NOT NULL)
);

CREATE TABLE IF NOT EXISTS orders (
    order_id       VARCHAR NOT NULL,
    ts             TIMESTAMP NOT NULL,
    source_system  VARCHAR NOT NULL,
    source_id      VARCHAR NOT NULL,
    revenue        DOUBLE NOT NULL,    -- currency units, net of discounts
    channel        VARCHAR,            -- sales channel: web, app, store, call_center
    category       VARCHAR
);

CREATE TABLE IF NOT EXISTS spend (
    date           DATE NOT NULL,
    channel        VARCHAR NOT NULL,   -- includes aggregate-only channels such as tv and print
    campaign_id    VARCHAR,
    spend          DOUBLE NOT NULL,    -- currency units per day
    impressions    BIGINT
);

CREATE TABLE IF NOT EXISTS consents (
    source_system  VARCHAR NOT NULL,
    source_id      VARCHAR NOT NULL,
    channel        VARCHAR NOT NULL,
    status         VARCHAR NOT NULL,   -- opt_in or opt_out
    ts             TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id    VARCHAR NOT NULL,
    name           VARCHAR NOT NULL,
    channel        VARCHAR NOT NULL,
    offer          VARCHAR,
    start_date     DATE,
    end_date       DATE
);

CREATE TABLE IF NOT EXISTS experiments (
    experiment_id  VARCHAR NOT NULL,
    source_system  VARCHAR NOT NULL,
    source_id      VARCHAR NOT NULL,
    arm            VARCHAR NOT NULL,   -- control or treatment
    assigned_at    TIMESTAMP NOT NULL
);

-- Bookkeeping.
CREATE TABLE IF NOT EXISTS ingest_log (
    ingest_id      BIGINT NOT NULL,
    file_name      VARCHAR NOT NULL,
    table_name     VARCHAR NOT NULL,
    started_at     TIMESTAMP NOT NULL,
    ended_at       TIMESTAMP,
    rows_read      BIGINT,
    rows_loaded    BIGINT,
    rows_rejected  BIGINT,
    status         VARCHAR NOT NULL,   -- loaded or refused
    message        VARCHAR
);

CREATE TABLE IF NOT EXISTS ingest_rejects (
    ingest_id      BIGINT NOT NULL,
    file_name      VARCHAR NOT NULL,
    table_name     VARCHAR NOT NULL,
    line           BIGINT,
    column_name    VARCHAR,
    value          VARCHAR,
    reason         VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS pipeline_runs (
    run_id         BIGINT NOT NULL,
    stage          VARCHAR NOT NULL,
    started_at     TIMESTAMP NOT NULL,
    ended_at       TIMESTAMP,
    rows           BIGINT,
    status         VARCHAR NOT NULL,   -- running, ok, failed
    error          VARCHAR
);
