-- The glossary applied to the schema (docs/architecture.md): a row of the narrow table is
-- one value, so the table is named for values (VALUES itself is an SQL keyword); a
-- gateway's all-time count of committed messages is `messages_total`, as the API says,
-- apart from the `messages` the API counts over a look-back.
ALTER TABLE readings RENAME TO metric_values;
ALTER INDEX readings_series_time RENAME TO metric_values_series_time;
ALTER INDEX readings_time_brin RENAME TO metric_values_time_brin;
-- TimescaleDB's create_hypertable made this one; plain PostgreSQL has none.
ALTER INDEX IF EXISTS readings_time_idx RENAME TO metric_values_time_idx;
ALTER TABLE gateways RENAME COLUMN messages TO messages_total;
