/* The wire contract shared by every front door and the store: the limits a
 * command or a query must respect (MLflow's where MLflow has one, DESIGN
 * §2) and the syntax of run ids, keys and UTF-8 text.
 *
 * The gateway, the CLI and the batcher check these before sending; apply
 * enforces them again whatever a front door checked, so a limit changed
 * here changes what every replica accepts: it is part of the replicated
 * format. GET /api/config publishes the ones a client needs.
 *
 * Threads: pure functions and constants, any thread. */
#ifndef RV_PROTO_CONTRACT_H
#define RV_PROTO_CONTRACT_H

#include <stddef.h>

/* ---- Sizes of strings, in bytes ---------------------------------------- */

#define CONTRACT_MAX_RUN_ID_BYTES      64
#define CONTRACT_MAX_TEAM_BYTES        64
#define CONTRACT_MAX_TOKEN_NAME_BYTES  128
#define CONTRACT_TOKEN_ID_CHARS        16 /* base/token.h: RV_TOKEN_ID_CHARS */
#define CONTRACT_MAX_AUDIT_EVENTS      1000
#define CONTRACT_MAX_TOKENS_LISTED     10000
#define CONTRACT_MAX_SCOPE_BYTES       250 /* project, experiment, user */
#define CONTRACT_MAX_NAME_BYTES        500 /* run name */
#define CONTRACT_MAX_KEY_BYTES         250 /* metric, param and tag keys */
#define CONTRACT_MAX_CONTEXT_BYTES     250
#define CONTRACT_MAX_PARAM_VALUE_BYTES 6000
#define CONTRACT_MAX_TAG_VALUE_BYTES   5000
#define CONTRACT_MAX_LOG_LINE_BYTES    65536
/* LMDB keys are at most 511 bytes: artpart holds 18 bytes and the path. */
#define CONTRACT_MAX_ARTIFACT_PATH_BYTES 480
#define CONTRACT_MAX_ADDR_BYTES          128  /* A node's address text. */
#define CONTRACT_PAGE_TOKEN_BYTES        8192 /* Room for a token's text. */
/* A filter or order_by expression (store/filter.h): longer is RV_ETOOBIG. */
#define CONTRACT_MAX_FILTER_BYTES 4096

/* ---- Counts per write -------------------------------------------------- */

#define CONTRACT_MAX_PARAMS_PER_COMMAND     100
#define CONTRACT_MAX_TAGS_PER_COMMAND       100
#define CONTRACT_MAX_POINTS_PER_COMMAND     100000
#define CONTRACT_MAX_SERIES_PER_COMMAND     4096
#define CONTRACT_MAX_COMMANDS_PER_BATCH     4096
#define CONTRACT_MAX_LOG_LINES_PER_COMMAND  10000
#define CONTRACT_MAX_ARTIFACT_CHUNK_BYTES   (512u << 10)
#define CONTRACT_DEFAULT_MAX_ARTIFACT_BYTES ((uint64_t)4 << 30) /* One. */

/* ---- Counts per read --------------------------------------------------- */

#define CONTRACT_MAX_PER_PAGE         1000
#define CONTRACT_DEFAULT_PER_PAGE     100
#define CONTRACT_MAX_HISTORY_POINTS   100000 /* Without downsampling. */
#define CONTRACT_MAX_DOWNSAMPLE       10000
#define CONTRACT_MAX_LOG_LINES_READ   10000
#define CONTRACT_MAX_ARTIFACTS_LISTED 10000
/* Bytes of vlog records one catch-up fetch asks for (FetchRequest's
 * max_bytes); raft/raftfsm.h's RAFTFSM_FETCH_BYTES is defined as this. */
#define CONTRACT_MAX_FETCH_BYTES (4u << 20)

/* ---- Syntax -------------------------------------------------------------
 * Each takes n bytes at s (not NUL-terminated; s may be NULL when n is 0)
 * and returns 1 if they are valid, else 0. */

/* UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing
 * above U+10FFFF. The empty string is valid. */
int contract_utf8_valid(const char *s, size_t n);

/* A metric, param or tag key, MLflow's ^[/\w.\- ]*$ narrowed: 1 to
 * CONTRACT_MAX_KEY_BYTES of ASCII letters, digits, '_', '-', '.', ' ', '/',
 * not starting with '/' and without "..". */
int contract_key_valid(const char *s, size_t n);

/* A run id, MLflow's ^[a-zA-Z0-9][\w\-]*$: 1 to CONTRACT_MAX_RUN_ID_BYTES
 * of ASCII letters, digits, '_', '-', starting with a letter or digit. */
int contract_run_id_valid(const char *s, size_t n);

#endif /* RV_PROTO_CONTRACT_H */
