-- Catalog versions: each applied catalog document (docs/devices.md), the newest in force.
-- The table metrics mirrors the version in force (storage/catalog.py keeps it in step).
CREATE TABLE catalog_versions (
    version    integer PRIMARY KEY CHECK (version > 0),
    document   jsonb NOT NULL,
    digest     text NOT NULL,
    source     text NOT NULL CHECK (source IN ('shipped', 'cli', 'api')),
    applied_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE metrics
    ADD COLUMN fiware       text NOT NULL DEFAULT '',
    ADD COLUMN counter      boolean NOT NULL DEFAULT false,
    ADD COLUMN daily_rhythm boolean NOT NULL DEFAULT false,
    ADD COLUMN public       boolean NOT NULL DEFAULT false;
