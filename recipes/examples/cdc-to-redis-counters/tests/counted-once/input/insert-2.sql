INSERT INTO page_views (page, viewed_at, seconds) VALUES ('home', '2026-03-02T07:00:00Z', 1), ('pricing', '2026-03-01T09:00:00Z', 30);
