/* The raft TLS transport's sessions on OpenSSL (contract in
 * transport_tls_int.h).
 *
 * Why OpenSSL here and not mbedTLS (nng's TLS, which serves https and
 * tls+tcp:// RPC): raft's traffic is one long stream per peer pair, so the
 * cipher's cost per byte is what TLS costs the cluster. On this project's
 * machines mbedTLS 2.28 runs AES-128-GCM at ~270 MB/s and
 * ChaCha20-Poly1305 at ~450 MB/s on one core, OpenSSL 3.0's AES-128-GCM
 * at ~4.6 GB/s (docs/BENCHMARKS.md, "What TLS costs").
 *
 * Errors are read from OpenSSL's per-thread error queue, which each step
 * clears first, so a message always belongs to the step that failed. */
#include "base/err.h"
#include "raft/transport_tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* AES-GCM first: OpenSSL runs it with AES-NI and carry-less multiply. */
#define TT_SUITES                                    \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
    "TLS_CHACHA20_POLY1305_SHA256"
/* Read-ahead: several records a call. */
#define TT_READ_BUF_BYTES (64u << 10)

struct tt_ctx {
    SSL_CTX *ssl_ctx;
};

struct tt_ssl {
    SSL *ssl;
    unsigned long err; /* OpenSSL's reason for the last failure, or 0. */
    int sys_errno;     /* errno of a failed socket call, or 0. */
};

static void
tt__ctx_errmsg(const char *what, const char *path, char *errmsg)
{
    char reason[256] = "unknown reason";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof reason);
    rv_errmsg_printf(errmsg, "%s %s: %s", what, path, reason);
    ERR_clear_error();
}

int
tt_ctx_open(struct tt_ctx **out, const char *ca_file, const char *cert_file,
            const char *key_file, char *errmsg)
{
    struct tt_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return RV_ENOMEM;
    ERR_clear_error();
    SSL_CTX *c = ctx->ssl_ctx = SSL_CTX_new(TLS_method());
    int err = RV_EINVAL;
    if (c == NULL) {
        tt__ctx_errmsg("TLS context", "", errmsg);
        err = RV_ENOMEM;
    } else if (SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1) {
        tt__ctx_errmsg("CA", ca_file, errmsg);
    } else if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
        tt__ctx_errmsg("certificate", cert_file, errmsg);
    } else if (SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) !=
               1) {
        tt__ctx_errmsg("key", key_file, errmsg);
    } else if (SSL_CTX_check_private_key(c) != 1) {
        tt__ctx_errmsg("key", key_file, errmsg);
    } else if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
               SSL_CTX_set_ciphersuites(c, TT_SUITES) != 1) {
        tt__ctx_errmsg("TLS settings", "", errmsg);
    } else {
        err = RV_OK;
    }
    if (err != RV_OK) {
        tt_ctx_close(ctx);
        return err;
    }
    /* The cluster CA is the only trust anchor (no system store), and a
     * peer without a certificate it signed fails the handshake. */
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(c, 1);
    SSL_CTX_set_default_read_buffer_len(c, TT_READ_BUF_BYTES);
    /* Connections are long-lived and never resumed. */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 0);
    *out = ctx;
    return RV_OK;
}

void
tt_ctx_close(struct tt_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* The dialler checks the listener's certificate names host: as an IP
 * address when host is one, else as a DNS name (also sent as SNI). */
static int
tt__expect_host(SSL *ssl, const char *host)
{
    unsigned char bin[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, bin) == 1 ||
        inet_pton(AF_INET6, host, bin) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
                   ? 0
                   : -1;
    if (SSL_set_tlsext_host_name(ssl, host) != 1 ||
        SSL_set1_host(ssl, host) != 1)
        return -1;
    return 0;
}

int
tt_ssl_new(struct tt_ctx *ctx, int fd, int is_server, const char *host,
           struct tt_ssl **out)
{
    struct tt_ssl *s = calloc(1, sizeof *s);
    if (s == NULL)
        return RV_ENOMEM;
    ERR_clear_error();
    s->ssl = SSL_new(ctx->ssl_ctx);
    if (s->ssl == NULL || SSL_set_fd(s->ssl, fd) != 1 ||
        (host != NULL && tt__expect_host(s->ssl, host) != 0)) {
        ERR_clear_error();
        tt_ssl_free(s);
        return RV_ENOMEM;
    }
    if (is_server)
        SSL_set_accept_state(s->ssl);
    else
        SSL_set_connect_state(s->ssl);
    *out = s;
    return RV_OK;
}

void
tt_ssl_free(struct tt_ssl *s)
{
    if (s == NULL)
        return;
    SSL_free(s->ssl);
    free(s);
}

/* Map a step's result (rv <= 0) to a TT_SSL_* code, keeping the reason of
 * a failure. */
static int
tt__code(struct tt_ssl *s, int rv)
{
    int e = SSL_get_error(s->ssl, rv);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return TT_SSL_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TT_SSL_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return TT_SSL_CLOSED;
    case SSL_ERROR_SYSCALL:
        s->err = ERR_peek_last_error();
        s->sys_errno = errno;
        ERR_clear_error();
        /* No queued error and no errno: the peer closed the socket. */
        return s->err == 0 && s->sys_errno == 0 ? TT_SSL_CLOSED : TT_SSL_ERROR;
    default:
        s->err = ERR_peek_last_error();
        ERR_clear_error();
        return TT_SSL_ERROR;
    }
}

int
tt_ssl_handshake(struct tt_ssl *s)
{
    ERR_clear_error();
    errno = 0;
    int rv = SSL_do_handshake(s->ssl);
    return rv == 1 ? TT_SSL_OK : tt__code(s, rv);
}

int
tt_ssl_read(struct tt_ssl *s, void *buf, size_t n)
{
    ERR_clear_error();
    errno = 0;
    int rv = SSL_read(s->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    return rv > 0 ? rv : -tt__code(s, rv);
}

int
tt_ssl_write(struct tt_ssl *s, const void *buf, size_t n)
{
    ERR_clear_error();
    errno = 0;
    int rv = SSL_write(s->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    return rv > 0 ? rv : -tt__code(s, rv);
}

void
tt_ssl_errmsg(struct tt_ssl *s, char *out, size_t size)
{
    char reason[256] = "";
    if (s->err != 0)
        ERR_error_string_n(s->err, reason, sizeof reason);
    else if (s->sys_errno != 0)
        snprintf(reason, sizeof reason, "%s", strerror(s->sys_errno));
    else
        snprintf(reason, sizeof reason, "closed by the peer");
    long v = SSL_get_verify_result(s->ssl);
    if (v != X509_V_OK)
        snprintf(out, size, "%s (certificate: %s)", reason,
                 X509_verify_cert_error_string(v));
    else
        snprintf(out, size, "%s", reason);
}
