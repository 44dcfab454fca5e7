-- callquota state. Append-only: never edit a migration that has shipped.
-- Times are RFC 3339 UTC text, days are YYYY-MM-DD in the configured zone,
-- durations are whole seconds.

CREATE TABLE users (
    extension      TEXT PRIMARY KEY NOT NULL CHECK (length(extension) BETWEEN 1 AND 32),
    name           TEXT NOT NULL,
    email          TEXT NOT NULL DEFAULT '',
    daily_limit_s  INTEGER NOT NULL CHECK (daily_limit_s >= 0),
    active         INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    since_day      TEXT NOT NULL,      -- first day the user is tracked
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;

-- One row per user per day. allowance_s = base_s + carried_in_s + granted_s.
CREATE TABLE ledger (
    extension      TEXT NOT NULL,
    day            TEXT NOT NULL,
    base_s         INTEGER NOT NULL,
    carried_in_s   INTEGER NOT NULL,
    granted_s      INTEGER NOT NULL,
    allowance_s    INTEGER NOT NULL,
    used_s         INTEGER NOT NULL,
    level          INTEGER NOT NULL,   -- highest threshold percent reached, 0 if none
    notified_level INTEGER NOT NULL,   -- highest threshold a notice was queued for
    blocked        INTEGER NOT NULL CHECK (blocked IN (0, 1)),
    closed         INTEGER NOT NULL CHECK (closed IN (0, 1)),
    PRIMARY KEY (extension, day)
) STRICT;
CREATE INDEX ledger_open ON ledger (closed, day);

CREATE TABLE grants (
    id             INTEGER PRIMARY KEY,
    extension      TEXT NOT NULL,
    day            TEXT NOT NULL,
    seconds        INTEGER NOT NULL CHECK (seconds > 0),
    reason         TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL
) STRICT;
CREATE INDEX grants_day ON grants (extension, day);

-- Notices waiting for delivery (or delivered, skipped, given up).
CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY,
    extension      TEXT NOT NULL,
    day            TEXT NOT NULL,
    threshold      INTEGER NOT NULL,
    used_s         INTEGER NOT NULL,
    allowance_s    INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    sent_at        TEXT
) STRICT;
CREATE INDEX outbox_status ON outbox (status, id);

-- The audit log: every threshold crossed, block, unblock, closed day,
-- user/limit change, grant, include file write and reload result.
CREATE TABLE audit (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    extension      TEXT,
    day            TEXT,
    event          TEXT NOT NULL,
    detail         TEXT NOT NULL
) STRICT;
CREATE INDEX audit_extension ON audit (extension, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Small facts about the run cycle: open_day, include_generation,
-- confirmed_generation.
CREATE TABLE meta (
    key            TEXT PRIMARY KEY NOT NULL,
    value          TEXT NOT NULL
) STRICT;
