-- Reward hold, fraud signals and the operators' review (docs/rules.md §8
-- and §9, docs/commands.md §4).

-- Programs: days a qualified referral's credits are held before they are
-- issued (0: at once, as before), and the most referrals a referrer may make
-- in 24 hours (NULL: no limit).
ALTER TABLE rs_programs
    ADD COLUMN hold_days integer NOT NULL DEFAULT 0 CHECK (hold_days BETWEEN 0 AND 3650),
    ADD COLUMN max_referrals_per_day integer CHECK (max_referrals_per_day >= 0);

-- Referrals and credits gain two statuses: 'held' (qualified, credits
-- computed, nothing published until release_at) and 'cancelled' (a refund or
-- an operator ended the hold; nothing was ever published).
ALTER TABLE rs_referrals DROP CONSTRAINT rs_referrals_status_check;
ALTER TABLE rs_referrals ADD CONSTRAINT rs_referrals_status_check
    CHECK (status IN ('pending', 'held', 'credited', 'reversed', 'cancelled'));
ALTER TABLE rs_referrals
    ADD COLUMN release_at timestamptz,
    ADD COLUMN released_at timestamptz,
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancel_event_id text;
-- The housekeeping of every instance looks for held referrals that are due.
CREATE INDEX rs_referrals_held_due ON rs_referrals (release_at) WHERE status = 'held';
-- Velocity: a referrer's referrals in a program by sign-up time.
CREATE INDEX rs_referrals_referrer_signup
    ON rs_referrals (referrer_user_id, program_id, signup_at);
DROP INDEX rs_referrals_referrer;

ALTER TABLE rs_credits DROP CONSTRAINT rs_credits_status_check;
ALTER TABLE rs_credits ADD CONSTRAINT rs_credits_status_check
    CHECK (status IN ('held', 'issued', 'reversed', 'cancelled'));
-- A held credit's ReferralCredited carries the release time as credited_at.
ALTER TABLE rs_credits ADD COLUMN released_at timestamptz;

ALTER TABLE rs_rejections DROP CONSTRAINT rs_rejections_reason_check;
ALTER TABLE rs_rejections ADD CONSTRAINT rs_rejections_reason_check CHECK (reason IN (
    'UNKNOWN_CODE', 'CODE_INACTIVE', 'CODE_EXPIRED', 'CODE_EXHAUSTED',
    'PROGRAM_INACTIVE', 'SELF_REFERRAL', 'ALREADY_REFERRED', 'REFERRAL_CYCLE',
    'OUTSIDE_WINDOW', 'BELOW_MINIMUM', 'CURRENCY_MISMATCH', 'REFERRER_CAP_REACHED',
    'SHARED_PAYMENT_METHOD', 'VELOCITY_LIMIT'));

-- The remembered first charge keeps its payment method, judged when a later
-- sign-up creates the referral.
ALTER TABLE rs_first_charges ADD COLUMN fingerprint text;

-- What operators did to held referrals, and why.
CREATE TABLE rs_referral_audit (
    id              bigserial PRIMARY KEY,
    referral_id     uuid NOT NULL,
    action          text NOT NULL CHECK (action IN ('release', 'cancel')),
    actor           text NOT NULL,
    reason          text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rs_referral_audit_referral ON rs_referral_audit (referral_id, id);
