/* Metrics: the chunk codec, the writes of a log batch (series, open
 * chunks, chunk table, summaries) and the per-run summaries read back.
 * Writes run on the writer thread inside the apply transaction. */
#include "store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Chunks ------------------------------------------------------------ */

static void
store__point_put(uint8_t *p, const struct store_point *pt)
{
    rv_put_be64(p, rv_i64_sortable(pt->step));
    rv_put_be64(p + 8, rv_i64_sortable(pt->timestamp_ms));
    rv_put_be64(p + 16, rv_f64_bits(pt->value));
}

static void
store__point_get(const uint8_t *p, struct store_point *pt)
{
    pt->step = rv_i64_from_sortable(rv_get_be64(p));
    pt->timestamp_ms = rv_i64_from_sortable(rv_get_be64(p + 8));
    pt->value = rv_f64_from_bits(rv_get_be64(p + 16));
}

size_t
store__chunk_encode(const struct store__chunk *c, uint8_t *out)
{
    rv_put_be16(out, (uint16_t)c->n_refs);
    rv_put_be32(out + 2, c->n);
    rv_put_be64(out + 6, rv_i64_sortable(c->min_step));
    rv_put_be64(out + 14, rv_i64_sortable(c->max_step));
    store__point_put(out + 22, &c->first);
    store__point_put(out + 46, &c->last);
    store__point_put(out + 70, &c->min);
    store__point_put(out + 94, &c->max);
    uint8_t *p = out + STORE_CHUNK_HEADER;
    for (uint32_t i = 0; i < c->n_refs; i++, p += STORE_CHUNK_REF) {
        const struct store__ref *r = &c->refs[i];
        rv_put_be32(p, r->ptr.segment);
        rv_put_be32(p + 4, r->ptr.offset);
        rv_put_be32(p + 8, r->ptr.len);
        rv_put_be16(p + 12, r->cmd_no);
        rv_put_be32(p + 14, r->key_idx);
        rv_put_be32(p + 18, r->ctx_idx);
        rv_put_be32(p + 22, r->n);
        rv_put_be64(p + 26, r->index);
    }
    return (size_t)(p - out);
}

int
store__chunk_decode(const uint8_t *p, size_t n, struct store__chunk *c)
{
    if (n < STORE_CHUNK_HEADER)
        return RV_ECORRUPT;
    c->n_refs = rv_get_be16(p);
    if (c->n_refs > STORE_CHUNK_MAX_REFS ||
        n != STORE_CHUNK_HEADER + c->n_refs * STORE_CHUNK_REF)
        return RV_ECORRUPT;
    c->n = rv_get_be32(p + 2);
    c->min_step = rv_i64_from_sortable(rv_get_be64(p + 6));
    c->max_step = rv_i64_from_sortable(rv_get_be64(p + 14));
    store__point_get(p + 22, &c->first);
    store__point_get(p + 46, &c->last);
    store__point_get(p + 70, &c->min);
    store__point_get(p + 94, &c->max);
    const uint8_t *q = p + STORE_CHUNK_HEADER;
    for (uint32_t i = 0; i < c->n_refs; i++, q += STORE_CHUNK_REF) {
        struct store__ref *r = &c->refs[i];
        r->ptr.segment = rv_get_be32(q);
        r->ptr.offset = rv_get_be32(q + 4);
        r->ptr.len = rv_get_be32(q + 8);
        r->cmd_no = rv_get_be16(q + 12);
        r->key_idx = rv_get_be32(q + 14);
        r->ctx_idx = rv_get_be32(q + 18);
        r->n = rv_get_be32(q + 22);
        r->index = rv_get_be64(q + 26);
    }
    return RV_OK;
}

void
store__chunk_merge(struct store__chunk *c, const struct store__chunk *add)
{
    if (c->n == 0) {
        c->n = add->n;
        c->min_step = add->min_step;
        c->max_step = add->max_step;
        c->first = add->first;
        c->last = add->last;
        c->min = add->min;
        c->max = add->max;
        return;
    }
    if (add->min_step < c->min_step)
        c->min_step = add->min_step;
    if (add->max_step > c->max_step)
        c->max_step = add->max_step;
    if (add->first.step < c->first.step)
        c->first = add->first;
    if (add->last.step >= c->last.step)
        c->last = add->last;
    if (!isnan(add->min.value) &&
        (isnan(c->min.value) || add->min.value < c->min.value))
        c->min = add->min;
    if (!isnan(add->max.value) &&
        (isnan(c->max.value) || add->max.value > c->max.value))
        c->max = add->max;
    c->n += add->n;
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
    if (n > CONTRACT_MAX_POINTS_PER_COMMAND) {
        rv_errmsg_printf(errmsg,
                         "at most %d metric points per request, got "
                         "%zu",
                         CONTRACT_MAX_POINTS_PER_COMMAND, n);
        return RV_EINVAL;
    }
    size_t n_ctx = m->n_contexts ? m->n_contexts : 1;
    if (m->n_keys * n_ctx > CONTRACT_MAX_SERIES_PER_COMMAND && n > 0) {
        rv_errmsg_printf(errmsg, "at most %d metric series per request",
                         CONTRACT_MAX_SERIES_PER_COMMAND);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < m->n_keys; i++) {
        if (!contract_key_valid(m->keys[i], strlen(m->keys[i]))) {
            rv_errmsg_printf(errmsg, "invalid metric key '%.64s'", m->keys[i]);
            return RV_EINVAL;
        }
    }
    for (size_t i = 0; i < m->n_contexts; i++) {
        size_t cn = strlen(m->contexts[i]);
        if (cn > CONTRACT_MAX_CONTEXT_BYTES ||
            !contract_utf8_valid(m->contexts[i], cn)) {
            rv_errmsg_printf(errmsg,
                             "metric context %zu must be UTF-8 of at "
                             "most %d bytes",
                             i, CONTRACT_MAX_CONTEXT_BYTES);
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

/* ---- ixmv: the latest-value index -------------------------------------- */

size_t
store__mv_scope(uint8_t *out, const char *team, size_t tn, const char *project,
                size_t pn)
{
    size_t n = store__key_str16(out, team, tn);
    out[n++] = project == NULL ? 'T' : 'J';
    if (project != NULL) {
        rv_put_be64(out + n, store__value_hash(project, pn));
        n += 8;
    }
    return n;
}

void
store__mv_value(uint8_t *out, double d)
{
    if (isnan(d)) {
        out[0] = 1;
        memset(out + 1, 0, 8);
        return;
    }
    uint64_t b = rv_f64_bits(d == 0 ? 0.0 : d); /* -0 sorts as +0. */
    out[0] = 0;
    rv_put_be64(out + 1, (b >> 63) ? ~b : b | (UINT64_C(1) << 63));
}

int
store__mv_update(struct store_wctx *w, const struct store__runrec *rr,
                 const char *key, size_t kn, int has_old, double old_val,
                 int has_new, double new_val)
{
    uint8_t ov[STORE_MV_VALUE], nv[STORE_MV_VALUE];
    if (has_old)
        store__mv_value(ov, old_val);
    if (has_new)
        store__mv_value(nv, new_val);
    if (has_old && has_new && memcmp(ov, nv, sizeof ov) == 0)
        return RV_OK; /* The entries would not change. */
    const char *t = rr->str[RUN_TEAM], *p = rr->str[RUN_PROJECT];
    size_t tn = rr->len[RUN_TEAM], pn = rr->len[RUN_PROJECT];
    MDB_cursor *cur;
    int rc = mdb_cursor_open(w->txn, w->s->dbi[STORE_DB_IXMV], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", w->errmsg);
    for (int scope = 0; rc == RV_OK && scope < 2; scope++) {
        uint8_t k[STORE_MV_KEY_MAX];
        size_t n = store__mv_scope(k, t, tn, scope > 0 ? p : NULL, pn);
        n += store__key_str16(k + n, key, kn);
        size_t at = n;
        n += STORE_MV_VALUE;
        rv_put_be64(k + n, rr->run_num);
        n += 8;
        if (has_old) {
            memcpy(k + at, ov, sizeof ov);
            rc = store__cur_del(w, cur, STORE_DB_IXMV, k, n);
        }
        if (rc == RV_OK && has_new) {
            memcpy(k + at, nv, sizeof nv);
            rc = store__cur_put(w, cur, STORE_DB_IXMV, k, n, "", 0);
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

static int
store__series_apply(struct store_wctx *w, const struct store__runrec *rr,
                    const Rv__Metrics *m, const struct store__group *g,
                    struct vlog_ptr ptr, uint16_t cmd_no,
                    struct store_point *pts)
{
    const char *key = m->keys[g->key_idx];
    const char *ctx = m->n_contexts ? m->contexts[g->ctx_idx] : "";
    uint8_t sk[8 + 2 + CONTRACT_MAX_KEY_BYTES + CONTRACT_MAX_CONTEXT_BYTES];
    size_t kn = strlen(key), cn = strlen(ctx);
    uint64_t run_num = rr->run_num;
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
    /* The latest value before and after: ixmv changes at most once per
     * series and command, and only when the value does. */
    int had = rv_get_be64(rec + 8) > 0;
    double old_last = rv_f64_from_bits(rv_get_be64(rec + 16));
    store__summary_update(rec, &add, pts, g->n);
    if (cn == 0) {
        rc = store__mv_update(w, rr, key, kn, had, old_last, 1,
                              rv_f64_from_bits(rv_get_be64(rec + 16)));
        if (rc != RV_OK)
            return rc;
    }
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

/* Has run_num seen key among its last STORE_CONTENT_KEYS keyed batches,
 * stamped within STORE_CONTENT_WINDOW_MS of now? Records it when not (the
 * record goes with the command: a refused batch leaves no key). */
static int
store__content_seen(struct store_wctx *w, uint64_t run_num,
                    const ProtobufCBinaryData *key, int *is_seen)
{
    enum { ENT = STORE_CONTENT_KEY_BYTES + 8 };
    uint8_t k[9], v[STORE_CONTENT_KEYS * ENT];
    MDB_val old;
    size_t n = 0;
    *is_seen = 0;
    if (key->len != STORE_CONTENT_KEY_BYTES) {
        rv_errmsg_printf(w->errmsg, "content key must be %d bytes",
                         STORE_CONTENT_KEY_BYTES);
        return RV_EINVAL;
    }
    rv_put_be64(k, run_num);
    k[8] = 'K';
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_CLIENT], k, sizeof k, &old,
                        w->errmsg);
    if (rc != RV_OK && rc != RV_ENOTFOUND)
        return rc;
    memcpy(v, key->data, STORE_CONTENT_KEY_BYTES);
    rv_put_be64(v + STORE_CONTENT_KEY_BYTES, rv_i64_sortable(w->at_ms));
    n = ENT;
    if (rc == RV_OK) {
        if (old.mv_size % ENT != 0 || old.mv_size > sizeof v)
            return RV_ECORRUPT;
        const uint8_t *p = old.mv_data;
        for (size_t i = 0; i < old.mv_size; i += ENT) {
            int64_t at = rv_i64_from_sortable(
                rv_get_be64(p + i + STORE_CONTENT_KEY_BYTES));
            if (w->at_ms - at > STORE_CONTENT_WINDOW_MS)
                break; /* Newest first: the rest are older still. */
            if (memcmp(p + i, key->data, STORE_CONTENT_KEY_BYTES) == 0) {
                *is_seen = 1;
                return RV_OK;
            }
            if (n + ENT <= sizeof v) {
                memcpy(v + n, p + i, ENT);
                n += ENT;
            }
        }
    }
    return store__put(w, STORE_DB_CLIENT, k, sizeof k, v, n);
}

int
store__log_batch(struct store_wctx *w, const Rv__LogBatch *b,
                 const ProtobufCBinaryData *content_key, struct vlog_ptr ptr,
                 uint16_t cmd_no)
{
    struct store__runrec rr;
    int rc = store__runrec_get_active(w, b->run_id, &rr);
    if (rc != RV_OK)
        return rc;
    rc = store__kvs_apply(w, rr.run_num, b->params, b->n_params, b->tags,
                          b->n_tags);
    if (rc == RV_OK && b->n_delete_tags > CONTRACT_MAX_TAGS_PER_COMMAND) {
        rv_errmsg_printf(w->errmsg, "at most %d tags deleted per command",
                         CONTRACT_MAX_TAGS_PER_COMMAND);
        rc = RV_EINVAL;
    }
    for (size_t i = 0; rc == RV_OK && i < b->n_delete_tags; i++)
        rc = store__tag_del(w, rr.run_num, b->delete_tags[i]);
    if (rc != RV_OK || b->metrics == NULL || b->metrics->n_values == 0)
        return rc;
    const Rv__Metrics *m = b->metrics;
    if ((rc = store__metrics_check(m, w->errmsg)) != RV_OK)
        return rc;
    if (content_key != NULL) {
        int is_seen;
        rc = store__content_seen(w, rr.run_num, content_key, &is_seen);
        if (rc != RV_OK || is_seen)
            return rc;
    }
    struct store__limits lim;
    rc = store__team_limits(w, rr.str[RUN_TEAM], rr.len[RUN_TEAM], &lim);
    if (rc != RV_OK)
        return rc;
    uint64_t max_points = lim.max_points_per_run;
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
            rc = store__series_apply(w, &rr, m, &g, ptr, cmd_no, pts);
    }
    free(pts);
    if (rc == RV_OK) {
        rr.n_points += m->n_values;
        rc = store__runrec_put(w, &rr);
    }
    return rc;
}

/* ---- Summaries ---------------------------------------------------------- */

int
store__summary_load(struct store_read *r, uint64_t run_num,
                    struct store_run *run, char *errmsg)
{
    uint8_t pre[8];
    MDB_cursor *cur;
    size_t cap = 0;
    rv_put_be64(pre, run_num);
    int rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_SERIES], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {8, pre}, v;
    int err = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= 10 && memcmp(k.mv_data, pre, 8) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        uint16_t kn = rv_get_be16(kp + 8);
        if (10u + kn > k.mv_size || v.mv_size != STORE_SUMMARY_BYTES) {
            err = RV_ECORRUPT;
            break;
        }
        if (run->n_summary == cap) {
            cap = cap ? 2 * cap : 8;
            void *p = realloc(run->summary, cap * sizeof *run->summary);
            if (p == NULL) {
                err = RV_ENOMEM;
                break;
            }
            run->summary = p;
        }
        struct store_summary *sm = &run->summary[run->n_summary++];
        const uint8_t *rec = v.mv_data;
        sm->key = store__strndup((const char *)kp + 10, kn);
        sm->context =
            store__strndup((const char *)kp + 10 + kn, k.mv_size - 10 - kn);
        sm->count = rv_get_be64(rec + 8);
        sm->last = rv_f64_from_bits(rv_get_be64(rec + 16));
        sm->last_step = rv_i64_from_sortable(rv_get_be64(rec + 24));
        sm->last_timestamp_ms = rv_i64_from_sortable(rv_get_be64(rec + 32));
        sm->min = rv_f64_from_bits(rv_get_be64(rec + 40));
        sm->max = rv_f64_from_bits(rv_get_be64(rec + 48));
        if (sm->key == NULL || sm->context == NULL) {
            err = RV_ENOMEM;
            break;
        }
    }
    mdb_cursor_close(cur);
    return err;
}
