/* The run-list planner: the candidate run seen through struct filter_run,
 * the candidate sources (posting lists) chosen from the filter, and the
 * execution that keeps the best rows in a heap and fills a page
 * (store_query_runs). Runs in a store_read transaction, on any thread. */
#include "store/filter.h"
#include "store/store_int.h"

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
    const struct filter_node *stack[FILTER_MAX_NODES];
    size_t sp = 0;
    if (f->root != NULL)
        stack[sp++] = f->root;
    while (sp > 0) {
        const struct filter_node *n = stack[--sp];
        if (n->kind == FILTER_NODE_AND) {
            stack[sp++] = n->left;
            stack[sp++] = n->right;
            continue;
        }
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
    uint64_t n_matched, n_examined;
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
    int rc = store__cand_load(x->cand, run_num, errmsg);
    if (rc != RV_OK)
        return rc;
    const struct store__rview *rv = &x->cand->rv;
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
    mdb_cursor_close(cur);
    if (err == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        err = store__err_mdb(rc, "cursor", errmsg);
    return err;
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

#define STORE_ORDERED_SCAN_MIN                  \
    20000 /* Driver lists larger than this lose \
             to an ordered scan of ixcr. */

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
    *k = (MDB_val){sizeof past, past};
    int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0)
        return mdb_cursor_get(cur, k, v, MDB_PREV);
    return rc == MDB_NOTFOUND ? mdb_cursor_get(cur, k, v, MDB_LAST) : rc;
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

static int
store__exec_run(struct store__exec *x, struct store__plan *plan, int *is_total,
                char *errmsg)
{
    int ordered = store__order_is_created_desc(x->f);
    int by_param = x->f->n_order > 0 &&
                   x->f->order[0].field == FILTER_FIELD_PARAM &&
                   x->f->order[0].key_len <= CONTRACT_MAX_KEY_BYTES;
    int is_big = !plan->has_driver || plan->count >= STORE_ORDERED_SCAN_MIN;
    *is_total = 0;
    if (is_big && (ordered || by_param) && plan->has_driver && plan->n_src == 1)
        store__plan_probe(plan, &plan->src[0]); /* An ordered scan instead. */
    if (is_big && by_param)
        return store__exec_pv(x, is_total, errmsg);
    if (plan->has_driver &&
        (!ordered || plan->count < STORE_ORDERED_SCAN_MIN)) {
        for (size_t i = 0; i < plan->n_src; i++) {
            const struct store__src *s = &plan->src[i];
            int rc = store__exec_list(x, s->db, s->prefix, s->prefix_len, NULL,
                                      0, 0, errmsg);
            if (rc != RV_OK)
                return rc;
        }
        *is_total = 1;
        return RV_OK;
    }
    uint8_t start[8 + CONTRACT_MAX_RUN_ID_BYTES + 1];
    size_t start_len = 0;
    if (x->after != NULL && ordered) {
        rv_put_be64(start, ~rv_i64_sortable(x->after->created_at_ms));
        memcpy(start + 8, x->after->run_id, x->after->id_len);
        start[8 + x->after->id_len] = 0; /* Strictly after the token row. */
        start_len = 8 + x->after->id_len + 1;
    }
    int rc =
        store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0,
                         start_len ? start : NULL, start_len, ordered, errmsg);
    *is_total = !ordered || (x->after == NULL && x->heap.n < x->heap.cap);
    return rc;
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
