/* Cross-cutting tests of authentication and authorisation (issue 13,
 * DESIGN §11 and Appendix B.1) on real `runvault serve --auth on`
 * processes on loopback: the bootstrap token, the authorisation matrix
 * (every request kind x principal x path, generated from one table),
 * isolation under the filter language, revocation and expiry on 3 nodes,
 * quotas under concurrent writers, the audit log, and the refusal of auth
 * off on a non-loopback address.
 *
 * One 3-node cluster serves every test but "insecure"; the first test
 * that needs it sets it up (teams t0..t9, a reader, writer and admin token
 * per team, runs in every team). The HTTP column of the matrix runs only
 * with RV_TEST_AUTH_HTTP=1 (it needs the gateway's auth work).
 *
 * Usage: test_auth PATH/TO/runvault [TEST]. Every wait is bounded. */
#define _GNU_SOURCE /* memmem */
#include "base/clock.h"
#include "base/err.h"
#include "base/exit.h"
#include "base/token.h"
#include "gateway/gateway.h"
#include "proto/runvault.pb-c.h"
#include "rpc/client/client.h"
#include "tests/lib/cluster.h"
#include "tests/lib/harness.h"

#include <fcntl.h>
#include <ftw.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* As CHECK_RC, in a function that returns int (-1 on failure). */
#define CHECK_RC_I(expr, want, errmsg)                                        \
    do {                                                                      \
        int rv_rc_ = (expr);                                                  \
        if (rv_rc_ != (want)) {                                               \
            RV_CHECK_FAIL("%s = %s, want %s (%s)", #expr, rv_errname(rv_rc_), \
                          rv_errname(want), (errmsg));                        \
            return -1;                                                        \
        }                                                                     \
    } while (0)

#define CALL_MS    5000
#define N_TEAMS    10
#define MAX_POINTS 256
#define FP_BYTES   8192

/* ---- Principals ---------------------------------------------------------- */

struct tok {
    char text[RV_TOKEN_TEXT_CHARS + 1];
    char id[RV_TOKEN_ID_CHARS + 1];
    uint8_t sha[RV_TOKEN_SHA256];
};

enum { ROLE_R, ROLE_W, ROLE_A };

/* The matrix's principals: five that are refused, then five real ones. */
enum {
    P_NONE,
    P_MALFORMED,
    P_UNKNOWN,
    P_REVOKED,
    P_EXPIRED,
    P_R0,
    P_W0,
    P_A0,
    P_A1,
    P_CA,
    P_N
};

static const char *const p_names[P_N] = {
    "none",      "malformed", "unknown",  "revoked",  "expired",
    "t0-reader", "t0-writer", "t0-admin", "t1-admin", "cluster-admin"};

static struct cluster C;
static int is_setup, is_setup_failed;
static int L = -1, F = -1; /* The leader's and a follower's index. */
static struct tok ca;      /* The bootstrap cluster-admin. */
static struct tok team_tok[N_TEAMS][3];
static struct tok revoked_tok, expired_tok, unknown_tok;
static int64_t expired_made_ms;
static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_index; /* The highest write index seen. */
static int is_quota_done, is_revoke_done, is_matrix_done;
static uint64_t revoke_index;

static const char *const team_names[N_TEAMS] = {"t0", "t1", "t2", "t3", "t4",
                                                "t5", "t6", "t7", "t8", "t9"};

static const char *
p_token(int p)
{
    switch (p) {
    case P_NONE:
        return NULL;
    case P_MALFORMED:
        return "rvt_notatoken";
    case P_UNKNOWN:
        return unknown_tok.text;
    case P_REVOKED:
        return revoked_tok.text;
    case P_EXPIRED:
        return expired_tok.text;
    case P_R0:
        return team_tok[0][ROLE_R].text;
    case P_W0:
        return team_tok[0][ROLE_W].text;
    case P_A0:
        return team_tok[0][ROLE_A].text;
    case P_A1:
        return team_tok[1][ROLE_A].text;
    default:
        return ca.text;
    }
}

static void
index_seen(uint64_t index)
{
    pthread_mutex_lock(&index_lock);
    if (index > last_index)
        last_index = index;
    pthread_mutex_unlock(&index_lock);
}

static uint64_t
index_last(void)
{
    pthread_mutex_lock(&index_lock);
    uint64_t i = last_index;
    pthread_mutex_unlock(&index_lock);
    return i;
}

/* ---- Calls ----------------------------------------------------------------
 */

/* One request to node i with token (NULL: none). The transport's code. */
static int
call(int i, Rv__Request *req, const char *token, Rv__Response **resp,
     char *errmsg)
{
    req->token = (char *)token;
    *resp = NULL;
    int rc = rvc_call_once(C.nodes[i].rpc, req, CALL_MS, resp, errmsg);
    req->token = NULL;
    return rc;
}

/* The outcome of one write: the transport's code, else the response's,
 * else its first command's. */
struct wres {
    int code;
    uint64_t index;
    uint32_t retry_after_s;
    char msg[RV_ERRMSG_SIZE];
    char leader_rpc[64];
};

static int
write_cmd(int i, const char *token, Rv__Command *cmd, struct wres *w)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    Rv__Command *cmds[1] = {cmd};
    Rv__Response *resp;
    memset(w, 0, sizeof *w);
    wr.n_commands = 1;
    wr.commands = cmds;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    int rc = call(i, &req, token, &resp, w->msg);
    if (rc != RV_OK)
        return w->code = rc;
    w->code = (int)resp->code;
    snprintf(w->msg, sizeof w->msg, "%s", resp->message ? resp->message : "");
    snprintf(w->leader_rpc, sizeof w->leader_rpc, "%s",
             resp->leader_rpc ? resp->leader_rpc : "");
    w->retry_after_s = resp->has_retry_after_s ? resp->retry_after_s : 0;
    if (resp->has_index) {
        w->index = resp->index;
        index_seen(resp->index);
    }
    if (w->code == RV_OK && resp->n_results > 0) {
        w->code = (int)resp->results[0]->code;
        snprintf(w->msg, sizeof w->msg, "%s",
                 resp->results[0]->message ? resp->results[0]->message : "");
    }
    rvc_response_free(resp);
    return w->code;
}

/* A read of node i; is_stale asks for a stale read at the last index
 * written (a follower's path). */
static int
read_req(int i, Rv__Request *req, const char *token, int is_stale,
         Rv__Response **resp, char *errmsg)
{
    Rv__ReadOptions ro = RV__READ_OPTIONS__INIT;
    if (is_stale) {
        ro.has_consistency = 1;
        ro.consistency = RV__CONSISTENCY__STALE;
        ro.has_min_index = 1;
        ro.min_index = index_last();
        req->read = &ro;
    }
    int rc = call(i, req, token, resp, errmsg);
    req->read = NULL;
    if (rc == RV_OK && (*resp)->code != RV_OK)
        snprintf(errmsg, RV_ERRMSG_SIZE, "%s",
                 (*resp)->message ? (*resp)->message : "");
    return rc == RV_OK ? (int)(*resp)->code : rc;
}

/* ---- Commands -------------------------------------------------------------
 */

/* Storage for one command of any kind (pointers into itself). */
struct cmdb {
    Rv__Command cmd;
    Rv__RunCreate rc;
    Rv__KV kv[2];
    Rv__KV *params[1], *tags[1];
    Rv__LogBatch lb;
    Rv__Metrics m;
    char *keys[1];
    uint32_t kidx[MAX_POINTS];
    int64_t steps[MAX_POINTS], ts[MAX_POINTS];
    double vals[MAX_POINTS];
    Rv__LogLines ll;
    Rv__LogLine line;
    Rv__LogLine *lines[1];
    Rv__ArtifactChunk ac;
    uint8_t sha[RV_TOKEN_SHA256];
    Rv__RunSetStatus rs;
    Rv__RunUpdate ru;
    Rv__RunRef ref;
    Rv__TeamPut tp;
    Rv__QuotaPut qp;
    Rv__TokenPut tkp;
    Rv__TokenDel td;
    Rv__NodePut np;
};

static Rv__Command *
cmd_init(struct cmdb *b)
{
    memset(b, 0, sizeof *b);
    b->cmd = (Rv__Command)RV__COMMAND__INIT;
    return &b->cmd;
}

/* A run_create of run in team (NULL: the token's), with param x and tag
 * owner when x is not NULL. */
static Rv__Command *
cmd_run_create(struct cmdb *b, const char *run, const char *team, const char *x,
               int resume)
{
    Rv__Command *c = cmd_init(b);
    b->rc = (Rv__RunCreate)RV__RUN_CREATE__INIT;
    b->rc.run_id = (char *)run;
    b->rc.team = (char *)team;
    b->rc.project = "proj";
    b->rc.experiment = "exp";
    b->rc.name = (char *)run;
    if (x != NULL) {
        b->kv[0] = (Rv__KV)RV__KV__INIT;
        b->kv[0].key = "x";
        b->kv[0].value = (char *)x;
        b->kv[1] = (Rv__KV)RV__KV__INIT;
        b->kv[1].key = "owner";
        b->kv[1].value = "alice";
        b->params[0] = &b->kv[0];
        b->tags[0] = &b->kv[1];
        b->rc.n_params = b->rc.n_tags = 1;
        b->rc.params = b->params;
        b->rc.tags = b->tags;
    }
    if (resume) {
        b->rc.has_resume = 1;
        b->rc.resume = RV__RESUME__RESUME_ALLOW;
    }
    c->body_case = RV__COMMAND__BODY_RUN_CREATE;
    c->run_create = &b->rc;
    return c;
}

/* n points (n <= MAX_POINTS) of key from step0, each of value v. */
static Rv__Command *
cmd_log_batch(struct cmdb *b, const char *run, const char *key, size_t n,
              int64_t step0, double v)
{
    Rv__Command *c = cmd_init(b);
    b->lb = (Rv__LogBatch)RV__LOG_BATCH__INIT;
    b->m = (Rv__Metrics)RV__METRICS__INIT;
    b->keys[0] = (char *)key;
    for (size_t k = 0; k < n; k++) {
        b->steps[k] = step0 + (int64_t)k;
        b->ts[k] = 1700000000000 + step0 + (int64_t)k;
        b->vals[k] = v;
    }
    b->m.n_keys = 1;
    b->m.keys = b->keys;
    b->m.n_key_idx = b->m.n_steps = b->m.n_timestamps_ms = b->m.n_values = n;
    b->m.key_idx = b->kidx;
    b->m.steps = b->steps;
    b->m.timestamps_ms = b->ts;
    b->m.values = b->vals;
    b->lb.run_id = (char *)run;
    b->lb.metrics = &b->m;
    c->body_case = RV__COMMAND__BODY_LOG_BATCH;
    c->log_batch = &b->lb;
    return c;
}

static Rv__Command *
cmd_log_lines(struct cmdb *b, const char *run, const char *text)
{
    Rv__Command *c = cmd_init(b);
    b->ll = (Rv__LogLines)RV__LOG_LINES__INIT;
    b->line = (Rv__LogLine)RV__LOG_LINE__INIT;
    b->line.timestamp_ms = 1700000000000;
    b->line.text = (char *)text;
    b->lines[0] = &b->line;
    b->ll.run_id = (char *)run;
    b->ll.n_lines = 1;
    b->ll.lines = b->lines;
    c->body_case = RV__COMMAND__BODY_LOG_LINES;
    c->log_lines = &b->ll;
    return c;
}

/* A whole artifact in one chunk (data borrowed). */
static Rv__Command *
cmd_artifact(struct cmdb *b, const char *run, const char *path,
             const char *data)
{
    Rv__Command *c = cmd_init(b);
    size_t n = strlen(data);
    b->ac = (Rv__ArtifactChunk)RV__ARTIFACT_CHUNK__INIT;
    rv_token_hash(data, n, b->sha); /* SHA-256 of the bytes */
    b->ac.run_id = (char *)run;
    b->ac.path = (char *)path;
    b->ac.content_type = "application/octet-stream";
    b->ac.data.data = (uint8_t *)data;
    b->ac.data.len = n;
    b->ac.has_is_last = b->ac.is_last = 1;
    b->ac.has_sha256 = 1;
    b->ac.sha256.data = b->sha;
    b->ac.sha256.len = RV_TOKEN_SHA256;
    c->body_case = RV__COMMAND__BODY_ARTIFACT_CHUNK;
    c->artifact_chunk = &b->ac;
    return c;
}

static Rv__Command *
cmd_run_status(struct cmdb *b, const char *run)
{
    Rv__Command *c = cmd_init(b);
    b->rs = (Rv__RunSetStatus)RV__RUN_SET_STATUS__INIT;
    b->rs.run_id = (char *)run;
    b->rs.status = RV__RUN_STATUS__FINISHED;
    c->body_case = RV__COMMAND__BODY_RUN_STATUS;
    c->run_status = &b->rs;
    return c;
}

static Rv__Command *
cmd_run_update(struct cmdb *b, const char *run, const char *name)
{
    Rv__Command *c = cmd_init(b);
    b->ru = (Rv__RunUpdate)RV__RUN_UPDATE__INIT;
    b->ru.run_id = (char *)run;
    b->ru.name = (char *)name;
    c->body_case = RV__COMMAND__BODY_RUN_UPDATE;
    c->run_update = &b->ru;
    return c;
}

/* run_delete, run_restore or run_purge (body). */
static Rv__Command *
cmd_run_ref(struct cmdb *b, const char *run, Rv__Command__BodyCase body)
{
    Rv__Command *c = cmd_init(b);
    b->ref = (Rv__RunRef)RV__RUN_REF__INIT;
    b->ref.run_id = (char *)run;
    c->body_case = body;
    if (body == RV__COMMAND__BODY_RUN_DELETE)
        c->run_delete = &b->ref;
    else if (body == RV__COMMAND__BODY_RUN_RESTORE)
        c->run_restore = &b->ref;
    else
        c->run_purge = &b->ref;
    return c;
}

static Rv__Command *
cmd_team_put(struct cmdb *b, const char *team)
{
    Rv__Command *c = cmd_init(b);
    b->tp = (Rv__TeamPut)RV__TEAM_PUT__INIT;
    b->tp.team = (char *)team;
    c->body_case = RV__COMMAND__BODY_TEAM_PUT;
    c->team_put = &b->tp;
    return c;
}

#define UNSET UINT64_MAX

/* A quota_put; UNSET leaves a limit alone. */
static Rv__Command *
cmd_quota_put(struct cmdb *b, const char *team, uint64_t runs, uint64_t bytes,
              uint64_t pps)
{
    Rv__Command *c = cmd_init(b);
    b->qp = (Rv__QuotaPut)RV__QUOTA_PUT__INIT;
    b->qp.team = (char *)team;
    b->qp.has_max_runs = runs != UNSET;
    b->qp.max_runs = runs != UNSET ? runs : 0;
    b->qp.has_max_bytes = bytes != UNSET;
    b->qp.max_bytes = bytes != UNSET ? bytes : 0;
    b->qp.has_max_points_per_s = pps != UNSET;
    b->qp.max_points_per_s = pps != UNSET ? pps : 0;
    c->body_case = RV__COMMAND__BODY_QUOTA_PUT;
    c->quota_put = &b->qp;
    return c;
}

/* A token_put of t (made here) for team and role; expires_in_s 0: never. */
static Rv__Command *
cmd_token_put(struct cmdb *b, struct tok *t, const char *team, int role,
              uint64_t expires_in_s)
{
    Rv__Command *c = cmd_init(b);
    if (rv_token_make(t->text, t->id, t->sha) != RV_OK)
        abort();
    b->tkp = (Rv__TokenPut)RV__TOKEN_PUT__INIT;
    b->tkp.token_sha256.data = t->sha;
    b->tkp.token_sha256.len = RV_TOKEN_SHA256;
    b->tkp.team = (char *)team;
    b->tkp.has_role = 1;
    b->tkp.role = (Rv__Role)role;
    b->tkp.token_id = t->id;
    b->tkp.name = "test";
    b->tkp.has_expires_in_s = expires_in_s > 0;
    b->tkp.expires_in_s = expires_in_s;
    c->body_case = RV__COMMAND__BODY_TOKEN_PUT;
    c->token_put = &b->tkp;
    return c;
}

static Rv__Command *
cmd_token_del(struct cmdb *b, const char *id)
{
    Rv__Command *c = cmd_init(b);
    b->td = (Rv__TokenDel)RV__TOKEN_DEL__INIT;
    b->td.token_id = (char *)id;
    c->body_case = RV__COMMAND__BODY_TOKEN_DEL;
    c->token_del = &b->td;
    return c;
}

/* Node i's own record, unchanged (a cluster-admin may write it). */
static Rv__Command *
cmd_node_put(struct cmdb *b, int i)
{
    static char http[CLUSTER_MAX_NODES][32];
    Rv__Command *c = cmd_init(b);
    snprintf(http[i], sizeof http[i], "127.0.0.1:%d", C.port + 10 * i);
    b->np = (Rv__NodePut)RV__NODE_PUT__INIT;
    b->np.id = (uint64_t)C.nodes[i].id;
    b->np.raft_addr = C.nodes[i].raft;
    b->np.rpc_addr = C.nodes[i].rpc;
    b->np.http_addr = http[i];
    c->body_case = RV__COMMAND__BODY_NODE_PUT;
    c->node_put = &b->np;
    return c;
}

/* Make a token for team/role as by (a token text) on the leader. */
static int
token_new(const char *by, struct tok *t, const char *team, int role,
          uint64_t expires_in_s, struct wres *w)
{
    struct cmdb b;
    return write_cmd(L, by, cmd_token_put(&b, t, team, role, expires_in_s), w);
}

/* ---- Reads as helpers -------------------------------------------------- */

static int
get_run(int i, const char *token, int is_stale, const char *run,
        Rv__Response **resp, char *errmsg)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    gr.run_id = (char *)run;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    return read_req(i, &req, token, is_stale, resp, errmsg);
}

static int
admin_read(int i, const char *token, int is_stale, Rv__AdminOp op,
           const char *team, Rv__Response **resp, char *errmsg)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    ar.op = op;
    ar.team = (char *)team;
    if (op == RV__ADMIN_OP__ADMIN_AUDIT) {
        ar.has_max_events = 1;
        ar.max_events = 1000;
    }
    req.body_case = RV__REQUEST__BODY_ADMIN;
    req.admin = &ar;
    return read_req(i, &req, token, is_stale, resp, errmsg);
}

static int
list_runs(int i, const char *token, int is_stale, const char *team,
          const char *filter, const char *order_by, Rv__Response **resp,
          char *errmsg)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ListRunsRequest lr = RV__LIST_RUNS_REQUEST__INIT;
    lr.team = (char *)team;
    lr.filter = (char *)filter;
    lr.order_by = (char *)order_by;
    lr.has_per_page = 1;
    lr.per_page = 1000;
    req.body_case = RV__REQUEST__BODY_LIST_RUNS;
    req.list_runs = &lr;
    return read_req(i, &req, token, is_stale, resp, errmsg);
}

/* One team's record (use against quota) as seen by node i. */
static int
team_info(int i, const char *team, Rv__TeamInfo *out)
{
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    int rc = admin_read(i, ca.text, i != L, RV__ADMIN_OP__ADMIN_TEAMS, team,
                        &resp, errmsg);
    if (rc == RV_OK && resp->n_teams == 1)
        *out = *resp->teams[0];
    else if (rc == RV_OK)
        rc = RV_ENOTFOUND;
    out->team = NULL;
    rvc_response_free(resp);
    return rc;
}

static void
fp_add(char *out, const char *fmt, ...)
{
    size_t n = strlen(out);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, FP_BYTES - n, fmt, ap);
    va_end(ap);
}

/* What a denied write must leave unchanged, read as the cluster-admin on
 * the leader: run (its record, summary size and artifacts), every team
 * with its use, every token with its state. */
static void
fingerprint(const char *run, char *out)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ArtifactRequest ar = RV__ARTIFACT_REQUEST__INIT;
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    out[0] = '\0';
    int rc = get_run(L, ca.text, 0, run, &resp, errmsg);
    if (rc == RV_OK && resp->run != NULL) {
        const Rv__RunInfo *r = resp->run;
        fp_add(out, "run %s %s st=%d np=%llu nl=%llu del=%d p=%zu t=%zu s=%zu;",
               r->team, r->name, (int)r->status,
               (unsigned long long)r->n_points,
               (unsigned long long)r->n_log_lines, (int)r->is_deleted,
               r->n_params, r->n_tags, r->n_summary);
    } else {
        fp_add(out, "run rc=%d;", rc);
    }
    rvc_response_free(resp);
    ar.run_id = (char *)run;
    req.body_case = RV__REQUEST__BODY_ARTIFACT;
    req.artifact = &ar;
    rc = read_req(L, &req, ca.text, 0, &resp, errmsg);
    fp_add(out, "art rc=%d n=%zu;", rc, rc == RV_OK ? resp->n_artifacts : 0);
    rvc_response_free(resp);
    rc = admin_read(L, ca.text, 0, RV__ADMIN_OP__ADMIN_TEAMS, NULL, &resp,
                    errmsg);
    for (size_t k = 0; rc == RV_OK && k < resp->n_teams; k++) {
        const Rv__TeamInfo *t = resp->teams[k];
        fp_add(out, "team %s %llu %llu %llu %llu %llu;", t->team,
               (unsigned long long)t->max_runs,
               (unsigned long long)t->max_bytes,
               (unsigned long long)t->max_points_per_s,
               (unsigned long long)t->n_runs, (unsigned long long)t->n_bytes);
    }
    rvc_response_free(resp);
    rc = admin_read(L, ca.text, 0, RV__ADMIN_OP__ADMIN_TOKENS, NULL, &resp,
                    errmsg);
    for (size_t k = 0; rc == RV_OK && k < resp->n_tokens; k++)
        fp_add(out, "tok %s %s %d %d;", resp->tokens[k]->token_id,
               resp->tokens[k]->team, (int)resp->tokens[k]->role,
               (int)resp->tokens[k]->is_revoked);
    rvc_response_free(resp);
}

/* ---- Setup ---------------------------------------------------------------
 */

/* Wait (bounded) for one node's DATA_DIR/admin.token; read it into ca.
 * Returns the node's index or -1. */
static int
bootstrap_token_read(void)
{
    uint64_t until = rv_clock_mono_ms() + 20000;
    do {
        for (int i = 0; i < C.n; i++) {
            char path[600], buf[RV_TOKEN_TEXT_CHARS + 8];
            struct stat sb;
            snprintf(path, sizeof path, "%s/admin.token", C.nodes[i].dir);
            if (stat(path, &sb) != 0)
                continue;
            rv_clock_sleep_ms(100); /* Written and synced before proposed. */
            FILE *f = fopen(path, "r");
            if (f == NULL || fgets(buf, sizeof buf, f) == NULL) {
                if (f)
                    fclose(f);
                continue;
            }
            fclose(f);
            if ((sb.st_mode & 0777) != 0600) {
                fprintf(stderr, "admin.token has mode %o, want 600\n",
                        (unsigned)(sb.st_mode & 0777));
                return -1;
            }
            size_t n = strcspn(buf, "\n");
            if (n != RV_TOKEN_TEXT_CHARS ||
                rv_token_parse(buf, n, ca.id) != RV_OK)
                return -1;
            memcpy(ca.text, buf, n);
            ca.text[n] = '\0';
            return i;
        }
        rv_clock_sleep_ms(100);
    } while (rv_clock_mono_ms() < until);
    return -1;
}

/* A team's run "<team>_<suffix>" by its writer: params, tags (only with
 * x), loss points, log lines and an artifact. */
static int
run_fill(const char *token, const char *team, const char *run, const char *x)
{
    struct cmdb b;
    struct wres w;
    int rc = write_cmd(L, token, cmd_run_create(&b, run, team, x, 0), &w);
    if (rc == RV_OK)
        rc = write_cmd(L, token,
                       cmd_log_batch(&b, run, x ? "loss" : "acc", 5, 0, 0.5),
                       &w);
    if (rc == RV_OK)
        rc = write_cmd(L, token, cmd_log_lines(&b, run, "hello"), &w);
    if (rc == RV_OK)
        rc = write_cmd(L, token,
                       cmd_artifact(&b, run, "model.bin", "0123456789abcdef"),
                       &w);
    if (rc != RV_OK)
        fprintf(stderr, "run_fill %s: %s %s\n", run, rv_errname(rc), w.msg);
    return rc;
}

static int
setup_teams_tokens(void)
{
    struct cmdb b;
    struct wres w;
    for (int t = 0; t < N_TEAMS; t++) {
        CHECK_RC_I(write_cmd(L, ca.text, cmd_team_put(&b, team_names[t]), &w),
                   RV_OK, w.msg);
        for (int r = ROLE_R; r <= ROLE_A; r++)
            CHECK_RC_I(token_new(ca.text, &team_tok[t][r], team_names[t],
                                 RV__ROLE__ROLE_READER + r, 0, &w),
                       RV_OK, w.msg);
    }
    CHECK_RC_I(write_cmd(L, ca.text, cmd_team_put(&b, "t0"), &w), RV_EEXIST,
               w.msg);
    CHECK_RC_I(
        token_new(ca.text, &revoked_tok, "t0", RV__ROLE__ROLE_WRITER, 0, &w),
        RV_OK, w.msg);
    CHECK_RC_I(write_cmd(L, ca.text, cmd_token_del(&b, revoked_tok.id), &w),
               RV_OK, w.msg);
    CHECK_RC_I(
        token_new(ca.text, &expired_tok, "t0", RV__ROLE__ROLE_WRITER, 1, &w),
        RV_OK, w.msg);
    expired_made_ms = (int64_t)rv_clock_wall_ms();
    if (rv_token_make(unknown_tok.text, unknown_tok.id, unknown_tok.sha) !=
        RV_OK)
        return -1;
    return 0;
}

static int
setup_runs(void)
{
    char run[32];
    for (int t = 0; t < N_TEAMS; t++) {
        snprintf(run, sizeof run, "%s_main", team_names[t]);
        if (run_fill(team_tok[t][ROLE_W].text, NULL, run,
                     t == 0 ? "secret" : "public") != RV_OK)
            return -1;
    }
    /* t1 has a twin of t0's run (same values): a filter naming t0's values
     * finds it, and only it, for t1. */
    if (run_fill(team_tok[1][ROLE_W].text, NULL, "t1_twin", "secret") != RV_OK)
        return -1;
    return 0;
}

/* The shared cluster: started once, by the first test that needs it. */
static int
setup(void)
{
    if (is_setup || is_setup_failed)
        return is_setup ? 0 : -1;
    is_setup_failed = 1;
    uint64_t t0 = rv_clock_mono_ms();
    cluster_init(&C, "auth", 3, "buffered");
    C.snapshot_bytes = "1048576";
    C.extra[0] = "--auth";
    C.extra[1] = "on";
    for (int i = 0; i < C.n; i++)
        cluster_start(&C, i, 0);
    int writer = bootstrap_token_read();
    if (writer < 0) {
        fprintf(stderr, "no node wrote a valid admin.token\n");
        return -1;
    }
    C.token = ca.text;
    L = cluster_leader(&C, 15000);
    if (L < 0) {
        fprintf(stderr, "no leader\n");
        return -1;
    }
    F = (L + 1) % C.n;
    fprintf(stderr, "admin.token written by node %d; leader node %d\n",
            writer + 1, L + 1);
    for (int i = 0; i < C.n; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/admin.token", C.nodes[i].dir);
        if (i != writer && access(path, F_OK) == 0) {
            fprintf(stderr, "node %d wrote a second admin.token\n", i + 1);
            return -1;
        }
    }
    if (setup_teams_tokens() != 0 || setup_runs() != 0 ||
        !cluster_converged(&C, 10000, NULL)) {
        fprintf(stderr, "setup failed\n");
        return -1;
    }
    fprintf(stderr, "setup: %llu ms\n",
            (unsigned long long)(rv_clock_mono_ms() - t0));
    is_setup = 1;
    is_setup_failed = 0;
    return 0;
}

static void
test_setup(void)
{
    CHECK(setup() == 0);
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    /* The bootstrap token is the cluster-admin; every node agrees. */
    for (int i = 0; i < C.n; i++) {
        CHECK_OK(admin_read(i, ca.text, 1, RV__ADMIN_OP__ADMIN_WHOAMI, NULL,
                            &resp, errmsg),
                 errmsg);
        int ok = resp->principal != NULL &&
                 strcmp(resp->principal->token_id, ca.id) == 0 &&
                 resp->principal->role == RV__ROLE__ROLE_CLUSTER_ADMIN &&
                 strcmp(resp->principal->team, "*") == 0;
        rvc_response_free(resp);
        CHECK(ok);
    }
    /* Tokens are listed without secrets, with their team and role. */
    CHECK_OK(admin_read(L, ca.text, 0, RV__ADMIN_OP__ADMIN_TOKENS, "t3", &resp,
                        errmsg),
             errmsg);
    size_t n = resp->n_tokens;
    int roles = 0;
    for (size_t k = 0; k < n; k++)
        roles |= 1 << resp->tokens[k]->role;
    rvc_response_free(resp);
    CHECK_EQ_U64(n, 3);
    CHECK_EQ_U64(roles, 7);
}

/* ---- The authorisation matrix ------------------------------------------- */

enum op {
    OP_GET_RUN,
    OP_LIST,
    OP_LIST_FILTER,
    OP_LIST_TEAM_T0,
    OP_HISTORY,
    OP_LOGS,
    OP_ANALYTICS,
    OP_ARTIFACT_GET,
    OP_ARTIFACT_LIST,
    OP_WHOAMI,
    OP_TEAMS,
    OP_TOKENS,
    OP_AUDIT,
    OP_STATUS,
    OP_CLUSTER_STATUS,
    OP_FETCH,
    OP_CLUSTER_ADD,
    OP_CLUSTER_REMOVE,
    OP_CLUSTER_TRANSFER,
    OP_CREATE,
    OP_CREATE_T1,
    OP_CREATE_RESUME,
    OP_LOG_BATCH,
    OP_LOG_LINES,
    OP_ARTIFACT_CHUNK,
    OP_RUN_STATUS,
    OP_RUN_UPDATE,
    OP_RUN_DELETE,
    OP_RUN_RESTORE,
    OP_RUN_PURGE,
    OP_TEAM_PUT,
    OP_QUOTA_PUT,
    OP_TOKEN_PUT_R,
    OP_TOKEN_PUT_W,
    OP_TOKEN_PUT_A,
    OP_TOKEN_PUT_CA,
    OP_TOKEN_PUT_T1,
    OP_TOKEN_DEL_OWN,
    OP_TOKEN_DEL_OTHER,
    OP_TOKEN_DEL_CA,
    OP_NODE_PUT,
};

/* How a row travels: K_READ is a read (stale on a follower), K_PLAIN
 * answers alike on every node, K_CHANGE is a cluster change (the
 * cluster-admin gets RV_ENOTLEADER from a follower), K_WRITE a write (a
 * follower answers RV_ENOTLEADER to everyone, before authenticating). */
enum kind { K_READ, K_PLAIN, K_CHANGE, K_WRITE };

/* What the leader's path needs made before the cell, as cluster-admin. */
enum prep { PR_NONE, PR_RUN, PR_DELETED, PR_FRESH, PR_TOK0, PR_TOK1, PR_TOKCA };

#define OK    RV_OK
#define PERM  RV_EPERM
#define NF    RV_ENOTFOUND
#define AUTH  RV_EUNAUTHENTICATED
#define INV   RV_EINVAL
#define EXIST RV_EEXIST
#define CONFL RV_ECONFLICT

struct row {
    const char *name;
    enum op op;
    enum kind kind;
    enum prep prep;
    int want[5];  /* t0-reader, t0-writer, t0-admin, t1-admin, cluster-admin */
    int want_bad; /* The five refused principals. */
    const char *method, *path, *body; /* HTTP (NULL: no route); %R run,
                                         %A token id or name. */
};

/* THE table. Another team's run answers RV_ENOTFOUND; a role too weak or
 * another team RV_EPERM; a token_del of another team's token
 * RV_ENOTFOUND; a create reusing another team's run id RV_EEXIST. The
 * cluster-admin's create without a team is in team "default", so its
 * resume of t0's run is RV_ECONFLICT (the run is in another team). */
/* clang-format off */
static const struct row rows[] = {
    {"get_run", OP_GET_RUN, K_READ, PR_NONE, {OK, OK, OK, NF, OK}, AUTH,
     "GET", "/api/v2/runs/%R", NULL},
    {"list_runs", OP_LIST, K_READ, PR_NONE, {OK, OK, OK, OK, OK}, AUTH,
     "GET", "/api/v2/experiments", NULL},
    {"list_runs filter", OP_LIST_FILTER, K_READ, PR_NONE, {OK, OK, OK, OK, OK}, AUTH,
     "GET", "/api/v2/experiments?filter=params.x%20%3D%20%27secret%27", NULL},
    {"list_runs team=t0", OP_LIST_TEAM_T0, K_READ, PR_NONE, {OK, OK, OK, OK, OK}, AUTH,
     NULL, NULL, NULL},
    {"history", OP_HISTORY, K_READ, PR_NONE, {OK, OK, OK, NF, OK}, AUTH,
     "GET", "/api/v2/runs/%R/metrics?key=loss", NULL},
    {"logs", OP_LOGS, K_READ, PR_NONE, {OK, OK, OK, NF, OK}, AUTH,
     "GET", "/api/v2/runs/%R/logs", NULL},
    {"analytics", OP_ANALYTICS, K_READ, PR_NONE, {OK, OK, OK, OK, OK}, AUTH,
     "GET", "/api/v2/analytics", NULL},
    {"artifact get", OP_ARTIFACT_GET, K_READ, PR_NONE, {OK, OK, OK, NF, OK}, AUTH,
     "GET", "/api/v2/runs/%R/artifacts/model.bin", NULL},
    {"artifact list", OP_ARTIFACT_LIST, K_READ, PR_NONE, {OK, OK, OK, NF, OK}, AUTH,
     "GET", "/api/v2/runs/%R/artifacts", NULL},
    {"admin whoami", OP_WHOAMI, K_READ, PR_NONE, {OK, OK, OK, OK, OK}, AUTH,
     "GET", "/api/v2/whoami", NULL},
    {"admin teams", OP_TEAMS, K_READ, PR_NONE, {OK, OK, OK, OK, OK}, AUTH,
     "GET", "/api/v2/teams", NULL},
    {"admin tokens", OP_TOKENS, K_READ, PR_NONE, {PERM, PERM, OK, OK, OK}, AUTH,
     "GET", "/api/v2/tokens", NULL},
    {"admin audit", OP_AUDIT, K_READ, PR_NONE, {PERM, PERM, OK, OK, OK}, AUTH,
     "GET", "/api/v2/audit", NULL},
    {"status", OP_STATUS, K_PLAIN, PR_NONE, {OK, OK, OK, OK, OK}, AUTH,
     NULL, NULL, NULL},
    {"cluster status", OP_CLUSTER_STATUS, K_PLAIN, PR_NONE, {OK, OK, OK, OK, OK}, AUTH,
     "GET", "/api/v2/cluster", NULL},
    {"fetch", OP_FETCH, K_PLAIN, PR_NONE, {PERM, PERM, PERM, PERM, OK}, AUTH,
     NULL, NULL, NULL},
    /* The shape is checked before the caller: an add without an id is
     * RV_EINVAL for everyone (nothing is revealed but the request's own
     * validity). */
    {"cluster add id 0", OP_CLUSTER_ADD, K_PLAIN, PR_NONE, {INV, INV, INV, INV, INV}, INV,
     NULL, NULL, NULL},
    {"cluster remove 99", OP_CLUSTER_REMOVE, K_CHANGE, PR_NONE, {PERM, PERM, PERM, PERM, OK}, AUTH,
     "DELETE", "/api/v2/cluster/nodes/99", NULL},
    {"cluster transfer 99", OP_CLUSTER_TRANSFER, K_CHANGE, PR_NONE,
     {PERM, PERM, PERM, PERM, NF}, AUTH,
     "POST", "/api/v2/cluster/transfer", "{\"id\":99}"},
    {"run_create own team", OP_CREATE, K_WRITE, PR_FRESH, {PERM, OK, OK, OK, OK}, AUTH,
     "POST", "/api/v2/runs", "{\"run_id\":\"%R\",\"project\":\"proj\",\"experiment\":\"exp\"}"},
    {"run_create team t1", OP_CREATE_T1, K_WRITE, PR_FRESH, {PERM, PERM, PERM, OK, OK}, AUTH,
     "POST", "/api/v2/runs",
     "{\"run_id\":\"%R\",\"team\":\"t1\",\"project\":\"proj\",\"experiment\":\"exp\"}"},
    {"run_create resume t0's run", OP_CREATE_RESUME, K_WRITE, PR_RUN,
     {PERM, OK, OK, EXIST, CONFL}, AUTH, "POST", "/api/v2/runs",
     "{\"run_id\":\"%R\",\"project\":\"proj\",\"experiment\":\"exp\","
     "\"resume\":\"allow\"}"},
    {"log_batch", OP_LOG_BATCH, K_WRITE, PR_RUN, {PERM, OK, OK, NF, OK}, AUTH,
     "POST", "/api/v2/runs/%R/log-batch",
     "{\"metrics\":[{\"key\":\"loss\",\"value\":1,\"step\":100,"
     "\"timestamp\":1700000000000}]}"},
    {"log_lines", OP_LOG_LINES, K_WRITE, PR_RUN, {PERM, OK, OK, NF, OK}, AUTH,
     "POST", "/api/v2/runs/%R/logs",
     "{\"lines\":[{\"timestamp\":1700000000000,\"stream\":\"stdout\",\"text\":\"x\"}]}"},
    {"artifact_chunk", OP_ARTIFACT_CHUNK, K_WRITE, PR_RUN, {PERM, OK, OK, NF, OK}, AUTH,
     "PUT", "/api/v2/runs/%R/artifacts/up.bin", "artifact bytes"},
    {"run_status", OP_RUN_STATUS, K_WRITE, PR_RUN, {PERM, OK, OK, NF, OK}, AUTH,
     "POST", "/api/v2/runs/%R/status", "{\"status\":\"FINISHED\"}"},
    {"run_update", OP_RUN_UPDATE, K_WRITE, PR_RUN, {PERM, OK, OK, NF, OK}, AUTH,
     NULL, NULL, NULL},
    {"run_delete", OP_RUN_DELETE, K_WRITE, PR_RUN, {PERM, PERM, OK, NF, OK}, AUTH,
     "POST", "/api/v2/runs/%R/delete", NULL},
    {"run_restore", OP_RUN_RESTORE, K_WRITE, PR_DELETED, {PERM, PERM, OK, NF, OK}, AUTH,
     "POST", "/api/v2/runs/%R/restore", NULL},
    {"run_purge", OP_RUN_PURGE, K_WRITE, PR_DELETED, {PERM, PERM, OK, NF, OK}, AUTH,
     "POST", "/api/v2/runs/%R/purge", NULL},
    {"team_put", OP_TEAM_PUT, K_WRITE, PR_FRESH, {PERM, PERM, PERM, PERM, OK}, AUTH,
     "POST", "/api/v2/teams", "{\"team\":\"%A\"}"},
    {"quota_put t8", OP_QUOTA_PUT, K_WRITE, PR_NONE, {PERM, PERM, PERM, PERM, OK}, AUTH,
     "PUT", "/api/v2/teams/t8/quota", "{\"max_runs\":1000}"},
    {"token_put t0 reader", OP_TOKEN_PUT_R, K_WRITE, PR_NONE, {PERM, PERM, OK, PERM, OK}, AUTH,
     "POST", "/api/v2/tokens", "{\"team\":\"t0\",\"role\":\"reader\",\"name\":\"m\"}"},
    {"token_put t0 writer", OP_TOKEN_PUT_W, K_WRITE, PR_NONE, {PERM, PERM, OK, PERM, OK}, AUTH,
     "POST", "/api/v2/tokens", "{\"team\":\"t0\",\"role\":\"writer\",\"name\":\"m\"}"},
    {"token_put t0 admin", OP_TOKEN_PUT_A, K_WRITE, PR_NONE, {PERM, PERM, OK, PERM, OK}, AUTH,
     "POST", "/api/v2/tokens", "{\"team\":\"t0\",\"role\":\"admin\",\"name\":\"m\"}"},
    {"token_put cluster-admin", OP_TOKEN_PUT_CA, K_WRITE, PR_NONE,
     {PERM, PERM, PERM, PERM, OK}, AUTH,
     "POST", "/api/v2/tokens", "{\"team\":\"*\",\"role\":\"cluster-admin\",\"name\":\"m\"}"},
    {"token_put t1 reader", OP_TOKEN_PUT_T1, K_WRITE, PR_NONE, {PERM, PERM, PERM, OK, OK}, AUTH,
     "POST", "/api/v2/tokens", "{\"team\":\"t1\",\"role\":\"reader\",\"name\":\"m\"}"},
    {"token_del t0's", OP_TOKEN_DEL_OWN, K_WRITE, PR_TOK0, {PERM, PERM, OK, NF, OK}, AUTH,
     "DELETE", "/api/v2/tokens/%A", NULL},
    {"token_del t1's", OP_TOKEN_DEL_OTHER, K_WRITE, PR_TOK1, {PERM, PERM, NF, OK, OK}, AUTH,
     "DELETE", "/api/v2/tokens/%A", NULL},
    {"token_del a cluster-admin's", OP_TOKEN_DEL_CA, K_WRITE, PR_TOKCA,
     {PERM, PERM, NF, NF, OK}, AUTH,
     "DELETE", "/api/v2/tokens/%A", NULL},
    {"node_put", OP_NODE_PUT, K_WRITE, PR_NONE, {PERM, PERM, PERM, PERM, OK}, AUTH,
     NULL, NULL, NULL},
};
/* clang-format on */

#define N_ROWS (sizeof rows / sizeof rows[0])

/* HTTP on a follower: reads stale, writes and cluster changes forwarded
 * by the gateway to the leader (the same codes as the leader's). */
enum path { PATH_LEADER, PATH_FOLLOWER, PATH_HTTP, PATH_HTTP_F, PATH_N };

static const char *const path_names[PATH_N] = {"leader", "follower", "http",
                                               "httpf"};

/* One cell's request and its parts. */
struct cell {
    const struct row *r;
    int p;
    enum path path;
    char run[48], aux[48];
    struct tok made;
    struct cmdb b;
    Rv__Command *cmd; /* Writes. */
    Rv__Request req;
    union {
        Rv__GetRunRequest gr;
        Rv__ListRunsRequest lr;
        Rv__HistoryRequest hr;
        Rv__LogsRequest lg;
        Rv__AnalyticsRequest an;
        Rv__ArtifactRequest ar;
        Rv__AdminRequest ad;
        Rv__StatusRequest st;
        Rv__ClusterRequest cr;
        Rv__FetchRequest fr;
    } u;
};

/* The expected code of row r for principal p on path. */
static int
cell_want(const struct row *r, int p, enum path path)
{
    if (path == PATH_FOLLOWER && r->kind == K_WRITE)
        return RV_ENOTLEADER;
    int w = p < P_R0 ? r->want_bad : r->want[p - P_R0];
    if (path == PATH_FOLLOWER && r->kind == K_CHANGE && p == P_CA)
        return RV_ENOTLEADER;
    /* A follower that cannot authenticate a request it would forward
     * defers to the leader, which has applied every token. */
    int is_forwardable = r->op == OP_CLUSTER_STATUS ||
                         r->op == OP_CLUSTER_REMOVE ||
                         r->op == OP_CLUSTER_TRANSFER;
    if (path == PATH_FOLLOWER && is_forwardable && w == RV_EUNAUTHENTICATED)
        return RV_ENOTLEADER;
    return w;
}

static void
cell_build_admin(struct cell *x)
{
    x->u.ad = (Rv__AdminRequest)RV__ADMIN_REQUEST__INIT;
    x->u.ad.op = x->r->op == OP_WHOAMI   ? RV__ADMIN_OP__ADMIN_WHOAMI
                 : x->r->op == OP_TEAMS  ? RV__ADMIN_OP__ADMIN_TEAMS
                 : x->r->op == OP_TOKENS ? RV__ADMIN_OP__ADMIN_TOKENS
                                         : RV__ADMIN_OP__ADMIN_AUDIT;
    x->req.body_case = RV__REQUEST__BODY_ADMIN;
    x->req.admin = &x->u.ad;
}

static void
cell_build_read(struct cell *x)
{
    Rv__Request *q = &x->req;
    switch (x->r->op) {
    case OP_GET_RUN:
        x->u.gr = (Rv__GetRunRequest)RV__GET_RUN_REQUEST__INIT;
        x->u.gr.run_id = x->run;
        q->body_case = RV__REQUEST__BODY_GET_RUN;
        q->get_run = &x->u.gr;
        break;
    case OP_LIST:
    case OP_LIST_FILTER:
    case OP_LIST_TEAM_T0:
        x->u.lr = (Rv__ListRunsRequest)RV__LIST_RUNS_REQUEST__INIT;
        if (x->r->op == OP_LIST_FILTER)
            x->u.lr.filter = "params.x = 'secret'";
        if (x->r->op == OP_LIST_TEAM_T0)
            x->u.lr.team = "t0";
        q->body_case = RV__REQUEST__BODY_LIST_RUNS;
        q->list_runs = &x->u.lr;
        break;
    case OP_HISTORY:
        x->u.hr = (Rv__HistoryRequest)RV__HISTORY_REQUEST__INIT;
        x->u.hr.run_id = x->run;
        x->u.hr.key = "loss";
        q->body_case = RV__REQUEST__BODY_HISTORY;
        q->history = &x->u.hr;
        break;
    case OP_LOGS:
        x->u.lg = (Rv__LogsRequest)RV__LOGS_REQUEST__INIT;
        x->u.lg.run_id = x->run;
        q->body_case = RV__REQUEST__BODY_LOGS;
        q->logs = &x->u.lg;
        break;
    case OP_ANALYTICS:
        x->u.an = (Rv__AnalyticsRequest)RV__ANALYTICS_REQUEST__INIT;
        q->body_case = RV__REQUEST__BODY_ANALYTICS;
        q->analytics = &x->u.an;
        break;
    case OP_ARTIFACT_GET:
    case OP_ARTIFACT_LIST:
        x->u.ar = (Rv__ArtifactRequest)RV__ARTIFACT_REQUEST__INIT;
        x->u.ar.run_id = x->run;
        if (x->r->op == OP_ARTIFACT_GET) {
            x->u.ar.path = "model.bin";
            x->u.ar.has_max_bytes = 1;
            x->u.ar.max_bytes = 100;
        }
        q->body_case = RV__REQUEST__BODY_ARTIFACT;
        q->artifact = &x->u.ar;
        break;
    default:
        cell_build_admin(x);
        break;
    }
}

static void
cell_build_plain(struct cell *x)
{
    Rv__Request *q = &x->req;
    if (x->r->op == OP_STATUS) {
        x->u.st = (Rv__StatusRequest)RV__STATUS_REQUEST__INIT;
        q->body_case = RV__REQUEST__BODY_STATUS;
        q->status = &x->u.st;
        return;
    }
    if (x->r->op == OP_FETCH) {
        x->u.fr = (Rv__FetchRequest)RV__FETCH_REQUEST__INIT;
        x->u.fr.from_index = 1;
        x->u.fr.has_max_bytes = 1;
        x->u.fr.max_bytes = 4096;
        q->body_case = RV__REQUEST__BODY_FETCH;
        q->fetch = &x->u.fr;
        return;
    }
    x->u.cr = (Rv__ClusterRequest)RV__CLUSTER_REQUEST__INIT;
    x->u.cr.op = x->r->op == OP_CLUSTER_STATUS ? RV__CLUSTER_OP__CLUSTER_STATUS
                 : x->r->op == OP_CLUSTER_ADD  ? RV__CLUSTER_OP__CLUSTER_ADD
                 : x->r->op == OP_CLUSTER_REMOVE
                     ? RV__CLUSTER_OP__CLUSTER_REMOVE
                     : RV__CLUSTER_OP__CLUSTER_TRANSFER;
    if (x->r->op == OP_CLUSTER_ADD) {
        x->u.cr.has_id = 1;
        x->u.cr.id = 0;
        x->u.cr.raft_addr = "127.0.0.1:1";
    } else if (x->r->op != OP_CLUSTER_STATUS) {
        x->u.cr.has_id = 1;
        x->u.cr.id = 99;
    }
    q->body_case = RV__REQUEST__BODY_CLUSTER;
    q->cluster = &x->u.cr;
}

static Rv__Command *
cell_build_write(struct cell *x)
{
    struct cmdb *b = &x->b;
    switch (x->r->op) {
    case OP_CREATE:
        return cmd_run_create(b, x->run, NULL, NULL, 0);
    case OP_CREATE_T1:
        return cmd_run_create(b, x->run, "t1", NULL, 0);
    case OP_CREATE_RESUME:
        return cmd_run_create(b, x->run, NULL, NULL, 1);
    case OP_LOG_BATCH:
        return cmd_log_batch(b, x->run, "loss", 3, 100, 1.0);
    case OP_LOG_LINES:
        return cmd_log_lines(b, x->run, "matrix");
    case OP_ARTIFACT_CHUNK:
        return cmd_artifact(b, x->run, "up.bin", "artifact bytes");
    case OP_RUN_STATUS:
        return cmd_run_status(b, x->run);
    case OP_RUN_UPDATE:
        return cmd_run_update(b, x->run, "renamed");
    case OP_RUN_DELETE:
        return cmd_run_ref(b, x->run, RV__COMMAND__BODY_RUN_DELETE);
    case OP_RUN_RESTORE:
        return cmd_run_ref(b, x->run, RV__COMMAND__BODY_RUN_RESTORE);
    case OP_RUN_PURGE:
        return cmd_run_ref(b, x->run, RV__COMMAND__BODY_RUN_PURGE);
    case OP_TEAM_PUT:
        return cmd_team_put(b, x->aux);
    case OP_QUOTA_PUT:
        return cmd_quota_put(b, "t8", 1000, UNSET, UNSET);
    case OP_TOKEN_PUT_R:
    case OP_TOKEN_PUT_W:
    case OP_TOKEN_PUT_A:
        return cmd_token_put(
            b, &x->made, "t0",
            RV__ROLE__ROLE_READER + (int)(x->r->op - OP_TOKEN_PUT_R), 0);
    case OP_TOKEN_PUT_CA:
        return cmd_token_put(b, &x->made, "*", RV__ROLE__ROLE_CLUSTER_ADMIN, 0);
    case OP_TOKEN_PUT_T1:
        return cmd_token_put(b, &x->made, "t1", RV__ROLE__ROLE_READER, 0);
    case OP_TOKEN_DEL_OWN:
    case OP_TOKEN_DEL_OTHER:
    case OP_TOKEN_DEL_CA:
        return cmd_token_del(b, x->aux);
    default:
        return cmd_node_put(b, L);
    }
}

/* Make what the cell acts on (the leader's and HTTP's paths: the cell may
 * change it). Returns RV_OK or the failing code. */
static int
cell_prep(struct cell *x, int row_no)
{
    struct cmdb b;
    struct wres w;
    int rc = RV_OK;
    snprintf(x->run, sizeof x->run, "t0_main");
    snprintf(x->aux, sizeof x->aux, "0000000000000000");
    if (x->path == PATH_FOLLOWER)
        return RV_OK;
    switch (x->r->prep) {
    case PR_RUN:
    case PR_DELETED:
        snprintf(x->run, sizeof x->run, "m%dp%d%s", row_no, x->p,
                 path_names[x->path]);
        rc = run_fill(ca.text, "t0", x->run, "secret");
        if (rc == RV_OK && x->r->prep == PR_DELETED)
            rc = write_cmd(
                L, ca.text,
                cmd_run_ref(&b, x->run, RV__COMMAND__BODY_RUN_DELETE), &w);
        return rc;
    case PR_FRESH:
        snprintf(x->run, sizeof x->run, "c%dp%d%s", row_no, x->p,
                 path_names[x->path]);
        snprintf(x->aux, sizeof x->aux, "n%dp%d%s", row_no, x->p,
                 path_names[x->path]);
        return RV_OK;
    case PR_TOK0:
    case PR_TOK1:
    case PR_TOKCA:
        rc = token_new(ca.text, &x->made,
                       x->r->prep == PR_TOK0   ? "t0"
                       : x->r->prep == PR_TOK1 ? "t1"
                                               : "*",
                       x->r->prep == PR_TOKCA ? RV__ROLE__ROLE_CLUSTER_ADMIN
                                              : RV__ROLE__ROLE_READER,
                       0, &w);
        snprintf(x->aux, sizeof x->aux, "%s", x->made.id);
        return rc;
    default:
        return RV_OK;
    }
}

/* Send the cell natively; *code the outcome, msg its text, hint the
 * leader hint of an RV_ENOTLEADER. */
static int
cell_send_native(struct cell *x, int *code, char *msg, char *hint)
{
    int node = x->path == PATH_LEADER ? L : F;
    const char *token = p_token(x->p);
    Rv__Response *resp;
    hint[0] = '\0';
    if (x->r->kind == K_WRITE) {
        struct wres w;
        *code = write_cmd(node, token, cell_build_write(x), &w);
        snprintf(msg, RV_ERRMSG_SIZE, "%s", w.msg);
        snprintf(hint, 64, "%s", w.leader_rpc);
        return RV_OK;
    }
    x->req = (Rv__Request)RV__REQUEST__INIT;
    if (x->r->kind == K_READ)
        cell_build_read(x);
    else
        cell_build_plain(x);
    int is_stale = x->r->kind == K_READ && x->path == PATH_FOLLOWER;
    *code = read_req(node, &x->req, token, is_stale, &resp, msg);
    if (resp != NULL && resp->leader_rpc != NULL)
        snprintf(hint, 64, "%s", resp->leader_rpc);
    rvc_response_free(resp);
    return RV_OK;
}

/* ---- HTTP (RV_TEST_AUTH_HTTP=1) ---------------------------------------- */

/* tmpl with %R -> run, %A -> aux. */
static void
expand(const char *tmpl, const struct cell *x, char *out, size_t n)
{
    size_t o = 0;
    for (const char *s = tmpl; *s != '\0' && o + 1 < n; s++) {
        const char *sub = NULL;
        if (s[0] == '%' && s[1] == 'R')
            sub = x->run;
        else if (s[0] == '%' && s[1] == 'A')
            sub = x->aux;
        if (sub == NULL) {
            out[o++] = *s;
            continue;
        }
        o += (size_t)snprintf(out + o, n - o, "%s", sub);
        if (o >= n)
            o = n - 1;
        s++;
    }
    out[o] = '\0';
}

/* One HTTP exchange with node i: *status, and whether a 401 carried
 * WWW-Authenticate: Bearer. Returns RV_OK or RV_EUNAVAILABLE. */
static int
http_call(int i, const char *method, const char *path, const char *body,
          const char *token, int *status, int *has_bearer_challenge)
{
    char url[600], auth[RV_TOKEN_MAX_HEADER];
    nng_url *u = NULL;
    nng_http_client *hc = NULL;
    nng_http_req *rq = NULL;
    nng_http_res *rs = NULL;
    nng_aio *aio = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", C.port + 10 * i, path);
    int rv = nng_url_parse(&u, url);
    if (rv == 0)
        rv = nng_http_client_alloc(&hc, u);
    if (rv == 0)
        rv = nng_http_req_alloc(&rq, u);
    if (rv == 0)
        rv = nng_http_res_alloc(&rs);
    if (rv == 0)
        rv = nng_aio_alloc(&aio, NULL, NULL);
    if (rv == 0) {
        nng_http_req_set_method(rq, method);
        if (token != NULL) {
            snprintf(auth, sizeof auth, "Bearer %s", token);
            nng_http_req_set_header(rq, "Authorization", auth);
        }
        if (body != NULL) {
            nng_http_req_set_header(rq, "Content-Type", "application/json");
            nng_http_req_copy_data(rq, body, strlen(body));
        }
        nng_aio_set_timeout(aio, CALL_MS);
        nng_http_client_transact(hc, rq, rs, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
    }
    if (rv == 0) {
        const char *h = nng_http_res_get_header(rs, "WWW-Authenticate");
        *status = (int)nng_http_res_get_status(rs);
        *has_bearer_challenge = h != NULL && strncmp(h, "Bearer", 6) == 0;
    }
    nng_aio_free(aio);
    nng_http_res_free(rs);
    nng_http_req_free(rq);
    nng_http_client_free(hc);
    nng_url_free(u);
    return rv == 0 ? RV_OK : RV_EUNAVAILABLE;
}

/* The HTTP status of an RV code, from the gateway's one table. */
static int
http_status_of(int code)
{
    const char *ec;
    return code == RV_OK ? 200 : gateway_status_of(code, &ec);
}

/* ---- Running the matrix ------------------------------------------------ */

struct tally {
    int cells, passed;
    int by_path[PATH_N][2];
};

static void
cell_fail(const struct cell *x, const char *what, int got, int want,
          const char *msg)
{
    fprintf(stderr, "MISMATCH %-28s %-14s %-8s %s: got %s, want %s (%s)\n",
            x->r->name, p_names[x->p], path_names[x->path], what,
            rv_errname(got), rv_errname(want), msg);
}

/* A run made by the cell is in the team asked for, else the token's (the
 * cluster-admin's: "default"). 1 if so. */
static int
cell_check_team(const struct cell *x)
{
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    const char *want = x->r->op == OP_CREATE_T1 ? "t1"
                       : x->p == P_A1           ? "t1"
                       : x->p == P_CA           ? "default"
                                                : "t0";
    int rc = get_run(L, ca.text, 0, x->run, &resp, errmsg);
    int ok = rc == RV_OK && resp->run != NULL && resp->run->team != NULL &&
             strcmp(resp->run->team, want) == 0;
    if (!ok)
        fprintf(stderr, "MISMATCH %s %s: run %s not in team %s (%s)\n",
                x->r->name, p_names[x->p], x->run, want,
                rc == RV_OK && resp->run && resp->run->team ? resp->run->team
                                                            : errmsg);
    rvc_response_free(resp);
    return ok;
}

/* Native cell: the code, and for a denied write, nothing changed; for a
 * follower's write, the leader hint. 1 if it passed. */
static int
cell_check_native(struct cell *x)
{
    static char before[FP_BYTES], after[FP_BYTES];
    char msg[RV_ERRMSG_SIZE] = "", hint[64];
    int code, want = cell_want(x->r, x->p, x->path);
    int is_denied_write = x->r->kind == K_WRITE && want != RV_OK;
    if (is_denied_write)
        fingerprint(x->run, before);
    cell_send_native(x, &code, msg, hint);
    if (code != want) {
        cell_fail(x, "code", code, want, msg);
        return 0;
    }
    if (want == RV_ENOTLEADER && strcmp(hint, C.nodes[L].rpc) != 0) {
        cell_fail(x, "leader hint", code, want, hint);
        return 0;
    }
    if (x->path == PATH_LEADER && want == RV_OK &&
        (x->r->op == OP_CREATE || x->r->op == OP_CREATE_T1))
        return cell_check_team(x);
    if (is_denied_write) {
        fingerprint(x->run, after);
        if (strcmp(before, after) != 0) {
            cell_fail(x, "state changed", code, want, msg);
            fprintf(stderr, "  before: %s\n  after:  %s\n", before, after);
            return 0;
        }
    }
    return 1;
}

/* The cell's HTTP path: a follower's reads are stale at the last index. */
static void
cell_http_path(const struct cell *x, char *path, size_t n)
{
    expand(x->r->path, x, path, n);
    if (x->path == PATH_HTTP_F && x->r->kind == K_READ) {
        size_t o = strlen(path);
        snprintf(path + o, n - o, "%sconsistency=stale&min_index=%llu",
                 strchr(path, '?') ? "&" : "?",
                 (unsigned long long)index_last());
    }
}

static int
cell_check_http(struct cell *x)
{
    static char before[FP_BYTES], after[FP_BYTES];
    char path[512], body[512];
    int status = 0, has_challenge = 0;
    int want = cell_want(x->r, x->p, PATH_LEADER);
    int want_status = http_status_of(want);
    int is_denied_write = x->r->kind == K_WRITE && want != RV_OK;
    cell_http_path(x, path, sizeof path);
    if (x->r->body != NULL)
        expand(x->r->body, x, body, sizeof body);
    if (is_denied_write)
        fingerprint(x->run, before);
    if (http_call(x->path == PATH_HTTP ? L : F, x->r->method, path,
                  x->r->body ? body : NULL, p_token(x->p), &status,
                  &has_challenge) != RV_OK) {
        cell_fail(x, "no HTTP answer", RV_EUNAVAILABLE, want, path);
        return 0;
    }
    int ok = want == RV_OK ? status / 100 == 2 : status == want_status;
    if (!ok || (status == 401 && !has_challenge)) {
        fprintf(stderr, "MISMATCH %-28s %-14s %-8s %s %s: HTTP %d, want %d%s\n",
                x->r->name, p_names[x->p], path_names[x->path], x->r->method,
                path, status, want_status,
                ok ? " (no WWW-Authenticate: Bearer)" : "");
        return 0;
    }
    if (is_denied_write) {
        fingerprint(x->run, after);
        if (strcmp(before, after) != 0) {
            cell_fail(x, "state changed (http)", want, want, path);
            return 0;
        }
    }
    return 1;
}

static void
matrix_path(enum path path, struct tally *t)
{
    for (size_t r = 0; r < N_ROWS; r++) {
        if (path >= PATH_HTTP && rows[r].method == NULL)
            continue;
        for (int p = 0; p < P_N; p++) {
            struct cell *x = calloc(1, sizeof *x);
            if (x == NULL)
                abort();
            x->r = &rows[r];
            x->p = p;
            x->path = path;
            int ok = 0, rc = cell_prep(x, (int)r);
            if (rc != RV_OK)
                cell_fail(x, "prep", rc, RV_OK, "as cluster-admin");
            else
                ok = path >= PATH_HTTP ? cell_check_http(x)
                                       : cell_check_native(x);
            t->cells++;
            t->passed += ok;
            t->by_path[path][0]++;
            t->by_path[path][1] += ok;
            free(x);
        }
    }
}

static void
test_matrix(void)
{
    struct tally t;
    memset(&t, 0, sizeof t);
    CHECK(setup() == 0);
    /* The expired principal: made with expires_in_s=1 during setup. */
    int64_t wait = expired_made_ms + 1500 - (int64_t)rv_clock_wall_ms();
    if (wait > 0)
        rv_clock_sleep_ms((unsigned)wait);
    uint64_t t0 = rv_clock_mono_ms();
    matrix_path(PATH_LEADER, &t);
    CHECK(cluster_converged(&C, 10000, NULL));
    matrix_path(PATH_FOLLOWER, &t);
    const char *h = getenv("RV_TEST_AUTH_HTTP");
    int is_http = h != NULL && strcmp(h, "1") == 0;
    if (is_http) {
        matrix_path(PATH_HTTP, &t);
        CHECK(cluster_converged(&C, 10000, NULL));
        matrix_path(PATH_HTTP_F, &t);
    }
    printf("auth matrix: %zu request kinds x %d principals; leader %d/%d, "
           "follower %d/%d, http %s%d/%d, http via a follower %d/%d; %d/%d "
           "cells passed in %llu ms\n",
           N_ROWS, P_N, t.by_path[0][1], t.by_path[0][0], t.by_path[1][1],
           t.by_path[1][0], is_http ? "" : "(off: RV_TEST_AUTH_HTTP=1) ",
           t.by_path[2][1], t.by_path[2][0], t.by_path[3][1], t.by_path[3][0],
           t.passed, t.cells, (unsigned long long)(rv_clock_mono_ms() - t0));
    CHECK(t.cells > 0 && t.passed == t.cells);
    CHECK(cluster_converged(&C, 10000, NULL));
    is_matrix_done = 1;
}

/* ---- Isolation under the filter language --------------------------------- */

/* msg with each occurrence of id replaced by "<id>". */
static void
unid(const char *msg, const char *id, char *out, size_t n)
{
    size_t o = 0, idn = strlen(id);
    for (const char *s = msg; *s != '\0' && o + 5 < n;) {
        if (idn > 0 && strncmp(s, id, idn) == 0) {
            memcpy(out + o, "<id>", 4);
            o += 4;
            s += idn;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
}

/* t0's run ids, as the cluster-admin lists them. */
static char t0_ids[512][64];
static size_t n_t0_ids;

static int
t0_ids_load(void)
{
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    if (list_runs(L, ca.text, 0, "t0", NULL, NULL, &resp, errmsg) != RV_OK)
        return -1;
    n_t0_ids = 0;
    for (size_t k = 0; k < resp->n_runs && n_t0_ids < 512; k++)
        snprintf(t0_ids[n_t0_ids++], sizeof t0_ids[0], "%s",
                 resp->runs[k]->run_id);
    rvc_response_free(resp);
    return n_t0_ids > 0 ? 0 : -1;
}

/* 1 if resp lists a run of t0 (by its team or its id). */
static int
lists_t0(const Rv__Response *resp)
{
    for (size_t k = 0; k < resp->n_runs; k++) {
        const Rv__RunInfo *r = resp->runs[k];
        if (r->team != NULL && strcmp(r->team, "t0") == 0)
            return 1;
        for (size_t i = 0; i < n_t0_ids; i++)
            if (strcmp(r->run_id, t0_ids[i]) == 0)
                return 1;
    }
    return 0;
}

static const char *const iso_filters[][2] = {
    {"params.x = 'secret'", NULL},
    {"metrics.loss < 10", NULL},
    {"tags.owner LIKE '%'", NULL},
    {"attributes.name LIKE '%'", NULL},
    {NULL, "metrics.loss"},
    {"metrics.loss < 10", "metrics.loss DESC"},
    {"attributes.team = 't0'", NULL},
    {"team = 't0' OR params.x = 'secret'", "params.x"},
    {"run_id = 't0_main'", NULL},
    {"params.x IN ('secret', 'public') AND tags.owner = 'alice'", NULL},
    {"lifecycle_stage ILIKE '%'", "tags.owner DESC"},
};

/* t1's reader sees, for each filter, exactly what the cluster-admin sees
 * in t1, on the leader and (stale) on a follower, and never a t0 run. */
static void
iso_lists(void)
{
    const char *r1 = team_tok[1][ROLE_R].text;
    char errmsg[RV_ERRMSG_SIZE];
    CHECK(t0_ids_load() == 0);
    for (size_t f = 0; f < sizeof iso_filters / sizeof iso_filters[0]; f++) {
        const char *flt = iso_filters[f][0], *ob = iso_filters[f][1];
        Rv__Response *a0, *a1, *mine;
        CHECK_OK(list_runs(L, ca.text, 0, "t0", flt, ob, &a0, errmsg), errmsg);
        CHECK_OK(list_runs(L, ca.text, 0, "t1", flt, ob, &a1, errmsg), errmsg);
        size_t n0 = a0->n_runs, n1 = a1->n_runs;
        uint64_t tot1 = a1->has_total ? a1->total : n1;
        uint64_t ex1 = a1->has_n_examined ? a1->n_examined : 0;
        char plan1[32];
        snprintf(plan1, sizeof plan1, "%s", a1->plan ? a1->plan : "");
        CHECK(plan1[0] != '\0'); /* The reply names its plan. */
        rvc_response_free(a0);
        rvc_response_free(a1);
        if (n0 == 0) /* The filter does find t0's runs. */
            RV_CHECK_FAIL("filter '%s': t0 %zu runs (t1 %zu), want some",
                          flt ? flt : "", n0, n1);
        for (int i = 0; i < 2; i++) {
            int node = i == 0 ? L : F;
            CHECK_OK(list_runs(node, r1, i, NULL, flt, ob, &mine, errmsg),
                     errmsg);
            int leak = lists_t0(mine);
            size_t n = mine->n_runs;
            uint64_t tot = mine->has_total ? mine->total : n;
            uint64_t ex = mine->has_n_examined ? mine->n_examined : 0;
            int same_plan =
                mine->plan != NULL && strcmp(mine->plan, plan1) == 0;
            rvc_response_free(mine);
            /* Not even the count of runs examined (or the plan) tells of
             * other teams. */
            if (leak || n != n1 || tot != tot1 || ex != ex1 || !same_plan)
                RV_CHECK_FAIL("filter '%s' order '%s' node %d: t1-reader "
                              "got %zu runs (total %llu, examined %llu, t0 "
                              "leaked %d), want %zu (total %llu, examined "
                              "%llu)",
                              flt ? flt : "", ob ? ob : "", node + 1, n,
                              (unsigned long long)tot, (unsigned long long)ex,
                              leak, n1, (unsigned long long)tot1,
                              (unsigned long long)ex1);
        }
        /* Naming t0 explicitly: an empty page, total 0. */
        CHECK_OK(list_runs(L, r1, 0, "t0", flt, ob, &mine, errmsg), errmsg);
        int ok = mine->n_runs == 0 && (!mine->has_total || mine->total == 0);
        rvc_response_free(mine);
        CHECK(ok);
    }
}

static uint64_t
count_sum(const Rv__Response *resp)
{
    uint64_t s = 0;
    for (size_t k = 0; k < resp->n_counts; k++)
        s += resp->counts[k]->n;
    return s;
}

static int
analytics(int i, const char *token, int is_stale, const char *team, Rv__Group g,
          uint64_t *sum, char *errmsg)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__AnalyticsRequest ar = RV__ANALYTICS_REQUEST__INIT;
    Rv__Response *resp;
    ar.has_group = 1;
    ar.group = g;
    ar.team = (char *)team;
    req.body_case = RV__REQUEST__BODY_ANALYTICS;
    req.analytics = &ar;
    int rc = read_req(i, &req, token, is_stale, &resp, errmsg);
    *sum = rc == RV_OK ? count_sum(resp) : 0;
    rvc_response_free(resp);
    return rc;
}

static void
iso_analytics(void)
{
    const char *r1 = team_tok[1][ROLE_R].text;
    char errmsg[RV_ERRMSG_SIZE];
    uint64_t all, t1, mine, mine_f, t0_named;
    for (int g = RV__GROUP__GROUP_STATUS; g <= RV__GROUP__GROUP_DAY; g++) {
        CHECK_OK(analytics(L, ca.text, 0, NULL, (Rv__Group)g, &all, errmsg),
                 errmsg);
        CHECK_OK(analytics(L, ca.text, 0, "t1", (Rv__Group)g, &t1, errmsg),
                 errmsg);
        CHECK_OK(analytics(L, r1, 0, NULL, (Rv__Group)g, &mine, errmsg),
                 errmsg);
        CHECK_OK(analytics(F, r1, 1, NULL, (Rv__Group)g, &mine_f, errmsg),
                 errmsg);
        CHECK_OK(analytics(L, r1, 0, "t0", (Rv__Group)g, &t0_named, errmsg),
                 errmsg);
        if (!(t1 > 0 && all > t1 && mine == t1 && mine_f == t1 &&
              t0_named == 0))
            RV_CHECK_FAIL("analytics group %d: all %llu, t1 %llu, t1-reader "
                          "%llu (follower %llu, naming t0 %llu)",
                          g, (unsigned long long)all, (unsigned long long)t1,
                          (unsigned long long)mine, (unsigned long long)mine_f,
                          (unsigned long long)t0_named);
    }
}

/* A t0 run by id, for t1's reader: RV_ENOTFOUND with the very message of a
 * run that does not exist, for every read that names a run. */
static void
iso_by_id(void)
{
    static const enum op ops[] = {OP_GET_RUN, OP_HISTORY, OP_LOGS,
                                  OP_ARTIFACT_GET, OP_ARTIFACT_LIST};
    static const struct row r = {"iso", OP_GET_RUN, K_READ, PR_NONE, {0},
                                 0,     NULL,       NULL,   NULL};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        for (int i = 0; i < 2; i++) {
            char msg[2][RV_ERRMSG_SIZE], norm[2][RV_ERRMSG_SIZE];
            int code[2];
            for (int e = 0; e < 2; e++) {
                struct cell x;
                struct row rr = r;
                Rv__Response *resp;
                memset(&x, 0, sizeof x);
                rr.op = ops[k];
                x.r = &rr;
                x.req = (Rv__Request)RV__REQUEST__INIT;
                snprintf(x.run, sizeof x.run, "%s",
                         e == 0 ? "t0_main" : "t0_nosuch");
                cell_build_read(&x);
                code[e] = read_req(i == 0 ? L : F, &x.req,
                                   team_tok[1][ROLE_R].text, i, &resp, msg[e]);
                rvc_response_free(resp);
                unid(msg[e], x.run, norm[e], sizeof norm[e]);
            }
            if (code[0] != RV_ENOTFOUND || code[1] != RV_ENOTFOUND ||
                strcmp(norm[0], norm[1]) != 0)
                RV_CHECK_FAIL("op %d node %d: t0's run %s '%s', a missing run "
                              "%s '%s'",
                              (int)ops[k], (i == 0 ? L : F) + 1,
                              rv_errname(code[0]), msg[0], rv_errname(code[1]),
                              msg[1]);
        }
    }
}

/* Admin reads are scoped too: t1's admin sees its own team and tokens,
 * none of t0's, and whoami names the caller. */
static void
iso_admin(void)
{
    const char *a1 = team_tok[1][ROLE_A].text;
    char errmsg[RV_ERRMSG_SIZE];
    Rv__Response *resp;
    CHECK_OK(
        admin_read(L, a1, 0, RV__ADMIN_OP__ADMIN_TEAMS, NULL, &resp, errmsg),
        errmsg);
    int ok = resp->n_teams == 1 && strcmp(resp->teams[0]->team, "t1") == 0;
    rvc_response_free(resp);
    CHECK(ok);
    for (int named = 0; named < 2; named++) {
        CHECK_OK(admin_read(L, a1, 0, RV__ADMIN_OP__ADMIN_TOKENS,
                            named ? "t0" : NULL, &resp, errmsg),
                 errmsg);
        ok = named ? resp->n_tokens == 0 : resp->n_tokens >= 3;
        for (size_t k = 0; k < resp->n_tokens; k++)
            ok = ok && strcmp(resp->tokens[k]->team, "t1") == 0;
        rvc_response_free(resp);
        CHECK(ok);
    }
    CHECK_OK(
        admin_read(F, a1, 1, RV__ADMIN_OP__ADMIN_WHOAMI, NULL, &resp, errmsg),
        errmsg);
    ok = resp->principal != NULL &&
         strcmp(resp->principal->token_id, team_tok[1][ROLE_A].id) == 0 &&
         strcmp(resp->principal->team, "t1") == 0 &&
         resp->principal->role == RV__ROLE__ROLE_ADMIN;
    rvc_response_free(resp);
    CHECK(ok);
}

/* A client claiming to be a forwarding node gains nothing: is_forwarded
 * without a token is refused, with t1's token it still sees only t1. */
static void
iso_forwarded(void)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    gr.run_id = "t0_main";
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    req.has_is_forwarded = req.is_forwarded = 1;
    CHECK_RC(read_req(L, &req, NULL, 0, &resp, errmsg), RV_EUNAUTHENTICATED,
             errmsg);
    rvc_response_free(resp);
    CHECK_RC(read_req(L, &req, team_tok[1][ROLE_A].text, 0, &resp, errmsg),
             RV_ENOTFOUND, errmsg);
    rvc_response_free(resp);
}

static void
test_isolation(void)
{
    CHECK(setup() == 0);
    CHECK(cluster_converged(&C, 10000, NULL));
    iso_lists();
    iso_analytics();
    iso_by_id();
    iso_admin();
    iso_forwarded();
}

/* ---- Revocation on 3 nodes ----------------------------------------------- */

#define REV_MAX 4000

struct rev_writer {
    const char *token;
    const char *run;
    int64_t step0;
    size_t n;
    int codes[REV_MAX];
    uint64_t idx[REV_MAX];
    int64_t sent_ms[REV_MAX], done_ms[REV_MAX];
    volatile int stop;
};

/* Log batches until 20 refusals, stop, REV_MAX writes or 10 s. */
static void *
rev_writer_main(void *arg)
{
    struct rev_writer *rw = arg;
    struct cmdb *b = malloc(sizeof *b);
    uint64_t until = rv_clock_mono_ms() + 10000;
    int n_refused = 0;
    while (b != NULL && !rw->stop && rw->n < REV_MAX && n_refused < 20 &&
           rv_clock_mono_ms() < until) {
        struct wres w;
        size_t k = rw->n;
        rw->sent_ms[k] = (int64_t)rv_clock_wall_ms();
        rw->codes[k] = write_cmd(
            L, rw->token,
            cmd_log_batch(b, rw->run, "rev", 5, rw->step0 + (int64_t)k * 5, 1),
            &w);
        rw->done_ms[k] = (int64_t)rv_clock_wall_ms();
        rw->idx[k] = w.index;
        n_refused += rw->codes[k] == RV_EUNAUTHENTICATED;
        rw->n++;
    }
    free(b);
    return NULL;
}

/* Every node refuses token on reads (stale, at the last index). */
static int
refused_everywhere(const char *token, const char *run, const char *why)
{
    for (int i = 0; i < C.n; i++) {
        Rv__Response *resp;
        char errmsg[RV_ERRMSG_SIZE] = "";
        int rc = get_run(i, token, 1, run, &resp, errmsg);
        rvc_response_free(resp);
        if (rc != RV_EUNAUTHENTICATED || strstr(errmsg, why) == NULL) {
            fprintf(stderr, "node %d: a %s token read: %s (%s)\n", i + 1, why,
                    rv_errname(rc), errmsg);
            return 0;
        }
    }
    return 1;
}

#define REV_THREADS 3

/* One writer's outcomes against the revoke's index ri: acknowledged
 * writes at or before it (and before any refusal), refused ones at the
 * door (no index) or at apply (at or after it). Counts into n[3]: ok,
 * apply, door. Returns the number of violations. */
static int
rev_check(const struct rev_writer *rw, uint64_t ri, size_t n[3])
{
    int is_refused = 0, bad = 0;
    for (size_t k = 0; k < rw->n; k++) {
        int c = rw->codes[k];
        uint64_t ix = rw->idx[k];
        n[0] += c == RV_OK;
        n[1] += c == RV_EUNAUTHENTICATED && ix != 0;
        n[2] += c == RV_EUNAUTHENTICATED && ix == 0;
        int ok = (c == RV_OK && ix > 0 && ix <= ri && !is_refused) ||
                 (c == RV_EUNAUTHENTICATED && (ix == 0 || ix >= ri));
        if (!ok && bad++ < 5)
            fprintf(stderr, "write %zu: %s at index %llu, revoked at %llu\n", k,
                    rv_errname(c), (unsigned long long)ix,
                    (unsigned long long)ri);
        is_refused |= c == RV_EUNAUTHENTICATED;
    }
    return bad;
}

/* The token is listed as revoked at index ri on every node. */
static int
revoked_everywhere(const struct tok *t, const char *team, uint64_t ri)
{
    for (int i = 0; i < C.n; i++) {
        Rv__Response *resp;
        char errmsg[RV_ERRMSG_SIZE];
        int found = 0;
        if (admin_read(i, ca.text, 1, RV__ADMIN_OP__ADMIN_TOKENS, team, &resp,
                       errmsg) != RV_OK)
            return 0;
        for (size_t k = 0; k < resp->n_tokens; k++)
            if (strcmp(resp->tokens[k]->token_id, t->id) == 0)
                found = resp->tokens[k]->is_revoked &&
                        resp->tokens[k]->revoked_index == ri;
        rvc_response_free(resp);
        if (!found)
            return 0;
    }
    return 1;
}

static void
test_revocation(void)
{
    struct tok t;
    struct wres w;
    struct cmdb b;
    struct rev_writer *rw[REV_THREADS];
    pthread_t th[REV_THREADS];
    CHECK(setup() == 0);
    CHECK_OK(token_new(ca.text, &t, "t2", RV__ROLE__ROLE_WRITER, 0, &w), w.msg);
    for (int k = 0; k < REV_THREADS; k++) {
        rw[k] = calloc(1, sizeof *rw[k]);
        if (rw[k] == NULL)
            abort();
        rw[k]->token = t.text;
        rw[k]->run = "t2_main";
        rw[k]->step0 = 1000 + 1000000 * k;
        if (pthread_create(&th[k], NULL, rev_writer_main, rw[k]) != 0)
            abort();
    }
    rv_clock_sleep_ms(400);
    int rc = write_cmd(L, ca.text, cmd_token_del(&b, t.id), &w);
    uint64_t ri = w.index;
    size_t n[3] = {0, 0, 0};
    int bad = 0;
    for (int k = 0; k < REV_THREADS; k++) {
        if (rc != RV_OK)
            rw[k]->stop = 1;
        pthread_join(th[k], NULL);
        bad += rev_check(rw[k], ri, n);
        free(rw[k]);
    }
    CHECK_OK(rc, w.msg);
    printf("revocation at index %llu (%d writers): %zu writes acknowledged "
           "before, %zu refused at apply, %zu at the door\n",
           (unsigned long long)ri, REV_THREADS, n[0], n[1], n[2]);
    CHECK(bad == 0 && n[0] > 0 && n[1] + n[2] > 0);
    CHECK(cluster_converged(&C, 10000, NULL));
    CHECK(refused_everywhere(t.text, "t2_main", "revoked"));
    CHECK(revoked_everywhere(&t, "t2", ri));
    is_revoke_done = 1;
    revoke_index = ri;
}

/* A revoke proposed but not yet applied on the leader (both followers
 * stopped: nothing commits): a write with the token passes the door, is
 * proposed after the revoke and refused at apply, at a later index. */
struct bg_write {
    const char *token;
    Rv__Command *cmd;
    struct wres w;
};

static void *
bg_write_main(void *arg)
{
    struct bg_write *g = arg;
    write_cmd(L, g->token, g->cmd, &g->w);
    return NULL;
}

static void
test_revocation_at_apply(void)
{
    struct tok t;
    struct wres w;
    struct cmdb b1, b2;
    struct bg_write del, wr;
    pthread_t th[2];
    CHECK(setup() == 0);
    CHECK_OK(token_new(ca.text, &t, "t6", RV__ROLE__ROLE_WRITER, 0, &w), w.msg);
    CHECK(cluster_converged(&C, 10000, NULL));
    del = (struct bg_write){ca.text, cmd_token_del(&b1, t.id), {0}};
    wr = (struct bg_write){t.text, cmd_log_lines(&b2, "t6_main", "late"), {0}};
    for (int i = 0; i < C.n; i++)
        if (i != L)
            cluster_signal(&C, i, SIGSTOP);
    int n_started = pthread_create(&th[0], NULL, bg_write_main, &del) == 0;
    rv_clock_sleep_ms(150);
    n_started +=
        n_started == 1 && pthread_create(&th[1], NULL, bg_write_main, &wr) == 0;
    rv_clock_sleep_ms(150);
    for (int i = 0; i < C.n; i++)
        if (i != L)
            cluster_signal(&C, i, SIGCONT);
    for (int k = 0; k < n_started; k++)
        pthread_join(th[k], NULL);
    CHECK(n_started == 2);
    CHECK_OK(del.w.code, del.w.msg);
    printf("revocation at apply: revoke at index %llu, the write after it at "
           "%llu: %s (%s)\n",
           (unsigned long long)del.w.index, (unsigned long long)wr.w.index,
           rv_errname(wr.w.code), wr.w.msg);
    CHECK_RC(wr.w.code, RV_EUNAUTHENTICATED, wr.w.msg);
    CHECK(wr.w.index >= del.w.index && del.w.index > 0);
    CHECK(cluster_converged(&C, 10000, NULL));
}

/* ---- Expiry -------------------------------------------------------------- */

static int64_t
token_expiry(const char *team, const char *id)
{
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    int64_t at = -1;
    if (admin_read(L, ca.text, 0, RV__ADMIN_OP__ADMIN_TOKENS, team, &resp,
                   errmsg) != RV_OK)
        return -1;
    for (size_t k = 0; k < resp->n_tokens; k++)
        if (strcmp(resp->tokens[k]->token_id, id) == 0)
            at = resp->tokens[k]->expires_at_ms;
    rvc_response_free(resp);
    return at;
}

static void
test_expiry(void)
{
    struct tok t;
    struct wres w;
    struct cmdb b;
    CHECK(setup() == 0);
    int64_t made = (int64_t)rv_clock_wall_ms();
    CHECK_OK(token_new(ca.text, &t, "t3", RV__ROLE__ROLE_WRITER, 2, &w), w.msg);
    int64_t exp = token_expiry("t3", t.id);
    CHECK(exp >= made + 2000 && exp <= made + 2000 + 1000);
    CHECK_OK(write_cmd(L, t.text, cmd_log_lines(&b, "t3_main", "e"), &w),
             w.msg);
    for (int i = 0; i < C.n; i++) {
        Rv__Response *resp;
        char errmsg[RV_ERRMSG_SIZE];
        CHECK_OK(get_run(i, t.text, 1, "t3_main", &resp, errmsg), errmsg);
        rvc_response_free(resp);
    }
    /* Writes until refused: an acknowledged one was sent before the expiry,
     * a refused one answered after it. */
    int is_refused = 0, n_ok = 0, n_apply = 0;
    uint64_t until = rv_clock_mono_ms() + 5000;
    while (!is_refused && rv_clock_mono_ms() < until) {
        int64_t sent = (int64_t)rv_clock_wall_ms();
        int rc = write_cmd(L, t.text, cmd_log_lines(&b, "t3_main", "e"), &w);
        int64_t done = (int64_t)rv_clock_wall_ms();
        if (rc == RV_OK) {
            n_ok++;
            CHECK(sent < exp);
        } else {
            CHECK_RC(rc, RV_EUNAUTHENTICATED, w.msg);
            CHECK(done >= exp);
            CHECK(strstr(w.msg, "expired") != NULL);
            n_apply += w.index != 0;
            is_refused = 1;
        }
        rv_clock_sleep_ms(20);
    }
    printf("expiry: %d writes before the expiry, refused %s\n", n_ok,
           n_apply ? "at apply" : "at the door");
    CHECK(is_refused);
    CHECK(cluster_converged(&C, 10000, NULL));
    CHECK(refused_everywhere(t.text, "t3_main", "expired"));
}

/* ---- A new token, at once on a follower --------------------------------- */

struct ryt {
    const char *token;
    uint64_t min_index;
    int code;
    char msg[RV_ERRMSG_SIZE];
};

static void *
ryt_main(void *arg)
{
    struct ryt *y = arg;
    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    Rv__ReadOptions ro = RV__READ_OPTIONS__INIT;
    Rv__Response *resp;
    gr.run_id = "t5_main";
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    ro.has_consistency = ro.has_min_index = 1;
    ro.consistency = RV__CONSISTENCY__STALE;
    ro.min_index = y->min_index;
    req.read = &ro;
    y->code = call(F, &req, y->token, &resp, y->msg);
    if (y->code == RV_OK) {
        y->code = (int)resp->code;
        snprintf(y->msg, sizeof y->msg, "%s",
                 resp->message ? resp->message : "");
    }
    rvc_response_free(resp);
    return NULL;
}

/* A token used at the index that made it, on a follower that has not
 * applied it yet (stopped): the read waits for min_index, then the token
 * is known. Authenticating before that wait answers "invalid token". */
static void
test_read_your_token(void)
{
    struct tok t;
    struct wres w;
    struct ryt y;
    pthread_t th;
    CHECK(setup() == 0);
    CHECK(cluster_converged(&C, 10000, NULL));
    cluster_signal(&C, F, SIGSTOP);
    int rc = token_new(ca.text, &t, "t5", RV__ROLE__ROLE_READER, 0, &w);
    memset(&y, 0, sizeof y);
    y.token = t.text;
    y.min_index = w.index;
    int is_started =
        rc == RV_OK && pthread_create(&th, NULL, ryt_main, &y) == 0;
    rv_clock_sleep_ms(300);
    cluster_signal(&C, F, SIGCONT);
    if (is_started)
        pthread_join(th, NULL);
    CHECK_OK(rc, w.msg);
    CHECK(is_started);
    CHECK_OK(y.code, y.msg);
}

/* ---- Quotas under concurrent writers ------------------------------------- */

#define Q_THREADS 4
#define Q_CREATES 6
#define Q_BATCHES 12

struct q_writer {
    int no;
    const char *token;
    int n_created, n_create_quota, n_batch_ok, n_batch_quota, n_other;
    int other_code;
    char run[32]; /* The run it logged to. */
};

/* Creates Q_CREATES runs in t9, then logs Q_BATCHES batches of 100 points
 * to its last run. */
static void *
q_writer_main(void *arg)
{
    struct q_writer *q = arg;
    struct cmdb *b = malloc(sizeof *b);
    char *run = q->run;
    snprintf(q->run, sizeof q->run, "t9_main");
    for (int i = 0; b != NULL && i < Q_CREATES + Q_BATCHES; i++) {
        struct wres w;
        char id[32];
        int rc;
        if (i < Q_CREATES) {
            snprintf(id, sizeof id, "q%d_%d", q->no, i);
            rc = write_cmd(L, q->token, cmd_run_create(b, id, NULL, NULL, 0),
                           &w);
            q->n_created += rc == RV_OK;
            q->n_create_quota += rc == RV_EQUOTA;
            if (rc == RV_OK)
                snprintf(run, sizeof q->run, "%s", id);
        } else {
            rc = write_cmd(L, q->token,
                           cmd_log_batch(b, run, "q", 100,
                                         (int64_t)(q->no * 100000 + i * 100),
                                         2.0),
                           &w);
            q->n_batch_ok += rc == RV_OK;
            q->n_batch_quota += rc == RV_EQUOTA;
        }
        if (rc != RV_OK && rc != RV_EQUOTA) {
            q->n_other++;
            q->other_code = rc;
        }
    }
    free(b);
    return NULL;
}

/* Purging a run (t9's admin) gives its run and bytes back: a create
 * refused a moment ago is accepted. */
static void
quota_purge_frees(const char *run, const Rv__TeamInfo *before)
{
    struct cmdb b;
    struct wres w;
    Rv__TeamInfo after;
    const char *admin = team_tok[9][ROLE_A].text;
    CHECK_OK(write_cmd(L, admin,
                       cmd_run_ref(&b, run, RV__COMMAND__BODY_RUN_DELETE), &w),
             w.msg);
    CHECK_OK(write_cmd(L, admin,
                       cmd_run_ref(&b, run, RV__COMMAND__BODY_RUN_PURGE), &w),
             w.msg);
    CHECK_OK(team_info(L, "t9", &after), "t9");
    printf("quota t9: purging %s gave back 1 run and %llu bytes\n", run,
           (unsigned long long)(before->n_bytes - after.n_bytes));
    CHECK_EQ_U64(after.n_runs, before->n_runs - 1);
    CHECK(after.n_bytes < before->n_bytes);
    CHECK_OK(write_cmd(L, team_tok[9][ROLE_W].text,
                       cmd_run_create(&b, "q_after_purge", NULL, NULL, 0), &w),
             w.msg);
    CHECK(cluster_converged(&C, 10000, NULL));
}

static void
test_quota_runs_bytes(void)
{
    struct wres w;
    struct cmdb b;
    Rv__TeamInfo ti;
    CHECK(setup() == 0);
    CHECK_OK(team_info(L, "t9", &ti), "t9");
    uint64_t max_runs = ti.n_runs + 10, max_bytes = ti.n_bytes + 40000;
    CHECK_OK(write_cmd(L, ca.text,
                       cmd_quota_put(&b, "t9", max_runs, max_bytes, UNSET), &w),
             w.msg);
    struct q_writer qs[Q_THREADS];
    pthread_t th[Q_THREADS];
    for (int k = 0; k < Q_THREADS; k++) {
        memset(&qs[k], 0, sizeof qs[k]);
        qs[k].no = k;
        qs[k].token = team_tok[9][ROLE_W].text;
        CHECK(pthread_create(&th[k], NULL, q_writer_main, &qs[k]) == 0);
    }
    int created = 0, create_quota = 0, batch_ok = 0, batch_quota = 0;
    int other = 0;
    for (int k = 0; k < Q_THREADS; k++) {
        pthread_join(th[k], NULL);
        created += qs[k].n_created;
        create_quota += qs[k].n_create_quota;
        batch_ok += qs[k].n_batch_ok;
        batch_quota += qs[k].n_batch_quota;
        if (qs[k].n_other > 0) {
            fprintf(stderr, "writer %d: %s\n", k, rv_errname(qs[k].other_code));
            other += qs[k].n_other;
        }
    }
    CHECK(cluster_converged(&C, 10000, NULL));
    Rv__TeamInfo at[3];
    for (int i = 0; i < C.n; i++)
        CHECK_OK(team_info(i, "t9", &at[i]), "t9");
    printf("quota t9: max_runs %llu, max_bytes %llu: %d runs created, %d "
           "refused; %d batches logged, %d refused; use %llu runs, %llu "
           "bytes\n",
           (unsigned long long)max_runs, (unsigned long long)max_bytes, created,
           create_quota, batch_ok, batch_quota,
           (unsigned long long)at[0].n_runs, (unsigned long long)at[0].n_bytes);
    CHECK(other == 0);
    CHECK(at[0].n_runs <= max_runs && at[0].n_bytes <= max_bytes);
    CHECK_EQ_U64(at[0].n_runs, ti.n_runs + (uint64_t)created);
    CHECK(create_quota > 0 && batch_quota > 0 && batch_ok > 0);
    for (int i = 1; i < C.n; i++)
        CHECK(at[i].n_runs == at[0].n_runs && at[i].n_bytes == at[0].n_bytes);
    is_quota_done = 1;
    quota_purge_frees(qs[0].run, &at[0]);
}

#define RATE       1000
#define RATE_BATCH 100

struct r_writer {
    int no;
    uint64_t until_ms;
    uint64_t accepted, n_rate;
    int n_other, other_code;
    uint32_t min_retry;
};

static void *
r_writer_main(void *arg)
{
    struct r_writer *r = arg;
    struct cmdb *b = malloc(sizeof *b);
    r->min_retry = UINT32_MAX;
    for (int i = 0; b != NULL && rv_clock_mono_ms() < r->until_ms; i++) {
        struct wres w;
        int rc = write_cmd(
            L, team_tok[8][ROLE_W].text,
            cmd_log_batch(b, "t8_main", "rate", RATE_BATCH,
                          (int64_t)(r->no + 1) * 1000000 + i * RATE_BATCH, 3.0),
            &w);
        if (rc == RV_OK) {
            r->accepted += RATE_BATCH;
        } else if (rc == RV_ERATE) {
            r->n_rate++;
            if (w.retry_after_s < r->min_retry)
                r->min_retry = w.retry_after_s;
            rv_clock_sleep_ms(20);
        } else {
            r->n_other++;
            r->other_code = rc;
            rv_clock_sleep_ms(20);
        }
    }
    free(b);
    return NULL;
}

static uint64_t
run_points(const char *run)
{
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    uint64_t n = UINT64_MAX;
    if (get_run(L, ca.text, 0, run, &resp, errmsg) == RV_OK && resp->run)
        n = resp->run->n_points;
    rvc_response_free(resp);
    return n;
}

/* Batches as fast as they are answered until the first RV_ERATE: the
 * number sent (0 if never refused, or on another error); points accepted
 * into *accepted, the refusal's Retry-After into *retry. */
static int
rate_burst(uint64_t *accepted, uint32_t *retry)
{
    struct cmdb b;
    struct wres w;
    for (int n = 1; n <= 50; n++) {
        int rc = write_cmd(L, team_tok[8][ROLE_W].text,
                           cmd_log_batch(&b, "t8_main", "rate", RATE_BATCH,
                                         (int64_t)n * RATE_BATCH, 3.0),
                           &w);
        if (rc == RV_ERATE) {
            *retry = w.retry_after_s;
            return n;
        }
        if (rc != RV_OK) {
            fprintf(stderr, "burst: %s (%s)\n", rv_errname(rc), w.msg);
            return 0;
        }
        *accepted += RATE_BATCH;
    }
    return 0;
}

static void
test_quota_rate(void)
{
    struct wres w;
    struct cmdb b;
    CHECK(setup() == 0);
    CHECK_OK(
        write_cmd(L, ca.text, cmd_quota_put(&b, "t8", UNSET, UNSET, RATE), &w),
        w.msg);
    rv_clock_sleep_ms(1200); /* The leader rereads a team's rate each s. */
    uint64_t p0 = run_points("t8_main");
    /* A burst: refused within about a second's worth. */
    uint64_t burst = 0;
    uint32_t retry = 0;
    int n_sent = rate_burst(&burst, &retry);
    CHECK(n_sent > 0 && n_sent <= RATE / RATE_BATCH + 5 && retry >= 1);
    /* Two writers for 3 s, not waiting as told: admitted stays ~RATE/s. */
    struct r_writer rs[2];
    pthread_t th[2];
    uint64_t t0 = rv_clock_mono_ms();
    for (int k = 0; k < 2; k++) {
        memset(&rs[k], 0, sizeof rs[k]);
        rs[k].no = k + 1;
        rs[k].until_ms = t0 + 3000;
        CHECK(pthread_create(&th[k], NULL, r_writer_main, &rs[k]) == 0);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    double secs = (double)(rv_clock_mono_ms() - t0) / 1000.0;
    uint64_t acc = rs[0].accepted + rs[1].accepted;
    printf("rate t8: %d points/s; burst refused after %d batches; then %llu "
           "points in %.2f s (%.0f/s), %llu refusals, min Retry-After %u s\n",
           RATE, n_sent, (unsigned long long)acc, secs, (double)acc / secs,
           (unsigned long long)(rs[0].n_rate + rs[1].n_rate),
           rs[0].min_retry < rs[1].min_retry ? rs[0].min_retry
                                             : rs[1].min_retry);
    CHECK(rs[0].n_other == 0 && rs[1].n_other == 0);
    CHECK(rs[0].min_retry >= 1 && rs[1].min_retry >= 1);
    CHECK((double)acc <= RATE * secs + RATE_BATCH * 2);
    CHECK((double)acc >= RATE * secs * 0.5);
    /* Every point acknowledged is stored, and no other. */
    CHECK_EQ_U64(run_points("t8_main"), p0 + burst + acc);
    CHECK_OK(
        write_cmd(L, ca.text, cmd_quota_put(&b, "t8", UNSET, UNSET, 0), &w),
        w.msg);
    CHECK(cluster_converged(&C, 10000, NULL));
}

/* ---- Audit --------------------------------------------------------------- */

static const Rv__AuditEvent *
audit_find(const Rv__Response *resp, const char *action, const char *target,
           const char *token_id)
{
    for (size_t k = 0; k < resp->n_events; k++) {
        const Rv__AuditEvent *e = resp->events[k];
        if (strcmp(e->action, action) == 0 &&
            (target == NULL || (e->target && strcmp(e->target, target) == 0)) &&
            (token_id == NULL ||
             (e->token_id && strcmp(e->token_id, token_id) == 0)))
            return e;
    }
    return NULL;
}

/* The cluster-admin sees every admin action, each with its principal,
 * index and time. Returns the number of events, 0 on a failure. */
static size_t
audit_all(void)
{
    Rv__Response *all;
    char errmsg[RV_ERRMSG_SIZE];
    if (admin_read(L, ca.text, 0, RV__ADMIN_OP__ADMIN_AUDIT, NULL, &all,
                   errmsg) != RV_OK)
        return 0;
    int ok = audit_find(all, "auth_on", NULL, NULL) != NULL &&
             audit_find(all, "token_put", revoked_tok.id, ca.id) != NULL &&
             audit_find(all, "token_del", revoked_tok.id, ca.id) != NULL;
    for (int t = 0; ok && t < N_TEAMS; t++) {
        const Rv__AuditEvent *e =
            audit_find(all, "team_put", team_names[t], ca.id);
        ok = e != NULL && e->index > 0 && e->time_ms > 0 &&
             strcmp(e->team, team_names[t]) == 0 &&
             audit_find(all, "token_put", team_tok[t][ROLE_A].id, ca.id);
    }
    if (ok && is_quota_done)
        ok = audit_find(all, "quota_put", "t9", ca.id) != NULL;
    int has_revoke = !is_revoke_done;
    for (size_t k = 0; k < all->n_events; k++) {
        has_revoke |= strcmp(all->events[k]->action, "token_del") == 0 &&
                      all->events[k]->index == revoke_index;
        if (k > 0 && all->events[k]->index < all->events[k - 1]->index)
            ok = 0;
    }
    size_t n = ok && has_revoke ? all->n_events : 0;
    rvc_response_free(all);
    return n;
}

static void
test_audit(void)
{
    Rv__Response *mine, *resp;
    char errmsg[RV_ERRMSG_SIZE];
    CHECK(setup() == 0);
    CHECK(cluster_converged(&C, 10000, NULL));
    size_t n_all = audit_all();
    CHECK(n_all > 0);
    /* t0's admin sees t0's events only (on a follower too), its own run
     * deletions in the matrix among them. */
    for (int i = 0; i < 2; i++) {
        CHECK_OK(admin_read(i == 0 ? L : F, team_tok[0][ROLE_A].text, i,
                            RV__ADMIN_OP__ADMIN_AUDIT, NULL, &mine, errmsg),
                 errmsg);
        int ok = mine->n_events > 0 && mine->n_events < n_all &&
                 audit_find(mine, "token_put", team_tok[0][ROLE_R].id, ca.id);
        if (is_matrix_done)
            ok = ok &&
                 audit_find(mine, "run_delete", NULL, team_tok[0][ROLE_A].id);
        for (size_t k = 0; ok && k < mine->n_events; k++)
            ok = strcmp(mine->events[k]->team, "t0") == 0;
        rvc_response_free(mine);
        CHECK(ok);
    }
    /* Asking for another team's events: none. */
    CHECK_OK(admin_read(L, team_tok[1][ROLE_A].text, 0,
                        RV__ADMIN_OP__ADMIN_AUDIT, "t0", &resp, errmsg),
             errmsg);
    size_t n_other = resp->n_events;
    rvc_response_free(resp);
    CHECK_EQ_U64(n_other, 0);
    /* Readers and writers are refused. */
    for (int role = ROLE_R; role <= ROLE_W; role++) {
        int rc = admin_read(L, team_tok[0][role].text, 0,
                            RV__ADMIN_OP__ADMIN_AUDIT, NULL, &resp, errmsg);
        rvc_response_free(resp);
        CHECK_RC(rc, RV_EPERM, errmsg);
    }
}

/* ---- A follower catching up under auth ---------------------------------- */

/* Without TLS a node fetches with its node token (--node-token-file,
 * default DATA_DIR/admin.token), which only the bootstrap leader has: give
 * node i one, as an operator must before restarting it. Without it the
 * node stalls in "catching up" (RV_TEST_AUTH_NO_NODE_TOKEN=1 shows it). */
static void
node_token_give(int i)
{
    char path[600];
    snprintf(path, sizeof path, "%s/admin.token", C.nodes[i].dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return;
    char line[RV_TOKEN_TEXT_CHARS + 2];
    snprintf(line, sizeof line, "%s\n", ca.text);
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
        fprintf(stderr, "cannot write %s\n", path);
    close(fd);
}

/* A follower down while the log passes several snapshots catches up by
 * fetching records from its peers: with auth on, only a peer with a
 * certificate or a cluster-admin token may fetch. */
static void
test_catch_up(void)
{
    struct cmdb *b = malloc(sizeof *b);
    struct wres w;
    CHECK(b != NULL);
    if (setup() != 0) {
        free(b);
        CHECK(0);
    }
    int lag = F;
    cluster_signal(&C, lag, SIGKILL);
    cluster_reap(&C, lag, 5000);
    /* Over 2 MiB of log (snapshots every MiB). */
    int rc = RV_OK, k = 0;
    for (; k < 600 && rc == RV_OK; k++)
        rc = write_cmd(L, team_tok[4][ROLE_W].text,
                       cmd_log_batch(b, "t4_main", "fill", MAX_POINTS,
                                     10000 + (int64_t)k * MAX_POINTS, 1.5),
                       &w);
    free(b);
    CHECK_OK(rc, w.msg);
    if (getenv("RV_TEST_AUTH_NO_NODE_TOKEN") == NULL)
        node_token_give(lag);
    cluster_start(&C, lag, 0);
    int is_conv = cluster_converged(&C, 30000, NULL);
    Rv__Request req = RV__REQUEST__INIT;
    Rv__StatusRequest sr = RV__STATUS_REQUEST__INIT;
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    uint64_t n_catch_ups = 0, n_fetched = 0;
    req.body_case = RV__REQUEST__BODY_STATUS;
    req.status = &sr;
    if (call(lag, &req, ca.text, &resp, errmsg) == RV_OK &&
        resp->self != NULL) {
        n_catch_ups = resp->self->n_catch_ups;
        n_fetched = resp->self->n_fetched_records;
    }
    rvc_response_free(resp);
    printf("catch-up: node %d down for %d writes, then %s (%llu catch-ups, "
           "%llu records fetched)\n",
           lag + 1, k, is_conv ? "converged" : "NOT converged",
           (unsigned long long)n_catch_ups, (unsigned long long)n_fetched);
    CHECK(is_conv);
}

/* 1 if the first 4 KiB of the file at path hold what. */
static int
log_has(const char *path, const char *what)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, what) != NULL;
}

/* ---- Joining an auth-on cluster ------------------------------------------ */

/* Voters the leader lists; *has_id set if node id is a member at all. */
static int
count_voters(int id, int *has_id)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    Rv__Response *resp;
    char errmsg[RV_ERRMSG_SIZE];
    int n = -1;
    *has_id = 0;
    cr.op = RV__CLUSTER_OP__CLUSTER_STATUS;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    int leader = cluster_leader(&C, 5000);
    if (leader < 0 ||
        read_req(leader, &req, ca.text, 0, &resp, errmsg) != RV_OK)
        return -1;
    n = 0;
    for (size_t i = 0; i < resp->n_nodes; i++) {
        n += resp->nodes[i]->role && strcmp(resp->nodes[i]->role, "voter") == 0;
        *has_id |= (int)resp->nodes[i]->id == id;
    }
    rvc_response_free(resp);
    return n;
}

/* A node without a credential cannot join; one given the cluster-admin
 * token (DATA_DIR/admin.token) joins as a voter and converges. */
static void
test_join(void)
{
    int has = 0;
    CHECK(setup() == 0);
    C.n = 5;
    CHECK(mkdir(C.nodes[4].dir, 0700) == 0);
    cluster_start(&C, 4, 1); /* No token. */
    uint64_t until = rv_clock_mono_ms() + 3000;
    while (rv_clock_mono_ms() < until && C.nodes[4].pid > 0 &&
           cluster_reap(&C, 4, 100) < 0)
        ;
    int voters = count_voters(5, &has);
    /* Refused for want of a token (it keeps asking). */
    int is_refused = log_has(C.nodes[4].log, "authentication is on");
    cluster_signal(&C, 4, SIGKILL);
    cluster_reap(&C, 4, 5000);
    printf("join: a node without a token: %s, %d voters\n",
           has ? "a MEMBER" : "not a member", voters);
    CHECK(voters == 3 && !has && is_refused);
    C.n = 4;
    CHECK(mkdir(C.nodes[3].dir, 0700) == 0);
    node_token_give(3);
    cluster_start(&C, 3, 1);
    until = rv_clock_mono_ms() + 30000;
    while ((voters = count_voters(4, &has)) != 4 && rv_clock_mono_ms() < until)
        rv_clock_sleep_ms(100);
    printf("join: a node with the token: %d voters\n", voters);
    CHECK(voters == 4 && has);
    CHECK(cluster_converged(&C, 30000, NULL));
}

/* ---- No secret is written anywhere but admin.token ------------------------
 */

#define N_SECRETS 5

static const char *secrets[N_SECRETS];
static int n_leaks;
static char leak_path[512];

/* The secret part of a token's text: what follows "rvt_<id>_". */
static const char *
secret_of(const struct tok *t)
{
    return t->text + 4 + RV_TOKEN_ID_CHARS + 1;
}

static int
scan_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    static char buf[(1 << 20) + 64];
    (void)sb;
    if (flag != FTW_F || strcmp(path + ftw->base, "admin.token") == 0)
        return 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    size_t keep = 0; /* Bytes carried over between reads. */
    ssize_t n;
    while ((n = read(fd, buf + keep, sizeof buf - 64 - keep)) > 0) {
        size_t len = keep + (size_t)n;
        for (int k = 0; k < N_SECRETS; k++)
            if (memmem(buf, len, secrets[k], 64) != NULL) {
                n_leaks++;
                snprintf(leak_path, sizeof leak_path, "%s", path);
            }
        keep = len < 63 ? len : 63;
        memmove(buf, buf + len - keep, keep);
    }
    close(fd);
    return 0;
}

/* Tokens' secrets are never logged nor stored: the nodes' logs, logs of
 * record and stores hold none of them (admin.token aside). */
static void
test_no_secrets_stored(void)
{
    CHECK(setup() == 0);
    secrets[0] = secret_of(&ca);
    secrets[1] = secret_of(&team_tok[0][ROLE_R]);
    secrets[2] = secret_of(&team_tok[0][ROLE_A]);
    secrets[3] = secret_of(&revoked_tok);
    secrets[4] = secret_of(&team_tok[9][ROLE_W]);
    n_leaks = 0;
    CHECK(nftw(C.tmp, scan_one, 16, FTW_PHYS) == 0);
    if (n_leaks > 0)
        RV_CHECK_FAIL("a token's secret is in %s", leak_path);
}

/* ---- Auth off on a non-loopback address ---------------------------------- */

/* Start node 0 of c with its HTTP address on 0.0.0.0 (auth off), with
 * --insecure if is_insecure (a later flag overrides cluster_start's). */
static void
insecure_start(struct cluster *c, int is_insecure)
{
    static char http[32];
    snprintf(http, sizeof http, "0.0.0.0:%d", c->port);
    c->extra[0] = "--http-addr";
    c->extra[1] = http;
    c->extra[2] = is_insecure ? "--insecure" : NULL;
    c->extra[3] = NULL;
    truncate(c->nodes[0].log, 0);
    cluster_start(c, 0, 0);
}

static void
test_insecure(void)
{
    struct cluster c2;
    int failed = 1;
    if (is_setup || is_setup_failed) {
        fprintf(stderr, "insecure runs before the shared cluster; skipped\n");
        return;
    }
    cluster_init(&c2, "insecure", 1, "buffered");
    insecure_start(&c2, 0);
    int code = cluster_reap(&c2, 0, 10000);
    if (code != RV_EXIT_USAGE || !log_has(c2.nodes[0].log, "--insecure")) {
        RV_CHECK_FAIL("auth off on 0.0.0.0: exit %d, want %d and a message "
                      "naming --insecure",
                      code, RV_EXIT_USAGE);
        goto done;
    }
    insecure_start(&c2, 1);
    struct cluster_nstat st;
    uint64_t until = rv_clock_mono_ms() + 10000;
    do {
        cluster_node_status(&c2, 0, &st); /* Auth off: no token needed. */
        if (!st.is_up)
            rv_clock_sleep_ms(50);
    } while (!st.is_up && c2.nodes[0].pid > 0 && rv_clock_mono_ms() < until);
    if (!st.is_up) {
        RV_CHECK_FAIL("--insecure with auth off on 0.0.0.0 did not start");
        goto done;
    }
    failed = 0;
done:
    cluster_done(&c2, failed);
}

static const struct rv_test tests[] = {
    {"insecure", test_insecure},
    {"setup", test_setup},
    {"matrix", test_matrix},
    {"isolation", test_isolation},
    {"revocation", test_revocation},
    {"revocation_at_apply", test_revocation_at_apply},
    {"expiry", test_expiry},
    {"read_your_token", test_read_your_token},
    {"quota_runs_bytes", test_quota_runs_bytes},
    {"quota_rate", test_quota_rate},
    {"audit", test_audit},
    {"catch_up", test_catch_up},
    {"join", test_join},
    {"no_secrets_stored", test_no_secrets_stored},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_auth PATH/TO/runvault [TEST]\n");
        return 2;
    }
    cluster_set_binary(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    argv[1] = argv[0];
    uint64_t t0 = rv_clock_mono_ms();
    int rc = rv_test_main(argc - 1, argv + 1, tests);
    if (C.tmp != NULL)
        cluster_done(&C, rc != 0);
    fprintf(stderr, "test_auth: %llu ms\n",
            (unsigned long long)(rv_clock_mono_ms() - t0));
    return rc;
}
