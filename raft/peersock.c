#include "raft/peersock.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <uv.h>

static struct peersock *peersock__all[PEERSOCK_MAX];

static struct peersock *
peersock__of(struct raft_uv_transport *t)
{
    for (size_t i = 0; i < PEERSOCK_MAX; i++)
        if (peersock__all[i] != NULL && peersock__all[i]->t == t)
            return peersock__all[i];
    return NULL;
}

int
peersock_set_opts(int fd, unsigned user_timeout_ms)
{
    int one = 1, idle = 1, intvl = 1, cnt = 3;
    unsigned ut = user_timeout_ms;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut) != 0)
        return -1;
    return 0;
}

static void
peersock__stream_opts(struct peersock *p, struct uv_stream_s *stream)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)stream, &fd) != 0 ||
        peersock_set_opts(fd, p->user_timeout_ms) != 0)
        p->n_opts_failed++; /* The connection works, only undetected
                               stalls last longer: go on. */
}

static void
peersock__accept(struct raft_uv_transport *t, raft_id id, const char *address,
                 struct uv_stream_s *stream)
{
    struct peersock *p = peersock__of(t);
    if (p == NULL)
        abort(); /* Installed wrappers are found until closed: a bug. */
    peersock__stream_opts(p, stream);
    p->accept_cb(t, id, address, stream);
}

static int
peersock__listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct peersock *p = peersock__of(t);
    if (p == NULL)
        return RAFT_INVALID;
    p->accept_cb = cb;
    return p->listen(t, peersock__accept);
}

/* One connect attempt: raft's request (outer) is answered by the first of
 * the transport's answer and the deadline; the inner request is the one
 * the transport holds until it answers. */
struct peersock_conn {
    struct raft_uv_connect inner;
    struct raft_uv_connect *outer; /* NULL once raft was answered. */
    raft_uv_connect_cb outer_cb;
    struct peersock *p;
    uv_timer_t timer;
    int is_inner_done;
};

static void
peersock__conn_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
peersock__stream_closed(uv_handle_t *h)
{
    raft_free(h); /* raft_uv_tcp allocated it from raft's heap. */
}

static void
peersock__connected(struct raft_uv_connect *req, struct uv_stream_s *stream,
                    int status)
{
    struct peersock_conn *c = req->data;
    c->is_inner_done = 1;
    uv_timer_stop(&c->timer);
    struct raft_uv_connect *outer = c->outer;
    c->outer = NULL;
    if (outer != NULL) {
        if (status == 0)
            peersock__stream_opts(c->p, stream);
        c->outer_cb(outer, stream, status);
    } else if (status == 0) {
        uv_close((uv_handle_t *)stream, peersock__stream_closed);
    }
    uv_close((uv_handle_t *)&c->timer, peersock__conn_timer_closed);
}

static void
peersock__deadline(uv_timer_t *timer)
{
    struct peersock_conn *c = timer->data;
    struct raft_uv_connect *outer = c->outer;
    if (outer == NULL || c->is_inner_done)
        return;
    c->outer = NULL;
    c->p->n_connect_late++;
    c->outer_cb(outer, NULL, RAFT_NOCONNECTION);
}

static int
peersock__connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                  raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct peersock *p = peersock__of(t);
    if (p == NULL)
        return RAFT_INVALID;
    struct peersock_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RAFT_NOMEM;
    c->p = p;
    c->outer = req;
    c->outer_cb = cb;
    c->inner.data = c;
    if (uv_timer_init(p->loop, &c->timer) != 0) {
        free(c);
        return RAFT_NOMEM;
    }
    c->timer.data = c;
    int rv = p->connect(t, &c->inner, id, address, peersock__connected);
    if (rv != 0) {
        uv_close((uv_handle_t *)&c->timer, peersock__conn_timer_closed);
        return rv;
    }
    uv_timer_start(&c->timer, peersock__deadline, p->connect_ms, 0);
    return 0;
}

int
peersock_install(struct peersock *p, struct raft_uv_transport *t,
                 struct uv_loop_s *loop, unsigned user_timeout_ms,
                 unsigned connect_ms)
{
    if (user_timeout_ms == 0 || connect_ms == 0)
        return RAFT_INVALID;
    size_t slot = 0;
    while (slot < PEERSOCK_MAX && peersock__all[slot] != NULL)
        slot++;
    if (slot == PEERSOCK_MAX)
        return RAFT_TOOMANY;
    *p = (struct peersock){0};
    p->t = t;
    p->loop = loop;
    p->user_timeout_ms = user_timeout_ms;
    p->connect_ms = connect_ms;
    p->listen = t->listen;
    p->connect = t->connect;
    t->listen = peersock__listen;
    t->connect = peersock__connect;
    peersock__all[slot] = p;
    return 0;
}

void
peersock_close(struct peersock *p)
{
    for (size_t i = 0; i < PEERSOCK_MAX; i++)
        if (peersock__all[i] == p)
            peersock__all[i] = NULL;
}
