/* The RPC answering path, without transport: what a request gets from
 * this node. The nng workers (rpc/server.h) and the HTTP gateway answer
 * every request through rpc_caller_answer(); the unit tests and the
 * fuzzers (tests/fuzz/fuzz_node.c) use the parts that need no replica.
 *
 * Files: answer.c (the checks at the door, writes handed to the replica's
 * batcher, the read gate: consistency and min_index), encode.c (store ->
 * protobuf, one answer struct per kind of response), cluster.c (node and
 * cluster status, membership changes), forward.c (the leader's address,
 * forwarding in-process requests). */
#ifndef RV_RPC_ANSWER_H
#define RV_RPC_ANSWER_H

#include "base/log.h"
#include "raft/replica.h"

#define RPC_MIN_INDEX_WAIT_MS  10000
#define RPC_MAX_FETCH_BYTES    (8u << 20)
#define RPC_DEFAULT_LOG_LINES  1000
#define RPC_MAX_ARTIFACT_READ  (4u << 20) /* Bytes of one artifact read. */
#define RPC_FORWARD_WAIT_MS    3000       /* For a leader to be known. */
#define RPC_FORWARD_ATTEMPT_MS 10000
#define RPC_FORWARD_TOTAL_MS   15000

struct rpc_server; /* rpc/server.h */

/* ---- The node's state, for the HTTP gateway --------------------------------
 * The gateway reads the node's state through these, not from raft/. Any
 * thread; s is borrowed. */

/* The replica's published state (term, leader, indexes, members, ...). */
void rpc_node_info(const struct rpc_server *s, struct replica_info *out);

/* 1 while the replica runs, 0 once it has stopped (or failed). */
int rpc_node_is_running(const struct rpc_server *s);

/* Bytes in the node's value log (for /metrics). */
uint64_t rpc_node_vlog_bytes(const struct rpc_server *s);

/* The node's compaction state and the bytes purged since its last
 * compaction (for /metrics). */
void rpc_node_compact_info(const struct rpc_server *s,
                           struct store_compact_info *out,
                           uint64_t *reclaimable_bytes);

/* In-process answers, for the HTTP gateway: a caller is one thread's state
 * (the wait for the loop, the connection used for forwarding). One thread
 * at a time per caller. Errors of rpc_caller_new: RV_ENOMEM. */
struct rpc_caller;
int rpc_caller_new(struct rpc_server *s, struct rpc_caller **out);
void rpc_caller_free(struct rpc_caller *c); /* NULL is allowed. */

/* Answer req as a worker answers a native request, but forwarding to the
 * leader when needed (a native worker redirects instead). req is borrowed
 * (is_forwarded is set and cleared during a forward). The response is owned by
 * c and valid until the next rpc_caller_answer() on c or rpc_caller_free();
 * never NULL. */
const Rv__Response *rpc_caller_answer(struct rpc_caller *c, Rv__Request *req);

/* ---- Parts of the answering path that need no replica ----------------------
 * The server answers every request through these; they are public for the
 * unit tests and the fuzzers (tests/fuzz/fuzz_rpc.c), which take requests
 * through them without a cluster. Any thread. */

/* The checks a request passes before this node asks its replica anything:
 * a body is set; a write carries 1 to CONTRACT_MAX_COMMANDS_PER_BATCH
 * commands, a known durability and, per command, a body and a valid run id
 * (apply checks everything again); a read's consistency is known; a
 * cluster change has its arguments (an id, an add's raft address
 * a.b.c.d:port); a fetch starts at index 1 or later. Checks that need the
 * store (a read's page size, log line count, group, artifact offset) are
 * made when it is read. Returns RV_OK, or RV_EINVAL with the reason in
 * errmsg, which is the message of the answer. */
int rpc_request_check(const Rv__Request *req, char *errmsg);

/* What the leader does with a checked write before handing it to the
 * replica: stamp created_at_ms of a run create and ended_at_ms of a final
 * status where they are unset (with now_ms; commands are modified), then
 * pack the commands into packed (reset first) as replica_pack_commands,
 * each carrying the principal (token_id, NULL in open mode: whatever the
 * client put there is replaced), now_ms as its stamped time, a token's
 * created and expiry times, and team as a run create's team where the
 * client left it unset (NULL: "default" at apply). The commands are as
 * they were afterwards. Errors: RV_EINVAL (a token's expiry out of range),
 * RV_ETOOBIG, RV_ENOMEM. */
int rpc_write_prepare(Rv__WriteRequest *wr, int64_t now_ms,
                      const char *token_id, const char *team,
                      struct rv_buf *packed, char *errmsg);

/* Answer a read (get_run, list_runs, history, logs, analytics, artifact,
 * admin) or a fetch from st, as a node does for a cluster-admin (every
 * team) once it may serve it: req has
 * passed rpc_request_check, and a read's consistency, min_index and
 * leadership are not looked at here. The answer (error codes included) is
 * in rpc_reply_response(*out), valid until rpc_reply_free(*out); strings
 * in it are owned by *out, nothing points into req. Returns RV_OK, RV_EINVAL
 * for another kind of request, or RV_ENOMEM. */
struct rpc_reply;
int rpc_store_answer(struct store *st, const Rv__Request *req,
                     struct rpc_reply **out);

/* The answer a leader gives to a write applied at raft index index (0:
 * none) with these results, one per command: into *out as for
 * rpc_store_answer. Takes ownership of results (malloc'd, n of them, or
 * NULL when n is 0) in every case. Returns RV_OK or RV_ENOMEM. */
int rpc_write_answer(uint64_t index, struct store_result *results, size_t n,
                     struct rpc_reply **out);

const Rv__Response *rpc_reply_response(const struct rpc_reply *rp);
void rpc_reply_free(struct rpc_reply *rp); /* NULL is allowed. */

#endif /* RV_RPC_ANSWER_H */
