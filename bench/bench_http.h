/* A small blocking HTTP/1.1 client on nng's: one kept-alive connection
 * per struct, one exchange at a time. Used by the benchmarks only (the
 * gateway's and the comparison's load generators). One thread per
 * struct. */
#ifndef RV_BENCH_BENCH_HTTP_H
#define RV_BENCH_BENCH_HTTP_H

#include "base/buf.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>
#include <stddef.h>

struct bench_http {
    nng_url *url;
    nng_http_client *client;
    nng_http_conn *conn;
    nng_aio *aio;
    const char *token; /* Borrowed; NULL: no Authorization header. */
};

/* Connect to "IP:PORT" (15 s timeout per exchange). 0 or -1; on -1 call
 * bench_http_close() all the same. */
int bench_http_open(struct bench_http *h, const char *hostport);
/* bench_http_open with a timeout of timeout_ms per exchange. */
int bench_http_open_ms(struct bench_http *h, const char *hostport,
                       int timeout_ms);
/* The same over https with tls (a client configuration; nng takes its own
 * hold), or http when tls is NULL; every request carries "Authorization:
 * Bearer token" (token borrowed, NULL for none; base/token.h). */
int bench_http_open_tls(struct bench_http *h, const char *hostport,
                        int timeout_ms, nng_tls_config *tls, const char *token);
void bench_http_close(struct bench_http *h);
/* One exchange; the status, or -1 on a transport failure. key (if not
 * NULL) goes in an Idempotency-Key header; the answer's body, NUL
 * terminated, goes to out (if not NULL). */
int bench_http_do(struct bench_http *h, const char *method, const char *uri,
                  const char *key, const char *body, size_t n,
                  struct rv_buf *out);
/* Percent-encode s for a query string into out[0, cap) (NUL terminated,
 * cut short where it would not fit); the length written. */
size_t bench_http_qenc(char *out, size_t cap, const char *s);

#endif /* RV_BENCH_BENCH_HTTP_H */
