/* Admin records: teams (quotas), tokens and cluster members, written by
 * their commands (who may write them is store_auth.c's question) and read
 * by store_auth.c and store_nodes_list. */
#include "base/token.h"
#include "store/store_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Teams, quotas and tokens ------------------------------------------ */

int
store__team_decode(const MDB_val *v, struct store__limits *lim)
{
    const uint8_t *p = v->mv_data;
    memset(lim, 0, sizeof *lim);
    if (v->mv_size != 16 && v->mv_size != 32)
        return RV_ECORRUPT;
    lim->is_team = 1;
    lim->max_runs = rv_get_be64(p);
    lim->max_points_per_run = rv_get_be64(p + 8);
    if (v->mv_size == 32) {
        lim->max_bytes = rv_get_be64(p + 16);
        lim->max_points_per_s = rv_get_be64(p + 24);
    }
    return RV_OK;
}

static int
store__team_write(struct store_wctx *w, const char *team,
                  const struct store__limits *lim)
{
    uint8_t v[32];
    rv_put_be64(v, lim->max_runs);
    rv_put_be64(v + 8, lim->max_points_per_run);
    rv_put_be64(v + 16, lim->max_bytes);
    rv_put_be64(v + 24, lim->max_points_per_s);
    return store__put(w, STORE_DB_TEAM, team, strlen(team), v, 32);
}

/* The quotas of a team (zeros when it has no record). */
int
store__team_limits(struct store_wctx *w, const char *team, size_t n,
                   struct store__limits *lim)
{
    MDB_val v;
    memset(lim, 0, sizeof *lim);
    if (n == 0 || n > CONTRACT_MAX_TEAM_BYTES)
        return RV_OK;
    int rc =
        store__get(w->txn, w->s->dbi[STORE_DB_TEAM], team, n, &v, w->errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_OK;
    if (rc != RV_OK)
        return rc;
    return store__team_decode(&v, lim);
}

static int
store__team_check(struct store_wctx *w, const char *team)
{
    int rc =
        store__str_check(team, CONTRACT_MAX_TEAM_BYTES, 1, "team", w->errmsg);
    if (rc == RV_OK && strcmp(team, "*") == 0) {
        rv_errmsg_printf(w->errmsg, "'*' names every team, not one");
        rc = RV_EINVAL;
    }
    return rc;
}

/* A team_put with quota fields is one from before quota_put: it sets them
 * (as it always did); without them it creates the team. */
int
store__team_put(struct store_wctx *w, const Rv__TeamPut *t)
{
    struct store__limits lim;
    int rc = store__team_check(w, t->team);
    if (rc == RV_OK)
        rc = store__team_limits(w, t->team, strlen(t->team), &lim);
    if (rc != RV_OK)
        return rc;
    if (t->has_max_runs || t->has_max_points_per_run) {
        lim.max_runs = t->has_max_runs ? t->max_runs : 0;
        lim.max_points_per_run =
            t->has_max_points_per_run ? t->max_points_per_run : 0;
    } else if (lim.is_team) {
        rv_errmsg_printf(w->errmsg, "team '%s' exists", t->team);
        return RV_EEXIST;
    }
    return store__team_write(w, t->team, &lim);
}

int
store__quota_put(struct store_wctx *w, const Rv__QuotaPut *q)
{
    struct store__limits lim;
    int rc = store__team_check(w, q->team);
    if (rc == RV_OK)
        rc = store__team_limits(w, q->team, strlen(q->team), &lim);
    if (rc != RV_OK)
        return rc;
    if (!lim.is_team) {
        rv_errmsg_printf(w->errmsg, "team '%s' does not exist", q->team);
        return RV_ENOTFOUND;
    }
    if (q->has_max_runs)
        lim.max_runs = q->max_runs;
    if (q->has_max_bytes)
        lim.max_bytes = q->max_bytes;
    if (q->has_max_points_per_s)
        lim.max_points_per_s = q->max_points_per_s;
    return store__team_write(w, q->team, &lim);
}

/* Auth goes on only while a cluster-admin token is valid: nobody could
 * ever act again otherwise. */
int
store__auth_on(struct store_wctx *w)
{
    MDB_cursor *cur;
    MDB_val k, v;
    struct store_token t;
    int is_admin = 0, rc;
    uint8_t on = 1;
    rc = mdb_cursor_open(w->txn, w->s->dbi[STORE_DB_TOKID], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_cursor_open", w->errmsg);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !is_admin;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (store__token_decode_rec(&k, &v, &t) == RV_OK &&
            t.role == RV__ROLE__ROLE_CLUSTER_ADMIN && !t.is_revoked)
            is_admin = 1;
    }
    mdb_cursor_close(cur);
    if (!is_admin) {
        rv_errmsg_printf(w->errmsg, "auth_on needs a cluster-admin token");
        return RV_ESTATE;
    }
    return store__put(w, STORE_DB_META, "auth", 4, &on, 1);
}

/* A token from before token ids: keyed by its hash, role and team only. */
static int
store__token_put_legacy(struct store_wctx *w, const Rv__TokenPut *t)
{
    uint8_t v[1 + CONTRACT_MAX_TEAM_BYTES];
    size_t n = strlen(t->team);
    v[0] = (uint8_t)(t->has_role ? t->role : RV__ROLE__ROLE_READER);
    memcpy(v + 1, t->team, n);
    return store__put(w, STORE_DB_TOKEN, t->token_sha256.data, 32, v, 1 + n);
}

static int
store__token_put_check(struct store_wctx *w, const Rv__TokenPut *t)
{
    if (t->token_sha256.len != 32) {
        rv_errmsg_printf(w->errmsg, "token_sha256 must be 32 bytes");
        return RV_EINVAL;
    }
    int rc = store__str_check(t->team, CONTRACT_MAX_TEAM_BYTES, 1, "team",
                              w->errmsg);
    if (rc == RV_OK)
        rc = store__str_check(t->name, CONTRACT_MAX_TOKEN_NAME_BYTES, 0, "name",
                              w->errmsg);
    if (rc != RV_OK)
        return rc;
    if (t->has_role && (t->role < RV__ROLE__ROLE_READER ||
                        t->role > RV__ROLE__ROLE_CLUSTER_ADMIN)) {
        rv_errmsg_printf(w->errmsg, "unknown role %d", t->role);
        return RV_EINVAL;
    }
    int is_cluster = t->has_role && t->role == RV__ROLE__ROLE_CLUSTER_ADMIN;
    if (is_cluster != (strcmp(t->team, "*") == 0)) {
        rv_errmsg_printf(w->errmsg, "a cluster-admin token, and only one, has "
                                    "team '*'");
        return RV_EINVAL;
    }
    return RV_OK;
}

int
store__token_put(struct store_wctx *w, const Rv__TokenPut *t)
{
    struct store_token tok;
    struct store__limits lim;
    struct rv_buf b;
    MDB_val v;
    int rc = store__token_put_check(w, t);
    if (rc != RV_OK)
        return rc;
    if (t->token_id == NULL)
        return store__token_put_legacy(w, t);
    if (!rv_token_id_valid(t->token_id, strlen(t->token_id))) {
        rv_errmsg_printf(w->errmsg, "token_id must be 16 hex digits");
        return RV_EINVAL;
    }
    if (strcmp(t->team, "*") != 0) {
        rc = store__team_limits(w, t->team, strlen(t->team), &lim);
        if (rc == RV_OK && !lim.is_team && strcmp(t->team, "default") != 0) {
            rv_errmsg_printf(w->errmsg, "team '%s' does not exist", t->team);
            rc = RV_ENOTFOUND;
        }
        if (rc != RV_OK)
            return rc;
    }
    rc = store__get(w->txn, w->s->dbi[STORE_DB_TOKID], t->token_id,
                    CONTRACT_TOKEN_ID_CHARS, &v, w->errmsg);
    if (rc == RV_OK) {
        rv_errmsg_printf(w->errmsg, "token %s exists", t->token_id);
        return RV_EEXIST;
    }
    if (rc != RV_ENOTFOUND)
        return rc;
    memset(&tok, 0, sizeof tok);
    snprintf(tok.team, sizeof tok.team, "%s", t->team);
    snprintf(tok.name, sizeof tok.name, "%s", t->name ? t->name : "");
    tok.role = (int)(t->has_role ? t->role : RV__ROLE__ROLE_READER);
    tok.created_at_ms = t->has_created_at_ms ? t->created_at_ms : 0;
    tok.expires_at_ms = t->has_expires_at_ms ? t->expires_at_ms : 0;
    /* A lifetime counts from apply's time, the clock expiry is judged by:
     * a token a leader with a slow clock makes is not born expired. */
    if (t->has_expires_in_s && t->expires_in_s > 0 && w->at_ms > 0 &&
        t->expires_in_s <= (uint64_t)(INT64_MAX - w->at_ms) / 1000)
        tok.expires_at_ms = w->at_ms + (int64_t)t->expires_in_s * 1000;
    memcpy(tok.sha256, t->token_sha256.data, 32);
    rv_buf_init(&b);
    rc = store__token_encode_rec(&tok, &b);
    if (rc == RV_OK)
        rc = store__put(w, STORE_DB_TOKID, t->token_id, CONTRACT_TOKEN_ID_CHARS,
                        b.data, b.len);
    rv_buf_free(&b);
    return rc;
}

/* Revoke: the record stays (listings show it revoked, and at which index);
 * authentication refuses it from this index on. */
int
store__token_del(struct store_wctx *w, const Rv__TokenDel *t)
{
    MDB_val k, v;
    struct store_token tok;
    struct rv_buf b;
    if (t->token_id == NULL) {
        if (!t->has_token_sha256 || t->token_sha256.len != 32) {
            rv_errmsg_printf(w->errmsg, "token_del needs a token_id");
            return RV_EINVAL;
        }
        return store__del(w, STORE_DB_TOKEN, t->token_sha256.data, 32);
    }
    if (!rv_token_id_valid(t->token_id, strlen(t->token_id))) {
        rv_errmsg_printf(w->errmsg, "unknown token");
        return RV_ENOTFOUND;
    }
    k.mv_size = CONTRACT_TOKEN_ID_CHARS;
    k.mv_data = t->token_id;
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_TOKID], k.mv_data, k.mv_size,
                        &v, w->errmsg);
    if (rc == RV_ENOTFOUND)
        rv_errmsg_printf(w->errmsg, "unknown token");
    if (rc == RV_OK)
        rc = store__token_decode_rec(&k, &v, &tok);
    if (rc != RV_OK)
        return rc;
    if (tok.is_revoked)
        return RV_OK; /* Revoking twice is revoking once. */
    tok.is_revoked = 1;
    tok.revoked_index = w->index;
    rv_buf_init(&b);
    rc = store__token_encode_rec(&tok, &b);
    if (rc == RV_OK)
        rc = store__put(w, STORE_DB_TOKID, k.mv_data, k.mv_size, b.data, b.len);
    rv_buf_free(&b);
    return rc;
}

/* ---- Cluster members --------------------------------------------------- */

/* Node record: the packed rv.NodePut, keyed by be64 id. Addresses are
 * checked for length and printable ASCII only: they are dialled, not
 * parsed, here. */
static int
store__addr_check(const char *a, int is_required, const char *what,
                  char *errmsg)
{
    int rc =
        store__str_check(a, CONTRACT_MAX_ADDR_BYTES, is_required, what, errmsg);
    for (const char *p = a; rc == RV_OK && p != NULL && *p != '\0'; p++) {
        if (*p <= ' ' || *p > '~') {
            rv_errmsg_printf(errmsg, "%s has a byte outside printable ASCII",
                             what);
            rc = RV_EINVAL;
        }
    }
    return rc;
}

int
store__node_put(struct store_wctx *w, const Rv__NodePut *n)
{
    uint8_t k[8], v[4 * CONTRACT_MAX_ADDR_BYTES];
    if (n->id == 0) {
        rv_errmsg_printf(w->errmsg, "node id must be > 0");
        return RV_EINVAL;
    }
    int rc = store__addr_check(n->raft_addr, 1, "raft_addr", w->errmsg);
    if (rc == RV_OK)
        rc = store__addr_check(n->rpc_addr, 0, "rpc_addr", w->errmsg);
    if (rc == RV_OK)
        rc = store__addr_check(n->http_addr, 0, "http_addr", w->errmsg);
    if (rc != RV_OK)
        return rc;
    size_t vn = rv__node_put__pack(n, v); /* Bounded by the checks above. */
    rv_put_be64(k, n->id);
    return store__put(w, STORE_DB_NODE, k, 8, v, vn);
}

int
store__node_del(struct store_wctx *w, const Rv__NodeDel *n)
{
    uint8_t k[8];
    rv_put_be64(k, n->id);
    return store__del(w, STORE_DB_NODE, k, 8);
}

/* ---- Reads ------------------------------------------------------------- */

int
store_nodes_list(struct store_read *r, struct store_node **nodes,
                 size_t *n_nodes, char *errmsg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0, cap = 0;
    struct store_node *out = NULL;
    *nodes = NULL;
    *n_nodes = 0;
    int rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_NODE], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_cursor_open", errmsg);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Rv__NodePut *np = rv__node_put__unpack(NULL, v.mv_size, v.mv_data);
        if (np == NULL) {
            rc = RV_ECORRUPT;
            rv_errmsg_printf(errmsg, "node record does not decode");
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 4;
            struct store_node *g = realloc(out, cap * sizeof *out);
            if (g == NULL) {
                rv__node_put__free_unpacked(np, NULL);
                rc = RV_ENOMEM;
                break;
            }
            out = g;
        }
        struct store_node *d = &out[n++];
        memset(d, 0, sizeof *d);
        d->id = np->id;
        snprintf(d->raft_addr, sizeof d->raft_addr, "%s", np->raft_addr);
        snprintf(d->rpc_addr, sizeof d->rpc_addr, "%s",
                 np->rpc_addr ? np->rpc_addr : "");
        snprintf(d->http_addr, sizeof d->http_addr, "%s",
                 np->http_addr ? np->http_addr : "");
        rv__node_put__free_unpacked(np, NULL);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND && rc != 0) {
        free(out);
        return rc == RV_ECORRUPT || rc == RV_ENOMEM
                   ? rc
                   : store__err_mdb(rc, "cursor", errmsg);
    }
    *nodes = out;
    *n_nodes = n;
    return RV_OK;
}
