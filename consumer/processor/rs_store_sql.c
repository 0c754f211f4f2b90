/* The statements of consumer/processor (see rs_store_sql.h). */
#include "rs_store_sql.h"

const char SQL_BEGIN[] = "BEGIN ISOLATION LEVEL READ COMMITTED";
const char SQL_COMMIT[] = "COMMIT";

const char SQL_INBOX_CLAIM[] = "INSERT INTO rs_inbox (key)\n"
                               "SELECT unnest($1::uuid[])\n"
                               "    ON CONFLICT DO NOTHING\n"
                               "RETURNING key";
const char SQL_INBOX_INSERT[] = "INSERT INTO rs_inbox (key) SELECT unnest($1::uuid[])";
const char SQL_INBOX_ADD[] = "INSERT INTO rs_inbox (key)\n"
                             "SELECT unnest($1::uuid[])\n"
                             "    ON CONFLICT DO NOTHING";

/* Transaction-scoped advisory locks (memory only: no row is written), taken
 * in the order of the array, which the caller sorts. */
const char SQL_USERS_LOCK[] = "SELECT pg_advisory_xact_lock($1::int, k)\n"
                              "  FROM unnest($2::int[]) AS k";

/* The loads probe an index once per key of the array $1, in a nested loop
 * over unnest($1) whatever the planner thinks of the table's size: the
 * LATERAL subquery with OFFSET 0 is not flattened into a join, so it runs
 * once per key. With "col = ANY($1)", or a plain join, the planner priced a
 * few hundred probes above a sequential scan (or a hash of) a table of some
 * 50,000 rows, whose cost then grew with the table (docs/design.md §1). The
 * arrays hold distinct keys (rs_strset_t). */
#define BY_KEYS(outer, type, inner)                                                      \
        outer "\n  FROM unnest($1::" type "[]) AS k(v),\n"                               \
              "       LATERAL (" inner "\n                OFFSET 0) AS t"

const char SQL_USERS_LOAD[] =
    BY_KEYS("SELECT t.*", "text",
            "SELECT user_id, email_hash, signup_event_id, rs_ts_to_ms(signed_up_at),\n"
            "       rs_ts_to_ms(first_charge_at), pending_referral\n"
            "  FROM rs_users WHERE user_id = k.v");

const char SQL_USERS_QUIET[] =
    BY_KEYS("SELECT t.*", "text",
            "SELECT user_id, rs_ts_to_ms(first_charge_at)\n"
            "  FROM rs_users\n"
            " WHERE user_id = k.v AND signup_event_id IS NOT NULL\n"
            "   AND NOT pending_referral AND first_charge_at IS NOT NULL");

/* In the order of the codes: the nested loop locks each as it reaches it. */
const char SQL_CODES_LOCK[] =
    "SELECT t.*\n"
    "  FROM (SELECT v FROM unnest($1::text[]) AS v ORDER BY v) AS k,\n"
    "       LATERAL (SELECT code, program_id, owner_user_id, status,\n"
    "                       uses_count, max_uses, rs_ts_to_ms(expires_at)\n"
    "                  FROM rs_codes WHERE code = k.v\n"
    "                OFFSET 0 FOR UPDATE) AS t";

const char SQL_REFERRERS_OF[] =
    BY_KEYS("SELECT DISTINCT t.*", "text",
            "SELECT referee_user_id, referrer_user_id FROM rs_referrals\n"
            " WHERE referee_user_id = k.v");

const char SQL_CODES_FIND[] =
    BY_KEYS("SELECT t.*", "text",
            "SELECT code, program_id, owner_user_id FROM rs_codes WHERE code = k.v");

#define REFERRAL_COLUMNS                                                                 \
        "SELECT id, program_id, code, referrer_user_id, referee_user_id, status,\n"      \
        "       signup_event_id, rs_ts_to_ms(signup_at), payment_id, "                   \
        "payment_event_id,\n"                                                            \
        "       rs_ts_to_ms(qualified_at), rs_ts_to_ms(reversed_at), "                   \
        "reversal_event_id,\n"                                                           \
        "       rs_ts_to_ms(release_at), rs_ts_to_ms(released_at),\n"                    \
        "       rs_ts_to_ms(cancelled_at), cancel_event_id\n"                            \
        "  FROM rs_referrals\n"

const char SQL_REFERRALS_OF[] =
    BY_KEYS("SELECT t.*", "text", REFERRAL_COLUMNS " WHERE referee_user_id = k.v");

const char SQL_REFERRALS_BY_ID[] =
    BY_KEYS("SELECT t.*", "uuid", REFERRAL_COLUMNS " WHERE id = k.v");

const char SQL_RELEASE_DUE[] = "SELECT id, referee_user_id\n"
                               "  FROM rs_referrals\n"
                               " WHERE release_at <= now() AND released_at IS NULL\n"
                               "   AND cancelled_at IS NULL AND status = 'held'\n"
                               " ORDER BY release_at\n"
                               " LIMIT $1::int\n"
                               "   FOR UPDATE SKIP LOCKED";

const char SQL_USERS_TRY_LOCK[] = "SELECT pg_try_advisory_xact_lock($1::int, k)\n"
                                  "  FROM unnest($2::int[]) WITH ORDINALITY AS t(k, i)\n"
                                  " ORDER BY i";

const char SQL_FINGERPRINTS_OF[] = BY_KEYS("SELECT t.*", "text",
                                           "SELECT user_id, fingerprint\n"
                                           "  FROM rs_payment_fingerprints\n"
                                           " WHERE fingerprint = k.v");

const char SQL_RECENT_REFERRALS[] =
    "SELECT f.program_id, f.referrer_user_id, rs_ts_to_ms(f.signup_at)\n"
    "  FROM (SELECT DISTINCT * FROM {rows}) AS k\n"
    "  JOIN rs_referrals f\n"
    "    ON f.referrer_user_id = k.referrer AND f.program_id = k.program_id\n"
    " WHERE f.signup_at > rs_ms_to_ts({p1}::bigint)";

const char SQL_PROGRAMS[] = BY_KEYS(
    "SELECT t.*", "bigint",
    "SELECT id, key, status, currency, reward_kind, reward_value, reward_cap,\n"
    "       referee_reward, min_payment, window_days, referral_goal, max_rewarded,\n"
    "       rs_ts_to_ms(starts_at), rs_ts_to_ms(ends_at), hold_days,\n"
    "       max_referrals_per_day\n"
    "  FROM rs_programs WHERE id = k.v");

const char SQL_REFSTATS[] =
    "SELECT s.program_id, s.referrer_user_id, s.rewarded_count\n"
    "  FROM rs_referrer_stats s\n"
    "  JOIN (SELECT DISTINCT * FROM {rows}) AS k\n"
    "    ON s.program_id = k.program_id AND s.referrer_user_id = k.referrer";

const char SQL_FIRST_CHARGES[] =
    BY_KEYS("SELECT t.*", "text",
            "SELECT user_id, payment_id, event_id, amount_minor, currency,\n"
            "       rs_ts_to_ms(occurred_at), fingerprint\n"
            "  FROM rs_first_charges WHERE user_id = k.v");

const char SQL_HELD_REFUNDS[] =
    BY_KEYS("SELECT t.*", "text",
            "SELECT user_id, refund_of, event_id, rs_ts_to_ms(occurred_at)\n"
            "  FROM rs_held_refunds WHERE user_id = k.v");

const char SQL_CREDITS_OF[] =
    BY_KEYS("SELECT t.*", "uuid",
            "SELECT id, referral_id, role, beneficiary_user_id, amount_minor, currency,\n"
            "       status, source_event_id, rs_ts_to_ms(created_at),\n"
            "       referrer_rewarded_count, goal_reached, rs_ts_to_ms(released_at)\n"
            "  FROM rs_credits WHERE referral_id = k.v");

/* A sign-up's fields are set once (the first sign-up wins, and the first
 * e-mail hash): the quiet sign-ups write them without the user's lock, so
 * neither statement overwrites a value already there. */
#define SIGNUP_FIELDS_MERGE                                                              \
        "   SET email_hash = COALESCE(rs_users.email_hash, EXCLUDED.email_hash),\n"      \
        "       signup_event_id = COALESCE(rs_users.signup_event_id,\n"                  \
        "                                  EXCLUDED.signup_event_id),\n"                 \
        "       signed_up_at = COALESCE(rs_users.signed_up_at, EXCLUDED.signed_up_at)"

const char SQL_USERS_UPSERT[] =
    "INSERT INTO rs_users (user_id, email_hash, signup_event_id, signed_up_at,\n"
    "                      first_charge_at, pending_referral)\n"
    "SELECT user_id, email_hash, signup_event_id, rs_ms_to_ts(signed_up_at_ms),\n"
    "       rs_ms_to_ts(first_charge_at_ms), pending_referral\n"
    "  FROM {rows}\n"
    "    ON CONFLICT (user_id) DO UPDATE\n" SIGNUP_FIELDS_MERGE ",\n"
    "       first_charge_at = EXCLUDED.first_charge_at,\n"
    "       pending_referral = EXCLUDED.pending_referral";

const char SQL_USERS_SIGNUP_MERGE[] =
    "INSERT INTO rs_users (user_id, email_hash, signup_event_id, signed_up_at)\n"
    "SELECT user_id, email_hash, signup_event_id, rs_ms_to_ts(signed_up_at_ms)\n"
    "  FROM {rows}\n"
    "    ON CONFLICT (user_id) DO UPDATE\n" SIGNUP_FIELDS_MERGE "\n"
    " WHERE rs_users.signup_event_id IS NULL OR rs_users.email_hash IS NULL";

/* The batch's writes reach their rows by key. An UPDATE ... FROM unnest()
 * of 2,000 keys was planned as a hash join over the whole table: on the
 * heavy benchmark stream (bench/compare.sh) the referrals' update hashed all
 * 60,000 rows of rs_referrals, 11 ms of its 20, more as the table grows.
 * Without hash and merge joins, each key is one index probe. Set for the
 * rest of the batch transaction, whose remaining statements are writes. */
const char SQL_WRITE_PLANS[] = "SELECT set_config('enable_hashjoin', 'off', true),\n"
                               "       set_config('enable_mergejoin', 'off', true)";

const char SQL_CODES_UPDATE[] =
    "UPDATE rs_codes c\n"
    "   SET uses_count = v.uses_count, status = v.status, updated_at = now()\n"
    "  FROM {rows}\n"
    " WHERE c.code = v.code";

const char SQL_REFERRALS_INSERT[] =
    "INSERT INTO rs_referrals (id, status, payment_id, payment_event_id, qualified_at,\n"
    "                          reversed_at, reversal_event_id, release_at,\n"
    "                          released_at, cancelled_at, cancel_event_id,\n"
    "                          program_id, code, referrer_user_id, referee_user_id,\n"
    "                          signup_event_id, signup_at)\n"
    "SELECT id, status, payment_id, payment_event_id, rs_ms_to_ts(qualified_at_ms),\n"
    "       rs_ms_to_ts(reversed_at_ms), reversal_event_id, rs_ms_to_ts(release_at_ms),\n"
    "       rs_ms_to_ts(released_at_ms), rs_ms_to_ts(cancelled_at_ms), cancel_event_id,\n"
    "       program_id, code, referrer, referee, signup_event_id,\n"
    "       rs_ms_to_ts(signup_at_ms)\n"
    "  FROM {rows}";

const char SQL_REFERRALS_UPDATE[] =
    "UPDATE rs_referrals f\n"
    "   SET status = v.status, payment_id = v.payment_id,\n"
    "       payment_event_id = v.payment_event_id,\n"
    "       qualified_at = rs_ms_to_ts(v.qualified_at_ms),\n"
    "       reversed_at = rs_ms_to_ts(v.reversed_at_ms),\n"
    "       reversal_event_id = v.reversal_event_id,\n"
    "       release_at = rs_ms_to_ts(v.release_at_ms),\n"
    "       released_at = rs_ms_to_ts(v.released_at_ms),\n"
    "       cancelled_at = rs_ms_to_ts(v.cancelled_at_ms),\n"
    "       cancel_event_id = v.cancel_event_id, updated_at = now()\n"
    "  FROM {rows}\n"
    " WHERE f.id = v.id";

const char SQL_REFSTATS_UPSERT[] =
    "INSERT INTO rs_referrer_stats (program_id, referrer_user_id, rewarded_count)\n"
    "SELECT program_id, referrer, rewarded_count FROM {rows}\n"
    "    ON CONFLICT (program_id, referrer_user_id) DO UPDATE\n"
    "   SET rewarded_count = EXCLUDED.rewarded_count, updated_at = now()";

const char SQL_CREDITS_INSERT[] =
    "INSERT INTO rs_credits (id, referral_id, program_id, beneficiary_user_id, role,\n"
    "                        amount_minor, currency, status, source_event_id,\n"
    "                        referrer_rewarded_count, goal_reached, created_at,\n"
    "                        reversed_at, reversal_event_id, released_at)\n"
    "SELECT id, referral_id, program_id, beneficiary, role, amount_minor, currency,\n"
    "       status, source_event_id, rewarded_count, goal_reached,\n"
    "       rs_ms_to_ts(created_at_ms), rs_ms_to_ts(reversed_at_ms), reversal_event_id,\n"
    "       rs_ms_to_ts(released_at_ms)\n"
    "  FROM {rows}";

const char SQL_CREDITS_UPDATE[] =
    "UPDATE rs_credits c\n"
    "   SET status = v.status, reversed_at = rs_ms_to_ts(v.reversed_at_ms),\n"
    "       reversal_event_id = v.reversal_event_id,\n"
    "       released_at = rs_ms_to_ts(v.released_at_ms)\n"
    "  FROM {rows}\n"
    " WHERE c.id = v.id";

const char SQL_REJECTIONS_INSERT[] =
    "INSERT INTO rs_rejections (event_id, event_type, reason, user_id, code,\n"
    "                           program_id, referrer_user_id, detail, occurred_at)\n"
    "SELECT event_id, event_type, reason, user_id, code, program_id, referrer, detail,\n"
    "       rs_ms_to_ts(occurred_at_ms)\n"
    "  FROM {rows}";

const char SQL_FIRST_CHARGES_UPSERT[] =
    "INSERT INTO rs_first_charges (user_id, payment_id, event_id, amount_minor,\n"
    "                              currency, occurred_at, fingerprint)\n"
    "SELECT user_id, payment_id, event_id, amount_minor, currency,\n"
    "       rs_ms_to_ts(occurred_at_ms), fingerprint\n"
    "  FROM {rows}\n"
    "    ON CONFLICT (user_id) DO UPDATE\n"
    "   SET payment_id = EXCLUDED.payment_id, event_id = EXCLUDED.event_id,\n"
    "       amount_minor = EXCLUDED.amount_minor, currency = EXCLUDED.currency,\n"
    "       occurred_at = EXCLUDED.occurred_at, fingerprint = EXCLUDED.fingerprint\n"
    " WHERE EXCLUDED.occurred_at < rs_first_charges.occurred_at";

const char SQL_FINGERPRINTS_INSERT[] =
    "INSERT INTO rs_payment_fingerprints (user_id, fingerprint, first_event_id,\n"
    "                                     first_seen_at)\n"
    "SELECT user_id, payment_fingerprint, event_id, rs_ms_to_ts(occurred_at_ms)\n"
    "  FROM {rows}\n"
    "    ON CONFLICT (user_id, fingerprint) DO UPDATE\n"
    "   SET first_event_id = EXCLUDED.first_event_id,\n"
    "       first_seen_at = EXCLUDED.first_seen_at\n"
    " WHERE EXCLUDED.first_seen_at < rs_payment_fingerprints.first_seen_at";

const char SQL_HELD_INSERT[] =
    "INSERT INTO rs_held_refunds (user_id, refund_of, event_id, occurred_at)\n"
    "SELECT user_id, refund_of, event_id, rs_ms_to_ts(occurred_at_ms) FROM {rows}\n"
    "    ON CONFLICT DO NOTHING";

const char SQL_HELD_DELETE[] = "DELETE FROM rs_held_refunds h\n"
                               " USING {rows}\n"
                               " WHERE h.user_id = v.user_id\n"
                               "   AND h.refund_of = v.refund_of";

const char SQL_OUTBOX_INSERT[] =
    "WITH batch AS (\n"
    "    INSERT INTO rs_outbox_batches (claimed_until)\n"
    "    VALUES (clock_timestamp() + {p1}::bigint * interval '1 millisecond')\n"
    "    RETURNING id)\n"
    "INSERT INTO rs_outbox (batch_id, destination, msg_key, payload, event_type,\n"
    "                       source_topic, source_partition, source_offset,\n"
    "                       error_class, error_message)\n"
    "SELECT batch.id, destination, msg_key, payload, event_type, source_topic,\n"
    "       source_partition, source_offset, error_class, error_message\n"
    "  FROM {rows_numbered} CROSS JOIN batch\n"
    " ORDER BY ord\n"
    "RETURNING id, batch_id";

const char SQL_CODES_EXPIRE[] =
    "UPDATE rs_codes SET status = 'expired', updated_at = now()\n"
    " WHERE status = 'active' AND expires_at <= now()\n"
    "RETURNING code";

const char SQL_INBOX_RETENTION[] =
    "DELETE FROM rs_inbox\n"
    " WHERE key IN (SELECT key FROM rs_inbox\n"
    "                WHERE processed_at < now() - $1::bigint * interval '1 hour'\n"
    "                LIMIT $2::int\n"
    "                  FOR UPDATE SKIP LOCKED)";

const char SQL_HELD_RETENTION[] =
    "DELETE FROM rs_held_refunds\n"
    " WHERE (user_id, refund_of) IN (SELECT user_id, refund_of FROM rs_held_refunds\n"
    "                                 WHERE created_at < now() - $1::bigint * interval "
    "'1 hour'\n"
    "                                 LIMIT $2::int\n"
    "                                   FOR UPDATE SKIP LOCKED)";
