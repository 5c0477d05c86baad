/* The TLS transport for raft_uv (contract and wire format in
 * transport_tls.h).
 *
 * A connection (struct tt_conn) has two threads. The first sets it up
 * (dials and sends the hello, or receives and checks one), makes the
 * socketpair, starts the second, posts the connection to the loop and
 * then copies TLS -> socket; the second copies socket -> TLS. Either copy
 * ending closes the TLS stream and shuts the socket down, which ends the
 * other; the last thread out posts the connection as dead and the loop
 * joins and frees it.
 *
 * Every blocking nng operation is started under the transport's lock after
 * a check of is_killed, and tt__kill aborts them under the same lock, so a
 * kill never misses an operation about to start. */
#include "raft/transport_tls.h"

#include "base/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TT_MAGIC       "RVRAFT01"
#define TT_HELLO_BYTES 18 /* Before the address. */
#define TT_RELAY_BYTES 16384

struct tt;

struct tt_conn {
    struct tt *tt;
    struct tt_conn *next, *next_ready, *next_dead;
    int is_dialler;
    struct raft_uv_connect *req; /* Dialler: raft's request. */
    raft_uv_connect_cb cb;
    raft_id peer_id;                       /* Acceptor: from the hello. */
    char addr[TRANSPORT_TLS_MAX_ADDR + 1]; /* The peer's raft address. */
    nng_stream *stream;                    /* Set once, by the first thread. */
    nng_aio *aio_in, *aio_out;             /* One per thread. */
    int fds[2];                            /* [0] raft's pipe, [1] relays'. */
    int status;                            /* 0: ready for raft. */
    int is_killed;                         /* Under tt->lock. */
    int n_threads;                         /* Under tt->lock. */
    pthread_t thr_in, thr_out;
    int has_thr_in, has_thr_out;
};

struct tt {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    struct transport_tls_config cfg;
    raft_id id;
    char address[TRANSPORT_TLS_MAX_ADDR + 1];
    raft_uv_accept_cb accept_cb;
    uv_async_t async;
    int is_async_init;
    nng_stream_listener *listener;
    nng_aio *accept_aio;
    pthread_mutex_t lock;
    struct tt_conn *conns, *ready, *dead; /* Under lock. */
    size_t n_conns;
    int is_closing; /* Under lock. */
    raft_uv_transport_close_cb close_cb;
};

enum tt_op { TT_DIAL, TT_SEND, TT_RECV };

/* ---- Connections ---------------------------------------------------------
 */

/* Stop c's threads: abort their operations, close the stream, shut the
 * socket down. tt->lock held. */
static void
tt__kill(struct tt_conn *c)
{
    c->is_killed = 1;
    if (c->aio_in != NULL)
        nng_aio_abort(c->aio_in, NNG_ECLOSED);
    if (c->aio_out != NULL)
        nng_aio_abort(c->aio_out, NNG_ECLOSED);
    if (c->stream != NULL)
        nng_stream_close(c->stream);
    if (c->fds[1] >= 0)
        shutdown(c->fds[1], SHUT_RDWR);
}

/* A new connection, listed, with one thread counted (its first); NULL when
 * out of memory or over TRANSPORT_TLS_MAX_CONNS. tt->lock held. */
static struct tt_conn *
tt__conn_new(struct tt *tt)
{
    if (tt->n_conns >= TRANSPORT_TLS_MAX_CONNS)
        return NULL;
    struct tt_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->tt = tt;
    c->fds[0] = c->fds[1] = -1;
    if (nng_aio_alloc(&c->aio_in, NULL, NULL) != 0 ||
        nng_aio_alloc(&c->aio_out, NULL, NULL) != 0) {
        if (c->aio_in != NULL)
            nng_aio_free(c->aio_in);
        free(c);
        return NULL;
    }
    c->n_threads = 1;
    c->next = tt->conns;
    tt->conns = c;
    tt->n_conns++;
    return c;
}

/* Unlist and free c once its threads are gone. Loop thread. */
static void
tt__conn_free(struct tt *tt, struct tt_conn *c)
{
    if (c->has_thr_in)
        pthread_join(c->thr_in, NULL);
    if (c->has_thr_out)
        pthread_join(c->thr_out, NULL);
    pthread_mutex_lock(&tt->lock);
    for (struct tt_conn **p = &tt->conns; *p != NULL; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            tt->n_conns--;
            break;
        }
    pthread_mutex_unlock(&tt->lock);
    nng_aio_free(c->aio_in);
    nng_aio_free(c->aio_out);
    if (c->stream != NULL)
        nng_stream_free(c->stream);
    for (int i = 0; i < 2; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    free(c);
}

/* Start op on aio unless c was killed, then wait for it: nng's result. */
static int
tt__run(struct tt_conn *c, nng_aio *aio, enum tt_op op, nng_stream_dialer *d,
        nng_duration ms)
{
    struct tt *tt = c->tt;
    nng_aio_set_timeout(aio, ms);
    pthread_mutex_lock(&tt->lock);
    if (c->is_killed) {
        pthread_mutex_unlock(&tt->lock);
        return NNG_ECLOSED;
    }
    if (op == TT_DIAL)
        nng_stream_dialer_dial(d, aio);
    else if (op == TT_SEND)
        nng_stream_send(c->stream, aio);
    else
        nng_stream_recv(c->stream, aio);
    pthread_mutex_unlock(&tt->lock);
    nng_aio_wait(aio);
    return nng_aio_result(aio);
}

/* Send or receive exactly n bytes of buf on aio within ms each step. */
static int
tt__io_all(struct tt_conn *c, nng_aio *aio, enum tt_op op, void *buf, size_t n,
           nng_duration ms)
{
    size_t done = 0;
    while (done < n) {
        nng_iov iov = {(char *)buf + done, n - done};
        nng_aio_set_iov(aio, 1, &iov);
        int rv = tt__run(c, aio, op, NULL, ms);
        if (rv != 0)
            return rv;
        size_t got = nng_aio_count(aio);
        if (got == 0)
            return NNG_ECLOSED;
        done += got;
    }
    return 0;
}

/* ---- Hello ----------------------------------------------------------------
 */

static void
tt__put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t
tt__get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Dialler: send our id and address, wait for the listener's ack. */
static int
tt__hello_send(struct tt_conn *c)
{
    struct tt *tt = c->tt;
    uint8_t buf[TT_HELLO_BYTES + TRANSPORT_TLS_MAX_ADDR];
    size_t n = strlen(tt->address);
    memcpy(buf, TT_MAGIC, 8);
    tt__put_u64(buf + 8, tt->id);
    buf[16] = (uint8_t)(n >> 8);
    buf[17] = (uint8_t)n;
    memcpy(buf + TT_HELLO_BYTES, tt->address, n);
    int rv = tt__io_all(c, c->aio_in, TT_SEND, buf, TT_HELLO_BYTES + n,
                        TRANSPORT_TLS_HELLO_MS);
    uint8_t ack = 0;
    if (rv == 0)
        rv = tt__io_all(c, c->aio_in, TT_RECV, &ack, 1, TRANSPORT_TLS_HELLO_MS);
    return rv != 0 ? rv : ack == TRANSPORT_TLS_ACK ? 0 : NNG_EPROTO;
}

/* Acceptor: read and check the dialler's hello, then ack it. */
static int
tt__hello_recv(struct tt_conn *c)
{
    uint8_t buf[TT_HELLO_BYTES];
    int rv = tt__io_all(c, c->aio_in, TT_RECV, buf, sizeof buf,
                        TRANSPORT_TLS_HELLO_MS);
    if (rv != 0)
        return rv;
    size_t n = (size_t)buf[16] << 8 | buf[17];
    c->peer_id = tt__get_u64(buf + 8);
    if (memcmp(buf, TT_MAGIC, 8) != 0 || c->peer_id == 0 || n == 0 ||
        n > TRANSPORT_TLS_MAX_ADDR)
        return NNG_EPROTO;
    rv = tt__io_all(c, c->aio_in, TT_RECV, c->addr, n, TRANSPORT_TLS_HELLO_MS);
    if (rv != 0)
        return rv;
    for (size_t i = 0; i < n; i++)
        if (c->addr[i] < 0x21 || c->addr[i] > 0x7e)
            return NNG_EPROTO;
    c->addr[n] = '\0';
    uint8_t ack = TRANSPORT_TLS_ACK;
    return tt__io_all(c, c->aio_in, TT_SEND, &ack, 1, TRANSPORT_TLS_HELLO_MS);
}

/* ---- Set-up and relaying (the connection's threads) ----------------------
 */

/* Dial c->addr with TLS; the stream into c->stream. */
static int
tt__dial(struct tt_conn *c, char *errmsg)
{
    struct tt *tt = c->tt;
    char url[TRANSPORT_TLS_MAX_ADDR + 16], host[TRANSPORT_TLS_MAX_ADDR + 1];
    nng_stream_dialer *d = NULL;
    nng_tls_config *cfg = NULL;
    snprintf(url, sizeof url, "tls+tcp://%s", c->addr);
    snprintf(host, sizeof host, "%.*s", (int)strcspn(c->addr, ":"), c->addr);
    int rv = tt->cfg.dial(tt->cfg.dial_data, host, &cfg, errmsg);
    if (rv != 0)
        return NNG_EINVAL;
    rv = nng_stream_dialer_alloc(&d, url);
    if (rv == 0)
        rv = nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
    nng_tls_config_free(cfg); /* The dialer holds its own reference. */
    if (rv == 0) {
        /* nng's default is already TCP_NODELAY on; say so anyway. */
        nng_stream_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, true);
        nng_stream_dialer_set_bool(d, NNG_OPT_TCP_KEEPALIVE, true);
        rv = tt__run(c, c->aio_in, TT_DIAL, d, TRANSPORT_TLS_DIAL_MS);
    }
    if (rv == 0) {
        pthread_mutex_lock(&tt->lock);
        c->stream = nng_aio_get_output(c->aio_in, 0);
        if (c->is_killed)
            nng_stream_close(c->stream);
        pthread_mutex_unlock(&tt->lock);
    }
    if (d != NULL)
        nng_stream_dialer_free(d);
    if (rv != 0)
        rv_errmsg_printf(errmsg, "dial %s: %s", url, nng_strerror(rv));
    return rv;
}

static void *tt__relay_out(void *arg);

/* The socketpair and the second thread. 0 or an nng error. */
static int
tt__pair(struct tt_conn *c)
{
    struct tt *tt = c->tt;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, c->fds) != 0) {
        c->fds[0] = c->fds[1] = -1;
        return NNG_ENOMEM;
    }
    fcntl(c->fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(c->fds[1], F_SETFD, FD_CLOEXEC);
    pthread_mutex_lock(&tt->lock);
    c->n_threads++;
    int rv = pthread_create(&c->thr_out, NULL, tt__relay_out, c);
    if (rv == 0)
        c->has_thr_out = 1;
    else
        c->n_threads--;
    pthread_mutex_unlock(&tt->lock);
    return rv == 0 ? 0 : NNG_ENOMEM;
}

/* TLS -> socket until either side ends. */
static void
tt__relay_in(struct tt_conn *c)
{
    uint8_t buf[TT_RELAY_BYTES];
    for (;;) {
        nng_iov iov = {buf, sizeof buf};
        nng_aio_set_iov(c->aio_in, 1, &iov);
        if (tt__run(c, c->aio_in, TT_RECV, NULL, NNG_DURATION_INFINITE) != 0)
            return;
        size_t n = nng_aio_count(c->aio_in);
        for (size_t off = 0; off < n;) {
            ssize_t w = send(c->fds[1], buf + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return;
            off += (size_t)w;
        }
    }
}

/* The end of one of c's threads; the last one posts c as dead. */
static void
tt__thread_exit(struct tt_conn *c)
{
    struct tt *tt = c->tt;
    pthread_mutex_lock(&tt->lock);
    if (c->stream != NULL)
        nng_stream_close(c->stream);
    if (c->fds[1] >= 0)
        shutdown(c->fds[1], SHUT_RDWR);
    int is_last = --c->n_threads == 0;
    if (is_last) {
        c->next_dead = tt->dead;
        tt->dead = c;
    }
    pthread_mutex_unlock(&tt->lock);
    if (is_last)
        uv_async_send(&tt->async);
}

/* Socket -> TLS until either side ends. */
static void *
tt__relay_out(void *arg)
{
    struct tt_conn *c = arg;
    uint8_t buf[TT_RELAY_BYTES];
    for (;;) {
        ssize_t n = read(c->fds[1], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || tt__io_all(c, c->aio_out, TT_SEND, buf, (size_t)n,
                                 NNG_DURATION_INFINITE) != 0)
            break;
    }
    tt__thread_exit(c);
    return NULL;
}

static void
tt__post_ready(struct tt_conn *c)
{
    struct tt *tt = c->tt;
    pthread_mutex_lock(&tt->lock);
    c->next_ready = tt->ready;
    tt->ready = c;
    pthread_mutex_unlock(&tt->lock);
    uv_async_send(&tt->async);
}

/* The peer's address as text, for a log line. */
static void
tt__remote(struct tt_conn *c, char *out, size_t size)
{
    nng_sockaddr sa;
    snprintf(out, size, "?");
    if (c->stream == NULL ||
        nng_stream_get_addr(c->stream, NNG_OPT_REMADDR, &sa) != 0 ||
        sa.s_family != NNG_AF_INET)
        return;
    uint8_t *ip = (uint8_t *)&sa.s_in.sa_addr;
    snprintf(out, size, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3],
             (unsigned)ntohs(sa.s_in.sa_port));
}

static int
tt__is_killed(struct tt_conn *c)
{
    pthread_mutex_lock(&c->tt->lock);
    int is_killed = c->is_killed;
    pthread_mutex_unlock(&c->tt->lock);
    return is_killed;
}

static void *
tt__dialler(void *arg)
{
    struct tt_conn *c = arg;
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rv = tt__dial(c, errmsg);
    if (rv == 0) {
        rv = tt__hello_send(c);
        if (rv != 0)
            rv_errmsg_printf(errmsg, "TLS handshake or hello with %s: %s",
                             c->addr, nng_strerror(rv));
    }
    if (rv == 0)
        rv = tt__pair(c);
    if (rv != 0 && !tt__is_killed(c))
        rv_logf(c->tt->cfg.log, RV_LOG_DEBUG, "raft-tls", "connect to %s: %s",
                c->addr, errmsg);
    c->status = rv == 0 ? 0 : RAFT_NOCONNECTION;
    tt__post_ready(c);
    if (rv == 0)
        tt__relay_in(c);
    tt__thread_exit(c);
    return NULL;
}

static void *
tt__acceptor(void *arg)
{
    struct tt_conn *c = arg;
    int rv = tt__hello_recv(c);
    if (rv != 0 && !tt__is_killed(c)) {
        char who[64];
        tt__remote(c, who, sizeof who);
        rv_logf(c->tt->cfg.log, RV_LOG_WARN, "raft-tls",
                "refused a raft connection from %s: %s (a peer needs a "
                "certificate of the cluster CA)",
                who, nng_strerror(rv));
    }
    if (rv == 0)
        rv = tt__pair(c);
    if (rv == 0) {
        c->status = 0;
        tt__post_ready(c);
        tt__relay_in(c);
    }
    tt__thread_exit(c);
    return NULL;
}

/* ---- The loop side --------------------------------------------------------
 */

static void
tt__async_closed(uv_handle_t *h)
{
    struct tt *tt = h->data;
    tt->close_cb(tt->t);
}

/* Once closing and every connection is gone, the close completes. */
static void
tt__maybe_closed(struct tt *tt)
{
    pthread_mutex_lock(&tt->lock);
    int is_done = tt->is_closing && tt->conns == NULL;
    pthread_mutex_unlock(&tt->lock);
    if (is_done && !uv_is_closing((uv_handle_t *)&tt->async))
        uv_close((uv_handle_t *)&tt->async, tt__async_closed);
}

/* raft's end of c as a uv_pipe_t (raft frees it with raft_free after
 * uv_close), or NULL. */
static uv_stream_t *
tt__pipe(struct tt *tt, struct tt_conn *c)
{
    uv_pipe_t *p = raft_malloc(sizeof *p);
    if (p == NULL)
        return NULL;
    if (uv_pipe_init(tt->loop, p, 0) != 0) {
        raft_free(p);
        return NULL;
    }
    if (uv_pipe_open(p, c->fds[0]) != 0) {
        uv_close((uv_handle_t *)p, (uv_close_cb)raft_free);
        return NULL;
    }
    c->fds[0] = -1; /* raft's now: it closes it. */
    return (uv_stream_t *)p;
}

/* Hand a set-up connection to raft (or report a failed connect). */
static void
tt__deliver(struct tt *tt, struct tt_conn *c, int is_closing)
{
    uv_stream_t *s = NULL;
    if (c->status == 0 && !is_closing)
        s = tt__pipe(tt, c);
    if (c->is_dialler) {
        int status = s != NULL    ? 0
                     : is_closing ? RAFT_CANCELED
                     : c->status  ? c->status
                                  : RAFT_NOMEM;
        c->cb(c->req, s, status);
    } else if (s != NULL) {
        tt->accept_cb(tt->t, c->peer_id, c->addr, s);
    }
    if (s == NULL) {
        pthread_mutex_lock(&tt->lock);
        tt__kill(c);
        pthread_mutex_unlock(&tt->lock);
    }
}

static void
tt__async_cb(uv_async_t *h)
{
    struct tt *tt = h->data;
    pthread_mutex_lock(&tt->lock);
    struct tt_conn *ready = tt->ready, *dead = tt->dead;
    tt->ready = tt->dead = NULL;
    int is_closing = tt->is_closing;
    pthread_mutex_unlock(&tt->lock);
    while (ready != NULL) {
        struct tt_conn *c = ready;
        ready = c->next_ready;
        tt__deliver(tt, c, is_closing);
    }
    while (dead != NULL) {
        struct tt_conn *c = dead;
        dead = c->next_dead;
        tt__conn_free(tt, c);
    }
    tt__maybe_closed(tt);
}

/* A new TLS connection on the raft port (nng's thread). */
static void
tt__accept_cb(void *arg)
{
    struct tt *tt = arg;
    int rv = nng_aio_result(tt->accept_aio);
    nng_stream *s = rv == 0 ? nng_aio_get_output(tt->accept_aio, 0) : NULL;
    pthread_mutex_lock(&tt->lock);
    struct tt_conn *c = NULL;
    if (s != NULL && !tt->is_closing)
        c = tt__conn_new(tt);
    if (c != NULL) {
        c->stream = s;
        c->has_thr_in = pthread_create(&c->thr_in, NULL, tt__acceptor, c) == 0;
        if (!c->has_thr_in) {
            c->n_threads = 0;
            c->next_dead = tt->dead; /* Freed by the loop. */
            tt->dead = c;
        }
    } else if (s != NULL) {
        nng_stream_close(s);
        nng_stream_free(s);
    }
    int is_again = !tt->is_closing && rv != NNG_ECLOSED;
    if (is_again)
        nng_stream_listener_accept(tt->listener, tt->accept_aio);
    pthread_mutex_unlock(&tt->lock);
    uv_async_send(&tt->async);
}

/* ---- raft_uv_transport ----------------------------------------------------
 */

static int
tt__init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct tt *tt = t->impl;
    if (strlen(address) > TRANSPORT_TLS_MAX_ADDR) {
        snprintf(t->errmsg, sizeof t->errmsg, "address too long: %s", address);
        return RAFT_INVALID;
    }
    tt->id = id;
    snprintf(tt->address, sizeof tt->address, "%s", address);
    if (uv_async_init(tt->loop, &tt->async, tt__async_cb) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "uv_async_init failed");
        return RAFT_IOERR;
    }
    tt->async.data = tt;
    tt->is_async_init = 1;
    return 0;
}

static int
tt__listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct tt *tt = t->impl;
    char url[TRANSPORT_TLS_MAX_ADDR + 16];
    tt->accept_cb = cb;
    snprintf(url, sizeof url, "tls+tcp://%s", tt->address);
    int rv = nng_stream_listener_alloc(&tt->listener, url);
    if (rv == 0)
        rv = nng_stream_listener_set_ptr(tt->listener, NNG_OPT_TLS_CONFIG,
                                         tt->cfg.listen);
    if (rv == 0) {
        nng_stream_listener_set_bool(tt->listener, NNG_OPT_TCP_NODELAY, true);
        nng_stream_listener_set_bool(tt->listener, NNG_OPT_TCP_KEEPALIVE, true);
        rv = nng_stream_listener_listen(tt->listener);
    }
    if (rv == 0)
        rv = nng_aio_alloc(&tt->accept_aio, tt__accept_cb, tt);
    if (rv != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %s: %s", url,
                 nng_strerror(rv));
        return RAFT_IOERR;
    }
    nng_stream_listener_accept(tt->listener, tt->accept_aio);
    rv_logf(tt->cfg.log, RV_LOG_INFO, "raft-tls",
            "raft listening on %s (peers need a certificate of the cluster "
            "CA)",
            url);
    return 0;
}

static int
tt__connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
            raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct tt *tt = t->impl;
    (void)id;
    if (strlen(address) > TRANSPORT_TLS_MAX_ADDR)
        return RAFT_INVALID;
    pthread_mutex_lock(&tt->lock);
    struct tt_conn *c = tt->is_closing ? NULL : tt__conn_new(tt);
    int rv = RAFT_NOMEM;
    if (c != NULL) {
        c->is_dialler = 1;
        c->req = req;
        c->cb = cb;
        snprintf(c->addr, sizeof c->addr, "%s", address);
        c->has_thr_in = pthread_create(&c->thr_in, NULL, tt__dialler, c) == 0;
        if (c->has_thr_in) {
            rv = 0;
        } else { /* Not reported to raft: unlist and free it here. */
            tt->conns = c->next;
            tt->n_conns--;
            nng_aio_free(c->aio_in);
            nng_aio_free(c->aio_out);
            free(c);
        }
    }
    pthread_mutex_unlock(&tt->lock);
    return rv;
}

static void
tt__close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct tt *tt = t->impl;
    pthread_mutex_lock(&tt->lock);
    tt->is_closing = 1;
    tt->close_cb = cb;
    for (struct tt_conn *c = tt->conns; c != NULL; c = c->next)
        tt__kill(c);
    pthread_mutex_unlock(&tt->lock);
    if (tt->listener != NULL)
        nng_stream_listener_close(tt->listener);
    if (tt->accept_aio != NULL)
        nng_aio_stop(tt->accept_aio); /* Waits for a running callback. */
    uv_async_send(&tt->async);
}

int
transport_tls_init(struct raft_uv_transport *t, uv_loop_t *loop,
                   const struct transport_tls_config *cfg)
{
    void *data = t->data;
    struct tt *tt = calloc(1, sizeof *tt);
    if (tt == NULL)
        return RV_ENOMEM;
    memset(t, 0, sizeof *t);
    t->data = data;
    tt->t = t;
    tt->loop = loop;
    tt->cfg = *cfg;
    nng_tls_config_hold(cfg->listen);
    pthread_mutex_init(&tt->lock, NULL);
    t->impl = tt;
    t->init = tt__init;
    t->listen = tt__listen;
    t->connect = tt__connect;
    t->close = tt__close;
    return RV_OK;
}

void
transport_tls_close(struct raft_uv_transport *t)
{
    struct tt *tt = t->impl;
    if (tt == NULL)
        return;
    if (tt->accept_aio != NULL)
        nng_aio_free(tt->accept_aio);
    if (tt->listener != NULL)
        nng_stream_listener_free(tt->listener);
    nng_tls_config_free(tt->cfg.listen);
    pthread_mutex_destroy(&tt->lock);
    free(tt);
    t->impl = NULL;
}
