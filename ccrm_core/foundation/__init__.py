"""Foundation: what every role stands on.

The data contract and the one DuckDB file (`store`, `schema.sql`), validated loads that commit
whole or not at all (`ingest`), the runner of named, idempotent build stages (`pipeline`), users,
roles and the audit log (`access`, `audit`), PII masks (`privacy`), checks on user-typed names
(`validation`), text from data made safe to show in markdown, figures and messages
(`rendering`), shared figures (`charts`) and the one writer of CSV files people open
(`csv_export`). Nothing here imports a role package.
"""
