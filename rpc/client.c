/* The native RPC client (contract in client.h). */
#include "rpc/client.h"

#include "base/clock.h"
#include "raft/raftfsm.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rvc_endpoint {
    char addr[STORE_MAX_ADDR_BYTES + 1];
    nng_socket sock;
    int is_open;
};

struct rvc {
    struct rvc_endpoint eps[RVC_MAX_ENDPOINTS];
    size_t n_eps, cur;
    unsigned attempt_ms, total_ms;
    char last[STORE_MAX_ADDR_BYTES + 1];
};

static int
rvc__add(struct rvc *c, const char *addr, size_t n)
{
    if (n == 0 || n > STORE_MAX_ADDR_BYTES)
        return -1;
    for (size_t i = 0; i < c->n_eps; i++)
        if (strlen(c->eps[i].addr) == n && memcmp(c->eps[i].addr, addr, n) == 0)
            return (int)i;
    if (c->n_eps == RVC_MAX_ENDPOINTS)
        return -1;
    memcpy(c->eps[c->n_eps].addr, addr, n);
    c->eps[c->n_eps].addr[n] = '\0';
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
        if (n > 0 && rvc__add(c, p, n) < 0) {
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
    for (size_t i = 0; i < c->n_eps; i++)
        if (c->eps[i].is_open)
            nng_close(c->eps[i].sock);
    free(c);
}

void
rvc_set_timeouts(struct rvc *c, unsigned attempt_ms, unsigned total_ms)
{
    c->attempt_ms = attempt_ms;
    c->total_ms = total_ms;
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

static int
rvc__socket(const char *addr, unsigned timeout_ms, nng_socket *sock,
            char *errmsg)
{
    int rv = nng_req0_open(sock);
    if (rv == 0)
        rv = nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME,
                               NNG_DURATION_INFINITE);
    if (rv == 0)
        rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ,
                                 RVC_MAX_MESSAGE_BYTES);
    if (rv == 0)
        rv = nng_socket_set_ms(*sock, NNG_OPT_RECONNMINT, 50);
    if (rv == 0)
        rv = nng_socket_set_ms(*sock, NNG_OPT_RECONNMAXT, 500);
    if (rv == 0)
        rv = nng_socket_set_ms(*sock, NNG_OPT_RECVTIMEO, (int)timeout_ms);
    if (rv == 0)
        rv = nng_socket_set_ms(*sock, NNG_OPT_SENDTIMEO, (int)timeout_ms);
    if (rv == 0)
        rv = nng_dial(*sock, addr, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "%s: %s", addr, nng_strerror(rv));
        nng_close(*sock);
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? RV_EINVAL
                                                         : RV_EUNAVAILABLE;
    }
    return RV_OK;
}

/* One exchange on an open socket. */
static int
rvc__exchange(nng_socket sock, const char *addr, const Rv__Request *req,
              Rv__Response **resp, char *errmsg)
{
    size_t n = rv__request__get_packed_size(req);
    nng_msg *msg;
    if (nng_msg_alloc(&msg, n) != 0)
        return RV_ENOMEM;
    rv__request__pack(req, nng_msg_body(msg));
    int rv = nng_sendmsg(sock, msg, 0);
    if (rv != 0) {
        nng_msg_free(msg);
        rv_errmsg_printf(errmsg, "send to %s: %s", addr, nng_strerror(rv));
        return rv == NNG_ETIMEDOUT ? RV_ETIMEDOUT : RV_EUNAVAILABLE;
    }
    rv = nng_recvmsg(sock, &msg, 0);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "receive from %s: %s", addr, nng_strerror(rv));
        return rv == NNG_ETIMEDOUT ? RV_ETIMEDOUT : RV_EUNAVAILABLE;
    }
    *resp = rv__response__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    nng_msg_free(msg);
    if (*resp == NULL) {
        rv_errmsg_printf(errmsg, "%s sent a response that does not decode",
                         addr);
        return RV_EMALFORMED;
    }
    return RV_OK;
}

int
rvc_call_once(const char *addr, const Rv__Request *req, unsigned timeout_ms,
              Rv__Response **resp, char *errmsg)
{
    nng_socket sock;
    int rc = rvc__socket(addr, timeout_ms, &sock, errmsg);
    if (rc != RV_OK)
        return rc;
    rc = rvc__exchange(sock, addr, req, resp, errmsg);
    nng_close(sock);
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
    *resp = NULL;
    for (unsigned attempt = 0;; attempt++) {
        struct rvc_endpoint *ep = &c->eps[c->cur];
        uint64_t now = rv_clock_mono_ms();
        if (now >= deadline)
            break;
        unsigned left = (unsigned)(deadline - now);
        unsigned t = left < c->attempt_ms ? left : c->attempt_ms;
        if (!ep->is_open) {
            rc = rvc__socket(ep->addr, t, &ep->sock, errmsg);
            if (rc == RV_EINVAL)
                return rc;
            ep->is_open = rc == RV_OK;
        } else {
            nng_socket_set_ms(ep->sock, NNG_OPT_RECVTIMEO, (int)t);
            nng_socket_set_ms(ep->sock, NNG_OPT_SENDTIMEO, (int)t);
        }
        Rv__Response *r = NULL;
        if (ep->is_open)
            rc = rvc__exchange(ep->sock, ep->addr, req, &r, errmsg);
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
        } else if (ep->is_open && rc != RV_EMALFORMED) {
            /* A REQ socket that timed out is reset: start afresh. */
            nng_close(ep->sock);
            ep->is_open = 0;
        }
        c->cur = (c->cur + 1) % c->n_eps;
        if (c->cur == 0 || (last != NULL && last->code != RV_ENOTLEADER)) {
            uint64_t pause = 50u << (attempt < 4 ? attempt : 4);
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

int
rvc_fetch(void *data, const char *addr, uint64_t from, uint64_t to,
          struct rv_buf *out, char *errmsg)
{
    struct rvc_fetcher *f = data;
    Rv__Request req = RV__REQUEST__INIT;
    Rv__FetchRequest fr = RV__FETCH_REQUEST__INIT;
    Rv__Response *resp = NULL;
    fr.from_index = from;
    fr.has_to_index = 1;
    fr.to_index = to;
    fr.has_max_bytes = 1;
    fr.max_bytes = RAFTFSM_FETCH_BYTES;
    req.body_case = RV__REQUEST__BODY_FETCH;
    req.fetch = &fr;
    int rc = rvc_call_once(addr, &req,
                           f != NULL && f->timeout_ms ? f->timeout_ms : 10000,
                           &resp, errmsg);
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
