/* Authorisation at apply, usage accounting and the audit log (DESIGN §11).
 *
 * Every command passes store__authorise before its body runs and
 * store__account after it succeeded, inside the command's transaction:
 * the token it carries is looked up in the replicated table at this log
 * position and judged at the command's stamped time, so every replica
 * reaches the same verdict (and digest), and a revocation or an expiry
 * takes effect at one index. The reads of tokens, teams and audit events
 * live here too; each honours the read's team scope. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_CLUSTER_TEAM "*"

/* ---- Records ------------------------------------------------------------
 * tokid: u8 format, u8 role, u8 revoked, u8 0, sha256 (32), s64 created,
 * s64 expires, be64 revoked index, str16 team, str16 name.
 * audit: key be64 index, be16 command no; value s64 time, str16 token id,
 * str16 action, str16 team, str16 target. */
#define STORE_TOKEN_HEADER 60

int
store__token_decode_rec(const MDB_val *k, const MDB_val *v,
                        struct store_token *t)
{
    const uint8_t *p = v->mv_data;
    if (k->mv_size != CONTRACT_TOKEN_ID_CHARS ||
        v->mv_size < STORE_TOKEN_HEADER + 4 || p[0] != STORE_FORMAT)
        return RV_ECORRUPT;
    memset(t, 0, sizeof *t);
    memcpy(t->token_id, k->mv_data, CONTRACT_TOKEN_ID_CHARS);
    t->role = p[1];
    t->is_revoked = p[2];
    memcpy(t->sha256, p + 4, 32);
    t->created_at_ms = (int64_t)rv_get_be64(p + 36);
    t->expires_at_ms = (int64_t)rv_get_be64(p + 44);
    t->revoked_index = rv_get_be64(p + 52);
    size_t at = STORE_TOKEN_HEADER;
    size_t tn = rv_get_be16(p + at);
    if (tn > CONTRACT_MAX_TEAM_BYTES || at + 2 + tn + 2 > v->mv_size)
        return RV_ECORRUPT;
    memcpy(t->team, p + at + 2, tn);
    at += 2 + tn;
    size_t nn = rv_get_be16(p + at);
    if (nn > CONTRACT_MAX_TOKEN_NAME_BYTES || at + 2 + nn != v->mv_size)
        return RV_ECORRUPT;
    memcpy(t->name, p + at + 2, nn);
    return RV_OK;
}

int
store__token_encode_rec(const struct store_token *t, struct rv_buf *b)
{
    uint8_t h[STORE_TOKEN_HEADER] = {STORE_FORMAT, (uint8_t)t->role,
                                     (uint8_t)(t->is_revoked ? 1 : 0), 0};
    memcpy(h + 4, t->sha256, 32);
    rv_put_be64(h + 36, (uint64_t)t->created_at_ms);
    rv_put_be64(h + 44, (uint64_t)t->expires_at_ms);
    rv_put_be64(h + 52, t->revoked_index);
    rv_buf_reset(b);
    rv_buf_append(b, h, sizeof h);
    rv_buf_append_str16(b, t->team, strlen(t->team));
    rv_buf_append_str16(b, t->name, strlen(t->name));
    return b->is_failed ? RV_ENOMEM : RV_OK;
}

static int
store__token_load(MDB_txn *txn, const struct store *s, const char *id,
                  struct store_token *t, char *errmsg)
{
    MDB_val k = {CONTRACT_TOKEN_ID_CHARS, (void *)id}, v;
    if (strlen(id) != CONTRACT_TOKEN_ID_CHARS) {
        rv_errmsg_printf(errmsg, "unknown token");
        return RV_ENOTFOUND;
    }
    int rc = store__get(txn, s->dbi[STORE_DB_TOKID], id, k.mv_size, &v, errmsg);
    if (rc == RV_ENOTFOUND)
        rv_errmsg_printf(errmsg, "unknown token");
    if (rc != RV_OK)
        return rc;
    return store__token_decode_rec(&k, &v, t);
}

int
store__auth_on_get(MDB_txn *txn, const struct store *s)
{
    MDB_val v;
    return store__get(txn, s->dbi[STORE_DB_META], "auth", 4, &v, NULL) ==
               RV_OK &&
           v.mv_size == 1 && ((const uint8_t *)v.mv_data)[0] == 1;
}

/* ---- What a command needs ---------------------------------------------- */

int
store__command_role(const Rv__Command *c)
{
    switch (c->body_case) {
    case RV__COMMAND__BODY_RUN_CREATE:
    case RV__COMMAND__BODY_RUN_UPDATE:
    case RV__COMMAND__BODY_RUN_STATUS:
    case RV__COMMAND__BODY_LOG_BATCH:
    case RV__COMMAND__BODY_LOG_LINES:
    case RV__COMMAND__BODY_ARTIFACT_CHUNK:
    case RV__COMMAND__BODY_MLFLOW_EXPERIMENT:
        return RV__ROLE__ROLE_WRITER;
    case RV__COMMAND__BODY_RUN_DELETE:
    case RV__COMMAND__BODY_RUN_RESTORE:
    case RV__COMMAND__BODY_RUN_PURGE:
    case RV__COMMAND__BODY_RETENTION_PUT:
    case RV__COMMAND__BODY_TOKEN_PUT: /* Judged again by the token's team. */
    case RV__COMMAND__BODY_TOKEN_DEL:
        return RV__ROLE__ROLE_ADMIN;
    case RV__COMMAND__BODY_NOOP:
        return RV__ROLE__ROLE_READER;
    default: /* Teams, quotas, membership, auth_on. */
        return RV__ROLE__ROLE_CLUSTER_ADMIN;
    }
}

int
store__command_is_internal(const Rv__Command *c)
{
    return c->body_case == RV__COMMAND__BODY_NODE_PUT ||
           c->body_case == RV__COMMAND__BODY_NODE_DEL ||
           c->body_case == RV__COMMAND__BODY_NOOP ||
           c->body_case == RV__COMMAND__BODY_AUTH_ON ||
           c->body_case == RV__COMMAND__BODY_RETENTION_SWEEP ||
           c->body_case == RV__COMMAND__BODY_CHECK;
}

/* The bytes a command adds to its team's use (its packed size), for the
 * commands that carry data. */
static uint64_t
store__command_bytes(const Rv__Command *c)
{
    switch (c->body_case) {
    case RV__COMMAND__BODY_RUN_CREATE:
    case RV__COMMAND__BODY_LOG_BATCH:
    case RV__COMMAND__BODY_LOG_LINES:
    case RV__COMMAND__BODY_ARTIFACT_CHUNK:
        return rv__command__get_packed_size(c);
    default:
        return 0;
    }
}

/* The team of run run_id into ctx (ctx->run_num 0 when there is no such
 * run: the command's own code answers that). */
static int
store__ctx_run(struct store_wctx *w, const char *run_id,
               struct store__cmdctx *ctx)
{
    uint64_t num;
    struct store__rview rv;
    MDB_val v;
    uint8_t k[8];
    int rc = store__run_num_get(w->txn, w->s, run_id, &num, NULL);
    if (rc == RV_ENOTFOUND)
        return RV_OK;
    if (rc != RV_OK)
        return rc;
    rv_put_be64(k, num);
    rc = store__get(w->txn, w->s->dbi[STORE_DB_RUN], k, 8, &v, w->errmsg);
    if (rc == RV_OK)
        rc = store__run_decode(&v, num, &rv);
    if (rc != RV_OK)
        return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    ctx->run_num = num;
    snprintf(ctx->team, sizeof ctx->team, "%.*s", (int)rv.len[RUN_TEAM],
             rv.str[RUN_TEAM]);
    return RV_OK;
}

/* The team a command acts in ("" for cluster-wide commands). */
static int
store__ctx_fill(struct store_wctx *w, const Rv__Command *c,
                struct store__cmdctx *ctx)
{
    const char *run_id = proto_command_run_id(c);
    memset(ctx, 0, sizeof *ctx);
    ctx->bytes = store__command_bytes(c);
    if (c->body_case == RV__COMMAND__BODY_RUN_CREATE) {
        const char *t = c->run_create->team;
        snprintf(ctx->team, sizeof ctx->team, "%s",
                 t != NULL && t[0] != '\0' ? t : "default");
        return store__ctx_run(w, run_id, ctx); /* A resume names a run. */
    }
    if (run_id != NULL)
        return store__ctx_run(w, run_id, ctx);
    if (c->body_case == RV__COMMAND__BODY_TOKEN_PUT)
        snprintf(ctx->team, sizeof ctx->team, "%s", c->token_put->team);
    if (c->body_case == RV__COMMAND__BODY_TOKEN_DEL &&
        c->token_del->token_id != NULL) {
        struct store_token t;
        if (store__token_load(w->txn, w->s, c->token_del->token_id, &t, NULL) ==
            RV_OK)
            snprintf(ctx->team, sizeof ctx->team, "%s", t.team);
    }
    if (c->body_case == RV__COMMAND__BODY_TEAM_PUT)
        snprintf(ctx->team, sizeof ctx->team, "%s", c->team_put->team);
    if (c->body_case == RV__COMMAND__BODY_QUOTA_PUT)
        snprintf(ctx->team, sizeof ctx->team, "%s", c->quota_put->team);
    if (c->body_case == RV__COMMAND__BODY_MLFLOW_EXPERIMENT) {
        const char *t = c->mlflow_experiment->team;
        snprintf(ctx->team, sizeof ctx->team, "%s",
                 t != NULL && t[0] != '\0' ? t : "default");
    }
    if (c->body_case == RV__COMMAND__BODY_RETENTION_PUT) {
        const char *t = c->retention_put->team;
        snprintf(ctx->team, sizeof ctx->team, "%s",
                 t != NULL && t[0] != '\0' ? t : "default");
    }
    return RV_OK;
}

/* ---- The check --------------------------------------------------------- */

/* The principal of c: its token, valid at c's stamped time. */
static int
store__principal(struct store_wctx *w, const Rv__Command *c,
                 struct store_token *t)
{
    int rc = store__token_load(w->txn, w->s, c->token_id, t, w->errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_EUNAUTHENTICATED;
    if (rc != RV_OK)
        return rc;
    if (t->is_revoked) {
        rv_errmsg_printf(w->errmsg, "token %s was revoked at index %llu",
                         t->token_id, (unsigned long long)t->revoked_index);
        return RV_EUNAUTHENTICATED;
    }
    if (t->expires_at_ms > 0 &&
        (!c->has_stamped_at_ms || w->at_ms >= t->expires_at_ms)) {
        rv_errmsg_printf(w->errmsg, "token %s has expired", t->token_id);
        return RV_EUNAUTHENTICATED;
    }
    return RV_OK;
}

/* May principal t do c in team ctx->team? Another team's run is answered
 * as if it did not exist. */
static int
store__permit(struct store_wctx *w, const Rv__Command *c,
              const struct store_token *t, const struct store__cmdctx *ctx)
{
    int need = store__command_role(c);
    int is_cluster = t->role == RV__ROLE__ROLE_CLUSTER_ADMIN;
    int is_own = strcmp(ctx->team, t->team) == 0;
    if (is_cluster)
        return RV_OK;
    if (proto_command_run_id(c) != NULL && ctx->run_num != 0 && !is_own) {
        /* Run ids are one namespace: a create may learn that an id is
         * taken, nothing else about the run. */
        if (c->body_case == RV__COMMAND__BODY_RUN_CREATE) {
            rv_errmsg_printf(w->errmsg, "run id '%.64s' is already in use",
                             proto_command_run_id(c));
            return RV_EEXIST;
        }
        rv_errmsg_printf(w->errmsg, "run '%.64s' does not exist",
                         proto_command_run_id(c));
        return RV_ENOTFOUND;
    }
    if (c->body_case == RV__COMMAND__BODY_TOKEN_PUT && c->token_put->has_role &&
        c->token_put->role == RV__ROLE__ROLE_CLUSTER_ADMIN)
        need = RV__ROLE__ROLE_CLUSTER_ADMIN;
    if (t->role < need) {
        rv_errmsg_printf(w->errmsg, "%s needs the %s role",
                         proto_command_name(c), proto_role_name(need));
        return RV_EPERM;
    }
    if (ctx->team[0] != '\0' && !is_own) {
        rv_errmsg_printf(w->errmsg, "token %s may not act in team '%s'",
                         t->token_id, ctx->team);
        return c->body_case == RV__COMMAND__BODY_TOKEN_DEL ? RV_ENOTFOUND
                                                           : RV_EPERM;
    }
    return RV_OK;
}

/* Would ctx->bytes more take the team past its max_bytes? */
int
store__bytes_check(struct store_wctx *w, const struct store__cmdctx *ctx)
{
    struct store__limits lim;
    if (ctx->bytes == 0)
        return RV_OK;
    int rc = store__team_limits(w, ctx->team, strlen(ctx->team), &lim);
    if (rc != RV_OK || lim.max_bytes == 0)
        return rc;
    uint8_t k[1 + 2 + CONTRACT_MAX_TEAM_BYTES];
    k[0] = 'Y';
    size_t kn = 1 + store__key_str16(k + 1, ctx->team, strlen(ctx->team));
    uint64_t used = store__cnt_get(w->txn, w->s, k, kn);
    if (used + ctx->bytes > lim.max_bytes) {
        rv_errmsg_printf(w->errmsg,
                         "team '%s' would pass its quota of %llu bytes "
                         "(%llu used)",
                         ctx->team, (unsigned long long)lim.max_bytes,
                         (unsigned long long)used);
        return RV_EQUOTA;
    }
    return RV_OK;
}

int
store__authorise(struct store_wctx *w, const Rv__Command *c,
                 struct store__cmdctx *ctx)
{
    struct store_token t;
    int rc = store__ctx_fill(w, c, ctx);
    if (rc != RV_OK)
        return rc;
    if (c->body_case == RV__COMMAND__BODY__NOT_SET) {
        rv_errmsg_printf(w->errmsg, "empty command");
        return RV_EINVAL;
    }
    if (c->token_id == NULL) {
        if (!store__auth_on_get(w->txn, w->s) || store__command_is_internal(c))
            return RV_OK;
        rv_errmsg_printf(w->errmsg,
                         "authentication is on and %s carries no "
                         "token",
                         proto_command_name(c));
        return RV_EUNAUTHENTICATED;
    }
    rc = store__principal(w, c, &t);
    if (rc == RV_OK)
        rc = store__permit(w, c, &t, ctx);
    return rc;
}

/* ---- After the command ------------------------------------------------- */

static int
store__audit_put(struct store_wctx *w, const Rv__Command *c, uint16_t cmd_no,
                 const struct store__cmdctx *ctx)
{
    char target[CONTRACT_MAX_RUN_ID_BYTES + CONTRACT_MAX_TEAM_BYTES + 2] = "";
    const char *run_id = proto_command_run_id(c);
    if (run_id != NULL)
        snprintf(target, sizeof target, "%s", run_id);
    else if (c->body_case == RV__COMMAND__BODY_TOKEN_PUT)
        snprintf(target, sizeof target, "%s",
                 c->token_put->token_id ? c->token_put->token_id : "");
    else if (c->body_case == RV__COMMAND__BODY_TOKEN_DEL)
        snprintf(target, sizeof target, "%s",
                 c->token_del->token_id ? c->token_del->token_id : "");
    else if (c->body_case == RV__COMMAND__BODY_NODE_PUT)
        snprintf(target, sizeof target, "node %llu",
                 (unsigned long long)c->node_put->id);
    else if (c->body_case == RV__COMMAND__BODY_NODE_DEL)
        snprintf(target, sizeof target, "node %llu",
                 (unsigned long long)c->node_del->id);
    else if (c->body_case == RV__COMMAND__BODY_RETENTION_PUT)
        snprintf(target, sizeof target, "%.*s", (int)(sizeof target - 1),
                 c->retention_put->project);
    else
        snprintf(target, sizeof target, "%s", ctx->team);
    uint8_t k[10];
    struct rv_buf b;
    rv_put_be64(k, w->index);
    rv_put_be16(k + 8, cmd_no);
    rv_buf_init(&b);
    rv_buf_append_be64(&b, (uint64_t)(c->has_stamped_at_ms ? w->at_ms : 0));
    const char *tid = c->token_id ? c->token_id : "";
    const char *act = proto_command_name(c);
    rv_buf_append_str16(&b, tid, strlen(tid));
    rv_buf_append_str16(&b, act, strlen(act));
    rv_buf_append_str16(&b, ctx->team, strlen(ctx->team));
    rv_buf_append_str16(&b, target, strlen(target));
    int rc = b.is_failed ? RV_ENOMEM
                         : store__put(w, STORE_DB_AUDIT, k, 10, b.data, b.len);
    rv_buf_free(&b);
    return rc;
}

static int
store__is_audited(const Rv__Command *c)
{
    switch (c->body_case) {
    case RV__COMMAND__BODY_RUN_DELETE:
    case RV__COMMAND__BODY_RUN_RESTORE:
    case RV__COMMAND__BODY_RUN_PURGE:
    case RV__COMMAND__BODY_TEAM_PUT:
    case RV__COMMAND__BODY_QUOTA_PUT:
    case RV__COMMAND__BODY_RETENTION_PUT:
    case RV__COMMAND__BODY_TOKEN_PUT:
    case RV__COMMAND__BODY_TOKEN_DEL:
    case RV__COMMAND__BODY_NODE_PUT:
    case RV__COMMAND__BODY_NODE_DEL:
    case RV__COMMAND__BODY_AUTH_ON:
        return 1;
    default:
        return 0;
    }
}

/* Bytes of use: 'Y' str16 team (the team's), 'Z' be64 run_num (the run's,
 * given back to the team when the run is purged). */
static int
store__use_add(struct store_wctx *w, const char *team, uint64_t run_num,
               int64_t delta)
{
    uint8_t k[1 + 2 + CONTRACT_MAX_TEAM_BYTES];
    k[0] = 'Y';
    size_t kn = 1 + store__key_str16(k + 1, team, strlen(team));
    int rc = store__cnt_add(w, k, kn, delta);
    if (rc == RV_OK && run_num != 0) {
        k[0] = 'Z';
        rv_put_be64(k + 1, run_num);
        rc = store__cnt_add(w, k, 9, delta);
    }
    return rc;
}

int
store__use_release(struct store_wctx *w, const char *team, uint64_t run_num)
{
    uint8_t k[9] = {'Z'};
    rv_put_be64(k + 1, run_num);
    uint64_t used = store__cnt_get(w->txn, w->s, k, 9);
    if (used == 0)
        return RV_OK;
    int rc = store__use_add(w, team, run_num, -(int64_t)used);
    /* Reclaimable by the next compaction (store_compact.c). */
    uint8_t rk = STORE_CNT_RECLAIM;
    return rc == RV_OK ? store__cnt_add(w, &rk, 1, (int64_t)used) : rc;
}

int
store__account(struct store_wctx *w, const Rv__Command *c, uint16_t cmd_no,
               struct store__cmdctx *ctx)
{
    int rc = RV_OK;
    if (c->body_case == RV__COMMAND__BODY_RUN_CREATE && ctx->run_num == 0)
        rc = store__ctx_run(w, c->run_create->run_id, ctx);
    if (rc == RV_OK && ctx->bytes > 0 && ctx->run_num != 0)
        rc = store__use_add(w, ctx->team, ctx->run_num, (int64_t)ctx->bytes);
    if (rc == RV_OK && c->body_case == RV__COMMAND__BODY_RUN_PURGE &&
        ctx->run_num != 0)
        rc = store__use_release(w, ctx->team, ctx->run_num);
    if (rc == RV_OK && store__is_audited(c))
        rc = store__audit_put(w, c, cmd_no, ctx);
    return rc;
}

/* ---- Reads ------------------------------------------------------------- */

int
store_auth_is_on(struct store_read *r)
{
    return store__auth_on_get(r->txn, r->s);
}

int
store_token_get(struct store_read *r, const char *token_id,
                struct store_token *out, char *errmsg)
{
    return store__token_load(r->txn, r->s, token_id, out, errmsg);
}

/* Grow *arr (of *cap elements of size each) to hold n + 1. */
static int
store__grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return RV_OK;
    size_t nc = *cap ? 2 * *cap : 8;
    void *g = realloc(*arr, nc * size);
    if (g == NULL)
        return RV_ENOMEM;
    *arr = g;
    *cap = nc;
    return RV_OK;
}

/* The team a list may show: team itself, the scope's, or NULL for all.
 * Returns 0 when the scope hides team entirely. */
static int
store__list_team(const struct store_read *r, const char **team)
{
    if (!r->is_scoped)
        return 1;
    if (*team != NULL && strcmp(*team, r->team) != 0)
        return 0;
    *team = r->team;
    return 1;
}

int
store_tokens_list(struct store_read *r, const char *team,
                  struct store_token **out, size_t *n, char *errmsg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (!store__list_team(r, &team))
        return RV_OK;
    int rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_TOKID], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_cursor_open", errmsg);
    int code = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && code == RV_OK && *n < CONTRACT_MAX_TOKENS_LISTED;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        code = store__grow((void **)out, &cap, *n, sizeof **out);
        if (code == RV_OK)
            code = store__token_decode_rec(&k, &v, &(*out)[*n]);
        if (code == RV_OK &&
            (team == NULL || strcmp((*out)[*n].team, team) == 0))
            (*n)++;
    }
    mdb_cursor_close(cur);
    if (code == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        code = store__err_mdb(rc, "cursor", errmsg);
    if (code != RV_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return code;
}

/* One team's record and use into t. */
static int
store__team_info(struct store_read *r, const MDB_val *k, const MDB_val *v,
                 struct store_team *t)
{
    struct store__limits lim;
    uint8_t ck[1 + 2 + CONTRACT_MAX_TEAM_BYTES];
    if (k->mv_size == 0 || k->mv_size > CONTRACT_MAX_TEAM_BYTES ||
        store__team_decode(v, &lim) != RV_OK)
        return RV_ECORRUPT;
    memset(t, 0, sizeof *t);
    memcpy(t->team, k->mv_data, k->mv_size);
    t->max_runs = lim.max_runs;
    t->max_bytes = lim.max_bytes;
    t->max_points_per_s = lim.max_points_per_s;
    t->max_points_per_run = lim.max_points_per_run;
    size_t kn = 1 + store__key_str16(ck + 1, t->team, k->mv_size);
    ck[0] = 'R';
    t->n_runs = store__cnt_get(r->txn, r->s, ck, kn);
    ck[0] = 'Y';
    t->n_bytes = store__cnt_get(r->txn, r->s, ck, kn);
    return RV_OK;
}

int
store_teams_list(struct store_read *r, const char *team,
                 struct store_team **out, size_t *n, char *errmsg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (!store__list_team(r, &team))
        return RV_OK;
    int rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_TEAM], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_cursor_open", errmsg);
    int code = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && code == RV_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (team != NULL &&
            (k.mv_size != strlen(team) || memcmp(k.mv_data, team, k.mv_size)))
            continue;
        code = store__grow((void **)out, &cap, *n, sizeof **out);
        if (code == RV_OK)
            code = store__team_info(r, &k, &v, &(*out)[*n]);
        if (code == RV_OK)
            (*n)++;
    }
    mdb_cursor_close(cur);
    if (code == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        code = store__err_mdb(rc, "cursor", errmsg);
    if (code != RV_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return code;
}

/* Copy str16 at *p (within end) into dst of size dn; advance *p. */
static int
store__str16_take(const uint8_t **p, const uint8_t *end, char *dst, size_t dn)
{
    if (end - *p < 2)
        return RV_ECORRUPT;
    size_t n = rv_get_be16(*p);
    if ((size_t)(end - *p) < 2 + n || n >= dn)
        return RV_ECORRUPT;
    memcpy(dst, *p + 2, n);
    dst[n] = '\0';
    *p += 2 + n;
    return RV_OK;
}

static int
store__audit_decode(const MDB_val *k, const MDB_val *v, struct store_audit *e)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    if ((k->mv_size != 10 && k->mv_size != 14) || v->mv_size < 8)
        return RV_ECORRUPT;
    memset(e, 0, sizeof *e);
    e->index = rv_get_be64(k->mv_data);
    e->time_ms = (int64_t)rv_get_be64(p);
    p += 8;
    int rc = store__str16_take(&p, end, e->token_id, sizeof e->token_id);
    if (rc == RV_OK)
        rc = store__str16_take(&p, end, e->action, sizeof e->action);
    if (rc == RV_OK)
        rc = store__str16_take(&p, end, e->team, sizeof e->team);
    if (rc == RV_OK)
        rc = store__str16_take(&p, end, e->target, sizeof e->target);
    return rc == RV_OK && p != end ? RV_ECORRUPT : rc;
}

int
store_audit_list(struct store_read *r, const char *team, uint64_t since_index,
                 size_t max, struct store_audit **out, size_t *n, char *errmsg)
{
    MDB_cursor *cur;
    uint8_t kb[10] = {0};
    MDB_val k = {10, kb}, v;
    *out = NULL;
    *n = 0;
    if (max == 0 || max > CONTRACT_MAX_AUDIT_EVENTS) {
        rv_errmsg_printf(errmsg, "max events must be 1..%d",
                         CONTRACT_MAX_AUDIT_EVENTS);
        return RV_EINVAL;
    }
    if (!store__list_team(r, &team))
        return RV_OK;
    if ((*out = calloc(max, sizeof **out)) == NULL)
        return RV_ENOMEM;
    int rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_AUDIT], &cur);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        return store__err_mdb(rc, "mdb_cursor_open", errmsg);
    }
    rv_put_be64(kb, since_index);
    int code = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && code == RV_OK && *n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        code = store__audit_decode(&k, &v, &(*out)[*n]);
        if (code == RV_OK &&
            (team == NULL || strcmp((*out)[*n].team, team) == 0))
            (*n)++;
    }
    mdb_cursor_close(cur);
    if (code == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        code = store__err_mdb(rc, "cursor", errmsg);
    if (code != RV_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return code;
}
