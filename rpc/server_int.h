/* The RPC server's state, shared by the files of its answering path (never
 * included from outside rpc/):
 *
 *   answer.c   rpc_caller_answer and the checks at the door; writes, the
 *              read gate (consistency, min_index), the replica's status
 *   encode.c   store -> protobuf: one answer struct per kind of response
 *   cluster.c  node and cluster status, membership changes, removal notice
 *   forward.c  following the leader: its address, waiting for one during an
 *              election, forwarding an in-process request
 *   listen.c   the nng REP socket and its worker threads
 *
 * A reply is the protobuf response plus what its fields point to: the
 * message and leader hint, and one body owned by the reply (an
 * rpc__*_answer of encode.c or cluster.c) freed with it. */
#ifndef RV_RPC_SERVER_INT_H
#define RV_RPC_SERVER_INT_H

#include "base/token.h"
#include "rpc/server.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>

struct rvc;
struct rpc_worker;

struct rpc_reply {
    Rv__Response resp;
    char message[RV_ERRMSG_SIZE];
    char leader_rpc[CONTRACT_MAX_ADDR_BYTES + 1];
    Rv__Principal principal; /* whoami: points at p_*. */
    char p_id[CONTRACT_TOKEN_ID_CHARS + 1];
    char p_team[CONTRACT_MAX_TEAM_BYTES + 1];
    char p_name[CONTRACT_MAX_TOKEN_NAME_BYTES + 1];
    void *body; /* Owned: freed with body_free. */
    void (*body_free)(void *body);
};

/* A thread's state for answering requests: the wait for the loop, the
 * packed commands of a write, the members' addresses, the connection to
 * the leader for forwarding, and the last answer. */
struct rpc_caller {
    struct rpc_server *s;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int is_done;
    struct rv_buf packed;
    int is_forwarding; /* In-process callers forward; native workers
                          answer RV_ENOTLEADER with the leader's address. */
    struct rvc *fwd;   /* To the leader; NULL until a first forward. */
    char fwd_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    struct store_node *known; /* Members' addresses from the store, loaded
                                 on demand; the reply may point into it. */
    size_t n_known;
    struct rpc_reply rp;
    int has_rp;
    Rv__Response *fwd_resp; /* The leader's answer, when forwarded. */
    int is_peer; /* The request came over a TLS pipe whose certificate the
                    cluster CA signed (listen.c sets it per request): a
                    peer node, allowed the node-to-node requests. */
};

/* The caller of one request, once authenticated (auth.c). */
#define RPC_ROLE_NONE (-1) /* A peer node without a token. */
struct rpc_principal {
    int is_open; /* Auth is off: cluster-admin of team "default". */
    int is_peer; /* A CA-verified node speaking for itself. */
    int role;    /* Rv__Role, or RPC_ROLE_NONE. */
    char token_id[CONTRACT_TOKEN_ID_CHARS + 1];
    char team[CONTRACT_MAX_TEAM_BYTES + 1];
    char name[CONTRACT_MAX_TOKEN_NAME_BYTES + 1];
};

/* A team's points/s token bucket on the leader (auth.c). */
#define RPC_BUCKETS 64
struct rpc_bucket {
    char team[CONTRACT_MAX_TEAM_BYTES + 1]; /* "" = free. */
    uint64_t rate;                          /* 0: no limit. */
    double tokens;
    uint64_t last_ms, read_ms, used_ms;
};

struct rpc_server {
    nng_socket sock;
    int is_auth_on;          /* This node was started with auth on. */
    atomic_int is_auth_seen; /* auth_on is applied in the store. */
    char node_token[RV_TOKEN_TEXT_CHARS + 1]; /* "" if none. */
    pthread_mutex_t bucket_lock;
    struct rpc_bucket buckets[RPC_BUCKETS];
    struct replica *rep;
    const struct rv_log *log;
    struct rpc_worker *workers;
    unsigned n_workers;
    char addr[CONTRACT_MAX_ADDR_BYTES + 1]; /* Ours: never a forwarding hop. */
    _Atomic uint64_t n_requests, n_forwarded, n_forward_failed;
    const struct rvc_tls *tls;   /* Borrowed; NULL without TLS. */
    struct rpc_backups *backups; /* backup.c */
};

/* ---- encode.c: replies -------------------------------------------------- */

/* Start rp as an empty RV_OK answer (no body). */
void rpc__reply_init(struct rpc_reply *rp);

/* Free what rp owns (its body and the arrays the response points to); rp
 * itself is the caller's. */
void rpc__reply_clean(struct rpc_reply *rp);

/* Make rp answer code with msg (NULL or "": the code's text). */
void rpc__fail(struct rpc_reply *rp, int code, const char *msg);

/* A zeroed body of size bytes owned by rp, freed with body_free (which
 * frees what the body holds, then the body). NULL when out of memory. rp
 * holds one body. */
void *rpc__reply_body(struct rpc_reply *rp, size_t size,
                      void (*body_free)(void *body));

/* The results of a write (taking ownership of results, n of them: their
 * strings stay where the response points) into rp. */
void rpc__write_results(struct rpc_reply *rp, struct store_result *results,
                        size_t n);

/* Answer a read this node may serve (the gate passed) from st, seeing
 * team's data only (STORE_EVERY_TEAM: all). Admin reads included. */
void rpc__read_store(struct store *st, const char *team, const Rv__Request *req,
                     struct rpc_reply *rp);

/* encode_admin.c: teams, tokens or audit events of q into rp. */
int rpc__admin_read(struct store_read *rd, const Rv__AdminRequest *q,
                    struct rpc_reply *rp, char *errmsg);

/* encode_mlflow.c: MLflow experiments of m into rp. */
int rpc__mlflow_read(struct store_read *rd,
                     const Rv__MlflowExperimentsRequest *m,
                     struct rpc_reply *rp, char *errmsg);
/* The store's view of a request's RunView (unset: active runs). */
enum store_view rpc__run_view(int has, Rv__RunView v);

/* ---- backup.c: the sessions of `runvault backup` ----------------------- */
struct rpc_backups;
int rpc__backup_init(struct rpc_server *s);   /* RV_OK or RV_ENOMEM. */
void rpc__backup_close(struct rpc_server *s); /* Ends every session. */
/* The door's check of a BackupRequest (bounds, op, names). */
int rpc__backup_check(const Rv__BackupRequest *b, char *errmsg);
/* Answer an admitted BackupRequest. */
void rpc__backup(struct rpc_server *s, const Rv__BackupRequest *q,
                 struct rpc_reply *rp);

/* Answer a fetch that passed rpc_request_check, from st. */
void rpc__fetch(struct store *st, const Rv__FetchRequest *f,
                struct rpc_reply *rp);

/* ---- auth.c: who is calling, and may they -------------------------------- */

/* Set up s's auth state: auth on (deny until rpc_server_set_auth says
 * otherwise), no node token, empty buckets. rpc__auth_close undoes it. */
void rpc__auth_init(struct rpc_server *s);
void rpc__auth_close(struct rpc_server *s);
/* 1 if this node requires tokens: started with auth on, or auth_on is
 * applied in its store (or it cannot read its store). */
int rpc__auth_is_on(struct rpc_caller *c);
/* The principal of req's token on this node, now. Auth off: the open
 * principal. Errors: RV_EUNAUTHENTICATED (no, malformed, unknown, wrong,
 * revoked or expired token), store faults. */
int rpc__authenticate(struct rpc_caller *c, const Rv__Request *req,
                      struct rpc_principal *p, char *errmsg);
/* May p make req? Writes: node-only commands (membership, auth_on) from
 * a peer or a cluster-admin (each command is judged again at apply);
 * fetch and cluster changes: a peer or a cluster-admin; tokens and audit:
 * admin. A forwarded request is its client's, never its forwarder's. RV_OK
 * or RV_EPERM. */
int rpc__authorise(const Rv__Request *req, const struct rpc_principal *p,
                   char *errmsg);
/* The team a principal's reads see (STORE_EVERY_TEAM for cluster-admin). */
const char *rpc__scope(const struct rpc_principal *p);
void rpc__whoami(const struct rpc_principal *p, struct rpc_reply *rp);
/* The checks of a write's token commands that need no store. */
int rpc__write_stamp_check(const Rv__WriteRequest *wr, char *errmsg);
/* Leader admission of n_points for team (token bucket at the team's
 * max_points_per_s). RV_OK or RV_ERATE with *retry_after_s. */
int rpc__admit_points(struct rpc_server *s, const char *team, uint64_t n_points,
                      uint32_t *retry_after_s, char *errmsg);

/* ---- answer.c: the replica ---------------------------------------------- */

/* 1 if req is a read of the store (get_run, list_runs, history, logs,
 * analytics, artifact), which consistency and min_index apply to. */
int rpc__is_read(const Rv__Request *req);

/* Hand op to the replica and wait until it is done (caller's thread). */
void rpc__run_op(struct rpc_caller *c, struct replica_op *op);

/* Answer one checked or unchecked request into rp (no forwarding). */
void rpc__handle(struct rpc_caller *c, const Rv__Request *req,
                 struct rpc_reply *rp);

/* Free the last answer of c and the members it loaded. */
void rpc__caller_reset(struct rpc_caller *c);
void rpc__caller_init(struct rpc_caller *c, struct rpc_server *s);
void rpc__caller_close(struct rpc_caller *c);

/* ---- cluster.c: status and membership ----------------------------------- */

/* The change a cluster request other than CLUSTER_STATUS asks for, into
 * *op; RV_EINVAL with the reason in errmsg if its arguments are wrong. */
int rpc__cluster_op(const Rv__ClusterRequest *cr, struct replica_op *op,
                    char *errmsg);

/* This node's status (BODY_STATUS) and a cluster request, into rp. */
void rpc__status(struct rpc_caller *c, struct rpc_reply *rp);
void rpc__cluster(struct rpc_caller *c, const Rv__ClusterRequest *cr,
                  struct rpc_reply *rp);

/* ---- forward.c: the leader ---------------------------------------------- */

/* Load the members' addresses recorded in the store into c (once per
 * answer; on failure the list stays empty). */
void rpc__load_known(struct rpc_caller *c);

/* The recorded addresses of node id, or NULL. */
const struct store_node *rpc__known(const struct rpc_caller *c, uint64_t id);

/* Make rp RV_ENOTLEADER with the leader's id and RPC address if known. */
void rpc__not_leader(struct rpc_caller *c, struct rpc_reply *rp);

/* The answer of an in-process request that was answered RV_ENOTLEADER in
 * c->rp: wait for a leader, forward req to it and return its answer, or
 * return c->rp's (possibly re-answered) response. */
const Rv__Response *rpc__follow_leader(struct rpc_caller *c, Rv__Request *req);

/* 1 if req may be forwarded to the leader (not yet forwarded; a write, a
 * cluster change, or a read that is not stale). */
int rpc__is_forwardable(const Rv__Request *req);

#endif /* RV_RPC_SERVER_INT_H */
