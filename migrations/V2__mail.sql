-- Email notifications: a per-user copy address (a supervisor) and retry
-- scheduling for the outbox.
ALTER TABLE users ADD COLUMN cc TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN next_attempt_at TEXT;
