-- Dead letters that can be fixed: a refused value replayed once the catalog knows its
-- metric is marked here, in the transaction that stores it, so a replay stores each
-- value once however often it runs.
ALTER TABLE dead_letters ADD COLUMN replayed_at timestamptz;
CREATE INDEX dead_letters_replayable ON dead_letters (reason, received_at)
    WHERE replayed_at IS NULL;
