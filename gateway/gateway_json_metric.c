/* Metrics: the log-batch JSON (metrics, params, tags) -> one columnar
 * Rv__LogBatch command, and metric history out (one series, downsampled,
 * or every series from the run's summary). */
#include "base/clock.h"
#include "gateway/gateway_int.h"
#include "proto/metrics_builder.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- log-batch ---------------------------------------------------------- */

struct gw_point {
    const char *key, *ctx; /* Borrowed from the JSON; ctx may be NULL. */
    int64_t step, ts_ms;
    double value;
};

/* Point p when it is well-formed (the hot path: one pass, no messages);
 * 0 when it is not (gw__point_error says why). */
static int
gw__point_parse(json_t *p, int64_t now, struct gw_point *out)
{
    json_t *jk = json_object_get(p, "key"), *jv = json_object_get(p, "value");
    json_t *js = json_object_get(p, "step");
    json_t *jt = json_object_get(p, "timestamp");
    json_t *jc = json_object_get(p, "context");
    size_t known = (size_t)((jk != NULL) + (jv != NULL) + (js != NULL) +
                            (jt != NULL) + (jc != NULL));
    const char *key = json_string_value(jk);
    const char *ctx = json_is_null(jc) ? NULL : json_string_value(jc);
    const char *vs = json_string_value(jv);
    double d = 0;
    int is_ok = json_is_object(p) && json_object_size(p) == known &&
                key != NULL && contract_key_valid(key, json_string_length(jk));
    is_ok =
        is_ok &&
        (jc == NULL || json_is_null(jc) ||
         (ctx != NULL && json_string_length(jc) <= CONTRACT_MAX_CONTEXT_BYTES));
    is_ok = is_ok && (js == NULL || json_is_integer(js));
    is_ok = is_ok && (jt == NULL ||
                      (json_is_integer(jt) && json_integer_value(jt) >= 0));
    if (is_ok && json_is_number(jv))
        d = json_number_value(jv);
    else if (is_ok && vs != NULL && strcmp(vs, "NaN") == 0)
        d = NAN;
    else if (is_ok && vs != NULL && strcmp(vs, "Infinity") == 0)
        d = INFINITY;
    else if (is_ok && vs != NULL && strcmp(vs, "-Infinity") == 0)
        d = -INFINITY;
    else
        return 0;
    out->key = key;
    out->ctx = ctx;
    out->step = js != NULL ? (int64_t)json_integer_value(js) : 0;
    out->ts_ms = jt != NULL ? (int64_t)json_integer_value(jt) : now;
    out->value = d;
    return 1;
}

/* Say what is wrong with metric point i (the hot loop found it bad). */
static void
gw__point_error(struct gw_ctx *c, json_t *p, size_t i)
{
    static const char *const mfields[] = {"key",       "value",   "step",
                                          "timestamp", "context", NULL};
    char where[32], *key, *ctx;
    int64_t v = 0;
    snprintf(where, sizeof where, "metrics[%zu]", i);
    if (!json_is_object(p)) {
        gw__reject(c, RV_EINVAL, "%s must be an object", where);
        return;
    }
    if (gw__only(c, p, where, mfields) != 0 ||
        gw__str(c, p, "key", 1, CONTRACT_MAX_KEY_BYTES, &key) != 0 ||
        gw__str(c, p, "context", 0, CONTRACT_MAX_CONTEXT_BYTES, &ctx) != 0 ||
        gw__int(c, p, "step", where, INT64_MIN, INT64_MAX, &v) != 0 ||
        gw__int(c, p, "timestamp", where, 0, INT64_MAX, &v) != 0)
        return;
    if (gw__key(c, where, ".", key) != 0)
        return;
    gw__reject(c, RV_EINVAL,
               "%s.value must be a number or \"NaN\", \"Infinity\", "
               "\"-Infinity\"",
               where);
}

/* The "metrics" array ms of n points into mb (the caller's: it frees
 * it). Returns 0, or -1 when answered. */
static int
gw__metric_points(struct gw_ctx *c, json_t *ms, size_t n,
                  struct proto_metrics_builder *mb)
{
    int64_t now = (int64_t)rv_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(ms, i);
        struct gw_point pt;
        if (!gw__point_parse(p, now, &pt)) {
            gw__point_error(c, p, i);
            return -1;
        }
        if (proto_metrics_add(mb, pt.key, pt.ctx, pt.step, pt.ts_ms, pt.value,
                              NULL) != RV_OK) {
            gw_reply_error(c->x, RV_ENOMEM, NULL);
            return -1;
        }
    }
    return 0;
}

/* The size of the "metrics" member of j (absent or null: 0) into *n.
 * Returns 0, or -1 when answered. */
static int
gw__metric_count(struct gw_ctx *c, json_t *j, json_t **ms, size_t *n)
{
    *ms = json_object_get(j, "metrics");
    *n = 0;
    if (*ms != NULL && !json_is_null(*ms)) {
        if (!json_is_array(*ms)) {
            gw_reply_error(c->x, RV_EINVAL, "'metrics' must be an array");
            return -1;
        }
        *n = json_array_size(*ms);
    }
    if (*n > GATEWAY_MAX_METRICS) {
        return gw__reject(c, RV_EINVAL, "%zu metrics in one batch, at most %d",
                          *n, GATEWAY_MAX_METRICS);
    }
    return 0;
}

static void
gw__batch_count(struct gateway *g, size_t n)
{
    atomic_fetch_add(&g->stats.n_points, n);
    int b = 0;
    for (size_t lim = 1; b < 7 && n > lim; lim *= 10)
        b++;
    atomic_fetch_add(&g->stats.batch_points_bucket[b], 1);
}

/* POST /api/v2/runs/{run}/log-batch {"metrics","params","tags"}: one
 * command, all or nothing. */
void
gw_metric_log_batch(struct gw_ctx *c)
{
    static const char *const fields[] = {"metrics", "params", "tags", NULL};
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m;
    struct proto_metrics_builder mb;
    json_t *ms;
    size_t n;
    proto_metrics_init(&mb);
    json_t *j = gw__body(c);
    if (j == NULL)
        goto out;
    if (gw__only(c, j, "log-batch", fields) != 0 ||
        gw__kvs(c, j, "params", CONTRACT_MAX_PARAMS_PER_COMMAND,
                CONTRACT_MAX_PARAM_VALUE_BYTES, &lb.params,
                &lb.n_params) != 0 ||
        gw__kvs(c, j, "tags", CONTRACT_MAX_TAGS_PER_COMMAND,
                CONTRACT_MAX_TAG_VALUE_BYTES, &lb.tags, &lb.n_tags) != 0 ||
        gw__metric_count(c, j, &ms, &n) != 0 ||
        gw__metric_points(c, ms, n, &mb) != 0)
        goto out;
    if (mb.n > 0) { /* No point: the log batch has no metrics. */
        proto_metrics_view(&mb, &m);
        lb.metrics = &m;
    }
    lb.run_id = c->param[GW_P_RUN];
    if (gw__stamp(c, &cmd) != 0)
        goto out;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r == NULL)
        goto out;
    gw__batch_count(c->x->g, n);
    gw_reply_json(c->x, 200, gw__index_reply(r));
out:
    proto_metrics_free(&mb);
    json_decref(j);
}

/* ---- History ------------------------------------------------------------ */

/* GET /api/v2/runs/{run}/metrics: one series (key=), or every series
 * of the run from its summary. */
/* The points of a history answer: [[step, timestamp_ms, value], ...]. */
static json_t *
gw__points_json(const Rv__Response *r)
{
    json_t *pts = json_array();
    for (size_t i = 0; pts != NULL && i < r->n_steps; i++) {
        json_t *p = json_array();
        json_array_append_new(p, json_integer(r->steps[i]));
        json_array_append_new(p, json_integer(r->timestamps_ms[i]));
        json_array_append_new(p, gw_json_double(r->values[i]));
        json_array_append_new(pts, p);
    }
    return pts;
}

void
gw_metric_history(struct gw_ctx *c)
{
    char *run_id = c->param[GW_P_RUN];
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
    const char *key, *ctx;
    int64_t min_step = 0, max_step = 0;
    uint64_t ds = 0;
    int has_min, has_max, has_ds;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_str(c, "key", CONTRACT_MAX_KEY_BYTES, &key) != 0 ||
        gw__q_str(c, "context", CONTRACT_MAX_CONTEXT_BYTES, &ctx) != 0 ||
        gw__q_i64(c, "min_step", INT64_MIN, INT64_MAX, &min_step, &has_min) !=
            0 ||
        gw__q_i64(c, "max_step", INT64_MIN, INT64_MAX, &max_step, &has_max) !=
            0 ||
        gw__q_u64(c, "downsample", CONTRACT_MAX_DOWNSAMPLE, &ds, &has_ds) != 0)
        return;
    if (key == NULL) {
        /* No key: the run's series, from its summary. */
        Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
        gr.run_id = run_id;
        req.body_case = RV__REQUEST__BODY_GET_RUN;
        req.get_run = &gr;
        const Rv__Response *r = gw__call(c, &req);
        if (r == NULL || r->run == NULL) {
            if (r != NULL)
                gw_reply_error(c->x, RV_ENOTFOUND, NULL);
            return;
        }
        json_t *full = gw__run_full_json(r->run);
        json_t *arr = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(full, "summary"), k, v)
            json_array_append(arr, v);
        json_decref(full);
        gw_reply_json(c->x, 200,
                      json_pack("{s:o,s:f}", "metrics", arr, "query_time_ms",
                                gw__elapsed_ms(c->x)));
        return;
    }
    h.run_id = run_id;
    h.key = (char *)key;
    h.context = (char *)ctx;
    h.has_min_step = has_min;
    h.min_step = min_step;
    h.has_max_step = has_max;
    h.max_step = max_step;
    h.has_downsample = has_ds && ds > 0;
    h.downsample = (uint32_t)ds;
    req.body_case = RV__REQUEST__BODY_HISTORY;
    req.history = &h;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *pts = gw__points_json(r);
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:s,s:o,s:I,s:f}", "key", key, "context",
                            ctx != NULL ? ctx : "", "points", pts,
                            "applied_index", (json_int_t)r->applied_index,
                            "query_time_ms", gw__elapsed_ms(c->x)));
}

/* POST /api/v2/metrics/query {"runs":[ID,...],"key","context"?,
 * "downsample","min_step"?,"max_step"?}: one series of up to
 * GATEWAY_MAX_HISTORY_RUNS runs in one answer (a comparison chart's
 * data: one request instead of one a run), each read through the node
 * with the caller's token like GET /api/v2/runs/{id}/metrics. A read, in
 * a body because a hundred run ids do not fit a request line. A run that
 * is missing, another team's or lacks the series is an entry with its
 * error, not a failed answer. */
void
gw_metric_histories(struct gw_ctx *c)
{
    static const char *const fields[] = {
        "runs", "key", "context", "downsample", "min_step", "max_step", NULL};
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
    char *key = NULL, *ctx = NULL;
    int64_t min_step = INT64_MIN, max_step = INT64_MAX, ds = 0;
    json_t *arr = NULL, *j = gw__body(c);
    if (j == NULL)
        return;
    json_t *runs = json_object_get(j, "runs");
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__only(c, j, "the query", fields) != 0 ||
        gw__str(c, j, "key", 1, CONTRACT_MAX_KEY_BYTES, &key) != 0 ||
        gw__str(c, j, "context", 0, CONTRACT_MAX_CONTEXT_BYTES, &ctx) != 0 ||
        gw__int(c, j, "downsample", "the query", 1, CONTRACT_MAX_DOWNSAMPLE,
                &ds) != 0 ||
        gw__int(c, j, "min_step", "the query", INT64_MIN, INT64_MAX,
                &min_step) != 0 ||
        gw__int(c, j, "max_step", "the query", INT64_MIN, INT64_MAX,
                &max_step) != 0)
        goto out;
    if (ds == 0) { /* Up to a hundred whole series is not an answer. */
        gw__reject(c, RV_EINVAL, "downsample (1 to %d) is required",
                   CONTRACT_MAX_DOWNSAMPLE);
        goto out;
    }
    if (!json_is_array(runs) || json_array_size(runs) == 0 ||
        json_array_size(runs) > GATEWAY_MAX_HISTORY_RUNS) {
        gw__reject(c, RV_EINVAL, "'runs' must be an array of 1 to %d run ids",
                   GATEWAY_MAX_HISTORY_RUNS);
        goto out;
    }
    /* Check the whole list before the first read. */
    for (size_t i = 0; i < json_array_size(runs); i++) {
        const char *id = json_string_value(json_array_get(runs, i));
        if (id == NULL || gw__run_id(c, id) != 0) {
            if (id == NULL)
                gw__reject(c, RV_EINVAL, "runs[%zu] must be a run id", i);
            goto out;
        }
    }
    h.key = key;
    h.context = ctx;
    h.has_min_step = json_object_get(j, "min_step") != NULL;
    h.min_step = min_step;
    h.has_max_step = json_object_get(j, "max_step") != NULL;
    h.max_step = max_step;
    h.has_downsample = ds > 0;
    h.downsample = (uint32_t)ds;
    req.body_case = RV__REQUEST__BODY_HISTORY;
    req.history = &h;
    arr = json_array();
    for (size_t i = 0; arr != NULL && i < json_array_size(runs); i++) {
        const char *id = json_string_value(json_array_get(runs, i));
        h.run_id = (char *)id;
        const Rv__Response *r = gw__call_quiet(c, &req);
        json_t *e;
        if (r->code == RV_OK) {
            e = json_pack("{s:s,s:o}", "run_id", id, "points",
                          gw__points_json(r));
        } else if (r->code != RV_ENOTFOUND && r->code != RV_EINVAL) {
            /* The caller's token, a rate or the node, not this run: the
             * answer is that error. */
            gw_reply_error(c->x, (int)r->code, r->message);
            goto out;
        } else {
            e = json_pack("{s:s,s:s,s:s}", "run_id", id, "error_code",
                          r->code == RV_ENOTFOUND ? "RESOURCE_DOES_NOT_EXIST"
                                                  : "INVALID_PARAMETER_VALUE",
                          "message", r->message != NULL ? r->message : "");
        }
        json_array_append_new(arr, e);
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:s,s:O,s:f}", "key", key, "context",
                            ctx != NULL ? ctx : "", "series", arr,
                            "query_time_ms", gw__elapsed_ms(c->x)));
out:
    json_decref(arr);
    json_decref(j);
}
