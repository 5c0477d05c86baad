/* Shared by the files of node/cli/ only: the state of one client command
 * run, the calls to the cluster, the output helpers, and what ingest and
 * import both use to write runs. Everything runs on the main thread. */
#ifndef RV_NODE_CLI_INT_H
#define RV_NODE_CLI_INT_H

#include "base/token.h"
#include "node/cli/cli.h"
#include "node/cli/flags.h"
#include "proto/contract.h"
#include "proto/proto.h"
#include "rpc/client/batch.h"
#include "rpc/client/client.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_DEFAULT_LIMIT   50 /* ls rows. */
#define CLI_DEFAULT_TIMEOUT 30000
#define CLI_FOLLOW_POLL_MS  500
#define CLI_LOG_PAGE        1000         /* Log lines per LogsRequest. */
#define CLI_MAX_LINE_BYTES  (1u << 20)   /* One JSONL line. */
#define CLI_LOG_CMD_BYTES   (256u << 10) /* Text per LogLines command. */
#define CLI_LOG_CMD_LINES   1000
#define CLI_ARTIFACT_READ   (4u << 20) /* Bytes per ArtifactRequest. */
#define CLI_NAME_BYTES      200        /* A directory name made from a name. */
#define CLI_PATH_BYTES      4096
#define CLI_NUM_BYTES       40  /* A formatted double or integer. */
#define CLI_TIME_BYTES      32  /* An ISO 8601 UTC time. */
#define CLI_SPLIT_DEPTH     160 /* Step ranges a history fetch splits. */
#define CLI_PROGRESS_MS     250
#define CLI_IMPORT_ID_SALT  "runvault-import/"

/* The flags of the client commands: indexes into cli_flags (cli.c) and
 * into struct cli_args's v[]. */
enum cli_opt {
    O_ENDPOINT,
    O_TIMEOUT,
    O_CONSISTENCY,
    O_PROJECT,
    O_EXPERIMENT,
    O_STATUS,
    O_TAG,
    O_PARAM,
    O_DAY,
    O_FILTER,
    O_ORDER_BY,
    O_LIMIT,
    O_JSON,
    O_CSV,
    O_KEY,
    O_CONTEXT,
    O_DOWNSAMPLE,
    O_MIN_STEP,
    O_MAX_STEP,
    O_FOLLOW,
    O_FROM,
    O_OUT,
    O_TOKEN_FILE,
    O_TEAM,
    O_ROLE,
    O_NAME,
    O_EXPIRES_IN,
    O_MAX_RUNS,
    O_MAX_BYTES,
    O_MAX_POINTS_PER_S,
    O_SINCE_INDEX,
    O_MAX_AGE,
    O_KEEP_LAST,
    O_STATUSES,
    O_TRASH,
    O_TLS_CA,
    O_TLS_CERT,
    O_TLS_KEY,
    O_TO,
    O_COUNT
};

/* One client command run: the connection and the read options. */
struct cli {
    const char *name; /* "ls", for messages. */
    struct rvc *c;
    struct rvc_tls *tls; /* NULL without --tls-ca. Owned. */
    Rv__ReadOptions read;
    int is_tty; /* stderr is a terminal: show progress. */
    char errmsg[RV_ERRMSG_SIZE];
    /* The caller's token (cred.c), "" for none; set on every request by
     * the client (rvc_set_token). Never printed; wiped at the end. */
    char token[RV_TOKEN_TEXT_CHARS + 1];
};

/* ---- The commands (each returns the process exit code, RV_EXIT_*) ----- */

int cli__ls(struct cli *cl, const struct cli_args *a);
int cli__show(struct cli *cl, const struct cli_args *a);
int cli__metrics(struct cli *cl, const struct cli_args *a);
int cli__logs(struct cli *cl, const struct cli_args *a);
/* Lines are sent in order as they are read. At a bad line everything
 * before it is sent (and acknowledged) and nothing from it on: the exit
 * code is RV_EXIT_DATA and the message names the line, so the input can be
 * fixed and resumed from that line. */
int cli__ingest(struct cli *cl, const struct cli_args *a);
int cli__export(struct cli *cl, const struct cli_args *a);
int cli__import(struct cli *cl, const struct cli_args *a);
/* Teams, tokens, quotas and the audit log (admin.c). */
int cli__team_create(struct cli *cl, const struct cli_args *a);
int cli__team_list(struct cli *cl, const struct cli_args *a);
int cli__token_create(struct cli *cl, const struct cli_args *a);
int cli__token_list(struct cli *cl, const struct cli_args *a);
int cli__token_revoke(struct cli *cl, const struct cli_args *a);
int cli__quota_set(struct cli *cl, const struct cli_args *a);
int cli__whoami(struct cli *cl, const struct cli_args *a);
int cli__audit(struct cli *cl, const struct cli_args *a);
/* Shared by the admin commands (admin.c, admin_list.c): a team name
 * (never "*"), --team of a list, one admin write (RV_OK or the failure in
 * cl->errmsg), its exit code after a message, an AdminRequest read. */
int cli__team_check(const struct cli *cl, const char *what, const char *team);
int cli__team_flag(const struct cli *cl, const struct cli_args *a);
int cli__admin_write(struct cli *cl, Rv__Command *cmd, uint64_t *index);
int cli__admin_done(struct cli *cl, int rc);
int cli__admin_read(struct cli *cl, Rv__AdminOp op, const char *team,
                    uint64_t since, uint32_t max_events, Rv__Response **resp);
/* Retention rules (retention.c). */
/* runvault backup (backup.c). */
int cli__backup(struct cli *cl, const struct cli_args *a);
/* Retention rules (retention.c). */
int cli__retention_set(struct cli *cl, const struct cli_args *a);
int cli__retention_clear(struct cli *cl, const struct cli_args *a);
int cli__retention_list(struct cli *cl, const struct cli_args *a);
int cli__compact(struct cli *cl, const struct cli_args *a);

/* ---- The caller's token (cred.c) --------------------------------------- */

/* The token of --token-file FILE (a's O_TOKEN_FILE; one line, its
 * newline stripped) or else of RUNVAULT_TOKEN into cl->token ("" if
 * neither is given), its form checked with rv_token_parse. 0, or -1 after
 * a message naming the source (never the token's text). */
int cli__token_load(struct cli *cl, const struct cli_args *a);
/* What to tell the user before the node's message when the cluster
 * refused with code ("not authenticated: ..."); "" for other codes. */
const char *cli__refusal_hint(int code);
/* Zero p[0, n) in a way the compiler keeps (a secret's copy). */
void cli__wipe(void *p, size_t n);

/* ---- Calls to the cluster (call.c) ------------------------------------- */

/* The exit code for an RV_* outcome of a read or of an argument check:
 * RV_EXIT_NOTFOUND, _USAGE (RV_EINVAL, RV_EPARSE), _UNAVAILABLE (no node
 * answered), _FAILURE (a failure here: RV_EIO, RV_ENOMEM, RV_ENOSPACE,
 * RV_EMALFORMED, RV_ECORRUPT), else _REFUSED (the cluster said no). */
int cli__exit_for(int code);
/* The same for a write of input data: what the cluster refuses because of
 * the data is RV_EXIT_DATA. */
int cli__exit_for_data(int code);
/* Send req (a read gets cl->read). On RV_OK *resp is an RV_OK response
 * (free with rvc_response_free). Otherwise the code of the failure with its
 * text in cl->errmsg, and *resp NULL. */
int cli__rpc(struct cli *cl, Rv__Request *req, Rv__Response **resp);
/* Print the failure of the command and return exit_code. */
int cli__fail(struct cli *cl, int code, int exit_code);
/* GetRun of run_id: as cli__rpc, and RV_EMALFORMED if it holds no run. */
int cli__get_run(struct cli *cl, const char *run_id, Rv__Response **resp);

/* Points of a series, owned (free with cli__points_free). */
struct cli_points {
    int64_t *steps, *ts;
    double *values;
    size_t n, cap;
};

void cli__points_free(struct cli_points *p);
/* Points of series (key, ctx) of run_id with steps in [lo, hi], in step
 * order, appended to *out (which the caller frees, also on error).
 * Without downsampling a node answers at most CONTRACT_MAX_HISTORY_POINTS per
 * request (RV_ETOOBIG beyond): the range is then split in halves until
 * each half fits, so any series can be read whole. */
int cli__history(struct cli *cl, const char *run_id, const char *key,
                 const char *ctx, int64_t lo, int64_t hi, uint32_t downsample,
                 struct cli_points *out);
/* Log lines of run_id from line from on (at most CLI_LOG_PAGE): as
 * cli__rpc. */
int cli__logs_page(struct cli *cl, const char *run_id, uint64_t from,
                   Rv__Response **resp);
/* Pages of ListRuns (team, project, experiment, order of a's flags) until
 * limit rows (0: all) or the last page. *pages (each freed with
 * rvc_response_free, the array with free) is set also on error. */
int cli__ls_fetch(struct cli *cl, const struct cli_args *a, const char *filter,
                  uint64_t limit, Rv__Response ***pages, size_t *n_pages);

/* ---- Filters (filter.c) ------------------------------------------------ */

/* A filter expression under construction; is_over once it passed the
 * grammar's length limit. */
struct cli_expr {
    char s[CONTRACT_MAX_FILTER_BYTES + 1];
    size_t n;
    int is_over;
};

/* The filter of ls's flags (--filter, --status, --tag, --param, --day),
 * joined with "and", into *e; prints the error and returns -1 if a flag
 * is bad. */
int cli__ls_filter(const struct cli_args *a, struct cli_expr *e);

/* ---- Output (output.c) ------------------------------------------------- */

/* 64-bit FNV-1a of two strings, for ids and names (not secrets). */
uint64_t cli__hash(const char *a, const char *b);
/* Shortest of %.15g..%.17g that reads back as v; NaN and the infinities
 * as "NaN", "Infinity", "-Infinity". */
void cli__fmt_double(double v, char out[CLI_NUM_BYTES]);
/* ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ"; 0 as "-". */
void cli__fmt_time(int64_t ms, char out[CLI_TIME_BYTES]);
/* Characters a display column holds: UTF-8 lead bytes. */
size_t cli__width(const char *s);
/* s padded with spaces to width columns, on the left if is_right. */
void cli__pad(FILE *f, const char *s, size_t width, int is_right);
/* s, or "" for NULL. */
const char *cli__str(const char *s);

/* JSON values for the output (--json, export's files). Each returns a new
 * reference (NULL only when out of memory; the json_object_set_new() it
 * is handed to then fails and the member is missing). */
json_t *cli__json_string(const char *s);
/* ms since the epoch; not has, or 0, is null. */
json_t *cli__json_time(int has, int64_t ms);
/* A metric value: a number, or "NaN"/"Infinity"/"-Infinity" as on the
 * HTTP API. *prec is raised to the digits the value needs (15 to 17) to
 * read back exactly: pass it to cli__json_print. */
json_t *cli__json_value(double v, int *prec);
/* {"key":"value",...} in the order of kvs. */
json_t *cli__json_kvs(Rv__KV *const *kvs, size_t n);
/* A run's attributes, "run_id" to "ended_at" ("user" only if with_user). */
json_t *cli__json_run(const Rv__RunInfo *r, int with_user);
/* Write doc compact, keys in insertion order, reals with prec significant
 * digits (0: 15), and a newline; takes the reference to doc. 0, or -1 if
 * doc is NULL or the write failed. */
int cli__json_print(FILE *f, json_t *doc, int prec);

/* Progress "what [####....] done/total" on stderr, at most every
 * CLI_PROGRESS_MS (always for the last). */
struct cli_progress {
    int is_on;
    uint64_t last_ms;
};

void cli__progress(struct cli_progress *p, const char *what, size_t done,
                   size_t total);

/* ---- Writing runs: ingest and import (write.c) ------------------------- */

/* KVs copied out of a JSON object of strings (borrowed from it: valid while
 * the object lives). */
struct cli_kvs {
    Rv__KV *kvs;
    Rv__KV **ptrs;
    size_t n;
};

void cli__kvs_free(struct cli_kvs *k);
/* obj NULL is an empty set; anything but an object of strings is an error
 * (-1, the reason in why). */
int cli__kvs_from_json(const json_t *obj, const char *what, struct cli_kvs *out,
                       char *why);
/* Queue a run_create (resume allowed) for run c->run_id with params and
 * tags; those past the per-command limits follow in LogBatch commands.
 * Returns RV_OK or the batcher's error. */
int cli__queue_run(struct rvc_batcher *b, Rv__RunCreate *c,
                   const struct cli_kvs *params, const struct cli_kvs *tags);

/* Log lines of one run collected into LogLines commands. */
struct cli_loglines {
    char run_id[CONTRACT_MAX_RUN_ID_BYTES + 1];
    Rv__LogLine lines[CLI_LOG_CMD_LINES];
    Rv__LogLine *ptrs[CLI_LOG_CMD_LINES];
    char *texts[CLI_LOG_CMD_LINES]; /* Owned copies. */
    size_t n, n_bytes;
};

/* Queue the pending lines as one LogLines command (nothing if none). */
int cli__loglines_flush(struct cli_loglines *ll, struct rvc_batcher *b);
/* Add a copy of text[0, n) (flushing first when the run changes or the
 * command is full). RV_OK, RV_ENOMEM or the batcher's error. */
int cli__loglines_add(struct cli_loglines *ll, struct rvc_batcher *b,
                      const char *run_id, int64_t ts_ms, Rv__Stream stream,
                      const char *text, size_t n);
/* Drop the pending lines unsent. */
void cli__loglines_clear(struct cli_loglines *ll);
/* Queue the file at file as artifact path of run_id in ArtifactChunk
 * commands of at most CONTRACT_MAX_ARTIFACT_CHUNK_BYTES, the last one with
 * the SHA-256 of the whole. want_hex, if not NULL, is the SHA-256 the
 * bytes must have (lower-case hex). Returns RV_OK, a batcher error, or
 * RV_EIO / RV_EMALFORMED (the reason in why). */
int cli__queue_artifact(struct rvc_batcher *b, const char *run_id,
                        const char *path, const char *content_type,
                        const char *file, const char *want_hex, char *why);
/* A string member: 0 and *out (NULL if absent and optional), or -1. */
int cli__jstr(const json_t *o, const char *k, int is_required, const char **out,
              char *why);
/* An integer member: 0 (*out untouched if absent and optional), or -1. */
int cli__jint(const json_t *o, const char *k, int is_required, int64_t *out,
              char *why);
/* A metric value: a number, or "NaN", "Infinity", "-Infinity". */
int cli__jvalue(const json_t *o, const char *k, double *out, char *why);

/* ---- Export trees: export and import (export.c) ------------------------ */

/* What an export or an import moved. */
struct cli_xstats {
    uint64_t n_runs, n_points, n_log_lines, n_artifacts, n_skipped;
    uint64_t n_duplicates;
};

/* dir/media/enc(part)/enc(part)... of an artifact path (export.c tells
 * the encoding); -1 if it does not fit in out[size]. */
int cli__media_path(const char *dir, const char *path, char *out, size_t size);
/* dir/name into out[size]; -1 if it does not fit. */
int cli__join(char *out, size_t size, const char *dir, const char *name);
/* Free v[0, n) and v. */
void cli__strs_free(char **v, size_t n);

#endif /* RV_NODE_CLI_INT_H */
