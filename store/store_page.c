/* Run-list rows: the sort values of a row, the ORDER BY comparison and
 * the keyset page tokens that resume a listing after a row. */
#include "store/filter.h"
#include "store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Run list: rows, order and page tokens ----------------------------- */

static void
store__sortval_str(struct store__sortval *sv, const char *s, size_t n)
{
    sv->kind = SK_STR;
    sv->len = n < STORE_SORT_STRING_BYTES ? n : STORE_SORT_STRING_BYTES;
    memcpy(sv->str, s, sv->len);
}

void
store__sortval_num(struct store__sortval *sv, double d)
{
    sv->kind = isnan(d) ? SK_NAN : SK_NUM;
    sv->num = d;
}

void
store__row_fill(const struct filter *f, struct store__cand *c,
                struct store__row *row)
{
    const struct filter_run *fr = &c->fr;
    row->run_num = c->rv.run_num;
    row->created_at_ms = c->rv.created_at_ms;
    row->id_len = c->rv.len[RUN_ID];
    memcpy(row->run_id, c->rv.str[RUN_ID], row->id_len);
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
int
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
int
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

uint64_t
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

void
store__token_encode(const struct filter *f, uint64_t qhash,
                    const struct store__row *row, char *out)
{
    uint8_t buf[CONTRACT_PAGE_TOKEN_BYTES / 2];
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

int
store__token_decode(const struct filter *f, uint64_t qhash, const char *tok,
                    struct store__row *row, char *errmsg)
{
    uint8_t buf[CONTRACT_PAGE_TOKEN_BYTES / 2];
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
    if (row->id_len > CONTRACT_MAX_RUN_ID_BYTES ||
        (size_t)(end - p - 10) != row->id_len)
        goto bad;
    memcpy(row->run_id, p + 10, row->id_len);
    return RV_OK;
bad:
    rv_errmsg_printf(errmsg, "page_token is not valid");
    return RV_EINVAL;
}
