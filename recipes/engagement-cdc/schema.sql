-- Source tables of the engagement-cdc recipe (seed 002). Applied by `./sluice generate engagement-cdc --setup`.
-- Schema-qualified: the recipe reads schema public (its `schema:` default), whatever the user's search_path finds first
-- (the PostgreSQL warehouse creates a schema named after the user, which would otherwise come first).
-- Every column but the keys is nullable: the pipeline has to cope with missing values (and does).
CREATE TABLE IF NOT EXISTS public.content (
    content_id     bigint PRIMARY KEY,
    content_type   text,
    length_seconds integer,
    title          text
);

-- No foreign key to content: events for content the catalogue does not know yet are kept (and counted), not refused.
CREATE TABLE IF NOT EXISTS public.engagement_events (
    event_id    bigserial PRIMARY KEY,
    content_id  bigint,
    user_id     bigint,
    event_type  text,
    event_ts    timestamptz DEFAULT now(),
    duration_ms integer,
    device      text
);
