-- API keys for the HTTP API. Only a SHA-256 digest of each key is stored: keys are 256-bit
-- random secrets, so a fast digest is enough (a slow password hash guards low-entropy
-- secrets); the digest is the lookup key. prefix (the key's first characters) tells keys
-- apart in listings without revealing them.
CREATE TABLE api_keys (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix       text NOT NULL,
    digest       bytea NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('reader', 'admin')),
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
