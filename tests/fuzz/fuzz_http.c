/* libFuzzer target: arbitrary HTTP requests through the gateway. The
 * input is split at its first four newlines into the method, the request
 * target (path and query), the Idempotency-Key and Content-Type headers
 * (an empty line: no header) and the body (the rest). The request goes the
 * way a gateway worker takes it (gw__serve_one): the target's length
 * bound, gw_parse_uri (percent-decoding, UTF-8, the query parameters),
 * then gw_route: the route table (gateway_route.c), query parameters, the
 * JSON body and every check at the door of every endpoint of docs/HTTP.md.
 * Where the gateway calls the RPC layer the request is packed and decoded
 * again (as a forward to the leader sends it; it must decode) and answered
 * by fuzz_node.h's node on a real store, so the handlers also render real
 * answers. Every answer must have a status, and a JSON one must parse.
 * /metrics is left out: it reads the RPC server's counters, and takes no
 * input. No crash, leak or UB. */
#include "gateway/gateway_int.h"
#include "tests/fuzz/fuzz_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_node *fz_http_node;
static struct gateway fz_http_gateway;
static uint64_t fz_http_seq; /* The worker's own sequence numbers. */

static void
fz_http_cleanup(void)
{
    fz_node_close(fz_http_node);
}

static const Rv__Response *
fz_http_answer(void *data, Rv__Request *req)
{
    size_t n = rv__request__get_packed_size(req);
    uint8_t *b = malloc(n ? n : 1);
    if (b == NULL)
        abort();
    rv__request__pack(req, b);
    Rv__Request *d = rv__request__unpack(NULL, n, b);
    if (d == NULL || n > RPC_MAX_REQUEST_BYTES) {
        fprintf(stderr,
                "fuzz_http: the gateway made a request of %zu bytes "
                "the node cannot decode\n",
                n);
        abort();
    }
    rv__request__free_unpacked(d, NULL);
    free(b);
    const Rv__Response *r = fz_node_answer(data, req);
    fz_response_check(r);
    return r;
}

static void
fz_http_info(void *data, struct replica_info *out)
{
    (void)data;
    memset(out, 0, sizeof *out);
    out->id = out->leader_id = 1;
    out->state = RAFT_LEADER;
    out->is_serving = 1;
    out->term = 2;
    out->n_members = 1;
    out->members[0].id = 1;
    snprintf(out->members[0].raft_addr, sizeof out->members[0].raft_addr,
             "127.0.0.1:26001");
    out->members[0].role = RAFT_VOTER;
}

static int
fz_http_is_running(void *data)
{
    (void)data;
    return 1;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_http_node = fz_node_open("http");
    struct gateway *g = &fz_http_gateway;
    snprintf(g->http_addr, sizeof g->http_addr, "127.0.0.1:26080");
    snprintf(g->rpc_addr, sizeof g->rpc_addr, "tcp://127.0.0.1:26081");
    snprintf(g->raft_addr, sizeof g->raft_addr, "127.0.0.1:26001");
    atexit(fz_http_cleanup);
    return 0;
}

/* The next part of the input up to a newline, as a new NUL-terminated
 * string (NULL at the end of the input). */
static char *
fz_http_part(const uint8_t **p, const uint8_t *end)
{
    if (*p >= end)
        return NULL;
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl != NULL ? nl + 1 : end;
    return s;
}

static int
fz_http_is_metrics(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n == 8 && memcmp(path, "/metrics", 8) == 0;
}

static void
fz_http_serve(char *method, char *uri, char *key, char *type,
              const uint8_t *body, size_t body_len)
{
    static const struct gw_node_ops ops = {fz_http_answer, fz_http_info,
                                           fz_http_is_running, NULL};
    struct gw_node_ops my = ops;
    struct gw_exchange x;
    char errmsg[RV_ERRMSG_SIZE] = "";
    my.data = fz_http_node;
    memset(&x, 0, sizeof x);
    x.g = &fz_http_gateway;
    x.ops = &my;
    x.worker_client_id = 99;
    x.worker_seq = &fz_http_seq;
    x.method = method;
    rv_buf_init(&x.out);
    size_t un = strlen(uri);
    if (un == 0 || un > GATEWAY_MAX_TARGET_BYTES) {
        gw_reply_status(&x, 414, "INVALID_PARAMETER_VALUE", "too long");
    } else if (gw_parse_uri(&x, uri, errmsg) != 0) {
        gw_reply_status(&x, 400, "INVALID_PARAMETER_VALUE", errmsg);
    } else if (fz_http_is_metrics(x.path)) {
        rv_buf_free(&x.out);
        return;
    } else {
        x.body = body;
        x.body_len = body_len;
        x.idempotency_key = key != NULL && key[0] != '\0' ? key : NULL;
        x.content_type = type != NULL && type[0] != '\0' ? type : NULL;
        gw_route(&x);
    }
    if (x.status < 100 || x.status > 599) {
        fprintf(stderr, "fuzz_http: status %d\n", x.status);
        abort();
    }
    if (getenv("RV_FUZZ_VERBOSE") != NULL) /* To look at what seeds do. */
        fprintf(stderr, "%s %s -> %d %.*s\n", method, x.path ? x.path : "",
                x.status, (int)(x.out.len < 300 ? x.out.len : 300),
                x.out.data ? (const char *)x.out.data : "");
    if (x.out_type != NULL && strcmp(x.out_type, "application/json") == 0) {
        json_error_t err;
        json_t *j = json_loadb((const char *)x.out.data, x.out.len, 0, &err);
        if (j == NULL) {
            fprintf(stderr, "fuzz_http: an answer that is not JSON: %s\n",
                    err.text);
            abort();
        }
        json_decref(j);
    }
    rv_buf_free(&x.out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *method = fz_http_part(&p, end);
    char *uri = fz_http_part(&p, end);
    char *key = fz_http_part(&p, end);
    char *type = fz_http_part(&p, end);
    size_t body_len = (size_t)(end - p);
    /* A copy of its own size, so a read past the body is caught. */
    uint8_t *body = malloc(body_len ? body_len : 1);
    if (body == NULL)
        abort();
    memcpy(body, p, body_len);
    if (method != NULL && uri != NULL)
        fz_http_serve(method, uri, key, type, body, body_len);
    free(body);
    free(method);
    free(uri);
    free(key);
    free(type);
    return 0;
}
