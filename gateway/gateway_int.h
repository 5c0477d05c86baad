/* Inside the gateway: one HTTP exchange as the endpoint handlers see it,
 * the route table they are reached through, the helpers every resource
 * shares and the counters /metrics reports. Never included from outside
 * gateway/ (the HTTP fuzzer and tests/unit/test_gateway.c excepted).
 *
 * Threads: an exchange, its gw_ctx and everything a handler does run on
 * the one worker answering it (or a test's thread), start to end; the
 * handlers share nothing but struct gateway's atomic counters. Errors:
 * a handler never returns one; it answers (gw_reply_*, gw__reject), and
 * every check below that answers returns -1 (or NULL), else 0.
 *
 * Rooms (each file answers one question):
 *   gateway.c               nng's HTTP server, the request queue, the
 *                           workers and their jansson arenas
 *   gateway_reply.c         the error table, answers, the request line
 *   gateway_route.c         the route table, its matcher and dispatcher,
 *                           a handler's context (allocations, node calls)
 *   gateway_read.c          reads: query parameters, read options
 *   gateway_write.c         writes: JSON bodies, idempotency, durability
 *   gateway_json_run.c      runs: create, status, delete/restore, get,
 *                           list, analytics
 *   gateway_json_metric.c   log-batch (metrics, params, tags), history
 *   gateway_json_log.c      log lines in and out
 *   gateway_json_artifact.c artifact upload, download, listing
 *   gateway_json_cluster.c  cluster status, node add/remove, transfer
 *   gateway_json_ops.c      /healthz, /readyz, /metrics, /api/config
 *   gateway_json_admin.c    teams, quotas, tokens, whoami, the audit log
 *
 * HOW TO ADD A RESOURCE (teams, tokens, MLflow's /api/2.0/mlflow/...,
 * static UI assets):
 *   1. Write gateway_json_<resource>.c: one gw_handler per endpoint, each
 *      mapping the request (gw__q_* for query parameters, gw__body and
 *      gw__str/gw__int/gw__kvs for JSON bodies) to one native request
 *      (gw__call for reads, gw__write for commands) and the answer back to
 *      JSON (gw_reply_json). Declare the handlers below under its heading.
 *   2. Add its rows to gw_routes in gateway_route.c: method, pattern,
 *      counter (a GATEWAY_ROUTES entry for /metrics), flags, body limit,
 *      handler. A new path parameter is a GW_P_* value (below) and one
 *      row of gw_params there.
 *   3. A second prefix for the same rows (MLflow's /ajax-api/2.0/mlflow/
 *      beside /api/2.0/mlflow/) is one row of gw_aliases there.
 *   4. Add the file to CMakeLists.txt. Nothing else changes. */
#ifndef RV_GATEWAY_GATEWAY_INT_H
#define RV_GATEWAY_GATEWAY_INT_H

#include "base/buf.h"
#include "base/token.h"
#include "gateway/gateway.h"
#include "proto/runvault.pb-c.h"
#include "store/store.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The routes, for dispatch and for the per-route counters. */
#define GATEWAY_ROUTES(X)                   \
    X(GW_R_NONE, "unknown")                 \
    X(GW_R_HEALTHZ, "healthz")              \
    X(GW_R_READYZ, "readyz")                \
    X(GW_R_METRICS, "metrics")              \
    X(GW_R_CONFIG, "config")                \
    X(GW_R_CLUSTER, "cluster")              \
    X(GW_R_LIST, "list_runs")               \
    X(GW_R_ANALYTICS, "analytics")          \
    X(GW_R_CREATE, "create_run")            \
    X(GW_R_GET, "get_run")                  \
    X(GW_R_LOG_BATCH, "log_batch")          \
    X(GW_R_LOGS_POST, "append_logs")        \
    X(GW_R_LOGS_GET, "read_logs")           \
    X(GW_R_STATUS, "set_status")            \
    X(GW_R_HISTORY, "metric_history")       \
    X(GW_R_ARTIFACT_PUT, "put_artifact")    \
    X(GW_R_ARTIFACT_GET, "get_artifact")    \
    X(GW_R_ARTIFACT_LIST, "list_artifacts") \
    X(GW_R_DELETE, "delete_run")            \
    X(GW_R_RESTORE, "restore_run")          \
    X(GW_R_PURGE, "purge_run")              \
    X(GW_R_TEAMS, "teams")                  \
    X(GW_R_QUOTA, "set_quota")              \
    X(GW_R_TOKENS, "tokens")                \
    X(GW_R_TOKEN_DEL, "revoke_token")       \
    X(GW_R_WHOAMI, "whoami")                \
    X(GW_R_AUDIT, "audit")                  \
    X(GW_R_UI, "ui")                        \
    X(GW_R_RETENTION, "retention")          \
    X(GW_R_COMPACT, "compact")              \
    X(GW_R_MLFLOW_READ, "mlflow_read")      \
    X(GW_R_MLFLOW_WRITE, "mlflow_write")

enum gw_route {
#define GW_ROUTE_ENUM(r, name) r,
    GATEWAY_ROUTES(GW_ROUTE_ENUM)
#undef GW_ROUTE_ENUM
        GW_N_ROUTES
};

#define GW_N_BUCKETS 14 /* Latency histogram buckets, seconds. */

struct gw_route_stats {
    _Atomic uint64_t n_by_class[6]; /* 1xx..5xx by first digit; [0] other */
    _Atomic uint64_t n_bucket[GW_N_BUCKETS];
    _Atomic uint64_t sum_us, n;
};

struct gw_stats {
    struct gw_route_stats routes[GW_N_ROUTES];
    _Atomic uint64_t n_points, n_log_lines, n_artifact_bytes;
    _Atomic uint64_t n_rejected_queue;       /* 429: queue full. */
    _Atomic uint64_t n_queued;               /* Waiting now. */
    _Atomic uint64_t batch_points_bucket[8]; /* Points per log-batch. */
};

struct gw_block;     /* gateway_route.c */
struct replica_info; /* raft/replica.h */

struct gw_kv {
    char *key, *value; /* Decoded; point into the exchange's buffer. */
};

/* What the endpoints ask of the node. An exchange without ops (NULL, as
 * the workers make them) uses the node's own: rpc_caller_answer() on its
 * caller and the replica of the gateway's RPC server. The HTTP fuzzer
 * (tests/fuzz/fuzz_http.c) gives its own, so that requests go through the
 * routing and every check at the door without a cluster. */
struct gw_node_ops {
    /* As rpc_caller_answer(): req is borrowed, the answer never NULL and
     * valid until the next call. */
    const Rv__Response *(*answer)(void *data, Rv__Request *req);
    void (*info)(void *data, struct replica_info *out); /* replica_info() */
    int (*is_running)(void *data); /* replica_is_running() */
    void *data;
};

/* One HTTP exchange. Everything it points at lives until the answer is
 * sent. */
struct gw_exchange {
    struct gateway *g;
    struct rpc_caller *caller;
    const struct gw_node_ops *ops; /* NULL: the node's. */
    const char *method;
    char *path; /* Decoded, without the query. */
    struct gw_kv query[GATEWAY_MAX_QUERY_PARAMS];
    size_t n_query;
    const uint8_t *body;
    size_t body_len;
    const char *idempotency_key; /* Header, or NULL. */
    /* The Authorization header as nng gives it (repeated headers joined
     * by ", "), or NULL; never logged. gw_route turns it into token. */
    const char *authorization;
    /* The token every native request carries (Request.token): NULL when
     * no credentials were presented, "" when the header is not exactly
     * "Bearer <token>" (the node answers 401 when auth is on), else the
     * token text in token_buf. Never logged. */
    const char *token;
    char token_buf[RV_TOKEN_TEXT_CHARS + 1];
    const char *content_type;    /* Header, or NULL. */
    const char *if_none_match;   /* Header, or NULL (the UI's assets). */
    const char *accept_encoding; /* Header, or NULL (the UI's assets). */
    uint64_t worker_client_id;   /* For writes without a key. */
    uint64_t *worker_seq;
    uint64_t start_us;
    enum gw_route route;
    /* The answer. */
    int status;
    const char *out_type; /* Content-Type; static or type_buf. */
    char type_buf[256];
    const char *allow; /* Allow header of a 405: static or allow_buf. */
    char allow_buf[64];
    struct rv_buf out;
    uint32_t retry_after_s;       /* Retry-After of a 429 or 503; 0: none. */
    const char *www_authenticate; /* Of a 401: static text, or NULL. */
    /* A UI asset (gateway_ui.c): its bytes, static, sent without a copy
     * instead of out; and its headers, static text or NULL. */
    const void *out_static;
    size_t out_static_len;
    const char *etag, *cache_control, *content_encoding, *vary;
    int is_page; /* The UI's page: its security headers (CSP...). */
    /* An MLflow route: errors take MLflow's statuses (gw_reply_error). */
    int is_mlflow;
    /* The request's connection (an nng_http_conn), for a body read as it
     * arrives and an answer written as it is read (gw_body_read,
     * gw_stream_*); NULL in tests. */
    void *conn;
    /* A PUT to the artifact proxy: the body is not collected; body_left
     * bytes of it are still on conn. */
    int has_body_stream;
    uint64_t body_left;
    int must_close; /* Answer with Connection: close (a body left unread). */
    int is_sent;    /* The answer was written on conn by the handler. */
    int is_broken;  /* Writing it failed half-way: drop the connection. */
};

struct gateway {
    struct gateway_config cfg;
    char http_addr[128], rpc_addr[128], raft_addr[128];
    char *data_dir;
    struct gw_stats stats;
    uint64_t boot_client_base; /* Random, per boot. */
};

/* ---- Answers and the request line (gateway_reply.c) ---- */

/* Set the answer to JSON j (stolen: freed here) with status. */
void gw_reply_json(struct gw_exchange *x, int status, json_t *j);
/* An error answer {"error_code","message"} for an RV_* code; message may
 * be NULL (the code's text). */
void gw_reply_error(struct gw_exchange *x, int code, const char *message);
/* An error with an explicit status and error_code (405, 404 routes). */
void gw_reply_status(struct gw_exchange *x, int status, const char *error_code,
                     const char *message);
/* Raw bytes with a content type (copied). */
void gw_reply_bytes(struct gw_exchange *x, int status, const char *type,
                    const void *data, size_t n);

/* Split uri (NUL-terminated, modified in place, must live as long as x)
 * into x's decoded path and query parameters. Returns 0, or -1 with the
 * reason (a 400) in errmsg: a bad %-escape, %00 or text that is not UTF-8,
 * more than GATEWAY_MAX_QUERY_PARAMS parameters, one given twice. */
int gw_parse_uri(struct gw_exchange *x, char *uri, char *errmsg);

/* The query parameter name, or NULL. */
const char *gw_query(const struct gw_exchange *x, const char *name);

/* Set x->token from x->authorization (rv_token_from_header): NULL when
 * absent or empty, "" when malformed, else the token text. */
void gw_token_take(struct gw_exchange *x);

/* ---- The web UI (gateway_ui.c; the assets in ui_assets.c, generated
 * from ui/ by gateway/embed_ui.cmake) ---- */

struct gw_ui_asset {
    const char *url;  /* "/" or "/ui/<name>". */
    const char *type; /* Content-Type. */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* gzip -9n of data. */
    size_t gz_len;
    const char *etag; /* Quoted; from the SHA-256 of data. */
};

extern const struct gw_ui_asset gw_ui_assets[];
extern const size_t gw_ui_n_assets;

/* ---- Routing (gateway_route.c) ---- */

/* The path parameters a pattern can hold ({run}, {node}, {path}, {team},
 * {token}); the matcher extracts and checks each once (gw_params in
 * gateway_route.c). */
enum gw_param {
    GW_P_RUN,     /* {run}: one segment, a valid run id. */
    GW_P_NODE,    /* {node}: the rest of the path, a positive node id. */
    GW_P_PATH,    /* {path}: the rest of the path, an artifact path. */
    GW_P_TEAM,    /* {team}: one segment, a team name (400 if not). */
    GW_P_TOKEN,   /* {token}: one segment, a token id (404 if not). */
    GW_P_PROJECT, /* {project}: one segment, a project name (400 if not). */
    GW_N_PARAMS
};

/* What a handler sees: the exchange, the path parameters, and blocks it
 * allocates for its native request (freed when the exchange ends). One
 * per exchange, on the worker's stack. */
struct gw_ctx {
    struct gw_exchange *x;
    struct gw_block *blocks;
    char *param[GW_N_PARAMS]; /* In param_buf, or NULL if absent. */
    uint64_t node_id;         /* {node}, parsed. */
    char canon[GATEWAY_MAX_PATH_BYTES + 64]; /* Path after an alias. */
    char param_buf[GATEWAY_MAX_PATH_BYTES + 64 + GW_N_PARAMS];
    char errmsg[RV_ERRMSG_SIZE];
};

/* An endpoint. It answers through gw_reply_* (every path out of it sets
 * x->status); c and what it points at are valid during the call. */
typedef void (*gw_handler)(struct gw_ctx *c);

/* Route x by method and path and answer it (the table in
 * gateway_route.c). Worker thread (or the fuzzer's). */
void gw_route(struct gw_exchange *x);

/* Answer the error code with the message printf(fmt, ...) (kept in
 * c->errmsg). Returns -1, for "return gw__reject(...)". */
int gw__reject(struct gw_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* n zeroed bytes that live until the exchange ends, or NULL. */
void *gw__alloc(struct gw_ctx *c, size_t n);

/* Answer the native request (req borrowed) through the node: the
 * response, valid until the next call, or NULL when it failed and the
 * error answer is made. */
const Rv__Response *gw__call(struct gw_ctx *c, Rv__Request *req);
/* As gw__call (the exchange's token set on req), but nothing is answered:
 * the response whatever its code, valid until the next call. */
const Rv__Response *gw__call_quiet(struct gw_ctx *c, Rv__Request *req);

/* ---- Reads (gateway_read.c) ----
 * Each gw__q_* reads one query parameter; absent leaves the default (and
 * *is_set 0). On a bad value they answer 400 and return -1. */

int gw__q_i64(struct gw_ctx *c, const char *name, int64_t min, int64_t max,
              int64_t *out, int *is_set);
int gw__q_u64(struct gw_ctx *c, const char *name, uint64_t max, uint64_t *out,
              int *is_set);
/* A string parameter of at most max bytes, or NULL. */
int gw__q_str(struct gw_ctx *c, const char *name, size_t max, const char **out);
/* consistency= and min_index= into *ro (caller's), set as req->read. */
int gw__read_options(struct gw_ctx *c, Rv__Request *req, Rv__ReadOptions *ro);

/* This node's replica state, through the exchange's ops or the node's. */
void gw__info(struct gw_ctx *c, struct replica_info *info);
int gw__is_running(struct gw_ctx *c);

/* Milliseconds since the exchange started, rounded to 1/1024 ms. */
double gw__elapsed_ms(const struct gw_exchange *x);

/* A JSON number or the strings "NaN", "Infinity", "-Infinity". */
json_t *gw_json_double(double v);

/* ---- Writes (gateway_write.c) ----
 * Each check answers 400 (or 413) itself and returns -1; 0 when fine. */

/* The JSON object body (the route's body limit is already checked), or
 * NULL when answered. Caller json_decref()s it. */
json_t *gw__body(struct gw_ctx *c);
/* Only the listed members may appear; names ends with NULL. */
int gw__only(struct gw_ctx *c, json_t *obj, const char *where,
             const char *const *names);
/* A string member of at most max bytes; *out borrowed from obj. */
int gw__str(struct gw_ctx *c, json_t *obj, const char *name, int is_required,
            size_t max, char **out);
/* An integer member in [min, max]; absent leaves *out. */
int gw__int(struct gw_ctx *c, json_t *obj, const char *name, const char *where,
            int64_t min, int64_t max, int64_t *out);
/* 0 if key is a valid metric, param or tag key, else the 400 answered,
 * naming it as where, sep, "key" ("params key", "metrics[3].key"). */
int gw__key(struct gw_ctx *c, const char *where, const char *sep,
            const char *key);
/* params/tags: an object of string values -> KV pointers (gw__alloc'd). */
int gw__kvs(struct gw_ctx *c, json_t *obj, const char *name, size_t max_n,
            size_t max_value, Rv__KV ***out, size_t *n_out);
/* (client_id, seq) from the Idempotency-Key header, or the worker's. */
int gw__idempotency(struct gw_ctx *c, uint64_t *client_id, uint64_t *seq);
/* Read exactly n bytes (n <= the body left) of x's streamed body into buf.
 * 0, or -1 when the client went away or stalled (answered, and the
 * connection is closed after it). */
int gw_body_read(struct gw_exchange *x, void *buf, size_t n);
/* Start an answer written as it is made: status 200, type, length bytes to
 * follow; then gw_stream_write those bytes. -1 once writing failed (the
 * connection is dropped). */
int gw_stream_begin(struct gw_exchange *x, const char *type, uint64_t length);
int gw_stream_write(struct gw_exchange *x, const void *data, size_t n);
/* Stamp cmd with the request's idempotency pair; -1 when answered. */
int gw__stamp(struct gw_ctx *c, Rv__Command *cmd);
/* Send the commands as one write (durability= from the query); the
 * response, or NULL when the write or a command failed and is answered. */
const Rv__Response *gw__write(struct gw_ctx *c, Rv__Command **cmds, size_t n);
/* {"index": r->index} */
json_t *gw__index_reply(const Rv__Response *r);

/* ---- Runs (gateway_json_run.c) ---- */

/* 0 if id is a valid run id, else -1 with the 400 answered. */
int gw__run_id(struct gw_ctx *c, const char *id);
void gw_run_create(struct gw_ctx *c);
void gw_run_get(struct gw_ctx *c);
void gw_run_set_status(struct gw_ctx *c);
void gw_run_delete(struct gw_ctx *c);
void gw_run_restore(struct gw_ctx *c);
void gw_run_purge(struct gw_ctx *c);
void gw_run_list(struct gw_ctx *c);
void gw_run_search(struct gw_ctx *c);
void gw_run_analytics(struct gw_ctx *c);
/* A run's full JSON (params, tags, summary), or NULL (no memory). */
json_t *gw__run_full_json(const Rv__RunInfo *ri);

/* ---- Metrics (gateway_json_metric.c) ---- */

void gw_metric_log_batch(struct gw_ctx *c);
void gw_metric_histories(struct gw_ctx *c);
void gw_metric_history(struct gw_ctx *c);

/* ---- Log lines (gateway_json_log.c) ---- */

void gw_log_append(struct gw_ctx *c);
void gw_log_read(struct gw_ctx *c);

/* ---- Artifacts (gateway_json_artifact.c) ---- */

void gw_artifact_put(struct gw_ctx *c);
void gw_artifact_get(struct gw_ctx *c);
void gw_artifact_list(struct gw_ctx *c);

/* ---- Cluster (gateway_json_cluster.c) ---- */

void gw_cluster_get(struct gw_ctx *c);
void gw_cluster_node_add(struct gw_ctx *c);
void gw_cluster_node_remove(struct gw_ctx *c);
void gw_cluster_transfer(struct gw_ctx *c);

/* ---- Teams, quotas, tokens, audit (gateway_json_admin.c) ---- */

/* 0 if team is a team name (1 to CONTRACT_MAX_TEAM_BYTES bytes, not "*"),
 * else -1 with the 400 answered, naming it as where. */
int gw__team(struct gw_ctx *c, const char *where, const char *team);
/* 0 if id is a token id, else -1 with a 404 answered. */
int gw__token_id(struct gw_ctx *c, const char *id);
/* Send one admin command and answer status {key: value, "index"}. */
void gw__admin_write_answer(struct gw_ctx *c, Rv__Command *cmd, int status,
                            const char *key, const char *value);
/* An admin read of op with the read options; the response, or NULL when
 * answered. team narrows it (NULL: every team the token sees). */
const Rv__Response *gw__admin_read(struct gw_ctx *c, Rv__AdminOp op,
                                   const char *team, Rv__AdminRequest *ar);
/* team= of a read: NULL (absent or empty) or a team name ("*" too when
 * is_star_ok); -1 when answered. */
int gw__q_team(struct gw_ctx *c, int is_star_ok, const char **team);
void gw_admin_team_create(struct gw_ctx *c);
void gw_admin_team_list(struct gw_ctx *c);
void gw_admin_quota_put(struct gw_ctx *c);
void gw_admin_token_create(struct gw_ctx *c);
void gw_admin_token_list(struct gw_ctx *c);
void gw_admin_token_revoke(struct gw_ctx *c);
void gw_admin_whoami(struct gw_ctx *c);
void gw_admin_audit(struct gw_ctx *c);

/* ---- Retention (gateway_json_retention.c) ---- */
void gw_retention_put(struct gw_ctx *c);
void gw_retention_delete(struct gw_ctx *c);
void gw_retention_list(struct gw_ctx *c);
void gw_compact(struct gw_ctx *c);

/* ---- The web UI (gateway_ui.c) ---- */

/* GET / and /ui/{path}: an embedded asset (404 for any other name), 304
 * when If-None-Match names its ETag, gzip when Accept-Encoding allows it.
 * Open whatever the auth mode: the assets hold no run data (the page asks
 * the API for data with the user's token). */
void gw_ui_get(struct gw_ctx *c);
/* The page's Content-Security-Policy. */
extern const char gw_ui_csp_header[];
/* ---- MLflow REST 2.0 (gateway_mlflow*.c, DESIGN Appendix B.2) ----
 *   gateway_mlflow.c      arguments, experiments read, Experiment / Run JSON
 *   gateway_mlflow_exp.c  the experiments endpoints but search
 *   gateway_mlflow_search.c experiments/search: filter, order, pages
 *   gateway_mlflow_run.c  runs create, get, update, delete, restore, search
 *   gateway_mlflow_art.c  the artifact proxy, artifacts/list
 *   gateway_mlflow_log.c  log-batch, log-metric, log-parameter, set-tag,
 *                         delete-tag, metrics/get-history */

/* A dataset logged by runs/log-inputs is the run tag GW_MLF_DATASET_TAG
 * <digest> (letters, digits, '_', '-', '.') holding its DatasetInput JSON. */
#define GW_MLF_DATASET_TAG "mlflow.dataset."

/* An MLflow experiment as the runs endpoints need it. */
struct gw_mlx {
    uint64_t id;
    char team[CONTRACT_MAX_TEAM_BYTES + 1];
    char project[CONTRACT_MAX_SCOPE_BYTES + 1];
    char experiment[CONTRACT_MAX_SCOPE_BYTES + 1];
    char name[2 * CONTRACT_MAX_SCOPE_BYTES + 2];
    int is_deleted;
};

/* The request's arguments as a JSON object: a POST's body ({} when
 * empty), a GET's query parameters as strings. NULL when answered. */
json_t *gw__mlf_args(struct gw_ctx *c);
/* A string argument of at most max bytes (MLflow's messages). */
int gw__mlf_str(struct gw_ctx *c, json_t *j, const char *name, int is_required,
                size_t max, const char **out);
/* An integer argument, a JSON number or a decimal string, in [min, max]. */
int gw__mlf_i64(struct gw_ctx *c, json_t *j, const char *name, int64_t min,
                int64_t max, int64_t *out, int *is_set);
/* A decimal experiment id. */
int gw__mlf_exp_id(struct gw_ctx *c, const char *s, uint64_t *id);
/* run_view_type / view_type: ACTIVE_ONLY (default), DELETED_ONLY, ALL. */
int gw__mlf_view(struct gw_ctx *c, json_t *j, const char *name,
                 Rv__RunView *out);
/* MLflow's [{"key","value"}] array into KVs (gw__alloc'd). */
int gw__mlf_tags(struct gw_ctx *c, json_t *j, const char *name, size_t max_n,
                 Rv__KV ***out, size_t *n_out);
/* The experiments read (consistency= applies); NULL when answered. */
const Rv__Response *gw__mlf_exp_read(struct gw_ctx *c,
                                     Rv__MlflowExperimentsRequest *m);
/* Experiment id of the caller's team into *out (*full: the answer, valid
 * until the next call); -1 when answered (404 if none). */
int gw__mlf_exp_by_id(struct gw_ctx *c, uint64_t id, struct gw_mlx *out,
                      const Rv__MlflowExperiment **full);
void gw__mlx_set(struct gw_mlx *out, const Rv__MlflowExperiment *e);
/* The id of team's (project, experiment); nothing answered, -1 if none. */
int gw__mlf_exp_of_scope(struct gw_ctx *c, const char *team,
                         const char *project, const char *experiment,
                         uint64_t *id);
json_t *gw__mlf_exp_json(const Rv__MlflowExperiment *e);
const char *gw__mlf_status_name(int status);
int gw__mlf_status_parse(const char *s, Rv__RunStatus *out);
/* MLflow's RunInfo, and Run {"info","data","inputs"}, of ri in exp_id. */
json_t *gw__mlf_run_info_json(const Rv__RunInfo *ri, uint64_t exp_id);
json_t *gw__mlf_run_json(const Rv__RunInfo *ri, uint64_t exp_id);
/* Read run_id and answer {"run"} (or {"run_info"}); -1 when an error was
 * answered. */
int gw__mlf_reply_run(struct gw_ctx *c, const char *run_id, int is_info_only);
/* run_id (or run_uuid) of the request. */
int gw__mlf_run_id(struct gw_ctx *c, json_t *j, const char **out);
void gw__mlf_reply_empty(struct gw_ctx *c);
void gw__mlf_cat(struct rv_buf *b, const char *s);

void gw_mlf_exp_create(struct gw_ctx *c);
void gw_mlf_exp_get(struct gw_ctx *c);
void gw_mlf_exp_get_by_name(struct gw_ctx *c);
void gw_mlf_exp_search(struct gw_ctx *c);
void gw_mlf_exp_update(struct gw_ctx *c);
void gw_mlf_exp_delete(struct gw_ctx *c);
void gw_mlf_exp_restore(struct gw_ctx *c);
void gw_mlf_exp_set_tag(struct gw_ctx *c);
void gw_mlf_exp_delete_tag(struct gw_ctx *c);
void gw_mlf_run_create(struct gw_ctx *c);
void gw_mlf_run_get(struct gw_ctx *c);
void gw_mlf_run_update(struct gw_ctx *c);
void gw_mlf_run_delete(struct gw_ctx *c);
void gw_mlf_run_restore(struct gw_ctx *c);
void gw_mlf_run_search(struct gw_ctx *c);
void gw_mlf_log_batch(struct gw_ctx *c);
void gw_mlf_log_metric(struct gw_ctx *c);
void gw_mlf_log_param(struct gw_ctx *c);
void gw_mlf_set_tag(struct gw_ctx *c);
void gw_mlf_delete_tag(struct gw_ctx *c);
void gw_mlf_log_inputs(struct gw_ctx *c);
void gw_mlf_get_history(struct gw_ctx *c);
void gw_mlf_history_bulk(struct gw_ctx *c);
void gw_mlf_art_put(struct gw_ctx *c);
void gw_mlf_art_get(struct gw_ctx *c);
void gw_mlf_art_list(struct gw_ctx *c);
void gw_mlf_art_list_run(struct gw_ctx *c);

/* ---- Operations (gateway_json_ops.c) ---- */

void gw_ops_healthz(struct gw_ctx *c);
void gw_ops_readyz(struct gw_ctx *c);
void gw_ops_metrics(struct gw_ctx *c);
void gw_ops_config(struct gw_ctx *c);
/* Count x's answer (status class, latency) under its route. Any thread. */
void gw__count(struct gateway *g, const struct gw_exchange *x);
/* Prometheus text into out. Any thread. */
void gw_metrics_text(struct gateway *g, struct rv_buf *out);

#endif /* RV_GATEWAY_GATEWAY_INT_H */
