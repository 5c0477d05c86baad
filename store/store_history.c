/* Metric history: the points of one series read back from the vlog
 * through the chunk references, whole or downsampled (M4). Runs in a
 * store_read transaction, on any thread. */
#include "store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Metric history ---------------------------------------------------- */

/* Chunks of a series that overlap [lo, hi], from the chunk table (in
 * min_step order) followed by the series' open chunk. */
static int
store__chunks_list(struct store_read *r, uint64_t series_id,
                   const struct store__chunk *open, int64_t lo, int64_t hi,
                   struct store__chunk **out, size_t *n_out, char *errmsg)
{
    uint8_t pre[8];
    MDB_cursor *cur;
    struct store__chunk *cs = NULL;
    size_t n = 0, cap = 0;
    rv_put_be64(pre, series_id);
    int rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_CHUNK], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {8, pre}, v;
    int err = RV_OK;
    int has_open =
        open->n_refs > 0 && open->max_step >= lo && open->min_step <= hi;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int is_end = rc != 0 || k.mv_size != STORE_CHUNK_KEY ||
                     memcmp(k.mv_data, pre, 8) != 0 ||
                     rv_i64_from_sortable(
                         rv_get_be64((const uint8_t *)k.mv_data + 8)) > hi;
        if (is_end && !has_open)
            break;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            void *np = realloc(cs, cap * sizeof *cs);
            if (np == NULL) {
                err = RV_ENOMEM;
                break;
            }
            cs = np;
        }
        if (is_end) {
            cs[n++] = *open;
            break;
        }
        if (store__chunk_decode(v.mv_data, v.mv_size, &cs[n]) != RV_OK) {
            rv_errmsg_printf(errmsg, "chunk record does not decode");
            err = RV_ECORRUPT;
            break;
        }
        if (cs[n].max_step >= lo)
            n++;
    }
    mdb_cursor_close(cur);
    if (err == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        err = store__err_mdb(rc, "cursor", errmsg);
    if (err != RV_OK) {
        free(cs);
        return err;
    }
    *out = cs;
    *n_out = n;
    return RV_OK;
}

/* Decoded batch of the last vlog record read, reused while references
 * point into the same record. */
struct store__dec {
    struct vlog_ptr ptr;
    Rv__CommandBatch *batch;
};

static int
store__ref_metrics(struct store_read *r, struct store__dec *d,
                   const struct store__ref *ref, const Rv__Metrics **m,
                   char *errmsg)
{
    if (d->batch == NULL || d->ptr.segment != ref->ptr.segment ||
        d->ptr.offset != ref->ptr.offset) {
        proto_batch_free(d->batch);
        d->batch = NULL;
        int rc = vlog_read(r->s->vlog, ref->ptr, &r->vbuf, NULL, errmsg);
        if (rc == RV_OK)
            rc = proto_batch_decode(r->vbuf.data, r->vbuf.len, &d->batch,
                                    errmsg);
        if (rc != RV_OK)
            return rc == RV_EMALFORMED ? RV_ECORRUPT : rc;
        d->ptr = ref->ptr;
    }
    const Rv__CommandBatch *b = d->batch;
    if (ref->cmd_no >= b->n_commands ||
        b->commands[ref->cmd_no]->body_case != RV__COMMAND__BODY_LOG_BATCH ||
        b->commands[ref->cmd_no]->log_batch->metrics == NULL) {
        rv_errmsg_printf(errmsg, "chunk points to a record without metrics");
        return RV_ECORRUPT;
    }
    *m = b->commands[ref->cmd_no]->log_batch->metrics;
    return RV_OK;
}

/* Called for each point: its raft index and its position in the command
 * give the logging order. */
typedef void (*store__point_fn)(void *data, const struct store_point *pt,
                                uint64_t index, uint64_t sub);

/* Call fn for every point of chunk c within [lo, hi], in logged order. */
static int
store__chunk_points(struct store_read *r, struct store__dec *d,
                    const struct store__chunk *c, int64_t lo, int64_t hi,
                    store__point_fn fn, void *data, char *errmsg)
{
    for (uint32_t k = 0; k < c->n_refs; k++) {
        const struct store__ref *ref = &c->refs[k];
        const Rv__Metrics *m;
        int rc = store__ref_metrics(r, d, ref, &m, errmsg);
        if (rc != RV_OK)
            return rc;
        uint32_t seen = 0;
        for (size_t i = 0; i < m->n_values && i < m->n_steps &&
                           i < m->n_timestamps_ms && i < m->n_key_idx;
             i++) {
            uint32_t ctx = m->n_ctx_idx > i ? m->ctx_idx[i] : 0;
            if (m->key_idx[i] != ref->key_idx || ctx != ref->ctx_idx)
                continue;
            seen++;
            if (m->steps[i] < lo || m->steps[i] > hi)
                continue;
            struct store_point pt = {m->steps[i], m->timestamps_ms[i],
                                     m->values[i]};
            fn(data, &pt, ref->index, (uint64_t)ref->cmd_no << 32 | i);
        }
        if (seen != ref->n) {
            rv_errmsg_printf(errmsg,
                             "vlog record holds %u points of the "
                             "series, the index says %u",
                             seen, ref->n);
            return RV_ECORRUPT;
        }
    }
    return RV_OK;
}

/* All points in range, collected with their logging order for sorting. */
struct store__collect {
    struct store_point *pts;
    uint64_t (*order)[2];
    size_t n, cap;
    int is_failed;
};

static void
store__collect_add(void *data, const struct store_point *pt, uint64_t index,
                   uint64_t sub)
{
    struct store__collect *c = data;
    if (c->is_failed)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        if (cap > CONTRACT_MAX_HISTORY_POINTS + 1)
            cap = CONTRACT_MAX_HISTORY_POINTS + 1;
        if (c->n == cap) {
            c->is_failed = RV_ETOOBIG;
            return;
        }
        void *p = realloc(c->pts, cap * sizeof *c->pts);
        void *o = p ? realloc(c->order, cap * sizeof *c->order) : NULL;
        if (p != NULL)
            c->pts = p;
        if (o == NULL) {
            c->is_failed = RV_ENOMEM;
            return;
        }
        c->order = o;
        c->cap = cap;
    }
    c->pts[c->n] = *pt;
    c->order[c->n][0] = index;
    c->order[c->n][1] = sub;
    c->n++;
}

/* Sort points by (step, logging order) with an index permutation. */
struct store__sortent {
    int64_t step;
    uint64_t index, sub;
    size_t i;
};

static int
store__sortent_cmp(const void *a, const void *b)
{
    const struct store__sortent *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    if (x->sub != y->sub)
        return x->sub < y->sub ? -1 : 1;
    return 0;
}

static int
store__collect_sorted(struct store__collect *c, struct store_point **out)
{
    struct store__sortent *e = malloc((c->n ? c->n : 1) * sizeof *e);
    struct store_point *pts = malloc((c->n ? c->n : 1) * sizeof *pts);
    if (e == NULL || pts == NULL) {
        free(e);
        free(pts);
        return RV_ENOMEM;
    }
    int sorted = 1;
    for (size_t i = 0; i < c->n; i++) {
        e[i] = (struct store__sortent){c->pts[i].step, c->order[i][0],
                                       c->order[i][1], i};
        if (i > 0 && store__sortent_cmp(&e[i - 1], &e[i]) > 0)
            sorted = 0;
    }
    if (!sorted)
        qsort(e, c->n, sizeof *e, store__sortent_cmp);
    for (size_t i = 0; i < c->n; i++)
        pts[i] = c->pts[e[i].i];
    free(e);
    *out = pts;
    return RV_OK;
}

/* Downsampling buckets (M4: first, last, min and max of each bucket). */
struct store__bucket {
    int has;
    struct store_point first, last, min, max;
};

struct store__m4 {
    struct store__bucket *b;
    size_t n;
    int64_t lo;
    uint64_t width;
};

static size_t
store__m4_index(const struct store__m4 *m, int64_t step)
{
    uint64_t off = (uint64_t)step - (uint64_t)m->lo;
    size_t i = (size_t)(off / m->width);
    return i < m->n ? i : m->n - 1;
}

static void
store__m4_merge(struct store__bucket *b, const struct store_point *first,
                const struct store_point *last, const struct store_point *mn,
                const struct store_point *mx)
{
    if (!b->has) {
        b->first = *first;
        b->last = *last;
        b->min = *mn;
        b->max = *mx;
        b->has = 1;
        return;
    }
    if (first->step < b->first.step)
        b->first = *first;
    if (last->step >= b->last.step)
        b->last = *last;
    if (!isnan(mn->value) && (isnan(b->min.value) || mn->value < b->min.value))
        b->min = *mn;
    if (!isnan(mx->value) && (isnan(b->max.value) || mx->value > b->max.value))
        b->max = *mx;
}

static void
store__m4_add(void *data, const struct store_point *pt, uint64_t index,
              uint64_t sub)
{
    struct store__m4 *m = data;
    (void)index;
    (void)sub;
    store__m4_merge(&m->b[store__m4_index(m, pt->step)], pt, pt, pt, pt);
}

static int
store__point_same(const struct store_point *a, const struct store_point *b)
{
    return a->step == b->step && a->timestamp_ms == b->timestamp_ms &&
           rv_f64_bits(a->value) == rv_f64_bits(b->value);
}

static int
store__point_step_cmp(const void *a, const void *b)
{
    const struct store_point *x = a, *y = b;
    return x->step < y->step ? -1 : x->step > y->step ? 1 : 0;
}

static int
store__m4_output(const struct store__m4 *m, struct store_point **out,
                 size_t *n_out)
{
    struct store_point *pts = malloc((4 * m->n + 1) * sizeof *pts);
    size_t n = 0;
    if (pts == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        const struct store__bucket *b = &m->b[i];
        if (!b->has)
            continue;
        struct store_point four[4] = {b->first, b->min, b->max, b->last};
        qsort(four, 4, sizeof *four, store__point_step_cmp);
        for (int k = 0; k < 4; k++) {
            int dup = 0;
            for (size_t j = n > 4 ? n - 4 : 0; j < n; j++)
                dup |= store__point_same(&pts[j], &four[k]);
            if (!dup)
                pts[n++] = four[k];
        }
    }
    *out = pts;
    *n_out = n;
    return RV_OK;
}

static int
store__history_m4(struct store_read *r, struct store__dec *d,
                  const struct store__chunk *cs, size_t n_cs, int64_t lo,
                  int64_t hi, size_t downsample, struct store_point **out,
                  size_t *n_out, char *errmsg)
{
    /* Narrow [lo, hi] to the steps present. */
    int64_t slo = INT64_MAX, shi = INT64_MIN;
    for (size_t i = 0; i < n_cs; i++) {
        slo = cs[i].min_step < slo ? cs[i].min_step : slo;
        shi = cs[i].max_step > shi ? cs[i].max_step : shi;
    }
    lo = slo > lo ? slo : lo;
    hi = shi < hi ? shi : hi;
    struct store__m4 m;
    m.n = downsample / 4 ? downsample / 4 : 1;
    m.lo = lo;
    m.width = ((uint64_t)hi - (uint64_t)lo) / m.n + 1;
    m.b = calloc(m.n, sizeof *m.b);
    if (m.b == NULL)
        return RV_ENOMEM;
    int rc = RV_OK;
    for (size_t i = 0; rc == RV_OK && i < n_cs; i++) {
        const struct store__chunk *c = &cs[i];
        if (c->min_step >= lo && c->max_step <= hi &&
            store__m4_index(&m, c->min_step) ==
                store__m4_index(&m, c->max_step)) {
            /* The whole chunk falls in one bucket: its statistics do. */
            store__m4_merge(&m.b[store__m4_index(&m, c->min_step)], &c->first,
                            &c->last, &c->min, &c->max);
            continue;
        }
        rc = store__chunk_points(r, d, c, lo, hi, store__m4_add, &m, errmsg);
    }
    if (rc == RV_OK)
        rc = store__m4_output(&m, out, n_out);
    free(m.b);
    return rc;
}

/* The series id of (run, key, context) and its open chunk. */
static int
store__series_get(struct store_read *r, const struct store_history_query *q,
                  uint64_t *series_id, struct store__chunk *open, char *errmsg)
{
    uint64_t run_num;
    const char *ctx = q->context ? q->context : "";
    size_t kn = q->key ? strlen(q->key) : 0, cn = strlen(ctx);
    if (kn == 0 || kn > CONTRACT_MAX_KEY_BYTES ||
        cn > CONTRACT_MAX_CONTEXT_BYTES) {
        rv_errmsg_printf(errmsg,
                         "metric key must be 1..%d bytes and context "
                         "at most %d",
                         CONTRACT_MAX_KEY_BYTES, CONTRACT_MAX_CONTEXT_BYTES);
        return RV_EINVAL;
    }
    int rc = store__read_run_num(r, q->run_id, &run_num, errmsg);
    if (rc != RV_OK)
        return rc;
    uint8_t k[8 + 2 + CONTRACT_MAX_KEY_BYTES + CONTRACT_MAX_CONTEXT_BYTES];
    rv_put_be64(k, run_num);
    rv_put_be16(k + 8, (uint16_t)kn);
    memcpy(k + 10, q->key, kn);
    memcpy(k + 10 + kn, ctx, cn);
    MDB_val v;
    rc = store__get(r->txn, r->s->dbi[STORE_DB_SERIES], k, 10 + kn + cn, &v,
                    errmsg);
    if (rc == RV_ENOTFOUND) {
        rv_errmsg_printf(errmsg, "run '%.64s' has no metric '%.64s'", q->run_id,
                         q->key);
        return RV_ENOTFOUND;
    }
    if (rc != RV_OK)
        return rc;
    if (v.mv_size != STORE_SUMMARY_BYTES)
        return RV_ECORRUPT;
    uint8_t sid[8];
    memcpy(sid, v.mv_data, 8);
    rc = store__get(r->txn, r->s->dbi[STORE_DB_OPEN], sid, 8, &v, errmsg);
    if (rc != RV_OK || store__chunk_decode(v.mv_data, v.mv_size, open) != RV_OK)
        return rc == RV_OK || rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    *series_id = rv_get_be64(sid);
    return RV_OK;
}

int
store_metric_history(struct store_read *r, const struct store_history_query *q,
                     struct store_point **points, size_t *n_points,
                     char *errmsg)
{
    uint64_t series_id;
    struct store__chunk *cs = NULL;
    size_t n_cs = 0;
    struct store__dec d = {{0, 0, 0}, NULL};
    *points = NULL;
    *n_points = 0;
    if (q->min_step > q->max_step || q->downsample > CONTRACT_MAX_DOWNSAMPLE) {
        rv_errmsg_printf(errmsg,
                         "need min_step <= max_step and downsample "
                         "<= %d",
                         CONTRACT_MAX_DOWNSAMPLE);
        return RV_EINVAL;
    }
    struct store__chunk open;
    int rc = store__series_get(r, q, &series_id, &open, errmsg);
    if (rc == RV_OK)
        rc = store__chunks_list(r, series_id, &open, q->min_step, q->max_step,
                                &cs, &n_cs, errmsg);
    if (rc != RV_OK)
        return rc;
    uint64_t upper = 0;
    for (size_t i = 0; i < n_cs; i++)
        upper += cs[i].n;
    if (q->downsample > 0 && upper > q->downsample) {
        rc = store__history_m4(r, &d, cs, n_cs, q->min_step, q->max_step,
                               q->downsample, points, n_points, errmsg);
    } else {
        struct store__collect c = {0};
        for (size_t i = 0; rc == RV_OK && i < n_cs && !c.is_failed; i++)
            rc = store__chunk_points(r, &d, &cs[i], q->min_step, q->max_step,
                                     store__collect_add, &c, errmsg);
        if (rc == RV_OK && c.is_failed == RV_ETOOBIG)
            rv_errmsg_printf(errmsg,
                             "more than %d points: narrow the step "
                             "range or ask for downsampling",
                             CONTRACT_MAX_HISTORY_POINTS);
        if (rc == RV_OK)
            rc = c.is_failed;
        if (rc == RV_OK)
            rc = store__collect_sorted(&c, points);
        if (rc == RV_OK)
            *n_points = c.n;
        free(c.pts);
        free(c.order);
    }
    proto_batch_free(d.batch);
    free(cs);
    return rc;
}
