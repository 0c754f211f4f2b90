#include "rs_embed.h"

#include <string.h>

const rs_embedded_file_t *rs_embedded_find(const rs_embedded_file_t *files, size_t n,
                                           const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(files[i].name, name) == 0)
                        return &files[i];
        return NULL;
}
