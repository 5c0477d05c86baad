/* The writer harness shared by the programs that load a cluster over the
 * native client and count what it acknowledged (bench/bench_cluster.c,
 * tests/cluster/test_cluster.c, tests/fault/rv_workload.c): one command
 * per WriteRequest, its outcome folded into one code, and the commands
 * those writers send.
 *
 * Threads: no state of its own; each struct rvc is used by one thread at
 * a time (rpc/client/client.h). */
#ifndef RV_TESTS_LIB_WRITER_H
#define RV_TESTS_LIB_WRITER_H

#include "proto/metrics_builder.h"
#include "proto/runvault.pb-c.h"
#include "rpc/client/client.h"

#include <stdint.h>

/* The token (base/token.h) every later testwriter_send carries, or NULL
 * for none (the default). Borrowed: it must outlive the sends. Call before
 * the writer threads start. */
void testwriter_set_token(const char *token);

/* Send cmd (borrowed; its client_id and seq as the caller set them) alone
 * in one WriteRequest with durability (an Rv__Durability; 0: the node's
 * default) through c, retried by the client as rvc_call() does. Returns
 * the write's outcome: the call's error (RV_ETIMEDOUT, RV_EUNAVAILABLE,
 * ...), else the response's code, else, when the response carries
 * results, the command's (RV_EUNKNOWN if there is more than one). A write
 * in memory durability is acknowledged on acceptance, without results.
 * *index (NULL allowed) receives the response's raft index, 0 without a
 * response. */
int testwriter_send(struct rvc *c, Rv__Command *cmd, int durability,
                    uint64_t *index);
/* testwriter_send with token (borrowed; NULL: none) in Request.token. */
int testwriter_send_as(struct rvc *c, const char *token, Rv__Command *cmd,
                       int durability, uint64_t *index);

/* Make cmd (client_id and seq untouched) a run_create of run_id in
 * project/experiment that resumes the run if it exists (RESUME_ALLOW),
 * its body in *rc. Strings are borrowed and must outlive cmd's use. */
void testwriter_run_create(Rv__Command *cmd, Rv__RunCreate *rc,
                           const char *run_id, const char *project,
                           const char *experiment);

/* Make cmd (client_id and seq untouched) a log_batch of run_id holding
 * mb's points, its parts in *lb and *m. Borrowed from mb: valid until mb's
 * next add, reset or free. */
void testwriter_log_batch(Rv__Command *cmd, Rv__LogBatch *lb, Rv__Metrics *m,
                          const char *run_id,
                          const struct proto_metrics_builder *mb);

#endif /* RV_TESTS_LIB_WRITER_H */
