/* The review of held referrals (docs/rules.md §8, docs/commands.md §4):
 * an operator releases one at once or cancels it, with an audit row. */
#include "rs_admin.h"
#include "rs_admin_int.h"
#include "rs_admin_sql.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 8-4-4-4-12 hex digits: checked here so a typo gets a plain message. */
static bool uuid_valid(const char *s)
{
        static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        if (strlen(s) != sizeof(shape) - 1)
                return false;
        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
                        return false;
        return true;
}

/* Under the referee's lock (the processor's batches and its release hold
 * it too) and the row's: the referral's status now, or NULL. */
static char *lock_referral(rs_admin_t *a, const char *id, char *errstr,
                           size_t errstr_size)
{
        const char *params[] = {id};
        PGresult *res =
            rs_pg_exec(a->pg, SQL_ADMIN_REFERRAL_FIND, 1, params, errstr, errstr_size);
        if (!res)
                return NULL;
        if (PQntuples(res) == 0) {
                snprintf(errstr, errstr_size, "no referral %s", id);
                PQclear(res);
                return NULL;
        }
        char class[16], key[16];
        snprintf(class, sizeof(class), "%d", RS_PG_USER_LOCK_CLASS);
        snprintf(key, sizeof(key), "%d", rs_pg_user_lock_key(PQgetvalue(res, 0, 0)));
        PQclear(res);
        const char *lp[] = {class, key};
        if (!rs_pg_cmd(a->pg, SQL_ADMIN_USER_LOCK, 2, lp, errstr, errstr_size) ||
            !(res = rs_pg_exec(a->pg, SQL_ADMIN_REFERRAL_LOCK, 1, params, errstr,
                               errstr_size)))
                return NULL;
        char *status = rs_strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        return status;
}

bool rs_admin_referral_review(rs_admin_t *a, const char *id, bool cancel,
                              const char *actor, const char *reason, char *errstr,
                              size_t errstr_size)
{
        if (!uuid_valid(id)) {
                snprintf(errstr, errstr_size,
                         "REFERRAL_ID must be a referral id (a UUID, as 'admin referrals "
                         "--user' shows)");
                return false;
        }
        if (!rs_pg_cmd(a->pg, SQL_ADMIN_BEGIN, 0, NULL, errstr, errstr_size))
                return false;
        char *status = lock_referral(a, id, errstr, errstr_size);
        bool ok = status != NULL;
        if (ok && strcmp(status, "held") != 0) {
                snprintf(errstr, errstr_size,
                         "referral %s is %s: only a held referral can be %s", id, status,
                         cancel ? "cancelled" : "released");
                ok = false;
        }
        free(status);
        const char *params[] = {id};
        const char *audit[] = {id, cancel ? "cancel" : "release", actor, reason};
        ok = ok &&
             rs_pg_cmd(a->pg,
                       cancel ? SQL_ADMIN_REFERRAL_CANCEL : SQL_ADMIN_REFERRAL_RELEASE, 1,
                       params, errstr, errstr_size) &&
             rs_pg_cmd(a->pg, SQL_ADMIN_REFERRAL_AUDIT, 4, audit, errstr, errstr_size) &&
             rs_pg_cmd(a->pg, SQL_ADMIN_COMMIT, 0, NULL, errstr, errstr_size);
        if (!ok)
                rs_pg_rollback(a->pg);
        return ok;
}
