/* The deterministic apply: one committed entry -> one vlog record and one
 * LMDB write transaction. Nothing here reads a clock, a random source or
 * local configuration; every write goes through store__put/store__del so
 * the digest covers it. Writer thread only. */
#include "store/store_int.h"

#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Codes that mean the node itself is broken, not the command. */
static int
store__is_local_fault(int rc)
{
    return rc == RV_EIO || rc == RV_ENOSPACE || rc == RV_ECORRUPT ||
           rc == RV_ENOMEM;
}

/* ---- Run records ------------------------------------------------------- */

enum {
    RUN_ID,
    RUN_TEAM,
    RUN_PROJECT,
    RUN_EXPERIMENT,
    RUN_NAME,
    RUN_USER,
    RUN_N_STR
};

/* A run record decoded into a private copy (LMDB's bytes die at the next
 * write of the transaction). */
struct store__runrec {
    uint64_t run_num;
    uint8_t status, lifecycle;
    int64_t created_at_ms, ended_at_ms;
    uint64_t n_points, n_log_lines;
    const char *str[RUN_N_STR];
    uint16_t len[RUN_N_STR];
    uint8_t raw[STORE_RUN_HEADER + RUN_N_STR * 2 + 4 * STORE_MAX_SCOPE_BYTES +
                STORE_MAX_TEAM_BYTES + STORE_MAX_NAME_BYTES +
                STORE_MAX_RUN_ID_BYTES];
};

static int
store__runrec_decode(const MDB_val *v, uint64_t run_num,
                     struct store__runrec *rr)
{
    if (v->mv_size < STORE_RUN_HEADER || v->mv_size > sizeof rr->raw)
        return RV_ECORRUPT;
    memcpy(rr->raw, v->mv_data, v->mv_size);
    const uint8_t *p = rr->raw, *end = rr->raw + v->mv_size;
    if (p[0] != STORE_FORMAT)
        return RV_ECORRUPT;
    rr->run_num = run_num;
    rr->status = p[1];
    rr->lifecycle = p[2];
    rr->created_at_ms = rv_i64_from_sortable(rv_get_be64(p + 4));
    rr->ended_at_ms = rv_i64_from_sortable(rv_get_be64(p + 12));
    rr->n_points = rv_get_be64(p + 20);
    rr->n_log_lines = rv_get_be64(p + 28);
    p += STORE_RUN_HEADER;
    for (int i = 0; i < RUN_N_STR; i++) {
        if (end - p < 2)
            return RV_ECORRUPT;
        uint16_t n = rv_get_be16(p);
        if ((size_t)(end - p - 2) < n)
            return RV_ECORRUPT;
        rr->str[i] = (const char *)p + 2;
        rr->len[i] = n;
        p += 2 + n;
    }
    return RV_OK;
}

static int
store__runrec_put(struct store_wctx *w, const struct store__runrec *rr)
{
    uint8_t key[8], buf[sizeof rr->raw];
    struct rv_buf b = {buf, 0, sizeof buf, 0};

    /* A fixed buffer: rv_buf_reserve never grows it since cap suffices. */
    rv_put_be64(key, rr->run_num);
    rv_buf_append_u8(&b, STORE_FORMAT);
    rv_buf_append_u8(&b, rr->status);
    rv_buf_append_u8(&b, rr->lifecycle);
    rv_buf_append_u8(&b, 0);
    rv_buf_append_be64(&b, rv_i64_sortable(rr->created_at_ms));
    rv_buf_append_be64(&b, rv_i64_sortable(rr->ended_at_ms));
    rv_buf_append_be64(&b, rr->n_points);
    rv_buf_append_be64(&b, rr->n_log_lines);
    for (int i = 0; i < RUN_N_STR; i++)
        rv_buf_append_str16(&b, rr->str[i], rr->len[i]);
    if (b.is_failed || b.data != buf)
        return RV_ECORRUPT;
    return store__put(w, STORE_DB_RUN, key, 8, buf, b.len);
}

/* Find run_id; RV_ENOTFOUND if there is no such run. */
static int
store__runrec_get(struct store_wctx *w, const char *run_id,
                  struct store__runrec *rr)
{
    MDB_val v;
    uint64_t run_num;
    int rc = store__run_num_get(w->txn, w->s, run_id, &run_num, w->errmsg);
    if (rc != RV_OK)
        return rc;
    uint8_t key[8];
    rv_put_be64(key, run_num);
    rc = store__get(w->txn, w->s->dbi[STORE_DB_RUN], key, 8, &v, w->errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_ECORRUPT;
    if (rc != RV_OK)
        return rc;
    if (store__runrec_decode(&v, run_num, rr) != RV_OK) {
        rv_errmsg_printf(w->errmsg, "run record %llu does not decode",
                         (unsigned long long)run_num);
        return RV_ECORRUPT;
    }
    return RV_OK;
}

static int
store__runrec_get_active(struct store_wctx *w, const char *run_id,
                         struct store__runrec *rr)
{
    int rc = store__runrec_get(w, run_id, rr);
    if (rc == RV_OK && rr->lifecycle != STORE_ACTIVE) {
        rv_errmsg_printf(w->errmsg, "run '%.64s' is deleted", run_id);
        return RV_ESTATE;
    }
    return rc;
}

/* ---- Counters ---------------------------------------------------------- */

static int
store__cnt_add(struct store_wctx *w, const uint8_t *key, size_t kn,
               int64_t delta)
{
    MDB_val v;
    uint64_t n = 0;
    int rc =
        store__get(w->txn, w->s->dbi[STORE_DB_CNT], key, kn, &v, w->errmsg);
    if (rc == RV_OK && v.mv_size == 8)
        n = rv_get_be64(v.mv_data);
    else if (rc != RV_ENOTFOUND)
        return rc == RV_OK ? RV_ECORRUPT : rc;
    n = (uint64_t)((int64_t)n + delta);
    if (n == 0)
        return store__del(w, STORE_DB_CNT, key, kn);
    uint8_t val[8];
    rv_put_be64(val, n);
    return store__put(w, STORE_DB_CNT, key, kn, val, 8);
}

static uint64_t
store__cnt_get(struct store_wctx *w, const uint8_t *key, size_t kn)
{
    MDB_val v;
    if (store__get(w->txn, w->s->dbi[STORE_DB_CNT], key, kn, &v, NULL) !=
            RV_OK ||
        v.mv_size != 8)
        return 0;
    return rv_get_be64(v.mv_data);
}

/* Key builders for counters and indexes. Each returns the key length. */
static size_t
store__key_str16(uint8_t *p, const char *s, size_t n)
{
    rv_put_be16(p, (uint16_t)n);
    memcpy(p + 2, s, n);
    return 2 + n;
}

static size_t
store__cnt_key_team(uint8_t *k, const struct store__runrec *rr)
{
    k[0] = 'R';
    return 1 + store__key_str16(k + 1, rr->str[RUN_TEAM], rr->len[RUN_TEAM]);
}

static size_t
store__cnt_key_active(uint8_t *k, char kind, const struct store__runrec *rr)
{
    size_t n = 1;
    k[0] = (uint8_t)kind;
    n += store__key_str16(k + n, rr->str[RUN_TEAM], rr->len[RUN_TEAM]);
    n += store__key_str16(k + n, rr->str[RUN_PROJECT], rr->len[RUN_PROJECT]);
    if (kind == 'a') {
        k[n++] = rr->status;
    } else {
        int64_t day = rr->created_at_ms / STORE_DAY_MS;
        rv_put_be32(k + n, (uint32_t)(day < 0 ? 0 : day));
        n += 4;
    }
    return n;
}

/* Counters of active runs (analytics): by status and by day. */
static int
store__cnt_active(struct store_wctx *w, const struct store__runrec *rr,
                  int64_t delta)
{
    uint8_t k[1 + 2 + STORE_MAX_TEAM_BYTES + 2 + STORE_MAX_SCOPE_BYTES + 4];
    int rc = store__cnt_add(w, k, store__cnt_key_active(k, 'a', rr), delta);
    if (rc == RV_OK)
        rc = store__cnt_add(w, k, store__cnt_key_active(k, 'b', rr), delta);
    return rc;
}

/* Index entries and counters that every run has, by lifecycle-free
 * attributes: created order, scope, status, team. */
static int
store__run_index(struct store_wctx *w, const struct store__runrec *rr,
                 int64_t delta)
{
    uint8_t k[8 + STORE_MAX_RUN_ID_BYTES + 2 + STORE_MAX_TEAM_BYTES];
    uint8_t num[8];
    int rc;

    rv_put_be64(num, rr->run_num);
    /* ixcr: created DESC, then run_id ASC, in plain ascending key order. */
    rv_put_be64(k, ~rv_i64_sortable(rr->created_at_ms));
    memcpy(k + 8, rr->str[RUN_ID], rr->len[RUN_ID]);
    if (delta > 0)
        rc = store__put(w, STORE_DB_IXCR, k, 8 + rr->len[RUN_ID], num, 8);
    else
        rc = store__del(w, STORE_DB_IXCR, k, 8 + rr->len[RUN_ID]);
    if (rc != RV_OK)
        return rc;
    uint64_t hp = store__value_hash(rr->str[RUN_PROJECT], rr->len[RUN_PROJECT]);
    uint64_t he =
        store__value_hash(rr->str[RUN_EXPERIMENT], rr->len[RUN_EXPERIMENT]);
    rv_put_be64(k, hp);
    rv_put_be64(k + 8, he);
    memcpy(k + 16, num, 8);
    rc = delta > 0 ? store__put(w, STORE_DB_IXSCOPE, k, 24, "", 0)
                   : store__del(w, STORE_DB_IXSCOPE, k, 24);
    if (rc != RV_OK)
        return rc;
    uint8_t c[17] = {'J'};
    rv_put_be64(c + 1, hp);
    if ((rc = store__cnt_add(w, c, 9, delta)) != RV_OK)
        return rc;
    c[0] = 'E';
    rv_put_be64(c + 9, he);
    if ((rc = store__cnt_add(w, c, 17, delta)) != RV_OK)
        return rc;
    k[0] = rr->status;
    memcpy(k + 1, num, 8);
    rc = delta > 0 ? store__put(w, STORE_DB_IXSTAT, k, 9, "", 0)
                   : store__del(w, STORE_DB_IXSTAT, k, 9);
    if (rc != RV_OK)
        return rc;
    c[0] = 'S';
    c[1] = rr->status;
    if ((rc = store__cnt_add(w, c, 2, delta)) != RV_OK)
        return rc;
    return store__cnt_add(w, k, store__cnt_key_team(k, rr), delta);
}

/* ---- Params and tags --------------------------------------------------- */

static size_t
store__kv_key(uint8_t *k, uint64_t run_num, const char *key, size_t n)
{
    rv_put_be64(k, run_num);
    memcpy(k + 8, key, n);
    return 8 + n;
}

/* Posting key of ixparam/ixtag and its counter ('P'/'T' + same bytes). */
static size_t
store__posting_key(uint8_t *k, const char *key, size_t kn, const char *val,
                   size_t vn, uint64_t run_num)
{
    size_t n = store__key_str16(k, key, kn);
    rv_put_be64(k + n, store__value_hash(val, vn));
    rv_put_be64(k + n + 8, run_num);
    return n + 16;
}

static int
store__posting(struct store_wctx *w, enum store_db db, const char *key,
               size_t kn, const char *val, size_t vn, uint64_t run_num,
               int64_t delta)
{
    uint8_t k[2 + STORE_MAX_KEY_BYTES + 16], c[1 + sizeof k];
    size_t n = store__posting_key(k, key, kn, val, vn, run_num);
    int rc =
        delta > 0 ? store__put(w, db, k, n, "", 0) : store__del(w, db, k, n);
    if (rc != RV_OK)
        return rc;
    c[0] = db == STORE_DB_IXPARAM ? 'P' : 'T';
    memcpy(c + 1, k, n - 8);
    return store__cnt_add(w, c, n - 8 + 1, delta);
}

static int
store__kv_check(const Rv__KV *kv, size_t max_value, const char *what,
                char *errmsg)
{
    size_t kn = strlen(kv->key), vn = strlen(kv->value);
    if (!store__key_valid(kv->key, kn)) {
        rv_errmsg_printf(errmsg,
                         "invalid %s key '%.64s': 1..%d bytes of "
                         "letters, digits, '_', '-', '.', ' ', '/'",
                         what, kv->key, STORE_MAX_KEY_BYTES);
        return RV_EINVAL;
    }
    if (vn > max_value || !store__utf8_valid(kv->value, vn)) {
        rv_errmsg_printf(errmsg,
                         "%s '%.64s': value must be UTF-8 of at most "
                         "%zu bytes",
                         what, kv->key, max_value);
        return RV_EINVAL;
    }
    return RV_OK;
}

/* Params are write-once: the same value again is a no-op, another value
 * is RV_ECONFLICT (MLflow's rule). */
static int
store__param_set(struct store_wctx *w, uint64_t run_num, const Rv__KV *kv)
{
    uint8_t k[8 + STORE_MAX_KEY_BYTES];
    size_t kn = strlen(kv->key), vn = strlen(kv->value);
    size_t n = store__kv_key(k, run_num, kv->key, kn);
    MDB_val v;
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_PARAM], k, n, &v, w->errmsg);
    if (rc == RV_OK) {
        if (v.mv_size == vn && memcmp(v.mv_data, kv->value, vn) == 0)
            return RV_OK;
        int shown = v.mv_size < 64 ? (int)v.mv_size : 64;
        rv_errmsg_printf(w->errmsg,
                         "param '%.64s' already has value '%.*s'; "
                         "params are write-once (start a new run)",
                         kv->key, shown, (const char *)v.mv_data);
        return RV_ECONFLICT;
    }
    if (rc != RV_ENOTFOUND)
        return rc;
    rc = store__put(w, STORE_DB_PARAM, k, n, kv->value, vn);
    if (rc == RV_OK)
        rc = store__posting(w, STORE_DB_IXPARAM, kv->key, kn, kv->value, vn,
                            run_num, 1);
    uint8_t pk[STORE_PV_KEY_MAX];
    if (rc == RV_OK)
        rc = store__put(w, STORE_DB_IXPV, pk,
                        store__pv_key(pk, kv->key, kn, kv->value, vn, run_num),
                        "", 0);
    return rc;
}

/* Tags: the last write wins. */
static int
store__tag_set(struct store_wctx *w, uint64_t run_num, const Rv__KV *kv)
{
    uint8_t k[8 + STORE_MAX_KEY_BYTES];
    char old[STORE_MAX_TAG_VALUE_BYTES];
    size_t kn = strlen(kv->key), vn = strlen(kv->value);
    size_t n = store__kv_key(k, run_num, kv->key, kn);
    MDB_val v;
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_TAG], k, n, &v, w->errmsg);
    if (rc == RV_OK) {
        if (v.mv_size == vn && memcmp(v.mv_data, kv->value, vn) == 0)
            return RV_OK;
        if (v.mv_size > sizeof old)
            return RV_ECORRUPT;
        size_t on = v.mv_size;
        memcpy(old, v.mv_data, on);
        rc = store__posting(w, STORE_DB_IXTAG, kv->key, kn, old, on, run_num,
                            -1);
    } else if (rc == RV_ENOTFOUND) {
        rc = RV_OK;
    }
    if (rc == RV_OK)
        rc = store__put(w, STORE_DB_TAG, k, n, kv->value, vn);
    if (rc == RV_OK)
        rc = store__posting(w, STORE_DB_IXTAG, kv->key, kn, kv->value, vn,
                            run_num, 1);
    return rc;
}

static int
store__kvs_check(Rv__KV **kvs, size_t n, size_t max_n, size_t max_value,
                 const char *what, char *errmsg)
{
    if (n > max_n) {
        rv_errmsg_printf(errmsg, "at most %zu %ss per request, got %zu", max_n,
                         what, n);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = store__kv_check(kvs[i], max_value, what, errmsg);
        if (rc != RV_OK)
            return rc;
    }
    /* Repeated keys in one request are refused, as MLflow does. */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(kvs[i]->key, kvs[j]->key) == 0) {
                rv_errmsg_printf(errmsg,
                                 "%s key '%.64s' repeated in one "
                                 "request",
                                 what, kvs[i]->key);
                return RV_EINVAL;
            }
        }
    }
    return RV_OK;
}

static int
store__kvs_apply(struct store_wctx *w, uint64_t run_num, Rv__KV **params,
                 size_t n_params, Rv__KV **tags, size_t n_tags)
{
    int rc = store__kvs_check(params, n_params, STORE_MAX_PARAMS_PER_COMMAND,
                              STORE_MAX_PARAM_VALUE_BYTES, "param", w->errmsg);
    if (rc == RV_OK)
        rc = store__kvs_check(tags, n_tags, STORE_MAX_TAGS_PER_COMMAND,
                              STORE_MAX_TAG_VALUE_BYTES, "tag", w->errmsg);
    for (size_t i = 0; rc == RV_OK && i < n_params; i++)
        rc = store__param_set(w, run_num, params[i]);
    for (size_t i = 0; rc == RV_OK && i < n_tags; i++)
        rc = store__tag_set(w, run_num, tags[i]);
    return rc;
}

/* ---- Run create, update, status, lifecycle ----------------------------- */

static int
store__str_check(const char *s, size_t max, int is_required, const char *what,
                 char *errmsg)
{
    size_t n = s ? strlen(s) : 0;
    if (is_required && n == 0) {
        rv_errmsg_printf(errmsg, "%s is required", what);
        return RV_EINVAL;
    }
    if (n > max || !store__utf8_valid(s ? s : "", n)) {
        rv_errmsg_printf(errmsg, "%s must be UTF-8 of at most %zu bytes", what,
                         max);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20) {
            rv_errmsg_printf(errmsg, "%s contains a control character", what);
            return RV_EINVAL;
        }
    }
    return RV_OK;
}

static int
store__status_is_valid(int status)
{
    return status >= RV__RUN_STATUS__RUNNING &&
           status <= RV__RUN_STATUS__CRASHED;
}

static int
store__status_is_terminal(int status)
{
    return status >= RV__RUN_STATUS__FINISHED;
}

/* Change the status of rr (record written by the caller). */
static int
store__status_change(struct store_wctx *w, struct store__runrec *rr, int status,
                     int64_t ended_at_ms)
{
    int rc = RV_OK;
    if (status != rr->status) {
        if (rr->lifecycle == STORE_ACTIVE)
            rc = store__cnt_active(w, rr, -1);
        if (rc == RV_OK)
            rc = store__run_index(w, rr, -1);
        rr->status = (uint8_t)status;
        if (rc == RV_OK)
            rc = store__run_index(w, rr, 1);
        if (rc == RV_OK && rr->lifecycle == STORE_ACTIVE)
            rc = store__cnt_active(w, rr, 1);
    }
    rr->ended_at_ms = store__status_is_terminal(status) ? ended_at_ms : 0;
    return rc;
}

static int
store__run_create_check(const Rv__RunCreate *c, char *errmsg)
{
    size_t n = strlen(c->run_id);
    if (!store__run_id_valid(c->run_id, n)) {
        rv_errmsg_printf(errmsg,
                         "invalid run_id '%.64s': 1..%d letters, "
                         "digits, '_' or '-', starting with a letter "
                         "or digit",
                         c->run_id, STORE_MAX_RUN_ID_BYTES);
        return RV_EINVAL;
    }
    int rc = store__str_check(c->team, STORE_MAX_TEAM_BYTES, 0, "team", errmsg);
    if (rc == RV_OK)
        rc = store__str_check(c->project, STORE_MAX_SCOPE_BYTES, 1, "project",
                              errmsg);
    if (rc == RV_OK)
        rc = store__str_check(c->experiment, STORE_MAX_SCOPE_BYTES, 1,
                              "experiment", errmsg);
    if (rc == RV_OK)
        rc = store__str_check(c->name, STORE_MAX_NAME_BYTES, 0, "name", errmsg);
    if (rc == RV_OK)
        rc =
            store__str_check(c->user, STORE_MAX_SCOPE_BYTES, 0, "user", errmsg);
    if (rc != RV_OK)
        return rc;
    if (c->created_at_ms < 0) {
        rv_errmsg_printf(errmsg, "created_at_ms must not be negative");
        return RV_EINVAL;
    }
    if (c->has_status && !store__status_is_valid(c->status)) {
        rv_errmsg_printf(errmsg, "invalid run status %d", c->status);
        return RV_EINVAL;
    }
    return RV_OK;
}

static const char *
store__team_or_default(const char *team)
{
    return team != NULL && team[0] != '\0' ? team : "default";
}

static int
store__scope_equal(const struct store__runrec *rr, int i, const char *s)
{
    return rr->len[i] == strlen(s) && memcmp(rr->str[i], s, rr->len[i]) == 0;
}

static int
store__run_resume(struct store_wctx *w, const Rv__RunCreate *c,
                  struct store__runrec *rr, struct store_result *res)
{
    if (!store__scope_equal(rr, RUN_TEAM, store__team_or_default(c->team)) ||
        !store__scope_equal(rr, RUN_PROJECT, c->project) ||
        !store__scope_equal(rr, RUN_EXPERIMENT, c->experiment)) {
        rv_errmsg_printf(w->errmsg,
                         "run '%.64s' exists in another team, "
                         "project or experiment",
                         c->run_id);
        return RV_ECONFLICT;
    }
    if (rr->lifecycle != STORE_ACTIVE) {
        rv_errmsg_printf(w->errmsg, "run '%.64s' is deleted", c->run_id);
        return RV_ESTATE;
    }
    int rc = store__kvs_apply(w, rr->run_num, c->params, c->n_params, c->tags,
                              c->n_tags);
    if (rc == RV_OK && c->has_status && c->status != rr->status) {
        rc = store__status_change(w, rr, c->status, 0);
        if (rc == RV_OK)
            rc = store__runrec_put(w, rr);
    }
    res->is_resumed = 1;
    return rc;
}

static int
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

static int
store__run_insert(struct store_wctx *w, const Rv__RunCreate *c,
                  struct store__runrec *rr)
{
    const char *team = store__team_or_default(c->team);
    const char *strs[RUN_N_STR] = {c->run_id,
                                   team,
                                   c->project,
                                   c->experiment,
                                   c->name ? c->name : "",
                                   c->user ? c->user : ""};
    memset(rr, 0, offsetof(struct store__runrec, raw));
    rr->run_num = ++w->s->next_run_num;
    rr->status = (uint8_t)(c->has_status ? c->status : RV__RUN_STATUS__RUNNING);
    rr->lifecycle = STORE_ACTIVE;
    rr->created_at_ms = c->created_at_ms;
    for (int i = 0; i < RUN_N_STR; i++) {
        rr->str[i] = strs[i];
        rr->len[i] = (uint16_t)strlen(strs[i]);
    }
    uint64_t max_runs, max_points;
    int rc =
        store__team_limits(w, team, rr->len[RUN_TEAM], &max_runs, &max_points);
    if (rc != RV_OK)
        return rc;
    uint8_t k[1 + 2 + STORE_MAX_TEAM_BYTES];
    if (max_runs > 0 &&
        store__cnt_get(w, k, store__cnt_key_team(k, rr)) >= max_runs) {
        rv_errmsg_printf(w->errmsg, "team '%s' reached its quota of %llu runs",
                         team, (unsigned long long)max_runs);
        return RV_EQUOTA;
    }
    uint8_t num[8];
    rv_put_be64(num, rr->run_num);
    rc = store__put(w, STORE_DB_RUNID, c->run_id, rr->len[RUN_ID], num, 8);
    if (rc == RV_OK)
        rc = store__runrec_put(w, rr);
    if (rc == RV_OK)
        rc = store__run_index(w, rr, 1);
    if (rc == RV_OK)
        rc = store__cnt_active(w, rr, 1);
    return rc;
}

static int
store__run_create(struct store_wctx *w, const Rv__RunCreate *c,
                  struct store_result *res)
{
    struct store__runrec rr;
    int rc = store__run_create_check(c, w->errmsg);
    if (rc != RV_OK)
        return rc;
    snprintf(res->run_id, sizeof res->run_id, "%s", c->run_id);
    rc = store__runrec_get(w, c->run_id, &rr);
    if (rc == RV_OK) {
        if (!c->has_resume || c->resume == RV__RESUME__RESUME_NEVER) {
            rv_errmsg_printf(w->errmsg, "run '%.64s' already exists",
                             c->run_id);
            return RV_EEXIST;
        }
        return store__run_resume(w, c, &rr, res);
    }
    if (rc != RV_ENOTFOUND)
        return rc;
    if (c->has_resume && c->resume == RV__RESUME__RESUME_MUST)
        return RV_ENOTFOUND;
    rc = store__run_insert(w, c, &rr);
    if (rc == RV_OK)
        rc = store__kvs_apply(w, rr.run_num, c->params, c->n_params, c->tags,
                              c->n_tags);
    return rc;
}

static int
store__run_update(struct store_wctx *w, const Rv__RunUpdate *u)
{
    struct store__runrec rr;
    int rc =
        store__str_check(u->name, STORE_MAX_NAME_BYTES, 0, "name", w->errmsg);
    if (rc == RV_OK)
        rc = store__str_check(u->user, STORE_MAX_SCOPE_BYTES, 0, "user",
                              w->errmsg);
    if (rc == RV_OK)
        rc = store__runrec_get_active(w, u->run_id, &rr);
    if (rc != RV_OK)
        return rc;
    if (u->name != NULL) {
        rr.str[RUN_NAME] = u->name;
        rr.len[RUN_NAME] = (uint16_t)strlen(u->name);
    }
    if (u->user != NULL) {
        rr.str[RUN_USER] = u->user;
        rr.len[RUN_USER] = (uint16_t)strlen(u->user);
    }
    return store__runrec_put(w, &rr);
}

static int
store__run_status(struct store_wctx *w, const Rv__RunSetStatus *st)
{
    struct store__runrec rr;
    if (!store__status_is_valid(st->status)) {
        rv_errmsg_printf(w->errmsg, "invalid run status %d", st->status);
        return RV_EINVAL;
    }
    if (st->has_ended_at_ms && st->ended_at_ms < 0) {
        rv_errmsg_printf(w->errmsg, "ended_at_ms must not be negative");
        return RV_EINVAL;
    }
    int rc = store__runrec_get_active(w, st->run_id, &rr);
    if (rc == RV_OK)
        rc = store__status_change(w, &rr, st->status,
                                  st->has_ended_at_ms ? st->ended_at_ms : 0);
    if (rc == RV_OK)
        rc = store__runrec_put(w, &rr);
    return rc;
}

static int
store__run_lifecycle(struct store_wctx *w, const char *run_id,
                     enum store_lifecycle to)
{
    struct store__runrec rr;
    int rc = store__runrec_get(w, run_id, &rr);
    if (rc != RV_OK || rr.lifecycle == to)
        return rc;
    rc = store__cnt_active(w, &rr, to == STORE_ACTIVE ? 1 : -1);
    rr.lifecycle = (uint8_t)to;
    if (rc == RV_OK)
        rc = store__runrec_put(w, &rr);
    return rc;
}

/* Delete every key of db that starts with prefix[0, n), calling each_cb
 * (may be NULL) on each value first. */
static int
store__del_prefix(struct store_wctx *w, enum store_db db, const uint8_t *prefix,
                  size_t n,
                  int (*each_cb)(struct store_wctx *w, const MDB_val *k,
                                 const MDB_val *v, void *data),
                  void *data)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(w->txn, w->s->dbi[db], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_cursor_open", w->errmsg);
    for (;;) {
        MDB_val k = {n, (void *)prefix}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || k.mv_size < n ||
            memcmp(k.mv_data, prefix, n) != 0) {
            rc = RV_OK;
            break;
        }
        if (rc != 0) {
            rc = store__err_mdb(rc, "cursor", w->errmsg);
            break;
        }
        uint8_t key[512];
        if (k.mv_size > sizeof key) {
            rc = RV_ECORRUPT;
            break;
        }
        size_t kn = k.mv_size;
        memcpy(key, k.mv_data, kn);
        if (each_cb != NULL && (rc = each_cb(w, &k, &v, data)) != RV_OK)
            break;
        if ((rc = store__del(w, db, key, kn)) != RV_OK)
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

struct store__purge {
    uint64_t run_num;
    enum store_db posting_db; /* STORE_DB_IXPARAM or STORE_DB_IXTAG. */
};

/* Drop the posting of one param or tag (key after the 8-byte run prefix). */
static int
store__purge_kv(struct store_wctx *w, const MDB_val *k, const MDB_val *v,
                void *data)
{
    const struct store__purge *p = data;
    char val[STORE_MAX_PARAM_VALUE_BYTES];
    char key[STORE_MAX_KEY_BYTES];
    if (v->mv_size > sizeof val || k->mv_size < 8 ||
        k->mv_size - 8 > sizeof key)
        return RV_ECORRUPT;
    size_t kn = k->mv_size - 8;
    memcpy(val, v->mv_data, v->mv_size);
    memcpy(key, (const uint8_t *)k->mv_data + 8, kn);
    int rc = store__posting(w, p->posting_db, key, kn, val, v->mv_size,
                            p->run_num, -1);
    if (rc == RV_OK && p->posting_db == STORE_DB_IXPARAM) {
        uint8_t pk[STORE_PV_KEY_MAX];
        rc =
            store__del(w, STORE_DB_IXPV, pk,
                       store__pv_key(pk, key, kn, val, v->mv_size, p->run_num));
    }
    return rc;
}

static int
store__purge_series(struct store_wctx *w, const MDB_val *k, const MDB_val *v,
                    void *data)
{
    (void)k;
    (void)data;
    if (v->mv_size != STORE_SUMMARY_BYTES)
        return RV_ECORRUPT;
    uint8_t sid[8];
    memcpy(sid, v->mv_data, 8);
    int rc = store__del(w, STORE_DB_OPEN, sid, 8);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_CHUNK, sid, 8, NULL, NULL);
    return rc;
}

static int store__artifact_release(struct store_wctx *w, const MDB_val *k,
                                   const MDB_val *v, void *data);

static int
store__run_purge(struct store_wctx *w, const char *run_id)
{
    struct store__runrec rr;
    int rc = store__runrec_get(w, run_id, &rr);
    if (rc != RV_OK)
        return rc;
    if (rr.lifecycle != STORE_DELETED) {
        rv_errmsg_printf(w->errmsg,
                         "run '%.64s' must be deleted before it is "
                         "purged",
                         run_id);
        return RV_ESTATE;
    }
    struct store__purge p = {rr.run_num, STORE_DB_IXPARAM};
    struct store__purge pt = {rr.run_num, STORE_DB_IXTAG};
    uint8_t pre[8];
    rv_put_be64(pre, rr.run_num);
    rc = store__run_index(w, &rr, -1);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_PARAM, pre, 8, store__purge_kv, &p);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_TAG, pre, 8, store__purge_kv, &pt);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_SERIES, pre, 8, store__purge_series,
                               &p);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_LOGS, pre, 8, NULL, NULL);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_ART, pre, 8, store__artifact_release,
                               &p);
    if (rc == RV_OK)
        rc = store__del(w, STORE_DB_RUN, pre, 8);
    if (rc == RV_OK)
        rc = store__del(w, STORE_DB_RUNID, rr.str[RUN_ID], rr.len[RUN_ID]);
    return rc;
}

/* ---- Metrics ----------------------------------------------------------- */

static int
store__metrics_check(const Rv__Metrics *m, char *errmsg)
{
    size_t n = m->n_values;
    if (m->n_steps != n || m->n_timestamps_ms != n || m->n_key_idx != n ||
        (m->n_ctx_idx != 0 && m->n_ctx_idx != n)) {
        rv_errmsg_printf(errmsg,
                         "metric columns differ in length (values %zu, "
                         "steps %zu, timestamps %zu, keys %zu)",
                         n, m->n_steps, m->n_timestamps_ms, m->n_key_idx);
        return RV_EINVAL;
    }
    if (n > STORE_MAX_POINTS_PER_COMMAND) {
        rv_errmsg_printf(errmsg,
                         "at most %d metric points per request, got "
                         "%zu",
                         STORE_MAX_POINTS_PER_COMMAND, n);
        return RV_EINVAL;
    }
    size_t n_ctx = m->n_contexts ? m->n_contexts : 1;
    if (m->n_keys * n_ctx > STORE_MAX_SERIES_PER_COMMAND && n > 0) {
        rv_errmsg_printf(errmsg, "at most %d metric series per request",
                         STORE_MAX_SERIES_PER_COMMAND);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < m->n_keys; i++) {
        if (!store__key_valid(m->keys[i], strlen(m->keys[i]))) {
            rv_errmsg_printf(errmsg, "invalid metric key '%.64s'", m->keys[i]);
            return RV_EINVAL;
        }
    }
    for (size_t i = 0; i < m->n_contexts; i++) {
        size_t cn = strlen(m->contexts[i]);
        if (cn > STORE_MAX_CONTEXT_BYTES ||
            !store__utf8_valid(m->contexts[i], cn)) {
            rv_errmsg_printf(errmsg,
                             "metric context %zu must be UTF-8 of at "
                             "most %d bytes",
                             i, STORE_MAX_CONTEXT_BYTES);
            return RV_EINVAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (m->key_idx[i] >= m->n_keys ||
            (m->n_ctx_idx && m->ctx_idx[i] >= n_ctx)) {
            rv_errmsg_printf(errmsg,
                             "metric point %zu names a key or "
                             "context that is not in the dictionary",
                             i);
            return RV_EINVAL;
        }
    }
    return RV_OK;
}

/* Statistics of one command's points of a series, as a chunk without
 * references: first (smallest step, the first logged among equal steps),
 * last (greatest step, the last logged among equal steps), min and max (the
 * first point holding the extreme non-NaN value). */
static void
store__chunk_add(struct store__chunk *c, const struct store_point *pt)
{
    if (c->n == 0) {
        c->first = c->last = c->min = c->max = *pt;
        c->min_step = c->max_step = pt->step;
    }
    if (pt->step < c->first.step)
        c->first = *pt;
    if (pt->step >= c->last.step)
        c->last = *pt;
    if (pt->step < c->min_step)
        c->min_step = pt->step;
    if (pt->step > c->max_step)
        c->max_step = pt->step;
    if (!isnan(pt->value)) {
        if (isnan(c->min.value) || pt->value < c->min.value)
            c->min = *pt;
        if (isnan(c->max.value) || pt->value > c->max.value)
            c->max = *pt;
    }
    c->n++;
}

/* Update the run summary of a series (rec[0, STORE_SUMMARY_BYTES)) with
 * the command's points: "last" is the point with the greatest (step,
 * timestamp), later logged winning ties, as MLflow's latest_metrics. */
static void
store__summary_update(uint8_t *rec, const struct store__chunk *c,
                      const struct store_point *pts, size_t n_pts)
{
    uint64_t count = rv_get_be64(rec + 8);
    double last = rv_f64_from_bits(rv_get_be64(rec + 16));
    int64_t last_step = rv_i64_from_sortable(rv_get_be64(rec + 24));
    int64_t last_ts = rv_i64_from_sortable(rv_get_be64(rec + 32));
    double mn = rv_f64_from_bits(rv_get_be64(rec + 40));
    double mx = rv_f64_from_bits(rv_get_be64(rec + 48));

    for (size_t i = 0; i < n_pts; i++) {
        const struct store_point *pt = &pts[i];
        if (count == 0 || pt->step > last_step ||
            (pt->step == last_step && pt->timestamp_ms >= last_ts)) {
            last = pt->value;
            last_step = pt->step;
            last_ts = pt->timestamp_ms;
        }
        count++;
    }
    if (!isnan(c->min.value) && (isnan(mn) || c->min.value < mn))
        mn = c->min.value;
    if (!isnan(c->max.value) && (isnan(mx) || c->max.value > mx))
        mx = c->max.value;
    rv_put_be64(rec + 8, count);
    rv_put_be64(rec + 16, rv_f64_bits(last));
    rv_put_be64(rec + 24, rv_i64_sortable(last_step));
    rv_put_be64(rec + 32, rv_i64_sortable(last_ts));
    rv_put_be64(rec + 40, rv_f64_bits(mn));
    rv_put_be64(rec + 48, rv_f64_bits(mx));
}

/* The points of one series in one command, in logged order. */
struct store__group {
    uint32_t key_idx, ctx_idx;
    const uint32_t *order; /* Indexes into the metric columns. */
    size_t n;
};

/* Move a full open chunk into the chunk table and empty it. */
static int
store__chunk_flush(struct store_wctx *w, const uint8_t *series_id,
                   struct store__chunk *open)
{
    uint8_t ck[STORE_CHUNK_KEY], cv[STORE_CHUNK_MAX_BYTES];
    memcpy(ck, series_id, 8);
    rv_put_be64(ck + 8, rv_i64_sortable(open->min_step));
    rv_put_be64(ck + 16, open->refs[0].index);
    rv_put_be16(ck + 24, open->refs[0].cmd_no);
    size_t n = store__chunk_encode(open, cv);
    open->n_refs = 0;
    open->n = 0;
    return store__put(w, STORE_DB_CHUNK, ck, sizeof ck, cv, n);
}

static int
store__series_apply(struct store_wctx *w, uint64_t run_num,
                    const Rv__Metrics *m, const struct store__group *g,
                    struct vlog_ptr ptr, uint16_t cmd_no,
                    struct store_point *pts)
{
    const char *key = m->keys[g->key_idx];
    const char *ctx = m->n_contexts ? m->contexts[g->ctx_idx] : "";
    uint8_t sk[8 + 2 + STORE_MAX_KEY_BYTES + STORE_MAX_CONTEXT_BYTES];
    size_t kn = strlen(key), cn = strlen(ctx);
    size_t skn = store__kv_key(sk, run_num, "", 0);
    skn += store__key_str16(sk + skn, key, kn);
    memcpy(sk + skn, ctx, cn);
    skn += cn;

    struct store__chunk add;
    memset(&add, 0, sizeof add);
    for (size_t i = 0; i < g->n; i++) {
        uint32_t j = g->order[i];
        pts[i].step = m->steps[j];
        pts[i].timestamp_ms = m->timestamps_ms[j];
        pts[i].value = m->values[j];
        store__chunk_add(&add, &pts[i]);
    }

    uint8_t rec[STORE_SUMMARY_BYTES], ov[STORE_CHUNK_MAX_BYTES];
    struct store__chunk open;
    MDB_val v;
    int rc =
        store__get(w->txn, w->s->dbi[STORE_DB_SERIES], sk, skn, &v, w->errmsg);
    if (rc == RV_OK) {
        if (v.mv_size != STORE_SUMMARY_BYTES)
            return RV_ECORRUPT;
        memcpy(rec, v.mv_data, sizeof rec);
        rc =
            store__get(w->txn, w->s->dbi[STORE_DB_OPEN], rec, 8, &v, w->errmsg);
        if (rc == RV_OK &&
            store__chunk_decode(v.mv_data, v.mv_size, &open) != RV_OK)
            rc = RV_ECORRUPT;
        if (rc != RV_OK)
            return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    } else if (rc == RV_ENOTFOUND) {
        memset(rec, 0, sizeof rec);
        rv_put_be64(rec, ++w->s->next_series_id);
        rv_put_be64(rec + 40, rv_f64_bits(NAN));
        rv_put_be64(rec + 48, rv_f64_bits(NAN));
        memset(&open, 0, sizeof open);
    } else {
        return rc;
    }
    store__summary_update(rec, &add, pts, g->n);
    store__chunk_merge(&open, &add);
    open.refs[open.n_refs++] = (struct store__ref){
        ptr, cmd_no, g->key_idx, g->ctx_idx, (uint32_t)g->n, w->index};
    if (open.n_refs == STORE_CHUNK_MAX_REFS ||
        open.n >= STORE_CHUNK_FLUSH_POINTS) {
        rc = store__chunk_flush(w, rec, &open);
        if (rc != RV_OK)
            return rc;
    }
    rc = store__put(w, STORE_DB_OPEN, rec, 8, ov,
                    store__chunk_encode(&open, ov));
    if (rc == RV_OK)
        rc = store__put(w, STORE_DB_SERIES, sk, skn, rec, sizeof rec);
    return rc;
}

/* Group point indexes by series (key_idx, ctx_idx), stable within a
 * series, with a counting sort over the series ids. */
static int
store__group_points(struct store *s, const Rv__Metrics *m, uint32_t **order,
                    uint32_t **starts, size_t *n_series)
{
    size_t n = m->n_values;
    size_t n_ctx = m->n_contexts ? m->n_contexts : 1;
    size_t n_sid = m->n_keys * n_ctx;
    size_t need = n + n_sid + 1;
    if (need > s->scratch_cap) {
        uint32_t *p = realloc(s->scratch_order, need * sizeof *p);
        if (p == NULL)
            return RV_ENOMEM;
        s->scratch_order = p;
        s->scratch_cap = need;
    }
    uint32_t *cnt = s->scratch_order + n;
    memset(cnt, 0, (n_sid + 1) * sizeof *cnt);
    for (size_t i = 0; i < n; i++) {
        size_t sid = m->key_idx[i] * n_ctx + (m->n_ctx_idx ? m->ctx_idx[i] : 0);
        cnt[sid + 1]++;
    }
    for (size_t i = 0; i < n_sid; i++)
        cnt[i + 1] += cnt[i];
    /* cnt[sid] is now the start of series sid; fill, then shift back. */
    for (size_t i = 0; i < n; i++) {
        size_t sid = m->key_idx[i] * n_ctx + (m->n_ctx_idx ? m->ctx_idx[i] : 0);
        s->scratch_order[cnt[sid]++] = (uint32_t)i;
    }
    for (size_t i = n_sid; i > 0; i--)
        cnt[i] = cnt[i - 1];
    cnt[0] = 0;
    *order = s->scratch_order;
    *starts = cnt;
    *n_series = n_sid;
    return RV_OK;
}

static int
store__log_batch(struct store_wctx *w, const Rv__LogBatch *b,
                 struct vlog_ptr ptr, uint16_t cmd_no)
{
    struct store__runrec rr;
    int rc = store__runrec_get_active(w, b->run_id, &rr);
    if (rc != RV_OK)
        return rc;
    rc = store__kvs_apply(w, rr.run_num, b->params, b->n_params, b->tags,
                          b->n_tags);
    if (rc != RV_OK || b->metrics == NULL || b->metrics->n_values == 0)
        return rc;
    const Rv__Metrics *m = b->metrics;
    if ((rc = store__metrics_check(m, w->errmsg)) != RV_OK)
        return rc;
    uint64_t max_runs, max_points;
    rc = store__team_limits(w, rr.str[RUN_TEAM], rr.len[RUN_TEAM], &max_runs,
                            &max_points);
    if (rc != RV_OK)
        return rc;
    if (max_points > 0 && rr.n_points + m->n_values > max_points) {
        rv_errmsg_printf(w->errmsg,
                         "run '%.64s' would exceed its team's "
                         "quota of %llu points",
                         b->run_id, (unsigned long long)max_points);
        return RV_EQUOTA;
    }
    uint32_t *order, *starts;
    size_t n_series;
    if ((rc = store__group_points(w->s, m, &order, &starts, &n_series)) !=
        RV_OK)
        return rc;
    struct store_point *pts = malloc(m->n_values * sizeof *pts);
    if (pts == NULL)
        return RV_ENOMEM;
    size_t n_ctx = m->n_contexts ? m->n_contexts : 1;
    for (size_t sid = 0; rc == RV_OK && sid < n_series; sid++) {
        struct store__group g = {(uint32_t)(sid / n_ctx),
                                 (uint32_t)(sid % n_ctx), order + starts[sid],
                                 starts[sid + 1] - starts[sid]};
        if (g.n > 0)
            rc = store__series_apply(w, rr.run_num, m, &g, ptr, cmd_no, pts);
    }
    free(pts);
    if (rc == RV_OK) {
        rr.n_points += m->n_values;
        rc = store__runrec_put(w, &rr);
    }
    return rc;
}

/* ---- Log lines --------------------------------------------------------- */

static int
store__log_lines(struct store_wctx *w, const Rv__LogLines *ll,
                 struct vlog_ptr ptr, uint16_t cmd_no)
{
    struct store__runrec rr;
    if (ll->n_lines == 0 || ll->n_lines > STORE_MAX_LOG_LINES_PER_COMMAND) {
        rv_errmsg_printf(w->errmsg, "a logs request holds 1..%d lines, got %zu",
                         STORE_MAX_LOG_LINES_PER_COMMAND, ll->n_lines);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < ll->n_lines; i++) {
        const Rv__LogLine *l = ll->lines[i];
        size_t n = strlen(l->text);
        if (n > STORE_MAX_LOG_LINE_BYTES || !store__utf8_valid(l->text, n)) {
            rv_errmsg_printf(w->errmsg,
                             "log line %zu must be UTF-8 of at most "
                             "%d bytes",
                             i, STORE_MAX_LOG_LINE_BYTES);
            return RV_EINVAL;
        }
        if (l->has_stream && l->stream != RV__STREAM__STDOUT &&
            l->stream != RV__STREAM__STDERR) {
            rv_errmsg_printf(w->errmsg, "log line %zu: unknown stream", i);
            return RV_EINVAL;
        }
    }
    int rc = store__runrec_get_active(w, ll->run_id, &rr);
    if (rc != RV_OK)
        return rc;
    uint8_t k[16], v[18];
    rv_put_be64(k, rr.run_num);
    rv_put_be64(k + 8, rr.n_log_lines);
    rv_put_be32(v, ptr.segment);
    rv_put_be32(v + 4, ptr.offset);
    rv_put_be32(v + 8, ptr.len);
    rv_put_be16(v + 12, cmd_no);
    rv_put_be32(v + 14, (uint32_t)ll->n_lines);
    rc = store__put(w, STORE_DB_LOGS, k, sizeof k, v, sizeof v);
    if (rc != RV_OK)
        return rc;
    rr.n_log_lines += ll->n_lines;
    return store__runrec_put(w, &rr);
}

/* ---- Artifacts --------------------------------------------------------- */

/* Decoded artifact record, a private copy. */
struct store__artrec {
    int is_complete;
    uint64_t size;
    uint8_t sha256[32];
    char content_type[256];
    uint64_t owner_run;
    char owner_path[STORE_MAX_ARTIFACT_PATH_BYTES + 1];
};

static int
store__artrec_decode(const MDB_val *v, struct store__artrec *a)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    if (v->mv_size < 1 + 8 + 32 + 2)
        return RV_ECORRUPT;
    a->is_complete = p[0];
    a->size = rv_get_be64(p + 1);
    memcpy(a->sha256, p + 9, 32);
    p += 41;
    uint16_t n = rv_get_be16(p);
    if (n >= sizeof a->content_type || end - p < 2 + n + 8 + 2)
        return RV_ECORRUPT;
    memcpy(a->content_type, p + 2, n);
    a->content_type[n] = '\0';
    p += 2 + n;
    a->owner_run = rv_get_be64(p);
    n = rv_get_be16(p + 8);
    if (n > STORE_MAX_ARTIFACT_PATH_BYTES || end - p != 10 + n)
        return RV_ECORRUPT;
    memcpy(a->owner_path, p + 10, n);
    a->owner_path[n] = '\0';
    return RV_OK;
}

static int
store__artrec_put(struct store_wctx *w, const uint8_t *k, size_t kn,
                  const struct store__artrec *a)
{
    uint8_t buf[1 + 8 + 32 + 2 + 256 + 8 + 2 + STORE_MAX_ARTIFACT_PATH_BYTES];
    struct rv_buf b = {buf, 0, sizeof buf, 0};
    rv_buf_append_u8(&b, (uint8_t)a->is_complete);
    rv_buf_append_be64(&b, a->size);
    rv_buf_append(&b, a->sha256, 32);
    rv_buf_append_str16(&b, a->content_type, strlen(a->content_type));
    rv_buf_append_be64(&b, a->owner_run);
    rv_buf_append_str16(&b, a->owner_path, strlen(a->owner_path));
    if (b.is_failed || b.data != buf)
        return RV_ECORRUPT;
    return store__put(w, STORE_DB_ART, k, kn, buf, b.len);
}

/* Artifact paths: relative, '/'-separated, no empty, "." or ".." parts. */
static int
store__artifact_path_valid(const char *p, size_t n)
{
    if (n == 0 || n > STORE_MAX_ARTIFACT_PATH_BYTES || !store__utf8_valid(p, n))
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && (unsigned char)p[i] < 0x20)
            return 0;
        if (i == n || p[i] == '/') {
            size_t len = i - start;
            if (len == 0 || (len == 1 && p[start] == '.') ||
                (len == 2 && p[start] == '.' && p[start + 1] == '.'))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

static size_t
store__artpart_prefix(uint8_t *k, uint64_t run_num, const char *path)
{
    rv_put_be64(k, run_num);
    return 8 + store__key_str16(k + 8, path, strlen(path));
}

/* Hash the stored parts of (run_num, path) plus a final chunk. */
static int
store__artifact_sha256(struct store_wctx *w, uint64_t run_num, const char *path,
                       const ProtobufCBinaryData *last, uint8_t out[32])
{
    struct sha256_ctx ctx;
    uint8_t pre[8 + 2 + STORE_MAX_ARTIFACT_PATH_BYTES];
    size_t pn = store__artpart_prefix(pre, run_num, path);
    struct rv_buf vb;
    MDB_cursor *cur;

    sha256_init(&ctx);
    rv_buf_init(&vb);
    int rc = mdb_cursor_open(w->txn, w->s->dbi[STORE_DB_ARTPART], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", w->errmsg);
    MDB_val k = {pn, pre}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    int err = RV_OK;
    while (err == RV_OK && rc == 0 && k.mv_size == pn + 8 &&
           memcmp(k.mv_data, pre, pn) == 0) {
        if (v.mv_size != 18) {
            err = RV_ECORRUPT;
            break;
        }
        const uint8_t *pv = v.mv_data;
        struct vlog_ptr ptr = {rv_get_be32(pv), rv_get_be32(pv + 4),
                               rv_get_be32(pv + 8)};
        uint16_t cmd_no = rv_get_be16(pv + 12);
        err = vlog_read(w->s->vlog, ptr, &vb, NULL, w->errmsg);
        Rv__CommandBatch *batch = NULL;
        if (err == RV_OK)
            err = proto_batch_decode(vb.data, vb.len, &batch, w->errmsg);
        if (err == RV_OK) {
            if (cmd_no >= batch->n_commands ||
                batch->commands[cmd_no]->body_case !=
                    RV__COMMAND__BODY_ARTIFACT_CHUNK)
                err = RV_ECORRUPT;
            else {
                const ProtobufCBinaryData *d =
                    &batch->commands[cmd_no]->artifact_chunk->data;
                sha256_update(&ctx, d->len, d->data);
            }
        } else if (err == RV_EMALFORMED) {
            err = RV_ECORRUPT;
        }
        proto_batch_free(batch);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    rv_buf_free(&vb);
    if (err != RV_OK)
        return err;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store__err_mdb(rc, "cursor", w->errmsg);
    sha256_update(&ctx, last->len, last->data);
    sha256_digest(&ctx, 32, out);
    return RV_OK;
}

/* Content-addressed deduplication: the first complete artifact with a
 * given SHA-256 owns the parts; later ones drop theirs and point to it. */
static int
store__artifact_complete(struct store_wctx *w, uint64_t run_num,
                         const char *path, struct store__artrec *a)
{
    MDB_val v;
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_BLOB], a->sha256, 32, &v,
                        w->errmsg);
    uint8_t blob[8 + 8 + 2 + STORE_MAX_ARTIFACT_PATH_BYTES];
    if (rc == RV_OK) {
        if (v.mv_size < 18 || v.mv_size > sizeof blob)
            return RV_ECORRUPT;
        size_t bn = v.mv_size;
        memcpy(blob, v.mv_data, bn);
        uint16_t on = rv_get_be16(blob + 16);
        if (18u + on != bn)
            return RV_ECORRUPT;
        rv_put_be64(blob, rv_get_be64(blob) + 1);
        a->owner_run = rv_get_be64(blob + 8);
        memcpy(a->owner_path, blob + 18, on);
        a->owner_path[on] = '\0';
        uint8_t pre[8 + 2 + STORE_MAX_ARTIFACT_PATH_BYTES];
        size_t pn = store__artpart_prefix(pre, run_num, path);
        rc = store__del_prefix(w, STORE_DB_ARTPART, pre, pn, NULL, NULL);
        if (rc == RV_OK)
            rc = store__put(w, STORE_DB_BLOB, a->sha256, 32, blob, bn);
        return rc;
    }
    if (rc != RV_ENOTFOUND)
        return rc;
    size_t pn = strlen(path);
    rv_put_be64(blob, 1);
    rv_put_be64(blob + 8, run_num);
    rv_put_be16(blob + 16, (uint16_t)pn);
    memcpy(blob + 18, path, pn);
    return store__put(w, STORE_DB_BLOB, a->sha256, 32, blob, 18 + pn);
}

static int
store__artifact_chunk(struct store_wctx *w, const Rv__ArtifactChunk *c,
                      struct vlog_ptr ptr, uint16_t cmd_no)
{
    struct store__runrec rr;
    size_t pn = strlen(c->path);
    if (!store__artifact_path_valid(c->path, pn)) {
        rv_errmsg_printf(w->errmsg,
                         "invalid artifact path '%.64s': relative, "
                         "at most %d bytes, no '.' or '..' parts",
                         c->path, STORE_MAX_ARTIFACT_PATH_BYTES);
        return RV_EINVAL;
    }
    if (c->data.len > STORE_MAX_ARTIFACT_CHUNK_BYTES) {
        rv_errmsg_printf(w->errmsg, "artifact chunk of %zu bytes exceeds %u",
                         c->data.len, STORE_MAX_ARTIFACT_CHUNK_BYTES);
        return RV_ETOOBIG;
    }
    if (c->content_type != NULL &&
        (strlen(c->content_type) > 255 ||
         !store__utf8_valid(c->content_type, strlen(c->content_type))))
        return RV_EINVAL;
    int rc = store__runrec_get_active(w, c->run_id, &rr);
    if (rc != RV_OK)
        return rc;
    uint8_t k[8 + STORE_MAX_ARTIFACT_PATH_BYTES];
    size_t kn = store__kv_key(k, rr.run_num, c->path, pn);
    struct store__artrec a;
    MDB_val v;
    rc = store__get(w->txn, w->s->dbi[STORE_DB_ART], k, kn, &v, w->errmsg);
    if (rc == RV_OK) {
        if (store__artrec_decode(&v, &a) != RV_OK)
            return RV_ECORRUPT;
        if (a.is_complete) {
            rv_errmsg_printf(w->errmsg, "artifact '%.64s' already exists",
                             c->path);
            return RV_EEXIST;
        }
    } else if (rc == RV_ENOTFOUND) {
        memset(&a, 0, sizeof a);
        snprintf(a.content_type, sizeof a.content_type, "%s",
                 c->content_type ? c->content_type
                                 : "application/octet-stream");
        a.owner_run = rr.run_num;
        memcpy(a.owner_path, c->path, pn + 1);
    } else {
        return rc;
    }
    if (c->offset != a.size) {
        rv_errmsg_printf(w->errmsg,
                         "artifact '%.64s': chunk offset %llu, "
                         "expected %llu",
                         c->path, (unsigned long long)c->offset,
                         (unsigned long long)a.size);
        return RV_EINVAL;
    }
    if (a.size + c->data.len > STORE_DEFAULT_MAX_ARTIFACT_BYTES) {
        rv_errmsg_printf(w->errmsg, "artifact '%.64s' exceeds %u bytes",
                         c->path, STORE_DEFAULT_MAX_ARTIFACT_BYTES);
        return RV_ETOOBIG;
    }
    if (c->has_is_last && c->is_last) {
        uint8_t sum[32];
        if (!c->has_sha256 || c->sha256.len != 32) {
            rv_errmsg_printf(w->errmsg, "the last chunk must carry the 32-byte "
                                        "SHA-256 of the artifact");
            return RV_EINVAL;
        }
        rc = store__artifact_sha256(w, rr.run_num, c->path, &c->data, sum);
        if (rc != RV_OK)
            return rc;
        if (memcmp(sum, c->sha256.data, 32) != 0) {
            rv_errmsg_printf(w->errmsg,
                             "artifact '%.64s': SHA-256 of the "
                             "uploaded bytes does not match",
                             c->path);
            return RV_EINVAL;
        }
        memcpy(a.sha256, sum, 32);
        a.is_complete = 1;
    }
    uint8_t pk[8 + 2 + STORE_MAX_ARTIFACT_PATH_BYTES + 8], pv[18];
    size_t pkn = store__artpart_prefix(pk, rr.run_num, c->path);
    rv_put_be64(pk + pkn, a.size);
    rv_put_be32(pv, ptr.segment);
    rv_put_be32(pv + 4, ptr.offset);
    rv_put_be32(pv + 8, ptr.len);
    rv_put_be16(pv + 12, cmd_no);
    rv_put_be32(pv + 14, (uint32_t)c->data.len);
    rc = store__put(w, STORE_DB_ARTPART, pk, pkn + 8, pv, sizeof pv);
    a.size += c->data.len;
    if (rc == RV_OK && a.is_complete)
        rc = store__artifact_complete(w, rr.run_num, c->path, &a);
    if (rc == RV_OK)
        rc = store__artrec_put(w, k, kn, &a);
    return rc;
}

/* On purge: drop one reference to the artifact's blob; the owner's parts
 * go when the last reference does. Incomplete uploads drop their parts. */
static int
store__artifact_release(struct store_wctx *w, const MDB_val *k,
                        const MDB_val *v, void *data)
{
    const struct store__purge *p = data;
    struct store__artrec a;
    char path[STORE_MAX_ARTIFACT_PATH_BYTES + 1];
    if (store__artrec_decode(v, &a) != RV_OK || k->mv_size < 8 ||
        k->mv_size - 8 > STORE_MAX_ARTIFACT_PATH_BYTES)
        return RV_ECORRUPT;
    memcpy(path, (const uint8_t *)k->mv_data + 8, k->mv_size - 8);
    path[k->mv_size - 8] = '\0';
    uint8_t pre[8 + 2 + STORE_MAX_ARTIFACT_PATH_BYTES];
    if (!a.is_complete) {
        size_t pn = store__artpart_prefix(pre, p->run_num, path);
        return store__del_prefix(w, STORE_DB_ARTPART, pre, pn, NULL, NULL);
    }
    MDB_val bv;
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_BLOB], a.sha256, 32, &bv,
                        w->errmsg);
    if (rc != RV_OK)
        return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    uint8_t blob[8 + 8 + 2 + STORE_MAX_ARTIFACT_PATH_BYTES];
    if (bv.mv_size < 18 || bv.mv_size > sizeof blob)
        return RV_ECORRUPT;
    size_t bn = bv.mv_size;
    memcpy(blob, bv.mv_data, bn);
    uint64_t refs = rv_get_be64(blob);
    if (refs > 1) {
        rv_put_be64(blob, refs - 1);
        return store__put(w, STORE_DB_BLOB, a.sha256, 32, blob, bn);
    }
    rc = store__del(w, STORE_DB_BLOB, a.sha256, 32);
    size_t pn = store__artpart_prefix(pre, a.owner_run, a.owner_path);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_ARTPART, pre, pn, NULL, NULL);
    return rc;
}

/* ---- Teams and tokens -------------------------------------------------- */

static int
store__team_put(struct store_wctx *w, const Rv__TeamPut *t)
{
    int rc =
        store__str_check(t->team, STORE_MAX_TEAM_BYTES, 1, "team", w->errmsg);
    if (rc != RV_OK)
        return rc;
    uint8_t v[16];
    rv_put_be64(v, t->has_max_runs ? t->max_runs : 0);
    rv_put_be64(v + 8, t->has_max_points_per_run ? t->max_points_per_run : 0);
    return store__put(w, STORE_DB_TEAM, t->team, strlen(t->team), v, 16);
}

static int
store__token_put(struct store_wctx *w, const Rv__TokenPut *t)
{
    if (t->token_sha256.len != 32) {
        rv_errmsg_printf(w->errmsg, "token_sha256 must be 32 bytes");
        return RV_EINVAL;
    }
    int rc =
        store__str_check(t->team, STORE_MAX_TEAM_BYTES, 1, "team", w->errmsg);
    if (rc != RV_OK)
        return rc;
    if (t->has_role &&
        (t->role < RV__ROLE__ROLE_READ || t->role > RV__ROLE__ROLE_ADMIN)) {
        rv_errmsg_printf(w->errmsg, "unknown role %d", t->role);
        return RV_EINVAL;
    }
    uint8_t v[1 + STORE_MAX_TEAM_BYTES];
    size_t n = strlen(t->team);
    v[0] = (uint8_t)(t->has_role ? t->role : RV__ROLE__ROLE_READ);
    memcpy(v + 1, t->team, n);
    return store__put(w, STORE_DB_TOKEN, t->token_sha256.data, 32, v, 1 + n);
}

static int
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
        store__str_check(a, STORE_MAX_ADDR_BYTES, is_required, what, errmsg);
    for (const char *p = a; rc == RV_OK && p != NULL && *p != '\0'; p++) {
        if (*p <= ' ' || *p > '~') {
            rv_errmsg_printf(errmsg, "%s has a byte outside printable ASCII",
                             what);
            rc = RV_EINVAL;
        }
    }
    return rc;
}

static int
store__node_put(struct store_wctx *w, const Rv__NodePut *n)
{
    uint8_t k[8], v[4 * STORE_MAX_ADDR_BYTES];
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

static int
store__node_del(struct store_wctx *w, const Rv__NodeDel *n)
{
    uint8_t k[8];
    rv_put_be64(k, n->id);
    return store__del(w, STORE_DB_NODE, k, 8);
}

/* ---- Commands ---------------------------------------------------------- */

static int
store__dispatch(struct store_wctx *w, const Rv__Command *cmd,
                struct vlog_ptr ptr, uint16_t cmd_no, struct store_result *res)
{
    switch (cmd->body_case) {
    case RV__COMMAND__BODY_RUN_CREATE:
        return store__run_create(w, cmd->run_create, res);
    case RV__COMMAND__BODY_RUN_UPDATE:
        return store__run_update(w, cmd->run_update);
    case RV__COMMAND__BODY_RUN_STATUS:
        return store__run_status(w, cmd->run_status);
    case RV__COMMAND__BODY_LOG_BATCH:
        return store__log_batch(w, cmd->log_batch, ptr, cmd_no);
    case RV__COMMAND__BODY_LOG_LINES:
        return store__log_lines(w, cmd->log_lines, ptr, cmd_no);
    case RV__COMMAND__BODY_ARTIFACT_CHUNK:
        return store__artifact_chunk(w, cmd->artifact_chunk, ptr, cmd_no);
    case RV__COMMAND__BODY_RUN_DELETE:
        return store__run_lifecycle(w, cmd->run_delete->run_id, STORE_DELETED);
    case RV__COMMAND__BODY_RUN_RESTORE:
        return store__run_lifecycle(w, cmd->run_restore->run_id, STORE_ACTIVE);
    case RV__COMMAND__BODY_RUN_PURGE:
        return store__run_purge(w, cmd->run_purge->run_id);
    case RV__COMMAND__BODY_TEAM_PUT:
        return store__team_put(w, cmd->team_put);
    case RV__COMMAND__BODY_TOKEN_PUT:
        return store__token_put(w, cmd->token_put);
    case RV__COMMAND__BODY_TOKEN_DEL:
        return store__token_del(w, cmd->token_del);
    case RV__COMMAND__BODY_NOOP:
        return RV_OK;
    case RV__COMMAND__BODY_NODE_PUT:
        return store__node_put(w, cmd->node_put);
    case RV__COMMAND__BODY_NODE_DEL:
        return store__node_del(w, cmd->node_del);
    case RV__COMMAND__BODY__NOT_SET:
    default:
        rv_errmsg_printf(w->errmsg, "empty command");
        return RV_EINVAL;
    }
}

/* Client record: be64 high-water seq, then up to STORE_CLIENT_RESULTS
 * entries of (be64 seq, be32 code, u8 flags, str16 run_id, str16 message),
 * newest first. */
static int
store__client_lookup(struct store_wctx *w, uint64_t client_id, uint64_t seq,
                     struct store_result *res, int *is_done)
{
    uint8_t k[8];
    MDB_val v;
    *is_done = 0;
    rv_put_be64(k, client_id);
    int rc =
        store__get(w->txn, w->s->dbi[STORE_DB_CLIENT], k, 8, &v, w->errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_OK;
    if (rc != RV_OK)
        return rc;
    const uint8_t *p = v.mv_data, *end = p + v.mv_size;
    if (v.mv_size < 8)
        return RV_ECORRUPT;
    if (seq > rv_get_be64(p))
        return RV_OK;
    *is_done = 1;
    res->is_duplicate = 1;
    for (p += 8; end - p >= 17;) {
        uint64_t s = rv_get_be64(p);
        int code = (int)rv_get_be32(p + 8);
        uint8_t flags = p[12];
        uint16_t rn = rv_get_be16(p + 13);
        if ((size_t)(end - p) < 15u + rn + 2)
            return RV_ECORRUPT;
        uint16_t mn = rv_get_be16(p + 15 + rn);
        if ((size_t)(end - p) < 17u + rn + mn)
            return RV_ECORRUPT;
        if (s == seq) {
            res->code = code;
            res->is_resumed = flags & 1;
            snprintf(res->run_id, sizeof res->run_id, "%.*s", (int)rn,
                     (const char *)p + 15);
            snprintf(res->message, sizeof res->message, "%.*s", (int)mn,
                     (const char *)p + 17 + rn);
            return RV_OK;
        }
        p += 17 + rn + mn;
    }
    res->code = RV_ESTALE;
    snprintf(res->message, sizeof res->message,
             "client %llu seq %llu was applied earlier; its result is no "
             "longer kept",
             (unsigned long long)client_id, (unsigned long long)seq);
    return RV_OK;
}

static int
store__client_record(struct store_wctx *w, uint64_t client_id, uint64_t seq,
                     const struct store_result *res)
{
    uint8_t k[8];
    MDB_val v;
    struct rv_buf b;
    rv_put_be64(k, client_id);
    rv_buf_init(&b);
    rv_buf_append_be64(&b, seq);
    size_t rn = strlen(res->run_id), mn = strlen(res->message);
    rv_buf_append_be64(&b, seq);
    rv_buf_append_be32(&b, (uint32_t)res->code);
    rv_buf_append_u8(&b, (uint8_t)(res->is_resumed ? 1 : 0));
    rv_buf_append_str16(&b, res->run_id, rn);
    rv_buf_append_str16(&b, res->message, mn);
    int rc =
        store__get(w->txn, w->s->dbi[STORE_DB_CLIENT], k, 8, &v, w->errmsg);
    if (rc == RV_OK && v.mv_size >= 8) {
        /* Keep the newest STORE_CLIENT_RESULTS - 1 older entries. */
        const uint8_t *p = (const uint8_t *)v.mv_data + 8,
                      *end = (const uint8_t *)v.mv_data + v.mv_size;
        for (int kept = 1; kept < STORE_CLIENT_RESULTS && end - p >= 17;
             kept++) {
            uint16_t n1 = rv_get_be16(p + 13);
            if ((size_t)(end - p) < 17u + n1)
                break;
            uint16_t n2 = rv_get_be16(p + 15 + n1);
            size_t len = 17u + n1 + n2;
            if ((size_t)(end - p) < len)
                break;
            rv_buf_append(&b, p, len);
            p += len;
        }
        rc = RV_OK;
    } else if (rc == RV_ENOTFOUND) {
        rc = RV_OK;
    }
    if (rc == RV_OK)
        rc = b.is_failed ? RV_ENOMEM
                         : store__put(w, STORE_DB_CLIENT, k, 8, b.data, b.len);
    rv_buf_free(&b);
    return rc;
}

/* Apply one command: all of it or nothing. With is_nested the command runs
 * in a nested transaction that a business error aborts alone. Without it
 * (the fast path) the command writes straight into txn, and a business
 * error makes the caller redo the
 * whole entry with nested transactions (STORE_REDO_NESTED): the outcome is
 * the same either way, and commands rarely fail. */
#define STORE_REDO_NESTED (-1)

static int
store__command(struct store *s, MDB_txn *parent, XXH3_state_t *entry_hash,
               XXH3_state_t *cmd_hash, uint64_t index, const Rv__Command *cmd,
               struct vlog_ptr ptr, uint16_t cmd_no, int is_nested,
               struct store_result *res, char *errmsg)
{
    struct store_wctx pw = {s, parent, entry_hash, index, res->message};
    int is_done = 0;
    uint64_t client_id = cmd->has_client_id ? cmd->client_id : 0;
    uint64_t seq = cmd->has_seq ? cmd->seq : 0;
    int rc;

    if (client_id != 0) {
        rc = store__client_lookup(&pw, client_id, seq, res, &is_done);
        if (rc != RV_OK || is_done)
            return rc;
    }
    MDB_txn *txn = parent;
    if (is_nested) {
        int mrc = mdb_txn_begin(s->env, parent, 0, &txn);
        if (mrc != 0)
            return store__err_mdb(mrc, "mdb_txn_begin (nested)", errmsg);
    }
    XXH3_128bits_reset(cmd_hash);
    struct store_wctx w = {s, txn, cmd_hash, index, res->message};
    uint64_t run_num = s->next_run_num, series_id = s->next_series_id;
    rc = store__dispatch(&w, cmd, ptr, cmd_no, res);
    if (store__is_local_fault(rc)) {
        if (is_nested)
            mdb_txn_abort(txn);
        snprintf(errmsg, RV_ERRMSG_SIZE, "%s: %.200s", proto_command_name(cmd),
                 res->message);
        return rc;
    }
    if (rc != RV_OK && !is_nested)
        return STORE_REDO_NESTED;
    if (rc != RV_OK) {
        mdb_txn_abort(txn);
        s->next_run_num = run_num;
        s->next_series_id = series_id;
        res->code = rc;
        if (res->message[0] == '\0')
            snprintf(res->message, sizeof res->message, "%s", rv_strerror(rc));
    } else {
        if (is_nested) {
            int mrc = mdb_txn_commit(txn);
            if (mrc != 0)
                return store__err_mdb(mrc, "mdb_txn_commit (nested)", errmsg);
        }
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(cmd_hash));
        XXH3_128bits_update(entry_hash, c.digest, sizeof c.digest);
        res->code = RV_OK;
        res->message[0] = '\0';
    }
    if (client_id != 0) {
        pw.errmsg = errmsg;
        rc = store__client_record(&pw, client_id, seq, res);
        if (rc != RV_OK)
            return rc;
    }
    return RV_OK;
}

static int
store__meta_put(MDB_txn *txn, MDB_dbi dbi, const char *name, const void *v,
                size_t n, char *errmsg)
{
    MDB_val key = {strlen(name), (void *)name}, val = {n, (void *)v};
    int rc = mdb_put(txn, dbi, &key, &val, 0);
    return rc == 0 ? RV_OK : store__err_mdb(rc, "meta", errmsg);
}

static int
store__meta_store(struct store *s, MDB_txn *txn, uint64_t index,
                  const uint8_t digest[STORE_DIGEST_BYTES], char *errmsg)
{
    uint8_t v[8];
    MDB_dbi meta = s->dbi[STORE_DB_META];
    rv_put_be64(v, index);
    int rc = store__meta_put(txn, meta, "applied", v, 8, errmsg);
    if (rc == RV_OK)
        rc = store__meta_put(txn, meta, "digest", digest, STORE_DIGEST_BYTES,
                             errmsg);
    rv_put_be64(v, s->next_run_num);
    if (rc == RV_OK)
        rc = store__meta_put(txn, meta, "seq.run", v, 8, errmsg);
    rv_put_be64(v, s->next_series_id);
    if (rc == RV_OK)
        rc = store__meta_put(txn, meta, "seq.series", v, 8, errmsg);
    return rc;
}

/* The next digest: XXH3-128 of (previous digest, index, hash of the entry's
 * index writes). */
static void
store__digest_next(const uint8_t prev[STORE_DIGEST_BYTES], uint64_t index,
                   XXH3_state_t *entry_hash, uint8_t out[STORE_DIGEST_BYTES])
{
    uint8_t buf[STORE_DIGEST_BYTES + 8 + 16];
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(entry_hash));
    memcpy(buf, prev, STORE_DIGEST_BYTES);
    rv_put_be64(buf + STORE_DIGEST_BYTES, index);
    memcpy(buf + STORE_DIGEST_BYTES + 8, c.digest, 16);
    XXH128_canonicalFromHash(&c, XXH3_128bits(buf, sizeof buf));
    memcpy(out, c.digest, STORE_DIGEST_BYTES);
}

static int
store__apply_batch(struct store *s, MDB_txn *txn, uint64_t index,
                   const Rv__CommandBatch *batch, struct vlog_ptr ptr,
                   int is_nested, struct store_result *results,
                   XXH3_state_t *entry_hash, char *errmsg)
{
    XXH3_state_t *cmd_hash = XXH3_createState();
    if (cmd_hash == NULL)
        return RV_ENOMEM;
    int rc = RV_OK;
    for (size_t i = 0; rc == RV_OK && i < batch->n_commands; i++) {
        rc = store__command(s, txn, entry_hash, cmd_hash, index,
                            batch->commands[i], ptr, (uint16_t)i, is_nested,
                            &results[i], errmsg);
    }
    XXH3_freeState(cmd_hash);
    return rc;
}

int
store__materialise(struct store *s, uint64_t index, const uint8_t *payload,
                   size_t n, struct vlog_ptr ptr, int is_malformed,
                   const char *malformed_msg, struct store_result **results,
                   size_t *n_results, char *errmsg)
{
    Rv__CommandBatch *batch = NULL;
    char why[RV_ERRMSG_SIZE] = "";
    *results = NULL;
    *n_results = 0;
    if (store__marker_dirty(s, errmsg) != RV_OK)
        return RV_EIO;
    if (!is_malformed && proto_batch_decode(payload, n, &batch, why) != RV_OK)
        is_malformed = 1;
    if (!is_malformed && batch->n_commands > STORE_MAX_COMMANDS_PER_BATCH) {
        snprintf(why, sizeof why, "batch of %zu commands exceeds %d",
                 batch->n_commands, STORE_MAX_COMMANDS_PER_BATCH);
        is_malformed = 1;
    }
    size_t n_cmds = is_malformed ? 1 : batch->n_commands;
    struct store_result *res = calloc(n_cmds ? n_cmds : 1, sizeof *res);
    XXH3_state_t *entry_hash = XXH3_createState();
    MDB_txn *txn = NULL;
    int rc = res && entry_hash ? RV_OK : RV_ENOMEM;
    uint64_t run_num = s->next_run_num, series_id = s->next_series_id;
    uint8_t digest[STORE_DIGEST_BYTES];
    for (int is_nested = 0; rc == RV_OK && is_nested < 2; is_nested++) {
        int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (mrc != 0) {
            rc = store__err_mdb(mrc, "mdb_txn_begin", errmsg);
            break;
        }
        XXH3_128bits_reset(entry_hash);
        if (is_malformed) {
            res[0].code = RV_EMALFORMED;
            snprintf(res[0].message, sizeof res[0].message, "%s",
                     malformed_msg ? malformed_msg : why);
            break;
        }
        rc = store__apply_batch(s, txn, index, batch, ptr, is_nested, res,
                                entry_hash, errmsg);
        if (rc != STORE_REDO_NESTED)
            break;
        /* A command failed on the fast path: start over, nested. */
        mdb_txn_abort(txn);
        txn = NULL;
        s->next_run_num = run_num;
        s->next_series_id = series_id;
        memset(res, 0, n_cmds * sizeof *res);
        rc = RV_OK;
    }
    if (rc == RV_OK) {
        store__digest_next(s->digest, index, entry_hash, digest);
        rc = store__meta_store(s, txn, index, digest, errmsg);
    }
    if (rc == RV_OK) {
        int mrc = mdb_txn_commit(txn);
        txn = NULL;
        if (mrc != 0)
            rc = store__err_mdb(mrc, "mdb_txn_commit", errmsg);
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc == RV_OK) {
        s->applied_index = index;
        memcpy(s->digest, digest, STORE_DIGEST_BYTES);
        *results = res;
        *n_results = n_cmds;
    } else {
        s->next_run_num = run_num;
        s->next_series_id = series_id;
        free(res);
    }
    XXH3_freeState(entry_hash);
    proto_batch_free(batch);
    return rc;
}

int
store_apply(struct store *s, uint64_t index, const void *entry, size_t len,
            struct store_result **results, size_t *n_results, char *errmsg)
{
    const uint8_t *payload;
    size_t n;
    char why[RV_ERRMSG_SIZE];

    *results = NULL;
    *n_results = 0;
    if (index <= s->applied_index)
        return RV_OK;
    if (vlog_last_index(s->vlog) >= index) {
        rv_errmsg_printf(errmsg,
                         "vlog already holds index %llu beyond the "
                         "applied index %llu",
                         (unsigned long long)index,
                         (unsigned long long)s->applied_index);
        return RV_ECORRUPT;
    }
    int is_malformed =
        proto_envelope_open(entry, len, &payload, &n, why) != RV_OK;
    if (is_malformed) {
        /* Archive an empty batch: replaying it changes nothing, as here. */
        payload = (const uint8_t *)"";
        n = 0;
    }
    struct vlog_ptr ptr;
    int rc =
        vlog_append(s->vlog, index, VLOG_TYPE_BATCH, payload, n, &ptr, errmsg);
    if (rc != RV_OK) {
        rv_errmsg_wrap(errmsg, "vlog");
        return rc;
    }
    return store__materialise(s, index, payload, n, ptr, is_malformed,
                              is_malformed ? why : NULL, results, n_results,
                              errmsg);
}

int
store_apply_record(struct store *s, uint64_t index, const void *payload,
                   size_t n, char *errmsg)
{
    if (index <= s->applied_index || vlog_last_index(s->vlog) >= index) {
        rv_errmsg_printf(errmsg, "record %llu does not follow %llu",
                         (unsigned long long)index,
                         (unsigned long long)s->applied_index);
        return RV_EINVAL;
    }
    struct vlog_ptr ptr;
    int rc =
        vlog_append(s->vlog, index, VLOG_TYPE_BATCH, payload, n, &ptr, errmsg);
    if (rc != RV_OK) {
        rv_errmsg_wrap(errmsg, "vlog");
        return rc;
    }
    struct store_result *results;
    size_t n_results;
    rc = store__materialise(s, index, payload, n, ptr, 0, NULL, &results,
                            &n_results, errmsg);
    free(results);
    return rc;
}
