/* The HTTP server, the request queue and its workers, the error table and
 * /metrics (contract in gateway.h). */
#include "base/clock.h"
#include "gateway/gateway_int.h"
#include "raft/replica.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- The error table --------------------------------------------------- */

static const struct {
    int code;
    int status;
    const char *error_code;
} gw_errors[] = {
    {RV_EINVAL, 400, "INVALID_PARAMETER_VALUE"},
    {RV_EPARSE, 400, "INVALID_PARAMETER_VALUE"},
    {RV_EMALFORMED, 400, "MALFORMED_REQUEST"},
    {RV_ECONFLICT, 400, "INVALID_PARAMETER_VALUE"},
    {RV_ENOTFOUND, 404, "RESOURCE_DOES_NOT_EXIST"},
    {RV_EEXIST, 409, "RESOURCE_ALREADY_EXISTS"},
    {RV_ESTATE, 409, "INVALID_STATE"},
    {RV_ESTALE, 409, "INVALID_STATE"},
    {RV_ETOOBIG, 413, "REQUEST_TOO_LARGE"},
    {RV_EQUOTA, 429, "RESOURCE_EXHAUSTED"},
    {RV_ENOTLEADER, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_EUNAVAILABLE, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_ETIMEDOUT, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_EUNKNOWN, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_ENOMEM, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_ENOSPACE, 507, "INSUFFICIENT_STORAGE"},
    {RV_EIO, 500, "INTERNAL_ERROR"},
    {RV_ECORRUPT, 500, "INTERNAL_ERROR"},
};

int
gateway_status_of(int code, const char **error_code)
{
    for (size_t i = 0; i < sizeof gw_errors / sizeof gw_errors[0]; i++)
        if (gw_errors[i].code == code) {
            *error_code = gw_errors[i].error_code;
            return gw_errors[i].status;
        }
    *error_code = "INTERNAL_ERROR";
    return 500;
}

/* ---- Answers ------------------------------------------------------------ */

void
gw_reply_json(struct gw_exchange *x, int status, json_t *j)
{
    rv_buf_reset(&x->out);
    x->status = status;
    x->out_type = "application/json";
    if (j == NULL) {
        static const char oom[] = "{\"error_code\":\"TEMPORARILY_UNAVAILABLE\","
                                  "\"message\":\"out of memory\"}";
        x->status = 503;
        rv_buf_append(&x->out, oom, sizeof oom - 1);
        return;
    }
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (n > 0 && rv_buf_reserve(&x->out, n) == 0) {
        x->out.len = json_dumpb(j, (char *)x->out.data, n, JSON_COMPACT);
    } else {
        static const char fail[] = "{\"error_code\":\"INTERNAL_ERROR\","
                                   "\"message\":\"cannot encode the answer\"}";
        x->status = 500;
        rv_buf_append(&x->out, fail, sizeof fail - 1);
    }
    json_decref(j);
}

void
gw_reply_status(struct gw_exchange *x, int status, const char *error_code,
                const char *message)
{
    json_t *j = json_object();
    if (j != NULL) {
        json_object_set_new(j, "error_code", json_string(error_code));
        /* Messages may quote client input: keep only valid UTF-8. */
        json_t *m = json_string(message);
        if (m == NULL)
            m = json_string("(message not valid UTF-8)");
        json_object_set_new(j, "message", m);
    }
    gw_reply_json(x, status, j);
    x->is_retry_after = status == 503 || status == 429;
}

void
gw_reply_error(struct gw_exchange *x, int code, const char *message)
{
    const char *ec;
    int status = gateway_status_of(code, &ec);
    gw_reply_status(x, status, ec,
                    message != NULL && message[0] != '\0' ? message
                                                          : rv_strerror(code));
}

void
gw_reply_bytes(struct gw_exchange *x, int status, const char *type,
               const void *data, size_t n)
{
    rv_buf_reset(&x->out);
    x->status = status;
    x->out_type = type;
    rv_buf_append(&x->out, data, n);
}

const char *
gw_query(const struct gw_exchange *x, const char *name)
{
    for (size_t i = 0; i < x->n_query; i++)
        if (strcmp(x->query[i].key, name) == 0)
            return x->query[i].value;
    return NULL;
}

/* ---- Parsing the request line ------------------------------------------ */

static int
gw__hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s in place ('+' is a space in a query). The result must
 * be UTF-8 without NUL. Returns 0 or -1. */
static int
gw__decode(char *s, int is_query)
{
    char *o = s;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '%') {
            int h = gw__hex(p[1]), l = h < 0 ? -1 : gw__hex(p[2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -1;
            *o++ = (char)(h * 16 + l);
            p += 2;
        } else if (*p == '+' && is_query) {
            *o++ = ' ';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return store_utf8_valid(s, (size_t)(o - s)) ? 0 : -1;
}

int
gw_parse_uri(struct gw_exchange *x, char *uri, char *errmsg)
{
    char *q = strchr(uri, '?');
    if (q != NULL)
        *q++ = '\0';
    char *hash = q != NULL ? strchr(q, '#') : strchr(uri, '#');
    if (hash != NULL)
        *hash = '\0';
    if (gw__decode(uri, 0) != 0) {
        rv_errmsg_printf(errmsg, "the path has a bad %%-escape or is not "
                                 "UTF-8");
        return -1;
    }
    x->path = uri;
    for (char *p = q; p != NULL && *p != '\0';) {
        char *amp = strchr(p, '&');
        if (amp != NULL)
            *amp = '\0';
        if (*p != '\0') {
            if (x->n_query == GATEWAY_MAX_QUERY_PARAMS) {
                rv_errmsg_printf(errmsg, "more than %d query parameters",
                                 GATEWAY_MAX_QUERY_PARAMS);
                return -1;
            }
            char *eq = strchr(p, '=');
            if (eq != NULL)
                *eq++ = '\0';
            if (gw__decode(p, 1) != 0 ||
                (eq != NULL && gw__decode(eq, 1) != 0)) {
                rv_errmsg_printf(errmsg,
                                 "query parameter '%.64s' has a bad "
                                 "%%-escape or is not UTF-8",
                                 p);
                return -1;
            }
            for (size_t i = 0; i < x->n_query; i++)
                if (strcmp(x->query[i].key, p) == 0) {
                    rv_errmsg_printf(errmsg,
                                     "query parameter '%.64s' given twice", p);
                    return -1;
                }
            x->query[x->n_query].key = p;
            x->query[x->n_query].value = eq != NULL ? eq : (char *)"";
            x->n_query++;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}

/* ---- jansson's allocations ------------------------------------------------
 * A log batch of 1000 points is ~8000 small jansson allocations. While a
 * worker answers a request they come from its own arena (bump allocation,
 * free is a no-op, reset after the answer); everything jansson makes for a
 * request is released before the reset. Other threads, and allocations of
 * more than a quarter chunk, use malloc. json_set_alloc_funcs is
 * process-wide: gateway_start sets it once. */

#define GW_ARENA_CHUNK      (1u << 20)
#define GW_ARENA_MAX_CHUNKS 16

struct gw_arena {
    uint8_t *chunk[GW_ARENA_MAX_CHUNKS];
    size_t n_chunks, cur, used;
};

static _Thread_local struct gw_arena *gw_tl_arena;

static void *
gw__json_malloc(size_t n)
{
    struct gw_arena *a = gw_tl_arena;
    if (a == NULL || n > GW_ARENA_CHUNK / 4)
        return malloc(n);
    n = (n + 15u) & ~(size_t)15u;
    if (a->n_chunks == 0 || a->used + n > GW_ARENA_CHUNK) {
        if (a->n_chunks > 0 && a->cur + 1 < a->n_chunks) {
            a->cur++;
        } else if (a->n_chunks < GW_ARENA_MAX_CHUNKS) {
            uint8_t *c = malloc(GW_ARENA_CHUNK);
            if (c == NULL)
                return NULL;
            a->chunk[a->n_chunks] = c;
            a->cur = a->n_chunks++;
        } else {
            return malloc(n);
        }
        a->used = 0;
    }
    void *p = a->chunk[a->cur] + a->used;
    a->used += n;
    return p;
}

static void
gw__json_free(void *p)
{
    struct gw_arena *a = gw_tl_arena;
    if (p == NULL)
        return;
    for (size_t i = 0; a != NULL && i < a->n_chunks; i++)
        if ((uint8_t *)p >= a->chunk[i] &&
            (uint8_t *)p < a->chunk[i] + GW_ARENA_CHUNK)
            return;
    free(p);
}

static void
gw__arena_reset(struct gw_arena *a)
{
    a->cur = 0;
    a->used = 0;
}

static void
gw__arena_free(struct gw_arena *a)
{
    for (size_t i = 0; i < a->n_chunks; i++)
        free(a->chunk[i]);
    a->n_chunks = 0;
}

/* ---- The queue and the workers ----------------------------------------- */

struct gw_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    nng_aio **ring;
    size_t head, n;
    int is_stopping;
};

struct gw_server {
    struct gateway g;
    nng_http_server *http;
    nng_http_handler *handler;
    struct gw_queue q;
    pthread_t *threads;
    unsigned n_threads;
};

static uint64_t
gw__now_us(void)
{
    return rv_clock_mono_ns() / 1000u;
}

static const double gw_bucket_s[GW_N_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static void
gw__count(struct gateway *g, const struct gw_exchange *x)
{
    struct gw_route_stats *rs = &g->stats.routes[x->route];
    uint64_t us = gw__now_us() - x->start_us;
    int cls = x->status / 100;
    atomic_fetch_add(&rs->n_by_class[cls >= 1 && cls <= 5 ? cls : 0], 1);
    atomic_fetch_add(&rs->sum_us, us);
    atomic_fetch_add(&rs->n, 1);
    for (int i = 0; i < GW_N_BUCKETS; i++)
        if ((double)us / 1e6 <= gw_bucket_s[i]) {
            atomic_fetch_add(&rs->n_bucket[i], 1);
            break;
        }
}

/* Answer aio with x's answer (or a bare status when x is NULL). */
static void
gw__finish(nng_aio *aio, struct gw_exchange *x, int status, const char *body)
{
    nng_http_res *res;
    if (nng_http_res_alloc(&res) != 0) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    if (x != NULL) {
        status = x->status;
        body = NULL;
    }
    nng_http_res_set_status(res, (uint16_t)status);
    nng_http_res_set_header(
        res, "Content-Type",
        x != NULL && x->out_type != NULL ? x->out_type : "application/json");
    if ((x != NULL && x->is_retry_after) || (x == NULL && status >= 429))
        nng_http_res_set_header(res, "Retry-After", "1");
    if (x != NULL && x->allow != NULL)
        nng_http_res_set_header(res, "Allow", x->allow);
    int rv;
    if (x != NULL)
        rv = nng_http_res_copy_data(
            res, x->out.data != NULL ? (const void *)x->out.data : "",
            x->out.len);
    else
        rv = nng_http_res_copy_data(res, body, strlen(body));
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static const char gw_busy_body[] =
    "{\"error_code\":\"RESOURCE_EXHAUSTED\",\"message\":\"too many requests "
    "waiting on this node; retry later\"}";
static const char gw_stopping_body[] =
    "{\"error_code\":\"TEMPORARILY_UNAVAILABLE\",\"message\":\"the node is "
    "stopping\"}";

/* nng's HTTP thread: queue the request, never block. */
static void
gw__handle(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    struct gw_server *srv = nng_http_handler_get_data(h);
    struct gw_queue *q = &srv->q;
    pthread_mutex_lock(&q->lock);
    if (q->is_stopping || q->n == GATEWAY_MAX_QUEUED) {
        int is_stopping = q->is_stopping;
        pthread_mutex_unlock(&q->lock);
        if (!is_stopping)
            atomic_fetch_add(&srv->g.stats.n_rejected_queue, 1);
        gw__finish(aio, NULL, is_stopping ? 503 : 429,
                   is_stopping ? gw_stopping_body : gw_busy_body);
        return;
    }
    q->ring[(q->head + q->n) % GATEWAY_MAX_QUEUED] = aio;
    q->n++;
    atomic_store(&srv->g.stats.n_queued, q->n);
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

struct gw_worker_arg {
    struct gw_server *srv;
    unsigned index;
};

static void
gw__serve_one(struct gw_server *srv, struct rpc_caller *caller,
              uint64_t client_id, uint64_t *seq, nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    struct gw_exchange x;
    char errmsg[RV_ERRMSG_SIZE] = "";
    memset(&x, 0, sizeof x);
    x.g = &srv->g;
    x.caller = caller;
    x.start_us = gw__now_us();
    x.worker_client_id = client_id;
    x.worker_seq = seq;
    rv_buf_init(&x.out);
    const char *uri = nng_http_req_get_uri(req);
    size_t un = uri != NULL ? strlen(uri) : 0;
    char *copy = NULL;
    x.method = nng_http_req_get_method(req);
    if (un == 0 || un > GATEWAY_MAX_PATH_BYTES) {
        gw_reply_status(&x, 414, "INVALID_PARAMETER_VALUE",
                        "the request target is empty or longer than 2048 "
                        "bytes");
    } else if ((copy = malloc(un + 1)) == NULL) {
        gw_reply_error(&x, RV_ENOMEM, NULL);
    } else {
        memcpy(copy, uri, un + 1);
        if (gw_parse_uri(&x, copy, errmsg) != 0) {
            gw_reply_status(&x, 400, "INVALID_PARAMETER_VALUE", errmsg);
        } else {
            void *body;
            size_t bn;
            nng_http_req_get_data(req, &body, &bn);
            x.body = body;
            x.body_len = bn;
            x.idempotency_key = nng_http_req_get_header(req, "Idempotency-Key");
            x.content_type = nng_http_req_get_header(req, "Content-Type");
            gw_route(&x);
        }
    }
    gw__count(&srv->g, &x);
    gw__finish(aio, &x, 0, NULL);
    rv_buf_free(&x.out);
    free(copy);
}

static void *
gw__worker(void *arg)
{
    struct gw_worker_arg *a = arg;
    struct gw_server *srv = a->srv;
    struct gw_queue *q = &srv->q;
    struct rpc_caller *caller = NULL;
    /* Writes without an Idempotency-Key get this worker's own client id:
     * one request at a time, so its sequence numbers arrive in order. */
    uint64_t client_id = srv->g.boot_client_base + a->index, seq = 0;
    struct gw_arena arena;
    memset(&arena, 0, sizeof arena);
    if (rpc_caller_new(srv->g.cfg.rpc, &caller) != RV_OK)
        caller = NULL;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (q->n == 0 && !q->is_stopping)
            pthread_cond_wait(&q->cond, &q->lock);
        if (q->n == 0) {
            pthread_mutex_unlock(&q->lock);
            break;
        }
        nng_aio *aio = q->ring[q->head];
        q->head = (q->head + 1) % GATEWAY_MAX_QUEUED;
        q->n--;
        atomic_store(&srv->g.stats.n_queued, q->n);
        int is_stopping = q->is_stopping;
        pthread_mutex_unlock(&q->lock);
        if (is_stopping || caller == NULL)
            gw__finish(aio, NULL, 503, gw_stopping_body);
        else {
            gw_tl_arena = &arena;
            gw__serve_one(srv, caller, client_id, &seq, aio);
            gw_tl_arena = NULL;
            gw__arena_reset(&arena);
        }
    }
    gw__arena_free(&arena);
    rpc_caller_free(caller);
    free(a);
    return NULL;
}

/* ---- Start and stop ------------------------------------------------------ */

static uint64_t
gw__random64(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(&v, sizeof v, 1, f) != 1)
            v = 0;
        fclose(f);
    }
    if (v == 0)
        v = rv_clock_mono_ns() ^ ((uint64_t)getpid() << 32);
    return v;
}

int
gateway_start(struct gateway **out, const struct gateway_config *cfg,
              char *errmsg)
{
    struct gw_server *srv = calloc(1, sizeof *srv);
    char url[160];
    nng_url *u = NULL;
    if (srv == NULL)
        return RV_ENOMEM;
    struct gateway *g = &srv->g;
    g->cfg = *cfg;
    snprintf(g->http_addr, sizeof g->http_addr, "%s", cfg->http_addr);
    snprintf(g->rpc_addr, sizeof g->rpc_addr, "%s",
             cfg->rpc_addr ? cfg->rpc_addr : "");
    snprintf(g->raft_addr, sizeof g->raft_addr, "%s",
             cfg->raft_addr ? cfg->raft_addr : "");
    g->data_dir = strdup(cfg->data_dir ? cfg->data_dir : ".");
    /* The top bit keeps these clear of SDK client ids (63-bit), the low
     * byte leaves room for the worker index. */
    g->boot_client_base = (gw__random64() | (1ull << 63)) & ~0xffffull;
    g->cfg.http_addr = g->http_addr;
    g->cfg.rpc_addr = g->rpc_addr;
    g->cfg.raft_addr = g->raft_addr;
    g->cfg.data_dir = g->data_dir;
    srv->n_threads = cfg->n_workers ? cfg->n_workers : GATEWAY_DEFAULT_WORKERS;
    json_set_alloc_funcs(gw__json_malloc, gw__json_free);
    pthread_mutex_init(&srv->q.lock, NULL);
    pthread_cond_init(&srv->q.cond, NULL);
    srv->q.ring = calloc(GATEWAY_MAX_QUEUED, sizeof *srv->q.ring);
    srv->threads = calloc(srv->n_threads, sizeof *srv->threads);
    if (g->data_dir == NULL || srv->q.ring == NULL || srv->threads == NULL) {
        free(srv->q.ring);
        free(srv->threads);
        free(g->data_dir);
        free(srv);
        return RV_ENOMEM;
    }
    snprintf(url, sizeof url, "http://%s", cfg->http_addr);
    int rv = nng_url_parse(&u, url);
    int code = RV_EINVAL;
    if (rv == 0) {
        rv = nng_http_server_hold(&srv->http, u);
        code = RV_EIO;
    }
    if (rv == 0) {
        rv = nng_http_handler_alloc(&srv->handler, "/", gw__handle);
        if (rv == 0)
            rv = nng_http_handler_set_method(srv->handler, NULL);
        if (rv == 0)
            rv = nng_http_handler_set_tree(srv->handler);
        if (rv == 0)
            rv = nng_http_handler_collect_body(srv->handler, true,
                                               GATEWAY_MAX_RAW_BODY);
        if (rv == 0)
            rv = nng_http_handler_set_data(srv->handler, srv, NULL);
        if (rv == 0)
            rv = nng_http_server_add_handler(srv->http, srv->handler);
        else if (srv->handler != NULL)
            nng_http_handler_free(srv->handler);
    }
    if (rv == 0)
        rv = nng_http_server_set_error_page(
            srv->http, 400,
            "{\"error_code\":\"BAD_REQUEST\",\"message\":\"the HTTP request "
            "is malformed or its body is over 16 MiB\"}");
    if (rv == 0)
        rv = nng_http_server_start(srv->http);
    if (u != NULL)
        nng_url_free(u);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "HTTP on %s: %s", cfg->http_addr,
                         nng_strerror(rv));
        if (srv->http != NULL)
            nng_http_server_release(srv->http);
        free(srv->q.ring);
        free(srv->threads);
        free(g->data_dir);
        free(srv);
        return code;
    }
    for (unsigned i = 0; i < srv->n_threads; i++) {
        struct gw_worker_arg *a = malloc(sizeof *a);
        if (a != NULL) {
            a->srv = srv;
            a->index = i;
        }
        if (a == NULL ||
            pthread_create(&srv->threads[i], NULL, gw__worker, a) != 0) {
            free(a);
            srv->n_threads = i;
            gateway_stop(g);
            rv_errmsg_printf(errmsg, "cannot start gateway worker %u", i);
            return RV_ENOMEM;
        }
    }
    rv_logf(cfg->log, RV_LOG_INFO, "gateway", "HTTP on %s with %u workers",
            cfg->http_addr, srv->n_threads);
    *out = g;
    return RV_OK;
}

void
gateway_stop(struct gateway *g)
{
    if (g == NULL)
        return;
    struct gw_server *srv = (struct gw_server *)g;
    pthread_mutex_lock(&srv->q.lock);
    srv->q.is_stopping = 1;
    pthread_cond_broadcast(&srv->q.cond);
    pthread_mutex_unlock(&srv->q.lock);
    for (unsigned i = 0; i < srv->n_threads; i++)
        pthread_join(srv->threads[i], NULL);
    nng_http_server_stop(srv->http);
    nng_http_server_release(srv->http);
    pthread_mutex_destroy(&srv->q.lock);
    pthread_cond_destroy(&srv->q.cond);
    free(srv->q.ring);
    free(srv->threads);
    free(g->data_dir);
    free(srv);
}

/* ---- /metrics ------------------------------------------------------------ */

static void gw__printf(struct rv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gw__printf(struct rv_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        rv_buf_append(b, line,
                      (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static uint64_t
gw__file_bytes(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* Blocks actually used: LMDB's map file is sparse. */
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

static const char *const gw_route_names[GW_N_ROUTES] = {
#define GW_ROUTE_NAME(r, name) name,
    GATEWAY_ROUTES(GW_ROUTE_NAME)
#undef GW_ROUTE_NAME
};

void
gw_metrics_text(struct gateway *g, struct rv_buf *b)
{
    struct replica *rep = rpc_server_replica(g->cfg.rpc);
    struct replica_info info;
    struct rpc_counters rc;
    replica_info(rep, &info);
    rpc_server_counters(g->cfg.rpc, &rc);
    gw__printf(b, "# HELP runvault_http_requests_total HTTP requests "
                  "answered, by route and status class.\n"
                  "# TYPE runvault_http_requests_total counter\n");
    for (int r = 0; r < GW_N_ROUTES; r++)
        for (int c = 0; c < 6; c++) {
            uint64_t n = atomic_load(&g->stats.routes[r].n_by_class[c]);
            if (n > 0)
                gw__printf(b,
                           "runvault_http_requests_total{route=\"%s\","
                           "code=\"%s\"} %llu\n",
                           gw_route_names[r],
                           c == 0   ? "other"
                           : c == 1 ? "1xx"
                           : c == 2 ? "2xx"
                           : c == 3 ? "3xx"
                           : c == 4 ? "4xx"
                                    : "5xx",
                           (unsigned long long)n);
        }
    gw__printf(b, "# HELP runvault_http_request_duration_seconds Time from "
                  "dequeue to answer.\n"
                  "# TYPE runvault_http_request_duration_seconds histogram\n");
    for (int r = 0; r < GW_N_ROUTES; r++) {
        const struct gw_route_stats *rs = &g->stats.routes[r];
        uint64_t n = atomic_load(&rs->n), cum = 0;
        if (n == 0)
            continue;
        for (int i = 0; i < GW_N_BUCKETS; i++) {
            cum += atomic_load(&rs->n_bucket[i]);
            gw__printf(b,
                       "runvault_http_request_duration_seconds_bucket{route="
                       "\"%s\",le=\"%g\"} %llu\n",
                       gw_route_names[r], gw_bucket_s[i],
                       (unsigned long long)cum);
        }
        gw__printf(b,
                   "runvault_http_request_duration_seconds_bucket{route="
                   "\"%s\",le=\"+Inf\"} %llu\n"
                   "runvault_http_request_duration_seconds_sum{route=\"%s\"} "
                   "%.6f\n"
                   "runvault_http_request_duration_seconds_count{route="
                   "\"%s\"} %llu\n",
                   gw_route_names[r], (unsigned long long)n, gw_route_names[r],
                   (double)atomic_load(&rs->sum_us) / 1e6, gw_route_names[r],
                   (unsigned long long)n);
    }
    static const char *const bp[8] = {"1",   "10",  "100", "1000",
                                      "1e4", "1e5", "1e6", "+Inf"};
    gw__printf(b, "# HELP runvault_http_batch_points Points per log-batch "
                  "request.\n# TYPE runvault_http_batch_points histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < 8; i++) {
        cum += atomic_load(&g->stats.batch_points_bucket[i]);
        gw__printf(b, "runvault_http_batch_points_bucket{le=\"%s\"} %llu\n",
                   bp[i], (unsigned long long)cum);
    }
    gw__printf(b, "runvault_http_batch_points_count %llu\n",
               (unsigned long long)cum);
    gw__printf(b,
               "# TYPE runvault_http_points_total counter\n"
               "runvault_http_points_total %llu\n"
               "# TYPE runvault_http_log_lines_total counter\n"
               "runvault_http_log_lines_total %llu\n"
               "# TYPE runvault_http_artifact_bytes_total counter\n"
               "runvault_http_artifact_bytes_total %llu\n"
               "# TYPE runvault_http_rejected_busy_total counter\n"
               "runvault_http_rejected_busy_total %llu\n"
               "# TYPE runvault_http_queue_depth gauge\n"
               "runvault_http_queue_depth %llu\n",
               (unsigned long long)atomic_load(&g->stats.n_points),
               (unsigned long long)atomic_load(&g->stats.n_log_lines),
               (unsigned long long)atomic_load(&g->stats.n_artifact_bytes),
               (unsigned long long)atomic_load(&g->stats.n_rejected_queue),
               (unsigned long long)atomic_load(&g->stats.n_queued));
    gw__printf(b,
               "# TYPE runvault_rpc_requests_total counter\n"
               "runvault_rpc_requests_total %llu\n"
               "# TYPE runvault_rpc_forwarded_total counter\n"
               "runvault_rpc_forwarded_total %llu\n"
               "# TYPE runvault_rpc_forward_failed_total counter\n"
               "runvault_rpc_forward_failed_total %llu\n",
               (unsigned long long)rc.n_requests,
               (unsigned long long)rc.n_forwarded,
               (unsigned long long)rc.n_forward_failed);
    gw__printf(b,
               "# TYPE runvault_raft_term gauge\nrunvault_raft_term %llu\n"
               "# TYPE runvault_raft_last_index gauge\n"
               "runvault_raft_last_index %llu\n"
               "# TYPE runvault_raft_commit_index gauge\n"
               "runvault_raft_commit_index %llu\n"
               "# TYPE runvault_raft_applied_index gauge\n"
               "runvault_raft_applied_index %llu\n"
               "# HELP runvault_apply_lag_entries Committed entries not yet "
               "applied here.\n"
               "# TYPE runvault_apply_lag_entries gauge\n"
               "runvault_apply_lag_entries %llu\n"
               "# TYPE runvault_raft_leader_id gauge\n"
               "runvault_raft_leader_id %llu\n",
               (unsigned long long)info.term,
               (unsigned long long)info.last_index,
               (unsigned long long)info.commit_index,
               (unsigned long long)info.applied_index,
               (unsigned long long)(info.commit_index > info.applied_index
                                        ? info.commit_index - info.applied_index
                                        : 0),
               (unsigned long long)info.leader_id);
    gw__printf(b, "# TYPE runvault_raft_state gauge\n");
    static const char *const states[] = {"follower", "candidate", "leader",
                                         "unavailable"};
    for (int i = 0; i < 4; i++)
        gw__printf(b, "runvault_raft_state{state=\"%s\"} %d\n", states[i],
                   strcmp(replica_state_name(info.state), states[i]) == 0);
    gw__printf(
        b,
        "# HELP runvault_raft_entries_total Command entries proposed "
        "by this node as leader; commands/entries is the batch "
        "size.\n"
        "# TYPE runvault_raft_entries_total counter\n"
        "runvault_raft_entries_total %llu\n"
        "# TYPE runvault_raft_commands_total counter\n"
        "runvault_raft_commands_total %llu\n"
        "# TYPE runvault_raft_barriers_total counter\n"
        "runvault_raft_barriers_total %llu\n"
        "# TYPE runvault_store_syncs_total counter\n"
        "runvault_store_syncs_total %llu\n"
        "# TYPE runvault_snapshots_total counter\n"
        "runvault_snapshots_total %llu\n"
        "# TYPE runvault_catch_ups_total counter\n"
        "runvault_catch_ups_total %llu\n",
        (unsigned long long)info.n_entries, (unsigned long long)info.n_commands,
        (unsigned long long)info.n_barriers, (unsigned long long)info.n_syncs,
        (unsigned long long)info.n_snapshots,
        (unsigned long long)info.n_catch_ups);
    gw__printf(b,
               "# HELP runvault_disk_bytes Bytes on disk by part.\n"
               "# TYPE runvault_disk_bytes gauge\n"
               "runvault_disk_bytes{part=\"vlog\"} %llu\n"
               "runvault_disk_bytes{part=\"index\"} %llu\n",
               (unsigned long long)store_vlog_bytes(replica_store(rep)),
               (unsigned long long)gw__file_bytes(g->data_dir, "index.mdb"));
}
