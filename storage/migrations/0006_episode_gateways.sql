-- Gateway-wide episodes (a whole gateway silent): gateway set, device NULL.
ALTER TABLE episodes ALTER COLUMN device DROP NOT NULL;
ALTER TABLE episodes ADD COLUMN gateway integer;
ALTER TABLE episodes ADD CONSTRAINT episodes_subject CHECK (device IS NOT NULL OR gateway IS NOT NULL);
-- At most one open episode per gateway and detector (device episodes: episodes_open).
CREATE UNIQUE INDEX episodes_open_gateway ON episodes (gateway, detector)
    WHERE ended_at IS NULL AND device IS NULL;
