-- Tables of the benchmark baseline (bench/baseline/consumer.py), all prefixed
-- bl_ so they can live in the same database as refstream's rs_ tables.
-- `consumer.py --init` runs this file: it drops and re-creates everything.
-- Times of events are epoch milliseconds (bigint), as they come on the wire.

DROP TABLE IF EXISTS bl_rejections, bl_held_refunds, bl_first_charges, bl_credits,
    bl_referrals, bl_users, bl_codes, bl_programs, bl_inbox CASCADE;

-- The benchmark's program: a fixed referrer reward, an optional referee reward.
CREATE TABLE bl_programs (
    key             text PRIMARY KEY,
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    referrer_reward bigint NOT NULL CHECK (referrer_reward >= 0),
    referee_reward  bigint CHECK (referee_reward >= 0),       -- NULL: single-sided
    min_payment     bigint NOT NULL DEFAULT 0 CHECK (min_payment >= 0),
    window_days     integer NOT NULL DEFAULT 30 CHECK (window_days > 0)
);

-- Codes are stored upper-case; the consumer trims and upper-cases its input.
CREATE TABLE bl_codes (
    code    text PRIMARY KEY,
    owner   text NOT NULL,
    program text NOT NULL REFERENCES bl_programs (key),
    uses    bigint NOT NULL DEFAULT 0
);

-- Idempotency: one row per input event; sign-ups and payments are separate
-- namespaces. processed_at is the event's transaction time (throughput).
CREATE TABLE bl_inbox (
    kind         text NOT NULL CHECK (kind IN ('signup', 'payment')),
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, event_id)
);

-- What a user's own sign-up told us (the e-mail hash: self-referral check).
CREATE TABLE bl_users (
    user_id      text PRIMARY KEY,
    email_hash   text,
    signed_up_at bigint
);

-- One referral per referee and program.
CREATE TABLE bl_referrals (
    id                text PRIMARY KEY,
    program           text NOT NULL REFERENCES bl_programs (key),
    code              text NOT NULL,
    referrer          text NOT NULL,
    referee           text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'credited', 'reversed')),
    signup_event_id   text NOT NULL,
    signup_at         bigint NOT NULL,
    payment_id        text,            -- the qualifying charge
    payment_event_id  text,
    qualified_at      bigint,
    reversal_event_id text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (referee, program)
);
CREATE INDEX bl_referrals_referee_payment ON bl_referrals (referee, payment_id);

CREATE TABLE bl_credits (
    id                text PRIMARY KEY,
    referral_id       text NOT NULL REFERENCES bl_referrals (id),
    role              text NOT NULL CHECK (role IN ('REFERRER', 'REFEREE')),
    beneficiary       text NOT NULL,
    amount_minor      bigint NOT NULL,
    currency          text NOT NULL,
    source_event_id   text NOT NULL,
    credited_at       timestamptz NOT NULL DEFAULT now(),
    reversed_at       timestamptz,
    reversal_event_id text
);
CREATE INDEX bl_credits_referral ON bl_credits (referral_id);
CREATE INDEX bl_credits_beneficiary ON bl_credits (beneficiary);

-- Each user's earliest charge (by occurred_at), for sign-ups processed after
-- their payments.
CREATE TABLE bl_first_charges (
    user_id      text PRIMARY KEY,
    payment_id   text NOT NULL,
    event_id     text NOT NULL,
    amount_minor bigint NOT NULL,
    currency     text NOT NULL,
    occurred_at  bigint NOT NULL
);

-- Refunds that matched no referral when processed (their charge may credit one
-- later, when the sign-up arrives).
CREATE TABLE bl_held_refunds (
    user_id     text NOT NULL,
    refund_of   text NOT NULL,
    event_id    text NOT NULL,
    occurred_at bigint NOT NULL,
    applied     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, refund_of)
);

-- Sign-ups and charges that carried a referral intent and had no effect.
CREATE TABLE bl_rejections (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('signup', 'payment')),
    event_id   text NOT NULL,
    user_id    text NOT NULL,
    reason     text NOT NULL,
    code       text,
    detail     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
