/* Reports: program stats, user stats, referral history. Each is one
 * statement whose result is a JSON document built by Postgres
 * (json_build_object/json_agg), so the shape is defined in one place: the
 * statements SQL_ADMIN_STATS_PROGRAM, SQL_ADMIN_STATS_USER and
 * SQL_ADMIN_REFERRALS in rs_admin_sql.c, whose shapes are documented here.
 * Times are RFC 3339 UTC strings, money is integer minor units, absent values
 * are null, lists are [] when empty.
 *
 * stats --program K:
 *   {"program": PROGRAM,
 *    "codes": {"total","active","paused","revoked","expired","exhausted","uses"},
 *    "referrals": COUNTS,
 *    "credits": [{"role","currency", CREDIT_SUMS}],
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
 *    "credits": [{"program","role","currency", CREDIT_SUMS}],
 *    "referred_by": [{"program","referrer_user_id","code","status",
 *                     "signup_at","qualified_at"}],
 *    "rejections": {"total", "recent": [REJECTION + "as"]}}
 * referrals --user U:
 *   {"user_id","total","limit",
 *    "referrals": [{"referral_id","program","role","code","code_status",
 *                   "referrer_user_id","referee_user_id","status","signup_at",
 *                   "qualified_at","reversed_at","release_at","released_at",
 *                   "cancelled_at","payment_id",
 *                   "credits": [{"credit_id","role","beneficiary_user_id",
 *                                "amount_minor","currency","status",
 *                                "created_at","credited_at","reversed_at"}],
 *                   "audit": [{"action","actor","reason","at"}]}]}
 * COUNTS is {"total","pending","held","credited","reversed","cancelled"};
 * CREDIT_SUMS is "issued_count","issued_minor","reversed_count",
 * "reversed_minor","held_count","held_minor","held_next_due","held_last_due",
 * "cancelled_count","cancelled_minor" (the due times of held credits; a
 * cancelled credit's reversed_at is when it was cancelled, credited_at of a
 * released one the release time, null while held).
 * PROGRAM is RS_ADMIN_PROGRAM_JSON; REJECTION is {"at","recorded_at","reason",
 * "event_type","event_id","user_id","referrer_user_id","code","program",
 * "detail"}; "as" is "referee" (the user signed up or paid) or "referrer".
 * goal_progress is "7 of 10" (rs_referrer_stats.rewarded_count of the
 * program's referral_goal). */
#include "rs_admin.h"
#include "rs_admin_int.h"
#include "rs_admin_sql.h"

#include <stdio.h>

json_t *rs_admin_stats_program(rs_admin_t *a, const char *key, char *errstr,
                               size_t errstr_size)
{
        char not_found[128];
        snprintf(not_found, sizeof(not_found), "program %s not found", key);
        const char *params[] = {key};
        return rs_admin_query_json(a, SQL_ADMIN_STATS_PROGRAM, 1, params, not_found,
                                   errstr, errstr_size);
}

/* ---------------------------------------------------------------- user */

json_t *rs_admin_stats_user(rs_admin_t *a, const char *user, char *errstr,
                            size_t errstr_size)
{
        const char *params[] = {user};
        if (!rs_admin_user_valid(user, errstr, errstr_size))
                return NULL;
        return rs_admin_query_json(a, SQL_ADMIN_STATS_USER, 1, params, "no result",
                                   errstr, errstr_size);
}

/* ---------------------------------------------------------------- history */

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
        return rs_admin_query_json(a, SQL_ADMIN_REFERRALS, 2, params, "no result", errstr,
                                   errstr_size);
}
