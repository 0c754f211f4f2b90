/*
 * rs-mock-kafka: librdkafka's mock Kafka cluster as a standalone process.
 *
 * Test infrastructure, not part of the product. Integration tests usually start
 * the mock cluster in-process; this program exists for cross-process tests where
 * an independent client (kcat, a second refstream process) must reach the same
 * cluster. scripts/stack.sh `up mock` starts it in the background and reads the
 * bootstrap line it prints.
 *
 * Output contract: exactly one line on stdout,
 *     REFSTREAM_KAFKA_BROKERS=<host:port,...>
 * flushed as soon as the cluster listens. Everything else goes to stderr.
 * SIGTERM or SIGINT destroys the cluster and exits 0.
 *
 * Limits of the mock (librdkafka 2.0.2): at most 100,000 messages or 5 MiB per
 * partition, no CreateTopics admin API (hence --topic), no transaction markers.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MOCK_MAX_TOPICS 256

/* The topics refstream reads and writes by default (SPEC.md). */
static const char *const default_topics[] = {
    "signups", "payments", "referral-credited", "referral-reversed", "refstream-dlq",
};

struct mock_opts {
        int partitions;
        int brokers;
        const char *topics[MOCK_MAX_TOPICS];
        int topic_cnt;
};

static void usage(FILE *out, const char *prog)
{
        fprintf(
            out,
            "Usage: %s [--partitions N] [--brokers N] [--topic NAME]...\n"
            "\n"
            "Starts a librdkafka mock Kafka cluster on 127.0.0.1, creates the default\n"
            "refstream topics (signups, payments, referral-credited, referral-reversed,\n"
            "refstream-dlq) plus any --topic, prints\n"
            "    REFSTREAM_KAFKA_BROKERS=<bootstrap servers>\n"
            "on stdout and runs until SIGTERM or SIGINT.\n"
            "\n"
            "  --partitions N  partitions per topic (default 4)\n"
            "  --brokers N     mock brokers in the cluster (default 1)\n"
            "  --topic NAME    create an extra topic (repeatable)\n"
            "  --help          show this text\n",
            prog);
}

/* Parses a decimal int in [min, max]; false on junk or overflow. */
static bool parse_int(const char *s, int min, int max, int *out)
{
        char *end = NULL;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
                return false;
        *out = (int)v;
        return true;
}

static bool add_topic(struct mock_opts *o, const char *name)
{
        if (name[0] == '\0' || o->topic_cnt >= MOCK_MAX_TOPICS)
                return false;
        o->topics[o->topic_cnt++] = name;
        return true;
}

/* Returns 0 to run, 1 after --help, 2 on bad usage (the exit codes). */
static int parse_args(int argc, char **argv, struct mock_opts *o)
{
        static const struct option longopts[] = {
            {"partitions", required_argument, NULL, 'p'},
            {"brokers", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        size_t i;
        int c;

        o->partitions = 4;
        o->brokers = 1;
        o->topic_cnt = 0;
        for (i = 0; i < sizeof(default_topics) / sizeof(default_topics[0]); i++)
                add_topic(o, default_topics[i]);

        while ((c = getopt_long(argc, argv, "p:b:t:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        if (!parse_int(optarg, 1, 10000, &o->partitions))
                                goto bad;
                        break;
                case 'b':
                        if (!parse_int(optarg, 1, 32, &o->brokers))
                                goto bad;
                        break;
                case 't':
                        if (!add_topic(o, optarg))
                                goto bad;
                        break;
                case 'h':
                        usage(stdout, argv[0]);
                        return 1;
                default:
                        goto bad;
                }
        }
        if (optind != argc)
                goto bad;
        return 0;
bad:
        usage(stderr, argv[0]);
        return 2;
}

/* The rd_kafka_t only hosts the cluster; it never talks to a broker itself. */
static rd_kafka_t *host_new(void)
{
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;

        /* log_level 4 (warning): the host has no bootstrap.servers on purpose, and
         * the notice saying so would only confuse whoever reads the log. */
        if (rd_kafka_conf_set(conf, "client.id", "rs-mock-kafka", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) !=
                RD_KAFKA_CONF_OK) {
                fprintf(stderr, "rs-mock-kafka: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "rs-mock-kafka: rd_kafka_new: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        /* conf is now owned by rk */
        return rk;
}

static bool create_topics(rd_kafka_mock_cluster_t *mc, const struct mock_opts *o)
{
        int rf = o->brokers < 3 ? o->brokers : 3;
        int i;

        for (i = 0; i < o->topic_cnt; i++) {
                rd_kafka_resp_err_t err =
                    rd_kafka_mock_topic_create(mc, o->topics[i], o->partitions, rf);
                /* A repeated --topic is harmless, not an error. */
                if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                        fprintf(stderr, "rs-mock-kafka: create topic %s: %s\n",
                                o->topics[i], rd_kafka_err2str(err));
                        return false;
                }
        }
        return true;
}

/*
 * Blocks until SIGTERM or SIGINT. The signals were blocked before librdkafka
 * started its threads, so they inherited the mask and only sigwait() sees them:
 * no handler, no race, no polling.
 */
static int wait_for_stop(const sigset_t *set)
{
        int sig = 0;
        int err;

        do {
                err = sigwait(set, &sig);
        } while (err == EINTR);
        if (err != 0) {
                fprintf(stderr, "rs-mock-kafka: sigwait: %s\n", strerror(err));
                return -1;
        }
        return sig;
}

int main(int argc, char **argv)
{
        struct mock_opts opts;
        rd_kafka_mock_cluster_t *mc = NULL;
        rd_kafka_t *rk = NULL;
        sigset_t set;
        int rc = 1;
        int sig;

        switch (parse_args(argc, argv, &opts)) {
        case 0:
                break;
        case 1:
                return 0;
        default:
                return 2;
        }

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
                fprintf(stderr, "rs-mock-kafka: cannot block signals\n");
                return 1;
        }

        rk = host_new();
        if (!rk)
                goto out;
        mc = rd_kafka_mock_cluster_new(rk, opts.brokers);
        if (!mc) {
                fprintf(stderr, "rs-mock-kafka: rd_kafka_mock_cluster_new failed\n");
                goto out;
        }
        if (!create_topics(mc, &opts))
                goto out;

        /* The one line stack.sh waits for; flush because stdout is a file. */
        printf("REFSTREAM_KAFKA_BROKERS=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        if (fflush(stdout) != 0) {
                fprintf(stderr, "rs-mock-kafka: stdout: %s\n", strerror(errno));
                goto out;
        }

        sig = wait_for_stop(&set);
        if (sig > 0) {
                fprintf(stderr, "rs-mock-kafka: signal %d, shutting down\n", sig);
                rc = 0;
        }
out:
        if (mc)
                rd_kafka_mock_cluster_destroy(mc);
        if (rk)
                rd_kafka_destroy(rk);
        return rc;
}
