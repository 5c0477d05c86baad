/* The TLS transport for raft_uv (contract and wire format in
 * transport_tls.h).
 *
 * A connection (struct tt_conn) has one thread. It sets the connection up
 * (dials, handshakes and sends the hello, or handshakes, receives and
 * checks one), makes the socketpair, posts the connection to the loop and
 * then relays both ways with poll until either side ends; then it posts
 * the connection as dead and the loop joins and frees it.
 *
 * tt__kill shuts both sockets down under the transport's lock (a thread
 * publishes its TCP socket under the same lock after checking is_killed),
 * which wakes the thread's poll and ends it. */
#include "raft/transport_tls.h"

#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TT_MAGIC        "RVRAFT01"
#define TT_HELLO_BYTES  18 /* Before the address. */
#define TT_BUF_BYTES    (64u << 10)
#define TT_RECORD       16384 /* mbedTLS's largest record payload. */
#define TT_MAX_PEM      (256u << 10)
#define TT_KILL_POLL_MS 100 /* Set-up polls in slices to see a kill. */

struct tt;

/* One connection's mbedTLS state: nothing in it is shared. */
struct tt_tls {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca, crt;
    mbedtls_pk_context key;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
};

struct tt_conn {
    struct tt *tt;
    struct tt_conn *next, *next_ready, *next_dead;
    int is_dialler;
    struct raft_uv_connect *req; /* Dialler: raft's request. */
    raft_uv_connect_cb cb;
    raft_id peer_id;                       /* Acceptor: from the hello. */
    char addr[TRANSPORT_TLS_MAX_ADDR + 1]; /* The peer's raft address. */
    int sock;                              /* TCP; set under tt->lock. */
    int fds[2];                            /* [0] raft's pipe, [1] relay's. */
    int status;                            /* 0: ready for raft. */
    int is_killed;                         /* Under tt->lock. */
    pthread_t thr;
    int has_thr;
    struct timespec deadline; /* Of the set-up step under way. */
    struct tt_tls tls;
};

struct tt_pem {
    unsigned char *ca, *crt, *key;   /* NUL-terminated. */
    size_t ca_len, crt_len, key_len; /* With the NUL, as mbedTLS wants. */
};

struct tt {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    struct transport_tls_config cfg;
    struct tt_pem pem;
    raft_id id;
    char address[TRANSPORT_TLS_MAX_ADDR + 1];
    raft_uv_accept_cb accept_cb;
    uv_async_t async;
    int is_async_init;
    int listen_fd;
    uv_poll_t listen_poll;
    int is_poll_init;
    pthread_mutex_t lock;
    struct tt_conn *conns, *ready, *dead; /* Under lock. */
    size_t n_conns;
    int is_closing; /* Under lock. */
    raft_uv_transport_close_cb close_cb;
};

/* ---- PEM and mbedTLS set-up -----------------------------------------------
 */

/* Read path into a NUL-terminated buffer. RV_OK, RV_EIO or RV_ENOMEM. */
static int
tt__read_pem(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return RV_EIO;
    unsigned char *buf = malloc(TT_MAX_PEM + 1);
    size_t n = buf != NULL ? fread(buf, 1, TT_MAX_PEM + 1, f) : 0;
    int is_err = ferror(f);
    fclose(f);
    if (buf == NULL)
        return RV_ENOMEM;
    if (is_err || n == 0 || n > TT_MAX_PEM) {
        free(buf);
        return RV_EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n + 1;
    return RV_OK;
}

static void
tt__tls_init(struct tt_tls *s)
{
    mbedtls_entropy_init(&s->entropy);
    mbedtls_ctr_drbg_init(&s->drbg);
    mbedtls_x509_crt_init(&s->ca);
    mbedtls_x509_crt_init(&s->crt);
    mbedtls_pk_init(&s->key);
    mbedtls_ssl_config_init(&s->conf);
    mbedtls_ssl_init(&s->ssl);
}

static void
tt__tls_free(struct tt_tls *s)
{
    mbedtls_ssl_free(&s->ssl);
    mbedtls_ssl_config_free(&s->conf);
    mbedtls_pk_free(&s->key);
    mbedtls_x509_crt_free(&s->crt);
    mbedtls_x509_crt_free(&s->ca);
    mbedtls_ctr_drbg_free(&s->drbg);
    mbedtls_entropy_free(&s->entropy);
}

/* AES-GCM first: mbedTLS runs it with AES-NI and PCLMULQDQ, while its
 * ChaCha20-Poly1305 (its default first choice) is portable C. */
static const int tt_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0};

/* Parse the PEM into s and configure it as a server or client session that
 * requires the CA's signature on the peer's certificate. 0 or an mbedTLS
 * error. */
static int
tt__tls_setup(struct tt_tls *s, const struct tt_pem *pem, int is_server)
{
    static const unsigned char pers[] = "runvault-raft-tls";
    int rv = mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
                                   pers, sizeof pers - 1);
    if (rv == 0)
        rv = mbedtls_x509_crt_parse(&s->ca, pem->ca, pem->ca_len);
    if (rv == 0)
        rv = mbedtls_x509_crt_parse(&s->crt, pem->crt, pem->crt_len);
    if (rv == 0)
        rv = mbedtls_pk_parse_key(&s->key, pem->key, pem->key_len, NULL, 0);
    if (rv == 0)
        rv = mbedtls_ssl_config_defaults(
            &s->conf, is_server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
            MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (rv != 0)
        return rv;
    mbedtls_ssl_conf_ciphersuites(&s->conf, tt_suites);
    mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
    mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&s->conf, &s->ca, NULL);
    mbedtls_ssl_conf_min_version(&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    rv = mbedtls_ssl_conf_own_cert(&s->conf, &s->crt, &s->key);
    if (rv == 0)
        rv = mbedtls_ssl_setup(&s->ssl, &s->conf);
    return rv;
}

/* The BIO on a non-blocking socket (ctx points at the fd). */
static int
tt__bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    for (;;) {
        ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (int)n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_WRITE;
        if (errno != EINTR)
            return MBEDTLS_ERR_NET_SEND_FAILED;
    }
}

static int
tt__bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(*(int *)ctx, buf, len, 0);
        if (n >= 0)
            return (int)n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_READ;
        if (errno != EINTR)
            return MBEDTLS_ERR_NET_RECV_FAILED;
    }
}

/* ---- Connections ---------------------------------------------------------
 */

/* Stop c's thread: shut its sockets down. tt->lock held. */
static void
tt__kill(struct tt_conn *c)
{
    c->is_killed = 1;
    if (c->sock >= 0)
        shutdown(c->sock, SHUT_RDWR);
    if (c->fds[1] >= 0)
        shutdown(c->fds[1], SHUT_RDWR);
}

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
    tt__tls_init(&c->tls);
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
    tt__tls_free(&c->tls);
    if (c->sock >= 0)
        close(c->sock);
    for (int i = 0; i < 2; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    free(c);
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

/* Retry an mbedTLS step until done: its result (>= 0) or an error. */
static int
tt__ssl_retry(struct tt_conn *c, int rv)
{
    if (rv == MBEDTLS_ERR_SSL_WANT_READ)
        return tt__wait(c, POLLIN) == 0 ? 1 : -1;
    if (rv == MBEDTLS_ERR_SSL_WANT_WRITE)
        return tt__wait(c, POLLOUT) == 0 ? 1 : -1;
    return 0;
}

static int
tt__handshake(struct tt_conn *c)
{
    for (;;) {
        int rv = mbedtls_ssl_handshake(&c->tls.ssl);
        if (rv == 0)
            return 0;
        int again = tt__ssl_retry(c, rv);
        if (again <= 0)
            return again < 0 ? -1 : rv;
    }
}

/* Send (is_send) or receive exactly n bytes of buf within the deadline. */
static int
tt__io_all(struct tt_conn *c, int is_send, void *buf, size_t n)
{
    for (size_t done = 0; done < n;) {
        unsigned char *p = (unsigned char *)buf + done;
        int rv = is_send ? mbedtls_ssl_write(&c->tls.ssl, p, n - done)
                         : mbedtls_ssl_read(&c->tls.ssl, p, n - done);
        if (rv > 0) {
            done += (size_t)rv;
            continue;
        }
        if (rv == 0 || tt__ssl_retry(c, rv) <= 0)
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
static int
tt__resolve(const char *addr, int is_passive, char *host, size_t size,
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

static void
tt__sock_opts(int fd)
{
    int one = 1, idle = 1, intvl = 1, cnt = 3;
    /* Data unacknowledged this long closes the connection (a peer behind
     * a network cut), and the relay dials again: TCP's retransmission
     * backoff would otherwise delay the first message after the heal. */
    unsigned user_timeout_ms = 2000;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
               sizeof user_timeout_ms);
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
    if (tt__resolve(c->addr, 0, host, size, &ai) != 0) {
        rv_errmsg_printf(errmsg, "cannot resolve %s", c->addr);
        return -1;
    }
    int fd =
        socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rv = fd >= 0 ? tt__sock_set(c, fd) : -1;
    tt__deadline_set(c, TRANSPORT_TLS_DIAL_MS);
    if (rv == 0) {
        tt__sock_opts(fd);
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
            int rv = mbedtls_ssl_read(&c->tls.ssl, b->data + b->len,
                                      TT_BUF_BYTES - b->len);
            if (rv > 0) {
                b->len += (size_t)rv;
                is_progress = 1;
                continue;
            }
            if (rv == MBEDTLS_ERR_SSL_WANT_READ ||
                rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
                *want |= rv == MBEDTLS_ERR_SSL_WANT_READ ? TT_WANT_SOCK_IN
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
        int rv =
            mbedtls_ssl_write(&c->tls.ssl, b->data + b->off, b->len - b->off);
        if (rv > 0) {
            b->off += (size_t)rv;
            is_progress = 1;
        } else if (rv == MBEDTLS_ERR_SSL_WANT_WRITE ||
                   rv == MBEDTLS_ERR_SSL_WANT_READ) {
            *want |= rv == MBEDTLS_ERR_SSL_WANT_WRITE ? TT_WANT_SOCK_OUT
                                                      : TT_WANT_SOCK_IN;
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
    int rv = tt__tls_setup(&c->tls, &c->tt->pem, !c->is_dialler);
    if (rv == 0 && host != NULL)
        rv = mbedtls_ssl_set_hostname(&c->tls.ssl, host);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "TLS set-up: mbedTLS error -0x%04x", -rv);
        return -1;
    }
    mbedtls_ssl_set_bio(&c->tls.ssl, &c->sock, tt__bio_send, tt__bio_recv,
                        NULL);
    tt__deadline_set(c, TRANSPORT_TLS_HELLO_MS);
    rv = tt__handshake(c);
    if (rv != 0) {
        uint32_t flags = mbedtls_ssl_get_verify_result(&c->tls.ssl);
        rv_errmsg_printf(errmsg,
                         "TLS handshake: %s (mbedTLS -0x%04x, "
                         "verify flags 0x%x)",
                         rv < 0 && rv != -1 ? "refused" : "failed or late",
                         rv == -1 ? 0 : -rv, (unsigned)flags);
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

static void *
tt__dialler(void *arg)
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

static void *
tt__acceptor(void *arg)
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
        tt__sock_opts(fd);
        pthread_mutex_lock(&tt->lock);
        struct tt_conn *c = tt->is_closing ? NULL : tt__conn_new(tt);
        if (c != NULL) {
            c->sock = fd;
            tt__conn_start(tt, c, tt__acceptor);
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
    if (tt__resolve(address, 1, host, sizeof host, &ai) != 0)
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
        c->has_thr = pthread_create(&c->thr, NULL, tt__dialler, c) == 0;
        if (c->has_thr) {
            rv = 0;
        } else { /* Not reported to raft: unlist and free it here. */
            tt->conns = c->next;
            tt->n_conns--;
            tt__tls_free(&c->tls);
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
    if (tt->is_poll_init) {
        uv_poll_stop(&tt->listen_poll);
        uv_close((uv_handle_t *)&tt->listen_poll, NULL);
    }
    uv_async_send(&tt->async);
}

/* Read the three PEM files and check that mbedTLS takes them. */
static int
tt__pem_load(struct tt *tt, const struct transport_tls_config *cfg)
{
    struct tt_pem *p = &tt->pem;
    int err = tt__read_pem(cfg->ca_file, &p->ca, &p->ca_len);
    if (err == RV_OK)
        err = tt__read_pem(cfg->cert_file, &p->crt, &p->crt_len);
    if (err == RV_OK)
        err = tt__read_pem(cfg->key_file, &p->key, &p->key_len);
    if (err != RV_OK)
        return err;
    struct tt_tls *s = malloc(sizeof *s);
    if (s == NULL)
        return RV_ENOMEM;
    tt__tls_init(s);
    err = tt__tls_setup(s, p, 1) == 0 ? RV_OK : RV_EINVAL;
    tt__tls_free(s);
    free(s);
    return err;
}

static void
tt__pem_free(struct tt_pem *p)
{
    free(p->ca);
    free(p->crt);
    if (p->key != NULL)
        mbedtls_platform_zeroize(p->key, p->key_len);
    free(p->key);
}

int
transport_tls_init(struct raft_uv_transport *t, uv_loop_t *loop,
                   const struct transport_tls_config *cfg)
{
    void *data = t->data;
    struct tt *tt = calloc(1, sizeof *tt);
    if (tt == NULL)
        return RV_ENOMEM;
    int err = tt__pem_load(tt, cfg);
    if (err != RV_OK) {
        tt__pem_free(&tt->pem);
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
    tt__pem_free(&tt->pem);
    pthread_mutex_destroy(&tt->lock);
    free(tt);
    t->impl = NULL;
}
