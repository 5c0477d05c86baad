/* Store -> protobuf: the answers of reads, fetches and writes (contract in
 * server_int.h). Each kind of answer has its own body struct, owned by the
 * reply, holding what the response's fields point to: nothing points into
 * the request, and the store's data is copied out of its transaction. */
#include "rpc/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Replies --------------------------------------------------------------
 */

void
rpc__reply_init(struct rpc_reply *rp)
{
    memset(rp, 0, sizeof *rp);
    rv__response__init(&rp->resp);
    rp->resp.code = RV_OK;
}

void
rpc__reply_clean(struct rpc_reply *rp)
{
    if (rp->body != NULL)
        rp->body_free(rp->body);
    rp->body = NULL;
}

void
rpc__fail(struct rpc_reply *rp, int code, const char *msg)
{
    rp->resp.code = (uint32_t)code;
    snprintf(rp->message, sizeof rp->message, "%s",
             msg != NULL && msg[0] != '\0' ? msg : rv_strerror(code));
    rp->resp.message = rp->message;
}

void *
rpc__reply_body(struct rpc_reply *rp, size_t size,
                void (*body_free)(void *body))
{
    void *body = calloc(1, size);
    if (body == NULL)
        return NULL;
    rp->body = body;
    rp->body_free = body_free;
    return body;
}

/* ---- Writes ----------------------------------------------------------------
 */

struct rpc__write_answer {
    struct store_result *results; /* The strings of outs point here. */
    Rv__CommandResult *outs, **ptrs;
};

static void
rpc__write_answer_free(void *body)
{
    struct rpc__write_answer *a = body;
    free(a->results);
    free(a->outs);
    free(a->ptrs);
    free(a);
}

void
rpc__write_results(struct rpc_reply *rp, struct store_result *results, size_t n)
{
    struct rpc__write_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__write_answer_free);
    if (a == NULL) {
        free(results);
        rpc__fail(rp, RV_ENOMEM, NULL);
        return;
    }
    a->results = results;
    a->outs = calloc(n, sizeof *a->outs);
    a->ptrs = calloc(n, sizeof *a->ptrs);
    if (a->outs == NULL || a->ptrs == NULL) {
        rpc__fail(rp, RV_ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        Rv__CommandResult *cr = &a->outs[i];
        const struct store_result *sr = &results[i];
        rv__command_result__init(cr);
        cr->code = (uint32_t)sr->code;
        cr->message = sr->code != RV_OK ? (char *)sr->message : NULL;
        cr->run_id = sr->run_id[0] ? (char *)sr->run_id : NULL;
        cr->has_is_duplicate = sr->is_duplicate;
        cr->is_duplicate = sr->is_duplicate;
        cr->has_is_resumed = sr->is_resumed;
        cr->is_resumed = sr->is_resumed;
        a->ptrs[i] = cr;
    }
    rp->resp.n_results = n;
    rp->resp.results = a->ptrs;
}

/* ---- One run ---------------------------------------------------------------
 */

static void
rpc__run_info(Rv__RunInfo *ri, const struct store_run *run)
{
    rv__run_info__init(ri);
    ri->run_id = run->run_id;
    ri->team = run->team;
    ri->project = run->project;
    ri->experiment = run->experiment;
    ri->name = run->name;
    ri->has_status = 1;
    ri->status = (Rv__RunStatus)run->status;
    ri->has_created_at_ms = 1;
    ri->created_at_ms = run->created_at_ms;
    ri->has_ended_at_ms = run->ended_at_ms != 0;
    ri->ended_at_ms = run->ended_at_ms;
    ri->has_n_points = 1;
    ri->n_points = run->n_points;
    ri->user = run->user;
    ri->has_n_log_lines = 1;
    ri->n_log_lines = run->n_log_lines;
    ri->has_is_deleted = run->lifecycle == STORE_DELETED;
    ri->is_deleted = run->lifecycle == STORE_DELETED;
}

/* What a full RunInfo points to besides the run's strings. */
struct rpc__run_extra {
    Rv__KV *kvs, **kv_ptrs;
    Rv__Summary *sums, **sum_ptrs;
};

struct rpc__run_answer {
    struct store_run run; /* The strings of info point here. */
    int has_run;
    Rv__RunInfo info;
    struct rpc__run_extra x;
};

static void
rpc__run_extra_free(struct rpc__run_extra *x)
{
    free(x->kvs);
    free(x->kv_ptrs);
    free(x->sums);
    free(x->sum_ptrs);
}

static void
rpc__run_answer_free(void *body)
{
    struct rpc__run_answer *a = body;
    if (a->has_run)
        store_run_free(&a->run);
    rpc__run_extra_free(&a->x);
    free(a);
}

static int
rpc__kvs(struct rpc__run_extra *a, Rv__RunInfo *info,
         const struct store_run *run)
{
    size_t n = run->n_params + run->n_tags;
    a->kvs = calloc(n ? n : 1, sizeof *a->kvs);
    a->kv_ptrs = calloc(n ? n : 1, sizeof *a->kv_ptrs);
    if (a->kvs == NULL || a->kv_ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct store_kv *kv =
            i < run->n_params ? &run->params[i] : &run->tags[i - run->n_params];
        rv__kv__init(&a->kvs[i]);
        a->kvs[i].key = kv->key;
        a->kvs[i].value = kv->value;
        a->kv_ptrs[i] = &a->kvs[i];
    }
    info->n_params = run->n_params;
    info->params = a->kv_ptrs;
    info->n_tags = run->n_tags;
    info->tags = a->kv_ptrs + run->n_params;
    return RV_OK;
}

static int
rpc__summaries(struct rpc__run_extra *a, Rv__RunInfo *info,
               const struct store_run *run)
{
    size_t n = run->n_summary;
    a->sums = calloc(n ? n : 1, sizeof *a->sums);
    a->sum_ptrs = calloc(n ? n : 1, sizeof *a->sum_ptrs);
    if (a->sums == NULL || a->sum_ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct store_summary *m = &run->summary[i];
        Rv__Summary *o = &a->sums[i];
        rv__summary__init(o);
        o->key = m->key;
        o->context = m->context;
        o->has_last = o->has_min = o->has_max = o->has_count = 1;
        o->last = m->last;
        o->min = m->min;
        o->max = m->max;
        o->count = m->count;
        o->has_last_step = o->has_last_timestamp_ms = 1;
        o->last_step = m->last_step;
        o->last_timestamp_ms = m->last_timestamp_ms;
        a->sum_ptrs[i] = o;
    }
    info->n_summary = n;
    info->summary = a->sum_ptrs;
    return RV_OK;
}

static int
rpc__get_run(struct store_read *rd, const Rv__GetRunRequest *g,
             struct rpc_reply *rp, char *errmsg)
{
    struct rpc__run_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__run_answer_free);
    if (a == NULL)
        return RV_ENOMEM;
    int rc = store_run_get(rd, g->run_id, 1, &a->run, errmsg);
    if (rc != RV_OK)
        return rc;
    a->has_run = 1;
    rpc__run_info(&a->info, &a->run);
    rc = rpc__kvs(&a->x, &a->info, &a->run);
    if (rc == RV_OK)
        rc = rpc__summaries(&a->x, &a->info, &a->run);
    rp->resp.run = &a->info;
    return rc;
}

/* ---- A page of runs --------------------------------------------------------
 */

struct rpc__page_answer {
    struct store_page page; /* The strings of infos point here. */
    int has_page;
    Rv__RunInfo *infos, **ptrs;
    struct rpc__run_extra *extras; /* Per run, when full. */
};

static void
rpc__page_answer_free(void *body)
{
    struct rpc__page_answer *a = body;
    /* The extras first: store_page_free() forgets page.n_runs. */
    for (size_t i = 0; a->extras != NULL && i < a->page.n_runs; i++)
        rpc__run_extra_free(&a->extras[i]);
    free(a->extras);
    if (a->has_page)
        store_page_free(&a->page);
    free(a->infos);
    free(a->ptrs);
    free(a);
}

static int
rpc__list_runs(struct store_read *rd, const Rv__ListRunsRequest *l,
               struct rpc_reply *rp, char *errmsg)
{
    struct store_query q;
    if (l->has_per_page &&
        (l->per_page == 0 || l->per_page > CONTRACT_MAX_PER_PAGE)) {
        rv_errmsg_printf(errmsg, "per_page must be 1 to %d",
                         CONTRACT_MAX_PER_PAGE);
        return RV_EINVAL;
    }
    struct rpc__page_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__page_answer_free);
    if (a == NULL)
        return RV_ENOMEM;
    memset(&q, 0, sizeof q);
    q.team = l->team;
    q.project = l->project;
    q.experiment = l->experiment;
    q.filter = l->filter;
    q.order_by = l->order_by;
    q.per_page = l->has_per_page ? l->per_page : 0;
    q.page_token = l->page_token;
    q.view = rpc__run_view(l->has_view, l->view);
    q.is_full = l->has_is_full && l->is_full;
    int rc = store_query_runs(rd, &q, &a->page, errmsg);
    if (rc != RV_OK)
        return rc;
    a->has_page = 1;
    size_t n = a->page.n_runs;
    a->infos = calloc(n ? n : 1, sizeof *a->infos);
    a->ptrs = calloc(n ? n : 1, sizeof *a->ptrs);
    if (a->infos == NULL || a->ptrs == NULL)
        return RV_ENOMEM;
    if (q.is_full && (a->extras = calloc(n ? n : 1, sizeof *a->extras)) == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rpc__run_info(&a->infos[i], &a->page.runs[i]);
        a->ptrs[i] = &a->infos[i];
        if (q.is_full) {
            rc = rpc__kvs(&a->extras[i], &a->infos[i], &a->page.runs[i]);
            if (rc == RV_OK)
                rc = rpc__summaries(&a->extras[i], &a->infos[i],
                                    &a->page.runs[i]);
            if (rc != RV_OK)
                return rc;
        }
    }
    rp->resp.n_runs = n;
    rp->resp.runs = a->ptrs;
    rp->resp.next_page_token = a->page.next_page_token;
    rp->resp.has_total = a->page.has_total != 0;
    rp->resp.total = a->page.total;
    rp->resp.has_n_examined = 1;
    rp->resp.n_examined = a->page.n_examined;
    rp->resp.plan = a->page.plan;
    return RV_OK;
}

/* ---- Metric history --------------------------------------------------------
 */

struct rpc__history_answer {
    struct store_point *points;
    int64_t *steps, *timestamps_ms; /* Columns of the response. */
    double *values;
};

static void
rpc__history_answer_free(void *body)
{
    struct rpc__history_answer *a = body;
    free(a->points);
    free(a->steps);
    free(a->timestamps_ms);
    free(a->values);
    free(a);
}

static int
rpc__history(struct store_read *rd, const Rv__HistoryRequest *h,
             struct rpc_reply *rp, char *errmsg)
{
    struct store_history_query q;
    size_t n = 0;
    struct rpc__history_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__history_answer_free);
    if (a == NULL)
        return RV_ENOMEM;
    memset(&q, 0, sizeof q);
    q.run_id = h->run_id;
    q.key = h->key;
    q.context = h->context;
    q.min_step = h->has_min_step ? h->min_step : INT64_MIN;
    q.max_step = h->has_max_step ? h->max_step : INT64_MAX;
    q.downsample = h->has_downsample ? h->downsample : 0;
    int rc = store_metric_history(rd, &q, &a->points, &n, errmsg);
    if (rc != RV_OK)
        return rc;
    a->steps = malloc((n ? n : 1) * sizeof *a->steps);
    a->timestamps_ms = malloc((n ? n : 1) * sizeof *a->timestamps_ms);
    a->values = malloc((n ? n : 1) * sizeof *a->values);
    if (a->steps == NULL || a->timestamps_ms == NULL || a->values == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        a->steps[i] = a->points[i].step;
        a->timestamps_ms[i] = a->points[i].timestamp_ms;
        a->values[i] = a->points[i].value;
    }
    rp->resp.n_steps = rp->resp.n_timestamps_ms = n;
    rp->resp.n_values = n;
    rp->resp.steps = a->steps;
    rp->resp.timestamps_ms = a->timestamps_ms;
    rp->resp.values = a->values;
    return RV_OK;
}

/* ---- Log lines -------------------------------------------------------------
 */

struct rpc__logs_answer {
    struct store_log_line *lines; /* The texts of outs point here. */
    size_t n_lines;
    Rv__LogLineOut *outs, **ptrs;
};

static void
rpc__logs_answer_free(void *body)
{
    struct rpc__logs_answer *a = body;
    store_log_lines_free(a->lines, a->n_lines);
    free(a->outs);
    free(a->ptrs);
    free(a);
}

static int
rpc__logs(struct store_read *rd, const Rv__LogsRequest *l, struct rpc_reply *rp,
          char *errmsg)
{
    uint64_t next = 0;
    size_t max = l->has_max_lines && l->max_lines > 0 ? l->max_lines
                                                      : RPC_DEFAULT_LOG_LINES;
    if (max > CONTRACT_MAX_LOG_LINES_READ) {
        rv_errmsg_printf(errmsg, "max_lines must be 1 to %d",
                         CONTRACT_MAX_LOG_LINES_READ);
        return RV_EINVAL;
    }
    struct rpc__logs_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__logs_answer_free);
    if (a == NULL)
        return RV_ENOMEM;
    int rc = store_log_lines(rd, l->run_id, l->has_from_line ? l->from_line : 0,
                             max, &a->lines, &a->n_lines, &next, errmsg);
    if (rc != RV_OK)
        return rc;
    size_t n = a->n_lines;
    a->outs = calloc(n ? n : 1, sizeof *a->outs);
    a->ptrs = calloc(n ? n : 1, sizeof *a->ptrs);
    if (a->outs == NULL || a->ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        Rv__LogLineOut *o = &a->outs[i];
        rv__log_line_out__init(o);
        o->line_no = a->lines[i].line_no;
        o->timestamp_ms = a->lines[i].timestamp_ms;
        o->has_stream = 1;
        o->stream = (Rv__Stream)a->lines[i].stream;
        o->text = a->lines[i].text;
        a->ptrs[i] = o;
    }
    rp->resp.n_lines = n;
    rp->resp.lines = a->ptrs;
    rp->resp.has_next_line = 1;
    rp->resp.next_line = next;
    return RV_OK;
}

/* ---- Analytics -------------------------------------------------------------
 */

struct rpc__counts_answer {
    struct store_count *counts; /* The labels of outs point here. */
    size_t n_counts;
    Rv__Count *outs, **ptrs;
};

static void
rpc__counts_answer_free(void *body)
{
    struct rpc__counts_answer *a = body;
    store_counts_free(a->counts, a->n_counts);
    free(a->outs);
    free(a->ptrs);
    free(a);
}

static int
rpc__analytics(struct store_read *rd, const Rv__AnalyticsRequest *q,
               struct rpc_reply *rp, char *errmsg)
{
    enum store_group g = STORE_GROUP_STATUS;
    if (q->has_group && q->group == RV__GROUP__GROUP_PROJECT)
        g = STORE_GROUP_PROJECT;
    else if (q->has_group && q->group == RV__GROUP__GROUP_DAY)
        g = STORE_GROUP_DAY;
    else if (q->has_group && q->group != RV__GROUP__GROUP_STATUS) {
        rv_errmsg_printf(errmsg, "unknown analytics group");
        return RV_EINVAL;
    }
    struct rpc__counts_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__counts_answer_free);
    if (a == NULL)
        return RV_ENOMEM;
    int rc = store_analytics(rd, g, q->team, q->project, &a->counts,
                             &a->n_counts, errmsg);
    if (rc != RV_OK)
        return rc;
    size_t n = a->n_counts;
    a->outs = calloc(n ? n : 1, sizeof *a->outs);
    a->ptrs = calloc(n ? n : 1, sizeof *a->ptrs);
    if (a->outs == NULL || a->ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rv__count__init(&a->outs[i]);
        a->outs[i].label = a->counts[i].label;
        a->outs[i].n = a->counts[i].n;
        a->ptrs[i] = &a->outs[i];
    }
    rp->resp.n_counts = n;
    rp->resp.counts = a->ptrs;
    return RV_OK;
}

/* ---- Artifacts -------------------------------------------------------------
 */

struct rpc__artifacts_answer {
    struct store_artifact *arts; /* The strings of outs point here. */
    size_t n_arts;
    Rv__ArtifactInfo *outs, **ptrs;
    struct rv_buf data; /* The bytes read, for one artifact's read. */
};

static void
rpc__artifacts_answer_free(void *body)
{
    struct rpc__artifacts_answer *a = body;
    if (a->arts != NULL)
        store_artifacts_free(a->arts, a->n_arts);
    free(a->outs);
    free(a->ptrs);
    rv_buf_free(&a->data);
    free(a);
}

/* One artifact, with up to max_bytes of its content from offset. */
static int
rpc__artifact_get(struct store_read *rd, const Rv__ArtifactRequest *q,
                  struct rpc__artifacts_answer *a, struct rpc_reply *rp,
                  char *errmsg)
{
    a->arts = calloc(1, sizeof *a->arts);
    if (a->arts == NULL)
        return RV_ENOMEM;
    int rc = store_artifact_get(rd, q->run_id, q->path, a->arts, errmsg);
    if (rc != RV_OK)
        return rc;
    a->n_arts = 1;
    if (!q->has_max_bytes || q->max_bytes == 0)
        return RV_OK;
    uint64_t off = q->has_offset ? q->offset : 0;
    size_t want = q->max_bytes < RPC_MAX_ARTIFACT_READ ? q->max_bytes
                                                       : RPC_MAX_ARTIFACT_READ;
    if (off > a->arts->size) {
        rv_errmsg_printf(errmsg, "offset %llu is past the end (%llu)",
                         (unsigned long long)off,
                         (unsigned long long)a->arts->size);
        return RV_EINVAL;
    }
    if (off < a->arts->size)
        rc = store_artifact_read(rd, q->run_id, q->path, off, want, &a->data,
                                 errmsg);
    rp->resp.has_data = 1;
    rp->resp.data.data = a->data.data;
    rp->resp.data.len = a->data.len;
    return rc;
}

static int
rpc__artifacts(struct store_read *rd, const Rv__ArtifactRequest *q,
               struct rpc_reply *rp, char *errmsg)
{
    struct rpc__artifacts_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__artifacts_answer_free);
    if (a == NULL)
        return RV_ENOMEM;
    rv_buf_init(&a->data);
    int rc =
        q->path == NULL || q->path[0] == '\0'
            ? store_artifacts_list(rd, q->run_id, &a->arts, &a->n_arts, errmsg)
            : rpc__artifact_get(rd, q, a, rp, errmsg);
    if (rc != RV_OK)
        return rc;
    size_t n = a->n_arts;
    a->outs = calloc(n ? n : 1, sizeof *a->outs);
    a->ptrs = calloc(n ? n : 1, sizeof *a->ptrs);
    if (a->outs == NULL || a->ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        Rv__ArtifactInfo *o = &a->outs[i];
        rv__artifact_info__init(o);
        o->path = a->arts[i].path;
        o->content_type = a->arts[i].content_type;
        o->has_size = o->has_sha256 = o->has_is_complete = 1;
        o->size = a->arts[i].size;
        o->sha256.data = a->arts[i].sha256;
        o->sha256.len = sizeof a->arts[i].sha256;
        o->is_complete = a->arts[i].is_complete != 0;
        a->ptrs[i] = o;
    }
    rp->resp.n_artifacts = n;
    rp->resp.artifacts = a->ptrs;
    return RV_OK;
}

/* ---- Reads and fetches -----------------------------------------------------
 */

void
rpc__read_store(struct store *st, const char *team, const Rv__Request *req,
                struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    struct store_read *rd;
    int rc = store_read_begin(st, team, &rd, errmsg);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        return;
    }
    rp->resp.has_applied_index = 1;
    rp->resp.applied_index = store_read_applied_index(rd);
    switch (req->body_case) {
    case RV__REQUEST__BODY_GET_RUN:
        rc = rpc__get_run(rd, req->get_run, rp, errmsg);
        break;
    case RV__REQUEST__BODY_LIST_RUNS:
        rc = rpc__list_runs(rd, req->list_runs, rp, errmsg);
        break;
    case RV__REQUEST__BODY_LOGS:
        rc = rpc__logs(rd, req->logs, rp, errmsg);
        break;
    case RV__REQUEST__BODY_ANALYTICS:
        rc = rpc__analytics(rd, req->analytics, rp, errmsg);
        break;
    case RV__REQUEST__BODY_ARTIFACT:
        rc = rpc__artifacts(rd, req->artifact, rp, errmsg);
        break;
    case RV__REQUEST__BODY_ADMIN:
        rc = rpc__admin_read(rd, req->admin, rp, errmsg);
        break;
    case RV__REQUEST__BODY_MLFLOW_EXPERIMENTS:
        rc = rpc__mlflow_read(rd, req->mlflow_experiments, rp, errmsg);
        break;
    default: /* HISTORY */
        rc = rpc__history(rd, req->history, rp, errmsg);
        break;
    }
    store_read_end(rd);
    if (rc != RV_OK)
        rpc__fail(rp, rc, errmsg);
}

struct rpc__fetch_answer {
    struct rv_buf records;
};

static void
rpc__fetch_answer_free(void *body)
{
    struct rpc__fetch_answer *a = body;
    rv_buf_free(&a->records);
    free(a);
}

void
rpc__fetch(struct store *st, const Rv__FetchRequest *f, struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE];
    uint64_t last = 0;
    size_t max = f->has_max_bytes && f->max_bytes > 0 &&
                         f->max_bytes < RPC_MAX_FETCH_BYTES
                     ? f->max_bytes
                     : RPC_MAX_FETCH_BYTES;
    struct rpc__fetch_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__fetch_answer_free);
    if (a == NULL) {
        rpc__fail(rp, RV_ENOMEM, NULL);
        return;
    }
    rv_buf_init(&a->records);
    uint64_t ck = store_checkpoint_index(st), total = 0;
    rp->resp.has_image_index = 1;
    rp->resp.image_index = ck;
    if (f->has_want_image && f->want_image) {
        /* A chunk of the compaction image (catch-up across a compaction). */
        int rc = store_image_read(st, ck, f->image_offset, max, &a->records,
                                  &total, errmsg);
        if (rc != RV_OK) {
            rpc__fail(rp, rc, errmsg);
            return;
        }
        rp->resp.has_image = 1;
        rp->resp.image.data = a->records.data;
        rp->resp.image.len = a->records.len;
        rp->resp.has_image_bytes = 1;
        rp->resp.image_bytes = total;
        return;
    }
    int rc = store_fetch_records(st, f->from_index,
                                 f->has_to_index ? f->to_index : 0, max,
                                 &a->records, &last, errmsg);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        return;
    }
    rp->resp.has_records = 1;
    rp->resp.records.data = a->records.data;
    rp->resp.records.len = a->records.len;
    rp->resp.has_index = 1;
    rp->resp.index = last;
}

/* ---- Answers without the replica (server.h) --------------------------------
 */

int
rpc_store_answer(struct store *st, const Rv__Request *req,
                 struct rpc_reply **out)
{
    struct rpc_reply *rp;
    if (!rpc__is_read(req) && req->body_case != RV__REQUEST__BODY_FETCH)
        return RV_EINVAL;
    if ((rp = malloc(sizeof *rp)) == NULL)
        return RV_ENOMEM;
    rpc__reply_init(rp);
    if (req->body_case == RV__REQUEST__BODY_FETCH)
        rpc__fetch(st, req->fetch, rp);
    else
        rpc__read_store(st, STORE_EVERY_TEAM, req, rp);
    *out = rp;
    return RV_OK;
}

int
rpc_write_answer(uint64_t index, struct store_result *results, size_t n,
                 struct rpc_reply **out)
{
    struct rpc_reply *rp = malloc(sizeof *rp);
    if (rp == NULL) {
        free(results);
        return RV_ENOMEM;
    }
    rpc__reply_init(rp);
    rp->resp.has_index = index != 0;
    rp->resp.index = index;
    if (n > 0)
        rpc__write_results(rp, results, n); /* Takes results. */
    else
        free(results);
    *out = rp;
    return RV_OK;
}

const Rv__Response *
rpc_reply_response(const struct rpc_reply *rp)
{
    return &rp->resp;
}

void
rpc_reply_free(struct rpc_reply *rp)
{
    if (rp == NULL)
        return;
    rpc__reply_clean(rp);
    free(rp);
}
