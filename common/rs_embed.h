#ifndef RS_EMBED_H
#define RS_EMBED_H
#include <stddef.h>

/* Files of schemas/ and sql/ compiled into the binary (common/embed.cmake). Each
 * data buffer is NUL-terminated; len excludes the terminator. */
typedef struct rs_embedded_file {
        const char *name;
        const char *data;
        size_t len;
} rs_embedded_file_t;

extern const rs_embedded_file_t rs_embedded_files[];
extern const size_t rs_embedded_files_count;

/* Returns the embedded file with this source-relative path, or NULL. */
const rs_embedded_file_t *rs_embedded_find(const char *name);

#endif
