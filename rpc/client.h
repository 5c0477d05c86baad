/* The native RPC client: nng REQ over tcp:// (or ipc://) carrying
 * rv.Request / rv.Response (proto/runvault.proto).
 *
 * A client holds an endpoint list and finds the node that can answer: a
 * transport failure or timeout moves on to the next endpoint; RV_ENOTLEADER
 * follows the leader hint in the response (adding it to the list if new);
 * RV_EUNAVAILABLE and RV_EUNKNOWN are retried, the latter with the very
 * same request, so its idempotency keys make the retry apply at most once.
 * Everything is bounded by the client's total timeout.
 *
 * Threads: a client is used by one thread at a time; make one per thread. */
#ifndef RV_RPC_CLIENT_H
#define RV_RPC_CLIENT_H

#include "base/buf.h"
#include "base/err.h"
#include "proto/runvault.pb-c.h"

#include <stdint.h>

#define RVC_MAX_ENDPOINTS     16
#define RVC_MAX_MESSAGE_BYTES (64u << 20)
#define RVC_DEFAULT_ATTEMPT   10000 /* ms per attempt */
#define RVC_DEFAULT_TOTAL     30000 /* ms per call, retries included */

struct rvc;

/* endpoints: comma-separated "tcp://ip:port" (at least one). Nothing is
 * dialled yet. Errors: RV_EINVAL (bad list), RV_ENOMEM. */
int rvc_open(struct rvc **out, const char *endpoints, char *errmsg);
void rvc_close(struct rvc *c); /* NULL is allowed. */

/* attempt_ms bounds one request to one node; total_ms the whole call. */
void rvc_set_timeouts(struct rvc *c, unsigned attempt_ms, unsigned total_ms);

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

/* One request to one address, no retries. */
int rvc_call_once(const char *addr, const Rv__Request *req, unsigned timeout_ms,
                  Rv__Response **resp, char *errmsg);

/* raftfsm_fetch_fn over RPC (data: a struct rvc_fetcher). Bounded memory:
 * at most RAFTFSM_FETCH_BYTES of records per call. */
struct rvc_fetcher {
    unsigned timeout_ms; /* 0 = 10 s */
};
int rvc_fetch(void *data, const char *addr, uint64_t from, uint64_t to,
              struct rv_buf *out, char *errmsg);

#endif /* RV_RPC_CLIENT_H */
