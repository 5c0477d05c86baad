/* runvault metrics RUN_ID --key K: one series as a table, CSV or JSON. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <string.h>

int
cli__metrics(struct cli *cl, const struct cli_args *a)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    uint64_t ds = 0;
    if (a->v[O_KEY] == NULL || a->v[O_KEY][0] == '\0') {
        fprintf(stderr, "runvault metrics: --key KEY is required\n");
        return RV_EXIT_USAGE;
    }
    if ((a->v[O_MIN_STEP] && cli_parse_i64(a->v[O_MIN_STEP], &lo) != 0) ||
        (a->v[O_MAX_STEP] && cli_parse_i64(a->v[O_MAX_STEP], &hi) != 0) ||
        (a->v[O_DOWNSAMPLE] && (cli_parse_u64(a->v[O_DOWNSAMPLE], &ds) != 0 ||
                                ds > STORE_MAX_DOWNSAMPLE))) {
        fprintf(stderr,
                "runvault metrics: --min-step and --max-step want integers, "
                "--downsample 0..%d\n",
                STORE_MAX_DOWNSAMPLE);
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
        printf("{\"run_id\":");
        cli__json_str(stdout, a->pos[0]);
        printf(",\"key\":");
        cli__json_str(stdout, a->v[O_KEY]);
        printf(",\"context\":");
        cli__json_str(stdout, ctx);
        printf(",\"points\":[");
        for (size_t i = 0; i < pts.n; i++) {
            printf("%s[%lld,%lld,", i ? "," : "", (long long)pts.steps[i],
                   (long long)pts.ts[i]);
            cli__json_double(stdout, pts.values[i]);
            putchar(']');
        }
        printf("]}\n");
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
