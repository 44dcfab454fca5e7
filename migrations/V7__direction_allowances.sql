-- Per-direction allowances (`user set 2055 --limit international=10m`): a
-- user may have a separate daily allowance for a direction, alongside the
-- shared one. Each is kept like the shared one: its own ledger (same
-- columns, the month columns unused), grants and notices.
CREATE TABLE direction_limits (
    extension      TEXT NOT NULL,
    direction      TEXT NOT NULL CHECK (length(direction) BETWEEN 1 AND 40),
    daily_limit_s  INTEGER NOT NULL CHECK (daily_limit_s >= 0),
    -- The first day the allowance applies (the day it was given): the days
    -- before it are never planned for it, and nothing carries into it.
    since_day      TEXT NOT NULL,
    PRIMARY KEY (extension, direction)
) STRICT;

CREATE TABLE direction_ledger (
    extension      TEXT NOT NULL,
    day            TEXT NOT NULL,
    direction      TEXT NOT NULL,
    base_s         INTEGER NOT NULL,
    carried_in_s   INTEGER NOT NULL,
    granted_s      INTEGER NOT NULL,
    allowance_s    INTEGER NOT NULL,
    used_s         INTEGER NOT NULL,
    level          INTEGER NOT NULL,
    notified_level INTEGER NOT NULL,
    blocked        INTEGER NOT NULL CHECK (blocked IN (0, 1)),
    closed         INTEGER NOT NULL CHECK (closed IN (0, 1)),
    late_in_s      INTEGER NOT NULL DEFAULT 0,
    late_out_s     INTEGER NOT NULL DEFAULT 0,
    monthly_limit_s INTEGER,
    month_before_s INTEGER NOT NULL DEFAULT 0,
    month_level    INTEGER NOT NULL DEFAULT 0,
    month_notified_level INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (extension, day, direction)
) STRICT;
CREATE INDEX direction_ledger_open ON direction_ledger (closed, day);

-- NULL: the shared allowance (every grant and notice before this migration).
ALTER TABLE grants ADD COLUMN direction TEXT;
ALTER TABLE outbox ADD COLUMN direction TEXT;
