/* Inside the raft TLS transport (transport_tls.h): the state shared by its
 * loop side (transport_tls.c), its connection threads
 * (transport_tls_conn.c) and its OpenSSL sessions (transport_tls_ssl.c).
 * For the files of this transport only. */
#ifndef RV_RAFT_TRANSPORT_TLS_INT_H
#define RV_RAFT_TRANSPORT_TLS_INT_H

#include "raft/transport_tls.h"

#include <pthread.h>
#include <stddef.h>
#include <time.h>

/* ---- OpenSSL sessions (transport_tls_ssl.c) ------------------------------
 *
 * One context per transport: the cluster CA as the only trust anchor, this
 * node's certificate and key, TLS 1.3 only, a peer certificate required
 * both ways. OpenSSL contexts are safe to share between threads once set
 * up; each connection has its own session. */

struct tt_ctx;
struct tt_ssl;

/* What a session step answered. */
enum {
    TT_SSL_OK = 0,     /* Done (a read or write: > 0 bytes, see there). */
    TT_SSL_WANT_READ,  /* Wait for the socket to be readable, retry. */
    TT_SSL_WANT_WRITE, /* Wait for the socket to be writable, retry. */
    TT_SSL_CLOSED,     /* The peer closed the session or the socket. */
    TT_SSL_ERROR       /* Failed: tt_ssl_errmsg says why. */
};

/* Read and check the CA, certificate and key (PEM files). RV_OK,
 * RV_ENOMEM, RV_EIO (unreadable) or RV_EINVAL (refused by OpenSSL, or a
 * key that does not match the certificate), with errmsg. Any thread. */
int tt_ctx_open(struct tt_ctx **out, const char *ca_file, const char *cert_file,
                const char *key_file, char *errmsg);
void tt_ctx_close(struct tt_ctx *ctx);

/* A session on the non-blocking TCP socket fd (borrowed: the caller
 * closes it after tt_ssl_free). A dialler (is_server 0) checks the
 * listener's certificate names host (an IP address or a DNS name); a
 * listener (host NULL) only checks the dialler's is signed by the CA.
 * RV_OK or RV_ENOMEM. The session's thread only, from here on. */
int tt_ssl_new(struct tt_ctx *ctx, int fd, int is_server, const char *host,
               struct tt_ssl **out);
void tt_ssl_free(struct tt_ssl *s);

/* One handshake step: TT_SSL_OK once done, or a TT_SSL_* to wait on. */
int tt_ssl_handshake(struct tt_ssl *s);

/* Read at most n bytes (> 0: that many) or write at most n bytes of buf
 * (> 0: that many were taken); otherwise minus a TT_SSL_* code. A write
 * may take fewer bytes than offered (partial writes are on), and a
 * retried write may pass a buffer that moved. */
int tt_ssl_read(struct tt_ssl *s, void *buf, size_t n);
int tt_ssl_write(struct tt_ssl *s, const void *buf, size_t n);

/* Why the last step failed, for a log line: OpenSSL's reason and, when
 * the peer's certificate was refused, the verification's. */
void tt_ssl_errmsg(struct tt_ssl *s, char *out, size_t size);

/* ---- Connections ------------------------------------------------------- */

struct tt;

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
    struct tt_ssl *ssl;       /* The connection thread's, once made. */
};

struct tt {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    struct transport_tls_config cfg;
    struct tt_ctx *ctx;
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

/* The connection threads' bodies (transport_tls_conn.c): set c up as a
 * dialler or an acceptor, post it ready (or failed), relay until either
 * side ends, then post it dead. */
void *tt_conn_dialler(void *arg);
void *tt_conn_acceptor(void *arg);

/* Stop c's thread by shutting its sockets down. tt->lock held. */
void tt_conn_kill(struct tt_conn *c);

/* TCP options for a raft connection (both sides). */
void tt_conn_sock_opts(int fd);

/* Split "host:port" at its last colon into host (the brackets of an IPv6
 * literal removed) and resolve it for TCP; free *out with freeaddrinfo.
 * 0 or -1. */
struct addrinfo;
int tt_conn_resolve(const char *addr, int is_passive, char *host, size_t size,
                    struct addrinfo **out);

#endif /* RV_RAFT_TRANSPORT_TLS_INT_H */
