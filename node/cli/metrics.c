/* runvault metrics RUN_ID --key K: one series as a table, CSV or JSON. */
#include "base/clock.h"
#include "base/exit.h"
#include "base/parse.h"
#include "node/cli/cli_int.h"

#include <string.h>

/* {"run_id","key","context","points":[[step,timestamp,value],...]} */
static void
cli__metrics_json(const char *run_id, const char *key, const char *ctx,
                  const struct cli_points *pts)
{
    int prec = 0;
    json_t *list = json_array();
    for (size_t i = 0; i < pts->n; i++) {
        json_t *p = json_array();
        json_array_append_new(p, json_integer(pts->steps[i]));
        json_array_append_new(p, json_integer(pts->ts[i]));
        json_array_append_new(p, cli__json_value(pts->values[i], &prec));
        json_array_append_new(list, p);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "run_id", cli__json_string(run_id));
    json_object_set_new(doc, "key", cli__json_string(key));
    json_object_set_new(doc, "context", cli__json_string(ctx));
    json_object_set_new(doc, "points", list);
    cli__json_print(stdout, doc, prec);
}

int
cli__metrics(struct cli *cl, const struct cli_args *a)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    uint64_t ds = 0;
    if (a->v[O_KEY] == NULL || a->v[O_KEY][0] == '\0') {
        fprintf(stderr, "runvault metrics: --key KEY is required\n");
        return RV_EXIT_USAGE;
    }
    if ((a->v[O_MIN_STEP] && rv_parse_i64(a->v[O_MIN_STEP], &lo) != 0) ||
        (a->v[O_MAX_STEP] && rv_parse_i64(a->v[O_MAX_STEP], &hi) != 0) ||
        (a->v[O_DOWNSAMPLE] && (rv_parse_u64(a->v[O_DOWNSAMPLE], &ds) != 0 ||
                                ds > CONTRACT_MAX_DOWNSAMPLE))) {
        fprintf(stderr,
                "runvault metrics: --min-step and --max-step want integers, "
                "--downsample 0..%d\n",
                CONTRACT_MAX_DOWNSAMPLE);
        return RV_EXIT_USAGE;
    }
    if (a->v[O_JSON] != NULL && a->v[O_CSV] != NULL) {
        fprintf(stderr, "runvault metrics: --json or --csv, not both\n");
        return RV_EXIT_USAGE;
    }
    struct cli_points pts;
    memset(&pts, 0, sizeof pts);
    const char *ctx = a->v[O_CONTEXT] ? a->v[O_CONTEXT] : "";
    int rc = cli__history(cl, a->pos[0], a->v[O_KEY], ctx, lo, hi, (uint32_t)ds,
                          &pts);
    if (rc != RV_OK) {
        cli__points_free(&pts);
        return cli__fail(cl, rc, cli__exit_for(rc));
    }
    char num[CLI_NUM_BYTES], when[CLI_TIME_BYTES];
    if (a->v[O_JSON] != NULL) {
        cli__metrics_json(a->pos[0], a->v[O_KEY], ctx, &pts);
    } else if (a->v[O_CSV] != NULL) {
        printf("step,timestamp,value\n");
        for (size_t i = 0; i < pts.n; i++) {
            cli__fmt_double(pts.values[i], num);
            printf("%lld,%lld,%s\n", (long long)pts.steps[i],
                   (long long)pts.ts[i], num);
        }
    } else {
        printf("%12s  %-20s  %s\n", "STEP", "TIME", "VALUE");
        for (size_t i = 0; i < pts.n; i++) {
            cli__fmt_double(pts.values[i], num);
            cli__fmt_time(pts.ts[i], when);
            printf("%12lld  %-20s  %s\n", (long long)pts.steps[i], when, num);
        }
    }
    cli__points_free(&pts);
    return RV_EXIT_OK;
}
