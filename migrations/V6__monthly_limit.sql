-- The monthly cap (`user set --monthly-limit 8h`): a per-user ceiling on a
-- calendar month's paid seconds. A day's allowance_s is then
-- min(base_s + carried_in_s + granted_s, monthly_limit_s - month_before_s).
-- NULL = no monthly limit, so every existing user and ledger keeps its figures.
ALTER TABLE users ADD COLUMN monthly_limit_s INTEGER CHECK (monthly_limit_s IS NULL OR monthly_limit_s >= 0);
ALTER TABLE ledger ADD COLUMN monthly_limit_s INTEGER;
-- What the earlier days of the day's month charged (their used_s).
ALTER TABLE ledger ADD COLUMN month_before_s INTEGER NOT NULL DEFAULT 0;
-- The monthly thresholds reached and mailed, like level / notified_level.
ALTER TABLE ledger ADD COLUMN month_level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN month_notified_level INTEGER NOT NULL DEFAULT 0;
-- A notice about the day's allowance or the month's: for 'month', used_s is
-- the month's charge so far and allowance_s the monthly limit.
ALTER TABLE outbox ADD COLUMN period TEXT NOT NULL DEFAULT 'day' CHECK (period IN ('day', 'month'));
