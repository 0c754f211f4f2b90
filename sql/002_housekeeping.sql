-- Indexes for the processors' periodic housekeeping, so that each pass reads
-- only the rows it changes instead of scanning whole tables:
--   * codes reaching their expiry (every outbox sweep of every instance);
--   * retention of the inbox and of held refunds (REFSTREAM_INBOX_RETENTION_HOURS).
CREATE INDEX rs_codes_active_expiry ON rs_codes (expires_at)
    WHERE status = 'active' AND expires_at IS NOT NULL;
CREATE INDEX rs_inbox_processed_at ON rs_inbox (processed_at);
CREATE INDEX rs_held_refunds_created_at ON rs_held_refunds (created_at);
