/* Codes: issue (generated or vanity), pause/resume/revoke, limit updates that
 * re-derive the status, show. Every change deletes the code's cache entry. */
#include "rs_admin.h"
#include "rs_admin_int.h"
#include "rs_admin_sql.h"

#include <stdlib.h>
#include <string.h>

/* Generated codes come from 32^8 (about 10^12) values, so a collision is
 * rare; a run of them means the code space or the CSPRNG is in trouble. */
#define ISSUE_ATTEMPTS 16

/* A code as typed by an operator: normalised, or "not found" if it cannot
 * be one (the same answer the database would give). */
static bool code_arg(const char *in, char out[RS_CODE_MAX_LEN + 1], char *errstr,
                     size_t errstr_size)
{
        char ignore[256];
        if (rs_admin_vanity_normalize(in, out, ignore, sizeof(ignore)))
                return true;
        snprintf(errstr, errstr_size, "code '%s' not found", in);
        return false;
}

static bool check_limits(const rs_admin_code_limits_t *l, char *errstr,
                         size_t errstr_size)
{
        if (l->max_uses.state == RS_ADMIN_SET &&
            (l->max_uses.v < 0 || l->max_uses.v > INT32_MAX)) {
                snprintf(errstr, errstr_size, "--max-uses must be 0..%d (got %lld)",
                         INT32_MAX, (long long)l->max_uses.v);
                return false;
        }
        return true;
}

/* ---------------------------------------------------------------- issue */

/* Inserts one code; *taken (and true) when the code already exists. */
static bool insert_code(rs_admin_t *a, const char *code, const char *program_id,
                        const char *user, bool vanity, const rs_admin_code_limits_t *l,
                        bool *taken, char status[16], char *errstr, size_t errstr_size)
{
        rs_admin_params_t ps = {.n = 0};
        rs_admin_param_text(&ps, code);
        rs_admin_param_text(&ps, program_id);
        rs_admin_param_text(&ps, user);
        rs_admin_param_flag(&ps, vanity);
        rs_admin_param_opt(&ps, &l->max_uses);
        rs_admin_param_opt(&ps, &l->expires_at);
        char err[1024];
        PGresult *res =
            rs_pg_exec(a->pg, SQL_ADMIN_CODE_INSERT, ps.n, ps.v, err, sizeof(err));
        if (!res) {
                rs_admin_db_error(a->pg, "cannot insert the code", err, errstr,
                                  errstr_size);
                return false;
        }
        *taken = PQntuples(res) == 0;
        if (!*taken)
                rs_strlcpy(status, PQgetvalue(res, 0, CODE_INSERT_STATUS), 16);
        PQclear(res);
        return true;
}

static bool issue_generated(rs_admin_t *a, const char *program_id, const char *user,
                            const rs_admin_code_limits_t *l,
                            char out[RS_CODE_MAX_LEN + 1], char status[16], char *errstr,
                            size_t errstr_size)
{
        for (int attempt = 0; attempt < ISSUE_ATTEMPTS; attempt++) {
                bool taken = false;
                if (!rs_code_generate(out, RS_CODE_MAX_LEN + 1)) {
                        snprintf(errstr, errstr_size, "the OS random generator failed");
                        return false;
                }
                if (!insert_code(a, out, program_id, user, false, l, &taken, status,
                                 errstr, errstr_size))
                        return false;
                if (!taken)
                        return true;
        }
        snprintf(errstr, errstr_size, "no free code found in %d attempts",
                 ISSUE_ATTEMPTS);
        return false;
}

bool rs_admin_code_issue(rs_admin_t *a, const char *program_key, const char *user,
                         const char *vanity, const rs_admin_code_limits_t *limits,
                         char out[RS_CODE_MAX_LEN + 1], char *errstr, size_t errstr_size)
{
        char program_id[24], pstatus[16], status[16];
        bool taken = false;
        if (!rs_admin_user_valid(user, errstr, errstr_size) ||
            (vanity && !rs_admin_vanity_normalize(vanity, out, errstr, errstr_size)) ||
            !check_limits(limits, errstr, errstr_size) ||
            !rs_admin_find_program(a, program_key, program_id, pstatus, errstr,
                                   errstr_size))
                return false;
        if (vanity) {
                if (!insert_code(a, out, program_id, user, true, limits, &taken, status,
                                 errstr, errstr_size))
                        return false;
                if (taken) {
                        snprintf(errstr, errstr_size, "code %s is already taken", out);
                        return false;
                }
        } else if (!issue_generated(a, program_id, user, limits, out, status, errstr,
                                    errstr_size)) {
                return false;
        }
        /* A negative entry ("no such code") may be cached from a sign-up that
         * tried this code before it existed. */
        const char *codes[] = {out};
        rs_admin_invalidate(a, codes, 1);
        if (strcmp(pstatus, "active") != 0)
                rs_admin_warnf(
                    a,
                    "program %s is %s: sign-ups with code %s are rejected until "
                    "the program is active",
                    program_key, pstatus, out);
        if (strcmp(status, "active") != 0)
                rs_admin_warnf(a, "code %s is %s from the start (its limits)", out,
                               status);
        return true;
}

/* ---------------------------------------------------------------- status */

static const rs_admin_transition_t code_transitions[] = {
    [RS_ADMIN_PAUSE] = {"code", "pause", SQL_ADMIN_CODE_PAUSE, SQL_ADMIN_CODE_STATUS,
                        "paused", "revoked", " (only an active code can be paused)"},
    [RS_ADMIN_RESUME] = {"code", "resume", SQL_ADMIN_CODE_RESUME, SQL_ADMIN_CODE_STATUS,
                         "active", "revoked",
                         " (it becomes active again through `codes update` with a later"
                         " --expires-at or a higher --max-uses)"},
    [RS_ADMIN_REVOKE] = {"code", "revoke", SQL_ADMIN_CODE_REVOKE, SQL_ADMIN_CODE_STATUS,
                         "revoked", "revoked", NULL},
};

bool rs_admin_code_set_status(rs_admin_t *a, const char *code, rs_admin_action_t action,
                              bool *changed, char *status_out, size_t status_size,
                              char *errstr, size_t errstr_size)
{
        char norm[RS_CODE_MAX_LEN + 1];
        if (action == RS_ADMIN_END) {
                snprintf(errstr, errstr_size, "codes can be paused, resumed or revoked");
                return false;
        }
        if (!code_arg(code, norm, errstr, errstr_size) ||
            !rs_admin_transition(a, &code_transitions[action], norm, changed, status_out,
                                 status_size, errstr, errstr_size))
                return false;
        const char *codes[] = {norm};
        rs_admin_invalidate(a, codes, 1);
        if (action == RS_ADMIN_RESUME && strcmp(status_out, "active") != 0)
                rs_admin_warnf(
                    a, "code %s was resumed but is %s (its limits passed meanwhile)",
                    norm, status_out);
        return true;
}

/* ---------------------------------------------------------------- update */

static bool code_update_exec(rs_admin_t *a, const char *code,
                             const rs_admin_code_limits_t *l, char *status_out,
                             size_t status_size, char *errstr, size_t errstr_size)
{
        rs_admin_params_t ps = {.n = 0};
        rs_admin_param_text(&ps, code);
        rs_admin_param_flag(&ps, l->max_uses.state != RS_ADMIN_UNSET);
        rs_admin_param_opt(&ps, &l->max_uses);
        rs_admin_param_flag(&ps, l->expires_at.state != RS_ADMIN_UNSET);
        rs_admin_param_opt(&ps, &l->expires_at);
        char err[1024];
        PGresult *res =
            rs_pg_exec(a->pg, SQL_ADMIN_CODE_UPDATE, ps.n, ps.v, err, sizeof(err));
        if (!res) {
                rs_admin_db_error(a->pg, "cannot update the code", err, errstr,
                                  errstr_size);
                return false;
        }
        bool found = PQntuples(res) == 1;
        if (found) {
                rs_strlcpy(status_out, PQgetvalue(res, 0, CODE_UPDATE_STATUS),
                           status_size);
                int64_t uses = rs_pg_int(res, 0, CODE_UPDATE_USES, 0);
                int64_t max = rs_pg_int(res, 0, CODE_UPDATE_MAX_USES, -1);
                if (l->max_uses.state == RS_ADMIN_SET && max > l->max_uses.v)
                        rs_admin_warnf(
                            a,
                            "code %s has been used %lld times: max-uses is set to "
                            "%lld (no further use), not %lld",
                            code, (long long)uses, (long long)max,
                            (long long)l->max_uses.v);
        }
        PQclear(res);
        if (!found) {
                /* Absent or revoked: the transition lookup words it. */
                bool changed;
                const rs_admin_transition_t t = {
                    "code", "update", NULL, SQL_ADMIN_CODE_STATUS, "", "revoked", NULL};
                return rs_admin_transition_unchanged(a, &t, code, &changed, status_out,
                                                     status_size, errstr, errstr_size);
        }
        return true;
}

bool rs_admin_code_update(rs_admin_t *a, const char *code,
                          const rs_admin_code_limits_t *limits, char *status_out,
                          size_t status_size, char *errstr, size_t errstr_size)
{
        char norm[RS_CODE_MAX_LEN + 1];
        if (limits->max_uses.state == RS_ADMIN_UNSET &&
            limits->expires_at.state == RS_ADMIN_UNSET) {
                snprintf(errstr, errstr_size,
                         "nothing to update: give --max-uses or --expires-at");
                return false;
        }
        if (!check_limits(limits, errstr, errstr_size) ||
            !code_arg(code, norm, errstr, errstr_size) ||
            !code_update_exec(a, norm, limits, status_out, status_size, errstr,
                              errstr_size))
                return false;
        const char *codes[] = {norm};
        rs_admin_invalidate(a, codes, 1);
        return true;
}

/* ---------------------------------------------------------------- show */

json_t *rs_admin_code_show(rs_admin_t *a, const char *code, char *errstr,
                           size_t errstr_size)
{
        char norm[RS_CODE_MAX_LEN + 1], not_found[128];
        if (!code_arg(code, norm, errstr, errstr_size))
                return NULL;
        snprintf(not_found, sizeof(not_found), "code %s not found", norm);
        const char *params[] = {norm};
        return rs_admin_query_json(a, SQL_ADMIN_CODE_SHOW, 1, params, not_found, errstr,
                                   errstr_size);
}
