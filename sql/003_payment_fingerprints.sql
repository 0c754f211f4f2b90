-- PaymentEvent version 2 carries an optional payment_fingerprint, an opaque id
-- of the payment method (docs/events.md §3). Every fingerprint seen on a
-- user's own charges is remembered, for the shared-payment-method check
-- (docs/rules.md §3). Written in the batch transaction, so a replayed charge adds
-- nothing.
CREATE TABLE rs_payment_fingerprints (
    user_id         text NOT NULL,
    fingerprint     text NOT NULL,
    first_event_id  text NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
);
CREATE INDEX rs_payment_fingerprints_by_fingerprint
    ON rs_payment_fingerprints (fingerprint);
