/* The route table and its dispatcher: which handler answers a method and
 * a path, the path parameters it gets (extracted and checked once, here),
 * the 404 and 405 answers, and a handler's context (its allocations and
 * its call to the node). How to add a resource: gateway_int.h. */
#include "base/parse.h"
#include "gateway/gateway_int.h"
#include "rpc/server.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- A handler's context ------------------------------------------------ */

/* Everything a handler allocates for its native request lives in blocks
 * freed when the exchange ends. */
struct gw_block {
    struct gw_block *next;
    max_align_t align[];
};

void *
gw__alloc(struct gw_ctx *c, size_t n)
{
    struct gw_block *b = calloc(1, sizeof *b + (n ? n : 1));
    if (b == NULL)
        return NULL;
    b->next = c->blocks;
    c->blocks = b;
    return b->align;
}

static void
gw__free_all(struct gw_ctx *c)
{
    while (c->blocks != NULL) {
        struct gw_block *b = c->blocks;
        c->blocks = b->next;
        free(b);
    }
}

int
gw__reject(struct gw_ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    gw_reply_error(c->x, code, c->errmsg);
    return -1;
}

const Rv__Response *
gw__call_quiet(struct gw_ctx *c, Rv__Request *req)
{
    const struct gw_node_ops *ops = c->x->ops;
    /* Every request carries the caller's token (or none, or "" for a
     * malformed header): the node authenticates it, never the gateway. */
    req->token = (char *)c->x->token;
    return ops != NULL ? ops->answer(ops->data, req)
                       : rpc_caller_answer(c->x->caller, req);
}

const Rv__Response *
gw__call(struct gw_ctx *c, Rv__Request *req)
{
    const Rv__Response *r = gw__call_quiet(c, req);
    int code = (int)r->code;
    const char *message = r->message;
    /* A write's refusal (a rate limit at admission included) may come as
     * its first command's result. */
    if (code == RV_OK && r->n_results > 0 && r->results[0]->code == RV_ERATE) {
        code = RV_ERATE;
        message = r->results[0]->message;
    }
    if (code != RV_OK) {
        gw_reply_error(c->x, code, message);
        if (code == RV_ERATE && r->has_retry_after_s &&
            r->retry_after_s > c->x->retry_after_s)
            c->x->retry_after_s = r->retry_after_s;
        return NULL;
    }
    return r;
}

/* ---- Path parameters ---------------------------------------------------- */

static int
gw__node_id(struct gw_ctx *c, const char *s)
{
    uint64_t id;
    if (s[0] == '0' || rv_parse_u64(s, &id) != 0) {
        gw_reply_error(c->x, RV_EINVAL, "a node id is a positive integer");
        return -1;
    }
    c->node_id = (uint64_t)id;
    return 0;
}

int
gw__token_id(struct gw_ctx *c, const char *id)
{
    if (!rv_token_id_valid(id, strlen(id))) {
        return gw__reject(c, RV_ENOTFOUND,
                          "no token '%.64s': a token id is %d lower-case hex "
                          "digits",
                          id, RV_TOKEN_ID_CHARS);
    }
    return 0;
}

static int
gw__team_param(struct gw_ctx *c, const char *team)
{
    return gw__team(c, "the path's team", team);
}

static int
gw__project_param(struct gw_ctx *c, const char *project)
{
    size_t n = strlen(project);
    if (n == 0 || n > CONTRACT_MAX_SCOPE_BYTES ||
        !contract_utf8_valid(project, n))
        return gw__reject(c, RV_EINVAL,
                          "the path's project must be 1 to %d bytes of UTF-8",
                          CONTRACT_MAX_SCOPE_BYTES);
    return 0;
}

/* What a {name} in a pattern matches and how it is checked. check answers
 * a bad value itself (400) and returns -1; NULL: any value. */
static const struct {
    const char *name;
    int is_rest;          /* The rest of the path, slashes included. */
    int is_route_counted; /* A bad value counts under the row's route. */
    int (*check)(struct gw_ctx *c, const char *value);
} gw_params[GW_N_PARAMS] = {
    [GW_P_RUN] = {"run", 0, 0, gw__run_id},
    [GW_P_NODE] = {"node", 1, 1, gw__node_id},
    [GW_P_PATH] = {"path", 1, 0, NULL},
    [GW_P_TEAM] = {"team", 0, 1, gw__team_param},
    [GW_P_TOKEN] = {"token", 0, 1, gw__token_id},
    [GW_P_PROJECT] = {"project", 0, 1, gw__project_param},
};

/* ---- The table ----------------------------------------------------------- */

#define GW_F_READ   1u /* Reads. */
#define GW_F_WRITE  2u /* Writes commands through raft. */
#define GW_F_MLFLOW 4u /* MLflow's API: its error statuses. */
/* The operations rows (/healthz, /readyz, /metrics, /api/config) read only
 * this node's replica state and counters, no run data, and never call the
 * node: they stay open whatever the auth mode, as do the web UI's static
 * files. Every other row reaches
 * the node through gw__call, which carries the caller's token. */

/* One endpoint. Rows with the same pattern are one resource with several
 * methods (the first row's route counts a 405; Allow lists them in table
 * order). "GET" also answers HEAD. max_body: the JSON body's limit, 413
 * before the handler runs; 0 leaves the server's (GATEWAY_MAX_RAW_BODY). */
struct gw_route_row {
    const char *method;
    const char *pattern; /* Literal text and {param}s of gw_params. */
    enum gw_route route; /* Counters of /metrics. */
    unsigned flags;      /* GW_F_*. */
    size_t max_body;
    gw_handler handler;
};

#define GW_JSON GATEWAY_MAX_JSON_BODY

/* Rows are tried in order; the first full match wins. */
static const struct gw_route_row gw_routes[] = {
    /* Operations (gateway_json_ops.c). */
    {"GET", "/healthz", GW_R_HEALTHZ, GW_F_READ, 0, gw_ops_healthz},
    {"GET", "/readyz", GW_R_READYZ, GW_F_READ, 0, gw_ops_readyz},
    {"GET", "/metrics", GW_R_METRICS, GW_F_READ, 0, gw_ops_metrics},
    {"GET", "/api/config", GW_R_CONFIG, GW_F_READ, 0, gw_ops_config},
    /* The web UI (gateway_ui.c): static assets, no run data, open. */
    {"GET", "/", GW_R_UI, GW_F_READ, 0, gw_ui_get},
    {"GET", "/ui/{path}", GW_R_UI, GW_F_READ, 0, gw_ui_get},
    /* The cluster (gateway_json_cluster.c). */
    {"GET", "/api/v2/cluster", GW_R_CLUSTER, GW_F_READ, 0, gw_cluster_get},
    {"POST", "/api/v2/cluster/nodes", GW_R_CLUSTER, GW_F_WRITE, GW_JSON,
     gw_cluster_node_add},
    {"DELETE", "/api/v2/cluster/nodes/{node}", GW_R_CLUSTER, GW_F_WRITE, 0,
     gw_cluster_node_remove},
    {"POST", "/api/v2/cluster/transfer", GW_R_CLUSTER, GW_F_WRITE, GW_JSON,
     gw_cluster_transfer},
    /* Runs (gateway_json_run.c). */
    {"GET", "/api/v2/experiments", GW_R_LIST, GW_F_READ, 0, gw_run_list},
    {"POST", "/api/v2/experiments/search", GW_R_LIST, GW_F_READ, GW_JSON,
     gw_run_search},
    {"GET", "/api/runs", GW_R_LIST, GW_F_READ, 0, gw_run_list},
    {"GET", "/api/v2/analytics", GW_R_ANALYTICS, GW_F_READ, 0,
     gw_run_analytics},
    {"POST", "/api/v2/runs", GW_R_CREATE, GW_F_WRITE, GW_JSON, gw_run_create},
    {"GET", "/api/v2/runs/{run}", GW_R_GET, GW_F_READ, 0, gw_run_get},
    {"POST", "/api/v2/runs/{run}/status", GW_R_STATUS, GW_F_WRITE, GW_JSON,
     gw_run_set_status},
    {"POST", "/api/v2/runs/{run}/delete", GW_R_DELETE, GW_F_WRITE, 0,
     gw_run_delete},
    {"POST", "/api/v2/runs/{run}/restore", GW_R_RESTORE, GW_F_WRITE, 0,
     gw_run_restore},
    {"POST", "/api/v2/runs/{run}/purge", GW_R_PURGE, GW_F_WRITE, 0,
     gw_run_purge},
    /* Metrics (gateway_json_metric.c). */
    {"POST", "/api/v2/runs/{run}/log-batch", GW_R_LOG_BATCH, GW_F_WRITE,
     GW_JSON, gw_metric_log_batch},
    {"GET", "/api/v2/runs/{run}/metrics", GW_R_HISTORY, GW_F_READ, 0,
     gw_metric_history},
    {"POST", "/api/v2/metrics/query", GW_R_HISTORY, GW_F_READ, GW_JSON,
     gw_metric_histories},
    /* Log lines (gateway_json_log.c). */
    {"GET", "/api/v2/runs/{run}/logs", GW_R_LOGS_GET, GW_F_READ, 0,
     gw_log_read},
    {"POST", "/api/v2/runs/{run}/logs", GW_R_LOGS_POST, GW_F_WRITE, GW_JSON,
     gw_log_append},
    /* Artifacts (gateway_json_artifact.c). */
    {"GET", "/api/v2/runs/{run}/artifacts", GW_R_ARTIFACT_LIST, GW_F_READ, 0,
     gw_artifact_list},
    {"GET", "/api/v2/runs/{run}/artifacts/{path}", GW_R_ARTIFACT_GET, GW_F_READ,
     0, gw_artifact_get},
    {"PUT", "/api/v2/runs/{run}/artifacts/{path}", GW_R_ARTIFACT_PUT,
     GW_F_WRITE, 0, gw_artifact_put},
    /* Teams, quotas, tokens, audit (gateway_json_admin.c). */
    {"POST", "/api/v2/teams", GW_R_TEAMS, GW_F_WRITE, GW_JSON,
     gw_admin_team_create},
    {"GET", "/api/v2/teams", GW_R_TEAMS, GW_F_READ, 0, gw_admin_team_list},
    {"PUT", "/api/v2/teams/{team}/quota", GW_R_QUOTA, GW_F_WRITE, GW_JSON,
     gw_admin_quota_put},
    {"POST", "/api/v2/tokens", GW_R_TOKENS, GW_F_WRITE, GW_JSON,
     gw_admin_token_create},
    {"GET", "/api/v2/tokens", GW_R_TOKENS, GW_F_READ, 0, gw_admin_token_list},
    {"DELETE", "/api/v2/tokens/{token}", GW_R_TOKEN_DEL, GW_F_WRITE, 0,
     gw_admin_token_revoke},
    {"GET", "/api/v2/whoami", GW_R_WHOAMI, GW_F_READ, 0, gw_admin_whoami},
    {"GET", "/api/v2/audit", GW_R_AUDIT, GW_F_READ, 0, gw_admin_audit},
    /* Retention (gateway_json_retention.c). */
    {"PUT", "/api/v2/projects/{project}/retention", GW_R_RETENTION, GW_F_WRITE,
     GW_JSON, gw_retention_put},
    {"DELETE", "/api/v2/projects/{project}/retention", GW_R_RETENTION,
     GW_F_WRITE, 0, gw_retention_delete},
    {"GET", "/api/v2/retention", GW_R_RETENTION, GW_F_READ, 0,
     gw_retention_list},
    {"POST", "/api/v2/compact", GW_R_COMPACT, GW_F_WRITE, 0, gw_compact},
/* MLflow REST 2.0 (gateway_mlflow*.c); /ajax-api/2.0/mlflow/ is an
 * alias. Reads answer GET (and POST with a body: searches). */
#define GW_MLF   "/api/2.0/mlflow/"
#define GW_MLF_R GW_R_MLFLOW_READ, GW_F_READ | GW_F_MLFLOW
#define GW_MLF_W GW_R_MLFLOW_WRITE, GW_F_WRITE | GW_F_MLFLOW
    {"POST", GW_MLF "experiments/create", GW_MLF_W, GW_JSON, gw_mlf_exp_create},
    {"GET", GW_MLF "experiments/get", GW_MLF_R, 0, gw_mlf_exp_get},
    {"GET", GW_MLF "experiments/get-by-name", GW_MLF_R, 0,
     gw_mlf_exp_get_by_name},
    {"POST", GW_MLF "experiments/search", GW_MLF_R, GW_JSON, gw_mlf_exp_search},
    {"GET", GW_MLF "experiments/search", GW_MLF_R, 0, gw_mlf_exp_search},
    {"POST", GW_MLF "experiments/update", GW_MLF_W, GW_JSON, gw_mlf_exp_update},
    {"POST", GW_MLF "experiments/delete", GW_MLF_W, GW_JSON, gw_mlf_exp_delete},
    {"POST", GW_MLF "experiments/restore", GW_MLF_W, GW_JSON,
     gw_mlf_exp_restore},
    {"POST", GW_MLF "experiments/set-experiment-tag", GW_MLF_W, GW_JSON,
     gw_mlf_exp_set_tag},
    {"POST", GW_MLF "experiments/delete-experiment-tag", GW_MLF_W, GW_JSON,
     gw_mlf_exp_delete_tag},
    {"POST", GW_MLF "runs/create", GW_MLF_W, GW_JSON, gw_mlf_run_create},
    {"GET", GW_MLF "runs/get", GW_MLF_R, 0, gw_mlf_run_get},
    {"POST", GW_MLF "runs/update", GW_MLF_W, GW_JSON, gw_mlf_run_update},
    {"POST", GW_MLF "runs/delete", GW_MLF_W, GW_JSON, gw_mlf_run_delete},
    {"POST", GW_MLF "runs/restore", GW_MLF_W, GW_JSON, gw_mlf_run_restore},
    {"POST", GW_MLF "runs/search", GW_MLF_R, GW_JSON, gw_mlf_run_search},
    {"POST", GW_MLF "runs/log-batch", GW_MLF_W, GW_JSON, gw_mlf_log_batch},
    {"POST", GW_MLF "runs/log-metric", GW_MLF_W, GW_JSON, gw_mlf_log_metric},
    {"POST", GW_MLF "runs/log-parameter", GW_MLF_W, GW_JSON, gw_mlf_log_param},
    {"POST", GW_MLF "runs/set-tag", GW_MLF_W, GW_JSON, gw_mlf_set_tag},
    {"POST", GW_MLF "runs/delete-tag", GW_MLF_W, GW_JSON, gw_mlf_delete_tag},
    {"POST", GW_MLF "runs/log-inputs", GW_MLF_W, GW_JSON, gw_mlf_log_inputs},
    {"GET", GW_MLF "metrics/get-history", GW_MLF_R, 0, gw_mlf_get_history},
    {"GET", GW_MLF "metrics/get-history-bulk-interval", GW_MLF_R, 0,
     gw_mlf_history_bulk},
    {"GET", GW_MLF "artifacts/list", GW_MLF_R, 0, gw_mlf_art_list_run},
    /* MLflow's artifact proxy (gateway_mlflow_art.c). */
    {"GET", "/api/2.0/mlflow-artifacts/artifacts", GW_MLF_R, 0,
     gw_mlf_art_list},
    {"GET", "/api/2.0/mlflow-artifacts/artifacts/{path}", GW_MLF_R, 0,
     gw_mlf_art_get},
    {"PUT", "/api/2.0/mlflow-artifacts/artifacts/{path}", GW_MLF_W, 0,
     gw_mlf_art_put},
#undef GW_MLF
#undef GW_MLF_R
#undef GW_MLF_W
};

#define GW_N_ROWS (sizeof gw_routes / sizeof gw_routes[0])

/* A second prefix for rows of the table: a path starting with from is
 * matched as if it started with to. A read-only alias answers every
 * method but GET and HEAD with 405 before anything else. */
static const struct {
    const char *from, *to;
    int is_read_only;
    const char *read_only_message;
} gw_aliases[] = {
    /* v1: reads only, the same shapes as v2. */
    {"/api/runs/", "/api/v2/runs/", 1,
     "the v1 API is read-only; write through /api/v2"},
    /* MLflow's UI calls the same endpoints under /ajax-api. */
    {"/ajax-api/2.0/mlflow/", "/api/2.0/mlflow/", 0, NULL},
    {"/ajax-api/2.0/mlflow-artifacts/", "/api/2.0/mlflow-artifacts/", 0, NULL},
};

/* ---- The matcher --------------------------------------------------------- */

enum gw_match { GW_MATCH_NONE, GW_MATCH_PARAM, GW_MATCH_FULL };

/* The parameters a match captured: not NUL-terminated, in the path. */
struct gw_capture {
    size_t n;
    enum gw_param kind[GW_N_PARAMS];
    const char *at[GW_N_PARAMS];
    size_t len[GW_N_PARAMS];
    size_t n_tail; /* Bytes of the path after its first segment param. */
};

static enum gw_param
gw__param_kind(const char *name, size_t n)
{
    for (int k = 0; k < GW_N_PARAMS; k++)
        if (strlen(gw_params[k].name) == n &&
            memcmp(gw_params[k].name, name, n) == 0)
            return (enum gw_param)k;
    assert(0 && "a pattern names a parameter gw_params lacks");
    return GW_N_PARAMS;
}

/* Match path against pattern. GW_MATCH_FULL: all of both; GW_MATCH_PARAM:
 * the path goes through at least one {param} of the pattern (its value
 * must then be checked even if the rest does not match); else NONE. */
static enum gw_match
gw__match(const char *pat, const char *path, struct gw_capture *cap)
{
    cap->n = 0;
    cap->n_tail = 0;
    while (*pat != '\0') {
        if (*pat == '{') {
            const char *close = strchr(pat, '}');
            enum gw_param k =
                close != NULL
                    ? gw__param_kind(pat + 1, (size_t)(close - pat - 1))
                    : GW_N_PARAMS;
            if (k == GW_N_PARAMS || cap->n == GW_N_PARAMS)
                return GW_MATCH_NONE; /* A broken pattern matches nothing. */
            size_t n = gw_params[k].is_rest ? strlen(path) : strcspn(path, "/");
            if (cap->n == 0)
                cap->n_tail = strlen(path + n);
            cap->kind[cap->n] = k;
            cap->at[cap->n] = path;
            cap->len[cap->n++] = n;
            path += n;
            pat = close + 1;
        } else if (*pat == *path) {
            pat++;
            path++;
        } else {
            break;
        }
    }
    if (*pat == '\0' && *path == '\0')
        return GW_MATCH_FULL;
    return cap->n > 0 ? GW_MATCH_PARAM : GW_MATCH_NONE;
}

/* Copy the captured parameters not taken yet into c and check them.
 * Returns 0, or -1 when a check answered (counted under row's route if
 * the parameter says so). */
static int
gw__params_take(struct gw_ctx *c, const struct gw_route_row *row,
                const struct gw_capture *cap, size_t *used)
{
    for (size_t i = 0; i < cap->n; i++) {
        enum gw_param k = cap->kind[i];
        if (c->param[k] != NULL)
            continue;
        c->param[k] = c->param_buf + *used;
        memcpy(c->param[k], cap->at[i], cap->len[i]);
        c->param[k][cap->len[i]] = '\0';
        *used += cap->len[i] + 1;
        if (gw_params[k].check != NULL &&
            gw_params[k].check(c, c->param[k]) != 0) {
            if (gw_params[k].is_route_counted)
                c->x->route = row->route;
            return -1;
        }
    }
    return 0;
}

/* The first row matching path in full, with its parameters taken, or
 * NULL: a 404 to answer, or a bad parameter answered (x->status set). A
 * parameter is checked as soon as the path goes through it, before the
 * rest of the path or the method: a bad run id is a 400 on any method
 * and below any sub-path. *n_tail: the bytes of the path after the first
 * parameter it went through (0 if none), which a 404 does not quote. */
static const struct gw_route_row *
gw__find(struct gw_ctx *c, const char *path, size_t *n_tail)
{
    size_t used = 0;
    *n_tail = 0;
    for (size_t i = 0; i < GW_N_ROWS; i++) {
        struct gw_capture cap;
        enum gw_match m = gw__match(gw_routes[i].pattern, path, &cap);
        if (m != GW_MATCH_NONE && used == 0)
            *n_tail = cap.n_tail;
        if (m != GW_MATCH_NONE &&
            gw__params_take(c, &gw_routes[i], &cap, &used) != 0)
            return NULL;
        if (m == GW_MATCH_FULL)
            return &gw_routes[i];
    }
    return NULL;
}

/* ---- The dispatcher ------------------------------------------------------ */

static int
gw__method_is(const struct gw_exchange *x, const char *m)
{
    return x->method != NULL && strcmp(x->method, m) == 0;
}

static int
gw__method_fits(const struct gw_exchange *x, const char *row_method)
{
    return gw__method_is(x, row_method) ||
           (strcmp(row_method, "GET") == 0 && gw__method_is(x, "HEAD"));
}

/* The row of hit's resource (same pattern) for x's method, or NULL with
 * the 405 answered, Allow listing the resource's methods. */
static const struct gw_route_row *
gw__pick_method(struct gw_ctx *c, const struct gw_route_row *hit)
{
    struct gw_exchange *x = c->x;
    size_t n = 0;
    x->allow_buf[0] = '\0';
    for (const struct gw_route_row *r = hit; r < gw_routes + GW_N_ROWS; r++) {
        if (strcmp(r->pattern, hit->pattern) != 0)
            continue;
        if (gw__method_fits(x, r->method))
            return r;
        size_t m = strlen(r->method);
        if (n + m + 2 <= sizeof x->allow_buf) {
            if (n > 0)
                x->allow_buf[n++] = ',';
            memcpy(x->allow_buf + n, r->method, m + 1);
            n += m;
        }
    }
    rv_errmsg_printf(c->errmsg, "%s is not allowed here; use %s",
                     x->method != NULL ? x->method : "this method",
                     x->allow_buf);
    gw_reply_status(x, 405, "METHOD_NOT_ALLOWED", c->errmsg);
    x->allow = x->allow_buf;
    return NULL;
}

/* The path to match: x's, or its alias's target in c->canon. NULL when a
 * read-only alias answered a write. */
static const char *
gw__unalias(struct gw_ctx *c, const char *path)
{
    for (size_t i = 0; i < sizeof gw_aliases / sizeof gw_aliases[0]; i++) {
        size_t n = strlen(gw_aliases[i].from);
        if (strncmp(path, gw_aliases[i].from, n) != 0)
            continue;
        if (gw_aliases[i].is_read_only && !gw__method_is(c->x, "GET") &&
            !gw__method_is(c->x, "HEAD")) {
            gw_reply_status(c->x, 405, "METHOD_NOT_ALLOWED",
                            gw_aliases[i].read_only_message);
            return NULL;
        }
        snprintf(c->canon, sizeof c->canon, "%s%s", gw_aliases[i].to, path + n);
        return c->canon;
    }
    return path;
}

static void
gw__dispatch(struct gw_ctx *c)
{
    struct gw_exchange *x = c->x;
    const char *path = gw__unalias(c, x->path);
    if (path == NULL)
        return;
    size_t n_tail;
    const struct gw_route_row *row = gw__find(c, path, &n_tail);
    if (row == NULL) {
        if (x->status != 0)
            return;
        /* The path up to its first parameter (below a run, the run's
         * path), at most 200 bytes, as the answer has always quoted it. */
        size_t n = strlen(x->path) - n_tail;
        rv_errmsg_printf(c->errmsg, "no endpoint %.*s",
                         (int)(n < 200 ? n : 200), x->path);
        gw_reply_status(x, 404, "ENDPOINT_NOT_FOUND", c->errmsg);
        return;
    }
    x->route = row->route;
    if ((row = gw__pick_method(c, row)) == NULL)
        return;
    x->route = row->route;
    x->is_mlflow = (row->flags & GW_F_MLFLOW) != 0;
    if (row->max_body != 0 && x->body_len > row->max_body) {
        rv_errmsg_printf(c->errmsg,
                         "the JSON body is %zu bytes, over the limit of %zu",
                         x->body_len, row->max_body);
        gw_reply_error(x, RV_ETOOBIG, c->errmsg);
        return;
    }
    row->handler(c);
}

void
gw_route(struct gw_exchange *x)
{
    struct gw_ctx c;
    memset(&c, 0, sizeof c);
    c.x = x;
    char *p = x->path;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    x->route = GW_R_NONE;
    gw_token_take(x);
    gw__dispatch(&c);
    if (x->status == 0)
        gw_reply_error(x, RV_EIO, "no answer was made");
    gw__free_all(&c);
}
