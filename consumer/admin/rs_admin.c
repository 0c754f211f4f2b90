/* Programs (create, update, pause/resume/end, show, list), input validation
 * and the helpers the other rs_admin*.c files share. */
#include "rs_admin.h"
#include "rs_admin_int.h"
#include "rs_admin_sql.h"
#include "rs_log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

void rs_admin_warnf(rs_admin_t *a, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (a->warn)
                a->warn(a->warn_opaque, msg);
        else
                rs_warn("admin", "%s", msg);
}

void rs_admin_invalidate(rs_admin_t *a, const char *const *codes, size_t n)
{
        char err[512];
        if (!a->cache || n == 0)
                return;
        if (rs_cache_invalidate(a->cache, codes, n, err, sizeof(err)))
                return;
        /* Not an error: the cache holds only program and owner, and the
         * processor re-reads status, uses and expiry from Postgres. */
        rs_admin_warnf(
            a,
            "%s: the change is saved, but the cached entry of %s%s may be stale "
            "for up to %lld s (the cache TTL)",
            err, n == 1 ? "code " : "", n == 1 ? codes[0] : "the changed codes",
            (long long)(a->cache_ttl_ms / 1000));
}

void rs_admin_db_error(const rs_pg_t *pg, const char *what, const char *err, char *errstr,
                       size_t errstr_size)
{
        /* libpq messages start with "ERROR:  " and may carry DETAIL lines;
         * the first line is what an operator needs. */
        if (strncmp(err, "ERROR:  ", 8) == 0)
                err += 8;
        int len = (int)strcspn(err, "\n");
        bool no_schema = rs_pg_error_no_table(pg);
        snprintf(errstr, errstr_size, "%s: %.*s%s", what, len, err,
                 no_schema ? " (is the schema there? run `refstream migrate`)" : "");
}

json_t *rs_admin_query_json(rs_admin_t *a, const char *sql, int nparams,
                            const char *const *params, const char *not_found,
                            char *errstr, size_t errstr_size)
{
        char err[1024];
        json_t *j = NULL;
        json_error_t jerr;
        PGresult *res = rs_pg_exec(a->pg, sql, nparams, params, err, sizeof(err));
        if (!res) {
                rs_admin_db_error(a->pg, "query failed", err, errstr, errstr_size);
                goto out;
        }
        if (PQntuples(res) != 1 || PQgetisnull(res, 0, ADMIN_JSON_DOC)) {
                snprintf(errstr, errstr_size, "%s", not_found);
                goto out;
        }
        j = json_loads(PQgetvalue(res, 0, ADMIN_JSON_DOC), JSON_DECODE_ANY, &jerr);
        if (!j)
                snprintf(errstr, errstr_size, "cannot parse the report: %s", jerr.text);
out:
        PQclear(res);
        return j;
}

void rs_admin_param_text(rs_admin_params_t *ps, const char *s)
{
        ps->v[ps->n++] = s;
}

void rs_admin_param_int(rs_admin_params_t *ps, int64_t v)
{
        snprintf(ps->num[ps->n], sizeof(ps->num[0]), "%lld", (long long)v);
        ps->v[ps->n] = ps->num[ps->n];
        ps->n++;
}

void rs_admin_param_opt(rs_admin_params_t *ps, const rs_admin_i64_t *o)
{
        if (o->state == RS_ADMIN_SET)
                rs_admin_param_int(ps, o->v);
        else
                rs_admin_param_text(ps, NULL);
}

void rs_admin_param_flag(rs_admin_params_t *ps, bool set)
{
        rs_admin_param_text(ps, set ? "t" : "f");
}

bool rs_admin_find_program(rs_admin_t *a, const char *key, char id[24], char status[16],
                           char *errstr, size_t errstr_size)
{
        char err[1024];
        const char *params[] = {key};
        PGresult *res =
            rs_pg_exec(a->pg, SQL_ADMIN_PROGRAM_LOOKUP, 1, params, err, sizeof(err));
        if (!res) {
                rs_admin_db_error(a->pg, "cannot look the program up", err, errstr,
                                  errstr_size);
                return false;
        }
        bool found = PQntuples(res) == 1;
        if (found) {
                rs_strlcpy(id, PQgetvalue(res, 0, PROG_LOOKUP_ID), 24);
                rs_strlcpy(status, PQgetvalue(res, 0, PROG_LOOKUP_STATUS), 16);
        } else {
                snprintf(errstr, errstr_size, "program %s not found", key);
        }
        PQclear(res);
        return found;
}

bool rs_admin_transition_unchanged(rs_admin_t *a, const rs_admin_transition_t *t,
                                   const char *id, bool *changed, char *status_out,
                                   size_t status_size, char *errstr, size_t errstr_size)
{
        char err[1024];
        const char *params[] = {id};
        PGresult *res = rs_pg_exec(a->pg, t->lookup_sql, 1, params, err, sizeof(err));
        bool ok = false;
        if (!res) {
                rs_admin_db_error(a->pg, t->verb, err, errstr, errstr_size);
                goto out;
        }
        if (PQntuples(res) == 0) {
                snprintf(errstr, errstr_size, "%s %s not found", t->what, id);
                goto out;
        }
        const char *status = PQgetvalue(res, 0, TRANSITION_STATUS);
        rs_strlcpy(status_out, status, status_size);
        ok = strcmp(status, t->noop) == 0;
        if (!ok && strcmp(status, t->final) == 0)
                snprintf(errstr, errstr_size, "cannot %s %s %s: it is %s, which is final",
                         t->verb, t->what, id, status);
        else if (!ok)
                snprintf(errstr, errstr_size, "cannot %s %s %s: it is %s%s", t->verb,
                         t->what, id, status, t->hint ? t->hint : "");
out:
        *changed = false;
        PQclear(res);
        return ok;
}

bool rs_admin_transition(rs_admin_t *a, const rs_admin_transition_t *t, const char *id,
                         bool *changed, char *status_out, size_t status_size,
                         char *errstr, size_t errstr_size)
{
        char err[1024];
        const char *params[] = {id};
        PGresult *res = rs_pg_exec(a->pg, t->sql, 1, params, err, sizeof(err));
        if (!res) {
                rs_admin_db_error(a->pg, t->verb, err, errstr, errstr_size);
                return false;
        }
        if (PQntuples(res) == 0) {
                PQclear(res);
                return rs_admin_transition_unchanged(a, t, id, changed, status_out,
                                                     status_size, errstr, errstr_size);
        }
        rs_strlcpy(status_out, PQgetvalue(res, 0, TRANSITION_STATUS), status_size);
        *changed = true;
        PQclear(res);
        return true;
}

/* ---------------------------------------------------------------- validation */

bool rs_admin_program_key_valid(const char *key)
{
        size_t n = key ? strlen(key) : 0;
        if (n < 1 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = key[i];
                bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9');
                if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
                        return false;
        }
        return true;
}

bool rs_admin_user_valid(const char *user, char *errstr, size_t errstr_size)
{
        size_t n = user ? strlen(user) : 0;
        if (n < 1 || n > 128) {
                snprintf(errstr, errstr_size, "a user id is 1-128 bytes (got %zu)", n);
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)user[i];
                if (c < 0x20 || c == 0x7f) {
                        snprintf(errstr, errstr_size,
                                 "user id '%s' contains a control character", user);
                        return false;
                }
        }
        return true;
}

bool rs_admin_vanity_normalize(const char *in, char out[RS_CODE_MAX_LEN + 1],
                               char *errstr, size_t errstr_size)
{
        /* Normalise into a buffer of the input's size: a too-long code must be
         * refused, not truncated into a valid one. */
        size_t n = strlen(in);
        char *tmp = rs_malloc(n + 1);
        rs_code_normalize(in, tmp, n + 1);
        bool ok = rs_code_valid(tmp);
        if (ok)
                rs_strlcpy(out, tmp, RS_CODE_MAX_LEN + 1);
        else
                snprintf(errstr, errstr_size,
                         "--code: a vanity code is %d-%d characters of A-Z 0-9 - _ "
                         "(got '%s')",
                         RS_CODE_MIN_LEN, RS_CODE_MAX_LEN, in);
        free(tmp);
        return ok;
}

/* Range rules of the numeric program fields, by option name. */
typedef struct field_rule {
        const char *opt;
        size_t offset;
        int64_t min, max;
        bool clearable;
} field_rule_t;

#define FIELD(f) offsetof(rs_admin_program_t, f)
static const field_rule_t program_rules[] = {
    {"--reward-fixed", FIELD(reward_fixed), 0, INT64_MAX, false},
    {"--reward-percent", FIELD(reward_percent), 0, 10000, false},
    {"--reward-cap", FIELD(reward_cap), 0, INT64_MAX, true},
    {"--referee-reward", FIELD(referee_reward), 0, INT64_MAX, true},
    {"--min-payment", FIELD(min_payment), 0, INT64_MAX, false},
    {"--window-days", FIELD(window_days), 1, 3650, false},
    {"--goal", FIELD(goal), 1, INT32_MAX, false},
    {"--max-rewarded", FIELD(max_rewarded), 0, INT32_MAX, true},
    {"--starts-at", FIELD(starts_at), INT64_MIN, INT64_MAX, true},
    {"--ends-at", FIELD(ends_at), INT64_MIN, INT64_MAX, true},
    {"--hold-days", FIELD(hold_days), 0, 3650, false},
    {"--max-referrals-per-day", FIELD(max_per_day), 0, INT32_MAX, true},
};

static const rs_admin_i64_t *rule_field(const rs_admin_program_t *p,
                                        const field_rule_t *r)
{
        return (const rs_admin_i64_t *)((const char *)p + r->offset);
}

/* Checks each numeric field on its own; counts the fields given. */
static bool validate_fields(const rs_admin_program_t *p, int *given, char *errstr,
                            size_t errstr_size)
{
        for (size_t i = 0; i < RS_ARRAY_SIZE(program_rules); i++) {
                const field_rule_t *r = &program_rules[i];
                const rs_admin_i64_t *f = rule_field(p, r);
                *given += f->state != RS_ADMIN_UNSET;
                if (f->state == RS_ADMIN_CLEAR && !r->clearable) {
                        snprintf(errstr, errstr_size, "%s cannot be cleared with 'none'",
                                 r->opt);
                        return false;
                }
                if (f->state == RS_ADMIN_SET && (f->v < r->min || f->v > r->max)) {
                        if (r->max == INT64_MAX)
                                snprintf(errstr, errstr_size,
                                         "%s must be >= %lld (got %lld)", r->opt,
                                         (long long)r->min, (long long)f->v);
                        else
                                snprintf(errstr, errstr_size,
                                         "%s must be %lld..%lld (got %lld)", r->opt,
                                         (long long)r->min, (long long)r->max,
                                         (long long)f->v);
                        return false;
                }
        }
        return true;
}

static size_t utf8_chars(const char *s)
{
        size_t n = 0;
        for (; *s; s++)
                n += ((unsigned char)*s & 0xC0) != 0x80;
        return n;
}

static bool validate_text(const rs_admin_program_t *p, char *errstr, size_t errstr_size)
{
        if (p->name && (utf8_chars(p->name) < 1 || utf8_chars(p->name) > 200)) {
                snprintf(errstr, errstr_size, "--name must be 1-200 characters");
                return false;
        }
        if (p->currency && !rs_valid_currency(p->currency)) {
                snprintf(
                    errstr, errstr_size,
                    "--currency must be 3 upper-case letters (ISO 4217, e.g. USD); got "
                    "'%s'",
                    p->currency);
                return false;
        }
        return true;
}

bool rs_admin_program_validate(const rs_admin_program_t *p, bool create, char *errstr,
                               size_t errstr_size)
{
        int given = (p->name != NULL) + (p->currency != NULL);
        if (!validate_fields(p, &given, errstr, errstr_size) ||
            !validate_text(p, errstr, errstr_size))
                return false;
        bool fixed = p->reward_fixed.state == RS_ADMIN_SET;
        bool percent = p->reward_percent.state == RS_ADMIN_SET;
        const char *missing = NULL;
        if (fixed && percent)
                missing = "give only one of --reward-fixed and --reward-percent";
        else if (create && !p->name)
                missing = "missing --name";
        else if (create && !p->currency)
                missing = "missing --currency";
        else if (create && !fixed && !percent)
                missing = "missing --reward-fixed or --reward-percent";
        else if (!create && given == 0)
                missing = "nothing to update: give at least one option";
        else if (p->starts_at.state == RS_ADMIN_SET && p->ends_at.state == RS_ADMIN_SET &&
                 p->ends_at.v <= p->starts_at.v)
                missing = "--ends-at must be after --starts-at";
        if (missing)
                snprintf(errstr, errstr_size, "%s", missing);
        return missing == NULL;
}

/* ---------------------------------------------------------------- programs */

/* Readable messages for the schema's checks on rs_programs (the cross-field
 * ones only fire when an update combines a new value with a stored one). */
static void program_db_error(const rs_pg_t *pg, const char *key, const char *err,
                             char *errstr, size_t errstr_size)
{
        static const struct {
                const char *constraint, *msg;
        } checks[] = {
            {"\"rs_programs_check1\"", "--ends-at must be after --starts-at"},
            {"\"rs_programs_check\"", "a percent reward must be at most 10000 bps"},
        };
        for (size_t i = 0; rs_pg_error_check(pg) && i < RS_ARRAY_SIZE(checks); i++) {
                if (strstr(err, checks[i].constraint)) {
                        snprintf(errstr, errstr_size, "program %s: %s", key,
                                 checks[i].msg);
                        return;
                }
        }
        char what[128];
        snprintf(what, sizeof(what), "program %s", key);
        rs_admin_db_error(pg, what, err, errstr, errstr_size);
}

static const char *reward_kind(const rs_admin_program_t *p)
{
        return p->reward_percent.state == RS_ADMIN_SET ? "percent" : "fixed";
}

static const rs_admin_i64_t *reward_value(const rs_admin_program_t *p)
{
        return p->reward_percent.state == RS_ADMIN_SET ? &p->reward_percent
                                                       : &p->reward_fixed;
}

static void create_params(const char *key, const rs_admin_program_t *p,
                          rs_admin_params_t *ps)
{
        rs_admin_param_text(ps, key);
        rs_admin_param_text(ps, p->name);
        rs_admin_param_text(ps, p->currency);
        rs_admin_param_text(ps, reward_kind(p));
        rs_admin_param_opt(ps, reward_value(p));
        const rs_admin_i64_t *rest[] = {
            &p->reward_cap, &p->referee_reward, &p->min_payment, &p->window_days,
            &p->goal,       &p->max_rewarded,   &p->starts_at,   &p->ends_at,
            &p->hold_days,  &p->max_per_day};
        for (size_t i = 0; i < RS_ARRAY_SIZE(rest); i++)
                rs_admin_param_opt(ps, rest[i]);
}

bool rs_admin_program_create(rs_admin_t *a, const char *key, const rs_admin_program_t *p,
                             char *errstr, size_t errstr_size)
{
        if (!rs_admin_program_key_valid(key)) {
                snprintf(
                    errstr, errstr_size,
                    "--key must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a "
                    "letter or digit");
                return false;
        }
        if (!rs_admin_program_validate(p, true, errstr, errstr_size))
                return false;
        rs_admin_params_t ps = {.n = 0};
        create_params(key, p, &ps);
        char err[1024];
        PGresult *res =
            rs_pg_exec(a->pg, SQL_ADMIN_PROGRAM_INSERT, ps.n, ps.v, err, sizeof(err));
        if (!res) {
                program_db_error(a->pg, key, err, errstr, errstr_size);
                return false;
        }
        bool created = PQntuples(res) == 1;
        if (!created)
                snprintf(errstr, errstr_size, "program %s already exists", key);
        PQclear(res);
        return created;
}

static void update_params(const char *key, const rs_admin_program_t *p,
                          rs_admin_params_t *ps)
{
        rs_admin_param_text(ps, key);
        rs_admin_param_flag(ps, p->name != NULL);
        rs_admin_param_text(ps, p->name);
        rs_admin_param_flag(ps, p->currency != NULL);
        rs_admin_param_text(ps, p->currency);
        bool reward = p->reward_fixed.state == RS_ADMIN_SET ||
                      p->reward_percent.state == RS_ADMIN_SET;
        rs_admin_param_flag(ps, reward);
        rs_admin_param_text(ps, reward ? reward_kind(p) : NULL);
        rs_admin_param_opt(ps, reward_value(p));
        const rs_admin_i64_t *rest[] = {
            &p->reward_cap, &p->referee_reward, &p->min_payment, &p->window_days,
            &p->goal,       &p->max_rewarded,   &p->starts_at,   &p->ends_at,
            &p->hold_days,  &p->max_per_day};
        for (size_t i = 0; i < RS_ARRAY_SIZE(rest); i++) {
                rs_admin_param_flag(ps, rest[i]->state != RS_ADMIN_UNSET);
                rs_admin_param_opt(ps, rest[i]);
        }
}

bool rs_admin_program_update(rs_admin_t *a, const char *key, const rs_admin_program_t *p,
                             char *errstr, size_t errstr_size)
{
        if (!rs_admin_program_validate(p, false, errstr, errstr_size))
                return false;
        rs_admin_params_t ps = {.n = 0};
        update_params(key, p, &ps);
        char err[1024];
        PGresult *res =
            rs_pg_exec(a->pg, SQL_ADMIN_PROGRAM_UPDATE, ps.n, ps.v, err, sizeof(err));
        if (!res) {
                program_db_error(a->pg, key, err, errstr, errstr_size);
                return false;
        }
        bool found = PQntuples(res) == 1;
        if (!found)
                snprintf(errstr, errstr_size, "program %s not found", key);
        PQclear(res);
        return found;
}

static const rs_admin_transition_t program_transitions[] = {
    [RS_ADMIN_PAUSE] = {"program", "pause", SQL_ADMIN_PROGRAM_PAUSE,
                        SQL_ADMIN_PROGRAM_STATUS, "paused", "ended", NULL},
    [RS_ADMIN_RESUME] = {"program", "resume", SQL_ADMIN_PROGRAM_RESUME,
                         SQL_ADMIN_PROGRAM_STATUS, "active", "ended", NULL},
    [RS_ADMIN_END] = {"program", "end", SQL_ADMIN_PROGRAM_END, SQL_ADMIN_PROGRAM_STATUS,
                      "ended", "ended", NULL},
};

bool rs_admin_program_set_status(rs_admin_t *a, const char *key, rs_admin_action_t action,
                                 bool *changed, char *errstr, size_t errstr_size)
{
        char status[16];
        if (action > RS_ADMIN_END) {
                snprintf(errstr, errstr_size, "programs can be paused, resumed or ended");
                return false;
        }
        return rs_admin_transition(a, &program_transitions[action], key, changed, status,
                                   sizeof(status), errstr, errstr_size);
}

json_t *rs_admin_program_show(rs_admin_t *a, const char *key, char *errstr,
                              size_t errstr_size)
{
        char not_found[128];
        snprintf(not_found, sizeof(not_found), "program %s not found", key);
        const char *params[] = {key};
        return rs_admin_query_json(a, SQL_ADMIN_PROGRAM_SHOW, 1, params, not_found,
                                   errstr, errstr_size);
}

json_t *rs_admin_program_list(rs_admin_t *a, char *errstr, size_t errstr_size)
{
        return rs_admin_query_json(a, SQL_ADMIN_PROGRAM_LIST, 0, NULL, "no result",
                                   errstr, errstr_size);
}
