/* Run indexes: the counters, the postings (ixscope, ixstat, ixparam,
 * ixtag, ixpv), params and tags, and the analytics that read the
 * counters. Writes run on the writer thread inside the apply transaction;
 * store_analytics runs in a store_read transaction. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Counters ---------------------------------------------------------- */

int
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

uint64_t
store__cnt_get(MDB_txn *txn, const struct store *s, const uint8_t *key,
               size_t kn)
{
    MDB_val v;
    if (store__get(txn, s->dbi[STORE_DB_CNT], key, kn, &v, NULL) != RV_OK ||
        v.mv_size != 8)
        return 0;
    return rv_get_be64(v.mv_data);
}

/* Key builders for counters and indexes. Each returns the key length. */
size_t
store__key_str16(uint8_t *p, const char *s, size_t n)
{
    rv_put_be16(p, (uint16_t)n);
    memcpy(p + 2, s, n);
    return 2 + n;
}

size_t
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
int
store__cnt_active(struct store_wctx *w, const struct store__runrec *rr,
                  int64_t delta)
{
    uint8_t
        k[1 + 2 + CONTRACT_MAX_TEAM_BYTES + 2 + CONTRACT_MAX_SCOPE_BYTES + 4];
    int rc = store__cnt_add(w, k, store__cnt_key_active(k, 'a', rr), delta);
    if (rc == RV_OK)
        rc = store__cnt_add(w, k, store__cnt_key_active(k, 'b', rr), delta);
    return rc;
}

/* Index entries and counters that every run has, by lifecycle-free
 * attributes: created order, scope, status, team. */
int
store__run_index(struct store_wctx *w, const struct store__runrec *rr,
                 int64_t delta)
{
    uint8_t k[8 + CONTRACT_MAX_RUN_ID_BYTES + 2 + CONTRACT_MAX_TEAM_BYTES];
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

size_t
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

int
store__posting(struct store_wctx *w, enum store_db db, const char *key,
               size_t kn, const char *val, size_t vn, uint64_t run_num,
               int64_t delta)
{
    uint8_t k[2 + CONTRACT_MAX_KEY_BYTES + 16], c[1 + sizeof k];
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
    if (!contract_key_valid(kv->key, kn)) {
        rv_errmsg_printf(errmsg,
                         "invalid %s key '%.64s': 1..%d bytes of "
                         "letters, digits, '_', '-', '.', ' ', '/'",
                         what, kv->key, CONTRACT_MAX_KEY_BYTES);
        return RV_EINVAL;
    }
    if (vn > max_value || !contract_utf8_valid(kv->value, vn)) {
        rv_errmsg_printf(errmsg,
                         "%s '%.64s': value must be UTF-8 of at most "
                         "%zu bytes",
                         what, kv->key, max_value);
        return RV_EINVAL;
    }
    return RV_OK;
}

/* The stored value of kv's key for run_num in db (STORE_DB_PARAM or
 * STORE_DB_TAG): the key goes into k (*n bytes), the value (borrowed from
 * the map) into *v. Returns RV_OK, RV_ENOTFOUND or an error; *is_same says
 * the stored value is kv's value. */
static int
store__kv_lookup(struct store_wctx *w, enum store_db db, uint64_t run_num,
                 const Rv__KV *kv, uint8_t *k, size_t *n, MDB_val *v,
                 int *is_same)
{
    size_t vn = strlen(kv->value);
    *n = store__kv_key(k, run_num, kv->key, strlen(kv->key));
    int rc = store__get(w->txn, w->s->dbi[db], k, *n, v, w->errmsg);
    *is_same = rc == RV_OK && v->mv_size == vn &&
               memcmp(v->mv_data, kv->value, vn) == 0;
    return rc;
}

/* Params are write-once: the same value again is a no-op, another value
 * is RV_ECONFLICT (MLflow's rule). */
static int
store__param_set(struct store_wctx *w, uint64_t run_num, const Rv__KV *kv)
{
    uint8_t k[8 + CONTRACT_MAX_KEY_BYTES];
    size_t kn = strlen(kv->key), vn = strlen(kv->value), n;
    MDB_val v;
    int is_same;
    int rc =
        store__kv_lookup(w, STORE_DB_PARAM, run_num, kv, k, &n, &v, &is_same);
    if (is_same)
        return RV_OK;
    if (rc == RV_OK) {
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
    uint8_t k[8 + CONTRACT_MAX_KEY_BYTES];
    char old[CONTRACT_MAX_TAG_VALUE_BYTES];
    size_t kn = strlen(kv->key), vn = strlen(kv->value), n;
    MDB_val v;
    int is_same;
    int rc =
        store__kv_lookup(w, STORE_DB_TAG, run_num, kv, k, &n, &v, &is_same);
    if (is_same)
        return RV_OK;
    if (rc == RV_OK) {
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

int
store__tag_del(struct store_wctx *w, uint64_t run_num, const char *key)
{
    uint8_t k[8 + CONTRACT_MAX_KEY_BYTES];
    char old[CONTRACT_MAX_TAG_VALUE_BYTES];
    size_t kn = key != NULL ? strlen(key) : 0, n;
    MDB_val v;
    if (!contract_key_valid(key != NULL ? key : "", kn)) {
        rv_errmsg_printf(w->errmsg, "invalid tag key '%.64s'",
                         key != NULL ? key : "");
        return RV_EINVAL;
    }
    n = store__kv_key(k, run_num, key, kn);
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_TAG], k, n, &v, w->errmsg);
    if (rc == RV_ENOTFOUND) {
        rv_errmsg_printf(w->errmsg, "No tag with name: %.64s in the run", key);
        return rc;
    }
    if (rc != RV_OK)
        return rc;
    if (v.mv_size > sizeof old)
        return RV_ECORRUPT;
    size_t on = v.mv_size;
    memcpy(old, v.mv_data, on);
    rc = store__posting(w, STORE_DB_IXTAG, key, kn, old, on, run_num, -1);
    if (rc == RV_OK)
        rc = store__del(w, STORE_DB_TAG, k, n);
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

int
store__kvs_apply(struct store_wctx *w, uint64_t run_num, Rv__KV **params,
                 size_t n_params, Rv__KV **tags, size_t n_tags)
{
    int rc =
        store__kvs_check(params, n_params, CONTRACT_MAX_PARAMS_PER_COMMAND,
                         CONTRACT_MAX_PARAM_VALUE_BYTES, "param", w->errmsg);
    if (rc == RV_OK)
        rc = store__kvs_check(tags, n_tags, CONTRACT_MAX_TAGS_PER_COMMAND,
                              CONTRACT_MAX_TAG_VALUE_BYTES, "tag", w->errmsg);
    for (size_t i = 0; rc == RV_OK && i < n_params; i++)
        rc = store__param_set(w, run_num, params[i]);
    for (size_t i = 0; rc == RV_OK && i < n_tags; i++)
        rc = store__tag_set(w, run_num, tags[i]);
    return rc;
}

/* ---- Analytics --------------------------------------------------------- */

void
store_counts_free(struct store_count *counts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(counts[i].label);
    free(counts);
}

static int
store__count_label_cmp(const void *a, const void *b)
{
    const struct store_count *x = a, *y = b;
    return strcmp(x->label, y->label);
}

/* Add n to label (collapsing equal labels after sorting). */
static int
store__counts_add(struct store_count **cs, size_t *n, size_t *cap,
                  const char *label, size_t len, uint64_t v)
{
    if (*n > 0 && strlen((*cs)[*n - 1].label) == len &&
        memcmp((*cs)[*n - 1].label, label, len) == 0) {
        (*cs)[*n - 1].n += v;
        return RV_OK;
    }
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        void *p = realloc(*cs, c * sizeof **cs);
        if (p == NULL)
            return RV_ENOMEM;
        *cs = p;
        *cap = c;
    }
    (*cs)[*n].label = store__strndup(label, len);
    (*cs)[*n].n = v;
    if ((*cs)[*n].label == NULL)
        return RV_ENOMEM;
    (*n)++;
    return RV_OK;
}

static void
store__day_label(uint32_t day, char *out, size_t size)
{
    /* Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
    int64_t z = (int64_t)day + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    snprintf(out, size, "%04lld-%02lld-%02lld", (long long)(y + (m <= 2)),
             (long long)m, (long long)d);
}

/* The key prefix of the counters store_analytics reads: kind 'a' (status,
 * project) or 'b' (day), then the team and project when given. Returns its
 * length. */
static size_t
store__analytics_prefix(uint8_t *pre, enum store_group group, const char *team,
                        const char *project)
{
    size_t pn = 1;
    pre[0] = group == STORE_GROUP_DAY ? 'b' : 'a';
    if (team != NULL) {
        rv_put_be16(pre + pn, (uint16_t)strlen(team));
        memcpy(pre + pn + 2, team, strlen(team));
        pn += 2 + strlen(team);
        if (project != NULL) {
            rv_put_be16(pre + pn, (uint16_t)strlen(project));
            memcpy(pre + pn + 2, project, strlen(project));
            pn += 2 + strlen(project);
        }
    }
    return pn;
}

/* Merge equal labels from different teams or projects: sort cs[0..n) by
 * label and add up the equal ones. Returns the new count. */
static size_t
store__counts_merge(struct store_count *cs, size_t n)
{
    qsort(cs, n, sizeof *cs, store__count_label_cmp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && strcmp(cs[w - 1].label, cs[i].label) == 0) {
            cs[w - 1].n += cs[i].n;
            free(cs[i].label);
        } else {
            cs[w++] = cs[i];
        }
    }
    return w;
}

int
store_analytics(struct store_read *r, enum store_group group, const char *team,
                const char *project, struct store_count **counts,
                size_t *n_counts, char *errmsg)
{
    uint8_t pre[1 + 2 + CONTRACT_MAX_TEAM_BYTES + 2 + CONTRACT_MAX_SCOPE_BYTES];
    size_t pn = 1;
    struct store_count *cs = NULL;
    size_t n = 0, cap = 0;
    *counts = NULL;
    *n_counts = 0;
    if (r->is_scoped) { /* Only the scope's team is counted. */
        if (team != NULL && strcmp(team, r->team) != 0)
            return RV_OK;
        team = r->team;
    }
    if ((team && strlen(team) > CONTRACT_MAX_TEAM_BYTES) ||
        (project && strlen(project) > CONTRACT_MAX_SCOPE_BYTES) ||
        (project && !team)) {
        rv_errmsg_printf(errmsg, "analytics scope: a project needs its team; "
                                 "names are bounded");
        return RV_EINVAL;
    }
    pn = store__analytics_prefix(pre, group, team, project);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_CNT], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {pn, pre}, v;
    int err = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= pn && memcmp(k.mv_data, pre, pn) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data, *end = p + k.mv_size;
        if (v.mv_size != 8 || end - p < 5) {
            err = RV_ECORRUPT;
            break;
        }
        uint16_t tn = rv_get_be16(p + 1);
        if (end - p < 5 + tn || end - p < 5 + tn + rv_get_be16(p + 3 + tn)) {
            err = RV_ECORRUPT;
            break;
        }
        const char *proj = (const char *)p + 5 + tn;
        uint16_t prn = rv_get_be16(p + 3 + tn);
        const uint8_t *tail = p + 5 + tn + prn;
        char label[80];
        uint64_t val = rv_get_be64(v.mv_data);
        if (group == STORE_GROUP_STATUS && end - tail == 1) {
            snprintf(label, sizeof label, "%s",
                     proto_status_name((Rv__RunStatus)tail[0]));
            err = store__counts_add(&cs, &n, &cap, label, strlen(label), val);
        } else if (group == STORE_GROUP_PROJECT && end - tail == 1) {
            err = store__counts_add(&cs, &n, &cap, proj, prn, val);
        } else if (group == STORE_GROUP_DAY && end - tail == 4) {
            store__day_label(rv_get_be32(tail), label, sizeof label);
            err = store__counts_add(&cs, &n, &cap, label, strlen(label), val);
        } else {
            err = RV_ECORRUPT;
        }
        if (err != RV_OK)
            break;
    }
    mdb_cursor_close(cur);
    if (err == RV_OK && n > 1)
        n = store__counts_merge(cs, n);
    if (err != RV_OK) {
        store_counts_free(cs, n);
        return err;
    }
    *counts = cs;
    *n_counts = n;
    return RV_OK;
}
