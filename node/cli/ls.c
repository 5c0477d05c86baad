/* runvault ls: runs as a table or JSON. */
#include "base/clock.h"
#include "base/exit.h"
#include "base/parse.h"
#include "node/cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

static void
cli__ls_json(const Rv__RunInfo *const *runs, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *run = cli__json_run(runs[i], 0);
        json_object_set_new(run, "n_points",
                            json_integer((json_int_t)runs[i]->n_points));
        json_array_append_new(list, run);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "runs", list);
    cli__json_print(stdout, doc, 0);
}

static void
cli__ls_table(const Rv__RunInfo *const *runs, size_t n)
{
    enum {
        C_ID,
        C_PROJECT,
        C_EXPERIMENT,
        C_NAME,
        C_STATUS,
        C_CREATED,
        C_POINTS,
        C_N
    };
    static const char *const head[C_N] = {"RUN ID", "PROJECT", "EXPERIMENT",
                                          "NAME",   "STATUS",  "CREATED",
                                          "POINTS"};
    size_t w[C_N];
    for (int k = 0; k < C_N; k++)
        w[k] = strlen(head[k]);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (int k = 0; k < C_N; k++) {
                cli__pad(stdout, head[k], k == C_N - 1 ? 0 : w[k], 0);
                fputs(k == C_N - 1 ? "\n" : "  ", stdout);
            }
        }
        for (size_t i = 0; i < n; i++) {
            const Rv__RunInfo *r = runs[i];
            char created[CLI_TIME_BYTES], points[CLI_NUM_BYTES];
            cli__fmt_time(r->has_created_at_ms ? r->created_at_ms : 0, created);
            snprintf(points, sizeof points, "%llu",
                     (unsigned long long)r->n_points);
            const char *col[C_N] = {r->run_id,
                                    cli__str(r->project),
                                    cli__str(r->experiment),
                                    r->name && r->name[0] ? r->name : "-",
                                    proto_status_name(r->status),
                                    created,
                                    points};
            for (int k = 0; k < C_N; k++) {
                size_t cw = cli__width(col[k]);
                if (pass == 0 && cw > w[k])
                    w[k] = cw;
                if (pass == 1) {
                    cli__pad(stdout, col[k], k == C_N - 1 ? 0 : w[k], 0);
                    fputs(k == C_N - 1 ? "\n" : "  ", stdout);
                }
            }
        }
    }
}

/* Pages of ListRuns until limit rows (0: all) or the last page. */
int
cli__ls_fetch(struct cli *cl, const struct cli_args *a, const char *filter,
              uint64_t limit, Rv__Response ***pages, size_t *n_pages)
{
    char token[CONTRACT_PAGE_TOKEN_BYTES] = "";
    uint64_t got = 0;
    size_t cap = 0;
    *pages = NULL;
    *n_pages = 0;
    for (;;) {
        Rv__Request req = RV__REQUEST__INIT;
        Rv__ListRunsRequest l = RV__LIST_RUNS_REQUEST__INIT;
        Rv__Response *resp;
        uint64_t want = limit == 0 ? CONTRACT_MAX_PER_PAGE : limit - got;
        l.team = (char *)a->v[O_TEAM]; /* NULL: the caller's scope. */
        l.project = (char *)a->v[O_PROJECT];
        l.experiment = (char *)a->v[O_EXPERIMENT];
        l.filter = filter[0] ? (char *)filter : NULL;
        l.order_by = (char *)a->v[O_ORDER_BY];
        l.has_per_page = 1;
        l.per_page =
            (uint32_t)(want < CONTRACT_MAX_PER_PAGE ? want
                                                    : CONTRACT_MAX_PER_PAGE);
        l.page_token = token[0] ? token : NULL;
        req.body_case = RV__REQUEST__BODY_LIST_RUNS;
        req.list_runs = &l;
        int rc = cli__rpc(cl, &req, &resp);
        if (rc != RV_OK)
            return rc;
        if (*n_pages == cap) {
            cap = cap ? 2 * cap : 8;
            Rv__Response **p = realloc(*pages, cap * sizeof *p);
            if (p == NULL) {
                rvc_response_free(resp);
                rv_errmsg_printf(cl->errmsg, "out of memory");
                return RV_ENOMEM;
            }
            *pages = p;
        }
        (*pages)[(*n_pages)++] = resp;
        got += resp->n_runs;
        const char *next = resp->next_page_token;
        if (resp->n_runs == 0 || next == NULL || next[0] == '\0' ||
            (limit != 0 && got >= limit))
            return RV_OK;
        if (strlen(next) >= sizeof token) {
            rv_errmsg_printf(cl->errmsg, "a page token is too long");
            return RV_EMALFORMED;
        }
        snprintf(token, sizeof token, "%s", next);
    }
}

int
cli__ls(struct cli *cl, const struct cli_args *a)
{
    struct cli_expr e;
    uint64_t limit = CLI_DEFAULT_LIMIT;
    if (a->v[O_LIMIT] != NULL && rv_parse_u64(a->v[O_LIMIT], &limit) != 0) {
        fprintf(stderr, "runvault ls: --limit wants a number (0: all)\n");
        return RV_EXIT_USAGE;
    }
    if (cli__ls_filter(a, &e) != 0)
        return RV_EXIT_USAGE;
    Rv__Response **pages;
    size_t n_pages;
    int rc = cli__ls_fetch(cl, a, e.s, limit, &pages, &n_pages);
    size_t n = 0;
    for (size_t i = 0; i < n_pages; i++)
        n += pages[i]->n_runs;
    const Rv__RunInfo **runs = calloc(n ? n : 1, sizeof *runs);
    if (rc == RV_OK && runs == NULL) {
        rc = RV_ENOMEM;
        rv_errmsg_printf(cl->errmsg, "out of memory");
    }
    int code = RV_EXIT_OK;
    if (rc == RV_OK) {
        n = 0;
        for (size_t i = 0; i < n_pages; i++)
            for (size_t k = 0; k < pages[i]->n_runs; k++)
                if (limit == 0 || n < limit)
                    runs[n++] = pages[i]->runs[k];
        if (a->v[O_JSON] != NULL)
            cli__ls_json(runs, n);
        else
            cli__ls_table(runs, n);
    } else {
        code = cli__fail(cl, rc, cli__exit_for(rc));
    }
    free(runs);
    for (size_t i = 0; i < n_pages; i++)
        rvc_response_free(pages[i]);
    free(pages);
    return code;
}
