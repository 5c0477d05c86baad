/* The raft TLS transport's connection threads (contract and wire format
 * in transport_tls.h; shared state in transport_tls_int.h).
 *
 * A connection (struct tt_conn) has one thread. It sets the connection up
 * (dials, handshakes and sends the hello, or handshakes, receives and
 * checks one), makes the socketpair, posts the connection to the loop and
 * then relays both ways with poll until either side ends; then it posts
 * the connection as dead and the loop joins and frees it.
 *
 * tt_conn_kill shuts both sockets down under the transport's lock (a
 * thread publishes its TCP socket under the same lock after checking
 * is_killed), which wakes the thread's poll and ends it. */
#include "base/err.h"
#include "raft/peersock.h"
#include "raft/transport_tls_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TT_MAGIC           "RVRAFT01"
#define TT_HELLO_BYTES     18 /* Before the address. */
#define TT_BUF_BYTES       (64u << 10)
#define TT_RECORD          16384 /* TLS's largest record payload. */
#define TT_KILL_POLL_MS    100   /* Set-up polls in slices to see a kill. */
#define TT_USER_TIMEOUT_MS 2000  /* Unacknowledged data closes the link. */

/* Stop c's thread: shut its sockets down. tt->lock held. */
void
tt_conn_kill(struct tt_conn *c)
{
    c->is_killed = 1;
    if (c->sock >= 0)
        shutdown(c->sock, SHUT_RDWR);
    if (c->fds[1] >= 0)
        shutdown(c->fds[1], SHUT_RDWR);
}

static int
tt__is_killed(struct tt_conn *c)
{
    pthread_mutex_lock(&c->tt->lock);
    int is_killed = c->is_killed;
    pthread_mutex_unlock(&c->tt->lock);
    return is_killed;
}

static void
tt__deadline_set(struct tt_conn *c, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, &c->deadline);
    c->deadline.tv_sec += ms / 1000;
    c->deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (c->deadline.tv_nsec >= 1000000000L) {
        c->deadline.tv_sec++;
        c->deadline.tv_nsec -= 1000000000L;
    }
}

/* Wait until c->sock is ready for events, within c's deadline. 0, or -1
 * on timeout, kill or error. */
static int
tt__wait(struct tt_conn *c, short events)
{
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left = (c->deadline.tv_sec - now.tv_sec) * 1000LL +
                         (c->deadline.tv_nsec - now.tv_nsec) / 1000000L;
        if (left <= 0 || tt__is_killed(c))
            return -1;
        struct pollfd p = {c->sock, events, 0};
        int n =
            poll(&p, 1, left < TT_KILL_POLL_MS ? (int)left : TT_KILL_POLL_MS);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0)
            return 0;
    }
}

/* Wait for what a session step asked (code: a TT_SSL_* code) within the
 * deadline: 1 to retry, -1 when the step failed, is late or was killed. */
static int
tt__ssl_retry(struct tt_conn *c, int code)
{
    if (code == TT_SSL_WANT_READ)
        return tt__wait(c, POLLIN) == 0 ? 1 : -1;
    if (code == TT_SSL_WANT_WRITE)
        return tt__wait(c, POLLOUT) == 0 ? 1 : -1;
    return -1;
}

/* 0 once the handshake is done; -1 when it failed (the session says why)
 * and -2 when it was late or killed. */
static int
tt__handshake(struct tt_conn *c)
{
    for (;;) {
        int code = tt_ssl_handshake(c->ssl);
        if (code == TT_SSL_OK)
            return 0;
        if (code != TT_SSL_WANT_READ && code != TT_SSL_WANT_WRITE)
            return -1;
        if (tt__ssl_retry(c, code) < 0)
            return -2;
    }
}

/* Send (is_send) or receive exactly n bytes of buf within the deadline. */
static int
tt__io_all(struct tt_conn *c, int is_send, void *buf, size_t n)
{
    for (size_t done = 0; done < n;) {
        unsigned char *p = (unsigned char *)buf + done;
        int rv = is_send ? tt_ssl_write(c->ssl, p, n - done)
                         : tt_ssl_read(c->ssl, p, n - done);
        if (rv > 0) {
            done += (size_t)rv;
            continue;
        }
        if (tt__ssl_retry(c, -rv) < 0)
            return -1;
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
    uint8_t ack = 0;
    if (tt__io_all(c, 1, buf, TT_HELLO_BYTES + n) != 0 ||
        tt__io_all(c, 0, &ack, 1) != 0)
        return -1;
    return ack == TRANSPORT_TLS_ACK ? 0 : -1;
}

/* Acceptor: read and check the dialler's hello, then ack it. */
static int
tt__hello_recv(struct tt_conn *c)
{
    uint8_t buf[TT_HELLO_BYTES];
    if (tt__io_all(c, 0, buf, sizeof buf) != 0)
        return -1;
    size_t n = (size_t)buf[16] << 8 | buf[17];
    c->peer_id = tt__get_u64(buf + 8);
    if (memcmp(buf, TT_MAGIC, 8) != 0 || c->peer_id == 0 || n == 0 ||
        n > TRANSPORT_TLS_MAX_ADDR)
        return -1;
    if (tt__io_all(c, 0, c->addr, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (c->addr[i] < 0x21 || c->addr[i] > 0x7e)
            return -1;
    c->addr[n] = '\0';
    uint8_t ack = TRANSPORT_TLS_ACK;
    return tt__io_all(c, 1, &ack, 1);
}

/* ---- Sockets --------------------------------------------------------------
 */

/* Split "host:port" (the last colon) and resolve it (IPv4 or IPv6, TCP).
 * Free *out with freeaddrinfo. 0 or -1. */
int
tt_conn_resolve(const char *addr, int is_passive, char *host, size_t size,
                struct addrinfo **out)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0' ||
        (size_t)(colon - addr) >= size)
        return -1;
    size_t n = (size_t)(colon - addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') { /* [IPv6]:port */
        addr++;
        n -= 2;
    }
    snprintf(host, size, "%.*s", (int)n, addr);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = is_passive ? AI_PASSIVE : 0;
    return getaddrinfo(host, colon + 1, &hints, out) == 0 ? 0 : -1;
}

void
tt_conn_sock_opts(int fd)
{
    /* Data unacknowledged this long closes the connection (a peer behind
     * a network cut), and the relay dials again: TCP's retransmission
     * backoff would otherwise delay the first message after the heal. */
    peersock_set_opts(fd, TT_USER_TIMEOUT_MS);
}

/* Publish fd as c->sock unless c was killed (then close it). 0 or -1. */
static int
tt__sock_set(struct tt_conn *c, int fd)
{
    pthread_mutex_lock(&c->tt->lock);
    int is_killed = c->is_killed;
    if (!is_killed)
        c->sock = fd;
    pthread_mutex_unlock(&c->tt->lock);
    if (is_killed)
        close(fd);
    return is_killed ? -1 : 0;
}

/* Connect a non-blocking socket to c->addr within TRANSPORT_TLS_DIAL_MS;
 * the host part into host. 0 or -1 with errmsg. */
static int
tt__dial(struct tt_conn *c, char *host, size_t size, char *errmsg)
{
    struct addrinfo *ai = NULL;
    if (tt_conn_resolve(c->addr, 0, host, size, &ai) != 0) {
        rv_errmsg_printf(errmsg, "cannot resolve %s", c->addr);
        return -1;
    }
    int fd =
        socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rv = fd >= 0 ? tt__sock_set(c, fd) : -1;
    tt__deadline_set(c, TRANSPORT_TLS_DIAL_MS);
    if (rv == 0) {
        tt_conn_sock_opts(fd);
        rv = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rv != 0 && errno == EINPROGRESS)
            rv = tt__wait(c, POLLOUT);
    }
    freeaddrinfo(ai);
    int err = 0;
    socklen_t len = sizeof err;
    if (rv == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (rv != 0 || err != 0) {
        rv_errmsg_printf(errmsg, "dial %s: %s", c->addr,
                         err != 0 ? strerror(err) : "failed or timed out");
        return -1;
    }
    return 0;
}

/* The socketpair. 0 or -1. */
static int
tt__pair(struct tt_conn *c)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->fds) != 0) {
        c->fds[0] = c->fds[1] = -1;
        return -1;
    }
    int sz = 1 << 20;
    setsockopt(c->fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(c->fds[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    int fl = fcntl(c->fds[1], F_GETFL);
    return fl >= 0 && fcntl(c->fds[1], F_SETFL, fl | O_NONBLOCK) == 0 ? 0 : -1;
}

/* ---- Relaying -------------------------------------------------------------
 */

/* One direction's buffer: bytes [off, len) are still to be written. */
struct tt_buf {
    unsigned char data[TT_BUF_BYTES];
    size_t off, len;
};

enum {
    TT_WANT_SOCK_IN = 1,
    TT_WANT_SOCK_OUT = 2,
    TT_WANT_PAIR_IN = 4,
    TT_WANT_PAIR_OUT = 8
};

/* TLS -> socketpair: decrypt what is there, then pass it on. Sets *want
 * bits when blocked; returns 1 on progress, 0 if none, -1 at the end. */
static int
tt__relay_in(struct tt_conn *c, struct tt_buf *b, int *want)
{
    int is_progress = 0;
    if (b->off == b->len) {
        b->off = b->len = 0;
        while (TT_BUF_BYTES - b->len >= TT_RECORD) {
            int rv =
                tt_ssl_read(c->ssl, b->data + b->len, TT_BUF_BYTES - b->len);
            if (rv > 0) {
                b->len += (size_t)rv;
                is_progress = 1;
                continue;
            }
            if (rv == -TT_SSL_WANT_READ || rv == -TT_SSL_WANT_WRITE) {
                *want |= rv == -TT_SSL_WANT_READ ? TT_WANT_SOCK_IN
                                                 : TT_WANT_SOCK_OUT;
                break;
            }
            if (b->len == 0)
                return -1; /* Closed or failed; deliver what came first. */
            break;
        }
    }
    while (b->off < b->len) {
        ssize_t n =
            send(c->fds[1], b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (n > 0) {
            b->off += (size_t)n;
            is_progress = 1;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *want |= TT_WANT_PAIR_OUT;
            break;
        } else {
            return -1;
        }
    }
    return is_progress;
}

/* Socketpair -> TLS: read what raft wrote, encrypt it in whole records. */
static int
tt__relay_out(struct tt_conn *c, struct tt_buf *b, int *want)
{
    int is_progress = 0;
    if (b->off == b->len) {
        ssize_t n = read(c->fds[1], b->data, TT_BUF_BYTES);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR))
            return -1;
        if (n < 0 && errno == EINTR)
            return 1; /* Try again at once. */
        if (n < 0) {
            *want |= TT_WANT_PAIR_IN;
            return 0;
        }
        b->off = 0;
        b->len = (size_t)n;
        is_progress = 1;
    }
    while (b->off < b->len) {
        int rv = tt_ssl_write(c->ssl, b->data + b->off, b->len - b->off);
        if (rv > 0) {
            b->off += (size_t)rv;
            is_progress = 1;
        } else if (rv == -TT_SSL_WANT_WRITE || rv == -TT_SSL_WANT_READ) {
            *want |=
                rv == -TT_SSL_WANT_WRITE ? TT_WANT_SOCK_OUT : TT_WANT_SOCK_IN;
            break;
        } else {
            return -1;
        }
    }
    return is_progress;
}

/* Both directions until either side ends (or a kill shuts them down). */
static void
tt__relay(struct tt_conn *c)
{
    struct tt_buf *in = malloc(sizeof *in), *out = malloc(sizeof *out);
    if (in == NULL || out == NULL)
        goto done;
    in->off = in->len = out->off = out->len = 0;
    for (;;) {
        int want = 0;
        int a = tt__relay_in(c, in, &want);
        int b = a < 0 ? -1 : tt__relay_out(c, out, &want);
        if (a < 0 || b < 0)
            break;
        if (a > 0 || b > 0)
            continue;
        struct pollfd p[2] = {{c->sock, 0, 0}, {c->fds[1], 0, 0}};
        p[0].events = (short)((want & TT_WANT_SOCK_IN ? POLLIN : 0) |
                              (want & TT_WANT_SOCK_OUT ? POLLOUT : 0));
        p[1].events = (short)((want & TT_WANT_PAIR_IN ? POLLIN : 0) |
                              (want & TT_WANT_PAIR_OUT ? POLLOUT : 0));
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
    }
done:
    free(in);
    free(out);
}

/* ---- The connection's thread ---------------------------------------------
 */

static void
tt__post(struct tt_conn *c, int is_dead)
{
    struct tt *tt = c->tt;
    pthread_mutex_lock(&tt->lock);
    if (is_dead) {
        if (c->sock >= 0)
            shutdown(c->sock, SHUT_RDWR);
        if (c->fds[1] >= 0)
            shutdown(c->fds[1], SHUT_RDWR);
        c->next_dead = tt->dead;
        tt->dead = c;
    } else {
        c->next_ready = tt->ready;
        tt->ready = c;
    }
    pthread_mutex_unlock(&tt->lock);
    uv_async_send(&tt->async);
}

/* Handshake and hello (either side), then the socketpair. 0 or -1 with
 * errmsg. */
static int
tt__setup(struct tt_conn *c, const char *host, char *errmsg)
{
    if (tt_ssl_new(c->tt->ctx, c->sock, !c->is_dialler, host, &c->ssl) !=
        RV_OK) {
        rv_errmsg_printf(errmsg, "TLS set-up: out of memory");
        return -1;
    }
    tt__deadline_set(c, TRANSPORT_TLS_HELLO_MS);
    int rv = tt__handshake(c);
    if (rv != 0) {
        char why[RV_ERRMSG_SIZE] = "late or cancelled";
        if (rv == -1)
            tt_ssl_errmsg(c->ssl, why, sizeof why);
        rv_errmsg_printf(errmsg, "TLS handshake: %s", why);
        return -1;
    }
    rv = c->is_dialler ? tt__hello_send(c) : tt__hello_recv(c);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "hello: late, short or malformed");
        return -1;
    }
    if (tt__pair(c) != 0) {
        rv_errmsg_printf(errmsg, "socketpair: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void *
tt_conn_dialler(void *arg)
{
    struct tt_conn *c = arg;
    char errmsg[RV_ERRMSG_SIZE] = "", host[TRANSPORT_TLS_MAX_ADDR + 1];
    int rv = tt__dial(c, host, sizeof host, errmsg);
    if (rv == 0)
        rv = tt__setup(c, host, errmsg);
    if (rv != 0 && !tt__is_killed(c))
        rv_logf(c->tt->cfg.log, RV_LOG_DEBUG, "raft-tls", "connect to %s: %s",
                c->addr, errmsg);
    c->status = rv == 0 ? 0 : RAFT_NOCONNECTION;
    tt__post(c, 0);
    if (rv == 0)
        tt__relay(c);
    tt__post(c, 1);
    return NULL;
}

/* The peer's address as text, for a log line. */
static void
tt__remote(struct tt_conn *c, char *out, size_t size)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    snprintf(out, size, "?");
    if (getpeername(c->sock, (struct sockaddr *)&sa, &len) == 0 &&
        getnameinfo((struct sockaddr *)&sa, len, host, sizeof host, port,
                    sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(out, size, "%s:%s", host, port);
}

void *
tt_conn_acceptor(void *arg)
{
    struct tt_conn *c = arg;
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rv = tt__setup(c, NULL, errmsg);
    if (rv != 0 && !tt__is_killed(c)) {
        char who[NI_MAXHOST + NI_MAXSERV + 2];
        tt__remote(c, who, sizeof who);
        rv_logf(c->tt->cfg.log, RV_LOG_WARN, "raft-tls",
                "refused a raft connection from %s: %s (a peer needs a "
                "certificate of the cluster CA)",
                who, errmsg);
    }
    if (rv == 0) {
        c->status = 0;
        tt__post(c, 0);
        tt__relay(c);
    }
    tt__post(c, 1);
    return NULL;
}
