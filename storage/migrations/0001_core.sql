-- The core schema: registry, narrow readings table, message identities, dead letters.

CREATE TABLE gateways (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id  text NOT NULL UNIQUE,
    status      text NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'online', 'offline')),
    status_at   timestamptz,
    last_seen   timestamptz,
    last_seq    bigint,
    messages    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE metrics (
    id          smallint PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL,
    unit        text NOT NULL,
    unit_code   text NOT NULL,
    low         double precision NOT NULL,
    high        double precision NOT NULL,
    description text NOT NULL
);

-- kind is NULL until the device is announced; a reading from an unannounced device is
-- stored all the same, and the device registered with announced = false.
CREATE TABLE devices (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    text NOT NULL UNIQUE,
    kind         text,
    gateway      integer REFERENCES gateways (id),
    latitude     double precision,
    longitude    double precision,
    attributes   jsonb NOT NULL DEFAULT '{}',
    announced    boolean NOT NULL DEFAULT false,
    announced_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per value: the narrow layout for heterogeneous sensors. device and metric are
-- small integer keys (devices.id, metrics.id); no foreign keys, which would slow COPY.
CREATE TABLE readings (
    time   timestamptz NOT NULL,
    device integer NOT NULL,
    metric smallint NOT NULL,
    value  double precision NOT NULL
);
CREATE INDEX readings_series_time ON readings (device, metric, time DESC);
CREATE INDEX readings_time_brin ON readings USING brin (time);

-- The identity of every telemetry message committed: a message delivered twice is
-- stored once because its (gateway, seq) is already here.
CREATE TABLE messages (
    gateway      integer NOT NULL,
    seq          bigint NOT NULL,
    sent_at      timestamptz,
    received_at  timestamptz NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    readings     integer NOT NULL,
    "values"     integer NOT NULL,
    PRIMARY KEY (gateway, seq)
);
CREATE INDEX messages_received_at ON messages USING brin (received_at);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL,
    gateway_id  text,
    seq         bigint,
    payload     bytea NOT NULL
);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE INDEX dead_letters_reason ON dead_letters (reason, received_at);
