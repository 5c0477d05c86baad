/* Reads: run records, the run list (filter, order, keyset pages), metric
 * history with downsampling, log lines, analytics and artifacts. Every
 * function runs inside one LMDB read transaction and may be called from
 * any thread (one thread per struct store_read at a time). */
#include "store/filter.h"
#include "store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Read transactions ------------------------------------------------- */

int
store_read_begin(struct store *s, struct store_read **out, char *errmsg)
{
    struct store_read *r = calloc(1, sizeof *r);
    if (r == NULL)
        return RV_ENOMEM;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc != 0) {
        free(r);
        return store__err_mdb(rc, "mdb_txn_begin", errmsg);
    }
    r->s = s;
    MDB_val v;
    if (store__get(r->txn, s->dbi[STORE_DB_META], "applied", 7, &v, NULL) ==
            RV_OK &&
        v.mv_size == 8)
        r->applied_index = rv_get_be64(v.mv_data);
    rv_buf_init(&r->vbuf);
    *out = r;
    return RV_OK;
}

void
store_read_digest(const struct store_read *r, uint8_t out[STORE_DIGEST_BYTES])
{
    MDB_val v;
    if (store__get(r->txn, r->s->dbi[STORE_DB_META], "digest", 6, &v, NULL) ==
            RV_OK &&
        v.mv_size == STORE_DIGEST_BYTES)
        memcpy(out, v.mv_data, STORE_DIGEST_BYTES);
    else
        memset(out, 0, STORE_DIGEST_BYTES);
}

void
store_read_end(struct store_read *r)
{
    if (r == NULL)
        return;
    mdb_txn_abort(r->txn);
    rv_buf_free(&r->vbuf);
    free(r);
}

uint64_t
store_read_applied_index(const struct store_read *r)
{
    return r->applied_index;
}

/* ---- Run records ------------------------------------------------------- */

/* A run record with borrowed strings (valid while the txn lives). */
struct store__rview {
    uint64_t run_num;
    uint8_t status, lifecycle;
    int64_t created_at_ms, ended_at_ms;
    uint64_t n_points, n_log_lines;
    const char *str[6];
    size_t len[6];
};

enum { RV_RUN_ID, RV_TEAM, RV_PROJECT, RV_EXPERIMENT, RV_NAME, RV_USER };

static int
store__rview_decode(const MDB_val *v, uint64_t run_num, struct store__rview *rv)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    if (v->mv_size < STORE_RUN_HEADER || p[0] != STORE_FORMAT)
        return RV_ECORRUPT;
    rv->run_num = run_num;
    rv->status = p[1];
    rv->lifecycle = p[2];
    rv->created_at_ms = rv_i64_from_sortable(rv_get_be64(p + 4));
    rv->ended_at_ms = rv_i64_from_sortable(rv_get_be64(p + 12));
    rv->n_points = rv_get_be64(p + 20);
    rv->n_log_lines = rv_get_be64(p + 28);
    p += STORE_RUN_HEADER;
    for (int i = 0; i < 6; i++) {
        if (end - p < 2 || (size_t)(end - p - 2) < rv_get_be16(p))
            return RV_ECORRUPT;
        rv->len[i] = rv_get_be16(p);
        rv->str[i] = (const char *)p + 2;
        p += 2 + rv->len[i];
    }
    return RV_OK;
}

static int
store__rview_get(struct store_read *r, uint64_t run_num,
                 struct store__rview *rv, char *errmsg)
{
    uint8_t k[8];
    MDB_val v;
    rv_put_be64(k, run_num);
    int rc = store__get(r->txn, r->s->dbi[STORE_DB_RUN], k, 8, &v, errmsg);
    if (rc != RV_OK)
        return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    if (store__rview_decode(&v, run_num, rv) != RV_OK) {
        rv_errmsg_printf(errmsg, "run record %llu does not decode",
                         (unsigned long long)run_num);
        return RV_ECORRUPT;
    }
    return RV_OK;
}

int
store__run_num_get(MDB_txn *txn, const struct store *s, const char *run_id,
                   uint64_t *run_num, char *errmsg)
{
    MDB_val v;
    size_t n = strlen(run_id);
    /* No run has an id outside 1..STORE_MAX_RUN_ID_BYTES (run_create checks),
     * and LMDB refuses an empty or over-long key as a fault. */
    if (n == 0 || n > STORE_MAX_RUN_ID_BYTES) {
        rv_errmsg_printf(errmsg, "run '%.64s' does not exist", run_id);
        return RV_ENOTFOUND;
    }
    int rc = store__get(txn, s->dbi[STORE_DB_RUNID], run_id, n, &v, errmsg);
    if (rc == RV_ENOTFOUND) {
        rv_errmsg_printf(errmsg, "run '%.64s' does not exist", run_id);
        return RV_ENOTFOUND;
    }
    if (rc != RV_OK)
        return rc;
    if (v.mv_size != 8)
        return RV_ECORRUPT;
    *run_num = rv_get_be64(v.mv_data);
    return RV_OK;
}

static char *
store__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void
store_run_free(struct store_run *run)
{
    if (run == NULL)
        return;
    free(run->run_id);
    free(run->team);
    free(run->project);
    free(run->experiment);
    free(run->name);
    free(run->user);
    for (size_t i = 0; i < run->n_params; i++) {
        free(run->params[i].key);
        free(run->params[i].value);
    }
    free(run->params);
    for (size_t i = 0; i < run->n_tags; i++) {
        free(run->tags[i].key);
        free(run->tags[i].value);
    }
    free(run->tags);
    for (size_t i = 0; i < run->n_summary; i++) {
        free(run->summary[i].key);
        free(run->summary[i].context);
    }
    free(run->summary);
    memset(run, 0, sizeof *run);
}

/* Load every (key, value) of db under the 8-byte run prefix. */
static int
store__kv_load(struct store_read *r, enum store_db db, uint64_t run_num,
               struct store_kv **out, size_t *n_out, char *errmsg)
{
    uint8_t pre[8];
    MDB_cursor *cur;
    size_t n = 0, cap = 0;
    struct store_kv *kv = NULL;
    rv_put_be64(pre, run_num);
    int rc = mdb_cursor_open(r->txn, r->s->dbi[db], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {8, pre}, v;
    int err = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, pre, 8) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            struct store_kv *p = realloc(kv, cap * sizeof *kv);
            if (p == NULL) {
                err = RV_ENOMEM;
                break;
            }
            kv = p;
        }
        kv[n].key = store__strndup((const char *)k.mv_data + 8, k.mv_size - 8);
        kv[n].value = store__strndup(v.mv_data, v.mv_size);
        n++;
        if (kv[n - 1].key == NULL || kv[n - 1].value == NULL) {
            err = RV_ENOMEM;
            break;
        }
    }
    mdb_cursor_close(cur);
    *out = kv;
    *n_out = n;
    return err;
}

static int
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

static int
store__run_fill(struct store_read *r, const struct store__rview *rv,
                int is_full, struct store_run *run, char *errmsg)
{
    memset(run, 0, sizeof *run);
    char **dst[6] = {&run->run_id,     &run->team, &run->project,
                     &run->experiment, &run->name, &run->user};
    for (int i = 0; i < 6; i++) {
        *dst[i] = store__strndup(rv->str[i], rv->len[i]);
        if (*dst[i] == NULL) {
            store_run_free(run);
            return RV_ENOMEM;
        }
    }
    run->status = rv->status;
    run->lifecycle = rv->lifecycle;
    run->created_at_ms = rv->created_at_ms;
    run->ended_at_ms = rv->ended_at_ms;
    run->n_points = rv->n_points;
    run->n_log_lines = rv->n_log_lines;
    int rc = RV_OK;
    if (is_full) {
        rc = store__kv_load(r, STORE_DB_PARAM, rv->run_num, &run->params,
                            &run->n_params, errmsg);
        if (rc == RV_OK)
            rc = store__kv_load(r, STORE_DB_TAG, rv->run_num, &run->tags,
                                &run->n_tags, errmsg);
        if (rc == RV_OK)
            rc = store__summary_load(r, rv->run_num, run, errmsg);
    }
    if (rc != RV_OK)
        store_run_free(run);
    return rc;
}

int
store_run_get(struct store_read *r, const char *run_id, int is_full,
              struct store_run *run, char *errmsg)
{
    uint64_t run_num;
    struct store__rview rv;
    int rc = store__run_num_get(r->txn, r->s, run_id, &run_num, errmsg);
    if (rc == RV_OK)
        rc = store__rview_get(r, run_num, &rv, errmsg);
    if (rc == RV_OK)
        rc = store__run_fill(r, &rv, is_full, run, errmsg);
    return rc;
}

/* ---- Run list: evaluation --------------------------------------------- */

/* The candidate being evaluated, seen through struct filter_run. */
struct store__cand {
    struct store_read *r;
    struct store__rview rv;
    char strs[6][STORE_MAX_NAME_BYTES + 1];
    struct filter_run fr;
};

static int
store__cand_kv(struct store_read *r, enum store_db db, uint64_t run_num,
               const char *key, size_t key_len, const char **val,
               size_t *val_len)
{
    uint8_t k[8 + STORE_MAX_KEY_BYTES];
    MDB_val v;
    if (key_len > STORE_MAX_KEY_BYTES)
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
    uint8_t k[8 + 2 + STORE_MAX_KEY_BYTES];
    MDB_val v;
    if (key_len > STORE_MAX_KEY_BYTES)
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
    for (int i = 0; i < 6; i++) {
        size_t n = c->rv.len[i] < STORE_MAX_NAME_BYTES ? c->rv.len[i]
                                                       : STORE_MAX_NAME_BYTES;
        memcpy(c->strs[i], c->rv.str[i], n);
        c->strs[i][n] = '\0';
    }
    struct filter_run *fr = &c->fr;
    fr->run_id = c->strs[RV_RUN_ID];
    fr->team = c->strs[RV_TEAM];
    fr->project = c->strs[RV_PROJECT];
    fr->experiment = c->strs[RV_EXPERIMENT];
    fr->name = c->strs[RV_NAME];
    fr->user = c->strs[RV_USER];
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

/* ---- Run list: rows, order and page tokens ----------------------------- */

enum { SK_NUM, SK_STR, SK_NAN, SK_MISSING };

struct store__sortval {
    int kind;
    double num;
    size_t len;
    char str[STORE_SORT_STRING_BYTES];
};

struct store__row {
    uint64_t run_num;
    int64_t created_at_ms;
    size_t id_len;
    char run_id[STORE_MAX_RUN_ID_BYTES];
    struct store__sortval v[FILTER_MAX_ORDER_TERMS];
};

static void
store__sortval_str(struct store__sortval *sv, const char *s, size_t n)
{
    sv->kind = SK_STR;
    sv->len = n < STORE_SORT_STRING_BYTES ? n : STORE_SORT_STRING_BYTES;
    memcpy(sv->str, s, sv->len);
}

static void
store__sortval_num(struct store__sortval *sv, double d)
{
    sv->kind = isnan(d) ? SK_NAN : SK_NUM;
    sv->num = d;
}

static void
store__row_fill(const struct filter *f, struct store__cand *c,
                struct store__row *row)
{
    const struct filter_run *fr = &c->fr;
    row->run_num = c->rv.run_num;
    row->created_at_ms = c->rv.created_at_ms;
    row->id_len = c->rv.len[RV_RUN_ID];
    memcpy(row->run_id, c->rv.str[RV_RUN_ID], row->id_len);
    for (size_t i = 0; i < f->n_order; i++) {
        const struct filter_order_term *t = &f->order[i];
        struct store__sortval *sv = &row->v[i];
        const char *s;
        size_t n;
        double d;
        sv->kind = SK_MISSING;
        switch (t->field) {
        case FILTER_FIELD_PARAM:
            if (fr->param(c, t->key, t->key_len, &s, &n))
                store__sortval_str(sv, s, n);
            break;
        case FILTER_FIELD_TAG:
            if (fr->tag(c, t->key, t->key_len, &s, &n))
                store__sortval_str(sv, s, n);
            break;
        case FILTER_FIELD_METRIC:
            if (fr->metric(c, t->key, t->key_len, &d))
                store__sortval_num(sv, d);
            break;
        case FILTER_FIELD_ATTR:
        default:
            switch (t->attr) {
            case FILTER_ATTR_START_TIME:
                store__sortval_num(sv, (double)fr->created_at_ms);
                break;
            case FILTER_ATTR_END_TIME:
                if (fr->ended_at_ms != 0)
                    store__sortval_num(sv, (double)fr->ended_at_ms);
                break;
            case FILTER_ATTR_RUN_ID:
                s = fr->run_id;
                goto str;
            case FILTER_ATTR_RUN_NAME:
                s = fr->name;
                goto str;
            case FILTER_ATTR_STATUS:
                s = fr->status;
                goto str;
            case FILTER_ATTR_USER:
                s = fr->user;
                goto str;
            case FILTER_ATTR_PROJECT:
                s = fr->project;
                goto str;
            case FILTER_ATTR_EXPERIMENT:
                s = fr->experiment;
                goto str;
            case FILTER_ATTR_TEAM:
                s = fr->team;
                goto str;
            case FILTER_ATTR_LIFECYCLE:
                s = fr->lifecycle;
            str:
                store__sortval_str(sv, s, strlen(s));
                break;
            case FILTER_ATTR_NONE:
            default:
                break;
            }
        }
    }
}

/* One ORDER BY term: missing values last and NaN after numbers, in either
 * direction; -1, 0 or 1 in the row order. */
static int
store__term_cmp(const struct filter_order_term *t,
                const struct store__sortval *x, const struct store__sortval *y)
{
    if (x->kind == SK_MISSING || y->kind == SK_MISSING || x->kind == SK_NAN ||
        y->kind == SK_NAN) {
        int rx = x->kind == SK_MISSING ? 2 : x->kind == SK_NAN ? 1 : 0;
        int ry = y->kind == SK_MISSING ? 2 : y->kind == SK_NAN ? 1 : 0;
        if (rx != ry)
            return rx < ry ? -1 : 1;
        if (rx != 0)
            return 0;
    }
    int c = 0;
    if (x->kind == SK_NUM && y->kind == SK_NUM) {
        c = x->num < y->num ? -1 : x->num > y->num ? 1 : 0;
    } else if (x->kind == SK_STR && y->kind == SK_STR) {
        size_t n = x->len < y->len ? x->len : y->len;
        c = memcmp(x->str, y->str, n);
        if (c == 0)
            c = x->len < y->len ? -1 : x->len > y->len ? 1 : 0;
        c = c < 0 ? -1 : c > 0 ? 1 : 0;
    } else {
        c = x->kind < y->kind ? -1 : 1; /* Numbers before strings. */
    }
    return t->is_desc ? -c : c;
}

/* Total order of rows: each ORDER BY term (store__term_cmp), then
 * start_time DESC, then run_id ASC. */
static int
store__row_cmp(const struct filter *f, const struct store__row *a,
               const struct store__row *b)
{
    for (size_t i = 0; i < f->n_order; i++) {
        int c = store__term_cmp(&f->order[i], &a->v[i], &b->v[i]);
        if (c != 0)
            return c;
    }
    if (a->created_at_ms != b->created_at_ms)
        return a->created_at_ms > b->created_at_ms ? -1 : 1;
    size_t n = a->id_len < b->id_len ? a->id_len : b->id_len;
    int c = memcmp(a->run_id, b->run_id, n);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return a->id_len < b->id_len ? -1 : a->id_len > b->id_len ? 1 : 0;
}

#define STORE_TOKEN_VERSION 1

static uint64_t
store__query_hash(const struct store_query *q)
{
    XXH3_state_t *st = XXH3_createState();
    const char *parts[5] = {q->filter, q->order_by, q->team, q->project,
                            q->experiment};
    uint64_t h = 0;
    if (st == NULL)
        return 0;
    XXH3_64bits_reset(st);
    for (int i = 0; i < 5; i++) {
        const char *p = parts[i] ? parts[i] : "";
        XXH3_64bits_update(st, p, strlen(p) + 1);
    }
    uint8_t view = (uint8_t)q->view;
    XXH3_64bits_update(st, &view, 1);
    h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static const char store__hex[] = "0123456789abcdef";

static void
store__token_encode(const struct filter *f, uint64_t qhash,
                    const struct store__row *row, char *out)
{
    uint8_t buf[STORE_PAGE_TOKEN_BYTES / 2];
    struct rv_buf b = {buf, 0, sizeof buf, 0};
    rv_buf_append_u8(&b, STORE_TOKEN_VERSION);
    rv_buf_append_be64(&b, qhash);
    for (size_t i = 0; i < f->n_order; i++) {
        const struct store__sortval *sv = &row->v[i];
        rv_buf_append_u8(&b, (uint8_t)sv->kind);
        if (sv->kind == SK_NUM)
            rv_buf_append_be64(&b, rv_f64_bits(sv->num));
        else if (sv->kind == SK_STR)
            rv_buf_append_str16(&b, sv->str, sv->len);
    }
    rv_buf_append_be64(&b, rv_i64_sortable(row->created_at_ms));
    rv_buf_append_str16(&b, row->run_id, row->id_len);
    for (size_t i = 0; i < b.len; i++) {
        out[2 * i] = store__hex[buf[i] >> 4];
        out[2 * i + 1] = store__hex[buf[i] & 15];
    }
    out[2 * b.len] = '\0';
}

static int
store__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int
store__token_decode(const struct filter *f, uint64_t qhash, const char *tok,
                    struct store__row *row, char *errmsg)
{
    uint8_t buf[STORE_PAGE_TOKEN_BYTES / 2];
    size_t n = strlen(tok);
    if (n % 2 != 0 || n / 2 > sizeof buf)
        goto bad;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = store__hexval(tok[2 * i]), lo = store__hexval(tok[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto bad;
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    const uint8_t *p = buf, *end = buf + n / 2;
    if (end - p < 9 || p[0] != STORE_TOKEN_VERSION)
        goto bad;
    if (rv_get_be64(p + 1) != qhash) {
        rv_errmsg_printf(errmsg, "page_token belongs to another query");
        return RV_EINVAL;
    }
    p += 9;
    memset(row, 0, sizeof *row);
    for (size_t i = 0; i < f->n_order; i++) {
        struct store__sortval *sv = &row->v[i];
        if (end - p < 1)
            goto bad;
        sv->kind = (int)*p++;
        if (sv->kind == SK_NUM) {
            if (end - p < 8)
                goto bad;
            sv->num = rv_f64_from_bits(rv_get_be64(p));
            p += 8;
        } else if (sv->kind == SK_STR) {
            if (end - p < 2 || rv_get_be16(p) > STORE_SORT_STRING_BYTES ||
                end - p - 2 < rv_get_be16(p))
                goto bad;
            sv->len = rv_get_be16(p);
            memcpy(sv->str, p + 2, sv->len);
            p += 2 + sv->len;
        } else if (sv->kind != SK_NAN && sv->kind != SK_MISSING) {
            goto bad;
        }
    }
    if (end - p < 10)
        goto bad;
    row->created_at_ms = rv_i64_from_sortable(rv_get_be64(p));
    row->id_len = rv_get_be16(p + 8);
    if (row->id_len > STORE_MAX_RUN_ID_BYTES ||
        (size_t)(end - p - 10) != row->id_len)
        goto bad;
    memcpy(row->run_id, p + 10, row->id_len);
    return RV_OK;
bad:
    rv_errmsg_printf(errmsg, "page_token is not valid");
    return RV_EINVAL;
}

/* ---- Run list: candidate sources --------------------------------------- */

/* A posting list: keys of db starting with prefix; the run number is the
 * last 8 bytes of each key (ixcr: the value). */
struct store__src {
    enum store_db db;
    uint8_t prefix[2 + STORE_MAX_KEY_BYTES + 16];
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

static uint64_t
store__count(struct store_read *r, const uint8_t *key, size_t n)
{
    MDB_val v;
    if (store__get(r->txn, r->s->dbi[STORE_DB_CNT], key, n, &v, NULL) !=
            RV_OK ||
        v.mv_size != 8)
        return 0;
    return rv_get_be64(v.mv_data);
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
        s->count = store__count(r, c, 17);
    } else {
        c[0] = 'J';
        s->prefix_len = 8;
        s->count = store__count(r, c, 9);
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
            if (n->key_len > STORE_MAX_KEY_BYTES)
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
            s->count = store__count(r, c, s->prefix_len + 1);
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
            s->count = store__count(r, c, 2);
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

/* Pick the smallest posting list(s) among the scope and the top-level
 * conjuncts of the filter. */
static int
store__plan_make(struct store_read *r, const struct store_query *q,
                 const struct filter *f, struct store__plan *plan)
{
    struct store__src *tmp = calloc(STORE_MAX_SOURCES, sizeof *tmp);
    plan->src = calloc(STORE_MAX_SOURCES, sizeof *plan->src);
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
    uint8_t pre[2 + STORE_MAX_KEY_BYTES];
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
                   x->f->order[0].key_len <= STORE_MAX_KEY_BYTES;
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
    uint8_t start[8 + STORE_MAX_RUN_ID_BYTES + 1];
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

int
store_query_runs(struct store_read *r, const struct store_query *q,
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
    size_t per_page = q->per_page ? q->per_page : STORE_DEFAULT_PER_PAGE;
    if (per_page > STORE_MAX_PER_PAGE) {
        rv_errmsg_printf(errmsg, "per_page must be 1..%d, got %zu",
                         STORE_MAX_PER_PAGE, per_page);
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
        f->order[0].key_len <= STORE_MAX_KEY_BYTES)
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
        if (cap > STORE_MAX_HISTORY_POINTS + 1)
            cap = STORE_MAX_HISTORY_POINTS + 1;
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
    if (kn == 0 || kn > STORE_MAX_KEY_BYTES || cn > STORE_MAX_CONTEXT_BYTES) {
        rv_errmsg_printf(errmsg,
                         "metric key must be 1..%d bytes and context "
                         "at most %d",
                         STORE_MAX_KEY_BYTES, STORE_MAX_CONTEXT_BYTES);
        return RV_EINVAL;
    }
    int rc = store__run_num_get(r->txn, r->s, q->run_id, &run_num, errmsg);
    if (rc != RV_OK)
        return rc;
    uint8_t k[8 + 2 + STORE_MAX_KEY_BYTES + STORE_MAX_CONTEXT_BYTES];
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
    if (q->min_step > q->max_step || q->downsample > STORE_MAX_DOWNSAMPLE) {
        rv_errmsg_printf(errmsg,
                         "need min_step <= max_step and downsample "
                         "<= %d",
                         STORE_MAX_DOWNSAMPLE);
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
                             STORE_MAX_HISTORY_POINTS);
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

/* ---- Log lines --------------------------------------------------------- */

void
store_log_lines_free(struct store_log_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i].text);
    free(lines);
}

static int
store__log_chunk(struct store_read *r, const MDB_val *v, uint64_t first,
                 uint64_t from_line, size_t max_lines,
                 struct store_log_line *out, size_t *n_out, char *errmsg)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != 18)
        return RV_ECORRUPT;
    struct vlog_ptr ptr = {rv_get_be32(p), rv_get_be32(p + 4),
                           rv_get_be32(p + 8)};
    uint16_t cmd_no = rv_get_be16(p + 12);
    Rv__CommandBatch *b = NULL;
    int rc = vlog_read(r->s->vlog, ptr, &r->vbuf, NULL, errmsg);
    if (rc == RV_OK)
        rc = proto_batch_decode(r->vbuf.data, r->vbuf.len, &b, errmsg);
    if (rc != RV_OK)
        return rc == RV_EMALFORMED ? RV_ECORRUPT : rc;
    if (cmd_no >= b->n_commands ||
        b->commands[cmd_no]->body_case != RV__COMMAND__BODY_LOG_LINES) {
        proto_batch_free(b);
        return RV_ECORRUPT;
    }
    const Rv__LogLines *ll = b->commands[cmd_no]->log_lines;
    for (size_t i = 0; i < ll->n_lines && *n_out < max_lines; i++) {
        if (first + i < from_line)
            continue;
        struct store_log_line *l = &out[(*n_out)];
        l->line_no = first + i;
        l->timestamp_ms = ll->lines[i]->timestamp_ms;
        l->stream = ll->lines[i]->has_stream ? (int)ll->lines[i]->stream : 0;
        l->text =
            store__strndup(ll->lines[i]->text, strlen(ll->lines[i]->text));
        if (l->text == NULL) {
            proto_batch_free(b);
            return RV_ENOMEM;
        }
        (*n_out)++;
    }
    proto_batch_free(b);
    return RV_OK;
}

int
store_log_lines(struct store_read *r, const char *run_id, uint64_t from_line,
                size_t max_lines, struct store_log_line **lines,
                size_t *n_lines, uint64_t *next_line, char *errmsg)
{
    uint64_t run_num;
    struct store__rview rv;
    *lines = NULL;
    *n_lines = 0;
    if (max_lines == 0 || max_lines > STORE_MAX_LOG_LINES_READ) {
        rv_errmsg_printf(errmsg, "max_lines must be 1..%d",
                         STORE_MAX_LOG_LINES_READ);
        return RV_EINVAL;
    }
    int rc = store__run_num_get(r->txn, r->s, run_id, &run_num, errmsg);
    if (rc == RV_OK)
        rc = store__rview_get(r, run_num, &rv, errmsg);
    if (rc != RV_OK)
        return rc;
    *next_line = from_line < rv.n_log_lines ? from_line : rv.n_log_lines;
    if (from_line >= rv.n_log_lines)
        return RV_OK;
    struct store_log_line *out = calloc(max_lines, sizeof *out);
    if (out == NULL)
        return RV_ENOMEM;
    MDB_cursor *cur;
    rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_LOGS], &cur);
    if (rc != 0) {
        free(out);
        return store__err_mdb(rc, "cursor", errmsg);
    }
    uint8_t k[16];
    rv_put_be64(k, run_num);
    rv_put_be64(k + 8, from_line);
    MDB_val key = {16, k}, v;
    /* The chunk holding from_line starts at or before it. */
    int mrc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    if (mrc != 0 || memcmp(key.mv_data, k, 8) != 0 ||
        rv_get_be64((const uint8_t *)key.mv_data + 8) > from_line)
        mrc = mdb_cursor_get(cur, &key, &v,
                             mrc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    int err = RV_OK;
    for (; mrc == 0 && *n_lines < max_lines;
         mrc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
        if (key.mv_size != 16 || memcmp(key.mv_data, k, 8) != 0)
            break;
        uint64_t first = rv_get_be64((const uint8_t *)key.mv_data + 8);
        err = store__log_chunk(r, &v, first, from_line, max_lines, out, n_lines,
                               errmsg);
        if (err != RV_OK)
            break;
    }
    mdb_cursor_close(cur);
    if (err != RV_OK) {
        store_log_lines_free(out, *n_lines);
        *n_lines = 0;
        return err;
    }
    *lines = out;
    *next_line = *n_lines ? out[*n_lines - 1].line_no + 1 : *next_line;
    return RV_OK;
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

int
store_analytics(struct store_read *r, enum store_group group, const char *team,
                const char *project, struct store_count **counts,
                size_t *n_counts, char *errmsg)
{
    uint8_t pre[1 + 2 + STORE_MAX_TEAM_BYTES + 2 + STORE_MAX_SCOPE_BYTES];
    size_t pn = 1;
    struct store_count *cs = NULL;
    size_t n = 0, cap = 0;
    *counts = NULL;
    *n_counts = 0;
    if ((team && strlen(team) > STORE_MAX_TEAM_BYTES) ||
        (project && strlen(project) > STORE_MAX_SCOPE_BYTES) ||
        (project && !team)) {
        rv_errmsg_printf(errmsg, "analytics scope: a project needs its team; "
                                 "names are bounded");
        return RV_EINVAL;
    }
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
    if (err == RV_OK && n > 1) {
        /* Merge equal labels from different teams or projects. */
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
        n = w;
    }
    if (err != RV_OK) {
        store_counts_free(cs, n);
        return err;
    }
    *counts = cs;
    *n_counts = n;
    return RV_OK;
}

/* ---- Artifacts --------------------------------------------------------- */

void
store_artifact_free(struct store_artifact *art)
{
    free(art->path);
    free(art->content_type);
    memset(art, 0, sizeof *art);
}

/* Find the artifact record and its owner's part prefix. */
static int
store__artifact_find(struct store_read *r, const char *run_id, const char *path,
                     struct store_artifact *art, uint8_t *owner_prefix,
                     size_t *owner_len, char *errmsg)
{
    uint64_t run_num;
    size_t pn = strlen(path);
    if (pn == 0 || pn > STORE_MAX_ARTIFACT_PATH_BYTES) {
        rv_errmsg_printf(errmsg, "artifact path must be 1..%d bytes",
                         STORE_MAX_ARTIFACT_PATH_BYTES);
        return RV_EINVAL;
    }
    int rc = store__run_num_get(r->txn, r->s, run_id, &run_num, errmsg);
    if (rc != RV_OK)
        return rc;
    uint8_t k[8 + STORE_MAX_ARTIFACT_PATH_BYTES];
    rv_put_be64(k, run_num);
    memcpy(k + 8, path, pn);
    MDB_val v;
    rc = store__get(r->txn, r->s->dbi[STORE_DB_ART], k, 8 + pn, &v, errmsg);
    if (rc == RV_ENOTFOUND)
        rv_errmsg_printf(errmsg, "run '%.64s' has no artifact '%.64s'", run_id,
                         path);
    if (rc != RV_OK)
        return rc;
    const uint8_t *p = v.mv_data, *end = p + v.mv_size;
    if (v.mv_size < 43 || end - p < 43 + rv_get_be16(p + 41) + 10)
        return RV_ECORRUPT;
    uint16_t cn = rv_get_be16(p + 41);
    const uint8_t *o = p + 43 + cn;
    uint16_t on = rv_get_be16(o + 8);
    if (end - o != 10 + on)
        return RV_ECORRUPT;
    memset(art, 0, sizeof *art);
    art->is_complete = p[0];
    art->size = rv_get_be64(p + 1);
    memcpy(art->sha256, p + 9, 32);
    art->path = store__strndup(path, pn);
    art->content_type = store__strndup((const char *)p + 43, cn);
    if (art->path == NULL || art->content_type == NULL) {
        store_artifact_free(art);
        return RV_ENOMEM;
    }
    if (owner_prefix != NULL) {
        memcpy(owner_prefix, o, 8);
        rv_put_be16(owner_prefix + 8, on);
        memcpy(owner_prefix + 10, o + 10, on);
        *owner_len = 10u + on;
    }
    return RV_OK;
}

int
store_artifact_get(struct store_read *r, const char *run_id, const char *path,
                   struct store_artifact *art, char *errmsg)
{
    return store__artifact_find(r, run_id, path, art, NULL, NULL, errmsg);
}

void
store_artifacts_free(struct store_artifact *arts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_artifact_free(&arts[i]);
    free(arts);
}

int
store_artifacts_list(struct store_read *r, const char *run_id,
                     struct store_artifact **arts, size_t *n_arts, char *errmsg)
{
    uint64_t run_num;
    uint8_t pre[8];
    char path[STORE_MAX_ARTIFACT_PATH_BYTES + 1];
    MDB_cursor *cur;
    size_t n = 0, cap = 0;
    struct store_artifact *as = NULL;
    *arts = NULL;
    *n_arts = 0;
    int rc = store__run_num_get(r->txn, r->s, run_id, &run_num, errmsg);
    if (rc != RV_OK)
        return rc;
    rv_put_be64(pre, run_num);
    rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_ART], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {8, pre}, v;
    int err = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > 8 && memcmp(k.mv_data, pre, 8) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == STORE_MAX_ARTIFACTS_LISTED)
            break;
        if (k.mv_size - 8 > STORE_MAX_ARTIFACT_PATH_BYTES) {
            err = RV_ECORRUPT;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            struct store_artifact *p = realloc(as, cap * sizeof *as);
            if (p == NULL) {
                err = RV_ENOMEM;
                break;
            }
            as = p;
        }
        memcpy(path, (const char *)k.mv_data + 8, k.mv_size - 8);
        path[k.mv_size - 8] = '\0';
        err = store__artifact_find(r, run_id, path, &as[n], NULL, NULL, errmsg);
        if (err != RV_OK)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    if (err != RV_OK) {
        store_artifacts_free(as, n);
        return err;
    }
    *arts = as;
    *n_arts = n;
    return RV_OK;
}

int
store_artifact_read(struct store_read *r, const char *run_id, const char *path,
                    uint64_t offset, size_t n, struct rv_buf *out, char *errmsg)
{
    struct store_artifact art;
    uint8_t pre[10 + STORE_MAX_ARTIFACT_PATH_BYTES + 8];
    size_t pn;
    int rc = store__artifact_find(r, run_id, path, &art, pre, &pn, errmsg);
    if (rc != RV_OK)
        return rc;
    uint64_t size = art.size;
    store_artifact_free(&art);
    rv_buf_reset(out);
    if (offset >= size)
        return RV_OK;
    uint64_t end_off = size - offset < n ? size : offset + n;
    MDB_cursor *cur;
    rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_ARTPART], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {pn, pre}, v;
    struct rv_buf rec;
    rv_buf_init(&rec);
    int err = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size == pn + 8 && memcmp(k.mv_data, pre, pn) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t part_off = rv_get_be64((const uint8_t *)k.mv_data + pn);
        const uint8_t *pv = v.mv_data;
        if (v.mv_size != 18) {
            err = RV_ECORRUPT;
            break;
        }
        uint64_t part_len = rv_get_be32(pv + 14);
        if (part_off >= end_off)
            break;
        if (part_off + part_len <= offset)
            continue;
        struct vlog_ptr ptr = {rv_get_be32(pv), rv_get_be32(pv + 4),
                               rv_get_be32(pv + 8)};
        uint16_t cmd_no = rv_get_be16(pv + 12);
        Rv__CommandBatch *b = NULL;
        err = vlog_read(r->s->vlog, ptr, &rec, NULL, errmsg);
        if (err == RV_OK)
            err = proto_batch_decode(rec.data, rec.len, &b, errmsg);
        if (err != RV_OK) {
            err = err == RV_EMALFORMED ? RV_ECORRUPT : err;
            break;
        }
        if (cmd_no >= b->n_commands ||
            b->commands[cmd_no]->body_case !=
                RV__COMMAND__BODY_ARTIFACT_CHUNK ||
            b->commands[cmd_no]->artifact_chunk->data.len != part_len) {
            proto_batch_free(b);
            err = RV_ECORRUPT;
            break;
        }
        const uint8_t *data = b->commands[cmd_no]->artifact_chunk->data.data;
        uint64_t from = offset > part_off ? offset - part_off : 0;
        uint64_t to =
            end_off - part_off < part_len ? end_off - part_off : part_len;
        rv_buf_append(out, data + from, (size_t)(to - from));
        proto_batch_free(b);
        if (out->is_failed) {
            err = RV_ENOMEM;
            break;
        }
    }
    mdb_cursor_close(cur);
    rv_buf_free(&rec);
    return err;
}

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
