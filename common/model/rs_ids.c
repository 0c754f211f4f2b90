#include "rs_ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* SHA-256 as specified in FIPS 180-4. */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
        return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One round, with the eight working variables renamed instead of moved:
 * round i+1 is this one with every variable shifted by one place. */
#define ROUND(a, b, c, d, e, f, g, h, i)                                                 \
        do {                                                                             \
                uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) +                \
                              ((e & f) ^ (~e & g)) + K[i] + w[i];                        \
                uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) +                    \
                              ((a & b) ^ (a & c) ^ (b & c));                             \
                d += t1;                                                                 \
                h = t1 + t2;                                                             \
        } while (0)

static void block(rs_sha256_t *s, const unsigned char *p)
{
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
                w[i] = load_be32(p + 4 * i);
        for (int i = 16; i < 64; i++) {
                uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4],
                 f = s->h[5], g = s->h[6], h = s->h[7];
        for (int i = 0; i < 64; i += 8) {
                ROUND(a, b, c, d, e, f, g, h, i);
                ROUND(h, a, b, c, d, e, f, g, i + 1);
                ROUND(g, h, a, b, c, d, e, f, i + 2);
                ROUND(f, g, h, a, b, c, d, e, i + 3);
                ROUND(e, f, g, h, a, b, c, d, i + 4);
                ROUND(d, e, f, g, h, a, b, c, i + 5);
                ROUND(c, d, e, f, g, h, a, b, i + 6);
                ROUND(b, c, d, e, f, g, h, a, i + 7);
        }
        s->h[0] += a;
        s->h[1] += b;
        s->h[2] += c;
        s->h[3] += d;
        s->h[4] += e;
        s->h[5] += f;
        s->h[6] += g;
        s->h[7] += h;
}

#undef ROUND

void rs_sha256_init(rs_sha256_t *s)
{
        static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        memcpy(s->h, h0, sizeof(h0));
        s->len = 0;
        s->buf_len = 0;
}

void rs_sha256_update(rs_sha256_t *s, const void *data, size_t n)
{
        const unsigned char *p = data;
        s->len += n;
        if (s->buf_len > 0) {
                size_t take = 64 - s->buf_len < n ? 64 - s->buf_len : n;
                memcpy(s->buf + s->buf_len, p, take);
                s->buf_len += take;
                p += take;
                n -= take;
                if (s->buf_len < 64)
                        return;
                block(s, s->buf);
                s->buf_len = 0;
        }
        for (; n >= 64; p += 64, n -= 64)
                block(s, p);
        memcpy(s->buf, p, n);
        s->buf_len = n;
}

void rs_sha256_final(rs_sha256_t *s, unsigned char out[32])
{
        uint64_t bits = s->len * 8;
        /* 0x80, zeros to 56 bytes of the last block (of a block more when
         * fewer than 9 bytes are left), then the length in bits. */
        s->buf[s->buf_len++] = 0x80;
        if (s->buf_len > 56) {
                memset(s->buf + s->buf_len, 0, 64 - s->buf_len);
                block(s, s->buf);
                s->buf_len = 0;
        }
        memset(s->buf + s->buf_len, 0, 56 - s->buf_len);
        for (int i = 0; i < 8; i++)
                s->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
        block(s, s->buf);
        for (int i = 0; i < 8; i++) {
                out[4 * i] = (unsigned char)(s->h[i] >> 24);
                out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
                out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
                out[4 * i + 3] = (unsigned char)s->h[i];
        }
}

/* ---------------------------------------------------------------- SipHash */

static uint64_t rotl64(uint64_t x, int b)
{
        return x << b | x >> (64 - b);
}

static uint64_t load_le64(const unsigned char *p, size_t n)
{
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static void store_le64(unsigned char *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (unsigned char)(v >> (8 * i));
}

#define SIPROUND                                                                         \
        do {                                                                             \
                v0 += v1, v1 = rotl64(v1, 13), v1 ^= v0, v0 = rotl64(v0, 32);            \
                v2 += v3, v3 = rotl64(v3, 16), v3 ^= v2;                                 \
                v0 += v3, v3 = rotl64(v3, 21), v3 ^= v0;                                 \
                v2 += v1, v1 = rotl64(v1, 17), v1 ^= v2, v2 = rotl64(v2, 32);            \
        } while (0)

void rs_siphash128(const unsigned char key[16], const void *data, size_t n,
                   unsigned char out[16])
{
        const unsigned char *p = data;
        uint64_t k0 = load_le64(key, 8), k1 = load_le64(key + 8, 8);
        uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL,
                 v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
        v1 ^= 0xee; /* the 128-bit output */
        /* Whole 8-byte words, then the rest with the length's low byte on top. */
        for (size_t left = n;; p += 8, left -= 8) {
                uint64_t m = left >= 8 ? load_le64(p, 8)
                                       : load_le64(p, left) | (uint64_t)(n & 0xff) << 56;
                v3 ^= m;
                SIPROUND;
                SIPROUND;
                v0 ^= m;
                if (left < 8)
                        break;
        }
        v2 ^= 0xee;
        for (int i = 0; i < 4; i++)
                SIPROUND;
        store_le64(out, v0 ^ v1 ^ v2 ^ v3);
        v1 ^= 0xdd;
        for (int i = 0; i < 4; i++)
                SIPROUND;
        store_le64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

bool rs_random_bytes(void *buf, size_t n)
{
        for (size_t got = 0; got < n;) {
                ssize_t r = getrandom((unsigned char *)buf + got, n - got, 0);
                if (r < 0 && errno != EINTR)
                        return false;
                if (r > 0)
                        got += (size_t)r;
        }
        return true;
}

void rs_uuid_format(const unsigned char b[16], char *out)
{
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        *out++ = '-';
                *out++ = hex[b[i] >> 4];
                *out++ = hex[b[i] & 15];
        }
        *out = '\0';
}

static void uuid8(const char *const *parts, size_t nparts, char *out)
{
        rs_sha256_t s;
        unsigned char h[32];
        rs_sha256_init(&s);
        for (size_t i = 0; i < nparts; i++) {
                if (i)
                        rs_sha256_update(&s, "\x1f", 1);
                rs_sha256_update(&s, parts[i], strlen(parts[i]));
        }
        rs_sha256_final(&s, h);
        h[6] = (unsigned char)((h[6] & 0x0f) | 0x80); /* version 8 */
        h[8] = (unsigned char)((h[8] & 0x3f) | 0x80); /* RFC 9562 variant */
        rs_uuid_format(h, out);
}

void rs_referral_id(const char *program_key, const char *referee, char *out)
{
        const char *parts[] = {"refstream/referral", program_key, referee};
        uuid8(parts, 3, out);
}

void rs_credit_id(const char *program_key, const char *referee, const char *role,
                  char *out)
{
        const char *parts[] = {"refstream/credit", program_key, referee, role};
        uuid8(parts, 4, out);
}
