/* The statements of consumer/outbox (see rs_outbox_sql.h). */
#include "rs_outbox_sql.h"

const char SQL_OUTBOX_MARK[] = "WITH batches AS (\n"
                               "    UPDATE rs_outbox_batches\n"
                               "       SET published_at = now()\n"
                               "     WHERE id = ANY($2::bigint[])\n"
                               "       AND published_at IS NULL)\n"
                               "UPDATE rs_outbox\n"
                               "   SET published_at = now()\n"
                               " WHERE id = ANY($1::bigint[])\n"
                               "   AND published_at IS NULL";

const char SQL_OUTBOX_RENEW[] =
    "WITH batches AS (\n"
    "    UPDATE rs_outbox_batches\n"
    "       SET claimed_until = now() + $3::bigint * interval '1 millisecond'\n"
    "     WHERE id = ANY($2::bigint[])\n"
    "       AND published_at IS NULL)\n"
    "UPDATE rs_outbox\n"
    "   SET claimed_until = now() + $3::bigint * interval '1 millisecond'\n"
    " WHERE id = ANY($1::bigint[])\n"
    "   AND published_at IS NULL";

const char SQL_OUTBOX_DISSOLVE[] = "WITH expired AS (\n"
                                   "    DELETE FROM rs_outbox_batches\n"
                                   "     WHERE id IN (SELECT id FROM rs_outbox_batches\n"
                                   "                   WHERE published_at IS NULL\n"
                                   "                     AND claimed_until < now()\n"
                                   "                     AND id <> ALL($2::bigint[])\n"
                                   "                   ORDER BY id\n"
                                   "                   LIMIT $1::int\n"
                                   "                     FOR UPDATE SKIP LOCKED)\n"
                                   "    RETURNING id)\n"
                                   "UPDATE rs_outbox o\n"
                                   "   SET batch_id = NULL\n"
                                   "  FROM expired\n"
                                   " WHERE o.batch_id = expired.id";

const char SQL_OUTBOX_CLAIM[] =
    "UPDATE rs_outbox\n"
    "   SET claimed_until = now() + $1::bigint * interval '1 millisecond',\n"
    "       attempts = attempts + 1\n"
    " WHERE id IN (SELECT id FROM rs_outbox\n"
    "               WHERE published_at IS NULL\n"
    "                 AND batch_id IS NULL\n"
    "                 AND (claimed_until IS NULL OR claimed_until < now())\n"
    "               ORDER BY id\n"
    "               LIMIT $2::int\n"
    "                 FOR UPDATE SKIP LOCKED)\n"
    "RETURNING id, destination, msg_key, payload, event_type, source_topic,\n"
    "          source_partition, source_offset, error_class, error_message,\n"
    "          rs_ts_to_ms(created_at)";

/* The rows of each unpublished batch are counted by their index: a join
 * would let a planner without fresh statistics read the whole table. */
const char SQL_OUTBOX_PENDING[] =
    "SELECT (SELECT count(*) FROM rs_outbox\n"
    "         WHERE published_at IS NULL AND batch_id IS NULL)\n"
    "     + (SELECT coalesce(sum((SELECT count(*) FROM rs_outbox o\n"
    "                              WHERE o.batch_id = b.id)), 0)::bigint\n"
    "          FROM rs_outbox_batches b\n"
    "         WHERE b.published_at IS NULL)";

const char SQL_OUTBOX_RETENTION[] =
    "DELETE FROM rs_outbox\n"
    " WHERE id IN (SELECT id FROM rs_outbox\n"
    "               WHERE published_at < now() - $1::bigint * interval '1 hour'\n"
    "               LIMIT $2::int\n"
    "                 FOR UPDATE SKIP LOCKED)";

const char SQL_OUTBOX_BATCH_RETENTION[] =
    "WITH old AS (\n"
    "    DELETE FROM rs_outbox_batches\n"
    "     WHERE id IN (SELECT id FROM rs_outbox_batches\n"
    "                   WHERE published_at < now() - $1::bigint * interval '1 hour'\n"
    "                   LIMIT $2::int\n"
    "                     FOR UPDATE SKIP LOCKED)\n"
    "    RETURNING id)\n"
    "DELETE FROM rs_outbox o\n"
    " USING old\n"
    " WHERE o.batch_id = old.id";
