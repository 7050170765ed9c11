UPDATE public.orders SET status = 'shipped', updated_at = '2026-01-05 12:00:00+00' WHERE id = 'o1';
INSERT INTO public.orders VALUES ('o3', 'cat', 120.5, 'open', '2026-01-05 12:30:00+00');
