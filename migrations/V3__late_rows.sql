-- Calls whose CDR rows appear after their day closed (a call across
-- midnight, CDR batch mode) are charged to the open day:
--   late_in_s  on the day that was charged (already included in used_s),
--   late_out_s on the closed day they belong to (so each is charged once).
ALTER TABLE ledger ADD COLUMN late_in_s INTEGER NOT NULL DEFAULT 0 CHECK (late_in_s >= 0);
ALTER TABLE ledger ADD COLUMN late_out_s INTEGER NOT NULL DEFAULT 0 CHECK (late_out_s >= 0);
