/* The run set the query benchmarks share (bench_store applies it to a
 * store, bench_gateway writes it through a node): per run a run_create
 * (team, project proj-(r % 10), experiment exp-(r / 10 % 20), a status, the
 * params optimizer/lr/batch_size and the tag team) and a log batch with the
 * metrics accuracy and loss. Deterministic for a given rng seed. */
#ifndef RV_BENCH_BENCH_RUNS_H
#define RV_BENCH_BENCH_RUNS_H

#include "base/clock.h"
#include "proto/metrics_builder.h"
#include "proto/runvault.pb-c.h"

#include <stddef.h>

#define BENCH_RUNS_PER_FILL 250

/* Commands for up to BENCH_RUNS_PER_FILL runs; everything the command
 * pointers reach lives here, valid until the next bench_runs_fill. */
struct bench_runs {
    Rv__Command cmd[2 * BENCH_RUNS_PER_FILL], *cmds[2 * BENCH_RUNS_PER_FILL];
    Rv__RunCreate rc[BENCH_RUNS_PER_FILL];
    Rv__LogBatch lb[BENCH_RUNS_PER_FILL];
    Rv__Metrics m[BENCH_RUNS_PER_FILL];
    Rv__KV kv[BENCH_RUNS_PER_FILL][4], *params[BENCH_RUNS_PER_FILL][3],
        *tags[BENCH_RUNS_PER_FILL][1];
    char ids[BENCH_RUNS_PER_FILL][32], proj[BENCH_RUNS_PER_FILL][16],
        exp[BENCH_RUNS_PER_FILL][16], lr[BENCH_RUNS_PER_FILL][16];
    struct proto_metrics_builder mb[BENCH_RUNS_PER_FILL]; /* m[i]'s points. */
};

/* Make b empty, before its first fill; bench_runs_free() frees what the
 * fills allocated (b is empty again after it). */
void bench_runs_init(struct bench_runs *b);
void bench_runs_free(struct bench_runs *b);

/* Fill the commands of runs [base, base + k), k <= BENCH_RUNS_PER_FILL,
 * into b->cmds[0, 2k): run r's create, then its log batch. Aborts if out
 * of memory. */
void bench_runs_fill(struct bench_runs *b, size_t base, size_t k,
                     struct rv_rng *rng);

/* filter into out[cap] with its "$LR" (if any) replaced by one of the run
 * set's lr values, drawn from rng whether or not filter has one (so the
 * draws that follow do not depend on the filter). */
void bench_runs_filter(char *out, size_t cap, const char *filter,
                       struct rv_rng *rng);

#endif /* RV_BENCH_BENCH_RUNS_H */
