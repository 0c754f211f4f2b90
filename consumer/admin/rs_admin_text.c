/* Text rendering of the admin JSON documents (shapes in rs_admin_stats.c and
 * rs_admin_sql.c). Rendering reads the same JSON that --json prints, so the
 * two outputs cannot disagree. Missing or null values print as "-". */
#include "rs_admin.h"

#include <string.h>

static const char *str(const json_t *o, const char *k)
{
        const json_t *v = json_object_get(o, k);
        return json_is_string(v) ? json_string_value(v) : "-";
}

static long long num(const json_t *o, const char *k)
{
        return (long long)json_integer_value(json_object_get(o, k));
}

static bool has(const json_t *o, const char *k)
{
        const json_t *v = json_object_get(o, k);
        return v && !json_is_null(v);
}

static const char *yes_no(const json_t *o, const char *k)
{
        return json_is_true(json_object_get(o, k)) ? "yes" : "no";
}

/* "1000 fixed" or "500 bps, cap 2000" */
static void reward_text(const json_t *p, char *buf, size_t size)
{
        if (strcmp(str(p, "reward_kind"), "percent") == 0) {
                int n = snprintf(buf, size, "%lld bps of the payment",
                                 num(p, "reward_value"));
                if (has(p, "reward_cap") && n > 0 && (size_t)n < size)
                        snprintf(buf + n, size - (size_t)n, ", cap %lld",
                                 num(p, "reward_cap"));
        } else {
                snprintf(buf, size, "%lld fixed", num(p, "reward_value"));
        }
}

/* Money is shown as stored: integer minor units of the program currency. */
static void reward_long(const json_t *p, char *buf, size_t size)
{
        reward_text(p, buf, size);
        if (strcmp(str(p, "reward_kind"), "percent") != 0) {
                size_t n = strlen(buf);
                snprintf(buf + n, size - n, " (minor units)");
        }
}

static void opt_num(FILE *out, const char *label, const json_t *o, const char *k,
                    const char *if_null)
{
        if (has(o, k))
                fprintf(out, "  %-16s %lld\n", label, num(o, k));
        else
                fprintf(out, "  %-16s %s\n", label, if_null);
}

void rs_admin_print_program(FILE *out, const json_t *p)
{
        char reward[96];
        reward_long(p, reward, sizeof(reward));
        fprintf(out, "program %s: %s\n", str(p, "key"), str(p, "name"));
        fprintf(out, "  %-16s %s\n", "status", str(p, "status"));
        fprintf(out, "  %-16s %s\n", "currency", str(p, "currency"));
        fprintf(out, "  %-16s %s\n", "referrer reward", reward);
        opt_num(out, "referee reward", p, "referee_reward", "none (single-sided)");
        fprintf(out, "  %-16s %lld\n", "min payment", num(p, "min_payment"));
        fprintf(out, "  %-16s %lld days\n", "window", num(p, "window_days"));
        fprintf(out, "  %-16s %lld rewarded referrals\n", "goal",
                num(p, "referral_goal"));
        opt_num(out, "max rewarded", p, "max_rewarded", "none (no cap)");
        fprintf(out, "  %-16s %lld days\n", "reward hold", num(p, "hold_days"));
        opt_num(out, "max per day", p, "max_referrals_per_day", "none (no limit)");
        fprintf(out, "  %-16s %s\n", "starts at", str(p, "starts_at"));
        fprintf(out, "  %-16s %s\n", "ends at", str(p, "ends_at"));
        fprintf(out, "  %-16s %s\n", "created at", str(p, "created_at"));
        fprintf(out, "  %-16s %s\n", "updated at", str(p, "updated_at"));
}

void rs_admin_print_program_list(FILE *out, const json_t *programs)
{
        size_t i;
        const json_t *p;
        char reward[96];
        fprintf(out, "%-24s %-7s %-4s %-28s %s\n", "KEY", "STATUS", "CUR", "REWARD",
                "NAME");
        json_array_foreach (programs, i, p) {
                reward_text(p, reward, sizeof(reward));
                fprintf(out, "%-24s %-7s %-4s %-28s %s\n", str(p, "key"),
                        str(p, "status"), str(p, "currency"), reward, str(p, "name"));
        }
}

static void uses_text(const json_t *c, char *buf, size_t size)
{
        if (has(c, "max_uses"))
                snprintf(buf, size, "%lld of %lld", num(c, "uses_count"),
                         num(c, "max_uses"));
        else
                snprintf(buf, size, "%lld (unlimited)", num(c, "uses_count"));
}

static void counts_text(const json_t *r, char *buf, size_t size)
{
        /* held and cancelled only where a program has them (a hold). */
        int n = snprintf(buf, size, "%lld (pending %lld, ", num(r, "total"),
                         num(r, "pending"));
        if (num(r, "held") > 0 && n >= 0 && (size_t)n < size)
                n += snprintf(buf + n, size - (size_t)n, "held %lld, ", num(r, "held"));
        if (n >= 0 && (size_t)n < size)
                n += snprintf(buf + n, size - (size_t)n, "credited %lld, reversed %lld",
                              num(r, "credited"), num(r, "reversed"));
        if (num(r, "cancelled") > 0 && n >= 0 && (size_t)n < size)
                n += snprintf(buf + n, size - (size_t)n, ", cancelled %lld",
                              num(r, "cancelled"));
        if (n >= 0 && (size_t)n < size)
                snprintf(buf + n, size - (size_t)n, ")");
}

void rs_admin_print_code(FILE *out, const json_t *c)
{
        char uses[64], refs[128];
        uses_text(c, uses, sizeof(uses));
        counts_text(json_object_get(c, "referrals"), refs, sizeof(refs));
        fprintf(out, "code %s\n", str(c, "code"));
        fprintf(out, "  %-12s %s (%s)\n", "program", str(c, "program"),
                str(c, "program_status"));
        fprintf(out, "  %-12s %s\n", "owner", str(c, "owner_user_id"));
        fprintf(out, "  %-12s %s\n", "status", str(c, "status"));
        fprintf(out, "  %-12s %s\n", "vanity", yes_no(c, "vanity"));
        fprintf(out, "  %-12s %s\n", "uses", uses);
        fprintf(out, "  %-12s %s\n", "expires at",
                has(c, "expires_at") ? str(c, "expires_at") : "never");
        fprintf(out, "  %-12s %s\n", "referrals", refs);
        fprintf(out, "  %-12s %s\n", "created at", str(c, "created_at"));
        fprintf(out, "  %-12s %s\n", "updated at", str(c, "updated_at"));
}

/* ---------------------------------------------------------------- stats */

static void print_credits(FILE *out, const json_t *credits, bool with_program)
{
        size_t i;
        const json_t *k;
        if (json_array_size(credits) == 0)
                fprintf(out, "  none\n");
        json_array_foreach (credits, i, k) {
                if (with_program)
                        fprintf(out, "  %-16s ", str(k, "program"));
                else
                        fprintf(out, "  ");
                fprintf(out, "%-9s %-3s  issued %lld (%lld)  reversed %lld (%lld)",
                        str(k, "role"), str(k, "currency"), num(k, "issued_count"),
                        num(k, "issued_minor"), num(k, "reversed_count"),
                        num(k, "reversed_minor"));
                if (num(k, "held_count") > 0)
                        fprintf(out, "  held %lld (%lld) due %s to %s",
                                num(k, "held_count"), num(k, "held_minor"),
                                str(k, "held_next_due"), str(k, "held_last_due"));
                if (num(k, "cancelled_count") > 0)
                        fprintf(out, "  cancelled %lld (%lld)", num(k, "cancelled_count"),
                                num(k, "cancelled_minor"));
                fputc('\n', out);
        }
}

static void print_rejection_list(FILE *out, const json_t *recent, bool with_as)
{
        size_t i;
        const json_t *j;
        json_array_foreach (recent, i, j) {
                fprintf(out, "    %s  %-20s ", str(j, "at"), str(j, "reason"));
                if (with_as)
                        fprintf(out, "as %-8s program %s  ", str(j, "as"),
                                str(j, "program"));
                fprintf(out, "user %s  code %s  referrer %s  %s\n", str(j, "user_id"),
                        str(j, "code"), str(j, "referrer_user_id"), str(j, "detail"));
        }
}

static void print_top(FILE *out, const json_t *top)
{
        size_t i;
        const json_t *t;
        fprintf(out, "top referrers (by rewarded referrals):\n");
        if (json_array_size(top) == 0) {
                fprintf(out, "  none\n");
                return;
        }
        fprintf(out, "  %-24s %9s %8s %8s  %s\n", "USER", "REFERRALS", "CREDITED",
                "REVERSED", "GOAL");
        json_array_foreach (top, i, t) {
                fprintf(out, "  %-24s %9lld %8lld %8lld  %s%s\n", str(t, "user_id"),
                        num(t, "referrals"), num(t, "credited"), num(t, "reversed"),
                        str(t, "goal_progress"),
                        json_is_true(json_object_get(t, "goal_reached")) ? " (reached)"
                                                                         : "");
        }
}

void rs_admin_print_stats_program(FILE *out, const json_t *s)
{
        const json_t *p = json_object_get(s, "program"), *c = json_object_get(s, "codes");
        const json_t *rej = json_object_get(s, "rejections");
        char reward[96], refs[128];
        reward_text(p, reward, sizeof(reward));
        counts_text(json_object_get(s, "referrals"), refs, sizeof(refs));
        fprintf(out, "program %s: %s [%s], %s, reward %s, goal %lld\n", str(p, "key"),
                str(p, "name"), str(p, "status"), str(p, "currency"), reward,
                num(p, "referral_goal"));
        fprintf(out,
                "codes: %lld (active %lld, paused %lld, revoked %lld, expired %lld, "
                "exhausted "
                "%lld), %lld uses\n",
                num(c, "total"), num(c, "active"), num(c, "paused"), num(c, "revoked"),
                num(c, "expired"), num(c, "exhausted"), num(c, "uses"));
        fprintf(out, "referrals: %s\n", refs);
        fprintf(out, "credits (count and minor units):\n");
        print_credits(out, json_object_get(s, "credits"), false);
        fprintf(out, "rejections: %lld\n", num(rej, "total"));
        const char *reason;
        const json_t *n;
        json_object_foreach ((json_t *)json_object_get(rej, "by_reason"), reason, n)
                fprintf(out, "  %-22s %lld\n", reason, (long long)json_integer_value(n));
        if (json_array_size(json_object_get(rej, "recent")) > 0) {
                fprintf(out, "  most recent:\n");
                print_rejection_list(out, json_object_get(rej, "recent"), false);
        }
        print_top(out, json_object_get(s, "top_referrers"));
}

static void print_user_codes(FILE *out, const json_t *codes)
{
        size_t i;
        const json_t *c;
        char uses[64];
        fprintf(out, "codes:\n");
        if (json_array_size(codes) == 0)
                fprintf(out, "  none\n");
        json_array_foreach (codes, i, c) {
                uses_text(c, uses, sizeof(uses));
                fprintf(out, "  %-14s program %-16s %-9s uses %s%s%s\n", str(c, "code"),
                        str(c, "program"), str(c, "status"), uses,
                        has(c, "expires_at") ? ", expires " : "",
                        has(c, "expires_at") ? str(c, "expires_at") : "");
        }
}

static void print_as_referrer(FILE *out, const json_t *rows)
{
        size_t i;
        const json_t *r;
        char refs[128];
        fprintf(out, "as referrer:\n");
        if (json_array_size(rows) == 0)
                fprintf(out, "  none\n");
        json_array_foreach (rows, i, r) {
                counts_text(json_object_get(r, "referrals"), refs, sizeof(refs));
                fprintf(out, "  program %s: referrals %s; goal %s%s\n", str(r, "program"),
                        refs, str(r, "goal_progress"),
                        json_is_true(json_object_get(r, "goal_reached")) ? " (reached)"
                                                                         : "");
        }
}

static void print_referred_by(FILE *out, const json_t *rows)
{
        size_t i;
        const json_t *r;
        fprintf(out, "referred by:\n");
        if (json_array_size(rows) == 0)
                fprintf(out, "  nobody\n");
        json_array_foreach (rows, i, r) {
                fprintf(out, "  program %s: %s with code %s, %s, signed up %s\n",
                        str(r, "program"), str(r, "referrer_user_id"), str(r, "code"),
                        str(r, "status"), str(r, "signup_at"));
        }
}

void rs_admin_print_stats_user(FILE *out, const json_t *s)
{
        const json_t *rej = json_object_get(s, "rejections");
        fprintf(out, "user %s\n", str(s, "user_id"));
        print_user_codes(out, json_object_get(s, "codes"));
        print_as_referrer(out, json_object_get(s, "as_referrer"));
        fprintf(out, "credits received (count and minor units):\n");
        print_credits(out, json_object_get(s, "credits"), true);
        print_referred_by(out, json_object_get(s, "referred_by"));
        fprintf(out, "rejections (as referee or referrer): %lld\n", num(rej, "total"));
        print_rejection_list(out, json_object_get(rej, "recent"), true);
}

void rs_admin_print_referrals(FILE *out, const json_t *h)
{
        size_t i, k;
        const json_t *r, *c;
        const json_t *list = json_object_get(h, "referrals");
        fprintf(out, "referrals of %s: %lld (showing %zu, newest first)\n",
                str(h, "user_id"), num(h, "total"), json_array_size(list));
        json_array_foreach (list, i, r) {
                fprintf(out, "%s  %-8s program %s  code %s (%s)  %s -> %s  %s\n",
                        str(r, "signup_at"), str(r, "role"), str(r, "program"),
                        str(r, "code"),
                        has(r, "code_status") ? str(r, "code_status") : "gone",
                        str(r, "referrer_user_id"), str(r, "referee_user_id"),
                        str(r, "status"));
                if (has(r, "qualified_at"))
                        fprintf(out, "    qualified %s by payment %s\n",
                                str(r, "qualified_at"), str(r, "payment_id"));
                if (has(r, "reversed_at"))
                        fprintf(out, "    reversed %s\n", str(r, "reversed_at"));
                if (strcmp(str(r, "status"), "held") == 0)
                        fprintf(out, "    held until %s (referral %s)\n",
                                str(r, "release_at"), str(r, "referral_id"));
                if (has(r, "released_at"))
                        fprintf(out, "    released %s\n", str(r, "released_at"));
                if (has(r, "cancelled_at"))
                        fprintf(out, "    cancelled %s\n", str(r, "cancelled_at"));
                json_array_foreach (json_object_get(r, "audit"), k, c) {
                        fprintf(out, "    %s %s by %s%s%s\n", str(c, "at"),
                                str(c, "action"), str(c, "actor"),
                                has(c, "reason") ? ": " : "",
                                has(c, "reason") ? str(c, "reason") : "");
                }
                json_array_foreach (json_object_get(r, "credits"), k, c) {
                        fprintf(out, "    credit %-8s to %s: %lld %s, %s\n",
                                str(c, "role"), str(c, "beneficiary_user_id"),
                                num(c, "amount_minor"), str(c, "currency"),
                                str(c, "status"));
                }
        }
}
