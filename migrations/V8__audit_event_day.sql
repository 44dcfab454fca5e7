-- status, report and the digest read when each user-day was blocked from the
-- audit log's `blocked` and `direction_blocked` events (core::blocked): find
-- them by event and day instead of reading the whole log.
CREATE INDEX audit_event_day ON audit (event, day);
