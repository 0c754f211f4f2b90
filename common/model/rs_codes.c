#include "rs_codes.h"
#include "rs_ids.h"
#include "rs_util.h"

#include <ctype.h>
#include <string.h>

const char rs_crockford_alphabet[33] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

char *rs_code_normalize(const char *in, char *out, size_t out_size)
{
        while (*in && isspace((unsigned char)*in))
                in++;
        size_t n = strlen(in);
        while (n > 0 && isspace((unsigned char)in[n - 1]))
                n--;
        if (n >= out_size)
                n = out_size - 1;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)in[i];
                out[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : (char)c;
        }
        out[n] = '\0';
        return out;
}

bool rs_code_valid(const char *s)
{
        size_t n = strlen(s);
        if (n < RS_CODE_MIN_LEN || n > RS_CODE_MAX_LEN)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_'))
                        return false;
        }
        return true;
}

bool rs_code_generate(char *out, size_t out_size)
{
        unsigned char rnd[RS_CODE_GENERATED_LEN];
        if (out_size < RS_CODE_GENERATED_LEN + 1)
                return false;
        if (!rs_random_bytes(rnd, sizeof(rnd)))
                return false;
        /* 256 is a multiple of 32, so masking keeps the draw uniform. */
        for (size_t i = 0; i < RS_CODE_GENERATED_LEN; i++)
                out[i] = rs_crockford_alphabet[rnd[i] & 31];
        out[RS_CODE_GENERATED_LEN] = '\0';
        return true;
}
