/* runvault show RUN_ID: one run as text or JSON. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <string.h>

static void
cli__show_json(const Rv__RunInfo *r)
{
    int prec = 0;
    json_t *run = cli__json_run(r, 1), *summary = json_array();
    json_object_set_new(run, "n_points", json_integer((json_int_t)r->n_points));
    json_object_set_new(run, "n_log_lines",
                        json_integer((json_int_t)r->n_log_lines));
    json_object_set_new(run, "params", cli__json_kvs(r->params, r->n_params));
    json_object_set_new(run, "tags", cli__json_kvs(r->tags, r->n_tags));
    for (size_t i = 0; i < r->n_summary; i++) {
        const Rv__Summary *m = r->summary[i];
        json_t *o = json_object();
        json_object_set_new(o, "key", cli__json_string(m->key));
        json_object_set_new(o, "context", cli__json_string(m->context));
        json_object_set_new(o, "last", cli__json_value(m->last, &prec));
        json_object_set_new(o, "min", cli__json_value(m->min, &prec));
        json_object_set_new(o, "max", cli__json_value(m->max, &prec));
        json_object_set_new(o, "count", json_integer((json_int_t)m->count));
        json_object_set_new(o, "last_step", json_integer(m->last_step));
        json_object_set_new(o, "last_timestamp",
                            json_integer(m->last_timestamp_ms));
        json_array_append_new(summary, o);
    }
    json_object_set_new(run, "summary", summary);
    json_t *doc = json_object();
    json_object_set_new(doc, "run", run);
    cli__json_print(stdout, doc, prec);
}

static void
cli__show_summary(const Rv__RunInfo *r)
{
    enum { S_KEY, S_CTX, S_LAST, S_MIN, S_MAX, S_COUNT, S_STEP, S_N };
    static const char *const head[S_N] = {"KEY", "CONTEXT", "LAST",     "MIN",
                                          "MAX", "COUNT",   "LAST STEP"};
    size_t w[S_N];
    for (int k = 0; k < S_N; k++)
        w[k] = strlen(head[k]);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i <= r->n_summary; i++) {
            char num[5][CLI_NUM_BYTES];
            const char *col[S_N];
            if (i == 0) {
                if (pass == 0)
                    continue;
                memcpy(col, head, sizeof col);
            } else {
                const Rv__Summary *m = r->summary[i - 1];
                cli__fmt_double(m->last, num[0]);
                cli__fmt_double(m->min, num[1]);
                cli__fmt_double(m->max, num[2]);
                snprintf(num[3], CLI_NUM_BYTES, "%llu",
                         (unsigned long long)m->count);
                snprintf(num[4], CLI_NUM_BYTES, "%lld",
                         (long long)m->last_step);
                col[S_KEY] = m->key;
                col[S_CTX] = m->context && m->context[0] ? m->context : "-";
                col[S_LAST] = num[0];
                col[S_MIN] = num[1];
                col[S_MAX] = num[2];
                col[S_COUNT] = num[3];
                col[S_STEP] = num[4];
            }
            for (int k = 0; k < S_N; k++) {
                if (pass == 0 && cli__width(col[k]) > w[k])
                    w[k] = cli__width(col[k]);
                if (pass == 1) {
                    fputs("  ", stdout);
                    cli__pad(stdout, col[k], k == S_N - 1 ? 0 : w[k], 0);
                }
            }
            if (pass == 1)
                fputc('\n', stdout);
        }
    }
}

int
cli__show(struct cli *cl, const struct cli_args *a)
{
    Rv__Response *resp;
    int rc = cli__get_run(cl, a->pos[0], &resp);
    if (rc != RV_OK)
        return cli__fail(cl, rc, cli__exit_for(rc));
    const Rv__RunInfo *r = resp->run;
    if (a->v[O_JSON] != NULL) {
        cli__show_json(r);
        rvc_response_free(resp);
        return RV_EXIT_OK;
    }
    char created[CLI_TIME_BYTES], ended[CLI_TIME_BYTES];
    cli__fmt_time(r->has_created_at_ms ? r->created_at_ms : 0, created);
    cli__fmt_time(r->has_ended_at_ms ? r->ended_at_ms : 0, ended);
    printf("run:         %s\n", r->run_id);
    printf("team:        %s\n", cli__str(r->team));
    printf("project:     %s\n", cli__str(r->project));
    printf("experiment:  %s\n", cli__str(r->experiment));
    printf("name:        %s\n", r->name && r->name[0] ? r->name : "-");
    printf("user:        %s\n", r->user && r->user[0] ? r->user : "-");
    printf("status:      %s\n", proto_status_name(r->status));
    printf("created:     %s\n", created);
    printf("ended:       %s\n", ended);
    printf("points:      %llu\n", (unsigned long long)r->n_points);
    printf("log lines:   %llu\n", (unsigned long long)r->n_log_lines);
    printf("params:%s\n", r->n_params ? "" : "      -");
    for (size_t i = 0; i < r->n_params; i++)
        printf("  %s = %s\n", r->params[i]->key, r->params[i]->value);
    printf("tags:%s\n", r->n_tags ? "" : "        -");
    for (size_t i = 0; i < r->n_tags; i++)
        printf("  %s = %s\n", r->tags[i]->key, r->tags[i]->value);
    printf("summary:%s\n", r->n_summary ? "" : "     -");
    if (r->n_summary > 0)
        cli__show_summary(r);
    rvc_response_free(resp);
    return RV_EXIT_OK;
}
