/* The native RPC server's transport (contract in server.h): an nng REP
 * socket with one worker thread per context; each worker decodes a
 * request, answers it through rpc_caller_answer (answer.c) as a caller
 * that redirects instead of forwarding, and sends the packed answer. */
#include "rpc/client/nng_err.h"
#include "rpc/server_int.h"

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

int
rpc_server_start(struct rpc_server **out, const char *addr, struct replica *rep,
                 unsigned n_workers, const struct rv_log *log, char *errmsg)
{
    struct rpc_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return RV_ENOMEM;
    s->rep = rep;
    s->log = log;
    rpc__auth_init(s);
    s->n_workers = n_workers ? n_workers : RPC_DEFAULT_WORKERS;
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    int rv = nng_rep0_open(&s->sock);
    if (rv != 0) {
        free(s);
        return rvc_err_from_nng(rv, "nng_rep0_open", errmsg);
    }
    rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_REQUEST_BYTES);
    if (rv == 0)
        rv = nng_listen(s->sock, addr, NULL, 0);
    if (rv != 0) {
        char what[160];
        snprintf(what, sizeof what, "listen on %s", addr);
        nng_close(s->sock);
        free(s);
        return rvc_err_from_nng(rv, what, errmsg);
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
    rv_logf(log, RV_LOG_INFO, "rpc", "listening on %s with %u workers", addr,
            s->n_workers);
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
    rpc__auth_close(s);
    free(s);
}
