-- The people's side of an episode: open -> acknowledged (by whom, when, a comment) -> resolved.
-- The detector's side (started_at, ended_at) is unchanged: an episode can end before anyone
-- acknowledges it, and stays in the inbox until someone resolves it.
-- expected: what the detector expected at the peak (observed is what it saw); NULL until the
-- episode writer records it.
ALTER TABLE episodes ADD COLUMN expected double precision;
ALTER TABLE episodes ADD COLUMN acked_at timestamptz;
ALTER TABLE episodes ADD COLUMN acked_by text;
ALTER TABLE episodes ADD COLUMN ack_comment text;
ALTER TABLE episodes ADD COLUMN resolved_at timestamptz;
ALTER TABLE episodes ADD COLUMN resolved_by text;
ALTER TABLE episodes ADD COLUMN resolve_comment text;
ALTER TABLE episodes ADD CONSTRAINT episodes_resolved_after_ack
    CHECK (resolved_at IS NULL OR acked_at IS NOT NULL);
-- The inbox: episodes nobody resolved, newest first.
CREATE INDEX episodes_unresolved ON episodes (started_at DESC, id DESC) WHERE resolved_at IS NULL;

-- Console sign-in: an API key exchanged for a session. Only the session token's SHA-256
-- digest is stored (like api_keys); the session dies with its key (revoked) or at expires_at.
CREATE TABLE console_sessions (
    digest     bytea PRIMARY KEY,
    api_key    integer NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Live: every committed change of an episode or of a gateway's status is announced on the
-- channel citytel_live, so the API's Server-Sent Events follow commits without polling.
-- NOTIFY is transactional: listeners hear it when (and only if) the change commits.
CREATE FUNCTION citytel_live_episode() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('citytel_live', json_build_object(
        'type', 'episode', 'id', NEW.id, 'op', lower(TG_OP))::text);
    RETURN NULL;
END $$;
CREATE TRIGGER episodes_live AFTER INSERT OR UPDATE ON episodes
    FOR EACH ROW EXECUTE FUNCTION citytel_live_episode();

CREATE FUNCTION citytel_live_gateway() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('citytel_live', json_build_object(
        'type', 'gateway', 'gateway_id', NEW.gateway_id, 'status', NEW.status)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER gateways_live AFTER UPDATE OF status ON gateways
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION citytel_live_gateway();
