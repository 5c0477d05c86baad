/* The run-list planner: the candidate run seen through struct filter_run,
 * the candidate sources (posting lists) chosen from the filter, and the
 * execution that keeps the best rows in a heap and fills a page
 * (store_query_runs). Runs in a store_read transaction, on any thread. */
#include "store/filter.h"
#include "store/store_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
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
static size_t
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

/* ---- Run list: candidate sources --------------------------------------- */

/* A posting list: keys of db starting with prefix; the run number is the
 * last 8 bytes of each key (ixcr: the value). */
struct store__src {
    enum store_db db;
    uint8_t prefix[2 + CONTRACT_MAX_KEY_BYTES + 16];
    size_t prefix_len;
    uint64_t count;
};

#define STORE_MAX_SOURCES FILTER_MAX_IN_VALUES

#define STORE_MAX_PROBES 3

struct store__plan {
    struct store__src *src; /* The chosen driver's lists (IN: several). */
    size_t n_src;
    uint64_t count;
    int has_driver;
    /* Other single-list conjuncts: a candidate must be in each (one B-tree
     * lookup) before the full filter runs on it. */
    struct store__src probe[STORE_MAX_PROBES];
    size_t n_probes;
};

/* Keep the smallest single-list conjuncts as probes. Only lists whose keys
 * are exactly (prefix, run number) can be probed with one lookup; a
 * project-only scope prefix cannot (its keys hold the experiment too). */
static void
store__plan_probe(struct store__plan *plan, const struct store__src *s)
{
    size_t i = plan->n_probes;
    if (s->db == STORE_DB_IXSCOPE && s->prefix_len != 16)
        return;
    if (i == STORE_MAX_PROBES) {
        size_t worst = 0;
        for (size_t k = 1; k < STORE_MAX_PROBES; k++)
            if (plan->probe[k].count > plan->probe[worst].count)
                worst = k;
        if (plan->probe[worst].count <= s->count)
            return;
        i = worst;
    } else {
        plan->n_probes++;
    }
    plan->probe[i] = *s;
}

static void
store__src_scope(struct store_read *r, const char *project,
                 const char *experiment, struct store__src *s)
{
    uint8_t c[17];
    s->db = STORE_DB_IXSCOPE;
    rv_put_be64(s->prefix, store__value_hash(project, strlen(project)));
    rv_put_be64(c + 1, store__value_hash(project, strlen(project)));
    if (experiment != NULL) {
        rv_put_be64(s->prefix + 8,
                    store__value_hash(experiment, strlen(experiment)));
        memcpy(c + 9, s->prefix + 8, 8);
        c[0] = 'E';
        s->prefix_len = 16;
        s->count = store__cnt_get(r->txn, r->s, c, 17);
    } else {
        c[0] = 'J';
        s->prefix_len = 8;
        s->count = store__cnt_get(r->txn, r->s, c, 9);
    }
}

/* Posting lists for one comparison that an index can drive, or 0. */
static size_t
store__src_cmp(struct store_read *r, const struct filter_node *n,
               struct store__src *out)
{
    if (n->kind != FILTER_NODE_CMP ||
        (n->op != FILTER_OP_EQ && n->op != FILTER_OP_IN))
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < n->n_values; i++) {
        const struct filter_value *val = &n->values[i];
        struct store__src *s = &out[k];
        if (val->is_number)
            return 0;
        if (n->field == FILTER_FIELD_PARAM || n->field == FILTER_FIELD_TAG) {
            if (n->key_len > CONTRACT_MAX_KEY_BYTES)
                return 0;
            s->db = n->field == FILTER_FIELD_PARAM ? STORE_DB_IXPARAM
                                                   : STORE_DB_IXTAG;
            rv_put_be16(s->prefix, (uint16_t)n->key_len);
            memcpy(s->prefix + 2, n->key, n->key_len);
            rv_put_be64(s->prefix + 2 + n->key_len,
                        store__value_hash(val->str, val->len));
            s->prefix_len = 2 + n->key_len + 8;
            uint8_t c[1 + sizeof s->prefix];
            c[0] = n->field == FILTER_FIELD_PARAM ? 'P' : 'T';
            memcpy(c + 1, s->prefix, s->prefix_len);
            s->count = store__cnt_get(r->txn, r->s, c, s->prefix_len + 1);
        } else if (n->field == FILTER_FIELD_ATTR &&
                   n->attr == FILTER_ATTR_STATUS) {
            Rv__RunStatus st;
            if (proto_status_parse(val->str, &st) != 0 ||
                strcmp(val->str, proto_status_name(st)) != 0)
                continue; /* Matches nothing: an empty list. */
            uint8_t c[2] = {'S', (uint8_t)st};
            s->db = STORE_DB_IXSTAT;
            s->prefix[0] = (uint8_t)st;
            s->prefix_len = 1;
            s->count = store__cnt_get(r->txn, r->s, c, 2);
        } else if (n->field == FILTER_FIELD_ATTR &&
                   n->attr == FILTER_ATTR_PROJECT) {
            store__src_scope(r, val->str, NULL, s);
        } else {
            return 0;
        }
        /* Equal values (or equal hashes) must not list a run twice. */
        int is_dup = 0;
        for (size_t j = 0; j < k && !is_dup; j++)
            is_dup = out[j].db == s->db && out[j].prefix_len == s->prefix_len &&
                     memcmp(out[j].prefix, s->prefix, s->prefix_len) == 0;
        if (!is_dup)
            k++;
    }
    return k == 0 ? SIZE_MAX : k; /* SIZE_MAX: provably empty. */
}

/* The most values one top-level conjunct of f names (an IN list), at
 * least 1: how many sources a plan can hold. */
static size_t
store__plan_width(const struct filter *f)
{
    const struct filter_node *stack[FILTER_MAX_NODES];
    size_t sp = 0, width = 1;
    if (f->root != NULL)
        stack[sp++] = f->root;
    while (sp > 0) {
        const struct filter_node *n = stack[--sp];
        if (n->kind == FILTER_NODE_AND) {
            stack[sp++] = n->left;
            stack[sp++] = n->right;
        } else if (n->kind == FILTER_NODE_CMP && n->n_values > width) {
            width = n->n_values;
        }
    }
    return width < STORE_MAX_SOURCES ? width : STORE_MAX_SOURCES;
}

/* Pick the smallest posting list(s) among the scope and the top-level
 * conjuncts of the filter. The source arrays are sized by the filter's
 * widest IN list: at their largest (~300 KiB each) allocating and zeroing
 * them cost ~2 ms of page faults a query on an RPC worker's heap. */
static int
store__plan_make(struct store_read *r, const struct store_query *q,
                 const struct filter *f, struct store__plan *plan)
{
    size_t width = store__plan_width(f);
    struct store__src *tmp = calloc(width, sizeof *tmp);
    plan->src = calloc(width, sizeof *plan->src);
    plan->n_src = 0;
    plan->has_driver = 0;
    if (tmp == NULL || plan->src == NULL) {
        free(tmp);
        return RV_ENOMEM;
    }
    if (q->project != NULL) {
        store__src_scope(r, q->project, q->experiment, &plan->src[0]);
        plan->n_src = 1;
        plan->count = plan->src[0].count;
        plan->has_driver = 1;
    }
    /* Walk the AND spine iteratively with a small stack. */
    const struct filter_node *conj[FILTER_MAX_NODES];
    size_t n_conj = store__conjuncts(f, conj);
    for (size_t ci = 0; ci < n_conj; ci++) {
        const struct filter_node *n = conj[ci];
        size_t k = store__src_cmp(r, n, tmp);
        if (k == 0)
            continue;
        uint64_t total = 0;
        if (k == SIZE_MAX)
            k = 0;
        for (size_t i = 0; i < k; i++)
            total += tmp[i].count;
        if (!plan->has_driver || total < plan->count) {
            if (plan->has_driver && plan->n_src == 1)
                store__plan_probe(plan, &plan->src[0]);
            memcpy(plan->src, tmp, k * sizeof *tmp);
            plan->n_src = k;
            plan->count = total;
            plan->has_driver = 1;
        } else if (k == 1) {
            store__plan_probe(plan, &tmp[0]);
        }
    }
    free(tmp);
    return RV_OK;
}

/* ---- Run list: execution ----------------------------------------------- */

/* Rows kept so far: a max-heap on the row order, holding the best
 * (per_page + 1) rows; the worst kept row is at the top. The heap orders
 * indexes into a pool, so sifting moves 4-byte indexes, not rows. */
struct store__heap {
    const struct filter *f;
    struct store__row *rows; /* The pool, cap rows. */
    uint32_t *idx;           /* Heap of indexes into rows. */
    size_t n, cap;
};

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

struct store__exec {
    const struct store__plan *plan;
    struct store_read *r;
    const struct store_query *q;
    const struct filter *f;
    struct store__heap heap;
    const struct store__row *after; /* Page token, or NULL. */
    struct store__cand *cand;
    struct store__row *row;
    /* Set while scanning for the runs that lack a param: skip the others. */
    const struct filter_order_term *lacking;
    /* Set while scanning for the runs that lack a metric's series. */
    const struct filter_order_term *lacking_metric;
    /* Set while scanning for the runs that have no end time. */
    int lacking_end;
    uint64_t n_matched, n_examined;
    const char *plan_name;
    /* The first ORDER BY term is a metric: once the heap is full, a
     * candidate whose value is worse than the worst kept row's is dropped
     * after that one lookup (n_pruned; the total is then not known). */
    const struct filter_order_term *prune;
    uint64_t n_pruned;
};

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
static int
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
 * bytes, or the value for ixcr. start/start_len: seek position (NULL: the
 * prefix). stop_after: stop once the heap is full (ordered scans). */
static int
store__exec_list(struct store__exec *x, enum store_db db, const uint8_t *prefix,
                 size_t prefix_len, const uint8_t *start, size_t start_len,
                 int stop_when_full, char *errmsg)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[db], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {start ? start_len : prefix_len,
                 (void *)(start ? start : prefix)},
            v;
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
        if (stop_when_full && x->heap.n == x->heap.cap)
            break;
    }
    return store__cursor_done(cur, rc, err, errmsg);
}

/* Every list of the plan's driver, in full. */
static int
store__exec_sources(struct store__exec *x, const struct store__plan *plan,
                    char *errmsg)
{
    int rc = RV_OK;
    for (size_t i = 0; rc == RV_OK && i < plan->n_src; i++) {
        const struct store__src *s = &plan->src[i];
        rc = store__exec_list(x, s->db, s->prefix, s->prefix_len, NULL, 0, 0,
                              errmsg);
    }
    return rc;
}

/* The default order (start_time DESC, run_id ASC) is the key order of
 * ixcr, so a scan in key order can stop after one page. */
static int
store__order_is_created_desc(const struct filter *f)
{
    if (f->n_order == 0)
        return 1;
    return f->n_order == 1 && f->order[0].field == FILTER_FIELD_ATTR &&
           f->order[0].attr == FILTER_ATTR_START_TIME && f->order[0].is_desc;
}

/* Driver lists at least this large lose to an ordered scan. */
static _Atomic uint64_t store__ordered_min = STORE_ORDERED_SCAN_MIN;

void
store_plan_set_ordered_min(uint64_t n)
{
    atomic_store(&store__ordered_min, n);
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
static int
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
        err = store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0, NULL,
                               0, 0, errmsg);
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
static int
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

/* ---- Run list: end-time order (ixend) ---------------------------------- */

/* ORDER BY end_time first, in one team's ixend (the query's, or the only
 * team's): walk the end times in the term's direction between the
 * filter's end_time bounds (from the page token's time on), one group of
 * equal times at a time (the heap orders a group by the tie-breaks), and
 * stop at the first new time once the page is full. Runs without an end
 * time sort last in both directions and are not in ixend: if the page is
 * still not full and the bounds admit their filter value 0, they come from
 * a scan of every run. */
static int
store__exec_end(struct store__exec *x, const char *team, size_t tn,
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
    uint8_t pre[STORE_END_KEY_MAX], key[STORE_END_KEY_MAX];
    size_t pn = store__key_str16(pre, team, tn);
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[STORE_DB_IXEND], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    size_t kn = store__end_key(key, team, tn, t->is_desc ? hi : lo,
                               t->is_desc ? UINT64_MAX : 0);
    k = (MDB_val){kn, key};
    if (skip_ended || lo > hi)
        rc = MDB_NOTFOUND;
    else if (t->is_desc)
        rc = store__seek_last_le(cur, key, kn, &k, &v);
    else
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    int err = RV_OK, is_stopped = 0, has_group = 0;
    int64_t group = 0;
    for (; rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, t->is_desc ? MDB_PREV : MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != pn + 16 || memcmp(kp, pre, pn) != 0)
            break;
        int64_t e = rv_i64_from_sortable(rv_get_be64(kp + pn));
        if (e < lo || e > hi)
            break;
        if (x->heap.n == x->heap.cap && has_group && e != group) {
            is_stopped = 1;
            break;
        }
        group = e;
        has_group = 1;
        if ((err = store__exec_one(x, rv_get_be64(kp + pn + 8), errmsg)) !=
            RV_OK)
            break;
    }
    err = store__cursor_done(cur, rc, err, errmsg);
    if (err == RV_OK && !is_stopped && x->heap.n < x->heap.cap && admits_zero) {
        x->lacking_end = 1;
        err = store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0, NULL,
                               0, 0, errmsg);
        x->lacking_end = 0;
    }
    *is_total = !is_stopped && x->heap.n < x->heap.cap;
    return err;
}

/* ---- Run list: the latest-value index (ixmv) --------------------------- */

/* Range drivers are counted up to this many entries before the planner
 * gives up on them (the count bounds the cost of choosing). */
#define STORE_RANGE_COUNT_MAX 50000

/* An ixmv scan: the prefix (scope, metric key) and the value bounds
 * [lo, hi] (class and value bytes, inclusive). */
struct store__mv {
    uint8_t pre[STORE_MV_KEY_MAX];
    size_t scope_len, pn;
    uint8_t lo[STORE_MV_VALUE], hi[STORE_MV_VALUE];
    int has_range; /* A top-level comparison bounds the metric. */
};

/* The team whose ixmv entries a query reads: the query's (a scoped read
 * always sets it), else the only team that has runs; 0 when there is no
 * such team (several teams, unscoped: the planner uses other indexes). */
static int
store__mv_team(struct store_read *r, const struct store_query *q,
               const char **team, size_t *tn)
{
    if (q->team != NULL) {
        *team = q->team;
        *tn = strlen(q->team);
        return *tn <= CONTRACT_MAX_TEAM_BYTES;
    }
    MDB_cursor *cur;
    if (mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_CNT], &cur) != 0)
        return 0;
    MDB_val k = {1, "R"}, v;
    int n = 0, rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    const uint8_t *first = NULL;
    size_t first_n = 0;
    for (; rc == 0 && n < 2; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size < 3 || kp[0] != 'R' ||
            k.mv_size != 3 + (size_t)rv_get_be16(kp + 1))
            break;
        first = kp + 3;
        first_n = k.mv_size - 3;
        n++;
    }
    mdb_cursor_close(cur);
    if (n != 1 || first_n > CONTRACT_MAX_TEAM_BYTES)
        return 0;
    *team = (const char *)first; /* Valid while the transaction lives. */
    *tn = first_n;
    return 1;
}

/* The scope prefix of ixmv for q into mv (no metric key yet); 0 if ixmv
 * cannot serve q. */
static int
store__mv_scope_of(struct store_read *r, const struct store_query *q,
                   struct store__mv *mv)
{
    const char *team;
    size_t tn;
    memset(mv, 0, sizeof *mv);
    if (!store__mv_team(r, q, &team, &tn))
        return 0;
    const char *p = q->project;
    if (p && strlen(p) > CONTRACT_MAX_SCOPE_BYTES)
        return 0;
    /* An experiment reads its project's entries: the experiment's posting
     * list is then a probe (one lookup per entry, store__plan_probe). */
    mv->scope_len = store__mv_scope(mv->pre, team, tn, p, p ? strlen(p) : 0);
    return 1;
}

/* Complete mv for metric key: the prefix, and the bounds from the
 * top-level comparisons of f on that metric (numbers only: a comparison
 * is false on NaN and on a missing series); without one, every number
 * and NaN. */
static void
store__mv_key(const struct filter *f, const char *key, size_t kn,
              struct store__mv *mv)
{
    mv->pn = mv->scope_len + store__key_str16(mv->pre + mv->scope_len, key, kn);
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

/* The first top-level metric comparison that bounds a range: mv completed
 * for its key; 0 if there is none. */
static int
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

/* Position cur at the first entry of mv's prefix with value >= a (ASC) or
 * the last with value <= b (DESC). */
static int
store__mv_first(MDB_cursor *cur, const struct store__mv *mv, const uint8_t *a,
                const uint8_t *b, int is_desc, MDB_val *k, MDB_val *v)
{
    uint8_t key[STORE_MV_KEY_MAX];
    memcpy(key, mv->pre, mv->pn);
    if (!is_desc) {
        memcpy(key + mv->pn, a, STORE_MV_VALUE);
        *k = (MDB_val){mv->pn + STORE_MV_VALUE, key};
        return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    }
    memcpy(key + mv->pn, b, STORE_MV_VALUE);
    memset(key + mv->pn + STORE_MV_VALUE, 0xff, 9);
    return store__seek_last_le(cur, key, mv->pn + STORE_MV_VALUE + 9, k, v);
}

/* Count the entries of mv's range, stopping at limit. */
static int
store__mv_count(struct store__exec *x, const struct store__mv *mv,
                uint64_t limit, uint64_t *n, char *errmsg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *n = 0;
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[STORE_DB_IXMV], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    for (rc = store__mv_first(cur, mv, mv->lo, mv->hi, 0, &k, &v);
         rc == 0 && *n < limit; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != mv->pn + STORE_MV_VALUE + 8 ||
            memcmp(kp, mv->pre, mv->pn) != 0 ||
            memcmp(kp + mv->pn, mv->hi, STORE_MV_VALUE) > 0)
            break;
        (*n)++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store__err_mdb(rc, "cursor", errmsg);
    return RV_OK;
}

/* The state of an ordered walk over groups of equal values. */
struct store__walk {
    uint8_t group[STORE_MV_VALUE];
    int has_group, is_stopped;
};

/* Walk the entries of mv's prefix with values in [a, b], ascending or
 * descending. With is_paged, stop at the first group boundary once the
 * heap is full (later groups sort after). */
static int
store__mv_seg(struct store__exec *x, const struct store__mv *mv,
              const uint8_t *a, const uint8_t *b, int is_desc, int is_paged,
              struct store__walk *wk, char *errmsg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    if (memcmp(a, b, STORE_MV_VALUE) > 0)
        return RV_OK;
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[STORE_DB_IXMV], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    int err = RV_OK;
    for (rc = store__mv_first(cur, mv, a, b, is_desc, &k, &v); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, is_desc ? MDB_PREV : MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != mv->pn + STORE_MV_VALUE + 8 ||
            memcmp(kp, mv->pre, mv->pn) != 0)
            break;
        const uint8_t *val = kp + mv->pn;
        if (memcmp(val, a, STORE_MV_VALUE) < 0 ||
            memcmp(val, b, STORE_MV_VALUE) > 0)
            break;
        if (is_paged && wk->has_group &&
            memcmp(val, wk->group, STORE_MV_VALUE) != 0 &&
            x->heap.n == x->heap.cap) {
            wk->is_stopped = 1;
            break;
        }
        memcpy(wk->group, val, STORE_MV_VALUE);
        wk->has_group = 1;
        err = store__exec_one(x, rv_get_be64(val + STORE_MV_VALUE), errmsg);
        if (err != RV_OK)
            break;
    }
    return store__cursor_done(cur, rc, err, errmsg);
}

/* Runs in the store: the sum of the per-team counters. */
static uint64_t
store__runs_total(struct store_read *r)
{
    MDB_cursor *cur;
    uint64_t n = 0;
    if (mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_CNT], &cur) != 0)
        return 0;
    MDB_val k = {1, "R"}, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 1 || ((const uint8_t *)k.mv_data)[0] != 'R')
            break;
        if (v.mv_size == 8)
            n += rv_get_be64(v.mv_data);
    }
    mdb_cursor_close(cur);
    return n;
}

/* How many ixmv entries an ordered walk would read to fill a page: the
 * page over the product of the selectivities of the driver and probe
 * lists (assumed independent). An experiment list is relative to its
 * project (the walk's scope), the other lists to every run. */
static double
store__walk_estimate(struct store__exec *x, const struct store__plan *plan)
{
    uint64_t all = store__runs_total(x->r);
    uint64_t proj = 0;
    if (x->q->project != NULL) {
        struct store__src s;
        store__src_scope(x->r, x->q->project, NULL, &s);
        proj = s.count;
    }
    double est = (double)x->heap.cap;
    for (size_t i = 0; i <= plan->n_probes; i++) {
        const struct store__src *s = i < plan->n_probes ? &plan->probe[i]
                                     : plan->n_src == 1 ? &plan->src[0]
                                                        : NULL;
        if (s == NULL)
            continue;
        uint64_t of = all;
        if (s->db == STORE_DB_IXSCOPE)
            of = s->prefix_len == 16 && proj > 0 ? proj : 0;
        if (of == 0)
            continue; /* The walk's own scope: no narrowing. */
        if (s->count == 0)
            return 0;
        est *= (double)of / (double)s->count;
    }
    return est;
}

/* ORDER BY metrics.<key> first: walk ixmv in the term's order (numbers,
 * then NaN; NaN sorts after numbers in both directions), from the page
 * token's value on, and stop at the first group boundary once the page is
 * full. Runs without the series sort last: unless a comparison on the
 * metric excludes them, they come from the candidate lists (or every
 * run) if the page is still not full. */
static int
store__exec_mv_order(struct store__exec *x, struct store__mv *mv,
                     const struct store__plan *plan, int *is_total,
                     char *errmsg)
{
    const struct filter_order_term *t = &x->f->order[0];
    struct store__walk wk = {0};
    int rc = RV_OK;
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
    if (!skip_all && !t->is_desc) {
        rc = store__mv_seg(x, mv, skip_nums ? nan_lo : lo, hi, 0, 1, &wk,
                           errmsg);
    } else if (!skip_all) {
        /* Numbers descending, then the NaN group. */
        if (!skip_nums)
            rc = store__mv_seg(x, mv, lo,
                               memcmp(hi, num_hi, sizeof hi) < 0 ? hi : num_hi,
                               1, 1, &wk, errmsg);
        if (rc == RV_OK && !wk.is_stopped && !mv->has_range)
            rc = store__mv_seg(x, mv, nan_lo, nan_lo, 1, 1, &wk, errmsg);
    }
    if (rc == RV_OK && !wk.is_stopped && !mv->has_range &&
        x->heap.n < x->heap.cap) {
        x->lacking_metric = t;
        if (plan->has_driver)
            rc = store__exec_sources(x, plan, errmsg);
        else
            rc = store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0,
                                  NULL, 0, 0, errmsg);
        x->lacking_metric = NULL;
    }
    *is_total = !wk.is_stopped && x->heap.n < x->heap.cap;
    return rc;
}

/* ---- Run list: the run-name index (ixname) ---------------------------- */

/* Teams whose ixname entries an unscoped query reads, at most. */
#define STORE_NAME_TEAMS_MAX 64

/* An ixname driver: the key bytes after the (team, form) prefix that
 * every matching run's entry starts with, and the teams to read. */
struct store__name {
    int form;
    uint8_t tail[STORE_NAME_KEY_BYTES + 1];
    size_t tail_len;
    const char *team[STORE_NAME_TEAMS_MAX];
    size_t team_len[STORE_NAME_TEAMS_MAX];
    size_t n_teams;
};

/* The entry bytes that a top-level name comparison needs (0 if it cannot
 * drive: no literal prefix, or not a comparison ixname answers). `= 'x'`
 * and a LIKE or ILIKE without wildcards: "x" then the 0x00 end; else the
 * literal bytes before the first % or _ (an ILIKE's folded). */
static int
store__name_tail(const struct filter_node *n, struct store__name *nm)
{
    if (n->kind != FILTER_NODE_CMP || n->field != FILTER_FIELD_ATTR ||
        n->attr != FILTER_ATTR_RUN_NAME || n->n_values != 1 ||
        n->values[0].is_number)
        return 0;
    const struct filter_value *v = &n->values[0];
    size_t lit = v->len;
    if (n->op == FILTER_OP_LIKE || n->op == FILTER_OP_ILIKE) {
        for (lit = 0; lit < v->len; lit++)
            if (v->str[lit] == '%' || v->str[lit] == '_')
                break;
    } else if (n->op != FILTER_OP_EQ) {
        return 0;
    }
    int is_exact = lit == v->len;
    if (lit == 0 && !is_exact)
        return 0; /* A leading wildcard: every name. */
    if (memchr(v->str, '\0', lit) != NULL)
        return 0; /* No name holds a NUL: the filter decides. */
    nm->form = n->op == FILTER_OP_ILIKE ? STORE_NAME_FOLDED : STORE_NAME_RAW;
    nm->tail_len = store__name_bytes(nm->tail, v->str, lit, nm->form);
    if (is_exact && lit <= STORE_NAME_KEY_BYTES)
        nm->tail[nm->tail_len++] = 0;
    return 1;
}

/* The teams of nm: the query's, else every team with runs (at most
 * STORE_NAME_TEAMS_MAX; 0 beyond that). */
static int
store__name_teams(struct store_read *r, const struct store_query *q,
                  struct store__name *nm)
{
    nm->n_teams = 0;
    if (q->team != NULL) {
        nm->team[0] = q->team;
        nm->team_len[0] = strlen(q->team);
        nm->n_teams = 1;
        return nm->team_len[0] <= CONTRACT_MAX_TEAM_BYTES;
    }
    MDB_cursor *cur;
    if (mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_CNT], &cur) != 0)
        return 0;
    MDB_val k = {1, "R"}, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE), ok = 1;
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size < 3 || kp[0] != 'R' ||
            k.mv_size != 3 + (size_t)rv_get_be16(kp + 1))
            break;
        if (nm->n_teams == STORE_NAME_TEAMS_MAX ||
            k.mv_size - 3 > CONTRACT_MAX_TEAM_BYTES) {
            ok = 0;
            break;
        }
        nm->team[nm->n_teams] = (const char *)kp + 3; /* Txn-owned. */
        nm->team_len[nm->n_teams++] = k.mv_size - 3;
    }
    mdb_cursor_close(cur);
    return ok;
}

/* The best name driver of f (the longest literal; `=` over LIKE on a tie)
 * into nm; 0 if f has none. */
static int
store__name_of(struct store_read *r, const struct store_query *q,
               const struct filter *f, struct store__name *nm)
{
    const struct filter_node *conj[FILTER_MAX_NODES];
    size_t n_conj = store__conjuncts(f, conj);
    struct store__name *cand = malloc(sizeof *cand);
    int found = 0;
    if (cand == NULL)
        return 0;
    for (size_t ci = 0; ci < n_conj; ci++) {
        if (!store__name_tail(conj[ci], cand))
            continue;
        if (!found || cand->tail_len > nm->tail_len) {
            nm->form = cand->form;
            memcpy(nm->tail, cand->tail, cand->tail_len);
            nm->tail_len = cand->tail_len;
            found = 1;
        }
    }
    free(cand);
    return found && store__name_teams(r, q, nm);
}

/* Walk (with is_count: count, up to limit) the entries of nm in every
 * team; *n is how many were read. */
static int
store__name_walk(struct store__exec *x, const struct store__name *nm,
                 int is_count, uint64_t limit, uint64_t *n, char *errmsg)
{
    MDB_cursor *cur;
    *n = 0;
    int rc = mdb_cursor_open(x->r->txn, x->r->s->dbi[STORE_DB_IXNAME], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    int err = RV_OK;
    for (size_t t = 0; t < nm->n_teams && err == RV_OK; t++) {
        uint8_t pre[STORE_NAME_SCOPE_MAX + sizeof nm->tail];
        size_t pn =
            store__name_scope(pre, nm->team[t], nm->team_len[t], nm->form);
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

/* Whether the name index should drive: its entries are counted up to the
 * cheapest other plan's cost (the smallest list; an ordered walk, which
 * stops after a page, is estimated to read page x runs / names entries,
 * so the names win below sqrt(page x runs)) and it drives when fewer. */
static int
store__name_pick(struct store__exec *x, const struct store__plan *plan,
                 const struct store__name *nm, int can_walk, int *is_picked,
                 char *errmsg)
{
    uint64_t limit = STORE_RANGE_COUNT_MAX;
    *is_picked = 0;
    if (plan->has_driver && plan->count < limit)
        limit = plan->count;
    if (can_walk) {
        double w = sqrt((double)x->heap.cap * (double)store__runs_total(x->r));
        if (w < (double)limit)
            limit = (uint64_t)w + 1;
    }
    uint64_t n;
    int rc = store__name_walk(x, nm, 1, limit, &n, errmsg);
    *is_picked = rc == RV_OK && n < limit;
    return rc;
}

static int
store__exec_run(struct store__exec *x, struct store__plan *plan, int *is_total,
                char *errmsg)
{
    int ordered = store__order_is_created_desc(x->f);
    int by_param = x->f->n_order > 0 &&
                   x->f->order[0].field == FILTER_FIELD_PARAM &&
                   x->f->order[0].key_len <= CONTRACT_MAX_KEY_BYTES;
    int by_metric = x->f->n_order > 0 &&
                    x->f->order[0].field == FILTER_FIELD_METRIC &&
                    x->f->order[0].key_len <= CONTRACT_MAX_KEY_BYTES;
    int by_end = x->f->n_order > 0 &&
                 x->f->order[0].field == FILTER_FIELD_ATTR &&
                 x->f->order[0].attr == FILTER_ATTR_END_TIME;
    uint64_t min = atomic_load(&store__ordered_min);
    int is_big = !plan->has_driver || plan->count >= min;
    *is_total = 0;
    struct store__mv mv;
    int has_mv = store__mv_scope_of(x->r, x->q, &mv);
    int by_created_asc = x->f->n_order == 1 &&
                         x->f->order[0].field == FILTER_FIELD_ATTR &&
                         x->f->order[0].attr == FILTER_ATTR_START_TIME &&
                         !x->f->order[0].is_desc;
    struct store__name *nm = malloc(sizeof *nm);
    if (nm == NULL)
        return RV_ENOMEM;
    if (store__name_of(x->r, x->q, x->f, nm)) {
        int can_walk = ordered || by_created_asc || by_param || by_end ||
                       (by_metric && has_mv);
        int is_picked;
        int rc = store__name_pick(x, plan, nm, can_walk, &is_picked, errmsg);
        if (rc == RV_OK && is_picked) {
            if (plan->has_driver && plan->n_src == 1)
                store__plan_probe(plan, &plan->src[0]);
            x->plan_name =
                nm->form == STORE_NAME_FOLDED ? "name-folded" : "name";
            uint64_t n;
            *is_total = 1;
            rc = store__name_walk(x, nm, 0, 0, &n, errmsg);
        }
        if (rc != RV_OK || is_picked) {
            free(nm);
            return rc;
        }
    }
    free(nm);
    if (has_mv && by_metric &&
        (is_big || store__walk_estimate(x, plan) < (double)plan->count)) {
        if (plan->has_driver && plan->n_src == 1)
            store__plan_probe(plan, &plan->src[0]);
        x->plan_name = "metric-order";
        return store__exec_mv_order(x, &mv, plan, is_total, errmsg);
    }
    if (has_mv && store__mv_range_first(x->f, &mv)) {
        uint64_t limit = plan->has_driver && plan->count < STORE_RANGE_COUNT_MAX
                             ? plan->count
                             : STORE_RANGE_COUNT_MAX;
        uint64_t n;
        int rc = store__mv_count(x, &mv, limit, &n, errmsg);
        if (rc != RV_OK)
            return rc;
        if (n < limit) {
            if (plan->has_driver && plan->n_src == 1)
                store__plan_probe(plan, &plan->src[0]);
            x->plan_name = "metric-range";
            struct store__walk wk = {0};
            rc = store__mv_seg(x, &mv, mv.lo, mv.hi, 0, 0, &wk, errmsg);
            *is_total = 1;
            return rc;
        }
    }
    const char *team;
    size_t tn;
    if (by_end && is_big && store__mv_team(x->r, x->q, &team, &tn)) {
        if (plan->has_driver && plan->n_src == 1)
            store__plan_probe(plan, &plan->src[0]);
        x->plan_name = "end-order";
        return store__exec_end(x, team, tn, is_total, errmsg);
    }
    if (by_created_asc && !is_big)
        by_created_asc = 0; /* The list, then the heap, is cheaper. */
    if (is_big && (ordered || by_param || by_created_asc) && plan->has_driver &&
        plan->n_src == 1)
        store__plan_probe(plan, &plan->src[0]); /* An ordered scan instead. */
    if (is_big && by_param) {
        x->plan_name = "param-order";
        return store__exec_pv(x, is_total, errmsg);
    }
    if (plan->has_driver && !by_created_asc &&
        (!ordered || plan->count < min)) {
        x->plan_name = "list";
        *is_total = 1;
        return store__exec_sources(x, plan, errmsg);
    }
    if (ordered || by_created_asc) {
        x->plan_name = "created";
        return store__exec_created(x, !by_created_asc, is_total, errmsg);
    }
    x->plan_name = "scan";
    *is_total = 1;
    return store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0, NULL, 0,
                            0, errmsg);
}

/* Heap sort of the kept rows: afterwards idx[0..n) is in ascending order. */
static void
store__rows_sort(struct store__heap *h)
{
    size_t n = h->n;
    for (size_t end = n; end > 1; end--) {
        store__heap_swap(h, 0, end - 1);
        h->n = end - 1;
        store__heap_down(h, 0);
    }
    h->n = n;
}

static int
store__page_fill(struct store__exec *x, size_t per_page,
                 struct store_page *page, char *errmsg)
{
    struct store__heap *h = &x->heap;
    store__rows_sort(h);
    size_t n = h->n < per_page ? h->n : per_page;
    page->runs = calloc(n ? n : 1, sizeof *page->runs);
    if (page->runs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct store__rview rv;
        int rc =
            store__rview_get(x->r, h->rows[h->idx[i]].run_num, &rv, errmsg);
        if (rc == RV_OK)
            rc = store__run_fill(x->r, &rv, x->q->is_full, &page->runs[i],
                                 errmsg);
        if (rc != RV_OK)
            return rc;
        page->n_runs++;
    }
    if (h->n > per_page)
        store__token_encode(x->f, store__query_hash(x->q),
                            &h->rows[h->idx[n - 1]], page->next_page_token);
    return RV_OK;
}

static int store__query_scoped(struct store_read *r,
                               const struct store_query *q,
                               struct store_page *page, char *errmsg);

/* The read's scope narrows the query to its team (another team asked for
 * by name: an empty last page, total 0), then the query runs. */
int
store_query_runs(struct store_read *r, const struct store_query *q,
                 struct store_page *page, char *errmsg)
{
    struct store_query sq = *q;
    if (r->is_scoped) {
        if (q->team != NULL && strcmp(q->team, r->team) != 0) {
            memset(page, 0, sizeof *page);
            page->has_total = 1;
            return RV_OK;
        }
        sq.team = r->team;
    }
    return store__query_scoped(r, &sq, page, errmsg);
}

static int
store__query_scoped(struct store_read *r, const struct store_query *q,
                    struct store_page *page, char *errmsg)
{
    struct filter *f = NULL;
    struct store__plan plan = {0};
    struct store__row after;
    struct store__exec x;
    const char *fe = q->filter ? q->filter : "";
    const char *ob = q->order_by ? q->order_by : "";

    memset(page, 0, sizeof *page);
    memset(&x, 0, sizeof x);
    size_t per_page = q->per_page ? q->per_page : CONTRACT_DEFAULT_PER_PAGE;
    if (per_page > CONTRACT_MAX_PER_PAGE) {
        rv_errmsg_printf(errmsg, "per_page must be 1..%d, got %zu",
                         CONTRACT_MAX_PER_PAGE, per_page);
        return RV_EINVAL;
    }
    int rc = filter_parse(fe, strlen(fe), ob, strlen(ob), &f, errmsg);
    if (rc != RV_OK)
        return rc;
    if (q->page_token != NULL && q->page_token[0] != '\0') {
        rc = store__token_decode(f, store__query_hash(q), q->page_token, &after,
                                 errmsg);
        x.after = &after;
    }
    x.r = r;
    x.q = q;
    x.f = f;
    if (rc == RV_OK && f->n_order > 0 &&
        f->order[0].field == FILTER_FIELD_METRIC &&
        f->order[0].key_len <= CONTRACT_MAX_KEY_BYTES)
        x.prune = &f->order[0];
    x.heap.f = f;
    x.heap.cap = per_page + 1;
    x.heap.rows = malloc(x.heap.cap * sizeof *x.heap.rows);
    x.heap.idx = malloc(x.heap.cap * sizeof *x.heap.idx);
    x.cand = calloc(1, sizeof *x.cand);
    x.row = calloc(1, sizeof *x.row);
    if (rc == RV_OK &&
        (!x.heap.rows || !x.heap.idx || x.cand == NULL || x.row == NULL))
        rc = RV_ENOMEM;
    if (rc == RV_OK) {
        x.cand->r = r;
        rc = store__plan_make(r, q, f, &plan);
    }
    int is_total = 0;
    x.plan = &plan;
    if (rc == RV_OK)
        rc = store__exec_run(&x, &plan, &is_total, errmsg);
    if (rc == RV_OK)
        rc = store__page_fill(&x, per_page, page, errmsg);
    if (rc == RV_OK && is_total && x.after == NULL && x.n_pruned == 0) {
        page->has_total = 1;
        page->total = x.n_matched;
    }
    page->n_examined = x.n_examined;
    if (x.plan_name != NULL)
        snprintf(page->plan, sizeof page->plan, "%s", x.plan_name);
    if (rc != RV_OK)
        store_page_free(page);
    free(plan.src);
    free(x.heap.rows);
    free(x.heap.idx);
    free(x.cand);
    free(x.row);
    filter_free(f);
    return rc;
}

void
store_page_free(struct store_page *page)
{
    for (size_t i = 0; i < page->n_runs; i++)
        store_run_free(&page->runs[i]);
    free(page->runs);
    page->runs = NULL;
    page->n_runs = 0;
}
