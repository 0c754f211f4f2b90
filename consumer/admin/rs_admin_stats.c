/* Reports: program stats, user stats, referral history. Each is one
 * statement whose result is a JSON document built by Postgres
 * (json_build_object/json_agg), so the shape is defined in one place, here.
 * Times are RFC 3339 UTC strings, money is integer minor units, absent values
 * are null, lists are [] when empty.
 *
 * stats --program K:
 *   {"program": PROGRAM,
 *    "codes": {"total","active","paused","revoked","expired","exhausted","uses"},
 *    "referrals": {"total","pending","credited","reversed"},
 *    "credits": [{"role","currency","issued_count","issued_minor",
 *                 "reversed_count","reversed_minor"}],
 *    "rejections": {"total", "by_reason": {"REASON": n, ...},
 *                   "recent": [REJECTION]},
 *    "top_referrers": [{"user_id","referrals","pending","credited","reversed",
 *                       "rewarded_count","referral_goal","goal_reached",
 *                       "goal_progress"}]}
 * stats --user U:
 *   {"user_id",
 *    "codes": [{"code","program","status","uses_count","max_uses","expires_at",
 *               "vanity","created_at"}],
 *    "as_referrer": [{"program","program_status","referrals": {COUNTS},
 *                     "rewarded_count","referral_goal","goal_reached",
 *                     "goal_progress","max_rewarded"}],
 *    "credits": [{"program","role","currency","issued_count","issued_minor",
 *                 "reversed_count","reversed_minor"}],
 *    "referred_by": [{"program","referrer_user_id","code","status",
 *                     "signup_at","qualified_at"}],
 *    "rejections": {"total", "recent": [REJECTION + "as"]}}
 * referrals --user U:
 *   {"user_id","total","limit",
 *    "referrals": [{"referral_id","program","role","code","code_status",
 *                   "referrer_user_id","referee_user_id","status","signup_at",
 *                   "qualified_at","reversed_at","payment_id",
 *                   "credits": [{"credit_id","role","beneficiary_user_id",
 *                                "amount_minor","currency","status",
 *                                "credited_at","reversed_at"}]}]}
 * PROGRAM is RS_ADMIN_PROGRAM_JSON; REJECTION is {"at","recorded_at","reason",
 * "event_type","event_id","user_id","referrer_user_id","code","program",
 * "detail"}; "as" is "referee" (the user signed up or paid) or "referrer".
 * goal_progress is "7 of 10" (rs_referrer_stats.rewarded_count of the
 * program's referral_goal). */
#include "rs_admin.h"
#include "rs_admin_int.h"

#include <stdio.h>

/* RS_ADMIN_RECENT as SQL text. */
#define STR2(x) #x
#define STR(x)  STR2(x)
#define RECENT  STR(RS_ADMIN_RECENT)

/* clang-format off */

/* A rejection row (alias j; its program alias jp, may be NULL-extended). */
#define REJECTION_FIELDS \
        "'at', " RS_ADMIN_TS("j.occurred_at") "," \
        " 'recorded_at', " RS_ADMIN_TS("j.created_at") "," \
        " 'reason', j.reason, 'event_type', j.event_type, 'event_id', j.event_id," \
        " 'user_id', j.user_id, 'referrer_user_id', j.referrer_user_id," \
        " 'code', j.code, 'program', jp.key, 'detail', j.detail"

/* Credit sums of rows (alias k) grouped by the caller. */
#define CREDIT_SUMS \
        "count(*) FILTER (WHERE k.status = 'issued') AS issued_count," \
        " coalesce(sum(k.amount_minor) FILTER (WHERE k.status = 'issued'), 0)" \
        " AS issued_minor," \
        " count(*) FILTER (WHERE k.status = 'reversed') AS reversed_count," \
        " coalesce(sum(k.amount_minor) FILTER (WHERE k.status = 'reversed'), 0)" \
        " AS reversed_minor"
#define CREDIT_FIELDS \
        "'role', x.role, 'currency', x.currency, 'issued_count', x.issued_count," \
        " 'issued_minor', x.issued_minor, 'reversed_count', x.reversed_count," \
        " 'reversed_minor', x.reversed_minor"

/* Goal progress of rewarded count n against program p's goal. */
#define GOAL_FIELDS(n) \
        "'rewarded_count', " n ", 'referral_goal', p.referral_goal," \
        " 'goal_reached', " n " >= p.referral_goal," \
        " 'goal_progress', " n " || ' of ' || p.referral_goal"

/* ---------------------------------------------------------------- program */

#define PROGRAM_CODES \
        "(SELECT json_build_object('total', count(*)," \
        " 'active', count(*) FILTER (WHERE c.status = 'active')," \
        " 'paused', count(*) FILTER (WHERE c.status = 'paused')," \
        " 'revoked', count(*) FILTER (WHERE c.status = 'revoked')," \
        " 'expired', count(*) FILTER (WHERE c.status = 'expired')," \
        " 'exhausted', count(*) FILTER (WHERE c.status = 'exhausted')," \
        " 'uses', coalesce(sum(c.uses_count), 0))" \
        " FROM rs_codes c WHERE c.program_id = p.id)"

#define PROGRAM_CREDITS \
        "(SELECT coalesce(json_agg(json_build_object(" CREDIT_FIELDS ")" \
        " ORDER BY x.role DESC, x.currency), '[]')" \
        " FROM (SELECT k.role, k.currency, " CREDIT_SUMS " FROM rs_credits k" \
        " WHERE k.program_id = p.id GROUP BY k.role, k.currency) x)"

#define PROGRAM_REJECTIONS \
        "json_build_object('total', (SELECT count(*) FROM rs_rejections j" \
        " WHERE j.program_id = p.id)," \
        " 'by_reason', (SELECT coalesce(json_object_agg(x.reason, x.n" \
        " ORDER BY x.n DESC, x.reason), '{}') FROM (SELECT j.reason, count(*) AS n" \
        " FROM rs_rejections j WHERE j.program_id = p.id GROUP BY j.reason) x)," \
        " 'recent', (SELECT coalesce(json_agg(json_build_object(" REJECTION_FIELDS ")" \
        " ORDER BY j.id DESC), '[]') FROM (SELECT * FROM rs_rejections" \
        " WHERE program_id = p.id ORDER BY id DESC LIMIT " RECENT ") j" \
        " JOIN rs_programs jp ON jp.id = j.program_id))"

/* Referrers ranked by rewarded referrals (the goal), then by referrals. */
#define PROGRAM_TOP \
        "(SELECT coalesce(json_agg(json_build_object('user_id', t.referrer_user_id," \
        " 'referrals', t.total, 'pending', t.pending, 'credited', t.credited," \
        " 'reversed', t.reversed, " GOAL_FIELDS("t.rewarded") ")" \
        " ORDER BY t.rewarded DESC, t.total DESC, t.referrer_user_id), '[]')" \
        " FROM (SELECT r.referrer_user_id, count(*) AS total," \
        " count(*) FILTER (WHERE r.status = 'pending') AS pending," \
        " count(*) FILTER (WHERE r.status = 'credited') AS credited," \
        " count(*) FILTER (WHERE r.status = 'reversed') AS reversed," \
        " coalesce(max(s.rewarded_count), 0) AS rewarded" \
        " FROM rs_referrals r LEFT JOIN rs_referrer_stats s" \
        " ON s.program_id = r.program_id AND s.referrer_user_id = r.referrer_user_id" \
        " WHERE r.program_id = p.id GROUP BY r.referrer_user_id" \
        " ORDER BY rewarded DESC, total DESC, r.referrer_user_id LIMIT " RECENT ") t)"

static const char program_stats_sql[] =
        "SELECT json_build_object('program', " RS_ADMIN_PROGRAM_JSON("p") ","
        " 'codes', " PROGRAM_CODES ","
        " 'referrals', (SELECT " RS_ADMIN_REFERRAL_COUNTS("r")
        " FROM rs_referrals r WHERE r.program_id = p.id),"
        " 'credits', " PROGRAM_CREDITS ","
        " 'rejections', " PROGRAM_REJECTIONS ","
        " 'top_referrers', " PROGRAM_TOP ")"
        " FROM rs_programs p WHERE p.key = $1";

/* clang-format on */

json_t *rs_admin_stats_program(rs_admin_t *a, const char *key, char *errstr,
                               size_t errstr_size)
{
        char not_found[128];
        snprintf(not_found, sizeof(not_found), "program %s not found", key);
        const char *params[] = {key};
        return rs_admin_query_json(a, program_stats_sql, 1, params, not_found, errstr,
                                   errstr_size);
}

/* ---------------------------------------------------------------- user */

/* clang-format off */

#define USER_CODES \
        "(SELECT coalesce(json_agg(json_build_object('code', c.code, 'program', p.key," \
        " 'status', c.status, 'uses_count', c.uses_count, 'max_uses', c.max_uses," \
        " 'expires_at', " RS_ADMIN_TS("c.expires_at") ", 'vanity', c.vanity," \
        " 'created_at', " RS_ADMIN_TS("c.created_at") ")" \
        " ORDER BY c.created_at, c.code), '[]')" \
        " FROM rs_codes c JOIN rs_programs p ON p.id = c.program_id" \
        " WHERE c.owner_user_id = $1)"

/* Every program in which the user can refer: has a code, referrals or a
 * rewarded count there. */
#define USER_AS_REFERRER \
        "(SELECT coalesce(json_agg(json_build_object('program', p.key," \
        " 'program_status', p.status, 'referrals', rc.counts," \
        " " GOAL_FIELDS("coalesce(s.rewarded_count, 0)") "," \
        " 'max_rewarded', p.max_rewarded) ORDER BY p.key), '[]')" \
        " FROM (SELECT program_id FROM rs_codes WHERE owner_user_id = $1" \
        " UNION SELECT program_id FROM rs_referrals WHERE referrer_user_id = $1" \
        " UNION SELECT program_id FROM rs_referrer_stats WHERE referrer_user_id = $1) ids" \
        " JOIN rs_programs p ON p.id = ids.program_id" \
        " LEFT JOIN rs_referrer_stats s ON s.program_id = p.id AND s.referrer_user_id = $1" \
        " CROSS JOIN LATERAL (SELECT " RS_ADMIN_REFERRAL_COUNTS("r") " AS counts" \
        " FROM rs_referrals r WHERE r.program_id = p.id AND r.referrer_user_id = $1) rc)"

#define USER_CREDITS \
        "(SELECT coalesce(json_agg(json_build_object('program', p.key, " CREDIT_FIELDS ")" \
        " ORDER BY p.key, x.role DESC, x.currency), '[]')" \
        " FROM (SELECT k.program_id, k.role, k.currency, " CREDIT_SUMS " FROM rs_credits k" \
        " WHERE k.beneficiary_user_id = $1 GROUP BY k.program_id, k.role, k.currency) x" \
        " JOIN rs_programs p ON p.id = x.program_id)"

#define USER_REFERRED_BY \
        "(SELECT coalesce(json_agg(json_build_object('program', p.key," \
        " 'referrer_user_id', r.referrer_user_id, 'code', r.code, 'status', r.status," \
        " 'signup_at', " RS_ADMIN_TS("r.signup_at") "," \
        " 'qualified_at', " RS_ADMIN_TS("r.qualified_at") ")" \
        " ORDER BY r.signup_at, p.key), '[]')" \
        " FROM rs_referrals r JOIN rs_programs p ON p.id = r.program_id" \
        " WHERE r.referee_user_id = $1)"

#define USER_REJECTIONS \
        "json_build_object('total', (SELECT count(*) FROM rs_rejections" \
        " WHERE user_id = $1 OR referrer_user_id = $1)," \
        " 'recent', (SELECT coalesce(json_agg(json_build_object(" REJECTION_FIELDS "," \
        " 'as', CASE WHEN j.user_id = $1 THEN 'referee' ELSE 'referrer' END)" \
        " ORDER BY j.id DESC), '[]') FROM (SELECT * FROM rs_rejections" \
        " WHERE user_id = $1 OR referrer_user_id = $1 ORDER BY id DESC LIMIT " RECENT ") j" \
        " LEFT JOIN rs_programs jp ON jp.id = j.program_id))"

static const char user_stats_sql[] =
        "SELECT json_build_object('user_id', $1::text,"
        " 'codes', " USER_CODES ","
        " 'as_referrer', " USER_AS_REFERRER ","
        " 'credits', " USER_CREDITS ","
        " 'referred_by', " USER_REFERRED_BY ","
        " 'rejections', " USER_REJECTIONS ")";

/* clang-format on */

json_t *rs_admin_stats_user(rs_admin_t *a, const char *user, char *errstr,
                            size_t errstr_size)
{
        const char *params[] = {user};
        if (!rs_admin_user_valid(user, errstr, errstr_size))
                return NULL;
        return rs_admin_query_json(a, user_stats_sql, 1, params, "no result", errstr,
                                   errstr_size);
}

/* ---------------------------------------------------------------- history */

/* clang-format off */

#define REFERRAL_CREDITS \
        "(SELECT coalesce(json_agg(json_build_object('credit_id', k.id, 'role', k.role," \
        " 'beneficiary_user_id', k.beneficiary_user_id, 'amount_minor', k.amount_minor," \
        " 'currency', k.currency, 'status', k.status," \
        " 'credited_at', " RS_ADMIN_TS("k.created_at") "," \
        " 'reversed_at', " RS_ADMIN_TS("k.reversed_at") ") ORDER BY k.role DESC), '[]')" \
        " FROM rs_credits k WHERE k.referral_id = r.id)"

/* The code is joined, not required: history outlives revoked (or deleted)
 * codes, and code_status shows what became of it. */
static const char referrals_sql[] =
        "SELECT json_build_object('user_id', $1::text,"
        " 'total', (SELECT count(*) FROM rs_referrals"
        " WHERE referrer_user_id = $1 OR referee_user_id = $1),"
        " 'limit', $2::bigint,"
        " 'referrals', (SELECT coalesce(json_agg(json_build_object("
        " 'referral_id', r.id, 'program', p.key,"
        " 'role', CASE WHEN r.referrer_user_id = $1 THEN 'referrer' ELSE 'referee' END,"
        " 'code', r.code, 'code_status', c.status,"
        " 'referrer_user_id', r.referrer_user_id, 'referee_user_id', r.referee_user_id,"
        " 'status', r.status, 'signup_at', " RS_ADMIN_TS("r.signup_at") ","
        " 'qualified_at', " RS_ADMIN_TS("r.qualified_at") ","
        " 'reversed_at', " RS_ADMIN_TS("r.reversed_at") ","
        " 'payment_id', r.payment_id, 'credits', " REFERRAL_CREDITS ")"
        " ORDER BY r.signup_at DESC, r.id), '[]')"
        " FROM (SELECT * FROM rs_referrals WHERE referrer_user_id = $1 OR referee_user_id = $1"
        " ORDER BY signup_at DESC, id LIMIT $2::bigint) r"
        " JOIN rs_programs p ON p.id = r.program_id"
        " LEFT JOIN rs_codes c ON c.code = r.code))";

/* clang-format on */

json_t *rs_admin_referrals(rs_admin_t *a, const char *user, int64_t limit, char *errstr,
                           size_t errstr_size)
{
        char lim[24];
        if (!rs_admin_user_valid(user, errstr, errstr_size))
                return NULL;
        if (limit < 1) {
                snprintf(errstr, errstr_size, "--limit must be >= 1");
                return NULL;
        }
        snprintf(lim, sizeof(lim), "%lld", (long long)limit);
        const char *params[] = {user, lim};
        return rs_admin_query_json(a, referrals_sql, 2, params, "no result", errstr,
                                   errstr_size);
}
