-- `refstream admin dlq redrive` (docs/design.md §2, "Redriving dead
-- letters"): the dead letters it has sent back to their source topics, by
-- their position on the DLQ topic, so that each is sent back once.
--   claimed: about to be produced; watermark is the target partition's high
--            watermark queried before the claim was committed, so a copy
--            produced for it can only be at or after that offset;
--   sent:    the copy is on the target partition (its producer transaction
--            committed).
-- A run that died leaves rows claimed; the next run looks for their copies
-- (header refstream_redriven_from) from the watermark on before it sends
-- anything again.
CREATE TABLE rs_dlq_redrives (
    dlq_topic        text        NOT NULL,
    dlq_partition    integer     NOT NULL CHECK (dlq_partition >= 0),
    dlq_offset       bigint      NOT NULL CHECK (dlq_offset >= 0),
    target_topic     text        NOT NULL,
    target_partition integer     NOT NULL CHECK (target_partition >= 0),
    watermark        bigint      NOT NULL CHECK (watermark >= 0),
    state            text        NOT NULL DEFAULT 'claimed'
                                 CHECK (state IN ('claimed', 'sent')),
    error_class      text,
    actor            text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 1,
    claimed_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
CREATE INDEX rs_dlq_redrives_claimed ON rs_dlq_redrives (dlq_topic)
    WHERE state = 'claimed';
