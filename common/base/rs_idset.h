#ifndef RS_IDSET_H
#define RS_IDSET_H
/* A set of positive int64 ids (outbox row ids): open addressing, linear
 * probing. Zero-initialise; rs_idset_free releases it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rs_idset {
        int64_t *slots;          /* 0 empty, -1 deleted, > 0 an id */
        size_t cap, count, used; /* used: count + deleted */
} rs_idset_t;

void rs_idset_add(rs_idset_t *s, int64_t id); /* id > 0 */
void rs_idset_del(rs_idset_t *s, int64_t id);
bool rs_idset_has(const rs_idset_t *s, int64_t id);
void rs_idset_free(rs_idset_t *s);

#endif
