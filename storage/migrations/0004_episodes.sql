-- Anomaly episodes: an anomaly opens, keeps its peak, and closes (ended_at NULL while open).
-- metric is NULL for rules about a whole device (a lamp out, a traffic incident).
CREATE TABLE episodes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device     integer NOT NULL,
    metric     smallint,
    detector   text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    peak_score double precision NOT NULL CHECK (peak_score BETWEEN 0 AND 1),
    severity   text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    observed   double precision,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- At most one open episode per device, metric and detector.
CREATE UNIQUE INDEX episodes_open ON episodes (device, coalesce(metric, -1), detector)
    WHERE ended_at IS NULL;
-- Newest first, id as the tie-breaker: the API's keyset pages of anomalies.
CREATE INDEX episodes_started_id ON episodes (started_at DESC, id DESC);
