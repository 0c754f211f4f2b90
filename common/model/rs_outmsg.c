#include "rs_outmsg.h"
#include "rs_util.h"

#include <string.h>

static const char *const dest_names[] = {"credited", "reversed", "dlq"};

const char *rs_dest_name(rs_dest_t d)
{
        return dest_names[d];
}

bool rs_dest_parse(const char *s, rs_dest_t *out)
{
        for (size_t i = 0; i < RS_ARRAY_SIZE(dest_names); i++) {
                if (strcmp(s, dest_names[i]) == 0) {
                        *out = (rs_dest_t)i;
                        return true;
                }
        }
        return false;
}
