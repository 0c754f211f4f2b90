#ifndef RS_EMBED_H
#define RS_EMBED_H
/* Files of the source tree compiled into the binary (common/embed.cmake), so
 * that `refstream` runs anywhere without the tree: the codec's schemas
 * (schemas/) and the database's migrations (sql/). Each data buffer is
 * NUL-terminated; len excludes the terminator. */
#include <stddef.h>

typedef struct rs_embedded_file {
        const char *name; /* source-relative path, e.g. "sql/001_init.sql" */
        const char *data;
        size_t len;
} rs_embedded_file_t;

/* The file of files[0..n) with this name, or NULL. */
const rs_embedded_file_t *rs_embedded_find(const rs_embedded_file_t *files, size_t n,
                                           const char *name);

#endif
