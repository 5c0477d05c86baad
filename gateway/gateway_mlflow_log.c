/* MLflow's logging endpoints (DESIGN Appendix B.2): log-batch,
 * log-metric, log-parameter, set-tag, delete-tag (each one runvault
 * log_batch command: all of it applies or none), and metrics/get-history.
 * Limits as MLflow's: 1000 metrics, 100 params, 100 tags, 1000 in all. */
#include "base/parse.h"
#include "gateway/gateway_int.h"
#include "proto/metrics_builder.h"

#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_MLF_MAX_METRICS  1000
#define GW_MLF_MAX_PARAMS   100
#define GW_MLF_MAX_TAGS     100
#define GW_MLF_MAX_ENTITIES 1000
/* Command.content_key's length (STORE_CONTENT_KEY_BYTES). */
#define GW_MLF_CONTENT_KEY_BYTES 16

/* A metric object {"key","value","timestamp","step"?} of where into mb. */
static int
gw__mlf_metric(struct gw_ctx *c, json_t *p, const char *where,
               struct proto_metrics_builder *mb)
{
    const char *key;
    int64_t ts = 0, step = 0;
    int has_ts, has_step;
    double d;
    if (!json_is_object(p))
        return gw__reject(c, RV_EINVAL, "%s must be an object", where);
    if (gw__mlf_str(c, p, "key", 1, CONTRACT_MAX_KEY_BYTES, &key) != 0 ||
        gw__key(c, where, ".", key) != 0 ||
        gw__mlf_i64(c, p, "timestamp", INT64_MIN, INT64_MAX, &ts, &has_ts) !=
            0 ||
        gw__mlf_i64(c, p, "step", INT64_MIN, INT64_MAX, &step, &has_step) != 0)
        return -1;
    if (!has_ts)
        return gw__reject(c, RV_EINVAL,
                          "Missing value for required parameter "
                          "'%s.timestamp'.",
                          where);
    json_t *v = json_object_get(p, "value");
    const char *vs = json_string_value(v);
    if (json_is_number(v))
        d = json_number_value(v);
    else if (vs != NULL && (strcmp(vs, "NaN") == 0 || strcmp(vs, "nan") == 0))
        d = NAN;
    else if (vs != NULL && strcmp(vs, "Infinity") == 0)
        d = INFINITY;
    else if (vs != NULL && strcmp(vs, "-Infinity") == 0)
        d = -INFINITY;
    else
        return gw__reject(c, RV_EINVAL,
                          "Invalid value for parameter '%s.value': a number "
                          "or \"NaN\", \"Infinity\", \"-Infinity\"",
                          where);
    if (proto_metrics_add(mb, key, NULL, step, ts, d, NULL) != RV_OK) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        return -1;
    }
    return 0;
}

/* The array member name of j (absent or null: none) of at most max
 * elements, in MLflow's words. Returns 0, or -1 when answered. */
static int
gw__mlf_array(struct gw_ctx *c, json_t *j, const char *name, size_t max,
              json_t **out, size_t *n)
{
    *out = json_object_get(j, name);
    *n = json_is_array(*out) ? json_array_size(*out) : 0;
    if (*out != NULL && !json_is_null(*out) && !json_is_array(*out))
        return gw__reject(c, RV_EINVAL, "'%s' must be an array", name);
    if (*n > max)
        return gw__reject(c, RV_EINVAL,
                          "A batch logging request can contain at most %zu "
                          "%s. Got %zu %s. Please split up %s across "
                          "multiple requests and try again.",
                          max, name, *n, name, name);
    return 0;
}

/* Params of a request: no key twice with different values (MLflow). */
static int
gw__mlf_params_check(struct gw_ctx *c, Rv__KV **p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(p[i]->value) > CONTRACT_MAX_PARAM_VALUE_BYTES)
            return gw__reject(c, RV_EINVAL,
                              "Param value '%.32s...' had length %zu, which "
                              "exceeded length limit of %d",
                              p[i]->value, strlen(p[i]->value),
                              CONTRACT_MAX_PARAM_VALUE_BYTES);
        for (size_t k = i + 1; k < n; k++)
            if (strcmp(p[i]->key, p[k]->key) == 0 &&
                strcmp(p[i]->value, p[k]->value) != 0)
                return gw__reject(c, RV_EINVAL,
                                  "Duplicate parameter keys have been "
                                  "submitted: '%.64s'",
                                  p[i]->key);
    }
    return 0;
}

/* One log_batch command to the run; answers {} when it applied. Without
 * an Idempotency-Key, a batch with metrics carries a content key (the first
 * 16 bytes of the SHA-256 of the packed LogBatch): the store skips the
 * points of a batch its run saw within the window, so a retry after a lost
 * answer does not log them twice (docs/MLFLOW.md, "Retries"). */
static void
gw__mlf_send(struct gw_ctx *c, Rv__LogBatch *lb, size_t n_points)
{
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    uint8_t digest[SHA256_DIGEST_SIZE];
    if (gw__stamp(c, &cmd) != 0)
        return;
    if (c->x->idempotency_key == NULL && lb->metrics != NULL &&
        lb->metrics->n_values > 0) {
        size_t n = rv__log_batch__get_packed_size(lb);
        uint8_t *packed = gw__alloc(c, n > 0 ? n : 1);
        struct sha256_ctx h;
        if (packed == NULL) {
            gw_reply_error(c->x, RV_ENOMEM, NULL);
            return;
        }
        rv__log_batch__pack(lb, packed);
        sha256_init(&h);
        sha256_update(&h, n, packed);
        sha256_digest(&h, sizeof digest, digest);
        cmd.has_content_key = 1;
        cmd.content_key.data = digest;
        cmd.content_key.len = GW_MLF_CONTENT_KEY_BYTES;
    }
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = lb;
    if (gw__write(c, cmds, 1) == NULL)
        return;
    atomic_fetch_add(&c->x->g->stats.n_points, n_points);
    gw__mlf_reply_empty(c);
}

/* Repeated params with equal values are sent once (apply refuses a
 * repeated key in one command). */
static size_t
gw__mlf_params_dedup(Rv__KV **p, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < out && !seen; k++)
            seen = strcmp(p[k]->key, p[i]->key) == 0;
        if (!seen)
            p[out++] = p[i];
    }
    return out;
}

/* POST runs/log-batch {"run_id","metrics"?,"params"?,"tags"?} */
void
gw_mlf_log_batch(struct gw_ctx *c)
{
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m;
    struct proto_metrics_builder mb;
    const char *run_id;
    proto_metrics_init(&mb);
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        goto out;
    if (gw__mlf_run_id(c, j, &run_id) != 0)
        goto out;
    json_t *ms;
    size_t n_m;
    if (gw__mlf_array(c, j, "metrics", GW_MLF_MAX_METRICS, &ms, &n_m) != 0)
        goto out;
    if (gw__mlf_tags(c, j, "params", GW_MLF_MAX_PARAMS, &lb.params,
                     &lb.n_params) != 0 ||
        gw__mlf_tags(c, j, "tags", GW_MLF_MAX_TAGS, &lb.tags, &lb.n_tags) !=
            0 ||
        gw__mlf_params_check(c, lb.params, lb.n_params) != 0)
        goto out;
    if (n_m + lb.n_params + lb.n_tags > GW_MLF_MAX_ENTITIES) {
        gw__reject(c, RV_EINVAL,
                   "A batch logging request can contain at most %d metrics, "
                   "params and tags in total. Got %zu.",
                   GW_MLF_MAX_ENTITIES, n_m + lb.n_params + lb.n_tags);
        goto out;
    }
    lb.n_params = gw__mlf_params_dedup(lb.params, lb.n_params);
    /* Tags: the last value of a repeated key counts (MLflow's overwrite). */
    size_t nt = 0;
    for (size_t i = 0; i < lb.n_tags; i++) {
        int later = 0;
        for (size_t k = i + 1; k < lb.n_tags && !later; k++)
            later = strcmp(lb.tags[i]->key, lb.tags[k]->key) == 0;
        if (!later)
            lb.tags[nt++] = lb.tags[i];
    }
    lb.n_tags = nt;
    for (size_t i = 0; i < n_m; i++) {
        char where[32];
        snprintf(where, sizeof where, "metrics[%zu]", i);
        if (gw__mlf_metric(c, json_array_get(ms, i), where, &mb) != 0)
            goto out;
    }
    if (mb.n > 0) {
        proto_metrics_view(&mb, &m);
        lb.metrics = &m;
    }
    lb.run_id = (char *)run_id;
    gw__mlf_send(c, &lb, mb.n);
out:
    proto_metrics_free(&mb);
    json_decref(j);
}

/* POST runs/log-metric {"run_id","key","value","timestamp","step"?} */
void
gw_mlf_log_metric(struct gw_ctx *c)
{
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m;
    struct proto_metrics_builder mb;
    const char *run_id;
    proto_metrics_init(&mb);
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        goto out;
    if (gw__mlf_run_id(c, j, &run_id) != 0 ||
        gw__mlf_metric(c, j, "metric", &mb) != 0)
        goto out;
    proto_metrics_view(&mb, &m);
    lb.metrics = &m;
    lb.run_id = (char *)run_id;
    gw__mlf_send(c, &lb, mb.n);
out:
    proto_metrics_free(&mb);
    json_decref(j);
}

/* log-parameter, set-tag, delete-tag: one key of the run. */
static void
gw__mlf_one(struct gw_ctx *c, int what)
{
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__KV kv = RV__KV__INIT, *kvs[1] = {&kv};
    const char *run_id, *key, *value = NULL;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    size_t max = what == 'p' ? CONTRACT_MAX_PARAM_VALUE_BYTES
                             : CONTRACT_MAX_TAG_VALUE_BYTES;
    if (gw__mlf_run_id(c, j, &run_id) != 0 ||
        gw__mlf_str(c, j, "key", 1, CONTRACT_MAX_KEY_BYTES, &key) != 0 ||
        gw__key(c, what == 'p' ? "param" : "tag", " ", key) != 0 ||
        (what != 'd' && gw__mlf_str(c, j, "value", 0, max, &value) != 0))
        goto out;
    lb.run_id = (char *)run_id;
    kv.key = (char *)key;
    kv.value = (char *)(value != NULL ? value : "");
    if (what == 'p') {
        lb.params = kvs;
        lb.n_params = 1;
    } else if (what == 't') {
        lb.tags = kvs;
        lb.n_tags = 1;
    } else {
        lb.delete_tags = (char **)&kv.key;
        lb.n_delete_tags = 1;
    }
    gw__mlf_send(c, &lb, 0);
out:
    json_decref(j);
}

void
gw_mlf_log_param(struct gw_ctx *c)
{
    gw__mlf_one(c, 'p');
}

void
gw_mlf_set_tag(struct gw_ctx *c)
{
    gw__mlf_one(c, 't');
}

void
gw_mlf_delete_tag(struct gw_ctx *c)
{
    gw__mlf_one(c, 'd');
}

/* The history of req (h its HistoryRequest): every point from h's
 * min_step on, or, when the series holds more than one read may answer
 * (RV_ETOOBIG), a window of steps from there that fits (h->max_step says
 * where it ends). The answer is never NULL. */
static const Rv__Response *
gw__mlf_history_read(struct gw_ctx *c, Rv__Request *req, int64_t max)
{
    Rv__HistoryRequest *h = req->history;
    const Rv__Response *r = gw__call_quiet(c, req);
    if (r->code != RV_ETOOBIG)
        return r;
    if (!h->has_min_step) { /* Where the series starts: its first point. */
        h->has_downsample = 1;
        h->downsample = 4;
        r = gw__call_quiet(c, req);
        h->has_downsample = 0;
        if (r->code != RV_OK || r->n_steps == 0)
            return r;
        h->has_min_step = 1;
        h->min_step = r->steps[0];
    }
    uint64_t window = (uint64_t)max * 4;
    for (;;) {
        h->has_max_step = 1;
        h->max_step = (uint64_t)INT64_MAX - (uint64_t)h->min_step < window
                          ? INT64_MAX
                          : h->min_step + (int64_t)window;
        r = gw__call_quiet(c, req);
        if (r->code != RV_ETOOBIG || window == 0)
            return r;
        window /= 8;
    }
}

/* GET metrics/get-history?run_id=&metric_key=&max_results=&page_token=
 * Points in step order; page_token "<step>:<skip>" is where the next page
 * starts (the step, and the points of that step already answered). */
void
gw_mlf_get_history(struct gw_ctx *c)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
    const char *run_id, *key, *token;
    int64_t max = CONTRACT_MAX_HISTORY_POINTS, from = 0, skip = 0;
    int has_max;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_run_id(c, j, &run_id) != 0 ||
        gw__mlf_str(c, j, "metric_key", 1, CONTRACT_MAX_KEY_BYTES, &key) != 0 ||
        gw__mlf_i64(c, j, "max_results", 1, CONTRACT_MAX_HISTORY_POINTS, &max,
                    &has_max) != 0 ||
        gw__mlf_str(c, j, "page_token", 0, 48, &token) != 0 ||
        gw__read_options(c, &req, &ro) != 0)
        goto out;
    if (token != NULL && token[0] != '\0') {
        const char *colon;
        if (rv_parse_i64_prefix(token, &from, &colon) != 0 || *colon != ':' ||
            rv_parse_i64(colon + 1, &skip) != 0 || skip < 0) {
            gw__reject(c, RV_EINVAL, "Invalid page token");
            goto out;
        }
        h.has_min_step = 1;
        h.min_step = from;
    }
    h.run_id = (char *)run_id;
    h.key = (char *)key;
    req.body_case = RV__REQUEST__BODY_HISTORY;
    req.history = &h;
    const Rv__Response *r = gw__mlf_history_read(c, &req, max);
    if (r->code == RV_ENOTFOUND && r->message != NULL &&
        strstr(r->message, "has no metric") != NULL) {
        /* A run without the metric has an empty history (MLflow). */
        gw_reply_json(c->x, 200, json_pack("{s:[]}", "metrics"));
        goto out;
    }
    if (r->code != RV_OK) {
        gw_reply_error(c->x, (int)r->code, r->message);
        goto out;
    }
    json_t *pts = json_array();
    size_t i = 0, n = 0;
    while (i < r->n_steps && token != NULL && token[0] != '\0' &&
           r->steps[i] == from && (int64_t)i < skip)
        i++;
    for (; pts != NULL && i < r->n_steps && (int64_t)n < max; i++, n++)
        json_array_append_new(
            pts, json_pack("{s:s,s:o,s:I,s:I}", "key", key, "value",
                           gw_json_double(r->values[i]), "timestamp",
                           (json_int_t)r->timestamps_ms[i], "step",
                           (json_int_t)r->steps[i]));
    json_t *o = json_pack("{s:o*}", "metrics", pts);
    if (o != NULL && i == r->n_steps && h.has_max_step &&
        h.max_step < INT64_MAX) {
        /* A window of a long series answered whole: the next page starts
         * after it. */
        char next[48];
        snprintf(next, sizeof next, "%lld:0", (long long)h.max_step + 1);
        json_object_set_new(o, "next_page_token", json_string(next));
    } else if (o != NULL && i < r->n_steps && n > 0) {
        /* The next page starts at the last step answered, after the
         * points of that step answered so far. */
        int64_t last = r->steps[i - 1];
        int64_t k = 0;
        for (size_t b = i; b > 0 && r->steps[b - 1] == last; b--)
            k++;
        char next[48];
        snprintf(next, sizeof next, "%lld:%lld", (long long)last, (long long)k);
        json_object_set_new(o, "next_page_token", json_string(next));
    }
    gw_reply_json(c->x, 200, o);
out:
    json_decref(j);
}

#define GW_MLF_BULK_RUNS_MAX    100  /* MLflow's limit of run_ids. */
#define GW_MLF_BULK_RESULTS_MAX 2500 /* Points per run, at most. */

/* GET metrics/get-history-bulk-interval?run_ids=..&metric_key=
 * &start_step=&end_step=&max_results= : each run's series, downsampled to
 * max_results points with runvault's min/max-preserving M4 (every
 * bucket's first, last, lowest and highest point), so spikes stay. */
void
gw_mlf_history_bulk(struct gw_ctx *c)
{
    Rv__ReadOptions ro;
    const char *key;
    int64_t max = GW_MLF_BULK_RESULTS_MAX, start = 0, end = 0;
    int has_max, has_start, has_end;
    json_t *j = gw__mlf_args(c), *out = json_array();
    if (j == NULL || out == NULL) {
        if (j != NULL)
            gw_reply_error(c->x, RV_ENOMEM, NULL);
        goto out;
    }
    json_t *ids = json_object_get(j, "run_ids");
    if (json_is_string(ids)) {
        json_t *a = json_array();
        json_array_append(a, ids);
        json_object_set_new(j, "run_ids", a);
        ids = a;
    }
    size_t n_ids = json_is_array(ids) ? json_array_size(ids) : 0;
    if (n_ids == 0 || n_ids > GW_MLF_BULK_RUNS_MAX) {
        gw__reject(c, RV_EINVAL,
                   "GetMetricHistoryBulkInterval request must specify 1 to "
                   "%d run_ids.",
                   GW_MLF_BULK_RUNS_MAX);
        goto out;
    }
    if (gw__mlf_str(c, j, "metric_key", 1, CONTRACT_MAX_KEY_BYTES, &key) != 0 ||
        gw__mlf_i64(c, j, "max_results", 1, GW_MLF_BULK_RESULTS_MAX, &max,
                    &has_max) != 0 ||
        gw__mlf_i64(c, j, "start_step", INT64_MIN, INT64_MAX, &start,
                    &has_start) != 0 ||
        gw__mlf_i64(c, j, "end_step", INT64_MIN, INT64_MAX, &end, &has_end) !=
            0)
        goto out;
    if (has_start != has_end || (has_start && start > end)) {
        gw__reject(c, RV_EINVAL,
                   "start_step and end_step go together, start_step <= "
                   "end_step");
        goto out;
    }
    for (size_t k = 0; k < n_ids; k++) {
        const char *rid = json_string_value(json_array_get(ids, k));
        Rv__Request req = RV__REQUEST__INIT;
        Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
        if (rid == NULL || !contract_run_id_valid(rid, strlen(rid))) {
            gw__reject(c, RV_ENOTFOUND, "Run '%.64s' not found",
                       rid != NULL ? rid : "");
            goto out;
        }
        if (gw__read_options(c, &req, &ro) != 0)
            goto out;
        h.run_id = (char *)rid;
        h.key = (char *)key;
        h.has_min_step = h.has_max_step = has_start;
        h.min_step = start;
        h.max_step = end;
        h.has_downsample = 1;
        h.downsample = (uint32_t)max;
        req.body_case = RV__REQUEST__BODY_HISTORY;
        req.history = &h;
        const Rv__Response *r = gw__call_quiet(c, &req);
        if (r->code == RV_ENOTFOUND && r->message != NULL &&
            strstr(r->message, "has no metric") != NULL)
            continue;
        if (r->code != RV_OK) {
            gw_reply_error(c->x, (int)r->code, r->message);
            goto out;
        }
        for (size_t i = 0; i < r->n_steps; i++)
            json_array_append_new(
                out, json_pack("{s:s,s:o,s:I,s:I,s:s}", "key", key, "value",
                               gw_json_double(r->values[i]), "timestamp",
                               (json_int_t)r->timestamps_ms[i], "step",
                               (json_int_t)r->steps[i], "run_id", rid));
    }
    gw_reply_json(c->x, 200, json_pack("{s:O}", "metrics", out));
out:
    json_decref(out);
    json_decref(j);
}

/* POST runs/log-inputs {"run_id","datasets":[{"tags"?,"dataset":{"name",
 * "digest","source_type","source","schema"?,"profile"?}}]}: each dataset
 * is the run tag GW_MLF_DATASET_TAG<digest> holding its DatasetInput JSON
 * (at most a tag value's bytes), all in one command; runs/get answers
 * them as inputs.dataset_inputs. */
void
gw_mlf_log_inputs(struct gw_ctx *c)
{
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    const char *run_id;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_run_id(c, j, &run_id) != 0)
        goto out;
    json_t *ds;
    size_t n;
    if (gw__mlf_array(c, j, "datasets", GW_MLF_MAX_TAGS, &ds, &n) != 0)
        goto out;
    Rv__KV *kvs = gw__alloc(c, (n ? n : 1) * sizeof *kvs);
    Rv__KV **ptrs = gw__alloc(c, (n ? n : 1) * sizeof *ptrs);
    if (kvs == NULL || ptrs == NULL) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *in = json_array_get(ds, i), *d = json_object_get(in, "dataset");
        const char *digest, *name;
        char where[32];
        snprintf(where, sizeof where, "datasets[%zu]", i);
        if (!json_is_object(d)) {
            gw__reject(c, RV_EINVAL, "%s.dataset must be an object", where);
            goto out;
        }
        if (gw__mlf_str(c, d, "name", 1, CONTRACT_MAX_NAME_BYTES, &name) != 0 ||
            gw__mlf_str(c, d, "digest", 1, 64, &digest) != 0)
            goto out;
        size_t kn = sizeof GW_MLF_DATASET_TAG + strlen(digest);
        /* The JSON into the exchange's blocks (jansson's memory is the
         * worker's arena, not malloc's). */
        size_t vn = json_dumpb(in, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
        char *key = gw__alloc(c, kn), *kept = gw__alloc(c, vn + 1);
        if (key == NULL || kept == NULL || vn == 0) {
            gw_reply_error(c->x, RV_ENOMEM, NULL);
            goto out;
        }
        json_dumpb(in, kept, vn, JSON_COMPACT | JSON_SORT_KEYS);
        kept[vn] = '\0';
        snprintf(key, kn, "%s%s", GW_MLF_DATASET_TAG, digest);
        if (gw__key(c, where, ".digest ", key) != 0)
            goto out;
        if (vn > CONTRACT_MAX_TAG_VALUE_BYTES) {
            gw__reject(c, RV_EINVAL,
                       "%s is %zu bytes of JSON, at most %d (schema and "
                       "profile included)",
                       where, vn, CONTRACT_MAX_TAG_VALUE_BYTES);
            goto out;
        }
        rv__kv__init(&kvs[i]);
        kvs[i].key = key;
        kvs[i].value = kept;
        ptrs[i] = &kvs[i];
    }
    lb.run_id = (char *)run_id;
    lb.tags = ptrs;
    lb.n_tags = gw__mlf_params_dedup(ptrs, n); /* A digest twice: once. */
    gw__mlf_send(c, &lb, 0);
out:
    json_decref(j);
}
