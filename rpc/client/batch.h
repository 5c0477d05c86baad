/* Batched writes for ingestion over the native RPC client
 * (rpc/client/client.h).
 *
 * A batcher collects metric points and other commands and sends them as
 * one WriteRequest per flush. Points are kept columnar per run: each run's
 * points go into a LogBatch command (Rv__Metrics with a key and context
 * dictionary) of at most RVC_BATCH_POINTS_PER_COMMAND points (settable up
 * to CONTRACT_MAX_POINTS_PER_COMMAND) and at most
 * CONTRACT_MAX_SERIES_PER_COMMAND series. A write is kept under
 * RVC_BATCH_MAX_WRITE_BYTES packed (the entry limit is 1 MiB) and
 * CONTRACT_MAX_COMMANDS_PER_BATCH commands.
 *
 * Idempotency: every command gets (client_id, seq), seq increasing by one
 * per command in the order commands were added. A flush that fails without
 * an outcome (no node answered, RV_EUNKNOWN, ...) keeps its commands with
 * their keys: calling rvc_batcher_flush() again resends the very same
 * commands, which the cluster applies at most once. Commands already sent
 * once never take more points. With a given client_id and a start seq
 * (rvc_batcher_set_seq), the same sequence of calls produces the same
 * commands with the same keys, so a repeated ingestion applies nothing twice.
 *
 * Threads: a batcher is used by one thread at a time, like its client. */
#ifndef RV_RPC_CLIENT_BATCH_H
#define RV_RPC_CLIENT_BATCH_H

#include "proto/runvault.pb-c.h"
#include "rpc/client/client.h"

#include <stddef.h>
#include <stdint.h>

#define RVC_BATCH_POINTS_PER_COMMAND 1000
#define RVC_BATCH_DEFAULT_POINTS     20000 /* max_points 0 */
#define RVC_BATCH_MAX_WRITE_BYTES    (768u << 10)

struct rvc_batcher;

/* What a batcher has done so far. */
struct rvc_batch_stats {
    uint64_t n_writes;     /* WriteRequests answered. */
    uint64_t n_commands;   /* Commands acknowledged (applied or dup). */
    uint64_t n_duplicates; /* Of those, applied by an earlier send. */
    uint64_t n_points;     /* Metric points acknowledged. */
    uint64_t n_failed;     /* Commands the cluster refused. */
    uint64_t n_pending;    /* Points waiting for a flush. */
    uint64_t last_index;   /* Raft index of the last answered write. */
    uint64_t failed_write; /* 1-based number of the last failed write. */
    uint64_t failed_seq;   /* seq of its first failed command (0: all). */
    int failed_code;       /* RV_* of the last failure (RV_OK: none). */
};

/* ---- Lifecycle ---------------------------------------------------------- */

/* Make a batcher writing through c (borrowed; must outlive the batcher).
 * client_id 0 picks a random nonzero one. max_points is how many points
 * the batcher holds before rvc_batcher_point() flushes by itself (0:
 * RVC_BATCH_DEFAULT_POINTS). Close with rvc_batcher_close(). Errors:
 * RV_ENOMEM. */
int rvc_batcher_open(struct rvc_batcher **out, struct rvc *c,
                     uint64_t client_id, size_t max_points);

/* Free the batcher; pending commands are dropped, not sent (flush first).
 * NULL is allowed. */
void rvc_batcher_close(struct rvc_batcher *b);

/* The client id the batcher stamps (nonzero). */
uint64_t rvc_batcher_client_id(const struct rvc_batcher *b);

/* The next command gets seq + 1. Only before any command is added. */
void rvc_batcher_set_seq(struct rvc_batcher *b, uint64_t seq);

/* At most n points per LogBatch command (1..CONTRACT_MAX_POINTS_PER_COMMAND;
 * 0 restores the default). Applies to commands opened afterwards. */
void rvc_batcher_set_points_per_command(struct rvc_batcher *b, size_t n);

/* ---- Adding and sending -----------------------------------------------
 * Adding may first flush what is pending (held points reach max_points, or
 * the write would grow past its byte or command bound): the return value
 * is then that flush's, and on an error the new point or command was not
 * taken. Text of the last error: rvc_batcher_errmsg(). */

/* Add one metric point of series (key, context) of run run_id. Strings are
 * borrowed (copied). context NULL means "". Errors: RV_EINVAL (a string
 * over its CONTRACT_MAX_* length, or empty run_id or key), RV_ENOMEM, or a
 * flush's error. */
int rvc_batcher_point(struct rvc_batcher *b, const char *run_id,
                      const char *key, const char *context, int64_t step,
                      int64_t ts_ms, double value);

/* Add any command (run_create, log_lines, artifact_chunk, run_status, ...)
 * after everything added so far. cmd is borrowed: the batcher keeps a copy,
 * with client_id and seq set by it. Points added later for any run go into
 * new LogBatch commands after this one, so a run_create always precedes
 * the points that follow it. Errors: RV_ENOMEM, or a flush's error. */
int rvc_batcher_command(struct rvc_batcher *b, const Rv__Command *cmd);

/* Send everything pending as one WriteRequest and wait for its answer.
 * RV_OK: every command was applied now or before (duplicates count as
 * acknowledged). A command the cluster refused: its code is returned
 * (RV_EINVAL, RV_ENOTFOUND, ...), the others of the write are acknowledged
 * and the refused ones dropped; errmsg names the write, the command's seq,
 * kind and run. No outcome (RV_EUNAVAILABLE, RV_ETIMEDOUT, RV_EUNKNOWN,
 * RV_ENOTLEADER after the client's deadline): nothing is dropped, and the
 * next flush resends the same commands. RV_ENOMEM. Nothing pending: RV_OK. */
int rvc_batcher_flush(struct rvc_batcher *b);

/* Points or commands waiting to be sent (0 if none). */
size_t rvc_batcher_pending(const struct rvc_batcher *b);

/* Counters; valid until the next call on b. */
const struct rvc_batch_stats *rvc_batcher_stats(const struct rvc_batcher *b);

/* Text of the last error ("" if none); valid until the next call on b. */
const char *rvc_batcher_errmsg(const struct rvc_batcher *b);

#endif /* RV_RPC_CLIENT_BATCH_H */
