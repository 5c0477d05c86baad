/* runvault demo (maint.h): six sample runs of a sweep written straight
 * into the store as raft would apply them (once: an existing store is
 * reused), a filtered and ordered query, a downsampled metric history,
 * then verify. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/maint.h"
#include "proto/metrics_builder.h"
#include "proto/proto.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Apply one command as its own entry at *index. */
static int
demo__apply(struct store *s, uint64_t *index, Rv__Command *cmd, char *errmsg)
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

/* 200 steps of loss and accuracy of run number r, columnar. */
static int
demo__metrics(struct store *s, uint64_t *index, char *run_id, int r,
              int64_t created_at_ms, char *errmsg)
{
    struct proto_metrics_builder mb;
    int rc = RV_OK;
    proto_metrics_init(&mb);
    for (int i = 0; rc == RV_OK && i < 400; i++) {
        int step = i / 2;
        double v = i % 2 == 0 ? 2.0 / (1.0 + step * (r + 1) * 0.01)
                              : 1.0 - 1.0 / (1.0 + step * (r + 1) * 0.02);
        rc = proto_metrics_add(&mb, i % 2 == 0 ? "loss" : "accuracy", NULL,
                               step, created_at_ms + step * 1000, v, NULL);
    }
    if (rc != RV_OK) {
        snprintf(errmsg, RV_ERRMSG_SIZE, "out of memory");
        proto_metrics_free(&mb);
        return rc;
    }
    Rv__Metrics m;
    proto_metrics_view(&mb, &m);
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    lb.run_id = run_id;
    lb.metrics = &m;
    Rv__Command cmd = RV__COMMAND__INIT;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    rc = demo__apply(s, index, &cmd, errmsg);
    proto_metrics_free(&mb);
    return rc;
}

static int
demo__ingest(struct store *s, uint64_t *index, char *errmsg)
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
        rc = demo__apply(s, index, &cmd, errmsg);
        if (rc == RV_OK)
            rc = demo__metrics(s, index, run_id, r, c.created_at_ms, errmsg);
        Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
        st.run_id = run_id;
        st.status = r == 4 ? RV__RUN_STATUS__FAILED : RV__RUN_STATUS__FINISHED;
        st.has_ended_at_ms = 1;
        st.ended_at_ms = c.created_at_ms + 200000;
        cmd.body_case = RV__COMMAND__BODY_RUN_STATUS;
        cmd.run_status = &st;
        if (rc == RV_OK)
            rc = demo__apply(s, index, &cmd, errmsg);
    }
    return rc;
}

static int
demo__query(struct store *s, char *errmsg)
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
    int rc = store_read_begin(s, STORE_EVERY_TEAM, &r, errmsg);
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

int
maint_demo(struct maint *m)
{
    struct store_config cfg = {m->data_dir, 0, 0, &m->log, NULL};
    struct store *s;
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rc = store_open(&s, &cfg, errmsg);
    if (rc != RV_OK) {
        fprintf(stderr, "demo: %s: %s\n", rv_strerror(rc), errmsg);
        return maint_exit_code(rc);
    }
    uint64_t index = store_applied_index(s);
    if (index == 0)
        rc = demo__ingest(s, &index, errmsg);
    printf("store %s: applied index %llu\n", m->data_dir,
           (unsigned long long)store_applied_index(s));
    if (rc == RV_OK)
        rc = demo__query(s, errmsg);
    if (rc == RV_OK)
        rc = store_sync(s, errmsg);
    store_close(s);
    if (rc != RV_OK) {
        fprintf(stderr, "demo: %s: %s\n", rv_strerror(rc), errmsg);
        return maint_exit_code(rc);
    }
    printf("\n");
    return maint_verify(m);
}
