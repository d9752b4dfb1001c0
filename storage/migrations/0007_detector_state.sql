-- Checkpoints of the detectors' state (baselines, open episodes), one row per ingester
-- name: a restarted ingester takes up where it left off.
CREATE TABLE detector_state (
    name     text PRIMARY KEY,
    state    bytea NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
