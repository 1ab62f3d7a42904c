"""Foundation: what every role stands on.

The data contract and the one DuckDB file (`store`, `schema.sql`), validated loads that commit
whole or not at all (`ingest`), the runner of named, idempotent build stages (`pipeline`), users,
roles and the audit log (`access`, `audit`), PII masks (`privacy`), checks on user-typed names
(`validation`) and shared figures (`charts`). Nothing here imports a role package.
"""
