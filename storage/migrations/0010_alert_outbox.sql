-- Alerts that reach people: endpoints (signed webhooks), rules saying which episode
-- changes notify which endpoint, and an outbox of notifications to deliver.
-- The outbox is written by a trigger of episodes, so a notification is committed in the
-- same transaction as the episode change that causes it, or not at all; and at most once
-- per endpoint, episode and change (UNIQUE), which is also the receiver's idempotency key.
CREATE TABLE alert_endpoints (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    url        text NOT NULL CHECK (url ~ '^((https?|mqtt)://|mailto:)'),  -- webhook, broker, mail
    secret     text NOT NULL,  -- the HMAC-SHA256 key of its signatures
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- NULL matches anything; min_severity: that severity or worse; the bbox is the device's
-- position (minLon, minLat, maxLon, maxLat); changes: which of opened, ended,
-- acknowledged, resolved notify.
CREATE TABLE alert_rules (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint     integer NOT NULL REFERENCES alert_endpoints (id) ON DELETE CASCADE,
    kind         text,
    metric       text,
    detector     text,
    min_severity text CHECK (min_severity IN ('low', 'medium', 'high')),
    gateway      text,
    min_lon      double precision,
    min_lat      double precision,
    max_lon      double precision,
    max_lat      double precision,
    changes      text[] NOT NULL DEFAULT '{opened}'
                 CHECK (changes <@ ARRAY['opened', 'ended', 'acknowledged', 'resolved']),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((min_lon IS NULL) = (max_lat IS NULL) AND (min_lat IS NULL) = (max_lon IS NULL))
);

CREATE TABLE alert_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint        integer NOT NULL REFERENCES alert_endpoints (id) ON DELETE CASCADE,
    episode         bigint NOT NULL,
    change          text NOT NULL,
    idempotency_key text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    failed_at       timestamptz,  -- given up after the last attempt: kept, and listed
    last_error      text,
    UNIQUE (endpoint, episode, change)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE FUNCTION citytel_alert_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes text[] := '{}';
    queued integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        changes := ARRAY['opened'];
    ELSE
        IF OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL THEN
            changes := array_append(changes, 'ended');
        END IF;
        IF OLD.acked_at IS NULL AND NEW.acked_at IS NOT NULL THEN
            changes := array_append(changes, 'acknowledged');
        END IF;
        IF OLD.resolved_at IS NULL AND NEW.resolved_at IS NOT NULL THEN
            changes := array_append(changes, 'resolved');
        END IF;
    END IF;
    IF cardinality(changes) = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO alert_outbox (endpoint, episode, change, idempotency_key, payload)
    SELECT DISTINCT ON (r.endpoint, c.change) r.endpoint, NEW.id, c.change,
           'citytel-' || NEW.id || '-' || c.change || '-' || r.endpoint,
           json_build_object(
               'id', NEW.id, 'change', c.change, 'device', d.device_id,
               'gateway', g.gateway_id, 'kind', d.kind, 'metric', m.name,
               'detector', NEW.detector, 'severity', NEW.severity,
               'started_at', NEW.started_at, 'ended_at', NEW.ended_at,
               'peak_score', NEW.peak_score, 'observed', NEW.observed, 'expected', NEW.expected,
               'acked_by', NEW.acked_by, 'resolved_by', NEW.resolved_by,
               'latitude', d.latitude, 'longitude', d.longitude)::jsonb
    FROM unnest(changes) AS c (change)
    JOIN alert_rules r ON c.change = ANY (r.changes)
    JOIN alert_endpoints e ON e.id = r.endpoint AND e.enabled
    LEFT JOIN devices d ON d.id = NEW.device
    LEFT JOIN gateways g ON g.id = coalesce(NEW.gateway, d.gateway)
    LEFT JOIN metrics m ON m.id = NEW.metric
    WHERE (r.kind IS NULL OR r.kind = d.kind)
      AND (r.metric IS NULL OR r.metric = m.name)
      AND (r.detector IS NULL OR r.detector = NEW.detector)
      AND (r.gateway IS NULL OR r.gateway = g.gateway_id)
      AND (r.min_severity IS NULL OR array_position(ARRAY['low', 'medium', 'high'], NEW.severity)
           >= array_position(ARRAY['low', 'medium', 'high'], r.min_severity))
      AND (r.min_lon IS NULL OR (d.longitude BETWEEN r.min_lon AND r.max_lon
                                 AND d.latitude BETWEEN r.min_lat AND r.max_lat))
    ORDER BY r.endpoint, c.change
    ON CONFLICT (endpoint, episode, change) DO NOTHING;
    GET DIAGNOSTICS queued = ROW_COUNT;
    IF queued > 0 THEN
        PERFORM pg_notify('citytel_alerts', '');  -- wakes the dispatcher at commit
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER episodes_alert_outbox AFTER INSERT OR UPDATE ON episodes
    FOR EACH ROW EXECUTE FUNCTION citytel_alert_outbox();
