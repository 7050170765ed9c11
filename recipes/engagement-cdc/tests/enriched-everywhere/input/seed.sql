-- Three content rows (a length of 0, a missing length) and five events, one on content the catalogue does not know.
INSERT INTO public.content VALUES
  (1, 'video', 600, 'Intro'),
  (2, 'article', 0, 'Zero length'),
  (3, 'podcast', NULL, 'No length');

INSERT INTO public.engagement_events (event_id, content_id, user_id, event_type, event_ts, duration_ms, device) VALUES
  (1, 1, 10, 'play',   '2026-03-01T10:00:00Z', 300000, 'web'),
  (2, 1, 11, 'finish', '2026-03-01T10:01:00Z', 600000, 'ios'),
  (3, 2, 10, 'click',  '2026-03-01T10:02:00Z', 1500,   'web'),
  (4, 3, 12, 'play',   '2026-03-01T10:03:00Z', NULL,   'tv'),
  (5, 999, 13, 'play', '2026-03-01T10:04:00Z', 1000,   'android');
