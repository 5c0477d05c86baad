/* The native RPC server (listen.c): nng REP on tcp:// (or ipc://) with a
 * pool of worker threads, each on its own nng context, answering
 * rv.Request with rv.Response (proto/runvault.proto) through the
 * transport-free answering path of rpc/answer.h.
 *
 * Writes go to the replica's batcher on the leader. On a follower, a native
 * request that needs the leader is answered RV_ENOTLEADER with the leader's
 * address, which the client library follows. A request answered in-process
 * (rpc_caller_answer, the HTTP gateway: its clients cannot follow a native
 * address) is forwarded instead: a write, a cluster change and a leader or
 * linearizable read go to the leader (marked is_forwarded, so never
 * forwarded twice) and the answer is relayed; while an election runs the
 * follower waits up to RPC_FORWARD_WAIT_MS for a leader. (Forwarding native
 * requests too held a removed leader's workers long enough to delay its
 * exit past 15 s in the membership test under ASan, and gains nothing for
 * a client that follows hints.) When forwarding fails the answer is
 * RV_ENOTLEADER with the leader's address (the client library follows
 * it), RV_EUNKNOWN for a
 * write that may have reached the leader, or RV_EUNAVAILABLE. A node never
 * forwards to itself, nor once its replica has stopped; a forward in
 * flight holds its worker for at most RPC_FORWARD_TOTAL_MS, which is also
 * how long rpc_server_stop may wait for it. Reads honour
 * consistency (stale | leader | linearizable through the replica's coalesced
 * barrier) and min_index. Every node serves vlog records to catching-up peers
 * (fetch).
 *
 * Every request is bounded before it is decoded (RPC_MAX_REQUEST_BYTES)
 * and checked after; a bad one gets an error response, never a crash. */
#ifndef RV_RPC_SERVER_H
#define RV_RPC_SERVER_H

#include "base/log.h"
#include "raft/replica.h"
#include "rpc/answer.h"

#define RPC_MAX_REQUEST_BYTES (2u << 20)
#define RPC_DEFAULT_WORKERS   32

struct rpc_server;
struct rvc_tls;

/* Listen on addr and serve rep with n_workers threads (0 = default).
 * With tls (rpc/client/tls.h; borrowed, it must outlive the server) addr
 * is tls+tcp://IP:PORT: clients may present a certificate, and a request
 * whose connection presented one the cluster CA verified counts as a
 * peer's (rpc_caller.is_peer); the server's own outgoing calls (forwarding,
 * removal notices) dial with tls too. Errors: RV_EINVAL (address, or tls
 * and the scheme disagree), RV_EIO (cannot listen), RV_ENOMEM. */
int rpc_server_start(struct rpc_server **out, const char *addr,
                     const struct rvc_tls *tls, struct replica *rep,
                     unsigned n_workers, const struct rv_log *log,
                     char *errmsg);

/* Whether this node requires tokens (a started server does until told
 * otherwise: with is_on 0 it still does once auth_on is applied in its
 * store), and the node's own token for node-to-node requests without TLS
 * (removal notices, catch-up: NULL or "" for none; copied, never logged).
 * Call once after rpc_server_start, before anything else uses s. */
void rpc_server_set_auth(struct rpc_server *s, int is_on,
                         const char *node_token);

/* Turn authentication on for the cluster: propose auth_on and the
 * cluster-admin token token_id (only its SHA-256) in one entry, as the
 * node itself, and wait until it applied (strict durability). The leader
 * only. Errors: RV_ENOTLEADER, RV_EEXIST (the token id is taken), the
 * replica's. Caller's thread (not the raft loop). */
int rpc_server_auth_bootstrap(struct rpc_server *s, const char *token_id,
                              const uint8_t sha256[32], char *errmsg);

/* Close the socket, join the workers and free. NULL is allowed. */
void rpc_server_stop(struct rpc_server *s);

/* Requests answered so far (any thread). */
uint64_t rpc_server_requests(const struct rpc_server *s);

struct rpc_counters {
    uint64_t n_requests;       /* Answered, native and in-process. */
    uint64_t n_forwarded;      /* Sent on to the leader. */
    uint64_t n_forward_failed; /* Of those, not answered by any node. */
};
void rpc_server_counters(const struct rpc_server *s, struct rpc_counters *out);

#endif /* RV_RPC_SERVER_H */
