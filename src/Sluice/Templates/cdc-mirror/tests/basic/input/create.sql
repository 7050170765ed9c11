CREATE TABLE public.customers (id integer PRIMARY KEY, name text NOT NULL, city text);
INSERT INTO public.customers VALUES (1, 'Ann', 'Lyon'), (2, 'Bob', 'Paris');
