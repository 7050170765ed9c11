UPDATE public.content SET title = 'Intro (new cut)' WHERE content_id = 1;
