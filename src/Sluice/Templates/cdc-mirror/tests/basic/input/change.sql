UPDATE public.customers SET city = 'Nice' WHERE id = 1;
DELETE FROM public.customers WHERE id = 2;
INSERT INTO public.customers VALUES (3, 'Cat', NULL);
