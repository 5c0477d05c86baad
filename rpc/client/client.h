/* The native RPC client: nng REQ over tcp:// (or ipc://) carrying
 * rv.Request / rv.Response (proto/runvault.proto).
 *
 * Endpoints are tcp://IP:PORT, tls+tcp://IP:PORT or ipc://PATH, dialled as
 * given, or a node's HTTP address http://IP:PORT or https://IP:PORT: that
 * one is resolved once, on first use, to the node's native RPC address by
 * GET /api/config, whose JSON reply holds "rpc_addr":"tcp://IP:PORT" (or
 * tls+tcp://) (rvc_resolve_http). The TLS schemes need the client's TLS
 * settings (rvc_set_tls, tls.h): the server's certificate must be signed
 * by the CA and name the host dialled; without settings such an endpoint
 * fails with RV_EINVAL. An http:// endpoint that
 * does not answer, or names an address that cannot be dialled, counts as
 * a node that is down; it is resolved again on its next turn.
 *
 * Retries. A client holds an endpoint list and finds the node that can
 * answer. Every retry sends the very same request (the caller's
 * Rv__Request, packed again byte for byte), so the idempotency keys
 * (client_id, seq) of its commands make a write apply at most once however
 * often it is retried:
 *  - a transport failure (nobody connects within half a second, the
 *    connection drops, the attempt times out) or an http:// endpoint that
 *    does not resolve: the next endpoint in the list;
 *  - RV_ENOTLEADER: the leader hint in the response (added to the list if
 *    new), else the next endpoint;
 *  - RV_EUNAVAILABLE and RV_EUNKNOWN (an outcome the node could not learn,
 *    e.g. leadership lost mid-write): the next endpoint.
 * After each round over the whole list the client pauses 25 to 100 ms.
 * Everything is bounded by the client's total timeout: attempt_ms bounds
 * one request to one node, total_ms the whole call.
 *
 * Threads: a client is used by one thread at a time; make one per thread. */
#ifndef RV_RPC_CLIENT_CLIENT_H
#define RV_RPC_CLIENT_CLIENT_H

#include "base/buf.h"
#include "base/err.h"
#include "proto/contract.h"
#include "proto/runvault.pb-c.h"

#include <stdint.h>

#define RVC_MAX_ENDPOINTS         16
#define RVC_MAX_MESSAGE_BYTES     (64u << 20)
#define RVC_DEFAULT_ATTEMPT       10000 /* ms per attempt */
#define RVC_DEFAULT_TOTAL         30000 /* ms per call, retries included */
#define RVC_HTTP_PREFIX           "http://"
#define RVC_HTTPS_PREFIX          "https://"
#define RVC_HTTP_CONFIG_PATH      "/api/config"
#define RVC_HTTP_RESOLVE_MS       2000 /* At most this per resolution. */
#define RVC_HTTP_MAX_CONFIG_BYTES (64u << 10)

struct rvc;
struct rvc_tls;

/* endpoints: comma-separated tcp://IP:PORT, tls+tcp://IP:PORT, ipc://PATH,
 * http://IP:PORT or https://IP:PORT
 * (at least one, at most RVC_MAX_ENDPOINTS). Nothing is dialled or
 * resolved yet. Errors: RV_EINVAL (bad list or unknown scheme), RV_ENOMEM.
 */
int rvc_open(struct rvc **out, const char *endpoints, char *errmsg);
void rvc_close(struct rvc *c); /* NULL is allowed. */

/* Use tls (borrowed: it must outlive c; NULL: plain only) for tls+tcp://
 * and https:// endpoints, and present its certificate if it has one.
 * Before the first call. */
void rvc_set_tls(struct rvc *c, const struct rvc_tls *tls);

/* attempt_ms bounds one request to one node; total_ms the whole call. */
void rvc_set_timeouts(struct rvc *c, unsigned attempt_ms, unsigned total_ms);

/* The caller's token (base/token.h text, borrowed: it must outlive c, or
 * NULL for none), set on every request rvc_call() sends that carries no
 * token of its own, the batcher's included. It is never logged nor put in
 * an errmsg. */
void rvc_set_token(struct rvc *c, const char *token);

/* Send req and receive the answer of a node that could serve it. RV_OK
 * means *resp holds a response (its code may still be a business error or,
 * after the deadline, RV_ENOTLEADER/RV_EUNAVAILABLE/RV_EUNKNOWN); free it
 * with rvc_response_free(). Otherwise RV_ETIMEDOUT/RV_EUNAVAILABLE (no node
 * answered), RV_ENOMEM, RV_EMALFORMED (an answer that does not decode). */
int rvc_call(struct rvc *c, const Rv__Request *req, Rv__Response **resp,
             char *errmsg);
void rvc_response_free(Rv__Response *resp); /* NULL is allowed. */

/* The endpoint that answered last ("" before any). */
const char *rvc_last_endpoint(const struct rvc *c);

/* One request to one address (an http:// one is resolved first), no
 * retries. */
int rvc_call_once(const char *addr, const Rv__Request *req, unsigned timeout_ms,
                  Rv__Response **resp, char *errmsg);
/* The same with TLS settings (borrowed; NULL: plain only). */
int rvc_call_once_tls(const char *addr, const struct rvc_tls *tls,
                      const Rv__Request *req, unsigned timeout_ms,
                      Rv__Response **resp, char *errmsg);

/* Ask the node at url ("http://IP:PORT" or "https://IP:PORT" with tls, a
 * trailing '/' allowed; tls borrowed, NULL for plain) for its
 * native RPC address: GET url/api/config within timeout_ms, then the string
 * field "rpc_addr" of the JSON reply into rpc_addr (at least
 * CONTRACT_MAX_ADDR_BYTES + 1 bytes). Any thread. Errors: RV_EINVAL (not an
 * http:// URL), RV_EUNAVAILABLE (no answer, an HTTP status other than 200,
 * or a reply without a usable rpc_addr), RV_ENOMEM. */
int rvc_resolve_http(const char *url, const struct rvc_tls *tls,
                     unsigned timeout_ms, char *rpc_addr, char *errmsg);

/* raftfsm_fetch_fn over RPC (data: a struct rvc_fetcher). Bounded memory:
 * at most CONTRACT_MAX_FETCH_BYTES of records per call. */
struct rvc_fetcher {
    unsigned timeout_ms;       /* 0 = 10 s */
    const struct rvc_tls *tls; /* For tls+tcp:// peers; may be NULL. */
    const char *token;         /* The node's credential (base/token.h), or
                                  NULL; borrowed. Peers over TLS need none. */
};
int rvc_fetch(void *data, const char *addr, uint64_t from, uint64_t to,
              struct rv_buf *out, char *errmsg);
/* raftfsm_image_fn over RPC (data: a struct rvc_fetcher). */
int rvc_fetch_image(void *data, const char *addr, uint64_t offset,
                    struct rv_buf *out, uint64_t *image_index, uint64_t *total,
                    char *errmsg);

#endif /* RV_RPC_CLIENT_CLIENT_H */
