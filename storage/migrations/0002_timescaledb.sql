-- citytel: timescaledb
-- Applied only where the timescaledb extension can be loaded; recorded as skipped on
-- plain PostgreSQL. Statements per the TimescaleDB 2.x documentation (2.13+ for by_range).
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- One-day chunks: a day of a large city's values fits comfortably in memory per chunk.
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'), migrate_data => true);

-- Columnar compression, one segment per series, newest first inside a segment.
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device, metric',
    timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('readings', INTERVAL '7 days');

-- Raw values are kept two years; rollups (processing) keep longer.
SELECT add_retention_policy('readings', INTERVAL '730 days');
