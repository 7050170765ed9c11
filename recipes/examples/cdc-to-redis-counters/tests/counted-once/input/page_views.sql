CREATE TABLE page_views (id bigserial PRIMARY KEY, page text NOT NULL, viewed_at timestamptz NOT NULL, seconds integer);
INSERT INTO page_views (page, viewed_at, seconds) VALUES ('home', '2026-03-01T08:00:00Z', 10), ('home', '2026-03-01T08:05:00Z', 5);
