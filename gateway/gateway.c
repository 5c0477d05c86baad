/* nng's HTTP server, the request queue and its workers, and the workers'
 * jansson arenas: the plumbing that turns an HTTP request into a
 * gw_exchange for gw_route (gateway_route.c) and sends its answer
 * (contract in gateway.h). No endpoint logic lives here. */
#include "base/clock.h"
#include "gateway/gateway_int.h"
#include "rpc/client/nng_err.h"
#include "rpc/client/tls.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    /* PUTs to the artifact proxy: their bodies are read as they arrive
     * (gw_body_read), not collected (nng would hold them whole). */
    nng_http_handler *stream[2];
    struct gw_queue q;
    pthread_t *threads;
    unsigned n_threads;
};

static uint64_t
gw__now_us(void)
{
    return rv_clock_mono_ns() / 1000u;
}

/* The headers of a UI asset's answer (gateway_ui.c). */
static void
gw__ui_headers(nng_http_res *res, const struct gw_exchange *x)
{
    if (x->etag != NULL)
        nng_http_res_set_header(res, "ETag", x->etag);
    if (x->cache_control != NULL)
        nng_http_res_set_header(res, "Cache-Control", x->cache_control);
    if (x->content_encoding != NULL)
        nng_http_res_set_header(res, "Content-Encoding", x->content_encoding);
    if (x->vary != NULL)
        nng_http_res_set_header(res, "Vary", x->vary);
    if (x->is_page) {
        nng_http_res_set_header(res, "Content-Security-Policy",
                                gw_ui_csp_header);
        nng_http_res_set_header(res, "X-Frame-Options", "DENY");
        nng_http_res_set_header(res, "Referrer-Policy", "no-referrer");
    }
}

/* Is aio's request one whose body was left on the connection? */
static int
gw__is_stream(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    struct gw_server *srv = nng_http_handler_get_data(h);
    return h != srv->handler;
}

/* Answer aio with x's answer (or a bare status when x is NULL). */
static void
gw__finish(nng_aio *aio, struct gw_exchange *x, int status, const char *body)
{
    nng_http_res *res;
    if (x != NULL && x->is_sent) {
        /* The handler wrote the answer on the connection: nothing to send;
         * a half-written one drops the connection. */
        nng_aio_set_output(aio, 0, NULL);
        nng_aio_finish(aio, x->is_broken || x->must_close ? NNG_ECLOSED : 0);
        return;
    }
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
    char retry[16] = "1";
    if (x != NULL && x->retry_after_s > 0)
        snprintf(retry, sizeof retry, "%u", (unsigned)x->retry_after_s);
    if ((x != NULL && x->retry_after_s > 0) || (x == NULL && status >= 429))
        nng_http_res_set_header(res, "Retry-After", retry);
    if (x != NULL && x->allow != NULL)
        nng_http_res_set_header(res, "Allow", x->allow);
    if (x != NULL && x->www_authenticate != NULL)
        nng_http_res_set_header(res, "WWW-Authenticate", x->www_authenticate);
    nng_http_res_set_header(res, "X-Content-Type-Options", "nosniff");
    if (x != NULL ? x->must_close : gw__is_stream(aio))
        nng_http_res_set_header(res, "Connection", "close");
    if (x != NULL)
        gw__ui_headers(res, x);
    int rv;
    /* nng's copy of 0 bytes fails (an allocation of 0 is NULL to it), and
     * a failed aio drops the connection: an empty body is set, not
     * copied (a 0-byte artifact). */
    if (x != NULL && x->out_static != NULL) /* Static: no copy. */
        rv = nng_http_res_set_data(res, x->out_static, x->out_static_len);
    else if (x != NULL && x->out.len == 0)
        rv = nng_http_res_set_data(res, "", 0);
    else if (x != NULL)
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

/* A streamed body's length from Content-Length (chunked bodies are not
 * read: nng 1.5 has no decoder for them). 0, or -1 when answered. */
static int
gw__stream_len(struct gw_exchange *x, nng_http_req *req)
{
    const char *cl = nng_http_req_get_header(req, "Content-Length");
    uint64_t n = 0;
    x->has_body_stream = 1;
    x->must_close = 1; /* Until the length is known good. */
    if (cl == NULL || cl[0] < '0' || cl[0] > '9' || strlen(cl) > 19) {
        gw_reply_status(x, 411, "INVALID_PARAMETER_VALUE",
                        "an artifact PUT needs a Content-Length (a chunked "
                        "body is not read)");
        return -1;
    }
    for (const char *p = cl; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            gw_reply_status(x, 400, "INVALID_PARAMETER_VALUE",
                            "Content-Length is not a decimal number");
            return -1;
        }
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (n > CONTRACT_DEFAULT_MAX_ARTIFACT_BYTES) {
        gw_reply_status(x, 413, "REQUEST_TOO_LARGE",
                        "an artifact is at most 4 GiB");
        return -1;
    }
    x->body_left = n;
    x->must_close = 0;
    return 0;
}

int
gw_body_read(struct gw_exchange *x, void *buf, size_t n)
{
    nng_aio *aio;
    nng_iov iov = {buf, n};
    int rv;
    if (n > x->body_left || x->conn == NULL) {
        gw_reply_error(x, RV_EINVAL, "the body is shorter than asked");
        return -1;
    }
    if (n == 0)
        return 0;
    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        gw_reply_error(x, RV_ENOMEM, NULL);
        return -1;
    }
    nng_aio_set_timeout(aio, GATEWAY_BODY_TIMEOUT_MS);
    nng_aio_set_iov(aio, 1, &iov);
    nng_http_conn_read_all(x->conn, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    nng_aio_free(aio);
    if (rv != 0) {
        x->must_close = 1;
        gw_reply_status(x, 400, "INVALID_PARAMETER_VALUE",
                        rv == NNG_ETIMEDOUT
                            ? "the body stalled (no byte for 60 s)"
                            : "the connection closed before the body's end");
        return -1;
    }
    x->body_left -= n;
    return 0;
}

/* Write n bytes on x's connection; -1 (and is_broken) when it fails. */
static int
gw__conn_write(struct gw_exchange *x, const void *data, size_t n)
{
    nng_aio *aio;
    nng_iov iov = {(void *)data, n};
    if (n == 0)
        return 0;
    if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
        x->is_broken = 1;
        return -1;
    }
    nng_aio_set_timeout(aio, GATEWAY_BODY_TIMEOUT_MS);
    nng_aio_set_iov(aio, 1, &iov);
    nng_http_conn_write_all(x->conn, aio);
    nng_aio_wait(aio);
    int rv = nng_aio_result(aio);
    nng_aio_free(aio);
    if (rv != 0)
        x->is_broken = 1;
    return rv != 0 ? -1 : 0;
}

int
gw_stream_begin(struct gw_exchange *x, const char *type, uint64_t length)
{
    char head[512];
    int safe = strlen(type) < 200;
    for (const char *p = type; safe && *p != '\0'; p++)
        safe = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                     "Content-Length: %llu\r\n"
                     "X-Content-Type-Options: nosniff\r\n%s\r\n",
                     safe ? type : "application/octet-stream",
                     (unsigned long long)length,
                     x->must_close ? "Connection: close\r\n" : "");
    x->is_sent = 1;
    x->status = 200;
    return gw__conn_write(x, head, (size_t)n);
}

int
gw_stream_write(struct gw_exchange *x, const void *data, size_t n)
{
    if (x->is_broken)
        return -1;
    if (strcmp(x->method, "HEAD") == 0)
        return 0;
    return gw__conn_write(x, data, n);
}

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
    x.conn = nng_aio_get_input(aio, 2);
    if (gw__is_stream(aio) && gw__stream_len(&x, req) != 0) {
        /* Answered: no Content-Length, or too long. */
    } else if (un == 0 || un > GATEWAY_MAX_TARGET_BYTES) {
        gw_reply_status(&x, 414, "INVALID_PARAMETER_VALUE",
                        "the request target is empty or longer than 8192 "
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
            /* nng 1.5.2 joins repeated headers into one value with ", "
             * (http_msg.c, http_add_header); gw_route refuses that. */
            x.authorization = nng_http_req_get_header(req, "Authorization");
            x.if_none_match = nng_http_req_get_header(req, "If-None-Match");
            x.accept_encoding = nng_http_req_get_header(req, "Accept-Encoding");
            gw_route(&x);
        }
    }
    if (x.body_left > 0)
        x.must_close = 1; /* The rest of the body is still on the wire. */
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

static void
gw__server_free(struct gw_server *srv)
{
    free(srv->q.ring);
    free(srv->threads);
    free(srv->g.data_dir);
    free(srv);
}

/* A server with cfg's strings copied and its queue made, not listening
 * yet; NULL when out of memory. */
static struct gw_server *
gw__server_new(const struct gateway_config *cfg)
{
    struct gw_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
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
    g->boot_client_base = (rv_random_id(g) | (1ull << 63)) & ~0xffffull;
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
        gw__server_free(srv);
        return NULL;
    }
    return srv;
}

/* Listen on http_addr with one handler for the whole tree. Returns RV_OK,
 * or rvc_err_from_nng's code (RV_EINVAL: a bad address; RV_EIO: in use or
 * not permitted) with nng's reason in errmsg. */
static int
gw__http_open(struct gw_server *srv, const char *http_addr,
              const struct rvc_tls *tls, char *errmsg)
{
    char url[160];
    nng_url *u = NULL;
    nng_tls_config *tcfg = NULL;
    snprintf(url, sizeof url, "%s://%s", tls ? "https" : "http", http_addr);
    /* https: client certificates are optional (DESIGN §11). */
    if (tls != NULL && rvc_tls_listen_config(tls, NNG_TLS_AUTH_MODE_OPTIONAL,
                                             &tcfg, errmsg) != RV_OK)
        return RV_EINVAL;
    int rv = nng_url_parse(&u, url);
    if (rv == 0)
        rv = nng_http_server_hold(&srv->http, u);
    if (rv == 0 && tcfg != NULL)
        rv = nng_http_server_set_tls(srv->http, tcfg);
    if (tcfg != NULL)
        nng_tls_config_free(tcfg); /* The server holds its own reference. */
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
    static const char *const stream_uris[2] = {
        "/api/2.0/mlflow-artifacts/artifacts",
        "/ajax-api/2.0/mlflow-artifacts/artifacts"};
    for (int i = 0; rv == 0 && i < 2; i++) {
        nng_http_handler *h = NULL;
        rv = nng_http_handler_alloc(&h, stream_uris[i], gw__handle);
        if (rv == 0)
            rv = nng_http_handler_set_method(h, "PUT");
        if (rv == 0)
            rv = nng_http_handler_set_tree(h);
        if (rv == 0)
            rv = nng_http_handler_collect_body(h, false, 0);
        if (rv == 0)
            rv = nng_http_handler_set_data(h, srv, NULL);
        if (rv == 0)
            rv = nng_http_server_add_handler(srv->http, h);
        else if (h != NULL)
            nng_http_handler_free(h);
        srv->stream[i] = h;
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
        char what[160];
        snprintf(what, sizeof what, "HTTP on %s", http_addr);
        if (srv->http != NULL)
            nng_http_server_release(srv->http);
        return rvc_err_from_nng(rv, what, errmsg);
    }
    return RV_OK;
}

int
gateway_start(struct gateway **out, const struct gateway_config *cfg,
              char *errmsg)
{
    struct gw_server *srv = gw__server_new(cfg);
    if (srv == NULL)
        return RV_ENOMEM;
    struct gateway *g = &srv->g;
    int code = gw__http_open(srv, cfg->http_addr, cfg->tls, errmsg);
    if (code != RV_OK) {
        gw__server_free(srv);
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
    rv_logf(cfg->log, RV_LOG_INFO, "gateway", "%s on %s with %u workers",
            cfg->tls ? "HTTPS" : "HTTP", cfg->http_addr, srv->n_threads);
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
    gw__server_free(srv);
}
