/* The native RPC server's transport (contract in server.h): an nng REP
 * socket with one worker thread per context; each worker decodes a
 * request, answers it through rpc_caller_answer (answer.c) as a caller
 * that redirects instead of forwarding, and sends the packed answer. */
#include "rpc/client/nng_err.h"
#include "rpc/client/tls.h"
#include "rpc/server_int.h"

#include <arpa/inet.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rpc_worker {
    struct rpc_caller c;
    nng_ctx ctx;
    nng_aio *aio;
    pthread_t thread;
    int is_started;
};

uint64_t
rpc_server_requests(const struct rpc_server *s)
{
    return atomic_load(&s->n_requests);
}

void
rpc_server_counters(const struct rpc_server *s, struct rpc_counters *out)
{
    out->n_requests = atomic_load(&s->n_requests);
    out->n_forwarded = atomic_load(&s->n_forwarded);
    out->n_forward_failed = atomic_load(&s->n_forward_failed);
}

static void
rpc__send(struct rpc_worker *w, const Rv__Response *resp)
{
    size_t n = rv__response__get_packed_size(resp);
    nng_msg *out;
    if (nng_msg_alloc(&out, n) != 0)
        return;
    rv__response__pack(resp, nng_msg_body(out));
    nng_aio_set_msg(w->aio, out);
    nng_ctx_send(w->ctx, w->aio);
    nng_aio_wait(w->aio);
    if (nng_aio_result(w->aio) != 0)
        nng_msg_free(out);
}

/* 1 if pipe p is TLS and its peer presented a certificate the cluster CA
 * verified (the listener asks for one, optionally). */
static int
rpc__is_peer_pipe(nng_pipe p)
{
    bool is_verified = false;
    if (nng_pipe_id(p) < 0 ||
        nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &is_verified) != 0)
        return 0;
    return is_verified ? 1 : 0;
}

static int
rpc__is_peer_msg(const struct rpc_server *s, nng_msg *msg)
{
    return s->tls != NULL && rpc__is_peer_pipe(nng_msg_get_pipe(msg));
}

/* A new TLS connection, logged at debug with what its requests count as
 * (the same test rpc__is_peer_msg makes per request). */
static void
rpc__pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    const struct rpc_server *s = arg;
    nng_sockaddr sa;
    char who[64] = "?";
    (void)ev;
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0 &&
        sa.s_family == NNG_AF_INET) {
        const uint8_t *ip = (const uint8_t *)&sa.s_in.sa_addr;
        snprintf(who, sizeof who, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3],
                 (unsigned)ntohs(sa.s_in.sa_port));
    }
    rv_logf(s->log, RV_LOG_DEBUG, "rpc", "TLS connection from %s: %s", who,
            rpc__is_peer_pipe(p) ? "peer (CA-verified client certificate)"
                                 : "client (no verified certificate)");
}

static void *
rpc__worker(void *arg)
{
    struct rpc_worker *w = arg;
    for (;;) {
        nng_ctx_recv(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        int rv = nng_aio_result(w->aio);
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            break;
        if (rv != 0)
            continue;
        nng_msg *msg = nng_aio_get_msg(w->aio);
        w->c.is_peer = rpc__is_peer_msg(w->c.s, msg);
        Rv__Request *req =
            rv__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
        nng_msg_free(msg);
        if (req == NULL) {
            struct rpc_reply rp;
            rpc__reply_init(&rp);
            rpc__fail(&rp, RV_EMALFORMED, "the request does not decode");
            w->c.s->n_requests++;
            rpc__send(w, &rp.resp);
            continue;
        }
        /* Nothing in the answer points into the request. */
        const Rv__Response *resp = rpc_caller_answer(&w->c, req);
        rv__request__free_unpacked(req, NULL);
        rpc__send(w, resp);
        rpc__caller_reset(&w->c);
    }
    return NULL;
}

/* Listen on s->addr: plain, or with s->tls (a tls+tcp:// address) asking
 * clients for an optional certificate verified against the cluster CA. */
static int
rpc__listen(struct rpc_server *s, char *errmsg)
{
    int is_tls_addr = strncmp(s->addr, "tls+", 4) == 0;
    if (s->tls == NULL || !is_tls_addr) {
        if (s->tls != NULL || is_tls_addr) {
            rv_errmsg_printf(errmsg,
                             "%s: TLS settings and a tls+tcp:// "
                             "address go together",
                             s->addr);
            return RV_EINVAL;
        }
        return rvc_err_from_nng(nng_listen(s->sock, s->addr, NULL, 0), "listen",
                                errmsg);
    }
    nng_tls_config *cfg;
    nng_listener l;
    int rc =
        rvc_tls_listen_config(s->tls, NNG_TLS_AUTH_MODE_OPTIONAL, &cfg, errmsg);
    if (rc != RV_OK)
        return rc;
    int rv = nng_listener_create(&l, s->sock, s->addr);
    if (rv == 0)
        rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, rpc__pipe_cb, s);
    if (rv == 0)
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    nng_tls_config_free(cfg); /* The listener holds its own reference. */
    return rvc_err_from_nng(rv, "listen", errmsg);
}

int
rpc_server_start(struct rpc_server **out, const char *addr,
                 const struct rvc_tls *tls, struct replica *rep,
                 unsigned n_workers, const struct rv_log *log, char *errmsg)
{
    struct rpc_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return RV_ENOMEM;
    s->tls = tls;
    s->rep = rep;
    s->log = log;
    rpc__auth_init(s);
    if (rpc__backup_init(s) != RV_OK) {
        rpc__auth_close(s);
        free(s);
        return RV_ENOMEM;
    }
    s->n_workers = n_workers ? n_workers : RPC_DEFAULT_WORKERS;
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    int rv = nng_rep0_open(&s->sock);
    if (rv != 0) {
        rpc__backup_close(s);
        rpc__auth_close(s);
        free(s);
        return rvc_err_from_nng(rv, "nng_rep0_open", errmsg);
    }
    rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_REQUEST_BYTES);
    int rc = rvc_err_from_nng(rv, "RPC socket", errmsg);
    if (rc == RV_OK)
        rc = rpc__listen(s, errmsg);
    if (rc != RV_OK) {
        char what[160];
        snprintf(what, sizeof what, "RPC on %s", addr);
        rv_errmsg_wrap(errmsg, what);
        nng_close(s->sock);
        rpc__backup_close(s);
        rpc__auth_close(s);
        free(s);
        return rc;
    }
    s->workers = calloc(s->n_workers, sizeof *s->workers);
    if (s->workers == NULL) {
        rpc_server_stop(s);
        return RV_ENOMEM;
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        struct rpc_worker *w = &s->workers[i];
        rpc__caller_init(&w->c, s);
        if (nng_ctx_open(&w->ctx, s->sock) != 0 ||
            nng_aio_alloc(&w->aio, NULL, NULL) != 0 ||
            pthread_create(&w->thread, NULL, rpc__worker, w) != 0) {
            rpc_server_stop(s);
            rv_errmsg_printf(errmsg, "cannot start RPC worker %u", i);
            return RV_ENOMEM;
        }
        w->is_started = 1;
    }
    rv_logf(log, RV_LOG_INFO, "rpc", "listening on %s with %u workers%s", addr,
            s->n_workers,
            tls ? " (TLS; peers by a CA-signed client certificate)" : "");
    *out = s;
    return RV_OK;
}

void
rpc_server_stop(struct rpc_server *s)
{
    if (s == NULL)
        return;
    nng_close(s->sock); /* Every pending receive ends with NNG_ECLOSED. */
    for (unsigned i = 0; s->workers != NULL && i < s->n_workers; i++) {
        struct rpc_worker *w = &s->workers[i];
        if (w->is_started)
            pthread_join(w->thread, NULL);
        if (w->aio != NULL)
            nng_aio_free(w->aio);
        if (w->c.s != NULL)
            rpc__caller_close(&w->c);
    }
    free(s->workers);
    rpc__backup_close(s);
    rpc__auth_close(s);
    free(s);
}
