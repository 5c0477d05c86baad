/* The node as the request fuzz targets (fuzz_rpc, fuzz_http) see it: a
 * real store in a temporary directory, seeded with a few runs (params,
 * tags, metrics with and without a context, log lines, an artifact),
 * answering rv.Request along the leader's own answering path
 * (rpc/server.h: rpc_request_check, rpc_write_prepare, rpc_store_answer)
 * but applying each write at once where the replica would replicate it.
 *
 * A local fault from store_apply (which stops a node for good, on every
 * replica), an answer that does not pack and decode again, or a failure to
 * make the store is a bug: reported by abort(). The store is made afresh
 * every FZ_NODE_MAX_ENTRIES applied entries so reads stay fast. */
#ifndef RV_TESTS_FUZZ_FUZZ_NODE_H
#define RV_TESTS_FUZZ_FUZZ_NODE_H

#include "proto/runvault.pb-c.h"

#define FZ_NODE_MAX_ENTRIES 4000

struct fz_node;

/* Make the store under $TMPDIR (name is part of the directory's name). */
struct fz_node *fz_node_open(const char *name);
void fz_node_close(struct fz_node *n); /* Removes the directory. */

/* Answer req as rpc_caller_answer() does on a serving leader: the checks
 * of rpc_request_check, then a write is stamped, packed, wrapped in an
 * entry envelope and applied; a read or fetch is answered from the store
 * (a min_index past the applied index answers RV_ETIMEDOUT, as the node
 * does after its wait); status and cluster requests are answered without
 * members. req is borrowed; a write's commands are stamped in place. The
 * answer is never NULL, valid until the next call. */
const Rv__Response *fz_node_answer(struct fz_node *n, Rv__Request *req);

/* Pack resp and decode it again, as a client would; abort() if it does
 * not decode (a required field left unset, say). */
void fz_response_check(const Rv__Response *resp);

#endif /* RV_TESTS_FUZZ_FUZZ_NODE_H */
