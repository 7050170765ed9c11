CREATE SCHEMA crm;
CREATE TABLE crm.customers (id text PRIMARY KEY, name text, tier text, balance double precision, updated_at timestamptz NOT NULL);
INSERT INTO crm.customers VALUES
  ('c1', 'Ann', 'free', 0, '2026-03-01T09:00:00Z'),
  ('c2', 'Bob', 'team', 120.5, '2026-03-01T09:01:00Z'),
  ('c3', 'Cy', 'free', 3, '2026-03-01T09:02:00Z');
