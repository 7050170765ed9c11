INSERT INTO page_views (page, viewed_at, seconds) VALUES ('pricing', '2026-03-01T09:10:00Z', 3);
