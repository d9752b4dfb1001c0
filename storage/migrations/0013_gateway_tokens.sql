-- Tokens of gateways that POST their messages over HTTP instead of MQTT: stored as
-- SHA-256 digests, one or more per gateway, revocable.
CREATE TABLE gateway_tokens (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id  text NOT NULL,
    digest      bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
