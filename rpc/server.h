/* The native RPC server: nng REP on tcp:// (or ipc://) with a pool of
 * worker threads, each on its own nng context, answering rv.Request with
 * rv.Response (proto/runvault.proto).
 *
 * Writes go to the replica's batcher on the leader; elsewhere they are
 * answered RV_ENOTLEADER with the leader's RPC address, which the client
 * library follows. Reads honour consistency (stale | leader |
 * linearizable through the replica's coalesced barrier) and min_index.
 * Every node serves vlog records to catching-up peers (fetch).
 *
 * Every request is bounded before it is decoded (RPC_MAX_REQUEST_BYTES)
 * and checked after; a bad one gets an error response, never a crash. */
#ifndef RV_RPC_SERVER_H
#define RV_RPC_SERVER_H

#include "base/log.h"
#include "raft/replica.h"

#define RPC_MAX_REQUEST_BYTES (2u << 20)
#define RPC_DEFAULT_WORKERS   32
#define RPC_MIN_INDEX_WAIT_MS 10000
#define RPC_MAX_FETCH_BYTES   (8u << 20)

struct rpc_server;

/* Listen on addr and serve rep with n_workers threads (0 = default).
 * Errors: RV_EINVAL (address), RV_EIO (cannot listen), RV_ENOMEM. */
int rpc_server_start(struct rpc_server **out, const char *addr,
                     struct replica *rep, unsigned n_workers,
                     const struct rv_log *log, char *errmsg);

/* Close the socket, join the workers and free. NULL is allowed. */
void rpc_server_stop(struct rpc_server *s);

/* Requests answered so far (any thread). */
uint64_t rpc_server_requests(const struct rpc_server *s);

#endif /* RV_RPC_SERVER_H */
