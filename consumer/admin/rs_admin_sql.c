/* The statements of the admin component (see rs_admin_sql.h). The fragment
 * macros are string literals pasted at compile time, so every statement
 * stays static text with $n parameters. Fragments start at column 0 of their
 * own text; a fragment used inside a statement keeps its own indentation. */
#include "rs_admin_sql.h"
#include "rs_admin.h"

/* ---------------------------------------------------------------- fragments */

/* RS_ADMIN_RECENT as SQL text. */
#define STR2(x) #x
#define STR(x)  STR2(x)
#define RECENT  STR(RS_ADMIN_RECENT)

/* to_char(TS " RFC3339_UTC ") turns a timestamptz into
 * "2026-01-02T03:04:05.678Z" (NULL stays NULL): the same format as
 * rs_format_rfc3339, independent of the session time zone. */
#define RFC3339_UTC "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"

/* The status an active/expired/exhausted code has under its limits. Expiry
 * first, in the order the processor checks them (common/rules/rs_rules.c). */
#define RS_ADMIN_LIMIT_STATUS(uses, max, exp)                                            \
        "(CASE WHEN (" exp ") IS NOT NULL AND (" exp ") <= now()\n"                      \
        "      THEN 'expired'\n"                                                         \
        "      WHEN (" max ") IS NOT NULL AND (" uses ") >= (" max ")\n"                 \
        "      THEN 'exhausted'\n"                                                       \
        "      ELSE 'active'\n"                                                          \
        "  END)"

/* A program row (alias p) as a JSON object. */
#define RS_ADMIN_PROGRAM_JSON                                                            \
        "json_build_object(\n"                                                           \
        "    'key', p.key, 'name', p.name, 'status', p.status,\n"                        \
        "    'currency', p.currency, 'reward_kind', p.reward_kind,\n"                    \
        "    'reward_value', p.reward_value, 'reward_cap', p.reward_cap,\n"              \
        "    'referee_reward', p.referee_reward, 'min_payment', p.min_payment,\n"        \
        "    'window_days', p.window_days, 'referral_goal', p.referral_goal,\n"          \
        "    'max_rewarded', p.max_rewarded, 'hold_days', p.hold_days,\n"                \
        "    'max_referrals_per_day', p.max_referrals_per_day,\n"                        \
        "    'starts_at', to_char(p.starts_at " RFC3339_UTC "),\n"                       \
        "    'ends_at', to_char(p.ends_at " RFC3339_UTC "),\n"                           \
        "    'created_at', to_char(p.created_at " RFC3339_UTC "),\n"                     \
        "    'updated_at', to_char(p.updated_at " RFC3339_UTC "))"

/* Counts of referral rows (alias r, may be NULL-extended) by status. */
#define RS_ADMIN_REFERRAL_COUNTS                                                         \
        "json_build_object(\n"                                                           \
        "    'total', count(r.id),\n"                                                    \
        "    'pending', count(*) FILTER (WHERE r.status = 'pending'),\n"                 \
        "    'held', count(*) FILTER (WHERE r.status = 'held'),\n"                       \
        "    'credited', count(*) FILTER (WHERE r.status = 'credited'),\n"               \
        "    'reversed', count(*) FILTER (WHERE r.status = 'reversed'),\n"               \
        "    'cancelled', count(*) FILTER (WHERE r.status = 'cancelled'))"

/* A rejection row (alias j; its program alias jp, may be NULL-extended) as
 * JSON fields. */
#define REJECTION_FIELDS                                                                 \
        "'at', to_char(j.occurred_at " RFC3339_UTC "),\n"                                \
        "'recorded_at', to_char(j.created_at " RFC3339_UTC "),\n"                        \
        "'reason', j.reason, 'event_type', j.event_type, 'event_id', j.event_id,\n"      \
        "'user_id', j.user_id, 'referrer_user_id', j.referrer_user_id,\n"                \
        "'code', j.code, 'program', jp.key, 'detail', j.detail"

/* Count and sum of the credits (alias k) in one status. */
#define CREDIT_SUM(st)                                                                   \
        "count(*) FILTER (WHERE k.status = '" st "') AS " st "_count,\n"                 \
        "coalesce(sum(k.amount_minor) FILTER (WHERE k.status = '" st "'), 0)\n"          \
        "    AS " st "_minor"

/* Credit sums of rows (alias k, their referral f) grouped by the caller, and
 * when the next and the last held ones become due. */
#define CREDIT_SUMS                                                                      \
        CREDIT_SUM("issued")                                                             \
        ",\n" CREDIT_SUM("reversed") ",\n" CREDIT_SUM("held") ",\n" CREDIT_SUM(          \
            "cancelled") ",\n"                                                           \
                         "min(f.release_at) FILTER (WHERE k.status = 'held') AS "        \
                         "next_due,\n"                                                   \
                         "max(f.release_at) FILTER (WHERE k.status = 'held') AS "        \
                         "last_due"

/* The credits (alias k) with their referral (alias f), for CREDIT_SUMS. */
#define CREDITS_WITH_REFERRAL                                                            \
        "rs_credits k\n"                                                                 \
        "           JOIN rs_referrals f ON f.id = k.referral_id"

/* The CREDIT_SUMS of a grouped row (alias x) as JSON fields. */
#define CREDIT_FIELDS                                                                    \
        "'role', x.role, 'currency', x.currency,\n"                                      \
        "'issued_count', x.issued_count, 'issued_minor', x.issued_minor,\n"              \
        "'reversed_count', x.reversed_count, 'reversed_minor', x.reversed_minor,\n"      \
        "'held_count', x.held_count, 'held_minor', x.held_minor,\n"                      \
        "'held_next_due', to_char(x.next_due " RFC3339_UTC "),\n"                        \
        "'held_last_due', to_char(x.last_due " RFC3339_UTC "),\n"                        \
        "'cancelled_count', x.cancelled_count, 'cancelled_minor', x.cancelled_minor"

/* Goal progress of rewarded count n against program p's goal, as JSON
 * fields. */
#define GOAL_FIELDS(n)                                                                   \
        "'rewarded_count', " n ", 'referral_goal', p.referral_goal,\n"                   \
        "'goal_reached', " n " >= p.referral_goal,\n"                                    \
        "'goal_progress', " n " || ' of ' || p.referral_goal"

/* ---------------------------------------------------------------- programs */

const char SQL_ADMIN_PROGRAM_LOOKUP[] = "SELECT id, status\n"
                                        "  FROM rs_programs\n"
                                        " WHERE key = $1";

const char SQL_ADMIN_PROGRAM_STATUS[] = "SELECT status\n"
                                        "  FROM rs_programs\n"
                                        " WHERE key = $1";

/* The defaults repeat the schema's (docs/rules.md §1): a static statement cannot say
 * "DEFAULT unless given". */
const char SQL_ADMIN_PROGRAM_INSERT[] =
    "INSERT INTO rs_programs (key, name, currency, reward_kind, reward_value,\n"
    "                         reward_cap, referee_reward, min_payment, window_days,\n"
    "                         referral_goal, max_rewarded, starts_at, ends_at,\n"
    "                         hold_days, max_referrals_per_day)\n"
    "VALUES ($1, $2, $3, $4, $5::bigint, $6::bigint, $7::bigint,\n"
    "        coalesce($8::bigint, 0), coalesce($9::int, 30), coalesce($10::int, 10),\n"
    "        $11::int, rs_ms_to_ts($12::bigint), rs_ms_to_ts($13::bigint),\n"
    "        coalesce($14::int, 0), $15::int)\n"
    "    ON CONFLICT (key) DO NOTHING\n"
    "RETURNING id";

/* One static UPDATE: each column keeps its value unless its flag is set, so
 * the statement never depends on which options were given. */
const char SQL_ADMIN_PROGRAM_UPDATE[] =
    "UPDATE rs_programs\n"
    "   SET name = CASE WHEN $2::bool THEN $3 ELSE name END,\n"
    "       currency = CASE WHEN $4::bool THEN $5 ELSE currency END,\n"
    "       reward_kind = CASE WHEN $6::bool THEN $7 ELSE reward_kind END,\n"
    "       reward_value = CASE WHEN $6::bool THEN $8::bigint ELSE reward_value END,\n"
    "       reward_cap = CASE WHEN $9::bool THEN $10::bigint ELSE reward_cap END,\n"
    "       referee_reward = CASE WHEN $11::bool THEN $12::bigint\n"
    "                        ELSE referee_reward END,\n"
    "       min_payment = CASE WHEN $13::bool THEN $14::bigint ELSE min_payment END,\n"
    "       window_days = CASE WHEN $15::bool THEN $16::int ELSE window_days END,\n"
    "       referral_goal = CASE WHEN $17::bool THEN $18::int ELSE referral_goal END,\n"
    "       max_rewarded = CASE WHEN $19::bool THEN $20::int ELSE max_rewarded END,\n"
    "       starts_at = CASE WHEN $21::bool THEN rs_ms_to_ts($22::bigint)\n"
    "                   ELSE starts_at END,\n"
    "       ends_at = CASE WHEN $23::bool THEN rs_ms_to_ts($24::bigint)\n"
    "                 ELSE ends_at END,\n"
    "       hold_days = CASE WHEN $25::bool THEN $26::int ELSE hold_days END,\n"
    "       max_referrals_per_day = CASE WHEN $27::bool THEN $28::int\n"
    "                               ELSE max_referrals_per_day END,\n"
    "       updated_at = now()\n"
    " WHERE key = $1\n"
    "RETURNING id";

const char SQL_ADMIN_PROGRAM_PAUSE[] = "UPDATE rs_programs\n"
                                       "   SET status = 'paused', updated_at = now()\n"
                                       " WHERE key = $1\n"
                                       "   AND status = 'active'\n"
                                       "RETURNING status";

const char SQL_ADMIN_PROGRAM_RESUME[] = "UPDATE rs_programs\n"
                                        "   SET status = 'active', updated_at = now()\n"
                                        " WHERE key = $1\n"
                                        "   AND status = 'paused'\n"
                                        "RETURNING status";

const char SQL_ADMIN_PROGRAM_END[] = "UPDATE rs_programs\n"
                                     "   SET status = 'ended', updated_at = now()\n"
                                     " WHERE key = $1\n"
                                     "   AND status <> 'ended'\n"
                                     "RETURNING status";

const char SQL_ADMIN_PROGRAM_SHOW[] = "SELECT " RS_ADMIN_PROGRAM_JSON "\n"
                                      "  FROM rs_programs p\n"
                                      " WHERE p.key = $1";

const char SQL_ADMIN_PROGRAM_LIST[] =
    "SELECT coalesce(json_agg(" RS_ADMIN_PROGRAM_JSON "\n"
    "                ORDER BY p.key), '[]')\n"
    "  FROM rs_programs p";

/* ---------------------------------------------------------------- codes */

/* The initial status: no use yet, the limits given ($5 max uses, $6 expiry). */
#define NEW_CODE_STATUS RS_ADMIN_LIMIT_STATUS("0", "$5::int", "rs_ms_to_ts($6::bigint)")

const char SQL_ADMIN_CODE_INSERT[] =
    "INSERT INTO rs_codes (code, program_id, owner_user_id, vanity, max_uses,\n"
    "                      expires_at, status)\n"
    "VALUES ($1, $2::bigint, $3, $4::bool, $5::int, rs_ms_to_ts($6::bigint),\n"
    "        " NEW_CODE_STATUS ")\n"
    "    ON CONFLICT (code) DO NOTHING\n"
    "RETURNING status";

const char SQL_ADMIN_CODE_STATUS[] = "SELECT status\n"
                                     "  FROM rs_codes\n"
                                     " WHERE code = $1";

const char SQL_ADMIN_CODE_PAUSE[] = "UPDATE rs_codes\n"
                                    "   SET status = 'paused', updated_at = now()\n"
                                    " WHERE code = $1\n"
                                    "   AND status = 'active'\n"
                                    "RETURNING status";

/* The status under the code's current limits and uses. */
#define CODE_LIMIT_STATUS RS_ADMIN_LIMIT_STATUS("uses_count", "max_uses", "expires_at")

const char SQL_ADMIN_CODE_RESUME[] = "UPDATE rs_codes\n"
                                     "   SET status = " CODE_LIMIT_STATUS ",\n"
                                     "       updated_at = now()\n"
                                     " WHERE code = $1\n"
                                     "   AND status = 'paused'\n"
                                     "RETURNING status";

const char SQL_ADMIN_CODE_REVOKE[] = "UPDATE rs_codes\n"
                                     "   SET status = 'revoked', updated_at = now()\n"
                                     " WHERE code = $1\n"
                                     "   AND status <> 'revoked'\n"
                                     "RETURNING status";

/* New limits ($2/$4 are the "is set" flags). A max below the uses already
 * made is raised to uses_count: the schema keeps uses_count <= max_uses, and
 * "no further use" is what lowering it means. */
#define NEW_MAX                                                                          \
        "CASE WHEN NOT $2::bool THEN c.max_uses\n"                                       \
        "     WHEN $3::int IS NULL THEN NULL\n"                                          \
        "     ELSE GREATEST($3::int, c.uses_count)\n"                                    \
        " END"
#define NEW_EXP                                                                          \
        "CASE WHEN $4::bool THEN rs_ms_to_ts($5::bigint)\n"                              \
        "     ELSE c.expires_at\n"                                                       \
        " END"
/* The status under the new limits. */
#define NEW_LIMIT_STATUS RS_ADMIN_LIMIT_STATUS("c.uses_count", NEW_MAX, NEW_EXP)

/* Paused stays paused (the operator's decision, undone by resume); revoked
 * is final. The subquery locks the row first so old.status is the status
 * this update replaced. */
const char SQL_ADMIN_CODE_UPDATE[] =
    "UPDATE rs_codes c\n"
    "   SET max_uses = " NEW_MAX ",\n"
    "       expires_at = " NEW_EXP ",\n"
    "       status = CASE WHEN c.status = 'paused' THEN 'paused'\n"
    "                ELSE " NEW_LIMIT_STATUS "\n"
    "                 END,\n"
    "       updated_at = now()\n"
    "  FROM (SELECT code, status\n"
    "          FROM rs_codes\n"
    "         WHERE code = $1\n"
    "           FOR UPDATE) old\n"
    " WHERE c.code = old.code\n"
    "   AND c.status <> 'revoked'\n"
    "RETURNING old.status, c.status, c.uses_count, c.max_uses";

const char SQL_ADMIN_CODE_SHOW[] =
    "SELECT json_build_object(\n"
    "           'code', c.code, 'program', p.key, 'program_status', p.status,\n"
    "           'owner_user_id', c.owner_user_id, 'status', c.status,\n"
    "           'vanity', c.vanity, 'uses_count', c.uses_count,\n"
    "           'max_uses', c.max_uses,\n"
    "           'expires_at', to_char(c.expires_at " RFC3339_UTC "),\n"
    "           'created_at', to_char(c.created_at " RFC3339_UTC "),\n"
    "           'updated_at', to_char(c.updated_at " RFC3339_UTC "),\n"
    "           'referrals', (SELECT " RS_ADMIN_REFERRAL_COUNTS "\n"
    "                           FROM rs_referrals r\n"
    "                          WHERE r.code = c.code))\n"
    "  FROM rs_codes c\n"
    "  JOIN rs_programs p ON p.id = c.program_id\n"
    " WHERE c.code = $1";

/* ---------------------------------------------------------------- backfill */

const char SQL_ADMIN_BEGIN[] = "BEGIN";
const char SQL_ADMIN_COMMIT[] = "COMMIT";

const char SQL_ADMIN_BACKFILL_LOCK[] =
    "SELECT pg_advisory_xact_lock(hashtextextended('refstream.backfill.' || $1, 0))";

/* Any code counts (a user whose code was revoked is not silently given a new
 * one), preferring one that is not revoked, then the oldest. */
const char SQL_ADMIN_BACKFILL_EXISTING[] =
    "SELECT DISTINCT ON (owner_user_id) owner_user_id, code, status = 'revoked'\n"
    "  FROM rs_codes\n"
    " WHERE program_id = $1::bigint\n"
    "   AND owner_user_id = ANY($2::text[])\n"
    " ORDER BY owner_user_id, status = 'revoked', created_at, code";

/* DO NOTHING also skips a code drawn twice within this statement. */
const char SQL_ADMIN_BACKFILL_INSERT[] =
    "INSERT INTO rs_codes (code, program_id, owner_user_id)\n"
    "SELECT c, $1::bigint, u\n"
    "  FROM unnest($2::text[], $3::text[]) AS t(u, c)\n"
    "    ON CONFLICT (code) DO NOTHING\n"
    "RETURNING owner_user_id";

/* ---------------------------------------------------------------- stats --program */

#define PROGRAM_CODES                                                                    \
        "(SELECT json_build_object(\n"                                                   \
        "            'total', count(*),\n"                                               \
        "            'active', count(*) FILTER (WHERE c.status = 'active'),\n"           \
        "            'paused', count(*) FILTER (WHERE c.status = 'paused'),\n"           \
        "            'revoked', count(*) FILTER (WHERE c.status = 'revoked'),\n"         \
        "            'expired', count(*) FILTER (WHERE c.status = 'expired'),\n"         \
        "            'exhausted', count(*) FILTER (WHERE c.status = 'exhausted'),\n"     \
        "            'uses', coalesce(sum(c.uses_count), 0))\n"                          \
        "   FROM rs_codes c\n"                                                           \
        "  WHERE c.program_id = p.id)"

#define PROGRAM_CREDITS                                                                  \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            " CREDIT_FIELDS ")\n"                                               \
        "            ORDER BY x.role DESC, x.currency), '[]')\n"                         \
        "   FROM (SELECT k.role, k.currency,\n"                                          \
        "                " CREDIT_SUMS "\n"                                              \
        "           FROM " CREDITS_WITH_REFERRAL "\n"                                    \
        "          WHERE k.program_id = p.id\n"                                          \
        "          GROUP BY k.role, k.currency) x)"

#define PROGRAM_REJECTIONS                                                               \
        "json_build_object(\n"                                                           \
        "    'total', (SELECT count(*)\n"                                                \
        "                FROM rs_rejections j\n"                                         \
        "               WHERE j.program_id = p.id),\n"                                   \
        "    'by_reason', (SELECT coalesce(json_object_agg(x.reason, x.n\n"              \
        "                             ORDER BY x.n DESC, x.reason), '{}')\n"             \
        "                    FROM (SELECT j.reason, count(*) AS n\n"                     \
        "                            FROM rs_rejections j\n"                             \
        "                           WHERE j.program_id = p.id\n"                         \
        "                           GROUP BY j.reason) x),\n"                            \
        "    'recent', (SELECT coalesce(json_agg(json_build_object(\n"                   \
        "                          " REJECTION_FIELDS ")\n"                              \
        "                          ORDER BY j.id DESC), '[]')\n"                         \
        "                 FROM (SELECT *\n"                                              \
        "                         FROM rs_rejections\n"                                  \
        "                        WHERE program_id = p.id\n"                              \
        "                        ORDER BY id DESC\n"                                     \
        "                        LIMIT " RECENT ") j\n"                                  \
        "                 JOIN rs_programs jp ON jp.id = j.program_id))"

/* Goal progress of a top referrer (alias t). */
#define TOP_GOAL_FIELDS GOAL_FIELDS("t.rewarded")

/* Referrers ranked by rewarded referrals (the goal), then by referrals. */
#define PROGRAM_TOP                                                                      \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            'user_id', t.referrer_user_id, 'referrals', t.total,\n"             \
        "            'pending', t.pending, 'credited', t.credited,\n"                    \
        "            'reversed', t.reversed,\n"                                          \
        "            " TOP_GOAL_FIELDS ")\n"                                             \
        "            ORDER BY t.rewarded DESC, t.total DESC, t.referrer_user_id),\n"     \
        "        '[]')\n"                                                                \
        "   FROM (SELECT r.referrer_user_id, count(*) AS total,\n"                       \
        "                count(*) FILTER (WHERE r.status = 'pending') AS pending,\n"     \
        "                count(*) FILTER (WHERE r.status = 'credited') AS credited,\n"   \
        "                count(*) FILTER (WHERE r.status = 'reversed') AS reversed,\n"   \
        "                coalesce(max(s.rewarded_count), 0) AS rewarded\n"               \
        "           FROM rs_referrals r\n"                                               \
        "           LEFT JOIN rs_referrer_stats s\n"                                     \
        "             ON s.program_id = r.program_id\n"                                  \
        "            AND s.referrer_user_id = r.referrer_user_id\n"                      \
        "          WHERE r.program_id = p.id\n"                                          \
        "          GROUP BY r.referrer_user_id\n"                                        \
        "          ORDER BY rewarded DESC, total DESC, r.referrer_user_id\n"             \
        "          LIMIT " RECENT ") t)"

const char SQL_ADMIN_STATS_PROGRAM[] =
    "SELECT json_build_object(\n"
    "           'program', " RS_ADMIN_PROGRAM_JSON ",\n"
    "           'codes', " PROGRAM_CODES ",\n"
    "           'referrals', (SELECT " RS_ADMIN_REFERRAL_COUNTS "\n"
    "                           FROM rs_referrals r\n"
    "                          WHERE r.program_id = p.id),\n"
    "           'credits', " PROGRAM_CREDITS ",\n"
    "           'rejections', " PROGRAM_REJECTIONS ",\n"
    "           'top_referrers', " PROGRAM_TOP ")\n"
    "  FROM rs_programs p\n"
    " WHERE p.key = $1";

/* ---------------------------------------------------------------- stats --user */

#define USER_CODES                                                                       \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            'code', c.code, 'program', p.key, 'status', c.status,\n"            \
        "            'uses_count', c.uses_count, 'max_uses', c.max_uses,\n"              \
        "            'expires_at', to_char(c.expires_at " RFC3339_UTC "),\n"             \
        "            'vanity', c.vanity,\n"                                              \
        "            'created_at', to_char(c.created_at " RFC3339_UTC "))\n"             \
        "            ORDER BY c.created_at, c.code), '[]')\n"                            \
        "   FROM rs_codes c\n"                                                           \
        "   JOIN rs_programs p ON p.id = c.program_id\n"                                 \
        "  WHERE c.owner_user_id = $1)"

/* Goal progress of the user (rewarded count s, may be NULL-extended). */
#define USER_GOAL_FIELDS GOAL_FIELDS("coalesce(s.rewarded_count, 0)")

/* Every program in which the user can refer: has a code, referrals or a
 * rewarded count there. */
#define USER_AS_REFERRER                                                                 \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            'program', p.key, 'program_status', p.status,\n"                    \
        "            'referrals', rc.counts,\n"                                          \
        "            " USER_GOAL_FIELDS ",\n"                                            \
        "            'max_rewarded', p.max_rewarded)\n"                                  \
        "            ORDER BY p.key), '[]')\n"                                           \
        "   FROM (SELECT program_id\n"                                                   \
        "           FROM rs_codes\n"                                                     \
        "          WHERE owner_user_id = $1\n"                                           \
        "          UNION\n"                                                              \
        "         SELECT program_id\n"                                                   \
        "           FROM rs_referrals\n"                                                 \
        "          WHERE referrer_user_id = $1\n"                                        \
        "          UNION\n"                                                              \
        "         SELECT program_id\n"                                                   \
        "           FROM rs_referrer_stats\n"                                            \
        "          WHERE referrer_user_id = $1) ids\n"                                   \
        "   JOIN rs_programs p ON p.id = ids.program_id\n"                               \
        "   LEFT JOIN rs_referrer_stats s\n"                                             \
        "     ON s.program_id = p.id AND s.referrer_user_id = $1\n"                      \
        "  CROSS JOIN LATERAL\n"                                                         \
        "        (SELECT " RS_ADMIN_REFERRAL_COUNTS " AS counts\n"                       \
        "           FROM rs_referrals r\n"                                               \
        "          WHERE r.program_id = p.id\n"                                          \
        "            AND r.referrer_user_id = $1) rc)"

/* A credit's beneficiary is its referral's referrer or referee: the user's
 * referrals, found through their two indexes, lead to the credits
 * (rs_credits has no index on the beneficiary, sql/011_lighter_inserts.sql). */
#define USER_CREDITS                                                                     \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            'program', p.key, " CREDIT_FIELDS ")\n"                             \
        "            ORDER BY p.key, x.role DESC, x.currency), '[]')\n"                  \
        "   FROM (SELECT k.program_id, k.role, k.currency,\n"                            \
        "                " CREDIT_SUMS "\n"                                              \
        "           FROM " CREDITS_WITH_REFERRAL "\n"                                    \
        "          WHERE k.beneficiary_user_id = $1\n"                                   \
        "            AND (f.referee_user_id = $1 OR f.referrer_user_id = $1)\n"          \
        "          GROUP BY k.program_id, k.role, k.currency) x\n"                       \
        "   JOIN rs_programs p ON p.id = x.program_id)"

#define USER_REFERRED_BY                                                                 \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            'program', p.key, 'referrer_user_id', r.referrer_user_id,\n"        \
        "            'code', r.code, 'status', r.status,\n"                              \
        "            'signup_at', to_char(r.signup_at " RFC3339_UTC "),\n"               \
        "            'qualified_at', to_char(r.qualified_at " RFC3339_UTC "))\n"         \
        "            ORDER BY r.signup_at, p.key), '[]')\n"                              \
        "   FROM rs_referrals r\n"                                                       \
        "   JOIN rs_programs p ON p.id = r.program_id\n"                                 \
        "  WHERE r.referee_user_id = $1)"

#define USER_REJECTIONS                                                                  \
        "json_build_object(\n"                                                           \
        "    'total', (SELECT count(*)\n"                                                \
        "                FROM rs_rejections\n"                                           \
        "               WHERE user_id = $1 OR referrer_user_id = $1),\n"                 \
        "    'recent', (SELECT coalesce(json_agg(json_build_object(\n"                   \
        "                          " REJECTION_FIELDS ",\n"                              \
        "                          'as', CASE WHEN j.user_id = $1 THEN 'referee'\n"      \
        "                                     ELSE 'referrer' END)\n"                    \
        "                          ORDER BY j.id DESC), '[]')\n"                         \
        "                 FROM (SELECT *\n"                                              \
        "                         FROM rs_rejections\n"                                  \
        "                        WHERE user_id = $1 OR referrer_user_id = $1\n"          \
        "                        ORDER BY id DESC\n"                                     \
        "                        LIMIT " RECENT ") j\n"                                  \
        "                 LEFT JOIN rs_programs jp ON jp.id = j.program_id))"

const char SQL_ADMIN_STATS_USER[] = "SELECT json_build_object(\n"
                                    "           'user_id', $1::text,\n"
                                    "           'codes', " USER_CODES ",\n"
                                    "           'as_referrer', " USER_AS_REFERRER ",\n"
                                    "           'credits', " USER_CREDITS ",\n"
                                    "           'referred_by', " USER_REFERRED_BY ",\n"
                                    "           'rejections', " USER_REJECTIONS ")";

/* ---------------------------------------------------------------- referrals */

/* The credits of a referral (alias r). */
#define REFERRAL_CREDITS                                                                 \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            'credit_id', k.id, 'role', k.role,\n"                               \
        "            'beneficiary_user_id', k.beneficiary_user_id,\n"                    \
        "            'amount_minor', k.amount_minor, 'currency', k.currency,\n"          \
        "            'status', k.status,\n"                                              \
        "            'created_at', to_char(k.created_at " RFC3339_UTC "),\n"             \
        "            'credited_at', to_char(CASE WHEN k.status = 'held' THEN NULL\n"     \
        "                                        ELSE coalesce(k.released_at,\n"         \
        "                                                      k.created_at)\n"          \
        "                                   END " RFC3339_UTC "),\n"                     \
        "            'reversed_at', to_char(k.reversed_at " RFC3339_UTC "))\n"           \
        "            ORDER BY k.role DESC), '[]')\n"                                     \
        "   FROM rs_credits k\n"                                                         \
        "  WHERE k.referral_id = r.id)"

/* What operators did to a referral (alias r), oldest first. */
#define REFERRAL_AUDIT                                                                   \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            'action', a.action, 'actor', a.actor, 'reason', a.reason,\n"        \
        "            'at', to_char(a.at " RFC3339_UTC "))\n"                             \
        "            ORDER BY a.id), '[]')\n"                                            \
        "   FROM rs_referral_audit a\n"                                                  \
        "  WHERE a.referral_id = r.id)"

/* Referrals where $1 is referrer or referee, newest first, at most $2, with
 * their credits. The code is joined, not required: history outlives revoked
 * (or deleted) codes, and code_status shows what became of it. */
#define REFERRAL_LIST                                                                    \
        "(SELECT coalesce(json_agg(json_build_object(\n"                                 \
        "            'referral_id', r.id, 'program', p.key,\n"                           \
        "            'role', CASE WHEN r.referrer_user_id = $1 THEN 'referrer'\n"        \
        "                         ELSE 'referee' END,\n"                                 \
        "            'code', r.code, 'code_status', c.status,\n"                         \
        "            'referrer_user_id', r.referrer_user_id,\n"                          \
        "            'referee_user_id', r.referee_user_id,\n"                            \
        "            'status', r.status,\n"                                              \
        "            'signup_at', to_char(r.signup_at " RFC3339_UTC "),\n"               \
        "            'qualified_at', to_char(r.qualified_at " RFC3339_UTC "),\n"         \
        "            'reversed_at', to_char(r.reversed_at " RFC3339_UTC "),\n"           \
        "            'release_at', to_char(r.release_at " RFC3339_UTC "),\n"             \
        "            'released_at', to_char(r.released_at " RFC3339_UTC "),\n"           \
        "            'cancelled_at', to_char(r.cancelled_at " RFC3339_UTC "),\n"         \
        "            'payment_id', r.payment_id,\n"                                      \
        "            'credits', " REFERRAL_CREDITS ",\n"                                 \
        "            'audit', " REFERRAL_AUDIT ")\n"                                     \
        "            ORDER BY r.signup_at DESC, r.id), '[]')\n"                          \
        "   FROM (SELECT *\n"                                                            \
        "           FROM rs_referrals\n"                                                 \
        "          WHERE referrer_user_id = $1 OR referee_user_id = $1\n"                \
        "          ORDER BY signup_at DESC, id\n"                                        \
        "          LIMIT $2::bigint) r\n"                                                \
        "   JOIN rs_programs p ON p.id = r.program_id\n"                                 \
        "   LEFT JOIN rs_codes c ON c.code = r.code)"

const char SQL_ADMIN_REFERRALS[] =
    "SELECT json_build_object(\n"
    "           'user_id', $1::text,\n"
    "           'total', (SELECT count(*)\n"
    "                       FROM rs_referrals\n"
    "                      WHERE referrer_user_id = $1 OR referee_user_id = $1),\n"
    "           'limit', $2::bigint,\n"
    "           'referrals', " REFERRAL_LIST ")";

/* ---------------------------------------------------------------- dlq */

const char SQL_ADMIN_DLQ_LOCK[] = "SELECT pg_try_advisory_lock($1::bigint)";
const char SQL_ADMIN_DLQ_UNLOCK[] = "SELECT pg_advisory_unlock($1::bigint)";

const char SQL_ADMIN_DLQ_STATES[] = "SELECT dlq_partition, dlq_offset, state\n"
                                    "  FROM rs_dlq_redrives\n"
                                    " WHERE dlq_topic = $1";

const char SQL_ADMIN_DLQ_CLAIMED[] =
    "SELECT dlq_partition, dlq_offset, target_topic, target_partition, watermark\n"
    "  FROM rs_dlq_redrives\n"
    " WHERE dlq_topic = $1 AND state = 'claimed'\n"
    " ORDER BY target_topic, target_partition, dlq_partition, dlq_offset";

const char SQL_ADMIN_DLQ_CLAIM[] =
    "INSERT INTO rs_dlq_redrives AS r (dlq_topic, dlq_partition, dlq_offset,\n"
    "                                  target_topic, target_partition, watermark,\n"
    "                                  error_class, actor)\n"
    "SELECT $1, u.p, u.o, u.t, u.tp, u.w, u.c, $8\n"
    "  FROM unnest($2::int[], $3::bigint[], $4::text[], $5::int[], $6::bigint[],\n"
    "              $7::text[]) AS u(p, o, t, tp, w, c)\n"
    "    ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO UPDATE\n"
    "   SET target_topic = EXCLUDED.target_topic,\n"
    "       target_partition = EXCLUDED.target_partition,\n"
    "       watermark = EXCLUDED.watermark, actor = EXCLUDED.actor,\n"
    "       attempts = r.attempts + 1, claimed_at = now()\n"
    " WHERE r.state = 'claimed'\n"
    "RETURNING dlq_partition, dlq_offset";

const char SQL_ADMIN_DLQ_MARK_SENT[] =
    "UPDATE rs_dlq_redrives\n"
    "   SET state = 'sent', sent_at = now()\n"
    " WHERE dlq_topic = $1 AND state = 'claimed'\n"
    "   AND (dlq_partition, dlq_offset) IN\n"
    "       (SELECT * FROM unnest($2::int[], $3::bigint[]))";

/* ---------------------------------------------------------------- hold review */

/* The referee of referral $1 (to lock), and its status. */
const char SQL_ADMIN_REFERRAL_FIND[] = "SELECT referee_user_id, status\n"
                                       "  FROM rs_referrals\n"
                                       " WHERE id = $1::uuid";

const char SQL_ADMIN_USER_LOCK[] = "SELECT pg_advisory_xact_lock($1::int, $2::int)";

/* Under the referee's lock: the referral's status now. */
const char SQL_ADMIN_REFERRAL_LOCK[] = "SELECT status\n"
                                       "  FROM rs_referrals\n"
                                       " WHERE id = $1::uuid\n"
                                       "   FOR UPDATE";

/* Release: due now; the housekeeping of a running processor issues it. */
const char SQL_ADMIN_REFERRAL_RELEASE[] =
    "UPDATE rs_referrals\n"
    "   SET release_at = now(), updated_at = now()\n"
    " WHERE id = $1::uuid AND status = 'held'";

const char SQL_ADMIN_REFERRAL_CANCEL[] =
    "WITH f AS (UPDATE rs_referrals\n"
    "              SET status = 'cancelled', cancelled_at = now(), updated_at = now()\n"
    "            WHERE id = $1::uuid AND status = 'held'\n"
    "        RETURNING id)\n"
    "UPDATE rs_credits\n"
    "   SET status = 'cancelled', reversed_at = now()\n"
    " WHERE referral_id IN (SELECT id FROM f) AND status = 'held'";

const char SQL_ADMIN_REFERRAL_AUDIT[] =
    "INSERT INTO rs_referral_audit (referral_id, action, actor, reason)\n"
    "VALUES ($1::uuid, $2, $3, $4)";
