/* The shared run set (bench_runs.h). */
#include "bench/bench_runs.h"

#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const bench_optimizers[] = {"adam", "sgd", "lion"};
static const char *const bench_teams[] = {"vision", "nlp", "speech", "rl",
                                          "infra"};

void
bench_runs_init(struct bench_runs *b)
{
    for (size_t i = 0; i < BENCH_RUNS_PER_FILL; i++)
        proto_metrics_init(&b->mb[i]);
}

void
bench_runs_free(struct bench_runs *b)
{
    for (size_t i = 0; i < BENCH_RUNS_PER_FILL; i++)
        proto_metrics_free(&b->mb[i]);
}

void
bench_runs_fill(struct bench_runs *b, size_t base, size_t k, struct rv_rng *rng)
{
    static const Rv__RunStatus statuses[] = {
        RV__RUN_STATUS__FINISHED, RV__RUN_STATUS__FINISHED,
        RV__RUN_STATUS__FAILED, RV__RUN_STATUS__RUNNING,
        RV__RUN_STATUS__KILLED};
    for (size_t i = 0; i < k; i++) {
        size_t r = base + i;
        snprintf(b->ids[i], sizeof b->ids[i], "run%09zu", r);
        snprintf(b->proj[i], sizeof b->proj[i], "proj-%zu", r % 10);
        snprintf(b->exp[i], sizeof b->exp[i], "exp-%zu", (r / 10) % 20);
        snprintf(b->lr[i], sizeof b->lr[i], "%.4f",
                 0.0001 * (double)(1 + rv_rng_below(rng, 100)));
        Rv__RunCreate *rc = &b->rc[i];
        rv__run_create__init(rc);
        rc->run_id = b->ids[i];
        rc->team = (char *)bench_teams[r % 5];
        rc->project = b->proj[i];
        rc->experiment = b->exp[i];
        rc->name = b->ids[i];
        rc->created_at_ms = 1700000000000 + (int64_t)r * 1000 +
                            (int64_t)rv_rng_below(rng, 1000);
        rc->has_status = 1;
        rc->status = statuses[rv_rng_below(rng, 5)];
        for (int j = 0; j < 4; j++)
            rv__kv__init(&b->kv[i][j]);
        b->kv[i][0].key = "optimizer";
        b->kv[i][0].value = (char *)bench_optimizers[rv_rng_below(rng, 3)];
        b->kv[i][1].key = "lr";
        b->kv[i][1].value = b->lr[i];
        b->kv[i][2].key = "batch_size";
        b->kv[i][2].value = rv_rng_below(rng, 2) ? "64" : "128";
        b->kv[i][3].key = "team";
        b->kv[i][3].value = (char *)bench_teams[rv_rng_below(rng, 5)];
        for (int j = 0; j < 3; j++)
            b->params[i][j] = &b->kv[i][j];
        b->tags[i][0] = &b->kv[i][3];
        rc->n_params = 3;
        rc->params = b->params[i];
        rc->n_tags = 1;
        rc->tags = b->tags[i];
        struct proto_metrics_builder *mb = &b->mb[i];
        int64_t ts = rc->created_at_ms + 60000;
        double accuracy = rv_rng_double(rng);
        double loss = 2.0 * rv_rng_double(rng);
        proto_metrics_reset(mb);
        if (proto_metrics_add(mb, "accuracy", NULL, 100, ts, accuracy, NULL) !=
                RV_OK ||
            proto_metrics_add(mb, "loss", NULL, 100, ts, loss, NULL) != RV_OK)
            abort();
        proto_metrics_view(mb, &b->m[i]);
        rv__log_batch__init(&b->lb[i]);
        b->lb[i].run_id = b->ids[i];
        b->lb[i].metrics = &b->m[i];
        rv__command__init(&b->cmd[2 * i]);
        b->cmd[2 * i].body_case = RV__COMMAND__BODY_RUN_CREATE;
        b->cmd[2 * i].run_create = rc;
        rv__command__init(&b->cmd[2 * i + 1]);
        b->cmd[2 * i + 1].body_case = RV__COMMAND__BODY_LOG_BATCH;
        b->cmd[2 * i + 1].log_batch = &b->lb[i];
        b->cmds[2 * i] = &b->cmd[2 * i];
        b->cmds[2 * i + 1] = &b->cmd[2 * i + 1];
    }
}

void
bench_runs_filter(char *out, size_t cap, const char *filter, struct rv_rng *rng)
{
    char lr[16];
    snprintf(lr, sizeof lr, "%.4f",
             0.0001 * (double)(1 + rv_rng_below(rng, 100)));
    const char *at = strstr(filter, "$LR");
    if (at != NULL)
        snprintf(out, cap, "%.*s%s%s", (int)(at - filter), filter, lr, at + 3);
    else
        snprintf(out, cap, "%s", filter);
}
