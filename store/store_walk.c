/* The run-list planner's index walks: the candidate run seen through
 * struct filter_run, its evaluation against the filter and the heap of
 * kept rows, posting lists, and the ordered walks (ixpv, ixcr, ixend,
 * ixmv, ixname) that stop after a page. The per-team indexes (ixmv,
 * ixend) of several visible teams are walked as one k-way merge: one
 * cursor per team, each bounded by its team's key prefix, the next entry
 * always the best of the cursors' current ones. The planner's choice is
 * in store_plan.c. Runs in a store_read transaction, on any thread. */
#include "store/filter.h"
#include "store/store_int.h"
#include "store/store_plan_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Run list: evaluation --------------------------------------------- */

static int
store__cand_kv(struct store_read *r, enum store_db db, uint64_t run_num,
               const char *key, size_t key_len, const char **val,
               size_t *val_len)
{
    uint8_t k[8 + CONTRACT_MAX_KEY_BYTES];
    MDB_val v;
    if (key_len > CONTRACT_MAX_KEY_BYTES)
        return 0;
    rv_put_be64(k, run_num);
    memcpy(k + 8, key, key_len);
    if (store__get(r->txn, r->s->dbi[db], k, 8 + key_len, &v, NULL) != RV_OK)
        return 0;
    *val = v.mv_data;
    *val_len = v.mv_size;
    return 1;
}

static int
store__cand_param(void *ctx, const char *key, size_t key_len, const char **val,
                  size_t *val_len)
{
    struct store__cand *c = ctx;
    return store__cand_kv(c->r, STORE_DB_PARAM, c->rv.run_num, key, key_len,
                          val, val_len);
}

static int
store__cand_tag(void *ctx, const char *key, size_t key_len, const char **val,
                size_t *val_len)
{
    struct store__cand *c = ctx;
    return store__cand_kv(c->r, STORE_DB_TAG, c->rv.run_num, key, key_len, val,
                          val_len);
}

/* The latest value of the series (key, context "") of run_num. */
static int
store__latest(struct store_read *r, uint64_t run_num, const char *key,
              size_t key_len, double *val)
{
    uint8_t k[8 + 2 + CONTRACT_MAX_KEY_BYTES];
    MDB_val v;
    if (key_len > CONTRACT_MAX_KEY_BYTES)
        return 0;
    rv_put_be64(k, run_num);
    rv_put_be16(k + 8, (uint16_t)key_len);
    memcpy(k + 10, key, key_len);
    if (store__get(r->txn, r->s->dbi[STORE_DB_SERIES], k, 10 + key_len, &v,
                   NULL) != RV_OK ||
        v.mv_size != STORE_SUMMARY_BYTES)
        return 0;
    *val = rv_f64_from_bits(rv_get_be64((const uint8_t *)v.mv_data + 16));
    return 1;
}

static int
store__cand_metric(void *ctx, const char *key, size_t key_len, double *val)
{
    struct store__cand *c = ctx;
    return store__latest(c->r, c->rv.run_num, key, key_len, val);
}

static const char *const store__lifecycle_names[] = {"active", "deleted"};

/* Load run_num into c and make its filter_run view. */
static int
store__cand_load(struct store__cand *c, uint64_t run_num, char *errmsg)
{
    int rc = store__rview_get(c->r, run_num, &c->rv, errmsg);
    if (rc != RV_OK)
        return rc;
    for (int i = 0; i < RUN_N_STR; i++) {
        size_t n = c->rv.len[i] < CONTRACT_MAX_NAME_BYTES
                       ? c->rv.len[i]
                       : CONTRACT_MAX_NAME_BYTES;
        memcpy(c->strs[i], c->rv.str[i], n);
        c->strs[i][n] = '\0';
    }
    struct filter_run *fr = &c->fr;
    fr->run_id = c->strs[RUN_ID];
    fr->team = c->strs[RUN_TEAM];
    fr->project = c->strs[RUN_PROJECT];
    fr->experiment = c->strs[RUN_EXPERIMENT];
    fr->name = c->strs[RUN_NAME];
    fr->user = c->strs[RUN_USER];
    fr->status = proto_status_name((Rv__RunStatus)c->rv.status);
    fr->lifecycle = store__lifecycle_names[c->rv.lifecycle ? 1 : 0];
    fr->created_at_ms = c->rv.created_at_ms;
    fr->ended_at_ms = c->rv.ended_at_ms;
    fr->ctx = c;
    fr->param = store__cand_param;
    fr->tag = store__cand_tag;
    fr->metric = store__cand_metric;
    return RV_OK;
}

/* Close a scan's cursor: err, else the cursor's own failure (rc other
 * than 0 or MDB_NOTFOUND), else RV_OK. */
static int
store__cursor_done(MDB_cursor *cur, int rc, int err, char *errmsg)
{
    mdb_cursor_close(cur);
    if (err == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        err = store__err_mdb(rc, "cursor", errmsg);
    return err;
}

/* Position cur on the last key <= key[0..kn) (a descending walk's start):
 * the first key >= it, stepped back unless equal; the table's last key
 * when there is none. */
static int
store__seek_last_le(MDB_cursor *cur, const uint8_t *key, size_t kn, MDB_val *k,
                    MDB_val *v)
{
    *k = (MDB_val){kn, (void *)key};
    int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0 && (k->mv_size != kn || memcmp(k->mv_data, key, kn) != 0))
        return mdb_cursor_get(cur, k, v, MDB_PREV);
    return rc == MDB_NOTFOUND ? mdb_cursor_get(cur, k, v, MDB_LAST) : rc;
}

/* The top-level conjuncts of f (the leaves of its AND spine) into out
 * (FILTER_MAX_NODES entries); returns how many. */
size_t
store__conjuncts(const struct filter *f, const struct filter_node **out)
{
    const struct filter_node *stack[FILTER_MAX_NODES];
    size_t sp = 0, n = 0;
    if (f->root != NULL)
        stack[sp++] = f->root;
    while (sp > 0) {
        const struct filter_node *nd = stack[--sp];
        if (nd->kind == FILTER_NODE_AND) {
            stack[sp++] = nd->left;
            stack[sp++] = nd->right;
        } else {
            out[n++] = nd;
        }
    }
    return n;
}

/* ---- Run list: execution ----------------------------------------------- */

/* The heap (struct store__heap) keeps the best per_page + 1 rows, the
 * worst at the top. */
static int
store__heap_cmp(const struct store__heap *h, size_t i, size_t j)
{
    return store__row_cmp(h->f, &h->rows[h->idx[i]], &h->rows[h->idx[j]]);
}

static void
store__heap_swap(struct store__heap *h, size_t i, size_t j)
{
    uint32_t t = h->idx[i];
    h->idx[i] = h->idx[j];
    h->idx[j] = t;
}

static void
store__heap_down(struct store__heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && store__heap_cmp(h, l, m) > 0)
            m = l;
        if (r < h->n && store__heap_cmp(h, r, m) > 0)
            m = r;
        if (m == i)
            return;
        store__heap_swap(h, i, m);
        i = m;
    }
}

static void
store__heap_offer(struct store__heap *h, const struct store__row *row)
{
    if (h->n < h->cap) {
        size_t i = h->n++;
        h->idx[i] = (uint32_t)i;
        h->rows[i] = *row;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (store__heap_cmp(h, i, p) <= 0)
                break;
            store__heap_swap(h, i, p);
            i = p;
        }
        return;
    }
    if (store__row_cmp(h->f, row, &h->rows[h->idx[0]]) >= 0)
        return;
    h->rows[h->idx[0]] = *row;
    store__heap_down(h, 0);
}

/* Whether run_num's value for the metric of x->prune is strictly worse
 * than the worst row kept: then it cannot enter the heap. */
static int
store__exec_pruned(struct store__exec *x, uint64_t run_num)
{
    const struct filter_order_term *t = x->prune;
    if (t == NULL || x->heap.n < x->heap.cap)
        return 0;
    struct store__sortval sv;
    double d;
    sv.kind = SK_MISSING;
    if (store__latest(x->r, run_num, t->key, t->key_len, &d))
        store__sortval_num(&sv, d);
    const struct store__row *worst = &x->heap.rows[x->heap.idx[0]];
    if (store__term_cmp(t, &sv, &worst->v[0]) <= 0)
        return 0;
    x->n_pruned++;
    return 1;
}

/* Whether run_num is in every probe list. */
static int
store__exec_probes(struct store__exec *x, uint64_t run_num)
{
    for (size_t i = 0; i < x->plan->n_probes; i++) {
        const struct store__src *p = &x->plan->probe[i];
        uint8_t k[sizeof p->prefix + 8];
        MDB_val v;
        memcpy(k, p->prefix, p->prefix_len);
        rv_put_be64(k + p->prefix_len, run_num);
        if (store__get(x->r->txn, x->r->s->dbi[p->db], k, p->prefix_len + 8, &v,
                       NULL) != RV_OK)
            return 0;
    }
    return 1;
}

/* Evaluate one candidate; offer it to the heap if it matches. */
int
store__exec_one(struct store__exec *x, uint64_t run_num, char *errmsg)
{
    const struct store_query *q = x->q;
    x->n_examined++;
    if (store__exec_pruned(x, run_num) || !store__exec_probes(x, run_num))
        return RV_OK;
    if (x->lacking != NULL) {
        const char *val;
        size_t n;
        if (store__cand_kv(x->r, STORE_DB_PARAM, run_num, x->lacking->key,
                           x->lacking->key_len, &val, &n))
            return RV_OK;
    }
    if (x->lacking_metric != NULL) {
        double d;
        if (store__latest(x->r, run_num, x->lacking_metric->key,
                          x->lacking_metric->key_len, &d))
            return RV_OK;
    }
    int rc = store__cand_load(x->cand, run_num, errmsg);
    if (rc != RV_OK)
        return rc;
    const struct store__rview *rv = &x->cand->rv;
    if (x->lacking_end && rv->ended_at_ms != 0)
        return RV_OK;
    if ((q->view == STORE_VIEW_ACTIVE && rv->lifecycle != STORE_ACTIVE) ||
        (q->view == STORE_VIEW_DELETED && rv->lifecycle != STORE_DELETED))
        return RV_OK;
    const struct filter_run *fr = &x->cand->fr;
    if ((q->team != NULL && strcmp(fr->team, q->team) != 0) ||
        (q->project != NULL && strcmp(fr->project, q->project) != 0) ||
        (q->experiment != NULL && strcmp(fr->experiment, q->experiment) != 0))
        return RV_OK;
    if (!filter_match(x->f, fr))
        return RV_OK;
    x->n_matched++;
    store__row_fill(x->f, x->cand, x->row);
    if (x->after != NULL && store__row_cmp(x->f, x->row, x->after) <= 0)
        return RV_OK;
    store__heap_offer(&x->heap, x->row);
    return RV_OK;
}

/* Iterate keys of db under prefix; the run number is the key's last 8
 * bytes, or the value for ixcr. */
int
store__exec_list(struct store__exec *x, enum store_db db, const uint8_t *prefix,
                 size_t prefix_len, char *errmsg)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[db], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {prefix_len, (void *)prefix}, v;
    int err = RV_OK;
    if (k.mv_size == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    else
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < prefix_len ||
            memcmp(k.mv_data, prefix, prefix_len) != 0)
            break;
        uint64_t run_num;
        if (db == STORE_DB_IXCR) {
            if (v.mv_size != 8) {
                err = RV_ECORRUPT;
                break;
            }
            run_num = rv_get_be64(v.mv_data);
        } else {
            if (k.mv_size < prefix_len + 8) {
                err = RV_ECORRUPT;
                break;
            }
            run_num = rv_get_be64((const uint8_t *)k.mv_data + k.mv_size - 8);
        }
        if ((err = store__exec_one(x, run_num, errmsg)) != RV_OK)
            break;
    }
    return store__cursor_done(cur, rc, err, errmsg);
}

/* Every list of the plan's driver, in full. */
int
store__exec_sources(struct store__exec *x, const struct store__plan *plan,
                    char *errmsg)
{
    int rc = RV_OK;
    for (size_t i = 0; rc == RV_OK && i < plan->n_src; i++) {
        const struct store__src *s = &plan->src[i];
        rc = store__exec_list(x, s->db, s->prefix, s->prefix_len, errmsg);
    }
    return rc;
}

/* Position cur on the first (ASC) or last (DESC) key of ixpv under pre. */
static int
store__pv_first(MDB_cursor *cur, const uint8_t *pre, size_t pn, int is_desc,
                MDB_val *k, MDB_val *v)
{
    if (!is_desc) {
        *k = (MDB_val){pn, (void *)pre};
        return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    }
    uint8_t past[STORE_PV_KEY_MAX + 1];
    memcpy(past, pre, pn);
    memset(past + pn, 0xff, sizeof past - pn);
    return store__seek_last_le(cur, past, sizeof past, k, v);
}

/* ORDER BY params.<key> first: walk the key's value-ordered list in the
 * term's direction, one group of equal sort values at a time, and stop at
 * the first group boundary once the page is full (later groups sort
 * after). Runs without the param sort last: if the page is still not full,
 * they come from a scan of every run. */
int
store__exec_pv(struct store__exec *x, int *is_total, char *errmsg)
{
    const struct filter_order_term *t = &x->f->order[0];
    uint8_t pre[2 + CONTRACT_MAX_KEY_BYTES];
    uint8_t group[STORE_SORT_STRING_BYTES];
    int has_group = 0, is_stopped = 0;
    size_t pn = 2 + t->key_len;
    MDB_cursor *cur;
    MDB_val k, v;

    rv_put_be16(pre, (uint16_t)t->key_len);
    memcpy(pre + 2, t->key, t->key_len);
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[STORE_DB_IXPV], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    int err = RV_OK;
    for (rc = store__pv_first(cur, pre, pn, t->is_desc, &k, &v); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, t->is_desc ? MDB_PREV : MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != pn + STORE_SORT_STRING_BYTES + 8 ||
            memcmp(kp, pre, pn) != 0)
            break;
        const uint8_t *val = kp + pn;
        if (has_group && memcmp(val, group, sizeof group) != 0 &&
            x->heap.n == x->heap.cap) {
            is_stopped = 1;
            break;
        }
        memcpy(group, val, sizeof group);
        has_group = 1;
        err = store__exec_one(x, rv_get_be64(val + STORE_SORT_STRING_BYTES),
                              errmsg);
        if (err != RV_OK)
            break;
    }
    mdb_cursor_close(cur);
    if (err == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        err = store__err_mdb(rc, "cursor", errmsg);
    if (err == RV_OK && !is_stopped && x->heap.n < x->heap.cap) {
        x->lacking = t;
        err =
            store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0, errmsg);
        x->lacking = NULL;
    }
    *is_total = !is_stopped && x->heap.n < x->heap.cap;
    return err;
}

/* ---- Run list: creation-time order (ixcr) ------------------------------ */

/* A whole number of milliseconds as int64, clamped. */
static int64_t
store__ms_clamp(double c)
{
    if (c < -9223372036854775808.0)
        return INT64_MIN;
    return c >= 9223372036854775808.0 ? INT64_MAX : (int64_t)c;
}

/* Bounds on the numeric attribute attr (start_time, end_time) from the
 * top-level comparisons of f (inclusive: the filter re-checks every
 * candidate). */
static void
store__time_bounds(const struct filter *f, enum filter_attr attr, int64_t *lo,
                   int64_t *hi)
{
    const struct filter_node *conj[FILTER_MAX_NODES];
    size_t n_conj = store__conjuncts(f, conj);
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    for (size_t ci = 0; ci < n_conj; ci++) {
        const struct filter_node *n = conj[ci];
        if (n->kind != FILTER_NODE_CMP || n->field != FILTER_FIELD_ATTR ||
            n->attr != attr || n->n_values < 1 || !n->values[0].is_number)
            continue;
        double d = n->values[0].number;
        /* Whole milliseconds that can match: ceil for a lower bound, floor
         * for an upper one. */
        if (n->op == FILTER_OP_EQ || n->op == FILTER_OP_GT ||
            n->op == FILTER_OP_GE) {
            int64_t v = store__ms_clamp(ceil(d));
            if (v > *lo)
                *lo = v;
        }
        if (n->op == FILTER_OP_EQ || n->op == FILTER_OP_LT ||
            n->op == FILTER_OP_LE) {
            int64_t v = store__ms_clamp(floor(d));
            if (v < *hi)
                *hi = v;
        }
    }
}

/* The created time of an ixcr key. */
static int64_t
store__cr_time(const MDB_val *k)
{
    return rv_i64_from_sortable(~rv_get_be64(k->mv_data));
}

/* Creation-time order. ixcr's key order is start_time DESC, run_id ASC,
 * the default order: DESC walks it forward from the token (or the upper
 * bound) and stops once the page is full. ASC walks it backward, which
 * reverses run_id within a millisecond, so it takes one millisecond at a
 * time whole and stops at the first new millisecond once the page is full
 * (the heap restores run_id ASC). Both stop at the filter's bound. */
int
store__exec_created(struct store__exec *x, int is_desc, int *is_total,
                    char *errmsg)
{
    int64_t lo, hi;
    store__time_bounds(x->f, FILTER_ATTR_START_TIME, &lo, &hi);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[STORE_DB_IXCR], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    uint8_t key[8 + CONTRACT_MAX_RUN_ID_BYTES + 2];
    size_t kn = 8;
    MDB_val k, v;
    if (is_desc) {
        int64_t from = hi;
        if (x->after != NULL && x->after->created_at_ms <= hi) {
            from = x->after->created_at_ms;
            memcpy(key + 8, x->after->run_id, x->after->id_len);
            key[8 + x->after->id_len] = 0; /* Strictly after the token. */
            kn = 8 + x->after->id_len + 1;
        }
        rv_put_be64(key, ~rv_i64_sortable(from));
        k = (MDB_val){kn, key};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        int64_t from = lo;
        if (x->after != NULL && x->after->created_at_ms > lo)
            from = x->after->created_at_ms;
        /* The last key of millisecond `from` (older ones follow it). */
        rv_put_be64(key, ~rv_i64_sortable(from));
        memset(key + 8, 0xff, sizeof key - 8);
        rc = store__seek_last_le(cur, key, sizeof key, &k, &v);
    }
    int err = RV_OK, is_stopped = 0, has_group = 0;
    int64_t group = 0;
    for (; rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, is_desc ? MDB_NEXT : MDB_PREV)) {
        if (k.mv_size < 8 || v.mv_size != 8) {
            err = RV_ECORRUPT;
            break;
        }
        int64_t t = store__cr_time(&k);
        if (is_desc ? t < lo : t > hi)
            break;
        if (x->heap.n == x->heap.cap &&
            (is_desc || (has_group && t != group))) {
            is_stopped = 1;
            break;
        }
        group = t;
        has_group = 1;
        if ((err = store__exec_one(x, rv_get_be64(v.mv_data), errmsg)) != RV_OK)
            break;
    }
    *is_total = !is_stopped && x->after == NULL;
    return store__cursor_done(cur, rc, err, errmsg);
}

/* ---- Run list: ordered walks merged across teams ----------------------- */

/* The longest per-team prefix a merged walk seeks under. */
#define STORE_LANE_PRE_MAX                                   \
    (STORE_MV_KEY_MAX > STORE_END_KEY_MAX ? STORE_MV_KEY_MAX \
                                          : STORE_END_KEY_MAX)
/* The longest order value after the prefix (ixmv: class and value). */
#define STORE_LANE_VALUE_MAX STORE_MV_VALUE

/* One team's cursor in a merged walk: its entries are pre, an order value
 * of vn bytes, be64 run_num. */
struct store__lane {
    MDB_cursor *cur;
    uint8_t pre[STORE_LANE_PRE_MAX];
    size_t pn;
    MDB_val k;
    int is_live;
};

/* A k-way merge of per-team walks of one table, all with the same order
 * value width; and the state of the walk over groups of equal values. */
struct store__merge {
    struct store__lane *lane;
    size_t n;
    size_t vn;
    uint8_t group[STORE_LANE_VALUE_MAX];
    int has_group, is_stopped;
};

static int
store__merge_open(struct store__exec *x, enum store_db db, size_t n, size_t vn,
                  struct store__merge *m, char *errmsg)
{
    memset(m, 0, sizeof *m);
    m->vn = vn;
    m->lane = calloc(n ? n : 1, sizeof *m->lane);
    if (m->lane == NULL)
        return RV_ENOMEM;
    for (; m->n < n; m->n++) {
        int rc =
            mdb_cursor_open(x->r->txn, x->r->s->dbi[db], &m->lane[m->n].cur);
        if (rc != 0)
            return store__err_mdb(rc, "cursor", errmsg);
    }
    x->n_lanes = n;
    return RV_OK;
}

static void
store__merge_close(struct store__merge *m)
{
    for (size_t i = 0; i < m->n; i++)
        mdb_cursor_close(m->lane[i].cur);
    free(m->lane);
    m->lane = NULL;
    m->n = 0;
}

/* Whether lane l's current entry (rc its cursor's result) is one of its
 * team's with an order value in [a, b]; a cursor failure into *err. */
static int
store__lane_check(struct store__merge *m, struct store__lane *l, int rc,
                  const uint8_t *a, const uint8_t *b, int *err, char *errmsg)
{
    l->is_live = 0;
    if (rc != 0) {
        if (rc != MDB_NOTFOUND && *err == RV_OK)
            *err = store__err_mdb(rc, "cursor", errmsg);
        return 0;
    }
    const uint8_t *kp = l->k.mv_data;
    if (l->k.mv_size != l->pn + m->vn + 8 || memcmp(kp, l->pre, l->pn) != 0)
        return 0;
    const uint8_t *val = kp + l->pn;
    if (memcmp(val, a, m->vn) < 0 || memcmp(val, b, m->vn) > 0)
        return 0;
    l->is_live = 1;
    return 1;
}

/* Walk the entries with order values in [a, b] of every lane, merged in
 * ascending or descending value order (equal values in any order: the
 * heap orders a group by the tie-breaks). With is_paged, stop at the
 * first group boundary once the heap is full (later groups sort after).
 * Each cursor seeks under its own team's prefix, so no other key is read
 * but the one entry past its team's range. */
static int
store__merge_seg(struct store__exec *x, struct store__merge *m,
                 const uint8_t *a, const uint8_t *b, int is_desc, int is_paged,
                 char *errmsg)
{
    int err = RV_OK;
    if (memcmp(a, b, m->vn) > 0)
        return RV_OK;
    for (size_t i = 0; i < m->n; i++) {
        struct store__lane *l = &m->lane[i];
        uint8_t key[STORE_LANE_PRE_MAX + STORE_LANE_VALUE_MAX + 9];
        MDB_val v;
        int rc;
        memcpy(key, l->pre, l->pn);
        if (!is_desc) {
            memcpy(key + l->pn, a, m->vn);
            l->k = (MDB_val){l->pn + m->vn, key};
            rc = mdb_cursor_get(l->cur, &l->k, &v, MDB_SET_RANGE);
        } else {
            memcpy(key + l->pn, b, m->vn);
            memset(key + l->pn + m->vn, 0xff, 9); /* Past every run. */
            rc = store__seek_last_le(l->cur, key, l->pn + m->vn + 9, &l->k, &v);
        }
        store__lane_check(m, l, rc, a, b, &err, errmsg);
    }
    while (err == RV_OK) {
        struct store__lane *best = NULL;
        for (size_t i = 0; i < m->n; i++) {
            struct store__lane *l = &m->lane[i];
            if (!l->is_live)
                continue;
            if (best == NULL) {
                best = l;
                continue;
            }
            int c = memcmp((const uint8_t *)l->k.mv_data + l->pn,
                           (const uint8_t *)best->k.mv_data + best->pn, m->vn);
            if (is_desc ? c > 0 : c < 0)
                best = l;
        }
        if (best == NULL)
            break;
        const uint8_t *val = (const uint8_t *)best->k.mv_data + best->pn;
        if (is_paged && m->has_group && memcmp(val, m->group, m->vn) != 0 &&
            x->heap.n == x->heap.cap) {
            m->is_stopped = 1;
            break;
        }
        memcpy(m->group, val, m->vn);
        m->has_group = 1;
        err = store__exec_one(x, rv_get_be64(val + m->vn), errmsg);
        if (err != RV_OK)
            break;
        MDB_val v;
        int rc = mdb_cursor_get(best->cur, &best->k, &v,
                                is_desc ? MDB_PREV : MDB_NEXT);
        store__lane_check(m, best, rc, a, b, &err, errmsg);
    }
    return err;
}

/* ---- Run list: end-time order (ixend) ---------------------------------- */

/* ORDER BY end_time first, in the ixend of every team of teams, merged:
 * walk the end times in the term's direction between the filter's
 * end_time bounds (from the page token's time on), one group of equal
 * times at a time, and stop at the first new time once the page is full.
 * Runs without an end time sort last in both directions and are not in
 * ixend: if the page is still not full and the bounds admit their filter
 * value 0, they come from a scan of every run. */
int
store__exec_end(struct store__exec *x, const struct store__teams *teams,
                int *is_total, char *errmsg)
{
    const struct filter_order_term *t = &x->f->order[0];
    int64_t lo, hi;
    store__time_bounds(x->f, FILTER_ATTR_END_TIME, &lo, &hi);
    int skip_ended = 0, admits_zero = lo <= 0 && hi >= 0;
    if (x->after != NULL) {
        const struct store__sortval *sv = &x->after->v[0];
        if (sv->kind != SK_NUM) {
            skip_ended = 1; /* The token is among the runs not ended. */
        } else {
            int64_t at = store__ms_clamp(sv->num);
            if (!t->is_desc && at > lo)
                lo = at;
            if (t->is_desc && at < hi)
                hi = at;
        }
    }
    struct store__merge m;
    int err = store__merge_open(x, STORE_DB_IXEND, teams->n, 8, &m, errmsg);
    for (size_t i = 0; err == RV_OK && i < m.n; i++)
        m.lane[i].pn =
            store__key_str16(m.lane[i].pre, teams->team[i], teams->len[i]);
    uint8_t a[8], b[8];
    rv_put_be64(a, rv_i64_sortable(lo));
    rv_put_be64(b, rv_i64_sortable(hi));
    if (err == RV_OK && !skip_ended && lo <= hi)
        err = store__merge_seg(x, &m, a, b, t->is_desc, 1, errmsg);
    int is_stopped = m.is_stopped;
    store__merge_close(&m);
    if (err == RV_OK && !is_stopped && x->heap.n < x->heap.cap && admits_zero) {
        x->lacking_end = 1;
        err =
            store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0, errmsg);
        x->lacking_end = 0;
    }
    *is_total = !is_stopped && x->heap.n < x->heap.cap;
    return err;
}

/* ---- Run list: the latest-value index (ixmv) --------------------------- */

/* Complete mv for metric key: the key, and the bounds from the top-level
 * comparisons of f on that metric (numbers only: a comparison is false on
 * NaN and on a missing series); without one, every number and NaN. */
void
store__mv_key(const struct filter *f, const char *key, size_t kn,
              struct store__mv *mv)
{
    mv->key = key;
    mv->key_len = kn;
    int has_lo = 0, has_hi = 0;
    double lo = 0, hi = 0;
    const struct filter_node *conj[FILTER_MAX_NODES];
    size_t n_conj = store__conjuncts(f, conj);
    mv->has_range = 0;
    for (size_t ci = 0; ci < n_conj; ci++) {
        const struct filter_node *n = conj[ci];
        if (n->kind != FILTER_NODE_CMP || n->field != FILTER_FIELD_METRIC ||
            n->key_len != kn || memcmp(n->key, key, kn) != 0 ||
            n->n_values < 1 || !n->values[0].is_number)
            continue;
        double d = n->values[0].number;
        int sets_lo = n->op == FILTER_OP_EQ || n->op == FILTER_OP_GT ||
                      n->op == FILTER_OP_GE;
        int sets_hi = n->op == FILTER_OP_EQ || n->op == FILTER_OP_LT ||
                      n->op == FILTER_OP_LE;
        if (sets_lo && (!has_lo || d > lo)) {
            lo = d;
            has_lo = 1;
        }
        if (sets_hi && (!has_hi || d < hi)) {
            hi = d;
            has_hi = 1;
        }
        mv->has_range |= sets_lo || sets_hi;
    }
    memset(mv->lo, 0, sizeof mv->lo);
    if (has_lo)
        store__mv_value(mv->lo, lo);
    if (has_hi) {
        store__mv_value(mv->hi, hi);
    } else if (mv->has_range) {
        mv->hi[0] = 0; /* Every number, not NaN. */
        memset(mv->hi + 1, 0xff, 8);
    } else {
        mv->hi[0] = 1; /* Numbers, then NaN. */
        memset(mv->hi + 1, 0, 8);
    }
}

int
store__mv_range_first(const struct filter *f, struct store__mv *mv)
{
    const struct filter_node *conj[FILTER_MAX_NODES];
    size_t n_conj = store__conjuncts(f, conj);
    for (size_t ci = 0; ci < n_conj; ci++) {
        const struct filter_node *n = conj[ci];
        if (n->kind == FILTER_NODE_CMP && n->field == FILTER_FIELD_METRIC &&
            n->key_len <= CONTRACT_MAX_KEY_BYTES && n->n_values >= 1 &&
            n->values[0].is_number &&
            (n->op == FILTER_OP_EQ || n->op == FILTER_OP_LT ||
             n->op == FILTER_OP_LE || n->op == FILTER_OP_GT ||
             n->op == FILTER_OP_GE)) {
            store__mv_key(f, n->key, n->key_len, mv);
            return memcmp(mv->lo, mv->hi, STORE_MV_VALUE) <= 0;
        }
    }
    return 0;
}

/* Open one ixmv lane per team of mv: prefix (team, scope, metric key). */
static int
store__mv_open(struct store__exec *x, const struct store__mv *mv,
               struct store__merge *m, char *errmsg)
{
    int err = store__merge_open(x, STORE_DB_IXMV, mv->teams->n, STORE_MV_VALUE,
                                m, errmsg);
    for (size_t i = 0; err == RV_OK && i < m->n; i++) {
        struct store__lane *l = &m->lane[i];
        l->pn = store__mv_scope(l->pre, mv->teams->team[i], mv->teams->len[i],
                                mv->project, mv->project_len);
        l->pn += store__key_str16(l->pre + l->pn, mv->key, mv->key_len);
    }
    return err;
}

int
store__mv_count(struct store__exec *x, const struct store__mv *mv,
                uint64_t limit, uint64_t *n, char *errmsg)
{
    struct store__merge m;
    *n = 0;
    int err = store__mv_open(x, mv, &m, errmsg);
    for (size_t i = 0; err == RV_OK && i < m.n && *n < limit; i++) {
        struct store__lane *l = &m.lane[i];
        uint8_t key[STORE_LANE_PRE_MAX + STORE_MV_VALUE];
        MDB_val v;
        memcpy(key, l->pre, l->pn);
        memcpy(key + l->pn, mv->lo, STORE_MV_VALUE);
        l->k = (MDB_val){l->pn + STORE_MV_VALUE, key};
        int rc = mdb_cursor_get(l->cur, &l->k, &v, MDB_SET_RANGE);
        while (*n < limit &&
               store__lane_check(&m, l, rc, mv->lo, mv->hi, &err, errmsg)) {
            (*n)++;
            rc = mdb_cursor_get(l->cur, &l->k, &v, MDB_NEXT);
        }
    }
    store__merge_close(&m);
    return err;
}

int
store__exec_mv_range(struct store__exec *x, const struct store__mv *mv,
                     char *errmsg)
{
    struct store__merge m;
    int err = store__mv_open(x, mv, &m, errmsg);
    if (err == RV_OK)
        err = store__merge_seg(x, &m, mv->lo, mv->hi, 0, 0, errmsg);
    store__merge_close(&m);
    return err;
}

/* ORDER BY metrics.<key> first: walk ixmv in the term's order (numbers,
 * then NaN; NaN sorts after numbers in both directions), the teams'
 * walks merged, from the page token's value on, and stop at the first
 * group boundary once the page is full. Runs without the series sort
 * last: unless a comparison on the metric excludes them, they come from
 * the candidate lists (or every run) if the page is still not full. */
int
store__exec_mv_order(struct store__exec *x, struct store__mv *mv,
                     const struct store__plan *plan, int *is_total,
                     char *errmsg)
{
    const struct filter_order_term *t = &x->f->order[0];
    struct store__merge m;
    store__mv_key(x->f, t->key, t->key_len, mv);
    x->prune = NULL; /* The walk is in order already. */
    uint8_t lo[STORE_MV_VALUE], hi[STORE_MV_VALUE];
    uint8_t nan_lo[STORE_MV_VALUE] = {1}, num_hi[STORE_MV_VALUE];
    memcpy(lo, mv->lo, sizeof lo);
    memcpy(hi, mv->hi, sizeof hi);
    num_hi[0] = 0;
    memset(num_hi + 1, 0xff, 8);
    int skip_nums = 0, skip_all = 0;
    if (x->after != NULL) {
        /* Rows up to the token's are filtered out; start at its group. */
        const struct store__sortval *sv = &x->after->v[0];
        uint8_t at[STORE_MV_VALUE];
        if (sv->kind == SK_NUM) {
            store__mv_value(at, sv->num);
            if (!t->is_desc && memcmp(at, lo, sizeof at) > 0)
                memcpy(lo, at, sizeof lo);
            if (t->is_desc && memcmp(at, hi, sizeof at) < 0)
                memcpy(hi, at, sizeof hi);
        } else if (sv->kind == SK_NAN) {
            skip_nums = 1;
        } else {
            skip_all = 1;
        }
    }
    int rc = store__mv_open(x, mv, &m, errmsg);
    if (rc == RV_OK && !skip_all && !t->is_desc) {
        rc = store__merge_seg(x, &m, skip_nums ? nan_lo : lo, hi, 0, 1, errmsg);
    } else if (rc == RV_OK && !skip_all) {
        /* Numbers descending, then the NaN group. */
        if (!skip_nums)
            rc = store__merge_seg(
                x, &m, lo, memcmp(hi, num_hi, sizeof hi) < 0 ? hi : num_hi, 1,
                1, errmsg);
        if (rc == RV_OK && !m.is_stopped && !mv->has_range)
            rc = store__merge_seg(x, &m, nan_lo, nan_lo, 1, 1, errmsg);
    }
    int is_stopped = m.is_stopped;
    store__merge_close(&m);
    if (rc == RV_OK && !is_stopped && !mv->has_range &&
        x->heap.n < x->heap.cap) {
        x->lacking_metric = t;
        if (plan->has_driver)
            rc = store__exec_sources(x, plan, errmsg);
        else
            rc = store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0,
                                  errmsg);
        x->lacking_metric = NULL;
    }
    *is_total = !is_stopped && x->heap.n < x->heap.cap;
    return rc;
}

/* ---- Run list: the run-name index (ixname) ---------------------------- */

/* Walk (with is_count: count, up to limit) the entries of nm in every
 * team; *n is how many were read. */
int
store__name_walk(struct store__exec *x, const struct store__name *nm,
                 int is_count, uint64_t limit, uint64_t *n, char *errmsg)
{
    MDB_cursor *cur;
    *n = 0;
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[STORE_DB_IXNAME], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    int err = RV_OK;
    for (size_t t = 0; t < nm->teams->n && err == RV_OK; t++) {
        uint8_t pre[STORE_NAME_SCOPE_MAX + sizeof nm->tail];
        size_t pn = store__name_scope(pre, nm->teams->team[t],
                                      nm->teams->len[t], nm->form);
        memcpy(pre + pn, nm->tail, nm->tail_len);
        pn += nm->tail_len;
        MDB_val k = {pn, pre}, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < pn + 8 || memcmp(k.mv_data, pre, pn) != 0)
                break;
            if (is_count && *n >= limit)
                break;
            (*n)++;
            if (is_count)
                continue;
            uint64_t run_num =
                rv_get_be64((const uint8_t *)k.mv_data + k.mv_size - 8);
            if ((err = store__exec_one(x, run_num, errmsg)) != RV_OK)
                break;
        }
        if (err == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
            err = store__err_mdb(rc, "cursor", errmsg);
        if (is_count && *n >= limit)
            break;
    }
    mdb_cursor_close(cur);
    return err;
}

void
store__heap_sort(struct store__heap *h)
{
    size_t n = h->n;
    for (size_t end = n; end > 1; end--) {
        store__heap_swap(h, 0, end - 1);
        h->n = end - 1;
        store__heap_down(h, 0);
    }
    h->n = n;
}
