/* Who is calling, and may they (DESIGN §11): the token of a request is
 * authenticated on the node answering against its replicated table, the
 * principal's role is checked against the kind of request, and a read is
 * scoped to the principal's team inside the store (store_read_begin).
 * Writes are checked here at the door and again by apply at their log
 * position (store_auth.c); that second check is the one that counts.
 * Also: the points/s admission of the leader and the admin reads. */
#include "base/clock.h"
#include "base/token.h"
#include "rpc/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Settings ----------------------------------------------------------- */

void
rpc__auth_init(struct rpc_server *s)
{
    s->is_auth_on = 1;
    s->node_token[0] = '\0';
    pthread_mutex_init(&s->bucket_lock, NULL);
    memset(s->buckets, 0, sizeof s->buckets);
}

void
rpc__auth_close(struct rpc_server *s)
{
    memset(s->node_token, 0, sizeof s->node_token);
    pthread_mutex_destroy(&s->bucket_lock);
}

void
rpc_server_set_auth(struct rpc_server *s, int is_on, const char *node_token)
{
    s->is_auth_on = is_on;
    snprintf(s->node_token, sizeof s->node_token, "%s",
             node_token != NULL ? node_token : "");
}

/* ---- Authentication ------------------------------------------------------ */

int
rpc__auth_is_on(struct rpc_caller *c)
{
    if (c->s->is_auth_on || atomic_load(&c->s->is_auth_seen))
        return 1;
    struct store_read *rd;
    if (store_read_begin(replica_store(c->s->rep), STORE_EVERY_TEAM, &rd,
                         NULL) != RV_OK)
        return 1; /* Cannot tell: deny. */
    int on = store_auth_is_on(rd);
    store_read_end(rd);
    if (on) /* Auth never goes off again: no need to look twice. */
        atomic_store(&c->s->is_auth_seen, 1);
    return on;
}

/* The token of req, checked against t (its record) and now. */
static int
rpc__token_check(const char *text, const struct store_token *t, int64_t now,
                 char *errmsg)
{
    uint8_t sha[RV_TOKEN_SHA256];
    rv_token_hash(text, strlen(text), sha);
    if (!rv_token_hash_equal(sha, t->sha256)) {
        rv_errmsg_printf(errmsg, "invalid token");
        return RV_EUNAUTHENTICATED;
    }
    if (t->is_revoked) {
        rv_errmsg_printf(errmsg, "token %s was revoked", t->token_id);
        return RV_EUNAUTHENTICATED;
    }
    if (t->expires_at_ms > 0 && now >= t->expires_at_ms) {
        rv_errmsg_printf(errmsg, "token %s has expired", t->token_id);
        return RV_EUNAUTHENTICATED;
    }
    return RV_OK;
}

/* A request that speaks for itself (not forwarded for a client) over a
 * TLS connection whose certificate the cluster CA signed. */
static int
rpc__is_peer_request(const struct rpc_caller *c, const Rv__Request *req)
{
    return c->is_peer && !(req->has_is_forwarded && req->is_forwarded);
}

/* Token id's record, from this node's replicated table. */
static int
rpc__token_lookup(struct rpc_caller *c, const char *id, struct store_token *t,
                  char *errmsg)
{
    struct store_read *rd;
    int rc = store_read_begin(replica_store(c->s->rep), STORE_EVERY_TEAM, &rd,
                              errmsg);
    if (rc != RV_OK)
        return rc;
    rc = store_token_get(rd, id, t, errmsg);
    store_read_end(rd);
    return rc;
}

/* A token unknown here, on a read at a min_index this node has not
 * applied yet (a token made at that index, used at once on a lagging
 * follower): wait for it, a bounded while, and 1 if it came. Only a miss
 * waits, so a refused token does not hold a worker any longer. */
#define RPC_AUTH_MISS_WAIT_MS 2000

static int
rpc__auth_wait(struct rpc_caller *c, const Rv__Request *req)
{
    return req->read != NULL && req->read->has_min_index &&
           req->read->min_index > 0 &&
           replica_wait_applied(c->s->rep, req->read->min_index,
                                RPC_AUTH_MISS_WAIT_MS) == RV_OK;
}

int
rpc__authenticate(struct rpc_caller *c, const Rv__Request *req,
                  struct rpc_principal *p, char *errmsg)
{
    char id[RV_TOKEN_ID_CHARS + 1];
    struct store_token t;
    memset(p, 0, sizeof *p);
    p->is_peer = rpc__is_peer_request(c, req);
    if (!rpc__auth_is_on(c)) {
        p->is_open = 1;
        p->role = RV__ROLE__ROLE_CLUSTER_ADMIN;
        snprintf(p->team, sizeof p->team, "default");
        return RV_OK;
    }
    if (req->token == NULL && p->is_peer) {
        p->role = RPC_ROLE_NONE; /* A node: node-to-node requests only. */
        return RV_OK;
    }
    if (req->token == NULL) {
        rv_errmsg_printf(errmsg, "authentication is on: send a token "
                                 "(Authorization: Bearer, RUNVAULT_TOKEN)");
        return RV_EUNAUTHENTICATED;
    }
    if (rv_token_parse(req->token, strlen(req->token), id) != RV_OK) {
        rv_errmsg_printf(errmsg, "malformed token");
        return RV_EUNAUTHENTICATED;
    }
    int rc = rpc__token_lookup(c, id, &t, errmsg);
    if (rc == RV_ENOTFOUND && rpc__auth_wait(c, req))
        rc = rpc__token_lookup(c, id, &t, errmsg);
    if (rc == RV_ENOTFOUND) {
        rv_errmsg_printf(errmsg, "invalid token");
        return RV_EUNAUTHENTICATED;
    }
    if (rc == RV_OK)
        rc = rpc__token_check(req->token, &t, (int64_t)rv_clock_wall_ms(),
                              errmsg);
    if (rc != RV_OK)
        return rc;
    snprintf(p->token_id, sizeof p->token_id, "%s", t.token_id);
    snprintf(p->team, sizeof p->team, "%s", t.team);
    snprintf(p->name, sizeof p->name, "%s", t.name);
    p->role = t.role;
    return RV_OK;
}

/* ---- Authorisation at the door ------------------------------------------- */

static int
rpc__need(const struct rpc_principal *p, int role, const char *what,
          char *errmsg)
{
    if (p->role >= role)
        return RV_OK;
    rv_errmsg_printf(errmsg, "%s needs the %s role (token %s is %s)", what,
                     proto_role_name(role), p->token_id,
                     proto_role_name(p->role));
    return RV_EPERM;
}

/* Node-to-node requests: a peer (its TLS certificate signed by the cluster
 * CA) or a cluster-admin. */
static int
rpc__need_peer(const struct rpc_principal *p, const char *what, char *errmsg)
{
    if (p->is_peer)
        return RV_OK;
    return rpc__need(p, RV__ROLE__ROLE_CLUSTER_ADMIN, what, errmsg);
}

static int
rpc__authorise_admin(const Rv__AdminRequest *a, const struct rpc_principal *p,
                     char *errmsg)
{
    switch (a->op) {
    case RV__ADMIN_OP__ADMIN_TOKENS:
        return rpc__need(p, RV__ROLE__ROLE_ADMIN, "listing tokens", errmsg);
    case RV__ADMIN_OP__ADMIN_AUDIT:
        return rpc__need(p, RV__ROLE__ROLE_ADMIN, "reading the audit log",
                         errmsg);
    default: /* whoami, teams (a team sees its own) */
        return RV_OK;
    }
}

/* Commands only nodes propose: membership and auth_on. */
static int
rpc__is_node_command(const Rv__Command *cmd)
{
    return cmd->body_case == RV__COMMAND__BODY_NODE_PUT ||
           cmd->body_case == RV__COMMAND__BODY_NODE_DEL ||
           cmd->body_case == RV__COMMAND__BODY_AUTH_ON;
}

int
rpc__authorise(const Rv__Request *req, const struct rpc_principal *p,
               char *errmsg)
{
    switch (req->body_case) {
    case RV__REQUEST__BODY_WRITE:
        for (size_t i = 0; i < req->write->n_commands; i++) {
            if (rpc__is_node_command(req->write->commands[i]))
                return rpc__need_peer(
                    p, proto_command_name(req->write->commands[i]), errmsg);
        }
        return RV_OK; /* Each command is judged at apply. */
    case RV__REQUEST__BODY_FETCH:
        return rpc__need_peer(p, "fetching the log", errmsg);
    case RV__REQUEST__BODY_BACKUP:
        return rpc__need(p, RV__ROLE__ROLE_CLUSTER_ADMIN, "taking a backup",
                         errmsg);
    case RV__REQUEST__BODY_CLUSTER:
        if (req->cluster->op == RV__CLUSTER_OP__CLUSTER_STATUS &&
            !req->cluster->is_notice)
            return RV_OK;
        return rpc__need_peer(p, "changing the cluster", errmsg);
    case RV__REQUEST__BODY_ADMIN:
        return rpc__authorise_admin(req->admin, p, errmsg);
    default: /* Reads and status: any principal, scoped to its team. */
        return RV_OK;
    }
}

const char *
rpc__scope(const struct rpc_principal *p)
{
    /* A node without a token has team "": no run is in it. */
    return p->role == RV__ROLE__ROLE_CLUSTER_ADMIN ? STORE_EVERY_TEAM : p->team;
}

void
rpc__whoami(const struct rpc_principal *p, struct rpc_reply *rp)
{
    rp->principal = (Rv__Principal)RV__PRINCIPAL__INIT;
    snprintf(rp->p_id, sizeof rp->p_id, "%s", p->token_id);
    snprintf(rp->p_team, sizeof rp->p_team, "%s", p->team);
    snprintf(rp->p_name, sizeof rp->p_name, "%s", p->name);
    rp->principal.token_id = rp->p_id;
    rp->principal.team = rp->p_team;
    rp->principal.name = rp->p_name;
    rp->principal.role = (Rv__Role)p->role;
    rp->resp.principal = &rp->principal;
}

/* ---- Stamping a write --------------------------------------------------- */

#define RPC_MAX_EXPIRES_IN_S (10ull * 366 * 86400)

int
rpc__write_stamp_check(const Rv__WriteRequest *wr, char *errmsg)
{
    for (size_t i = 0; i < wr->n_commands; i++) {
        const Rv__Command *cmd = wr->commands[i];
        if (cmd->body_case == RV__COMMAND__BODY_TOKEN_PUT &&
            cmd->token_put->has_expires_in_s &&
            (cmd->token_put->expires_in_s == 0 ||
             cmd->token_put->expires_in_s > RPC_MAX_EXPIRES_IN_S)) {
            rv_errmsg_printf(errmsg, "expires_in_s must be 1..%llu",
                             (unsigned long long)RPC_MAX_EXPIRES_IN_S);
            return RV_EINVAL;
        }
    }
    return RV_OK;
}

/* ---- Points per second (leader admission) -------------------------------- */

/* The rate of team, read from the store at most once a second. */
static struct rpc_bucket *
rpc__bucket(struct rpc_server *s, const char *team, uint64_t now)
{
    struct rpc_bucket *b = NULL, *oldest = &s->buckets[0];
    for (size_t i = 0; i < RPC_BUCKETS; i++) {
        if (strcmp(s->buckets[i].team, team) == 0) {
            b = &s->buckets[i];
            break;
        }
        if (s->buckets[i].used_ms < oldest->used_ms)
            oldest = &s->buckets[i];
    }
    if (b == NULL) {
        b = oldest;
        memset(b, 0, sizeof *b);
        snprintf(b->team, sizeof b->team, "%s", team);
    }
    b->used_ms = now;
    if (b->read_ms != 0 && now - b->read_ms < 1000)
        return b;
    struct store_read *rd;
    struct store_team *teams = NULL;
    size_t n = 0;
    b->rate = 0;
    if (store_read_begin(replica_store(s->rep), STORE_EVERY_TEAM, &rd, NULL) ==
        RV_OK) {
        if (store_teams_list(rd, team, &teams, &n, NULL) == RV_OK && n == 1)
            b->rate = teams[0].max_points_per_s;
        free(teams);
        store_read_end(rd);
    }
    if (b->read_ms == 0) {
        b->tokens = (double)b->rate; /* A full second's burst to start. */
        b->last_ms = now;
    }
    b->read_ms = now;
    return b;
}

int
rpc__admit_points(struct rpc_server *s, const char *team, uint64_t n_points,
                  uint32_t *retry_after_s, char *errmsg)
{
    uint64_t now = rv_clock_mono_ms();
    int rc = RV_OK;
    if (n_points == 0 || strcmp(team, "*") == 0)
        return RV_OK;
    pthread_mutex_lock(&s->bucket_lock);
    struct rpc_bucket *b = rpc__bucket(s, team, now);
    if (b->rate > 0) {
        double cap = (double)b->rate;
        b->tokens += (double)(now - b->last_ms) * cap / 1000.0;
        if (b->tokens > cap)
            b->tokens = cap;
        b->last_ms = now;
        /* A batch bigger than a second's worth passes on a full bucket
         * and leaves it in debt: the average stays at the rate. */
        double want = (double)n_points < cap ? (double)n_points : cap;
        if (b->tokens < want) {
            double wait = (want - b->tokens) / cap;
            *retry_after_s = (uint32_t)(wait < 1.0 ? 1 : wait + 0.999);
            rv_errmsg_printf(errmsg,
                             "team '%s' is over its %llu points/s; retry "
                             "in %u s",
                             team, (unsigned long long)b->rate, *retry_after_s);
            rc = RV_ERATE;
        } else {
            b->tokens -= (double)n_points;
        }
    }
    pthread_mutex_unlock(&s->bucket_lock);
    return rc;
}

/* ---- Turning auth on (the node itself) ----------------------------------- */

int
rpc_server_auth_bootstrap(struct rpc_server *s, const char *token_id,
                          const uint8_t sha256[32], char *errmsg)
{
    struct rpc_caller c;
    struct replica_op op;
    Rv__Command on = RV__COMMAND__INIT, tok = RV__COMMAND__INIT;
    Rv__AuthOn ao = RV__AUTH_ON__INIT;
    Rv__TokenPut tp = RV__TOKEN_PUT__INIT;
    Rv__Command *cmds[2] = {&tok, &on}; /* auth_on needs the token. */
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    on.body_case = RV__COMMAND__BODY_AUTH_ON;
    on.auth_on = &ao;
    tp.token_sha256.data = (uint8_t *)sha256;
    tp.token_sha256.len = 32;
    tp.team = "*";
    tp.has_role = 1;
    tp.role = RV__ROLE__ROLE_CLUSTER_ADMIN;
    tp.token_id = (char *)token_id;
    tp.name = "bootstrap";
    tok.body_case = RV__COMMAND__BODY_TOKEN_PUT;
    tok.token_put = &tp;
    wr.n_commands = 2;
    wr.commands = cmds;
    rpc__caller_init(&c, s);
    int rc = rpc_write_prepare(&wr, (int64_t)rv_clock_wall_ms(), NULL, NULL,
                               &c.packed, errmsg);
    if (rc == RV_OK) {
        memset(&op, 0, sizeof op);
        op.kind = REPLICA_OP_WRITE;
        op.packed = c.packed.data;
        op.packed_len = c.packed.len;
        op.n_commands = 2;
        op.durability = REPLICA_STRICT;
        rpc__run_op(&c, &op);
        rc = op.code;
        if (rc != RV_OK)
            rv_errmsg_printf(errmsg, "%s", op.message);
        for (size_t i = 0; rc == RV_OK && i < op.n_results; i++) {
            rc = op.results[i].code;
            if (rc != RV_OK)
                rv_errmsg_printf(errmsg, "%s", op.results[i].message);
        }
        replica_op_clean(&op);
    }
    rpc__caller_close(&c);
    return rc;
}
