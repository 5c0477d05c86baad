/* The HTTP/JSON gateway: nng's HTTP server on every node, serving the
 * endpoints of DESIGN §8 and Appendix A (docs/HTTP.md lists them with
 * their shapes), plus /healthz, /readyz and /metrics (Prometheus text).
 *
 * Each request is checked at the door (sizes, counts, UTF-8, key syntax,
 * numbers; DESIGN §2 and §9), turned into the native rv.Request and
 * answered in-process by the RPC layer (rpc_caller_answer), which forwards
 * writes and leader reads to the leader when this node follows. A bad
 * request changes nothing and gets {"error_code","message"} with the
 * status of one mapping table (gateway_status_of).
 *
 * Threads: nng's HTTP threads only queue requests (bounded: a full queue
 * answers 429); GATEWAY_DEFAULT_WORKERS threads answer them, each with its
 * own rpc_caller. */
#ifndef RV_GATEWAY_GATEWAY_H
#define RV_GATEWAY_GATEWAY_H

#include "base/log.h"
#include "rpc/server.h"

#include <stdint.h>

#define GATEWAY_DEFAULT_WORKERS     32
#define GATEWAY_MAX_QUEUED          4096        /* Requests waiting. */
#define GATEWAY_MAX_JSON_BODY       (1u << 20)  /* DESIGN §2. */
#define GATEWAY_MAX_RAW_BODY        (16u << 20) /* Artifact PUT. */
#define GATEWAY_BODY_TIMEOUT_MS     60000       /* A streamed body's stall. */
#define GATEWAY_MAX_METRICS         1000        /* Per log-batch request. */
#define GATEWAY_MAX_LOG_LINES       1000        /* Per logs request. */
#define GATEWAY_MAX_HISTORY_RUNS    100         /* Per metrics query. */
#define GATEWAY_MAX_QUERY_PARAMS    32
#define GATEWAY_MAX_PATH_BYTES      2048
#define GATEWAY_MAX_FILTER_BYTES    8192
#define GATEWAY_MAX_IDEMPOTENCY_KEY 64

/* The request target, path and query. nng reads a request line of at most
 * 8 KiB and drops the connection beyond; a longer filter goes in a body
 * (POST /api/v2/experiments/search). The path alone is at most
 * GATEWAY_MAX_PATH_BYTES. */
#define GATEWAY_MAX_TARGET_BYTES 8192

struct rvc_tls;

struct gateway_config {
    const char *http_addr;     /* "IP:PORT" to listen on. */
    const struct rvc_tls *tls; /* https with this (rpc/client/tls.h; must
                                  outlive the gateway); NULL: http. */
    struct rpc_server *rpc;    /* Answers the requests. Borrowed. */
    const char *rpc_addr;      /* This node's addresses, for /api/config. */
    const char *raft_addr;
    const char *data_dir; /* For disk use in /metrics. */
    unsigned n_workers;   /* 0 = GATEWAY_DEFAULT_WORKERS. */
    const struct rv_log *log;
};

struct gateway;

/* Listen and serve. Errors: RV_EINVAL (address), RV_EIO (cannot listen),
 * RV_ENOMEM. Strings of cfg are copied. */
int gateway_start(struct gateway **out, const struct gateway_config *cfg,
                  char *errmsg);

/* Stop listening, answer what is queued with 503, join the workers, free.
 * NULL is allowed. */
void gateway_stop(struct gateway *g);

/* The HTTP status and MLflow-style error_code for an RV_* code: the one
 * table every error answer goes through. */
int gateway_status_of(int code, const char **error_code);

#endif /* RV_GATEWAY_GATEWAY_H */
