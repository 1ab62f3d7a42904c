"""Hand-made customers for the Customer 360 tests: raw rows plus identity by hand.

Six customers: C1 John Smith (two source records, E-1001 and L-2003, and cookie-abc123 by login),
C2 Joan Smart, C3 Jon Smyth, C4 Johanna Schmidt, C5 José Álvarez, C6 Mary O'Brien. Identity is
written by hand in the contract's shape so these tests do not depend on the matching method.
"""

from __future__ import annotations

from datetime import date

AS_OF = date(2025, 3, 30)

HANDMADE_SQL = """
INSERT INTO src_customers (source_system, source_id, first_name, last_name, email, phone, city, created_at) VALUES
 ('ecommerce', 'E-1001', 'John', 'Smith', 'john.smith@example.com', '+1 (415) 555-0100', 'San Francisco', '2024-01-01'),
 ('loyalty', 'L-2003', 'Johnny', 'Smith', 'jsmith@example.com', '415 555 0100', 'San Francisco', '2024-02-01'),
 ('ecommerce', 'E-1002', 'Joan', 'Smart', 'joan.smart@example.com', '(212) 555-0199', 'New York', '2024-01-01'),
 ('loyalty', 'L-2001', 'Jon', 'Smyth', 'jsmyth@example.org', '4155550111', 'Oakland', '2024-01-01'),
 ('loyalty', 'L-2002', 'Johanna', 'Schmidt', 'johanna@example.net', NULL, 'Berlin', '2024-01-01'),
 ('call_center', 'K-3001', 'José', 'Álvarez', 'jose.alvarez@example.com', '+34 912 345 678', 'Madrid', '2024-01-01'),
 ('call_center', 'K-3002', 'Mary', 'O''Brien', 'mary.obrien@example.com', '617.555.0142', 'Boston', '2024-01-01');
INSERT INTO events (event_id, ts, channel, event_type, source_system, source_id, anonymous_id, campaign_id, value) VALUES
 ('ev1', '2025-03-01 10:00', 'email', 'send', 'ecommerce', 'E-1001', NULL, 'CMP-EM', NULL),
 ('ev2', '2025-03-01 11:00', 'email', 'open', 'ecommerce', 'E-1001', NULL, 'CMP-EM', NULL),
 ('ev3', '2025-03-20 09:00', 'web', 'login', 'ecommerce', 'E-1001', 'cookie-abc123', NULL, NULL),
 ('ev4', '2025-03-21 09:00', 'web', 'visit', NULL, NULL, 'cookie-abc123', NULL, NULL),
 ('ev5', '2025-03-25 09:00', 'sms', 'send', 'loyalty', 'L-2003', NULL, 'CMP-SMS', NULL),
 ('ev6', '2025-03-28 09:00', 'email', 'send', 'ecommerce', 'E-1001', NULL, 'CMP-EM', NULL),
 ('ev7', '2025-03-30 09:00', 'web', 'visit', NULL, NULL, 'cookie-zzz999', NULL, NULL);
INSERT INTO orders VALUES
 ('o1', '2025-02-01 12:00', 'ecommerce', 'E-1001', 120.0, 'web', 'home'),
 ('o2', '2025-03-22 12:00', 'loyalty', 'L-2003', 80.0, 'app', 'home'),
 ('o3', '2025-01-15 12:00', 'loyalty', 'L-2001', 40.0, 'store', 'outdoor');
INSERT INTO consents VALUES
 ('ecommerce', 'E-1001', 'email', 'opt_in', '2024-06-01'),
 ('loyalty', 'L-2003', 'sms', 'opt_out', '2024-06-01'),
 ('loyalty', 'L-2001', 'email', 'opt_in', '2024-06-01');
INSERT INTO campaigns VALUES
 ('CMP-EM', 'Spring email', 'email', '10% off', '2025-03-01', '2025-04-30'),
 ('CMP-SMS', 'Spring sms', 'sms', 'free shipping', '2025-03-01', '2025-04-30');

-- identity by hand (the contract's tables and views): E-1001 and L-2003 are one person
CREATE TABLE identity_map AS SELECT * FROM (VALUES
 ('ecommerce', 'E-1001', NULL, 'C1', 'email', 1.0),
 ('loyalty', 'L-2003', NULL, 'C1', 'phone', 0.97),
 ('ecommerce', 'E-1002', NULL, 'C2', 'source_record', 1.0),
 ('loyalty', 'L-2001', NULL, 'C3', 'source_record', 1.0),
 ('loyalty', 'L-2002', NULL, 'C4', 'source_record', 1.0),
 ('call_center', 'K-3001', NULL, 'C5', 'source_record', 1.0),
 ('call_center', 'K-3002', NULL, 'C6', 'source_record', 1.0),
 (NULL, NULL, 'cookie-abc123', 'C1', 'login', 1.0)
) t(source_system, source_id, anonymous_id, customer_id, method, match_probability);
CREATE TABLE customers AS
SELECT m.customer_id, s.* EXCLUDE (source_system, source_id), s.source_system AS first_source
FROM src_customers s JOIN identity_map m USING (source_system, source_id)
WHERE s.source_id <> 'L-2003';
CREATE VIEW customer_orders AS
SELECT o.*, m.customer_id FROM orders o JOIN identity_map m
  ON m.source_system = o.source_system AND m.source_id = o.source_id;
CREATE VIEW customer_events AS
SELECT e.*, coalesce(k.customer_id, a.customer_id) AS customer_id
FROM events e
LEFT JOIN identity_map k ON k.source_system = e.source_system AND k.source_id = e.source_id
LEFT JOIN identity_map a ON e.source_id IS NULL AND a.anonymous_id = e.anonymous_id;
CREATE VIEW customer_consents AS
SELECT customer_id, channel, status, ts FROM (
    SELECT m.customer_id, c.channel, c.status, c.ts,
           row_number() OVER (PARTITION BY m.customer_id, c.channel ORDER BY c.ts DESC) AS rn
    FROM consents c JOIN identity_map m
      ON m.source_system = c.source_system AND m.source_id = c.source_id
) WHERE rn = 1;
"""


def load_handmade(con) -> None:
    """Insert the raw rows and the hand-made identity tables, then run the Customer 360
    index stages (search_index, customer_timeline) as of AS_OF."""
    from ccrm_core.foundation.pipeline import BuildContext
    from ccrm_core.librarian import customer360

    con.execute(HANDMADE_SQL)
    ctx = BuildContext(as_of=AS_OF, run_id=1)
    customer360.search_index_stage(con, ctx)
    customer360.customer_timeline_stage(con, ctx)
