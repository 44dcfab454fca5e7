-- The daily digest travels through the outbox like a notice (same retries,
-- backoff and give-up rule): kind 'digest', no extension, threshold 0, the
-- day's totals in used_s/allowance_s. At most one digest per day, ever.
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'notice' CHECK (kind IN ('notice', 'digest'));
CREATE UNIQUE INDEX outbox_one_digest_a_day ON outbox (day) WHERE kind = 'digest';
-- Whom a grant was made for (`grant --by NAME`), for the digest in any language.
ALTER TABLE grants ADD COLUMN on_behalf_of TEXT;
