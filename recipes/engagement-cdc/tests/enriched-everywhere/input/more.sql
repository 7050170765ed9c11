INSERT INTO public.engagement_events (event_id, content_id, user_id, event_type, event_ts, duration_ms, device) VALUES
  (6, 1, 14, 'pause', '2026-03-01T11:00:00Z', 150000, 'web');
