/* libFuzzer target: the run-list planner and its index walks on a real
 * store of 320 runs in four teams (the same project and experiment names
 * in several teams; tied, NaN and missing metric values; runs ended or
 * not; some deleted). The input picks the reader (every team, or one
 * team's principal), the query's scope, view, page size and the ordered
 * plans' threshold, then a filter and an ORDER BY (split at the first
 * newline). Every query is paged to the end (at most 400 pages) and must:
 * answer RV_OK, or refuse the query on the first page only (RV_EINVAL,
 * RV_EPARSE, RV_ETOOBIG); never list a run of
 * a team the reader cannot see; never list a run twice; agree with
 * `total` when the reply has one; and return the same rows in the same
 * order as the same query with the ordered plans off where a list can
 * drive (a differential check between plans). Anything else abort()s. */
#include "proto/metrics_builder.h"
#include "proto/proto.h"
#include "store/store.h"
#include "tests/fuzz/fuzz_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FQ_RUNS  320
#define FQ_TEAMS 4
#define FQ_PAGES 400

static const char *const fq_teams[FQ_TEAMS] = {"ta", "tb", "tc", "td"};
static const char *const fq_projects[] = {"p0", "p1", "p2"};
static const char *const fq_exps[] = {"e0", "e1"};
static const char *const fq_names[] = {"alpha", "Alpha_1", "beta", "b%x"};
static const char *const fq_opts[] = {"adam", "sgd", "lion"};

static struct store *fq_store;
static uint64_t fq_index;

static void
fq_apply(Rv__Command **cmds, size_t n)
{
    Rv__CommandBatch b = RV__COMMAND_BATCH__INIT;
    struct rv_buf e;
    struct store_result *res = NULL;
    size_t n_res = 0;
    char errmsg[RV_ERRMSG_SIZE] = "";
    b.n_commands = n;
    b.commands = cmds;
    rv_buf_init(&e);
    int rc = proto_envelope_encode(&b, &e, errmsg);
    if (rc == RV_OK)
        rc = store_apply(fq_store, ++fq_index, e.data, e.len, &res, &n_res,
                         errmsg);
    for (size_t i = 0; rc == RV_OK && i < n_res; i++)
        rc = res[i].code;
    if (rc != RV_OK) {
        fprintf(stderr, "fuzz_query: setup: %s: %s\n", rv_strerror(rc), errmsg);
        abort();
    }
    free(res);
    rv_buf_free(&e);
}

/* Run i: its team, scope, name, param, status and end time, metrics. */
static void
fq_add_run(unsigned i)
{
    char id[16];
    Rv__Command c[4] = {RV__COMMAND__INIT, RV__COMMAND__INIT, RV__COMMAND__INIT,
                        RV__COMMAND__INIT};
    Rv__RunCreate cr = RV__RUN_CREATE__INIT;
    Rv__KV p = RV__KV__INIT, *pp[1] = {&p};
    snprintf(id, sizeof id, "r%03u", i);
    cr.run_id = id;
    cr.team = (char *)fq_teams[i % FQ_TEAMS];
    cr.project = (char *)fq_projects[(i / 4) % 3];
    cr.experiment = (char *)fq_exps[(i / 12) % 2];
    cr.name = (char *)fq_names[(i * 7) % 4];
    cr.created_at_ms = 1000 + (int64_t)(i % 50) * 10; /* Ties. */
    p.key = "opt";
    p.value = (char *)fq_opts[(i * 5) % 3];
    cr.n_params = 1;
    cr.params = pp;
    c[0].body_case = RV__COMMAND__BODY_RUN_CREATE;
    c[0].run_create = &cr;
    struct proto_metrics_builder mb;
    Rv__Metrics m;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    int ok = 1;
    proto_metrics_init(&mb);
    if (i % 9 != 0) /* Some runs have no acc at all. */
        ok &= proto_metrics_add(&mb, "acc", NULL, 1, 1,
                                i % 11 == 0 ? NAN : (double)((i * 3) % 10) / 10,
                                NULL) == RV_OK;
    ok &= proto_metrics_add(&mb, "loss", NULL, 1, 1, (double)(i % 7), NULL) ==
          RV_OK;
    if (!ok)
        abort();
    proto_metrics_view(&mb, &m);
    lb.run_id = id;
    lb.metrics = &m;
    c[1].body_case = RV__COMMAND__BODY_LOG_BATCH;
    c[1].log_batch = &lb;
    Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
    st.run_id = id;
    st.status = i % 3 ? RV__RUN_STATUS__FINISHED : RV__RUN_STATUS__RUNNING;
    st.has_ended_at_ms = i % 3 != 0;
    st.ended_at_ms = 2000 + (int64_t)(i % 13);
    c[2].body_case = RV__COMMAND__BODY_RUN_STATUS;
    c[2].run_status = &st;
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = id;
    c[3].body_case = RV__COMMAND__BODY_RUN_DELETE;
    c[3].run_delete = &ref;
    Rv__Command *cmds[4] = {&c[0], &c[1], &c[2], &c[3]};
    fq_apply(cmds, i % 10 == 3 ? 4 : 3);
    proto_metrics_free(&mb);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fq_store = fuzz_store_open("fuzz_query");
    for (unsigned i = 0; i < FQ_RUNS; i++)
        fq_add_run(i);
    return 0;
}

/* The run ids of one query paged to the end, in order, into ids (at most
 * FQ_RUNS; each 16 bytes); returns how many, or -1 if the first page was
 * refused. Aborts on anything a query must never do. */
static int
fq_pages(const char *reader, const struct store_query *q0, uint64_t min,
         char (*ids)[16])
{
    struct store_query q = *q0;
    char token[CONTRACT_PAGE_TOKEN_BYTES] = "";
    char errmsg[RV_ERRMSG_SIZE] = "";
    int n = 0;
    store_plan_set_ordered_min(min);
    for (int page_no = 0; page_no < FQ_PAGES; page_no++) {
        struct store_read *r;
        struct store_page page;
        q.page_token = token[0] ? token : NULL;
        if (store_read_begin(fq_store, reader, &r, errmsg) != RV_OK)
            abort();
        int rc = store_query_runs(r, &q, &page, errmsg);
        store_read_end(r);
        if ((rc == RV_EINVAL || rc == RV_EPARSE || rc == RV_ETOOBIG) &&
            page_no == 0)
            return -1;
        if (rc != RV_OK) {
            fprintf(stderr, "fuzz_query: page %d: %s: %s\n", page_no,
                    rv_strerror(rc), errmsg);
            abort();
        }
        if (page_no == 0 && page.has_total && page.total > FQ_RUNS)
            abort();
        for (size_t i = 0; i < page.n_runs; i++) {
            const struct store_run *run = &page.runs[i];
            if (reader != STORE_EVERY_TEAM && strcmp(run->team, reader) != 0) {
                fprintf(stderr, "fuzz_query: %s's read listed %s of %s\n",
                        reader, run->run_id, run->team);
                abort();
            }
            for (int k = 0; k < n; k++)
                if (strcmp(ids[k], run->run_id) == 0) {
                    fprintf(stderr, "fuzz_query: %s listed twice (plan %s)\n",
                            run->run_id, page.plan);
                    abort();
                }
            if (n == FQ_RUNS)
                abort();
            snprintf(ids[n++], 16, "%s", run->run_id);
        }
        int more = page.next_page_token[0] != '\0';
        memcpy(token, page.next_page_token, sizeof token);
        store_page_free(&page);
        if (!more)
            return n;
    }
    fprintf(stderr, "fuzz_query: more than %d pages\n", FQ_PAGES);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[FQ_RUNS][16], b[FQ_RUNS][16];
    static const uint64_t mins[] = {0, 30, STORE_ORDERED_SCAN_MIN};
    if (size < 5 || size > 2048)
        return 0;
    const char *reader =
        data[0] % 5 == 0 ? STORE_EVERY_TEAM : fq_teams[data[0] % 5 - 1];
    struct store_query q = {0};
    if (data[1] & 1)
        q.team = fq_teams[(data[1] >> 1) % FQ_TEAMS];
    if (data[1] & 8) {
        q.project = fq_projects[(data[1] >> 4) % 3];
        if (data[1] & 64)
            q.experiment = fq_exps[(data[1] >> 7) % 2];
    }
    q.view = (enum store_view)(data[2] % 3);
    q.per_page = 1 + data[3] % 64;
    uint64_t min = mins[data[4] % 3];
    char *text = malloc(size - 5 + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data + 5, size - 5);
    text[size - 5] = '\0';
    char *nl = strchr(text, '\n');
    if (nl != NULL) {
        *nl = '\0';
        q.order_by = nl + 1;
    }
    q.filter = text;
    int n = fq_pages(reader, &q, min, a);
    /* The same query with the ordered plans off wherever a list drives:
     * the same rows in the same order. */
    int m = n < 0 ? -1 : fq_pages(reader, &q, UINT64_MAX, b);
    if (n != m) {
        fprintf(stderr, "fuzz_query: %d rows, %d with ordered plans off\n", n,
                m);
        abort();
    }
    for (int i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0) {
            fprintf(stderr,
                    "fuzz_query: row %d is %s, %s with ordered "
                    "plans off\n",
                    i, a[i], b[i]);
            abort();
        }
    free(text);
    return 0;
}
