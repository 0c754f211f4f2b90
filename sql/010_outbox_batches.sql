-- The outbox marked published by batch (docs/design.md §2): a row updated on
-- delivery was written twice (a new version of the whole row and an entry in
-- each of its indexes), and that update was the largest statement of the
-- heavy benchmark stream. Now each batch transaction that writes outbox rows
-- also writes one rs_outbox_batches row: the lease of the process publishing
-- them, and published_at, set once every row of the batch was acknowledged.
--
-- A row of rs_outbox is published when its own published_at is set, or its
-- batch's. A row either belongs to a batch (batch_id set, its own
-- published_at and claimed_until NULL) or stands alone (batch_id NULL: rows
-- written before this migration, and the rows of a batch whose lease ran out:
-- the sweep takes them out of their batch, deletes the batch, and publishes
-- them one by one as before). No foreign key: a batch and its rows are
-- written in one statement and leave together (the sweep, retention), and a
-- foreign key would cost a trigger call per row on the hot path.
CREATE TABLE rs_outbox_batches (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz NOT NULL,      -- lease of the instance publishing it
    published_at    timestamptz
);
CREATE INDEX rs_outbox_batches_unpublished ON rs_outbox_batches (id)
    WHERE published_at IS NULL;
CREATE INDEX rs_outbox_batches_published ON rs_outbox_batches (published_at)
    WHERE published_at IS NOT NULL;

ALTER TABLE rs_outbox ADD COLUMN batch_id bigint;
CREATE INDEX rs_outbox_batch ON rs_outbox (batch_id) WHERE batch_id IS NOT NULL;
-- Only rows standing alone are published one by one.
DROP INDEX rs_outbox_unpublished;
CREATE INDEX rs_outbox_unpublished ON rs_outbox (id)
    WHERE published_at IS NULL AND batch_id IS NULL;

-- Every outbox row with its state, for operators and tests: published_at and
-- claimed_until are the batch's for a row in a batch.
CREATE VIEW rs_outbox_state AS
SELECT o.id, o.destination, o.msg_key, o.payload, o.event_type, o.source_topic,
       o.source_partition, o.source_offset, o.error_class, o.error_message,
       o.created_at, coalesce(b.claimed_until, o.claimed_until) AS claimed_until,
       coalesce(b.published_at, o.published_at) AS published_at, o.attempts,
       o.batch_id
  FROM rs_outbox o
  LEFT JOIN rs_outbox_batches b ON b.id = o.batch_id;
