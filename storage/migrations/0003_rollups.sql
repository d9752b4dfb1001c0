-- Windowed aggregates per series (device, metric) and window width, written by the
-- ingester as mergeable partial states: count, sum, mean and M2 (sum of squared
-- deviations, for the standard deviation), min, max, first and last. A late value merges
-- into its window's row (late + 1, revision + 1) and never counts twice.
CREATE TABLE rollups (
    device       integer NOT NULL,
    metric       smallint NOT NULL,
    width_s      integer NOT NULL,
    window_start timestamptz NOT NULL,
    count        integer NOT NULL,
    sum          double precision NOT NULL,
    mean         double precision NOT NULL,
    m2           double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    first_time   timestamptz NOT NULL,
    first        double precision NOT NULL,
    last_time    timestamptz NOT NULL,
    last         double precision NOT NULL,
    late         integer NOT NULL DEFAULT 0,
    revision     integer NOT NULL DEFAULT 1,
    PRIMARY KEY (device, metric, width_s, window_start)
);
CREATE INDEX rollups_window_brin ON rollups USING brin (window_start);
