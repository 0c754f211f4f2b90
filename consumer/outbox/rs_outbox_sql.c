/* The statements of consumer/outbox (see rs_outbox_sql.h). */
#include "rs_outbox_sql.h"

const char SQL_OUTBOX_MARK[] = "UPDATE rs_outbox\n"
                               "   SET published_at = now()\n"
                               " WHERE id = ANY($1::bigint[])\n"
                               "   AND published_at IS NULL";

const char SQL_OUTBOX_RENEW[] =
    "UPDATE rs_outbox\n"
    "   SET claimed_until = now() + $2::bigint * interval '1 millisecond'\n"
    " WHERE id = ANY($1::bigint[])\n"
    "   AND published_at IS NULL";

const char SQL_OUTBOX_CLAIM[] =
    "UPDATE rs_outbox\n"
    "   SET claimed_until = now() + $1::bigint * interval '1 millisecond',\n"
    "       attempts = attempts + 1\n"
    " WHERE id IN (SELECT id FROM rs_outbox\n"
    "               WHERE published_at IS NULL\n"
    "                 AND (claimed_until IS NULL OR claimed_until < now())\n"
    "               ORDER BY id\n"
    "               LIMIT $2::int\n"
    "                 FOR UPDATE SKIP LOCKED)\n"
    "RETURNING id, destination, msg_key, payload, event_type, source_topic,\n"
    "          source_partition, source_offset, error_class, error_message,\n"
    "          rs_ts_to_ms(created_at)";

const char SQL_OUTBOX_PENDING[] =
    "SELECT count(*) FROM rs_outbox WHERE published_at IS NULL";

const char SQL_OUTBOX_RETENTION[] =
    "DELETE FROM rs_outbox\n"
    " WHERE id IN (SELECT id FROM rs_outbox\n"
    "               WHERE published_at < now() - $1::bigint * interval '1 hour'\n"
    "               LIMIT $2::int\n"
    "                 FOR UPDATE SKIP LOCKED)";
