#ifndef RS_CODES_H
#define RS_CODES_H
/* Referral codes (docs/rules.md §1): case-insensitive, stored upper-case, input trimmed.
 * Generated codes are 8 characters of Crockford base32 (0-9A-Z without I L O U)
 * from the OS CSPRNG; vanity codes are 4-32 characters of A-Z 0-9 - _. */
#include <stdbool.h>
#include <stddef.h>

#define RS_CODE_MIN_LEN       4
#define RS_CODE_MAX_LEN       32
#define RS_CODE_GENERATED_LEN 8

extern const char rs_crockford_alphabet[33];

/* Trims ASCII whitespace and upper-cases ASCII letters into out (size >=
 * strlen(in)+1). Returns out. */
char *rs_code_normalize(const char *in, char *out, size_t out_size);
/* True if s (already normalised) has the shape of a code we could hold. */
bool rs_code_valid(const char *s);
/* Fills out (>= 9 bytes) with a fresh random code. False if the OS CSPRNG
 * failed (never silently falls back to a weaker source). */
bool rs_code_generate(char *out, size_t out_size) __attribute__((warn_unused_result));

#endif
