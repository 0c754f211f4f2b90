/* refstream loadgen: a synthetic, reproducible event stream for benchmarks.
 *
 * The same seed and options always produce the same events (ids, users, codes,
 * amounts, timestamps). User k signs up at start + k seconds. Mixes:
 *   classic     with one of the given codes (--referral-pct of sign-ups; a
 *               few use unknown codes), and pays (--charge-pct) once, an
 *               amount between 5.00 and 50.00; 1% of charges are refunded;
 *   heavy       every sign-up with a valid code, every user pays once (10.00
 *               to 50.00): every event has an effect;
 *   production  10% of sign-ups with a code; 60% of users pay 3-6 charges
 *               over the following days (the first of 10.00 or more, later
 *               ones from 5.00); 1% of charges refunded; 0.5% of
 *               events delivered twice; 5% of first charges published before
 *               their sign-up: most events change nothing. Later charges
 *               come later in the stream too: charge n of a user after the
 *               sign-ups of 2,000 × n more users (a simulated day each).
 * Events go out at --rate per second (0 = as fast as the producer accepts
 * them). */
#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_producer.h"
#include "rs_log.h"
#include "rs_publisher.h"

#include <stdlib.h>
#include <string.h>

enum {
        O_SEED,
        O_COUNT,
        O_RATE,
        O_CODES,
        O_REFPCT,
        O_CHARGEPCT,
        O_START,
        O_FORMAT,
        O_CURRENCY,
        O_MIX
};

static const rs_cli_opt_t opts[] = {
    [O_SEED] = {"seed", true, "N", "random seed (default 1)"},
    [O_COUNT] = {"count", true, "N", "users to generate (default 10000)"},
    [O_RATE] = {"rate", true, "N", "events per second, 0 = unlimited (default 0)"},
    [O_CODES] = {"codes", true, "C1,C2", "referral codes to use (comma-separated)"},
    [O_REFPCT] = {"referral-pct", true, "P",
                  "sign-ups with a code, percent (default 80)"},
    [O_CHARGEPCT] = {"charge-pct", true, "P", "referees who pay, percent (default 70)"},
    [O_START] = {"start-time", true, "T",
                 "time of the first sign-up (default "
                 "2026-01-01T00:00:00Z)"},
    [O_FORMAT] = {"format", true, "FMT", "avro (default) or json"},
    [O_CURRENCY] = {"currency", true, "CUR", "payment currency (default USD)"},
    [O_MIX] = {"mix", true, "MIX", "classic (default), heavy or production"},
};

typedef enum { MIX_CLASSIC, MIX_HEAVY, MIX_PRODUCTION } mix_t;

typedef struct lg {
        int64_t seed, count, rate, refpct, chargepct, start;
        mix_t mix;
        bool json;
        char currency[4];
        char **codes;
        size_t ncodes;
        uint64_t rng;
} lg_t;

static bool on_opt(void *ctx, int idx, const char *arg, char *errstr, size_t errstr_size)
{
        lg_t *g = ctx;
        bool ok = true;
        switch (idx) {
        case O_SEED:
                ok = rs_parse_int64(arg, 0, INT64_MAX, &g->seed);
                break;
        case O_COUNT:
                ok = rs_parse_int64(arg, 1, INT64_C(1000000000), &g->count);
                break;
        case O_RATE:
                ok = rs_parse_int64(arg, 0, INT64_C(10000000), &g->rate);
                break;
        case O_REFPCT:
                ok = rs_parse_int64(arg, 0, 100, &g->refpct);
                break;
        case O_CHARGEPCT:
                ok = rs_parse_int64(arg, 0, 100, &g->chargepct);
                break;
        case O_START:
                ok = rs_parse_rfc3339(arg, &g->start);
                break;
        case O_FORMAT:
                ok = strcmp(arg, "avro") == 0 || strcmp(arg, "json") == 0;
                g->json = strcmp(arg, "json") == 0;
                break;
        case O_CURRENCY:
                ok = rs_valid_currency(arg);
                rs_strlcpy(g->currency, arg, sizeof(g->currency));
                break;
        case O_MIX:
                ok = strcmp(arg, "classic") == 0 || strcmp(arg, "heavy") == 0 ||
                     strcmp(arg, "production") == 0;
                g->mix = strcmp(arg, "heavy") == 0        ? MIX_HEAVY
                         : strcmp(arg, "production") == 0 ? MIX_PRODUCTION
                                                          : MIX_CLASSIC;
                break;
        case O_CODES: {
                char *copy = rs_strdup(arg), *save = NULL;
                for (char *c = strtok_r(copy, ",", &save); c;
                     c = strtok_r(NULL, ",", &save)) {
                        g->codes = rs_realloc(g->codes, (g->ncodes + 1) * sizeof(char *));
                        g->codes[g->ncodes++] = rs_strdup(c);
                }
                free(copy);
                break;
        }
        }
        if (!ok)
                snprintf(errstr, errstr_size, "--%s: invalid value '%s'", opts[idx].name,
                         arg);
        return ok;
}

/* xorshift64*: small, fast, and the same on every platform. */
static uint64_t next(lg_t *g)
{
        g->rng ^= g->rng >> 12;
        g->rng ^= g->rng << 25;
        g->rng ^= g->rng >> 27;
        return g->rng * UINT64_C(2685821657736338717);
}

static int64_t below(lg_t *g, int64_t n)
{
        return (int64_t)(next(g) % (uint64_t)n);
}

typedef struct pacer {
        int64_t rate, sent, t0;
} pacer_t;

static void pace(pacer_t *p)
{
        p->sent++;
        if (p->rate <= 0)
                return;
        int64_t due = p->t0 + p->sent * 1000 / p->rate;
        rs_sleep_ms(due - rs_monotonic_ms());
}

/* One event out (twice when dup), paced. False on a publishing error. */
static bool emit(rs_publisher_t *pub, pacer_t *pc, const rs_event_t *ev, bool dup)
{
        char err[512];
        for (int i = 0; i <= (dup ? 1 : 0); i++) {
                if (!rs_publisher_send(pub, ev, NULL, err, sizeof(err))) {
                        fprintf(stderr, "refstream loadgen: %s\n", err);
                        return false;
                }
                pace(pc);
        }
        return true;
}

static rs_event_t signup(lg_t *g, int64_t k, rs_arena_t *a)
{
        return (rs_event_t){
            .type = RS_EV_SIGNUP,
            .event_id =
                rs_arena_printf(a, "lg%lld-s%lld", (long long)g->seed, (long long)k),
            .occurred_at_ms = g->start + k * 1000,
            .user_id =
                rs_arena_printf(a, "lg%lld-u%lld", (long long)g->seed, (long long)k),
            .email_hash = rs_arena_printf(a, "h%llx", (unsigned long long)next(g))};
}

/* Charge n (0 = the first) of user k, at `at`. */
static rs_event_t charge(lg_t *g, int64_t k, int n, int64_t at, int64_t amount,
                         const char *user, rs_arena_t *a)
{
        rs_event_t ch = {
            .type = RS_EV_PAYMENT,
            .event_id = rs_arena_printf(a, "lg%lld-c%lld%s%.0d", (long long)g->seed,
                                        (long long)k, n ? "-" : "", n),
            .occurred_at_ms = at,
            .user_id = user,
            .payment_id = rs_arena_printf(a, "lg%lld-pay%lld%s%.0d", (long long)g->seed,
                                          (long long)k, n ? "-" : "", n),
            .amount_minor = amount,
            .kind = RS_PAY_CHARGE};
        memcpy(ch.currency, g->currency, sizeof(ch.currency));
        return ch;
}

/* The refund of charge n of user k. */
static rs_event_t refund(lg_t *g, int64_t k, int n, const rs_event_t *ch, rs_arena_t *a)
{
        rs_event_t rf = *ch;
        rf.event_id = rs_arena_printf(a, "lg%lld-r%lld%s%.0d", (long long)g->seed,
                                      (long long)k, n ? "-" : "", n);
        rf.kind = RS_PAY_REFUND;
        rf.refund_of = ch->payment_id;
        rf.occurred_at_ms += 3600000;
        return rf;
}

/* classic: see the top of the file. */
static bool user_classic(lg_t *g, rs_publisher_t *pub, int64_t k, pacer_t *pc,
                         rs_arena_t *a)
{
        rs_event_t su = signup(g, k, a);
        if (g->ncodes && below(g, 100) < g->refpct)
                su.referral_code = below(g, 50) == 0
                                       ? "NOSUCHCODE"
                                       : g->codes[below(g, (int64_t)g->ncodes)];
        if (!emit(pub, pc, &su, false))
                return false;
        if (below(g, 100) >= g->chargepct)
                return true;
        int64_t at = su.occurred_at_ms + 60000 + below(g, 86400000);
        rs_event_t ch = charge(g, k, 0, at, 500 + below(g, 4501), su.user_id, a);
        if (!emit(pub, pc, &ch, false))
                return false;
        if (below(g, 100) != 0)
                return true;
        rs_event_t rf = refund(g, k, 0, &ch, a);
        return emit(pub, pc, &rf, false);
}

/* heavy: every sign-up referred, every referee pays once. */
static bool user_heavy(lg_t *g, rs_publisher_t *pub, int64_t k, pacer_t *pc,
                       rs_arena_t *a)
{
        rs_event_t su = signup(g, k, a);
        if (g->ncodes)
                su.referral_code = g->codes[below(g, (int64_t)g->ncodes)];
        int64_t at = su.occurred_at_ms + 60000 + below(g, 86400000);
        rs_event_t ch = charge(g, k, 0, at, 1000 + below(g, 4001), su.user_id, a);
        return emit(pub, pc, &su, false) && emit(pub, pc, &ch, false);
}

/* production: most events change nothing. A user's plan is drawn from the
 * user's own random sequence, so that it can be drawn again when a later
 * charge is due: in the stream, charge n of user k comes after the sign-ups
 * of PRODUCTION_DAY * n more users, as in a day-ordered stream where
 * charges follow days after the sign-up, not all at once. */
#define PRODUCTION_CHARGES_MAX 6
#define PRODUCTION_DAY         2000 /* users signing up per simulated day */

typedef struct plan {
        rs_event_t su;
        bool su_dup, early;
        int charges;
        rs_event_t ch[PRODUCTION_CHARGES_MAX], rf[PRODUCTION_CHARGES_MAX];
        bool ch_dup[PRODUCTION_CHARGES_MAX], refunded[PRODUCTION_CHARGES_MAX];
        bool rf_dup[PRODUCTION_CHARGES_MAX];
} plan_t;

static void plan_production(lg_t *g, int64_t k, plan_t *p, rs_arena_t *a)
{
        uint64_t stream = g->rng;
        g->rng = ((uint64_t)g->seed * UINT64_C(0x9E3779B97F4A7C15)) ^
                 ((uint64_t)(k + 1) * UINT64_C(0xBF58476D1CE4E5B9));
        g->rng = g->rng ? g->rng : 1;
        memset(p, 0, sizeof(*p));
        p->su = signup(g, k, a);
        if (g->ncodes && below(g, 100) < 10)
                p->su.referral_code = g->codes[below(g, (int64_t)g->ncodes)];
        p->charges = below(g, 100) < 60 ? 3 + (int)below(g, 4) : 0;
        p->early = p->charges && below(g, 100) < 5; /* first charge before the sign-up */
        p->su_dup = below(g, 200) == 0;
        int64_t at = p->su.occurred_at_ms + 60000 + below(g, 3600000);
        for (int n = 0; n < p->charges; n++) {
                /* The first charge qualifies (>= 10.00): whichever order the
                 * two topics are consumed in, it is the one that credits. */
                int64_t amount = n == 0 ? 1000 + below(g, 9001) : 500 + below(g, 9501);
                p->ch[n] = charge(g, k, n, at, amount, p->su.user_id, a);
                p->ch_dup[n] = below(g, 200) == 0;
                p->refunded[n] = below(g, 100) == 0;
                if (p->refunded[n]) {
                        p->rf[n] = refund(g, k, n, &p->ch[n], a);
                        p->rf_dup[n] = below(g, 200) == 0;
                }
                at += 86400000 + below(g, 2 * 86400000); /* one to three days */
        }
        g->rng = stream;
}

static bool production_charge(rs_publisher_t *pub, pacer_t *pc, const plan_t *p, int n)
{
        return emit(pub, pc, &p->ch[n], p->ch_dup[n]) &&
               (!p->refunded[n] || emit(pub, pc, &p->rf[n], p->rf_dup[n]));
}

/* Step t: user t's sign-up and first charge, then the later charges due. */
static bool step_production(lg_t *g, rs_publisher_t *pub, int64_t t, pacer_t *pc,
                            rs_arena_t *a)
{
        plan_t p;
        if (t < g->count) {
                plan_production(g, t, &p, a);
                if (!p.early && !emit(pub, pc, &p.su, p.su_dup))
                        return false;
                if (p.charges && !production_charge(pub, pc, &p, 0))
                        return false;
                if (p.early && !emit(pub, pc, &p.su, p.su_dup))
                        return false;
        }
        for (int n = 1; n < PRODUCTION_CHARGES_MAX; n++) {
                int64_t k = t - (int64_t)n * PRODUCTION_DAY;
                if (k < 0 || k >= g->count)
                        continue;
                plan_production(g, k, &p, a);
                if (n < p.charges && !production_charge(pub, pc, &p, n))
                        return false;
        }
        return true;
}

static int generate(const rs_config_t *cfg, lg_t *g)
{
        char err[1024];
        rs_codec_t *codec = rs_codec_new(err, sizeof(err));
        rs_publisher_t *pub =
            codec ? rs_publisher_new(cfg, codec, g->json, err, sizeof(err)) : NULL;
        if (!pub) {
                fprintf(stderr, "refstream loadgen: %s\n", err);
                rs_codec_destroy(codec);
                return RS_EXIT_FAILURE;
        }
        g->rng = (uint64_t)g->seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
        rs_arena_t a;
        rs_arena_init(&a, 64 * 1024);
        pacer_t pc = {.rate = g->rate, .t0 = rs_monotonic_ms()};
        bool ok = true;
        bool (*user)(lg_t *, rs_publisher_t *, int64_t, pacer_t *, rs_arena_t *) =
            g->mix == MIX_HEAVY        ? user_heavy
            : g->mix == MIX_PRODUCTION ? step_production
                                       : user_classic;
        int64_t steps =
            g->count + (g->mix == MIX_PRODUCTION
                            ? (int64_t)(PRODUCTION_CHARGES_MAX - 1) * PRODUCTION_DAY
                            : 0);
        for (int64_t k = 0; ok && k < steps; k++) {
                ok = user(g, pub, k, &pc, &a);
                rs_arena_reset(&a);
        }
        long failed = rs_publisher_finish(pub, 60000);
        double secs = (double)(rs_monotonic_ms() - pc.t0) / 1000.0;
        fprintf(stderr, "refstream loadgen: %ld events delivered in %.2f s (%.0f/s)\n",
                rs_publisher_delivered(pub), secs,
                secs > 0 ? (double)rs_publisher_delivered(pub) / secs : 0.0);
        rs_publisher_destroy(pub);
        rs_codec_destroy(codec);
        rs_arena_destroy(&a);
        return ok && failed == 0 ? RS_EXIT_OK : RS_EXIT_FAILURE;
}

int rs_cmd_loadgen(int argc, char **argv)
{
        lg_t g = {.seed = 1,
                  .count = 10000,
                  .refpct = 80,
                  .chargepct = 70,
                  .start = INT64_C(1767225600000),
                  .currency = "USD"};
        const rs_cli_t cli = {
            .command = "refstream loadgen",
            .usage =
                "refstream loadgen [OPTIONS] [SETTINGS]\n\n"
                "Publishes a seeded synthetic stream of sign-ups, charges and refunds "
                "to the input topics.\nThe same seed and options give the same events.",
            .opts = opts,
            .nopts = RS_ARRAY_SIZE(opts),
            .handler = on_opt,
            .ctx = &g,
            .config_flags = true,
        };
        rs_config_t cfg;
        int rc = rs_cli_config_only(&cli, argc, argv, &cfg);
        if (rc < 0)
                rc = generate(&cfg, &g);
        for (size_t i = 0; i < g.ncodes; i++)
                free(g.codes[i]);
        free(g.codes);
        rs_config_free(&cfg);
        return rc;
}
