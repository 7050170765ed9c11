-- Source tables of the engagement-cdc recipe (seed 002). Applied by `./sluice generate engagement-cdc --setup`.
-- Every column but the keys is nullable: the pipeline has to cope with missing values (and does).
CREATE TABLE IF NOT EXISTS content (
    content_id     bigint PRIMARY KEY,
    content_type   text,
    length_seconds integer,
    title          text
);

-- No foreign key to content: events for content the catalogue does not know yet are kept (and counted), not refused.
CREATE TABLE IF NOT EXISTS engagement_events (
    event_id    bigserial PRIMARY KEY,
    content_id  bigint,
    user_id     bigint,
    event_type  text,
    event_ts    timestamptz DEFAULT now(),
    duration_ms integer,
    device      text
);
