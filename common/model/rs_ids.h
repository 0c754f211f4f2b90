#ifndef RS_IDS_H
#define RS_IDS_H
/* Deterministic identifiers (docs/events.md §4): a retry of the same work produces the
 * same id, so downstream consumers can deduplicate.
 *
 *   referral_id = uuid8(SHA-256("refstream/referral\x1f" program_key "\x1f" referee))
 *   credit_id   = uuid8(SHA-256("refstream/credit\x1f" program_key "\x1f" referee
 *                               "\x1f" role))          role: "REFERRER" | "REFEREE"
 *
 * uuid8(h) is the first 16 bytes of h as an RFC 9562 version-8 UUID (the
 * version and variant bits overwritten), printed in lower-case 8-4-4-4-12. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RS_UUID_STR_LEN 36

typedef struct rs_sha256 {
        uint32_t h[8];
        uint64_t len;
        unsigned char buf[64];
        size_t buf_len;
} rs_sha256_t;

void rs_sha256_init(rs_sha256_t *s);
void rs_sha256_update(rs_sha256_t *s, const void *data, size_t n);
void rs_sha256_final(rs_sha256_t *s, unsigned char out[32]);

/* SipHash-2-4 with its 128-bit output (Aumasson and Bernstein, "SipHash: a
 * fast short-input PRF", 2012): keyed with a secret key, nobody can make
 * two inputs collide on purpose; for short inputs it is several times
 * cheaper than SHA-256. */
void rs_siphash128(const unsigned char key[16], const void *data, size_t n,
                   unsigned char out[16]);

/* n bytes from the kernel's random source (getrandom); false if it fails. */
bool rs_random_bytes(void *buf, size_t n);

/* 16 bytes as a uuid's text, lower-case 8-4-4-4-12 (as Postgres prints a
 * uuid); out must hold RS_UUID_STR_LEN + 1 bytes. */
void rs_uuid_format(const unsigned char b[16], char *out);

/* out must hold RS_UUID_STR_LEN + 1 bytes. */
void rs_referral_id(const char *program_key, const char *referee, char *out);
void rs_credit_id(const char *program_key, const char *referee, const char *role,
                  char *out);

#endif
