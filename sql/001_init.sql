-- refstream schema, version 1.
-- Postgres is the source of truth. Rules that must hold across processor
-- instances are constraints here (one referral per referee and program,
-- uses_count <= max_uses, one credit per referral and role), so that no cached
-- or in-memory state can violate them. Money is bigint minor units. Every table
-- is prefixed rs_ so refstream can share a database with other applications.

CREATE TABLE rs_programs (
    id              bigserial PRIMARY KEY,
    key             text NOT NULL UNIQUE CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'paused', 'ended')),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reward_kind     text NOT NULL CHECK (reward_kind IN ('fixed', 'percent')),
    -- minor units for 'fixed', basis points of the qualifying payment for 'percent'
    reward_value    bigint NOT NULL CHECK (reward_value >= 0),
    reward_cap      bigint CHECK (reward_cap >= 0),          -- per reward, minor units
    referee_reward  bigint CHECK (referee_reward >= 0),      -- NULL: single-sided
    min_payment     bigint NOT NULL DEFAULT 0 CHECK (min_payment >= 0),
    window_days     integer NOT NULL DEFAULT 30 CHECK (window_days BETWEEN 1 AND 3650),
    referral_goal   integer NOT NULL DEFAULT 10 CHECK (referral_goal >= 1),
    max_rewarded    integer CHECK (max_rewarded >= 0),       -- NULL: no cap
    starts_at       timestamptz,
    ends_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (reward_kind <> 'percent' OR reward_value <= 10000),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at)
);

CREATE TABLE rs_codes (
    code            text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_-]{4,32}$'),
    program_id      bigint NOT NULL REFERENCES rs_programs (id),
    owner_user_id   text NOT NULL CHECK (length(owner_user_id) BETWEEN 1 AND 128),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'paused', 'revoked', 'expired', 'exhausted')),
    vanity          boolean NOT NULL DEFAULT false,
    uses_count      integer NOT NULL DEFAULT 0 CHECK (uses_count >= 0),
    max_uses        integer CHECK (max_uses >= 0),           -- NULL: unlimited; 0 is not
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (max_uses IS NULL OR uses_count <= max_uses)
);
CREATE INDEX rs_codes_owner ON rs_codes (owner_user_id, program_id, created_at);
CREATE INDEX rs_codes_program_owner ON rs_codes (program_id, owner_user_id, created_at);

-- Users as seen in their own sign-up: the e-mail hash for self-referral checks.
CREATE TABLE rs_users (
    user_id         text PRIMARY KEY,
    email_hash      text,
    signup_event_id text,
    signed_up_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rs_referrals (
    id                  uuid PRIMARY KEY,      -- deterministic (common/rs_ids.h)
    program_id          bigint NOT NULL REFERENCES rs_programs (id),
    code                text NOT NULL,         -- no FK: history outlives codes
    referrer_user_id    text NOT NULL,
    referee_user_id     text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'credited', 'reversed')),
    signup_event_id     text NOT NULL,
    signup_at           timestamptz NOT NULL,
    payment_id          text,                  -- the qualifying payment
    payment_event_id    text,
    qualified_at        timestamptz,
    reversed_at         timestamptz,
    reversal_event_id   text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, referee_user_id),      -- first valid sign-up wins
    CHECK (referrer_user_id <> referee_user_id),
    CHECK (status = 'pending' OR payment_id IS NOT NULL)
);
CREATE INDEX rs_referrals_referee ON rs_referrals (referee_user_id);
CREATE INDEX rs_referrals_referrer ON rs_referrals (referrer_user_id, program_id);
CREATE INDEX rs_referrals_code ON rs_referrals (code);

-- Rewarded referrals per referrer and program: the referrer cap and goal
-- progress. Monotonic: a reversal does not give the slot back, so a goal is
-- reached (and announced) once.
CREATE TABLE rs_referrer_stats (
    program_id          bigint NOT NULL REFERENCES rs_programs (id),
    referrer_user_id    text NOT NULL,
    rewarded_count      integer NOT NULL DEFAULT 0 CHECK (rewarded_count >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program_id, referrer_user_id)
);

CREATE TABLE rs_credits (
    id                      uuid PRIMARY KEY,  -- deterministic credit_id
    referral_id             uuid NOT NULL REFERENCES rs_referrals (id),
    program_id              bigint NOT NULL REFERENCES rs_programs (id),
    beneficiary_user_id     text NOT NULL,
    role                    text NOT NULL CHECK (role IN ('referrer', 'referee')),
    amount_minor            bigint NOT NULL CHECK (amount_minor >= 0),
    currency                text NOT NULL,
    status                  text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'reversed')),
    source_event_id         text NOT NULL,
    referrer_rewarded_count integer NOT NULL,
    goal_reached            boolean NOT NULL,
    created_at              timestamptz NOT NULL,
    reversed_at             timestamptz,
    reversal_event_id       text,
    UNIQUE (referral_id, role)
);
CREATE INDEX rs_credits_beneficiary ON rs_credits (beneficiary_user_id);
CREATE INDEX rs_credits_program ON rs_credits (program_id, role);

-- Every sign-up or payment that carried a referral intent but had no effect.
CREATE TABLE rs_rejections (
    id                  bigserial PRIMARY KEY,
    event_id            text NOT NULL,
    event_type          text NOT NULL CHECK (event_type IN ('signup', 'payment')),
    reason              text NOT NULL CHECK (reason IN (
                            'UNKNOWN_CODE', 'CODE_INACTIVE', 'CODE_EXPIRED', 'CODE_EXHAUSTED',
                            'PROGRAM_INACTIVE', 'SELF_REFERRAL', 'ALREADY_REFERRED',
                            'REFERRAL_CYCLE', 'OUTSIDE_WINDOW', 'BELOW_MINIMUM',
                            'CURRENCY_MISMATCH', 'REFERRER_CAP_REACHED')),
    user_id             text NOT NULL,         -- the referee (sign-up) or payer
    code                text,
    program_id          bigint REFERENCES rs_programs (id),
    referrer_user_id    text,
    detail              text NOT NULL,
    occurred_at         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rs_rejections_program ON rs_rejections (program_id, reason, id);
CREATE INDEX rs_rejections_user ON rs_rejections (user_id, id);
CREATE INDEX rs_rejections_referrer ON rs_rejections (referrer_user_id, id)
    WHERE referrer_user_id IS NOT NULL;

-- Idempotency: an input event has its effect at most once. Sign-up and payment
-- ids are separate namespaces (two upstream systems); 'dlq' rows are keyed by
-- topic/partition/offset so a replayed malformed record is dead-lettered once.
CREATE TABLE rs_inbox (
    kind            text NOT NULL CHECK (kind IN ('signup', 'payment', 'dlq')),
    event_id        text NOT NULL,
    processed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, event_id)
);

-- Everything refstream publishes is written here in the batch transaction and
-- published after COMMIT; rows whose delivery was not confirmed are
-- republished by the sweep (at-least-once; consumers dedupe by credit_id).
CREATE TABLE rs_outbox (
    id                  bigserial PRIMARY KEY,
    destination         text NOT NULL CHECK (destination IN ('credited', 'reversed', 'dlq')),
    msg_key             bytea,
    payload             bytea,
    event_type          text NOT NULL,
    source_topic        text NOT NULL,
    source_partition    integer NOT NULL,
    source_offset       bigint NOT NULL,
    error_class         text,
    error_message       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    claimed_until       timestamptz,           -- lease of the instance publishing it
    published_at        timestamptz,
    attempts            integer NOT NULL DEFAULT 0
);
CREATE INDEX rs_outbox_unpublished ON rs_outbox (id) WHERE published_at IS NULL;
CREATE INDEX rs_outbox_published ON rs_outbox (published_at) WHERE published_at IS NOT NULL;

-- Payments can be processed before their sign-up (two topics): each user's
-- earliest charge is remembered and evaluated when a referral is created.
CREATE TABLE rs_first_charges (
    user_id         text PRIMARY KEY,
    payment_id      text NOT NULL,
    event_id        text NOT NULL,
    amount_minor    bigint NOT NULL,
    currency        text NOT NULL,
    occurred_at     timestamptz NOT NULL
);

-- Refunds whose charge has not qualified (yet): applied if it later does.
CREATE TABLE rs_held_refunds (
    user_id         text NOT NULL,
    refund_of       text NOT NULL,
    event_id        text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, refund_of)
);

-- Epoch milliseconds <-> timestamptz, exact (no floating point). Plain SQL
-- bodies (not SQL-standard RETURN) so Postgres 11+ can run the migrations.
CREATE FUNCTION rs_ms_to_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'epoch'::timestamptz + ms * interval '1 millisecond' $$;
CREATE FUNCTION rs_ts_to_ms(ts timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(extract(epoch FROM ts) * 1000)::bigint $$;
