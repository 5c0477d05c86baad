/* MLflow's experiments/search (DESIGN Appendix B.2): the team's
 * experiments read a thousand at a time, matched against MLflow's
 * experiment filter, sorted, and paged by offset (docs/MLFLOW.md). */
#include "base/parse.h"
#include "gateway/gateway_int.h"
#include "store/filter.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GW_MLF_MAX_RESULTS   50000 /* MLflow's limit for a search page. */
#define GW_MLF_EXP_SCAN_MAX  10000 /* Experiments a search looks through. */
#define GW_MLF_EXP_TERMS_MAX 16    /* Conditions of an experiments filter. */

/* ---- experiments/search ---------------------------------------------------
 * The filter: conditions joined by AND, each "name", "tags.<key>",
 * "creation_time" or "last_update_time" (an "attribute." prefix allowed,
 * keys quoted with backticks or double quotes), an operator (= != LIKE
 * ILIKE for strings, = != < <= > >= for times) and a value ('quoted' or a
 * number). */

enum gw_mlf_field { MLF_NAME, MLF_TAG, MLF_CREATED, MLF_UPDATED, MLF_ID };

struct gw_mlf_term {
    enum gw_mlf_field field;
    char key[CONTRACT_MAX_KEY_BYTES + 1];
    char op[8];
    char value[CONTRACT_MAX_TAG_VALUE_BYTES + 1];
    int64_t number;
};

static const char *
gw__mlf_skip(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    return p;
}

/* A word, or a `quoted` / "quoted" one, into out (max bytes). */
static const char *
gw__mlf_word(const char *p, char *out, size_t max)
{
    size_t n = 0;
    if (*p == '`' || *p == '"') {
        char q = *p++;
        while (*p != '\0' && *p != q && n < max)
            out[n++] = *p++;
        if (*p != q)
            return NULL;
        p++;
    } else {
        while ((isalnum((unsigned char)*p) || *p == '_' || *p == '.' ||
                *p == '-' || *p == '/' || *p == ':') &&
               n < max)
            out[n++] = *p++;
    }
    out[n] = '\0';
    return n > 0 ? p : NULL;
}

static int
gw__mlf_parse_filter(struct gw_ctx *c, const char *f, struct gw_mlf_term *t,
                     size_t *n_terms)
{
    const char *p = gw__mlf_skip(f);
    *n_terms = 0;
    while (*p != '\0') {
        char ident[CONTRACT_MAX_KEY_BYTES + 16];
        struct gw_mlf_term *x = &t[*n_terms];
        if (*n_terms == GW_MLF_EXP_TERMS_MAX)
            goto bad;
        memset(x, 0, sizeof *x);
        if (strncasecmp(p, "tags.", 5) == 0 || strncasecmp(p, "tag.", 4) == 0) {
            p += p[3] == '.' ? 4 : 5;
            x->field = MLF_TAG;
            if ((p = gw__mlf_word(p, x->key, CONTRACT_MAX_KEY_BYTES)) == NULL)
                goto bad;
        } else {
            if ((p = gw__mlf_word(p, ident, sizeof ident - 1)) == NULL)
                goto bad;
            const char *id = ident;
            if (strncasecmp(id, "attributes.", 11) == 0)
                id += 11;
            else if (strncasecmp(id, "attribute.", 10) == 0)
                id += 10;
            if (strcmp(id, "name") == 0)
                x->field = MLF_NAME;
            else if (strcmp(id, "creation_time") == 0)
                x->field = MLF_CREATED;
            else if (strcmp(id, "last_update_time") == 0)
                x->field = MLF_UPDATED;
            else
                return gw__reject(c, RV_EINVAL,
                                  "Invalid attribute key '%.64s' specified. "
                                  "Valid keys are name, creation_time, "
                                  "last_update_time and tags.<key>",
                                  id);
        }
        p = gw__mlf_skip(p);
        size_t on = strspn(p, "=!<>");
        if (on == 0) {
            on = strspn(p, "LIKElikeI");
            if (on != 4 && on != 5)
                goto bad;
        }
        if (on >= sizeof x->op)
            goto bad;
        memcpy(x->op, p, on);
        for (size_t i = 0; i < on; i++)
            x->op[i] = (char)toupper((unsigned char)x->op[i]);
        p = gw__mlf_skip(p + on);
        int is_time = x->field == MLF_CREATED || x->field == MLF_UPDATED;
        if (*p == '\'') {
            size_t n = 0;
            for (p++; *p != '\0'; p++) {
                if (*p == '\'' && p[1] == '\'')
                    p++;
                else if (*p == '\'')
                    break;
                if (n == CONTRACT_MAX_TAG_VALUE_BYTES)
                    goto bad;
                x->value[n++] = *p;
            }
            if (*p != '\'' || is_time)
                goto bad;
            p++;
        } else {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p || !is_time)
                goto bad;
            x->number = v;
            p = end;
        }
        static const char *const str_ops[] = {"=", "!=", "LIKE", "ILIKE", NULL};
        static const char *const num_ops[] = {
            "=", "!=", "<", "<=", ">", ">=", NULL};
        int ok = 0;
        for (const char *const *o = is_time ? num_ops : str_ops; *o; o++)
            ok |= strcmp(*o, x->op) == 0;
        if (!ok)
            goto bad;
        (*n_terms)++;
        p = gw__mlf_skip(p);
        if (*p == '\0')
            break;
        if (strncasecmp(p, "and", 3) != 0 || !isspace((unsigned char)p[3]))
            goto bad;
        p = gw__mlf_skip(p + 3);
    }
    return 0;
bad:
    return gw__reject(c, RV_EINVAL,
                      "Invalid filter '%.200s' at position %d: expected "
                      "<name|tags.key|creation_time|last_update_time> <op> "
                      "<value> [AND ...]",
                      f, (int)(p != NULL ? p - f + 1 : 0));
}

static int
gw__mlf_str_match(const char *s, const struct gw_mlf_term *t)
{
    if (s == NULL)
        return 0; /* A missing tag never matches. */
    if (strcmp(t->op, "=") == 0)
        return strcmp(s, t->value) == 0;
    if (strcmp(t->op, "!=") == 0)
        return strcmp(s, t->value) != 0;
    /* The filter language's LIKE: linear, whatever the pattern. */
    return filter_like(s, strlen(s), t->value, strlen(t->value),
                       strcmp(t->op, "ILIKE") == 0);
}

static int
gw__mlf_num_match(int64_t v, const struct gw_mlf_term *t)
{
    const char *o = t->op;
    int64_t w = t->number;
    return strcmp(o, "=") == 0    ? v == w
           : strcmp(o, "!=") == 0 ? v != w
           : strcmp(o, "<") == 0  ? v < w
           : strcmp(o, "<=") == 0 ? v <= w
           : strcmp(o, ">") == 0  ? v > w
                                  : v >= w;
}

static int
gw__mlf_exp_matches(const Rv__MlflowExperiment *e, const struct gw_mlf_term *t,
                    size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *tag = NULL;
        int ok = 0;
        switch (t[i].field) {
        case MLF_NAME:
            ok = gw__mlf_str_match(e->name, &t[i]);
            break;
        case MLF_TAG:
            for (size_t k = 0; k < e->n_tags && tag == NULL; k++)
                if (strcmp(e->tags[k]->key, t[i].key) == 0)
                    tag = e->tags[k]->value;
            ok = gw__mlf_str_match(tag, &t[i]);
            break;
        case MLF_CREATED:
            ok = gw__mlf_num_match(e->created_at_ms, &t[i]);
            break;
        default:
            ok = gw__mlf_num_match(e->updated_at_ms, &t[i]);
            break;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

struct gw_mlf_order {
    enum gw_mlf_field field[4];
    int is_desc[4];
    size_t n;
};

static int
gw__mlf_parse_order(struct gw_ctx *c, json_t *j, struct gw_mlf_order *o)
{
    json_t *a = json_object_get(j, "order_by");
    memset(o, 0, sizeof *o);
    if (a != NULL && json_is_string(a)) { /* A GET's single value. */
        json_t *one = json_array();
        json_array_append(one, a);
        int rc = 0;
        json_object_set_new(j, "order_by", one);
        rc = gw__mlf_parse_order(c, j, o);
        return rc;
    }
    if (a != NULL && !json_is_null(a) && !json_is_array(a))
        return gw__reject(c, RV_EINVAL, "'order_by' must be an array");
    size_t n = a != NULL && json_is_array(a) ? json_array_size(a) : 0;
    if (n > 3)
        return gw__reject(c, RV_EINVAL, "at most 3 order_by terms");
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        char word[32];
        const char *p =
            s != NULL ? gw__mlf_word(gw__mlf_skip(s), word, sizeof word - 1)
                      : NULL;
        if (p == NULL)
            goto bad;
        const char *w =
            strncmp(word, "attributes.", 11) == 0 ? word + 11 : word;
        if (strcmp(w, "name") == 0)
            o->field[o->n] = MLF_NAME;
        else if (strcmp(w, "creation_time") == 0)
            o->field[o->n] = MLF_CREATED;
        else if (strcmp(w, "last_update_time") == 0)
            o->field[o->n] = MLF_UPDATED;
        else if (strcmp(w, "experiment_id") == 0)
            o->field[o->n] = MLF_ID;
        else
            goto bad;
        p = gw__mlf_skip(p);
        if (strcasecmp(p, "DESC") == 0)
            o->is_desc[o->n] = 1;
        else if (*p != '\0' && strcasecmp(p, "ASC") != 0)
            goto bad;
        o->n++;
    }
    /* MLflow's default and final tie-breaks. */
    o->field[o->n] = MLF_CREATED;
    o->is_desc[o->n++] = n == 0;
    o->field[o->n] = MLF_ID;
    o->is_desc[o->n++] = 0;
    return 0;
bad:
    return gw__reject(c, RV_EINVAL,
                      "Invalid order_by clause: name, creation_time, "
                      "last_update_time or experiment_id, then ASC or DESC");
}

/* One match of a search: what the sort reads, and its JSON. */
struct gw_mlf_hit {
    uint64_t id;
    int64_t created, updated;
    const char *name; /* In json. */
    json_t *json;     /* Owned by the search's array of every match. */
};

/* The order of the sort running on this thread (qsort has no argument). */
static _Thread_local const struct gw_mlf_order *gw_mlf_sort_order;

static int
gw__mlf_hit_cmp(const void *pa, const void *pb)
{
    const struct gw_mlf_hit *a = pa, *b = pb;
    const struct gw_mlf_order *o = gw_mlf_sort_order;
    for (size_t i = 0; i < o->n; i++) {
        int d = 0;
        switch (o->field[i]) {
        case MLF_NAME:
            d = strcmp(a->name, b->name);
            break;
        case MLF_CREATED:
            d = (a->created > b->created) - (a->created < b->created);
            break;
        case MLF_UPDATED:
            d = (a->updated > b->updated) - (a->updated < b->updated);
            break;
        default:
            d = (a->id > b->id) - (a->id < b->id);
            break;
        }
        if (d != 0)
            return o->is_desc[i] ? -d : d;
    }
    return 0;
}

/* experiments/search (POST, and GET with query parameters). The matching
 * experiments are sorted here; page_token is the offset of the page. */
void
gw_mlf_exp_search(struct gw_ctx *c)
{
    json_t *j = gw__mlf_args(c);
    const char *filter, *token;
    int64_t max = 1000, offset = 0;
    int is_set;
    size_t n_terms = 0, n_all = 0, n_match = 0;
    Rv__RunView view;
    struct gw_mlf_order order;
    struct gw_mlf_term *t = gw__alloc(c, GW_MLF_EXP_TERMS_MAX * sizeof *t);
    struct gw_mlf_hit *hits = gw__alloc(c, GW_MLF_EXP_SCAN_MAX * sizeof *hits);
    json_t *all = json_array(); /* Owns the JSON of the matches. */
    if (j == NULL || t == NULL || hits == NULL || all == NULL) {
        if (j != NULL)
            gw_reply_error(c->x, RV_ENOMEM, NULL);
        goto out;
    }
    if (gw__mlf_i64(c, j, "max_results", 1, GW_MLF_MAX_RESULTS, &max,
                    &is_set) != 0 ||
        gw__mlf_str(c, j, "filter", 0, CONTRACT_MAX_FILTER_BYTES, &filter) !=
            0 ||
        gw__mlf_str(c, j, "page_token", 0, 24, &token) != 0 ||
        gw__mlf_view(c, j, "view_type", &view) != 0 ||
        gw__mlf_parse_order(c, j, &order) != 0)
        goto out;
    if (token != NULL && token[0] != '\0' &&
        (rv_parse_i64(token, &offset) != 0 || offset < 0)) {
        gw_reply_error(c->x, RV_EINVAL, "Invalid page token");
        goto out;
    }
    if (filter != NULL && gw__mlf_parse_filter(c, filter, t, &n_terms) != 0)
        goto out;
    /* Every experiment of the team, a thousand per read, to the cap. */
    uint64_t after = 0;
    for (;;) {
        Rv__MlflowExperimentsRequest m = RV__MLFLOW_EXPERIMENTS_REQUEST__INIT;
        m.has_after_id = m.has_view = 1;
        m.after_id = after;
        m.view = view;
        const Rv__Response *r = gw__mlf_exp_read(c, &m);
        if (r == NULL)
            goto out;
        for (size_t i = 0; i < r->n_experiments; i++) {
            const Rv__MlflowExperiment *e = r->experiments[i];
            after = e->experiment_id;
            n_all++;
            if (!gw__mlf_exp_matches(e, t, n_terms) ||
                n_match == GW_MLF_EXP_SCAN_MAX)
                continue;
            /* The answer is reused by the next read: keep the JSON. */
            json_t *ej = gw__mlf_exp_json(e);
            if (ej == NULL || json_array_append_new(all, ej) != 0) {
                gw_reply_error(c->x, RV_ENOMEM, NULL);
                goto out;
            }
            hits[n_match].id = e->experiment_id;
            hits[n_match].created = e->created_at_ms;
            hits[n_match].updated = e->updated_at_ms;
            hits[n_match].name = json_string_value(json_object_get(ej, "name"));
            hits[n_match++].json = ej;
        }
        if (r->n_experiments < STORE_MLFLOW_MAX_LIST || after == 0 ||
            n_all >= GW_MLF_EXP_SCAN_MAX)
            break;
    }
    gw_mlf_sort_order = &order;
    qsort(hits, n_match, sizeof *hits, gw__mlf_hit_cmp);
    json_t *arr = json_array();
    for (size_t i = (size_t)offset;
         arr != NULL && i < n_match && i < (size_t)offset + (size_t)max; i++)
        json_array_append(arr, hits[i].json);
    json_t *o = json_pack("{s:o*}", "experiments", arr);
    if (o != NULL && (size_t)offset + (size_t)max < n_match) {
        char next[24];
        snprintf(next, sizeof next, "%lld", (long long)(offset + max));
        json_object_set_new(o, "next_page_token", json_string(next));
    }
    gw_reply_json(c->x, 200, o);
out:
    json_decref(all);
    json_decref(j);
}
