/* The benchmarks' HTTP client (bench_http.h). */
#include "bench/bench_http.h"

#include "base/token.h"

#include <stdio.h>
#include <string.h>

int
bench_http_open(struct bench_http *h, const char *hostport)
{
    return bench_http_open_ms(h, hostport, 15000);
}

int
bench_http_open_ms(struct bench_http *h, const char *hostport, int timeout_ms)
{
    return bench_http_open_tls(h, hostport, timeout_ms, NULL, NULL);
}

int
bench_http_open_tls(struct bench_http *h, const char *hostport, int timeout_ms,
                    nng_tls_config *tls, const char *token)
{
    char u[96];
    memset(h, 0, sizeof *h);
    h->token = token;
    snprintf(u, sizeof u, "%s://%s", tls ? "https" : "http", hostport);
    if (nng_url_parse(&h->url, u) != 0 ||
        nng_http_client_alloc(&h->client, h->url) != 0 ||
        (tls != NULL && nng_http_client_set_tls(h->client, tls) != 0) ||
        nng_aio_alloc(&h->aio, NULL, NULL) != 0)
        return -1;
    nng_aio_set_timeout(h->aio, timeout_ms);
    nng_http_client_connect(h->client, h->aio);
    nng_aio_wait(h->aio);
    if (nng_aio_result(h->aio) != 0)
        return -1;
    h->conn = nng_aio_get_output(h->aio, 0);
    return 0;
}

void
bench_http_close(struct bench_http *h)
{
    if (h->conn != NULL)
        nng_http_conn_close(h->conn);
    if (h->aio != NULL)
        nng_aio_free(h->aio);
    if (h->client != NULL)
        nng_http_client_free(h->client);
    if (h->url != NULL)
        nng_url_free(h->url);
    memset(h, 0, sizeof *h);
}

/* One exchange; the status, or -1 on a transport failure. The body of the
 * answer goes to out (if not NULL). */
int
bench_http_do(struct bench_http *h, const char *method, const char *uri,
              const char *key, const char *body, size_t n, struct rv_buf *out)
{
    nng_http_req *req;
    nng_http_res *res;
    int status = -1;
    if (nng_http_req_alloc(&req, h->url) != 0)
        return -1;
    if (nng_http_res_alloc(&res) != 0) {
        nng_http_req_free(req);
        return -1;
    }
    nng_http_req_set_method(req, method);
    nng_http_req_set_uri(req, uri);
    if (body != NULL) {
        nng_http_req_set_header(req, "Content-Type", "application/json");
        nng_http_req_set_data(req, body, n);
    }
    if (key != NULL)
        nng_http_req_set_header(req, "Idempotency-Key", key);
    if (h->token != NULL) {
        char auth[RV_TOKEN_TEXT_CHARS + 16];
        snprintf(auth, sizeof auth, "Bearer %s", h->token);
        nng_http_req_set_header(req, "Authorization", auth);
        memset(auth, 0, sizeof auth);
    }
    nng_http_conn_transact(h->conn, req, res, h->aio);
    nng_aio_wait(h->aio);
    if (nng_aio_result(h->aio) == 0) {
        status = nng_http_res_get_status(res);
        if (out != NULL) {
            void *d;
            size_t dn;
            nng_http_res_get_data(res, &d, &dn);
            rv_buf_reset(out);
            rv_buf_append(out, d, dn);
            rv_buf_append_u8(out, 0);
        }
    }
    nng_http_req_free(req);
    nng_http_res_free(res);
    return status;
}

size_t
bench_http_qenc(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s != '\0' && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
    return n;
}
