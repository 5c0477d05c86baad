/* Inside the gateway: one HTTP exchange as the endpoint handlers see it,
 * the response helpers and the counters /metrics reports. */
#ifndef RV_GATEWAY_GATEWAY_INT_H
#define RV_GATEWAY_GATEWAY_INT_H

#include "base/buf.h"
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
    X(GW_R_RESTORE, "restore_run")

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
    const char *content_type;    /* Header, or NULL. */
    uint64_t worker_client_id;   /* For writes without a key. */
    uint64_t *worker_seq;
    uint64_t start_us;
    enum gw_route route;
    /* The answer. */
    int status;
    const char *out_type; /* Content-Type; static or type_buf. */
    char type_buf[256];
    const char *allow; /* Allow header of a 405, static. */
    struct rv_buf out;
    int is_retry_after;
};

struct gateway {
    struct gateway_config cfg;
    char http_addr[128], rpc_addr[128], raft_addr[128];
    char *data_dir;
    struct gw_stats stats;
    uint64_t boot_client_base; /* Random, per boot. */
};

/* ---- Answers (gateway.c) ---- */

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

/* Prometheus text into out. */
void gw_metrics_text(struct gateway *g, struct rv_buf *out);

/* ---- Endpoints (gateway_route.c) ---- */

/* Route x by method and path and answer it. */
void gw_route(struct gw_exchange *x);

/* A JSON number or the strings "NaN", "Infinity", "-Infinity". */
json_t *gw_json_double(double v);

#endif /* RV_GATEWAY_GATEWAY_INT_H */
