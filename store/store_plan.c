/* The run-list planner's choice: the candidate sources (posting lists)
 * chosen from the filter, the teams a query reads, the costs of the
 * plans (a posting list, an ordered walk of one team or a merge of
 * several, a range, the run-name index), and the query that fills a page
 * (store_query_runs). The walks themselves are in store_walk.c. Runs in a
 * store_read transaction, on any thread. */
#include "store/filter.h"
#include "store/store_int.h"
#include "store/store_plan_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Run list: candidate sources --------------------------------------- */

/* Keep the smallest single-list conjuncts as probes, smallest first (the
 * first probe rejects the most candidates). Only lists whose keys are
 * exactly (prefix, run number) can be probed with one lookup; a
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
    for (; i > 0 && plan->probe[i - 1].count > plan->probe[i].count; i--) {
        struct store__src t = plan->probe[i - 1];
        plan->probe[i - 1] = plan->probe[i];
        plan->probe[i] = t;
    }
    for (; i + 1 < plan->n_probes &&
           plan->probe[i + 1].count < plan->probe[i].count;
         i++) {
        struct store__src t = plan->probe[i + 1];
        plan->probe[i + 1] = plan->probe[i];
        plan->probe[i] = t;
    }
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
    const struct filter_node *conj[FILTER_MAX_NODES];
    size_t n_conj = store__conjuncts(f, conj), width = 1;
    for (size_t ci = 0; ci < n_conj; ci++)
        if (conj[ci]->kind == FILTER_NODE_CMP && conj[ci]->n_values > width)
            width = conj[ci]->n_values;
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

/* ---- Run list: the teams a query reads --------------------------------- */

/* The teams of q into t with their runs (the 'R' counters): the query's
 * team (a scoped read always sets it), else every team that has runs. 0
 * when the per-team indexes cannot serve q: a team name over the limit,
 * or more than STORE_TEAMS_MAX teams. The names of an unscoped query
 * point into the read transaction. */
static int
store__plan_teams(struct store_read *r, const struct store_query *q,
                  struct store__teams *t)
{
    t->n = 0;
    t->runs = 0;
    if (q->team != NULL) {
        uint8_t c[3 + CONTRACT_MAX_TEAM_BYTES];
        size_t tn = strlen(q->team);
        if (tn > CONTRACT_MAX_TEAM_BYTES)
            return 0;
        t->team[0] = q->team;
        t->len[0] = tn;
        t->n = 1;
        c[0] = 'R';
        t->runs = store__cnt_get(r->txn, r->s, c,
                                 1 + store__key_str16(c + 1, q->team, tn));
        return 1;
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
        if (v.mv_size == 8 && rv_get_be64(v.mv_data) == 0)
            continue; /* Every run of the team purged. */
        if (t->n == STORE_TEAMS_MAX ||
            k.mv_size - 3 > CONTRACT_MAX_TEAM_BYTES) {
            ok = 0;
            break;
        }
        t->team[t->n] = (const char *)kp + 3; /* Txn-owned. */
        t->len[t->n++] = k.mv_size - 3;
        if (v.mv_size == 8)
            t->runs += rv_get_be64(v.mv_data);
    }
    mdb_cursor_close(cur);
    return ok;
}

/* The ixmv walk of q over teams, without its metric key yet; 0 if ixmv
 * cannot serve q. An experiment reads its project's entries (in each
 * team: an experiment name may exist in several); the experiment's
 * posting list is then a probe (one lookup per entry). */
static int
store__mv_scope_of(const struct store_query *q,
                   const struct store__teams *teams, struct store__mv *mv)
{
    memset(mv, 0, sizeof *mv);
    mv->teams = teams;
    if (q->project != NULL) {
        mv->project = q->project;
        mv->project_len = strlen(q->project);
        if (mv->project_len > CONTRACT_MAX_SCOPE_BYTES)
            return 0;
    }
    return 1;
}

/* How many index entries an ordered walk would read to fill a page: the
 * page over the product of the selectivities of the driver and probe
 * lists (assumed independent), plus one seek per team merged. An
 * experiment list is relative to its project (the walk's scope), the
 * other lists to the runs of the teams read. */
static double
store__walk_estimate(struct store__exec *x, const struct store__plan *plan,
                     const struct store__teams *teams)
{
    uint64_t all = teams->runs;
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
            return (double)teams->n;
        est *= (double)of / (double)s->count;
    }
    return est + (double)teams->n;
}

/* ---- Run list: the run-name index (ixname) ---------------------------- */

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

/* The best name driver of f (the longest literal; `=` over LIKE on a tie)
 * into nm, read in teams; 0 if f has none. */
static int
store__name_of(const struct filter *f, const struct store__teams *teams,
               struct store__name *nm)
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
    nm->teams = teams;
    return found;
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
        double w = sqrt((double)x->heap.cap * (double)nm->teams->runs);
        if (w < (double)limit)
            limit = (uint64_t)w + 1;
    }
    uint64_t n;
    int rc = store__name_walk(x, nm, 1, limit, &n, errmsg);
    *is_picked = rc == RV_OK && n < limit;
    return rc;
}

/* ---- Run list: the plan ------------------------------------------------ */

/* Choose the plan and run it. The per-team indexes (ixmv, ixname, ixend)
 * are read in the teams the query may see (its own, or every team: then
 * their ordered walks are merged); the cost of each plan is counted in
 * index entries: the smallest list in full, an ordered walk's estimate,
 * a range's or a name prefix's counted entries. */
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
    struct store__teams *teams = malloc(sizeof *teams);
    struct store__name *nm = malloc(sizeof *nm);
    struct store__mv mv;
    int rc = RV_OK, is_done = 0;
    if (teams == NULL || nm == NULL) {
        free(teams);
        free(nm);
        return RV_ENOMEM;
    }
    int has_teams = store__plan_teams(x->r, x->q, teams);
    int has_mv = has_teams && store__mv_scope_of(x->q, teams, &mv);
    int by_created_asc = x->f->n_order == 1 &&
                         x->f->order[0].field == FILTER_FIELD_ATTR &&
                         x->f->order[0].attr == FILTER_ATTR_START_TIME &&
                         !x->f->order[0].is_desc;
    if (has_teams && store__name_of(x->f, teams, nm)) {
        int can_walk = ordered || by_created_asc || by_param || by_end ||
                       (by_metric && has_mv);
        int is_picked;
        rc = store__name_pick(x, plan, nm, can_walk, &is_picked, errmsg);
        if (rc == RV_OK && is_picked) {
            if (plan->has_driver && plan->n_src == 1)
                store__plan_probe(plan, &plan->src[0]);
            x->plan_name =
                nm->form == STORE_NAME_FOLDED ? "name-folded" : "name";
            uint64_t n;
            *is_total = 1;
            rc = store__name_walk(x, nm, 0, 0, &n, errmsg);
        }
        is_done = rc != RV_OK || is_picked;
    }
    if (!is_done && has_mv && by_metric &&
        (is_big ||
         store__walk_estimate(x, plan, teams) < (double)plan->count)) {
        if (plan->has_driver && plan->n_src == 1)
            store__plan_probe(plan, &plan->src[0]);
        x->plan_name = "metric-order";
        rc = store__exec_mv_order(x, &mv, plan, is_total, errmsg);
        is_done = 1;
    }
    if (!is_done && has_mv && store__mv_range_first(x->f, &mv)) {
        uint64_t limit = plan->has_driver && plan->count < STORE_RANGE_COUNT_MAX
                             ? plan->count
                             : STORE_RANGE_COUNT_MAX;
        /* An ordered walk that stops after a page is estimated, as for
         * names, at sqrt(page x runs) entries: a larger range loses. */
        double w = sqrt((double)x->heap.cap * (double)teams->runs);
        if (is_big && (ordered || by_created_asc || by_param || by_end) &&
            w < (double)limit)
            limit = (uint64_t)w + 1;
        uint64_t n;
        rc = store__mv_count(x, &mv, limit, &n, errmsg);
        if (rc == RV_OK && n < limit) {
            if (plan->has_driver && plan->n_src == 1)
                store__plan_probe(plan, &plan->src[0]);
            x->plan_name = "metric-range";
            rc = store__exec_mv_range(x, &mv, errmsg);
            *is_total = 1;
        }
        is_done = rc != RV_OK || n < limit;
    }
    if (!is_done && by_end && is_big && has_teams) {
        if (plan->has_driver && plan->n_src == 1)
            store__plan_probe(plan, &plan->src[0]);
        x->plan_name = "end-order";
        rc = store__exec_end(x, teams, is_total, errmsg);
        is_done = 1;
    }
    free(teams);
    free(nm);
    if (is_done)
        return rc;
    x->n_lanes = 0; /* A range counted but not chosen merges nothing. */
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
    return store__exec_list(x, STORE_DB_IXCR, (const uint8_t *)"", 0, errmsg);
}

static int
store__page_fill(struct store__exec *x, size_t per_page,
                 struct store_page *page, char *errmsg)
{
    struct store__heap *h = &x->heap;
    store__heap_sort(h);
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
    if (x.plan_name != NULL && x.n_lanes > 1) /* Per-team walks merged. */
        snprintf(page->plan, sizeof page->plan, "%.12s*%u", x.plan_name,
                 (unsigned)(x.n_lanes % 100));
    else if (x.plan_name != NULL)
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
