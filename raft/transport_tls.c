/* The raft TLS transport's loop side (contract and wire format in
 * transport_tls.h): raft_uv_transport's init, listen, connect and close,
 * accepting on the raft port, and handing set-up connections to raft.
 * Each connection's thread is in transport_tls_conn.c, its TLS session in
 * transport_tls_ssl.c. */
#include "base/err.h"
#include "raft/transport_tls_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- Connections ---------------------------------------------------------
 */

/* A new connection, listed; NULL when out of memory or over
 * TRANSPORT_TLS_MAX_CONNS. tt->lock held. */
static struct tt_conn *
tt__conn_new(struct tt *tt)
{
    if (tt->n_conns >= TRANSPORT_TLS_MAX_CONNS)
        return NULL;
    struct tt_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->tt = tt;
    c->sock = c->fds[0] = c->fds[1] = -1;
    c->next = tt->conns;
    tt->conns = c;
    tt->n_conns++;
    return c;
}

/* Unlist and free c once its thread is gone. Loop thread. */
static void
tt__conn_free(struct tt *tt, struct tt_conn *c)
{
    if (c->has_thr)
        pthread_join(c->thr, NULL);
    pthread_mutex_lock(&tt->lock);
    for (struct tt_conn **p = &tt->conns; *p != NULL; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            tt->n_conns--;
            break;
        }
    pthread_mutex_unlock(&tt->lock);
    tt_ssl_free(c->ssl);
    if (c->sock >= 0)
        close(c->sock);
    for (int i = 0; i < 2; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    free(c);
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
        tt_conn_kill(c);
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

/* Start c's thread; on failure c is posted dead (freed by the loop).
 * tt->lock held. */
static void
tt__conn_start(struct tt *tt, struct tt_conn *c, void *(*fn)(void *))
{
    c->has_thr = pthread_create(&c->thr, NULL, fn, c) == 0;
    if (!c->has_thr) {
        c->next_dead = tt->dead;
        tt->dead = c;
    }
}

/* New TCP connections on the raft port (loop thread). */
static void
tt__accept_cb(uv_poll_t *h, int status, int events)
{
    struct tt *tt = h->data;
    (void)events;
    for (int i = 0; status == 0 && i < TRANSPORT_TLS_MAX_CONNS; i++) {
        int fd = accept(tt->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            close(fd);
            continue;
        }
        tt_conn_sock_opts(fd);
        pthread_mutex_lock(&tt->lock);
        struct tt_conn *c = tt->is_closing ? NULL : tt__conn_new(tt);
        if (c != NULL) {
            c->sock = fd;
            tt__conn_start(tt, c, tt_conn_acceptor);
        }
        pthread_mutex_unlock(&tt->lock);
        if (c == NULL)
            close(fd);
    }
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

/* A listening, non-blocking socket on address, or -1. */
static int
tt__listen_fd(const char *address)
{
    char host[TRANSPORT_TLS_MAX_ADDR + 1];
    struct addrinfo *ai = NULL;
    if (tt_conn_resolve(address, 1, host, sizeof host, &ai) != 0)
        return -1;
    int fd =
        socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0 &&
        (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
         bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
         listen(fd, TRANSPORT_TLS_MAX_CONNS) != 0)) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int
tt__listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct tt *tt = t->impl;
    tt->accept_cb = cb;
    tt->listen_fd = tt__listen_fd(tt->address);
    if (tt->listen_fd < 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %s: %s", tt->address,
                 strerror(errno));
        return RAFT_IOERR;
    }
    if (uv_poll_init(tt->loop, &tt->listen_poll, tt->listen_fd) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "uv_poll_init failed");
        return RAFT_IOERR;
    }
    tt->listen_poll.data = tt;
    tt->is_poll_init = 1;
    uv_poll_start(&tt->listen_poll, UV_READABLE, tt__accept_cb);
    rv_logf(tt->cfg.log, RV_LOG_INFO, "raft-tls",
            "raft listening on %s with TLS (peers need a certificate of the "
            "cluster CA)",
            tt->address);
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
        c->has_thr = pthread_create(&c->thr, NULL, tt_conn_dialler, c) == 0;
        if (c->has_thr) {
            rv = 0;
        } else { /* Not reported to raft: unlist and free it here. */
            tt->conns = c->next;
            tt->n_conns--;
            tt_ssl_free(c->ssl);
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
        tt_conn_kill(c);
    pthread_mutex_unlock(&tt->lock);
    if (tt->is_poll_init) {
        uv_poll_stop(&tt->listen_poll);
        uv_close((uv_handle_t *)&tt->listen_poll, NULL);
    }
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
    char errmsg[RV_ERRMSG_SIZE];
    int err = tt_ctx_open(&tt->ctx, cfg->ca_file, cfg->cert_file, cfg->key_file,
                          errmsg);
    if (err != RV_OK) {
        rv_logf(cfg->log, RV_LOG_ERROR, "raft-tls", "%s", errmsg);
        free(tt);
        return err;
    }
    memset(t, 0, sizeof *t);
    t->data = data;
    tt->t = t;
    tt->loop = loop;
    tt->cfg = *cfg;
    tt->listen_fd = -1;
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
    if (tt->listen_fd >= 0)
        close(tt->listen_fd);
    tt_ctx_close(tt->ctx);
    pthread_mutex_destroy(&tt->lock);
    free(tt);
    t->impl = NULL;
}
