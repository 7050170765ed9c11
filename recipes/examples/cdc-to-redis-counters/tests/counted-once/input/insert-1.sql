INSERT INTO page_views (page, viewed_at, seconds) VALUES ('home', '2026-03-01T09:00:00Z', 20), ('home', '2026-03-01T09:30:00Z', NULL);
