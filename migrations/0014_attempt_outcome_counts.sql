-- 0014: attempts that ended, counted by status and kept by triggers (like
-- lead_counts), so /metrics reads `dialer_calls_total` in O(1) however many attempts
-- the store holds (a GROUP BY over 1,000,000 attempts takes ~50 ms even indexed).
-- An attempt counts once `ended_at` is set; every insert, update and delete keeps
-- the counts equal to `SELECT status, COUNT(*) FROM attempts WHERE ended_at IS NOT
-- NULL GROUP BY status`. A migration that rebuilds `attempts` must recreate these.
CREATE TABLE attempt_outcome_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO attempt_outcome_counts (status, n)
    SELECT status, COUNT(*) FROM attempts WHERE ended_at IS NOT NULL GROUP BY status;

CREATE TRIGGER attempt_outcome_counts_insert AFTER INSERT ON attempts WHEN NEW.ended_at IS NOT NULL BEGIN
    INSERT INTO attempt_outcome_counts (status, n) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER attempt_outcome_counts_update AFTER UPDATE OF status, ended_at ON attempts
WHEN (OLD.ended_at IS NULL) <> (NEW.ended_at IS NULL)
  OR (NEW.ended_at IS NOT NULL AND OLD.status <> NEW.status) BEGIN
    UPDATE attempt_outcome_counts SET n = n - 1 WHERE OLD.ended_at IS NOT NULL AND status = OLD.status;
    INSERT INTO attempt_outcome_counts (status, n) SELECT NEW.status, 1 WHERE NEW.ended_at IS NOT NULL
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER attempt_outcome_counts_delete AFTER DELETE ON attempts WHEN OLD.ended_at IS NOT NULL BEGIN
    UPDATE attempt_outcome_counts SET n = n - 1 WHERE status = OLD.status;
END;
