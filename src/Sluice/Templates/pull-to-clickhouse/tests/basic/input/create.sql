CREATE TABLE public.orders (id text PRIMARY KEY, customer text NOT NULL, amount double precision NOT NULL, status text NOT NULL, updated_at timestamptz NOT NULL);
INSERT INTO public.orders VALUES
  ('o1', 'ann', 19.9, 'open', '2026-01-05 09:00:00+00'),
  ('o2', 'bob', 5, 'open', '2026-01-05 09:30:00+00');
