"""Connected CRM core: every number the app shows, with no Streamlit in it.

The packages follow the Connected CRM loop, and imports point one way (pages -> roles ->
foundation):

- `foundation`: the data contract and the database (store, schema.sql), validated atomic
  loading (ingest), the build runner (pipeline), users, roles and the audit log (access, audit),
  PII masks (privacy), checks on user text (validation) and shared charts.
- `librarian` (the past): standardised contact data, identity resolution into golden customers,
  data hygiene scores, and the Customer 360 search, timeline and profile.
- `radar` (the present): customer value (RFM, BG/NBD, Gamma-Gamma, CLV), value- and needs-based
  segments, KPIs (marts, page queries, forecasts and alerts) and propensity scores.
- `conductor` (the future): customer journeys, multi-touch attribution, the media mix model,
  budget what-ifs and optimisation, next best action under the contact policy, and audience
  exports.
- `synthetic`: the generated demo company with its planted ground truth (`ccrm sample`).

`cli` (the `ccrm` command) and `bench` (`ccrm bench`) sit on top and may use any of them.
"""
