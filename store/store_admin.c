/* Admin records: teams (quotas), tokens and cluster members, written by
 * their commands and read by store_token_get and store_nodes_list. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Teams and tokens -------------------------------------------------- */

int
store__team_put(struct store_wctx *w, const Rv__TeamPut *t)
{
    int rc = store__str_check(t->team, CONTRACT_MAX_TEAM_BYTES, 1, "team",
                              w->errmsg);
    if (rc != RV_OK)
        return rc;
    uint8_t v[16];
    rv_put_be64(v, t->has_max_runs ? t->max_runs : 0);
    rv_put_be64(v + 8, t->has_max_points_per_run ? t->max_points_per_run : 0);
    return store__put(w, STORE_DB_TEAM, t->team, strlen(t->team), v, 16);
}

/* The quotas of a team, for run creation and metric writes. */
int
store__team_limits(struct store_wctx *w, const char *team, size_t n,
                   uint64_t *max_runs, uint64_t *max_points)
{
    MDB_val v;
    *max_runs = *max_points = 0;
    int rc =
        store__get(w->txn, w->s->dbi[STORE_DB_TEAM], team, n, &v, w->errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_OK;
    if (rc != RV_OK)
        return rc;
    if (v.mv_size != 16)
        return RV_ECORRUPT;
    *max_runs = rv_get_be64(v.mv_data);
    *max_points = rv_get_be64((const uint8_t *)v.mv_data + 8);
    return RV_OK;
}

int
store__token_put(struct store_wctx *w, const Rv__TokenPut *t)
{
    if (t->token_sha256.len != 32) {
        rv_errmsg_printf(w->errmsg, "token_sha256 must be 32 bytes");
        return RV_EINVAL;
    }
    int rc = store__str_check(t->team, CONTRACT_MAX_TEAM_BYTES, 1, "team",
                              w->errmsg);
    if (rc != RV_OK)
        return rc;
    if (t->has_role &&
        (t->role < RV__ROLE__ROLE_READ || t->role > RV__ROLE__ROLE_ADMIN)) {
        rv_errmsg_printf(w->errmsg, "unknown role %d", t->role);
        return RV_EINVAL;
    }
    uint8_t v[1 + CONTRACT_MAX_TEAM_BYTES];
    size_t n = strlen(t->team);
    v[0] = (uint8_t)(t->has_role ? t->role : RV__ROLE__ROLE_READ);
    memcpy(v + 1, t->team, n);
    return store__put(w, STORE_DB_TOKEN, t->token_sha256.data, 32, v, 1 + n);
}

int
store__token_del(struct store_wctx *w, const Rv__TokenDel *t)
{
    if (t->token_sha256.len != 32) {
        rv_errmsg_printf(w->errmsg, "token_sha256 must be 32 bytes");
        return RV_EINVAL;
    }
    return store__del(w, STORE_DB_TOKEN, t->token_sha256.data, 32);
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
store_token_get(struct store_read *r, const uint8_t sha256[32], char *team,
                size_t team_size, int *role, char *errmsg)
{
    MDB_val v;
    int rc =
        store__get(r->txn, r->s->dbi[STORE_DB_TOKEN], sha256, 32, &v, errmsg);
    if (rc != RV_OK)
        return rc;
    if (v.mv_size < 1 || v.mv_size - 1 >= team_size)
        return RV_ECORRUPT;
    *role = ((const uint8_t *)v.mv_data)[0];
    memcpy(team, (const uint8_t *)v.mv_data + 1, v.mv_size - 1);
    team[v.mv_size - 1] = '\0';
    return RV_OK;
}

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
