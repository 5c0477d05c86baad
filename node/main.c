/* runvault: the command-line entry point.
 *
 *   runvault demo [--data-dir DIR]           store demo: ingest, query, verify
 *   runvault verify [--data-dir DIR]         check every vlog CRC, the digest
 *   runvault rebuild-index [--data-dir DIR]  regenerate LMDB from the vlog
 *
 *   runvault serve [flags]                   run a node (node/serve.c)
 *   runvault cluster VERB [flags]            membership (node/cluster.c)
 *   runvault ls|show|metrics|logs|ingest|export|import
 *                                            client commands
 *                                            (node/client_cmds.c)
 *
 * Exit codes: base/exit.h (one table for every command). */
#include "base/clock.h"
#include "base/exit.h"
#include "base/log.h"
#include "node/cli/cli.h"
#include "node/defaults.h"
#include "node/serve.h"
#include "proto/proto.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char rv_usage[] =
    "usage: runvault <command> [--data-dir DIR] [--log-level LEVEL]\n"
    "\n"
    "commands:\n"
    "  serve          run a node (runvault serve --help for its flags)\n"
    "  cluster        status | add | remove | transfer (through any node)\n"
    "  demo           ingest sample runs into the store, query them, verify\n"
    "  verify         check every vlog record's CRC and recompute the digest\n"
    "  rebuild-index  regenerate the LMDB index from the vlog alone\n"
    "\n"
    "client commands (runvault COMMAND --help for each):\n";

static const char rv_usage_tail[] =
    "\n"
    "DIR defaults to $RUNVAULT_DATA_DIR or " NODE_DEFAULT_DATA_DIR ".\n"
    "Client commands reach a cluster through --endpoint LIST or\n"
    "$RUNVAULT_ENDPOINT (default " NODE_DEFAULT_ENDPOINT ").\n"
    "Exit codes: 0 ok, 1 bad arguments, 2 corrupt data, 3 local failure,\n"
    "4 disk error, 5 raft stopped, 6 node removed, 7 data dir locked, 8\n"
    "cannot listen, 9 no node answered, 10 bad input data, 11 run or\n"
    "series not found, 12 request refused.\n";

static void
rv_print_usage(void)
{
    fputs(rv_usage, stderr);
    fputs(cli_usage_summary, stderr);
    fputs(rv_usage_tail, stderr);
}

struct rv_cli {
    const char *command;
    const char *data_dir;
    struct rv_log log;
};

static int
rv_exit_code(int rc)
{
    if (rc == RV_OK)
        return RV_EXIT_OK;
    if (rc == RV_ECORRUPT)
        return RV_EXIT_CORRUPT;
    return RV_EXIT_FAILURE;
}

static int
rv_cli_parse(int argc, char **argv, struct rv_cli *cli)
{
    const char *env = getenv("RUNVAULT_DATA_DIR");
    cli->data_dir = env != NULL && env[0] != '\0' ? env : NODE_DEFAULT_DATA_DIR;
    cli->command = NULL;
    cli->log = (struct rv_log){rv_log_stderr, NULL, RV_LOG_INFO};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--data-dir") == 0 || strcmp(a, "--log-level") == 0) &&
            i + 1 >= argc) {
            fprintf(stderr, "runvault: %s needs a value\n", a);
            return -1;
        }
        if (strcmp(a, "--data-dir") == 0) {
            cli->data_dir = argv[++i];
        } else if (strcmp(a, "--log-level") == 0) {
            enum rv_log_level lvl;
            if (rv_log_level_parse(argv[++i], &lvl) != 0) {
                fprintf(stderr, "runvault: unknown log level '%s'\n", argv[i]);
                return -1;
            }
            cli->log.min_level = (int)lvl;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return -1;
        } else if (a[0] != '-' && cli->command == NULL) {
            cli->command = a;
        } else {
            fprintf(stderr, "runvault: unexpected argument '%s'\n", a);
            return -1;
        }
    }
    return cli->command != NULL ? 0 : -1;
}

static void
rv_print_check(const struct store_check *chk)
{
    char stored[2 * STORE_DIGEST_BYTES + 1],
        computed[2 * STORE_DIGEST_BYTES + 1];
    store_digest_hex(chk->stored_digest, stored);
    store_digest_hex(chk->computed_digest, computed);
    printf("segments:        %llu\n", (unsigned long long)chk->n_segments);
    printf("records:         %llu\n", (unsigned long long)chk->n_records);
    printf("vlog last index: %llu\n", (unsigned long long)chk->vlog_last_index);
    printf("applied index:   %llu\n", (unsigned long long)chk->applied_index);
    printf("stored digest:   %s\n", stored);
    printf("computed digest: %s\n", computed);
}

static int
rv_cmd_verify(struct rv_cli *cli)
{
    struct store_check chk;
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rc = store_verify(cli->data_dir, &cli->log, &chk, errmsg);
    rv_print_check(&chk);
    if (rc != RV_OK) {
        fprintf(stderr, "verify: FAILED: %s: %s\n", rv_strerror(rc), errmsg);
        return rv_exit_code(rc);
    }
    printf("verify: OK (every CRC holds, digests equal)\n");
    return RV_EXIT_OK;
}

static int
rv_cmd_rebuild(struct rv_cli *cli)
{
    struct store_check chk;
    char errmsg[RV_ERRMSG_SIZE] = "";
    uint64_t t0 = rv_clock_mono_ns();
    int rc = store_rebuild_index(cli->data_dir, &cli->log, &chk, errmsg);
    if (rc != RV_OK) {
        fprintf(stderr, "rebuild-index: FAILED: %s: %s\n", rv_strerror(rc),
                errmsg);
        return rv_exit_code(rc);
    }
    rv_print_check(&chk);
    printf("rebuild-index: rebuilt to index %llu in %.1f ms; digest %s the "
           "previous index's\n",
           (unsigned long long)chk.vlog_last_index,
           (double)(rv_clock_mono_ns() - t0) / 1e6,
           chk.is_digest_equal ? "equals" : "DIFFERS FROM");
    return chk.is_digest_equal || chk.applied_index == 0 ? RV_EXIT_OK
                                                         : RV_EXIT_CORRUPT;
}

/* ---- demo -------------------------------------------------------------- */

/* Apply one command as its own entry at *index. */
static int
rv_demo_apply(struct store *s, uint64_t *index, Rv__Command *cmd, char *errmsg)
{
    Rv__CommandBatch batch = RV__COMMAND_BATCH__INIT;
    Rv__Command *cmds[1] = {cmd};
    struct rv_buf buf;
    struct store_result *res;
    size_t n;
    batch.n_commands = 1;
    batch.commands = cmds;
    rv_buf_init(&buf);
    int rc = proto_envelope_encode(&batch, &buf, errmsg);
    if (rc == RV_OK)
        rc = store_apply(s, ++*index, buf.data, buf.len, &res, &n, errmsg);
    rv_buf_free(&buf);
    if (rc == RV_OK && n == 1 && res[0].code != RV_OK) {
        snprintf(errmsg, RV_ERRMSG_SIZE, "%s", res[0].message);
        rc = res[0].code;
    }
    if (rc == RV_OK)
        free(res);
    return rc;
}

static int
rv_demo_ingest(struct store *s, uint64_t *index, char *errmsg)
{
    static const char *const optimizers[] = {"adam", "sgd", "lion"};
    char run_id[32], lr[16];
    int rc = RV_OK;
    for (int r = 0; rc == RV_OK && r < 6; r++) {
        Rv__Command cmd = RV__COMMAND__INIT;
        Rv__RunCreate c = RV__RUN_CREATE__INIT;
        Rv__KV p1 = RV__KV__INIT, p2 = RV__KV__INIT, *params[2] = {&p1, &p2};
        snprintf(run_id, sizeof run_id, "demo-run-%d", r);
        snprintf(lr, sizeof lr, "%g", 0.001 * (r + 1));
        c.run_id = run_id;
        c.project = "vision";
        c.experiment = "resnet-sweep";
        c.name = run_id;
        c.created_at_ms = 1700000000000 + r * 60000;
        p1.key = "optimizer";
        p1.value = (char *)optimizers[r % 3];
        p2.key = "lr";
        p2.value = lr;
        c.n_params = 2;
        c.params = params;
        cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
        cmd.run_create = &c;
        rc = rv_demo_apply(s, index, &cmd, errmsg);
        /* 200 steps of loss and accuracy, columnar. */
        enum { N = 400 };
        char *keys[2] = {"loss", "accuracy"};
        uint32_t key_idx[N];
        int64_t steps[N], ts[N];
        double vals[N];
        for (int i = 0; i < N; i++) {
            int step = i / 2;
            key_idx[i] = (uint32_t)(i % 2);
            steps[i] = step;
            ts[i] = c.created_at_ms + step * 1000;
            vals[i] = i % 2 == 0 ? 2.0 / (1.0 + step * (r + 1) * 0.01)
                                 : 1.0 - 1.0 / (1.0 + step * (r + 1) * 0.02);
        }
        Rv__Metrics m = RV__METRICS__INIT;
        m.n_keys = 2;
        m.keys = keys;
        m.n_key_idx = m.n_steps = m.n_timestamps_ms = m.n_values = N;
        m.key_idx = key_idx;
        m.steps = steps;
        m.timestamps_ms = ts;
        m.values = vals;
        Rv__LogBatch lb = RV__LOG_BATCH__INIT;
        lb.run_id = run_id;
        lb.metrics = &m;
        cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
        cmd.log_batch = &lb;
        if (rc == RV_OK)
            rc = rv_demo_apply(s, index, &cmd, errmsg);
        Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
        st.run_id = run_id;
        st.status = r == 4 ? RV__RUN_STATUS__FAILED : RV__RUN_STATUS__FINISHED;
        st.has_ended_at_ms = 1;
        st.ended_at_ms = c.created_at_ms + 200000;
        cmd.body_case = RV__COMMAND__BODY_RUN_STATUS;
        cmd.run_status = &st;
        if (rc == RV_OK)
            rc = rv_demo_apply(s, index, &cmd, errmsg);
    }
    return rc;
}

static int
rv_demo_query(struct store *s, char *errmsg)
{
    struct store_read *r;
    struct store_page page;
    const char *filter = "params.optimizer IN ('adam', 'lion') AND "
                         "attributes.status = 'FINISHED' AND "
                         "metrics.accuracy > 0.5";
    struct store_query q = {.project = "vision",
                            .filter = filter,
                            .order_by = "metrics.accuracy DESC",
                            .is_full = 1};
    int rc = store_read_begin(s, &r, errmsg);
    if (rc != RV_OK)
        return rc;
    uint64_t t0 = rv_clock_mono_ns();
    rc = store_query_runs(r, &q, &page, errmsg);
    double ms = (double)(rv_clock_mono_ns() - t0) / 1e6;
    if (rc == RV_OK) {
        printf("\nquery: %s\norder: metrics.accuracy DESC (%.3f ms)\n", filter,
               ms);
        printf("%-12s %-10s %-9s %s\n", "RUN", "OPTIMIZER", "STATUS",
               "ACCURACY");
        for (size_t i = 0; i < page.n_runs; i++) {
            const struct store_run *run = &page.runs[i];
            const char *opt = "";
            double acc = 0;
            for (size_t k = 0; k < run->n_params; k++)
                if (strcmp(run->params[k].key, "optimizer") == 0)
                    opt = run->params[k].value;
            for (size_t k = 0; k < run->n_summary; k++)
                if (strcmp(run->summary[k].key, "accuracy") == 0)
                    acc = run->summary[k].last;
            printf("%-12s %-10s %-9s %.4f\n", run->run_id, opt,
                   proto_status_name((Rv__RunStatus)run->status), acc);
        }
        store_page_free(&page);
    }
    struct store_history_query hq = {"demo-run-2", "loss",    NULL,
                                     INT64_MIN,    INT64_MAX, 8};
    struct store_point *pts;
    size_t n;
    if (rc == RV_OK)
        rc = store_metric_history(r, &hq, &pts, &n, errmsg);
    if (rc == RV_OK) {
        printf("\nloss of demo-run-2, downsampled to %zu of 200 points:\n", n);
        for (size_t i = 0; i < n; i++)
            printf("  step %3lld  %.4f\n", (long long)pts[i].step,
                   pts[i].value);
        free(pts);
    }
    store_read_end(r);
    return rc;
}

static int
rv_cmd_demo(struct rv_cli *cli)
{
    struct store_config cfg = {cli->data_dir, 0, 0, &cli->log, NULL};
    struct store *s;
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rc = store_open(&s, &cfg, errmsg);
    if (rc != RV_OK) {
        fprintf(stderr, "demo: %s: %s\n", rv_strerror(rc), errmsg);
        return rv_exit_code(rc);
    }
    uint64_t index = store_applied_index(s);
    if (index == 0)
        rc = rv_demo_ingest(s, &index, errmsg);
    printf("store %s: applied index %llu\n", cli->data_dir,
           (unsigned long long)store_applied_index(s));
    if (rc == RV_OK)
        rc = rv_demo_query(s, errmsg);
    if (rc == RV_OK)
        rc = store_sync(s, errmsg);
    store_close(s);
    if (rc != RV_OK) {
        fprintf(stderr, "demo: %s: %s\n", rv_strerror(rc), errmsg);
        return rv_exit_code(rc);
    }
    printf("\n");
    return rv_cmd_verify(cli);
}

int
main(int argc, char **argv)
{
    struct rv_cli cli;
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return rv_cmd_serve(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "cluster") == 0)
        return rv_cmd_cluster(argc - 2, argv + 2);
    if (argc >= 2 && cli_is_command(argv[1]))
        return cli_main(argc - 1, argv + 1);
    if (rv_cli_parse(argc, argv, &cli) != 0) {
        rv_print_usage();
        return RV_EXIT_USAGE;
    }
    if (strcmp(cli.command, "demo") == 0)
        return rv_cmd_demo(&cli);
    if (strcmp(cli.command, "verify") == 0)
        return rv_cmd_verify(&cli);
    if (strcmp(cli.command, "rebuild-index") == 0)
        return rv_cmd_rebuild(&cli);
    fprintf(stderr, "runvault: unknown command '%s'\n\n", cli.command);
    rv_print_usage();
    return RV_EXIT_USAGE;
}
