/* The native RPC client (contract in client.h). */
#include "rpc/client/client.h"

#include "base/clock.h"
#include "proto/contract.h"
#include "rpc/client/nng_err.h"
#include "rpc/client/tls.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One node. The pipe callbacks count connections, so a request to a node
 * that died (its connection dropped) or that nobody could connect to gives
 * up at once instead of waiting for the whole attempt timeout. */
struct rvc_endpoint {
    char addr[CONTRACT_MAX_ADDR_BYTES +
              1]; /* As given: tcp://, ipc://, http:// */
    char rpc[CONTRACT_MAX_ADDR_BYTES + 1]; /* Dialled; "" until resolved. */
    nng_socket sock;
    nng_aio *aio;
    int is_open;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n_pipes;      /* Connected now. */
    uint64_t n_drops; /* Connections lost so far. */
    int is_aio_done;
};

#define RVC_CONNECT_GRACE_MS 500 /* No connection after this: next node. */

static void rvc__ep_init(struct rvc_endpoint *ep);
static void rvc__ep_close(struct rvc_endpoint *ep);

struct rvc {
    struct rvc_endpoint eps[RVC_MAX_ENDPOINTS];
    size_t n_eps, cur;
    unsigned attempt_ms, total_ms;
    char last[CONTRACT_MAX_ADDR_BYTES + 1];
    const char *token;         /* rvc_set_token: borrowed, or NULL. */
    const struct rvc_tls *tls; /* Borrowed; NULL: plain only. */
};

static int
rvc__is_http(const char *addr)
{
    return strncmp(addr, RVC_HTTP_PREFIX, strlen(RVC_HTTP_PREFIX)) == 0 ||
           strncmp(addr, RVC_HTTPS_PREFIX, strlen(RVC_HTTPS_PREFIX)) == 0;
}

/* 1 for the schemes that need TLS settings: tls+tcp:// and https://. */
static int
rvc__is_tls(const char *addr)
{
    return strncmp(addr, "tls+", 4) == 0 ||
           strncmp(addr, RVC_HTTPS_PREFIX, strlen(RVC_HTTPS_PREFIX)) == 0;
}

/* The schemes an endpoint list may use. */
static int
rvc__scheme_ok(const char *p, size_t n)
{
    static const char *const schemes[] = {
        "tcp://",    "tcp4://",       "tcp6://",        "ipc://",
        "inproc://", RVC_HTTP_PREFIX, RVC_HTTPS_PREFIX, "tls+tcp://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t k = strlen(schemes[i]);
        if (n > k && memcmp(p, schemes[i], k) == 0)
            return 1;
    }
    return 0;
}

static int
rvc__add(struct rvc *c, const char *addr, size_t n)
{
    if (n == 0 || n > CONTRACT_MAX_ADDR_BYTES)
        return -1;
    for (size_t i = 0; i < c->n_eps; i++)
        if ((strlen(c->eps[i].addr) == n &&
             memcmp(c->eps[i].addr, addr, n) == 0) ||
            (strlen(c->eps[i].rpc) == n && memcmp(c->eps[i].rpc, addr, n) == 0))
            return (int)i;
    if (c->n_eps == RVC_MAX_ENDPOINTS)
        return -1;
    struct rvc_endpoint *ep = &c->eps[c->n_eps];
    memcpy(ep->addr, addr, n);
    ep->addr[n] = '\0';
    if (!rvc__is_http(ep->addr))
        memcpy(ep->rpc, ep->addr, n + 1);
    rvc__ep_init(&c->eps[c->n_eps]);
    return (int)c->n_eps++;
}

int
rvc_open(struct rvc **out, const char *endpoints, char *errmsg)
{
    struct rvc *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RV_ENOMEM;
    c->attempt_ms = RVC_DEFAULT_ATTEMPT;
    c->total_ms = RVC_DEFAULT_TOTAL;
    for (const char *p = endpoints; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n > 0 && (!rvc__scheme_ok(p, n) || rvc__add(c, p, n) < 0)) {
            rv_errmsg_printf(errmsg, "bad or too many endpoints in '%s'",
                             endpoints);
            free(c);
            return RV_EINVAL;
        }
        p = comma ? comma + 1 : NULL;
    }
    if (c->n_eps == 0) {
        rv_errmsg_printf(errmsg, "no endpoint given");
        free(c);
        return RV_EINVAL;
    }
    *out = c;
    return RV_OK;
}

void
rvc_close(struct rvc *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_eps; i++) {
        rvc__ep_close(&c->eps[i]);
        pthread_mutex_destroy(&c->eps[i].lock);
        pthread_cond_destroy(&c->eps[i].cond);
    }
    free(c);
}

void
rvc_set_tls(struct rvc *c, const struct rvc_tls *tls)
{
    c->tls = tls;
}

void
rvc_set_timeouts(struct rvc *c, unsigned attempt_ms, unsigned total_ms)
{
    c->attempt_ms = attempt_ms;
    c->total_ms = total_ms;
}

void
rvc_set_token(struct rvc *c, const char *token)
{
    c->token = token;
}

const char *
rvc_last_endpoint(const struct rvc *c)
{
    return c->last;
}

void
rvc_response_free(Rv__Response *resp)
{
    if (resp != NULL)
        rv__response__free_unpacked(resp, NULL);
}

static void
rvc__pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct rvc_endpoint *ep = arg;
    (void)p;
    pthread_mutex_lock(&ep->lock);
    if (ev == NNG_PIPE_EV_ADD_POST)
        ep->n_pipes++;
    if (ev == NNG_PIPE_EV_REM_POST) {
        ep->n_pipes--;
        ep->n_drops++;
    }
    pthread_cond_signal(&ep->cond);
    pthread_mutex_unlock(&ep->lock);
}

static void
rvc__aio_cb(void *arg)
{
    struct rvc_endpoint *ep = arg;
    pthread_mutex_lock(&ep->lock);
    ep->is_aio_done = 1;
    pthread_cond_signal(&ep->cond);
    pthread_mutex_unlock(&ep->lock);
}

static void
rvc__ep_init(struct rvc_endpoint *ep)
{
    pthread_mutex_init(&ep->lock, NULL);
    rv_cond_init_mono(&ep->cond);
}

static void
rvc__ep_close(struct rvc_endpoint *ep)
{
    if (!ep->is_open)
        return;
    nng_close(ep->sock);
    nng_aio_free(ep->aio);
    ep->aio = NULL;
    ep->is_open = 0;
    ep->n_pipes = 0;
}

/* ---- http:// endpoints ---------------------------------------------------
 * GET /api/config answers a JSON object holding "rpc_addr":"tcp://IP:PORT".
 * rpc/ has no JSON library: a bounded scan finds that one string field. */

/* The value of the string field "rpc_addr" in body[0, n), into out (at
 * most CONTRACT_MAX_ADDR_BYTES + 1 bytes). JSON's "\/" escape is undone; any
 * other escape, a missing field or an overlong value is an error (-1). */
static int
rvc__scan_rpc_addr(const char *body, size_t n, char *out)
{
    static const char field[] = "\"rpc_addr\"";
    size_t fn = sizeof field - 1;
    for (size_t i = 0; i + fn <= n; i++) {
        if (memcmp(body + i, field, fn) != 0)
            continue;
        size_t j = i + fn;
        while (j < n && (body[j] == ' ' || body[j] == '\t' || body[j] == '\r' ||
                         body[j] == '\n'))
            j++;
        if (j >= n || body[j++] != ':')
            continue; /* The text "rpc_addr" as a value, not a key. */
        while (j < n && (body[j] == ' ' || body[j] == '\t' || body[j] == '\r' ||
                         body[j] == '\n'))
            j++;
        if (j >= n || body[j++] != '"')
            return -1;
        size_t k = 0;
        for (; j < n && body[j] != '"'; j++) {
            char ch = body[j];
            if (ch == '\\') {
                if (j + 1 >= n || body[j + 1] != '/')
                    return -1;
                ch = body[++j];
            }
            if ((unsigned char)ch < 0x20 || k == CONTRACT_MAX_ADDR_BYTES)
                return -1;
            out[k++] = ch;
        }
        if (j >= n || k == 0)
            return -1;
        out[k] = '\0';
        return 0;
    }
    return -1;
}

/* Let hc speak https to url's host with tls (when url is https://). */
static int
rvc__http_tls(nng_http_client *hc, const char *url, const struct rvc_tls *tls,
              char *errmsg)
{
    if (!rvc__is_tls(url))
        return RV_OK;
    char host[CONTRACT_MAX_ADDR_BYTES + 1];
    nng_tls_config *cfg;
    rvc_tls_host_of(url, host, sizeof host);
    int rc = rvc_tls_dial_config(tls, host, &cfg, errmsg);
    if (rc != RV_OK)
        return rc;
    int rv = nng_http_client_set_tls(hc, cfg);
    nng_tls_config_free(cfg); /* The client holds its own reference. */
    return rvc_err_from_nng(rv, "https", errmsg);
}

int
rvc_resolve_http(const char *url, const struct rvc_tls *tls,
                 unsigned timeout_ms, char *rpc_addr, char *errmsg)
{
    char full[CONTRACT_MAX_ADDR_BYTES + sizeof RVC_HTTP_CONFIG_PATH];
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (!rvc__is_http(url) || n > CONTRACT_MAX_ADDR_BYTES) {
        rv_errmsg_printf(errmsg, "'%.64s' is not an http:// endpoint", url);
        return RV_EINVAL;
    }
    if (rvc__is_tls(url) && tls == NULL) {
        rv_errmsg_printf(errmsg, "%.64s: https needs a CA (--tls-ca)", url);
        return RV_EINVAL;
    }
    snprintf(full, sizeof full, "%.*s%s", (int)n, url, RVC_HTTP_CONFIG_PATH);
    nng_url *u = NULL;
    nng_http_client *hc = NULL;
    nng_http_req *hreq = NULL;
    nng_http_res *hres = NULL;
    nng_aio *aio = NULL;
    int rv = nng_url_parse(&u, full);
    if (rv != 0)
        return rvc_err_from_nng(rv, url, errmsg);
    rv = nng_http_client_alloc(&hc, u);
    if (rv == 0)
        rv = nng_http_req_alloc(&hreq, u);
    if (rv == 0)
        rv = nng_http_res_alloc(&hres);
    if (rv == 0)
        rv = nng_aio_alloc(&aio, NULL, NULL);
    int rc = rvc_err_from_nng(rv, full, errmsg);
    if (rc == RV_OK)
        rc = rvc__http_tls(hc, url, tls, errmsg);
    if (rc == RV_OK) {
        nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
        nng_http_client_transact(hc, hreq, hres, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
        if (rv != 0) {
            char what[sizeof full + 4];
            snprintf(what, sizeof what, "GET %s", full);
            /* A node that does not answer counts as down (client.h). */
            rvc_err_from_nng(rv, what, errmsg);
            rc = RV_EUNAVAILABLE;
        }
    }
    if (rc == RV_OK && nng_http_res_get_status(hres) != NNG_HTTP_STATUS_OK) {
        rv_errmsg_printf(errmsg, "GET %s: HTTP %u", full,
                         (unsigned)nng_http_res_get_status(hres));
        rc = RV_EUNAVAILABLE;
    }
    if (rc == RV_OK) {
        void *body;
        size_t len;
        nng_http_res_get_data(hres, &body, &len);
        if (len > RVC_HTTP_MAX_CONFIG_BYTES ||
            rvc__scan_rpc_addr(body, len, rpc_addr) != 0) {
            rv_errmsg_printf(
                errmsg, "GET %s: the reply has no usable \"rpc_addr\"", full);
            rc = RV_EUNAVAILABLE;
        }
    }
    nng_aio_free(aio);
    nng_http_res_free(hres);
    nng_http_req_free(hreq);
    nng_http_client_free(hc);
    nng_url_free(u);
    return rc;
}

/* Open ep's socket and start dialling it. An http:// endpoint is resolved
 * first, within timeout_ms; once resolved it stays resolved unless dialling
 * the address it named fails. */
/* Start dialling ep->rpc on ep->sock; a tls+ address with a configuration
 * of its own that checks the host's name. */
static int
rvc__ep_dial(struct rvc_endpoint *ep, const struct rvc_tls *tls, char *errmsg)
{
    if (!rvc__is_tls(ep->rpc))
        return rvc_err_from_nng(
            nng_dial(ep->sock, ep->rpc, NULL, NNG_FLAG_NONBLOCK), ep->rpc,
            errmsg);
    if (tls == NULL) {
        rv_errmsg_printf(errmsg, "%s: TLS needs a CA (--tls-ca)", ep->rpc);
        return RV_EINVAL;
    }
    char host[CONTRACT_MAX_ADDR_BYTES + 1];
    nng_tls_config *cfg;
    nng_dialer d;
    rvc_tls_host_of(ep->rpc, host, sizeof host);
    int rc = rvc_tls_dial_config(tls, host, &cfg, errmsg);
    if (rc != RV_OK)
        return rc;
    int rv = nng_dialer_create(&d, ep->sock, ep->rpc);
    if (rv == 0)
        rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
    if (rv == 0)
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    nng_tls_config_free(cfg); /* The dialer holds its own reference. */
    return rvc_err_from_nng(rv, ep->rpc, errmsg);
}

static int
rvc__ep_open(struct rvc_endpoint *ep, const struct rvc_tls *tls,
             unsigned timeout_ms, char *errmsg)
{
    int is_resolved = rvc__is_http(ep->addr);
    if (ep->rpc[0] == '\0') {
        unsigned t =
            timeout_ms < RVC_HTTP_RESOLVE_MS ? timeout_ms : RVC_HTTP_RESOLVE_MS;
        int rc = rvc_resolve_http(ep->addr, tls, t, ep->rpc, errmsg);
        if (rc != RV_OK) {
            ep->rpc[0] = '\0';
            return rc;
        }
    }
    int rv = nng_req0_open(&ep->sock);
    if (rv != 0)
        return rvc_err_from_nng(rv, ep->addr, errmsg);
    ep->is_open = 1;
    ep->n_pipes = 0;
    rv = nng_aio_alloc(&ep->aio, rvc__aio_cb, ep);
    if (rv == 0)
        rv = nng_socket_set_ms(ep->sock, NNG_OPT_REQ_RESENDTIME,
                               NNG_DURATION_INFINITE);
    if (rv == 0)
        rv = nng_socket_set_size(ep->sock, NNG_OPT_RECVMAXSZ,
                                 RVC_MAX_MESSAGE_BYTES);
    if (rv == 0)
        rv = nng_socket_set_ms(ep->sock, NNG_OPT_RECONNMINT, 50);
    if (rv == 0)
        rv = nng_socket_set_ms(ep->sock, NNG_OPT_RECONNMAXT, 500);
    if (rv == 0)
        rv = nng_pipe_notify(ep->sock, NNG_PIPE_EV_ADD_POST, rvc__pipe_cb, ep);
    if (rv == 0)
        rv = nng_pipe_notify(ep->sock, NNG_PIPE_EV_REM_POST, rvc__pipe_cb, ep);
    int rc = rvc_err_from_nng(rv, ep->addr, errmsg);
    if (rc == RV_OK)
        rc = rvc__ep_dial(ep, tls, errmsg);
    if (rc != RV_OK) {
        rvc__ep_close(ep);
        if (is_resolved) { /* A node named it: try the others. */
            ep->rpc[0] = '\0';
            return RV_EUNAVAILABLE;
        }
        return rc;
    }
    return RV_OK;
}

/* Run one send or receive on ep->aio; give up early when the connection
 * the request went out on drops, or when nothing connects at all. */
static int
rvc__wait(struct rvc_endpoint *ep, uint64_t drops0, uint64_t start_ms,
          char *errmsg)
{
    int is_gone = 0;
    pthread_mutex_lock(&ep->lock);
    while (!ep->is_aio_done && !is_gone) {
        uint64_t now = rv_clock_mono_ms();
        is_gone = ep->n_drops != drops0 ||
                  (ep->n_pipes == 0 && now > start_ms + RVC_CONNECT_GRACE_MS);
        if (is_gone)
            break;
        struct timespec until;
        rv_deadline_mono(&until, 20);
        pthread_cond_timedwait(&ep->cond, &ep->lock, &until);
    }
    pthread_mutex_unlock(&ep->lock);
    if (is_gone) {
        nng_aio_cancel(ep->aio);
        nng_aio_wait(ep->aio);
        nng_msg *left = nng_aio_get_msg(ep->aio);
        if (left != NULL && nng_aio_result(ep->aio) != 0)
            nng_msg_free(left);
        nng_aio_set_msg(ep->aio, NULL);
        rv_errmsg_printf(errmsg, "%s: %s", ep->addr,
                         ep->n_pipes == 0 ? "not reachable"
                                          : "connection lost");
        return RV_EUNAVAILABLE;
    }
    return rvc_err_from_nng(nng_aio_result(ep->aio), ep->addr, errmsg);
}

/* One exchange on an open endpoint, within timeout_ms. */
static int
rvc__exchange(struct rvc_endpoint *ep, const Rv__Request *req,
              unsigned timeout_ms, Rv__Response **resp, char *errmsg)
{
    size_t n = rv__request__get_packed_size(req);
    uint64_t start = rv_clock_mono_ms();
    nng_msg *msg;
    int rv = nng_msg_alloc(&msg, n);
    if (rv != 0)
        return rvc_err_from_nng(rv, ep->addr, errmsg);
    rv__request__pack(req, nng_msg_body(msg));
    pthread_mutex_lock(&ep->lock);
    uint64_t drops0 = ep->n_drops;
    ep->is_aio_done = 0;
    pthread_mutex_unlock(&ep->lock);
    nng_aio_set_timeout(ep->aio, (nng_duration)timeout_ms);
    nng_aio_set_msg(ep->aio, msg);
    nng_send_aio(ep->sock, ep->aio);
    int rc = rvc__wait(ep, drops0, start, errmsg);
    if (rc != RV_OK) {
        if (nng_aio_get_msg(ep->aio) != NULL) {
            nng_msg_free(nng_aio_get_msg(ep->aio));
            nng_aio_set_msg(ep->aio, NULL);
        }
        return rc;
    }
    pthread_mutex_lock(&ep->lock);
    ep->is_aio_done = 0;
    pthread_mutex_unlock(&ep->lock);
    uint64_t used = rv_clock_mono_ms() - start;
    nng_aio_set_timeout(
        ep->aio, (nng_duration)(used < timeout_ms ? timeout_ms - used : 1));
    nng_recv_aio(ep->sock, ep->aio);
    rc = rvc__wait(ep, drops0, start, errmsg);
    if (rc != RV_OK)
        return rc;
    msg = nng_aio_get_msg(ep->aio);
    nng_aio_set_msg(ep->aio, NULL);
    *resp = rv__response__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    nng_msg_free(msg);
    if (*resp == NULL) {
        rv_errmsg_printf(errmsg, "%s sent a response that does not decode",
                         ep->addr);
        return RV_EMALFORMED;
    }
    return RV_OK;
}

int
rvc_call_once(const char *addr, const Rv__Request *req, unsigned timeout_ms,
              Rv__Response **resp, char *errmsg)
{
    return rvc_call_once_tls(addr, NULL, req, timeout_ms, resp, errmsg);
}

int
rvc_call_once_tls(const char *addr, const struct rvc_tls *tls,
                  const Rv__Request *req, unsigned timeout_ms,
                  Rv__Response **resp, char *errmsg)
{
    struct rvc_endpoint ep;
    memset(&ep, 0, sizeof ep);
    if (strlen(addr) > CONTRACT_MAX_ADDR_BYTES) {
        rv_errmsg_printf(errmsg, "address too long");
        return RV_EINVAL;
    }
    snprintf(ep.addr, sizeof ep.addr, "%s", addr);
    if (!rvc__is_http(ep.addr))
        snprintf(ep.rpc, sizeof ep.rpc, "%s", addr);
    rvc__ep_init(&ep);
    int rc = rvc__ep_open(&ep, tls, timeout_ms, errmsg);
    if (rc == RV_OK)
        rc = rvc__exchange(&ep, req, timeout_ms, resp, errmsg);
    rvc__ep_close(&ep);
    pthread_mutex_destroy(&ep.lock);
    pthread_cond_destroy(&ep.cond);
    return rc;
}

static int
rvc__is_retryable(int code)
{
    return code == RV_ENOTLEADER || code == RV_EUNAVAILABLE ||
           code == RV_EUNKNOWN;
}

int
rvc_call(struct rvc *c, const Rv__Request *req, Rv__Response **resp,
         char *errmsg)
{
    uint64_t deadline = rv_clock_mono_ms() + c->total_ms;
    int rc = RV_EUNAVAILABLE;
    Rv__Response *last = NULL;
    Rv__Request with_token;
    *resp = NULL;
    if (c->token != NULL && req->token == NULL) {
        with_token = *req; /* Shallow: only the token differs. */
        with_token.token = (char *)c->token;
        req = &with_token;
    }
    for (unsigned attempt = 0;; attempt++) {
        struct rvc_endpoint *ep = &c->eps[c->cur];
        uint64_t now = rv_clock_mono_ms();
        if (now >= deadline)
            break;
        unsigned left = (unsigned)(deadline - now);
        unsigned t = left < c->attempt_ms ? left : c->attempt_ms;
        if (!ep->is_open) {
            rc = rvc__ep_open(ep, c->tls, t, errmsg);
            if (rc == RV_EINVAL || rc == RV_ENOMEM)
                return rc;
        }
        Rv__Response *r = NULL;
        if (ep->is_open)
            rc = rvc__exchange(ep, req, t, &r, errmsg);
        if (rc == RV_OK && !rvc__is_retryable((int)r->code)) {
            snprintf(c->last, sizeof c->last, "%s", ep->addr);
            rvc_response_free(last);
            *resp = r;
            return RV_OK;
        }
        if (rc == RV_OK) {
            /* A node answered but cannot serve: follow its hint. */
            int next = -1;
            if (r->code == RV_ENOTLEADER && r->leader_rpc != NULL &&
                r->leader_rpc[0] != '\0')
                next = rvc__add(c, r->leader_rpc, strlen(r->leader_rpc));
            rvc_response_free(last);
            last = r;
            if (next >= 0 && (size_t)next != c->cur) {
                c->cur = (size_t)next;
                continue;
            }
        } else if (rc == RV_ENOMEM) {
            return rc;
        }
        c->cur = (c->cur + 1) % c->n_eps;
        if (c->cur == 0 || (last != NULL && last->code != RV_ENOTLEADER)) {
            uint64_t pause = 25u << (attempt < 2 ? attempt : 2);
            if (rv_clock_mono_ms() + pause < deadline)
                rv_clock_sleep_ms((unsigned)pause);
        }
    }
    if (last != NULL) {
        *resp = last;
        return RV_OK;
    }
    return rc == RV_OK ? RV_ETIMEDOUT : rc;
}

/* One fetch request fr (its size limit set here) to addr. */
static int
rvc__fetch_call(struct rvc_fetcher *f, const char *addr, Rv__FetchRequest *fr,
                Rv__Response **resp, char *errmsg)
{
    Rv__Request req = RV__REQUEST__INIT;
    fr->has_max_bytes = 1;
    fr->max_bytes = CONTRACT_MAX_FETCH_BYTES;
    req.body_case = RV__REQUEST__BODY_FETCH;
    req.fetch = fr;
    if (f != NULL && f->token != NULL)
        req.token = (char *)f->token;
    return rvc_call_once_tls(addr, f != NULL ? f->tls : NULL, &req,
                             f != NULL && f->timeout_ms ? f->timeout_ms : 10000,
                             resp, errmsg);
}

int
rvc_fetch(void *data, const char *addr, uint64_t from, uint64_t to,
          struct rv_buf *out, char *errmsg)
{
    struct rvc_fetcher *f = data;
    Rv__FetchRequest fr = RV__FETCH_REQUEST__INIT;
    Rv__Response *resp = NULL;
    fr.from_index = from;
    fr.has_to_index = 1;
    fr.to_index = to;
    int rc = rvc__fetch_call(f, addr, &fr, &resp, errmsg);
    if (rc != RV_OK)
        return rc;
    if (resp->code != RV_OK) {
        rv_errmsg_printf(errmsg, "%s: %s", addr,
                         resp->message ? resp->message : "fetch failed");
        rc = RV_EUNAVAILABLE;
    } else if (resp->has_records) {
        rv_buf_append(out, resp->records.data, resp->records.len);
        rc = out->is_failed ? RV_ENOMEM : RV_OK;
    }
    rvc_response_free(resp);
    return rc;
}

int
rvc_fetch_image(void *data, const char *addr, uint64_t offset,
                struct rv_buf *out, uint64_t *image_index, uint64_t *total,
                char *errmsg)
{
    struct rvc_fetcher *f = data;
    Rv__FetchRequest fr = RV__FETCH_REQUEST__INIT;
    Rv__Response *resp = NULL;
    *image_index = 0;
    *total = 0;
    fr.from_index = 1; /* The door wants one; an image request ignores it. */
    fr.has_want_image = 1;
    fr.want_image = 1;
    fr.has_image_offset = 1;
    fr.image_offset = offset;
    int rc = rvc__fetch_call(f, addr, &fr, &resp, errmsg);
    if (rc != RV_OK)
        return rc;
    *image_index = resp->has_image_index ? resp->image_index : 0;
    if (resp->code == RV_ENOTFOUND && *image_index == 0) {
        rc = RV_OK; /* Never compacted: nothing to fetch. */
    } else if (resp->code != RV_OK) {
        rv_errmsg_printf(errmsg, "%s: %s", addr,
                         resp->message ? resp->message : "fetch failed");
        rc = RV_EUNAVAILABLE;
    } else if (resp->has_image) {
        *total = resp->has_image_bytes ? resp->image_bytes : 0;
        rv_buf_append(out, resp->image.data, resp->image.len);
        rc = out->is_failed ? RV_ENOMEM : RV_OK;
    }
    rvc_response_free(resp);
    return rc;
}
