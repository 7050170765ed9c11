UPDATE crm.customers SET tier = 'enterprise', balance = 990, updated_at = '2026-03-01T10:00:00Z' WHERE id = 'c2';
INSERT INTO crm.customers VALUES ('c4', 'Di', 'team', 42, '2026-03-01T10:01:00Z');
