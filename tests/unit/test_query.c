/* store_query_runs and store_analytics against a brute-force oracle: random
 * runs built through the real apply path, an independent in-memory model,
 * thousands of random filters and orders evaluated both ways, paging with
 * keyset tokens (also while runs are added), and the error paths. */
#include "base/clock.h"
#include "proto/metrics_builder.h"
#include "proto/proto.h"
#include "store/store.h"
#include "tests/lib/harness.h"
#include "tests/lib/storefx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The model ---------------------------------------------------------- */

#define MAX_RUNS 800

static const char *const TEAMS[] = {"t0", "t1", "t2"};
static const char *const PROJECTS[] = {"p0", "p1", "p2", "p3"};
static const char *const EXPS[] = {"e0", "e1", "e2"};
static const char *const OPTS[] = {"adam", "sgd", "it's", "Adam"};
static const char *const TAGV[] = {"vision", "nlp", "Vis", "v_x"};
static const char *const STATUS[] = {"RUNNING", "SCHEDULED", "FINISHED",
                                     "FAILED",  "KILLED",    "CRASHED"};
/* Run names: ties, case variants, names that are other names' prefixes,
 * wildcard characters inside names, the empty name. */
#define N_NAMES 14
static const char *const NAMES[N_NAMES] = {
    "alpha",  "Alpha", "ALPHA", "alp", "al", "alpha-1", "alpha_1",
    "alphaX", "beta",  "Beta",  "b",   "",   "a%b",     "x_y"};
#define N_NAME_PATTERNS 16
static const char *const NAME_PATTERNS[N_NAME_PATTERNS] = {
    "al%",     "AL%", "alp%", "alpha", "Alpha", "al_ha%",  "a%a",  "%a",
    "alpha%1", "b%",  "B%",   "x_y",   "a%",    "alpha_%", "beta", "ALPHA%"};

struct mrun {
    char id[16];
    int team, project, exp, status, deleted;
    int name; /* Index into NAMES. */
    int64_t created;
    int64_t ended; /* 0: no end time (not terminal, or none given). */
    int opt;       /* -1: no param. */
    int tag;       /* -1: no tag. */
    int has_acc, has_loss;
    double acc, loss;
};

struct model {
    struct mrun runs[MAX_RUNS];
    size_t n;
};

/* ---- Building runs through the store ----------------------------------- */

struct world {
    char *dir;
    struct store *s;
    uint64_t index;
    struct model m;
    char errmsg[RV_ERRMSG_SIZE];
};

static int
apply_batch(struct world *w, Rv__Command **cmds, size_t n)
{
    struct store_result *res;
    size_t n_res;
    int rc =
        storefx_apply_at(w->s, ++w->index, cmds, n, &res, &n_res, w->errmsg);
    for (size_t i = 0; rc == RV_OK && i < n_res; i++) {
        if (res[i].code != RV_OK) {
            snprintf(w->errmsg, sizeof w->errmsg, "command %zu: %.200s", i,
                     res[i].message);
            rc = res[i].code;
        }
    }
    free(res);
    return rc;
}

/* Create model run r in the store: create, metrics, status, maybe delete. */
static int
store_add_run(struct world *w, const struct mrun *r)
{
    Rv__Command c1 = RV__COMMAND__INIT, c2 = RV__COMMAND__INIT,
                c3 = RV__COMMAND__INIT, c4 = RV__COMMAND__INIT;
    Rv__RunCreate rc_ = RV__RUN_CREATE__INIT;
    Rv__KV p = RV__KV__INIT, t = RV__KV__INIT, *pp[1] = {&p}, *tp[1] = {&t};
    rc_.run_id = (char *)r->id;
    rc_.team = (char *)TEAMS[r->team];
    rc_.project = (char *)PROJECTS[r->project];
    rc_.experiment = (char *)EXPS[r->exp];
    rc_.name = (char *)NAMES[r->name];
    rc_.created_at_ms = r->created;
    rc_.has_status = 1;
    rc_.status = (Rv__RunStatus)(r->status + 1);
    p.key = "opt";
    p.value = r->opt >= 0 ? (char *)OPTS[r->opt] : "";
    t.key = "team";
    /* The tag is written first with another value, then overwritten. */
    t.value = "stale-value";
    if (r->opt >= 0) {
        rc_.n_params = 1;
        rc_.params = pp;
    }
    if (r->tag >= 0) {
        rc_.n_tags = 1;
        rc_.tags = tp;
    }
    c1.body_case = RV__COMMAND__BODY_RUN_CREATE;
    c1.run_create = &rc_;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m;
    struct proto_metrics_builder mb;
    int ok = 1;
    proto_metrics_init(&mb);
    if (r->has_acc) {
        /* An earlier point at a lower step: the later one is "latest". */
        ok &= proto_metrics_add(&mb, "acc", NULL, 1, 1, 123.0, NULL) == RV_OK;
        ok &= proto_metrics_add(&mb, "acc", NULL, 2, 2, r->acc, NULL) == RV_OK;
    }
    if (r->has_loss)
        ok &=
            proto_metrics_add(&mb, "loss", NULL, 1, 1, r->loss, NULL) == RV_OK;
    if (!ok)
        abort();
    proto_metrics_view(&mb, &m);
    lb.run_id = (char *)r->id;
    lb.metrics = &m;
    Rv__KV t2 = RV__KV__INIT, *tp2[1] = {&t2};
    t2.key = "team";
    t2.value = r->tag >= 0 ? (char *)TAGV[r->tag] : "";
    if (r->tag >= 0) {
        lb.n_tags = 1;
        lb.tags = tp2;
    }
    c2.body_case = RV__COMMAND__BODY_LOG_BATCH;
    c2.log_batch = &lb;
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = (char *)r->id;
    c3.body_case = RV__COMMAND__BODY_RUN_DELETE;
    c3.run_delete = &ref;
    Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
    st.run_id = (char *)r->id;
    st.status = (Rv__RunStatus)(r->status + 1);
    st.has_ended_at_ms = r->ended != 0;
    st.ended_at_ms = r->ended;
    c4.body_case = RV__COMMAND__BODY_RUN_STATUS;
    c4.run_status = &st;
    Rv__Command *cmds[4] = {&c1, &c2, &c4, &c3};
    int rc = apply_batch(w, cmds, r->deleted ? 4 : 3);
    proto_metrics_free(&mb);
    return rc;
}

/* Set: every generated run is in the first team, so unscoped queries can
 * use the team-prefixed indexes too. */
static int one_team;

static void
gen_run(struct rv_rng *g, size_t i, struct mrun *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "run-%04llu",
             (unsigned long long)rv_rng_below(g, 10000));
    /* Ids must be unique; append the ordinal in base 36 on collision. */
    snprintf(r->id + 8, sizeof r->id - 8, "%c%c", 'a' + (int)(i / 26 % 26),
             'a' + (int)(i % 26));
    r->team = (int)rv_rng_below(g, 3);
    if (one_team)
        r->team = 0;
    r->project = (int)rv_rng_below(g, 4);
    r->exp = (int)rv_rng_below(g, 3);
    r->status = (int)rv_rng_below(g, 6);
    r->deleted = rv_rng_below(g, 10) == 0;
    r->created = 1000 + (int64_t)rv_rng_below(g, 300); /* Many ties. */
    r->name = (int)rv_rng_below(g, N_NAMES);
    /* FINISHED and later are terminal: an end time, mostly (ties too). */
    if (r->status >= 2 && rv_rng_below(g, 6) != 0)
        r->ended = 2000 + (int64_t)rv_rng_below(g, 200);
    r->opt = (int)rv_rng_below(g, 5) - 1;
    r->tag = (int)rv_rng_below(g, 5) - 1;
    r->has_acc = rv_rng_below(g, 8) != 0;
    r->has_loss = rv_rng_below(g, 3) != 0;
    uint64_t a = rv_rng_below(g, 30);
    r->acc = a == 0 ? NAN : (double)rv_rng_below(g, 20) / 20.0; /* Ties. */
    r->loss = rv_rng_double(g) * 4 - 1;
}

static int
world_init(struct world *w, uint64_t seed, size_t n_runs)
{
    struct rv_rng g;
    memset(w, 0, sizeof *w);
    w->dir = rv_test_tmpdir("query");
    struct store_config cfg = {w->dir, (size_t)1 << 30, 0, NULL, NULL};
    int rc = store_open(&w->s, &cfg, w->errmsg);
    rv_rng_seed(&g, seed);
    for (size_t i = 0; rc == RV_OK && i < n_runs; i++) {
        gen_run(&g, i, &w->m.runs[i]);
        rc = store_add_run(w, &w->m.runs[i]);
        w->m.n++;
    }
    return rc;
}

static void
world_done(struct world *w)
{
    store_close(w->s);
    rv_test_rmdir(w->dir);
}

/* ---- Random filters: a spec, its text, and its own evaluator ----------- */

enum fld {
    F_ACC,
    F_LOSS,
    F_OPT,
    F_TAG,
    F_STATUS,
    F_PROJECT,
    F_CREATED,
    F_NAME,
    F_ENDED,
    F_NFIELDS
};

static int
is_numeric(int field)
{
    return field == F_ACC || field == F_LOSS || field == F_CREATED ||
           field == F_ENDED;
}

struct spec {
    int kind; /* 0 cmp, 1 AND, 2 OR */
    struct spec *l, *r;
    int field,
        op; /* op: 0 = 1 != 2 < 3 <= 4 > 5 >= 6 LIKE 7 ILIKE 8 IN 9 NOT IN */
    double num;
    const char *strs[3];
    int n_strs;
};

static const char *const PATTERNS[] = {"a%", "%a%", "_dam", "ADAM", "v%",
                                       "%s", "it%", "%",    "",     "n_p"};

static struct spec *
gen_spec(struct rv_rng *g, int depth)
{
    struct spec *s = calloc(1, sizeof *s);
    if (depth < 3 && rv_rng_below(g, 3) == 0) {
        s->kind = 1 + (int)rv_rng_below(g, 2);
        s->l = gen_spec(g, depth + 1);
        s->r = gen_spec(g, depth + 1);
        return s;
    }
    s->field = (int)rv_rng_below(g, F_NFIELDS);
    if (is_numeric(s->field)) {
        s->op = (int)rv_rng_below(g, 6);
        if (s->field == F_ACC)
            s->num = (double)rv_rng_below(g, 20) / 20.0;
        else if (s->field == F_CREATED)
            s->num = 1000 + (double)rv_rng_below(g, 300);
        else if (s->field == F_ENDED) /* 0: what a run not ended holds. */
            s->num =
                rv_rng_below(g, 8) ? 1990 + (double)rv_rng_below(g, 220) : 0;
        else
            s->num = rv_rng_double(g) * 4 - 1;
        return s;
    }
    static const int str_ops[] = {0, 1, 6, 7, 8, 9};
    s->op = str_ops[rv_rng_below(g, 6)];
    const char *const *pool = s->field == F_OPT      ? OPTS
                              : s->field == F_TAG    ? TAGV
                              : s->field == F_STATUS ? STATUS
                              : s->field == F_NAME   ? NAMES
                                                     : PROJECTS;
    size_t pool_n = s->field == F_STATUS ? 6 : s->field == F_NAME ? N_NAMES : 4;
    s->n_strs = s->op >= 8 ? 1 + (int)rv_rng_below(g, 3) : 1;
    for (int i = 0; i < s->n_strs; i++) {
        if (s->field == F_NAME && (s->op == 6 || s->op == 7))
            s->strs[i] = NAME_PATTERNS[rv_rng_below(g, N_NAME_PATTERNS)];
        else if (s->op == 6 || s->op == 7)
            s->strs[i] = PATTERNS[rv_rng_below(g, 10)];
        else
            s->strs[i] = pool[rv_rng_below(g, pool_n)];
    }
    return s;
}

static void
spec_free(struct spec *s)
{
    if (s == NULL)
        return;
    spec_free(s->l);
    spec_free(s->r);
    free(s);
}

static const char *const OPS[] = {"=",  "!=",   "<",     "<=", ">",
                                  ">=", "LIKE", "ILIKE", "IN", "NOT IN"};
static const char *const FIELD_TEXT[] = {
    "metrics.acc",           "metric.loss",         "params.opt",
    "tags.`team`",           "attributes.status",   "project",
    "attributes.start_time", "attributes.run_name", "end_time"};

static void
quote(char *out, size_t size, size_t *n, const char *s)
{
    *n += (size_t)snprintf(out + *n, size - *n, "'");
    for (; *s; s++)
        *n +=
            (size_t)snprintf(out + *n, size - *n, *s == '\'' ? "''" : "%c", *s);
    *n += (size_t)snprintf(out + *n, size - *n, "'");
}

static void
render(const struct spec *s, char *out, size_t size, size_t *n)
{
    if (s->kind != 0) {
        *n += (size_t)snprintf(out + *n, size - *n, "(");
        render(s->l, out, size, n);
        *n += (size_t)snprintf(out + *n, size - *n,
                               s->kind == 1 ? " AND " : " or ");
        render(s->r, out, size, n);
        *n += (size_t)snprintf(out + *n, size - *n, ")");
        return;
    }
    *n += (size_t)snprintf(out + *n, size - *n, "%s %s ", FIELD_TEXT[s->field],
                           OPS[s->op]);
    if (is_numeric(s->field)) {
        *n += (size_t)snprintf(out + *n, size - *n, "%.17g", s->num);
        return;
    }
    if (s->op >= 8)
        *n += (size_t)snprintf(out + *n, size - *n, "(");
    for (int i = 0; i < s->n_strs; i++) {
        if (i)
            *n += (size_t)snprintf(out + *n, size - *n, ", ");
        quote(out, size, n, s->strs[i]);
    }
    if (s->op >= 8)
        *n += (size_t)snprintf(out + *n, size - *n, ")");
}

/* An independent LIKE: recursive, fine for the short strings here. */
static int
like(const char *s, const char *p, int ci)
{
    if (*p == '\0')
        return *s == '\0';
    if (*p == '%')
        return like(s, p + 1, ci) || (*s && like(s + 1, p, ci));
    if (*s == '\0')
        return 0;
    char a = *s, b = *p;
    if (ci) {
        a = (char)(a >= 'A' && a <= 'Z' ? a + 32 : a);
        b = (char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
    }
    return (*p == '_' || a == b) && like(s + 1, p + 1, ci);
}

static int
eval_spec(const struct spec *s, const struct mrun *r)
{
    if (s->kind == 1)
        return eval_spec(s->l, r) && eval_spec(s->r, r);
    if (s->kind == 2)
        return eval_spec(s->l, r) || eval_spec(s->r, r);
    if (is_numeric(s->field)) {
        double x;
        if (s->field == F_ACC) {
            if (!r->has_acc)
                return 0;
            x = r->acc;
        } else if (s->field == F_LOSS) {
            if (!r->has_loss)
                return 0;
            x = r->loss;
        } else if (s->field == F_ENDED) {
            x = (double)r->ended; /* 0 when not ended, as the store. */
        } else {
            x = (double)r->created;
        }
        switch (s->op) {
        case 0:
            return x == s->num;
        case 1:
            return x != s->num;
        case 2:
            return x < s->num;
        case 3:
            return x <= s->num;
        case 4:
            return x > s->num;
        default:
            return x >= s->num;
        }
    }
    const char *v;
    switch (s->field) {
    case F_OPT:
        if (r->opt < 0)
            return 0;
        v = OPTS[r->opt];
        break;
    case F_TAG:
        if (r->tag < 0)
            return 0;
        v = TAGV[r->tag];
        break;
    case F_STATUS:
        v = STATUS[r->status];
        break;
    case F_NAME:
        v = NAMES[r->name];
        break;
    default:
        v = PROJECTS[r->project];
        break;
    }
    int any = 0;
    for (int i = 0; i < s->n_strs; i++) {
        if (s->op == 6)
            any |= like(v, s->strs[i], 0);
        else if (s->op == 7)
            any |= like(v, s->strs[i], 1);
        else
            any |= strcmp(v, s->strs[i]) == 0;
    }
    return s->op == 1 || s->op == 9 ? !any : any;
}

/* ---- Expected order ---------------------------------------------------- */

enum {
    O_ACC,
    O_LOSS,
    O_OPT,
    O_CREATED,
    O_STATUS,
    O_RUNID,
    O_NAME,
    O_ENDED,
    O_N
};
static const char *const ORDER_TEXT[] = {
    "metrics.acc", "metrics.loss", "params.opt", "start_time",
    "status",      "run_id",       "run_name",   "end_time"};

struct order {
    int term[3], desc[3], n;
};

/* Rank 0 number/string, 1 NaN, 2 missing; value in *d or *s. */
static int
order_key(const struct mrun *r, int t, double *d, const char **s)
{
    switch (t) {
    case O_ACC:
        if (!r->has_acc)
            return 2;
        *d = r->acc;
        return isnan(r->acc) ? 1 : 0;
    case O_LOSS:
        if (!r->has_loss)
            return 2;
        *d = r->loss;
        return 0;
    case O_OPT:
        if (r->opt < 0)
            return 2;
        *s = OPTS[r->opt];
        return 0;
    case O_CREATED:
        *d = (double)r->created;
        return 0;
    case O_STATUS:
        *s = STATUS[r->status];
        return 0;
    case O_NAME:
        *s = NAMES[r->name];
        return 0;
    case O_ENDED:
        if (r->ended == 0)
            return 2;
        *d = (double)r->ended;
        return 0;
    default:
        *s = r->id;
        return 0;
    }
}

static const struct order *cmp_order;

/* Plans of the first pages checked (check_query), by name. */
#define N_PLANS 9
static const char *const PLANS[N_PLANS] = {
    "scan",         "list", "created",     "param-order", "metric-order",
    "metric-range", "name", "name-folded", "end-order"};
static int plan_seen[N_PLANS];
/* The same, for the plans that merged several teams' walks ("plan*N"). */
static int plan_merged[N_PLANS];

static void
plan_tally(const char *plan)
{
    const char *star = strchr(plan, '*');
    size_t n = star ? (size_t)(star - plan) : strlen(plan);
    for (size_t i = 0; i < N_PLANS; i++)
        if (strlen(PLANS[i]) == n && strncmp(plan, PLANS[i], n) == 0)
            (star ? plan_merged : plan_seen)[i]++;
}

static int
cmp_runs(const void *pa, const void *pb)
{
    const struct mrun *a = *(const struct mrun *const *)pa;
    const struct mrun *b = *(const struct mrun *const *)pb;
    for (int i = 0; i < cmp_order->n; i++) {
        int t = cmp_order->term[i];
        double da = 0, db = 0;
        const char *sa = NULL, *sb = NULL;
        int ra = order_key(a, t, &da, &sa), rb = order_key(b, t, &db, &sb);
        if (ra != rb)
            return ra < rb ? -1 : 1;
        if (ra != 0)
            continue;
        int c = sa ? strcmp(sa, sb) : (da < db ? -1 : da > db ? 1 : 0);
        c = c < 0 ? -1 : c > 0;
        if (c)
            return cmp_order->desc[i] ? -c : c;
    }
    if (a->created != b->created)
        return a->created > b->created ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* ---- Running a query both ways ----------------------------------------- */

struct scope {
    int team, project, exp; /* -1: any. */
    enum store_view view;
    int reader; /* The reader's team (a scoped read), -1: every team. */
};

static int
in_scope(const struct mrun *r, const struct scope *sc)
{
    if ((sc->view == STORE_VIEW_ACTIVE && r->deleted) ||
        (sc->view == STORE_VIEW_DELETED && !r->deleted))
        return 0;
    return (sc->reader < 0 || r->team == sc->reader) &&
           (sc->team < 0 || r->team == sc->team) &&
           (sc->project < 0 || r->project == sc->project) &&
           (sc->exp < 0 || r->exp == sc->exp);
}

/* Page through the store; compare with the expected id list. Returns 1 on
 * equality, else prints the difference. */
static int
check_query(struct world *w, const struct spec *sp, const char *filter,
            const struct order *o, const struct scope *sc, size_t per_page,
            uint64_t seed, int iter)
{
    static const struct mrun *want[MAX_RUNS];
    size_t n_want = 0;
    for (size_t i = 0; i < w->m.n; i++)
        if (in_scope(&w->m.runs[i], sc) &&
            (sp == NULL || eval_spec(sp, &w->m.runs[i])))
            want[n_want++] = &w->m.runs[i];
    cmp_order = o;
    qsort(want, n_want, sizeof *want, cmp_runs);
    char order_by[256];
    size_t on = 0;
    order_by[0] = '\0';
    for (int i = 0; i < o->n; i++)
        on += (size_t)snprintf(order_by + on, sizeof order_by - on, "%s%s%s",
                               i ? ", " : "", ORDER_TEXT[o->term[i]],
                               o->desc[i] ? " DESC" : (i % 2 ? " ASC" : ""));
    struct store_query q = {
        .team = sc->team >= 0 ? TEAMS[sc->team] : NULL,
        .project = sc->project >= 0 ? PROJECTS[sc->project] : NULL,
        .experiment = sc->project >= 0 && sc->exp >= 0 ? EXPS[sc->exp] : NULL,
        .filter = filter,
        .order_by = order_by,
        .view = sc->view,
        .per_page = per_page};
    static char token[CONTRACT_PAGE_TOKEN_BYTES];
    size_t got = 0;
    token[0] = '\0';
    for (int page_no = 0;; page_no++) {
        struct store_read *r;
        struct store_page page;
        q.page_token = token[0] ? token : NULL;
        const char *reader =
            sc->reader >= 0 ? TEAMS[sc->reader] : STORE_EVERY_TEAM;
        if (store_read_begin(w->s, reader, &r, w->errmsg) != RV_OK ||
            store_query_runs(r, &q, &page, w->errmsg) != RV_OK) {
            fprintf(stderr, "seed %llu iter %d: query failed: %s\n[%s] [%s]\n",
                    (unsigned long long)seed, iter, w->errmsg, filter,
                    order_by);
            store_read_end(r);
            return 0;
        }
        if (page_no == 0)
            plan_tally(page.plan);
        if (page_no == 0 && page.has_total && page.total != n_want) {
            fprintf(stderr,
                    "seed %llu iter %d: total %llu, want %zu [%s] "
                    "scope %d/%d/%d view %d\n",
                    (unsigned long long)seed, iter,
                    (unsigned long long)page.total, n_want, filter, sc->team,
                    sc->project, sc->exp, (int)sc->view);
            store_page_free(&page);
            store_read_end(r);
            return 0;
        }
        for (size_t i = 0; i < page.n_runs; i++, got++) {
            if (got >= n_want ||
                strcmp(page.runs[i].run_id, want[got]->id) != 0) {
                fprintf(stderr,
                        "seed %llu iter %d: row %zu is %s, want %s\n"
                        "filter [%s] order [%s] per_page %zu\n",
                        (unsigned long long)seed, iter, got,
                        page.runs[i].run_id,
                        got < n_want ? want[got]->id : "(end)", filter,
                        order_by, per_page);
                store_page_free(&page);
                store_read_end(r);
                return 0;
            }
        }
        int more = page.next_page_token[0] != '\0';
        memcpy(token, page.next_page_token, sizeof token);
        store_page_free(&page);
        store_read_end(r);
        if (!more)
            break;
    }
    if (got != n_want) {
        fprintf(stderr,
                "seed %llu iter %d: got %zu rows, want %zu [%s] [%s] "
                "per_page %zu\n",
                (unsigned long long)seed, iter, got, n_want, filter, order_by,
                per_page);
        return 0;
    }
    return 1;
}

static void
random_order(struct rv_rng *g, struct order *o)
{
    o->n = (int)rv_rng_below(g, 4);
    for (int i = 0; i < o->n; i++) {
        o->term[i] = (int)rv_rng_below(g, O_N);
        o->desc[i] = (int)rv_rng_below(g, 2);
    }
}

static int
n_filters(void)
{
    const char *scale = getenv("RV_TEST_SCALE");
    return scale && strcmp(scale, "small") == 0 ? 1000 : 3000;
}

/* ---- Tests ------------------------------------------------------------- */

/* The planner's threshold for ordered indexes, per query: always (every
 * ordered and range plan on this small store), sometimes, or the default. */
static void
random_threshold(struct rv_rng *g)
{
    static const uint64_t mins[] = {0, 40, 200, STORE_ORDERED_SCAN_MIN};
    store_plan_set_ordered_min(mins[rv_rng_below(g, 4)]);
}

/* n random filters, orders, scopes and page sizes against the oracle. */
static void
random_round(struct world *w, uint64_t seed, int n)
{
    struct rv_rng g;
    rv_rng_seed(&g, seed ^ 0x5555);
    int n_nonempty = 0;
    memset(plan_seen, 0, sizeof plan_seen);
    memset(plan_merged, 0, sizeof plan_merged);
    for (int iter = 0; iter < n; iter++) {
        random_threshold(&g);
        struct spec *sp = rv_rng_below(&g, 20) ? gen_spec(&g, 0) : NULL;
        if (sp != NULL && rv_rng_below(&g, 6) == 0) {
            /* A top-level name comparison (the name index's plans). */
            struct spec *and = calloc(1, sizeof *and);
            and->kind = 1;
            and->l = calloc(1, sizeof *and->l);
            and->r = sp;
            static const int name_ops[] = {0, 6, 7, 7};
            and->l->field = F_NAME;
            and->l->op = name_ops[rv_rng_below(&g, 4)];
            and->l->n_strs = 1;
            and->l->strs[0] =
                and->l->op == 0
                    ? NAMES[rv_rng_below(&g, N_NAMES)]
                    : NAME_PATTERNS[rv_rng_below(&g, N_NAME_PATTERNS)];
            sp = and;
        }
        char filter[2048];
        size_t fn = 0;
        filter[0] = '\0';
        if (sp != NULL)
            render(sp, filter, sizeof filter, &fn);
        struct order o;
        random_order(&g, &o);
        struct scope sc = {-1, -1, -1, (enum store_view)rv_rng_below(&g, 3),
                           -1};
        if (rv_rng_below(&g, 4) == 0) /* A principal that sees one team. */
            sc.reader = (int)rv_rng_below(&g, 3);
        if (rv_rng_below(&g, 3) == 0)
            sc.team = (int)rv_rng_below(&g, 3);
        if (rv_rng_below(&g, 3) == 0) {
            sc.project = (int)rv_rng_below(&g, 4);
            if (rv_rng_below(&g, 2))
                sc.exp = (int)rv_rng_below(&g, 3);
        }
        size_t per_page = 1 + (size_t)rv_rng_below(&g, 120);
        int ok = check_query(w, sp, filter, &o, &sc, per_page, seed, iter);
        for (size_t i = 0; sp && i < w->m.n; i++)
            if (in_scope(&w->m.runs[i], &sc) && eval_spec(sp, &w->m.runs[i])) {
                n_nonempty++;
                break;
            }
        spec_free(sp);
        if (!ok) {
            RV_CHECK_FAIL("oracle mismatch (seed %llu, iteration %d)",
                          (unsigned long long)seed, iter);
            break;
        }
    }
    store_plan_set_ordered_min(STORE_ORDERED_SCAN_MIN);
    CHECK(n_nonempty > n / 4); /* The filters are not all trivially empty. */
    for (size_t i = 0; i < N_PLANS; i++)
        fprintf(stderr, "  plan %s: %d, merged %d\n", PLANS[i], plan_seen[i],
                plan_merged[i]);
    for (size_t i = 0; i < N_PLANS; i++) /* Every plan ran, many times. */
        if (plan_seen[i] < n / 100)
            RV_CHECK_FAIL("plan %s chosen %d times in %d queries", PLANS[i],
                          plan_seen[i], n);
    /* Over several teams, the per-team ordered walks and ranges of an
     * unscoped query are merged; one team's never are. */
    static const char *const merged[] = {"metric-order", "metric-range",
                                         "end-order"};
    for (size_t i = 0; i < N_PLANS; i++) {
        int is_merged = 0;
        for (size_t k = 0; k < 3; k++)
            is_merged |= strcmp(PLANS[i], merged[k]) == 0;
        if (one_team    ? plan_merged[i] != 0
            : is_merged ? plan_merged[i] < n / 100
                        : plan_merged[i] != 0)
            RV_CHECK_FAIL("plan %s merged %d times in %d queries", PLANS[i],
                          plan_merged[i], n);
    }
}

static void
test_random_filters_match_the_oracle(void)
{
    struct world w;
    uint64_t seed = rv_test_seed(2024);
    CHECK_OK(world_init(&w, seed, 600), w.errmsg);
    random_round(&w, seed, n_filters());
    world_done(&w);
}

/* One team: unscoped queries read the team-prefixed latest-value index. */
static void
test_random_filters_one_team_match_the_oracle(void)
{
    struct world w;
    uint64_t seed = rv_test_seed(4048);
    one_team = 1;
    CHECK_OK(world_init(&w, seed, 600), w.errmsg);
    random_round(&w, seed, n_filters() / 2);
    one_team = 0;
    world_done(&w);
}

/* The team of the reader of paged walks (a scoped read), -1: every team. */
static int walk_reader = -1;

/* One page of a paged walk against the model: the model's runs that match
 * (match(run, ctx)) and sort strictly after *last in order o; per_page of
 * them, and a next-page token exactly when there are more. Updates *last.
 * Returns whether the page had a token (0 after a failure). */
static int
page_is_models_next(struct world *w, const struct store_page *page,
                    const struct order *o,
                    int (*match)(const struct mrun *m, const void *ctx),
                    const void *ctx, size_t per_page, struct mrun *last,
                    int *has_last, const char *what)
{
    static const struct mrun *all[MAX_RUNS];
    size_t n_all = 0;
    cmp_order = o;
    for (size_t i = 0; i < w->m.n; i++) {
        const struct mrun *m = &w->m.runs[i], *lp = last;
        if ((walk_reader < 0 || m->team == walk_reader) && match(m, ctx) &&
            (!*has_last || cmp_runs(&m, &lp) > 0))
            all[n_all++] = m;
    }
    qsort(all, n_all, sizeof *all, cmp_runs);
    size_t want = n_all < per_page ? n_all : per_page;
    if (page->n_runs != want) {
        RV_CHECK_FAIL("%s: %zu rows, want %zu", what, page->n_runs, want);
        return 0;
    }
    for (size_t i = 0; i < want; i++)
        if (strcmp(page->runs[i].run_id, all[i]->id) != 0) {
            RV_CHECK_FAIL("%s: row %zu is %s, want %s", what, i,
                          page->runs[i].run_id, all[i]->id);
            return 0;
        }
    if (want > 0) {
        *last = *all[want - 1];
        *has_last = 1;
    }
    int more = page->next_page_token[0] != '\0';
    if (more != (n_all > per_page)) {
        RV_CHECK_FAIL("%s: next page token %d with %zu rows left", what, more,
                      n_all);
        return 0;
    }
    return more;
}

/* The filters of the metric-index walk: k < 2 all, 2 acc > 0.3, 3 acc in
 * [0.1, 0.5]. */
static int
acc_case_matches(const struct mrun *m, const void *ctx)
{
    int k = *(const int *)ctx;
    return k < 2 || (m->has_acc && !isnan(m->acc) &&
                     (k == 2 ? m->acc > 0.3 : m->acc <= 0.5 && m->acc >= 0.1));
}

/* Active runs that match the spec ctx. */
static int
active_spec_matches(const struct mrun *m, const void *ctx)
{
    return !m->deleted && eval_spec(ctx, m);
}

/* Log value as the latest acc of run id (a later step than any before). */
static int
log_acc(struct world *w, const char *id, int64_t step, double value)
{
    Rv__Command c = RV__COMMAND__INIT;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m;
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    if (proto_metrics_add(&mb, "acc", NULL, step, step, value, NULL) != RV_OK)
        abort();
    proto_metrics_view(&mb, &m);
    lb.run_id = (char *)id;
    lb.metrics = &m;
    c.body_case = RV__COMMAND__BODY_LOG_BATCH;
    c.log_batch = &lb;
    Rv__Command *cmds[1] = {&c};
    int rc = apply_batch(w, cmds, 1);
    proto_metrics_free(&mb);
    return rc;
}

/* Delete (if active) and purge run id. */
static int
purge_run(struct world *w, const struct mrun *r)
{
    Rv__Command c1 = RV__COMMAND__INIT, c2 = RV__COMMAND__INIT;
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = (char *)r->id;
    c1.body_case = RV__COMMAND__BODY_RUN_DELETE;
    c1.run_delete = &ref;
    c2.body_case = RV__COMMAND__BODY_RUN_PURGE;
    c2.run_purge = &ref;
    Rv__Command *cmds[2] = {&c1, &c2};
    return r->deleted ? apply_batch(w, cmds + 1, 1) : apply_batch(w, cmds, 2);
}

/* Close the store, then (with is_rebuilt) rebuild its index from the
 * vlog, verify it, and open it again: both give the digest it had. */
static void
reopen_checked(struct world *w, int is_rebuilt)
{
    uint8_t digest[STORE_DIGEST_BYTES];
    struct store_check chk;
    store_digest(w->s, digest);
    CHECK_OK(store_sync(w->s, w->errmsg), w->errmsg);
    store_close(w->s);
    w->s = NULL;
    if (is_rebuilt) {
        CHECK_OK(store_rebuild_index(w->dir, NULL, &chk, w->errmsg), w->errmsg);
        CHECK(memcmp(chk.computed_digest, digest, sizeof digest) == 0);
    }
    CHECK_OK(store_verify(w->dir, NULL, &chk, w->errmsg), w->errmsg);
    CHECK(chk.is_digest_equal &&
          memcmp(chk.computed_digest, digest, sizeof digest) == 0);
    struct store_config cfg = {w->dir, (size_t)1 << 30, 0, NULL, NULL};
    CHECK_OK(store_open(&w->s, &cfg, w->errmsg), w->errmsg);
}

/* One query in its own read as team (STORE_EVERY_TEAM: all). */
static int
query_once(struct world *w, const char *team, const struct store_query *q,
           struct store_page *page)
{
    struct store_read *r;
    int rc = store_read_begin(w->s, team, &r, w->errmsg);
    if (rc != RV_OK)
        return rc;
    rc = store_query_runs(r, q, page, w->errmsg);
    store_read_end(r);
    return rc;
}

/* A paged walk against the model: the query (filter, order, view, page
 * size), the plan every page must name, the model's matching rule, and
 * the changes made between pages (returns an RV_* code). */
struct walk {
    const char *filter, *order_by, *plan;
    enum store_view view;
    size_t per_page;
    struct order o;
    int (*match)(const struct mrun *m, const void *ctx);
    const void *match_ctx;
    int (*between)(struct world *w, struct rv_rng *g, void *ctx);
    void *between_ctx;
};

/* Page through wk to the end (at most 60 pages), each page checked
 * against the model as it is at that moment. */
static void
walk_pages(struct world *w, const struct walk *wk, struct rv_rng *g)
{
    static char token[CONTRACT_PAGE_TOKEN_BYTES];
    struct mrun last;
    int has_last = 0;
    token[0] = '\0';
    for (int page_no = 0; page_no < 60; page_no++) {
        struct store_query q = {.order_by = wk->order_by,
                                .filter = wk->filter,
                                .view = wk->view,
                                .per_page = wk->per_page,
                                .page_token = token[0] ? token : NULL};
        struct store_page page;
        CHECK_OK(
            query_once(w,
                       walk_reader >= 0 ? TEAMS[walk_reader] : STORE_EVERY_TEAM,
                       &q, &page),
            w->errmsg);
        if (strcmp(page.plan, wk->plan) != 0)
            RV_CHECK_FAIL("[%s] [%s] page %d: plan %s, want %s", wk->filter,
                          wk->order_by, page_no, page.plan, wk->plan);
        int more =
            page_is_models_next(w, &page, &wk->o, wk->match, wk->match_ctx,
                                wk->per_page, &last, &has_last, wk->filter);
        memcpy(token, page.next_page_token, sizeof token);
        store_page_free(&page);
        if (!more)
            break;
        CHECK_OK(wk->between(w, g, wk->between_ctx), w->errmsg);
    }
}

/* A world of 400 runs in one team (is_one_team) or three (unscoped
 * queries merge the teams' walks of the team-prefixed indexes), g seeded
 * from the test's seed, and the ordered plans on at any list size. */
static int
walk_world(struct world *w, struct rv_rng *g, uint64_t default_seed,
           int is_one_team)
{
    uint64_t seed = rv_test_seed(default_seed);
    one_team = is_one_team;
    int rc = world_init(w, seed, 400);
    one_team = 0;
    rv_rng_seed(g, seed + 7);
    store_plan_set_ordered_min(0);
    return rc;
}

/* Purge a random run of the model (when it has more than 50). */
static int
purge_random(struct world *w, struct rv_rng *g)
{
    if (w->m.n <= 50)
        return RV_OK;
    size_t at = rv_rng_below(g, w->m.n);
    int rc = purge_run(w, &w->m.runs[at]);
    if (rc == RV_OK)
        w->m.runs[at] = w->m.runs[--w->m.n];
    return rc;
}

/* Between metric pages: new latest values (NaN too), a first value for
 * runs that had none, and purges. ctx: the next step. */
static int
between_acc(struct world *w, struct rv_rng *g, void *ctx)
{
    int64_t *step = ctx;
    int rc = RV_OK;
    for (int i = 0; rc == RV_OK && i < 12; i++) {
        struct mrun *m = &w->m.runs[rv_rng_below(g, w->m.n)];
        if (m->deleted)
            continue; /* A deleted run takes no points. */
        double v =
            rv_rng_below(g, 8) == 0 ? NAN : (double)rv_rng_below(g, 20) / 20.0;
        rc = log_acc(w, m->id, (*step)++, v);
        m->has_acc = 1;
        m->acc = v;
    }
    for (int i = 0; rc == RV_OK && i < 2; i++)
        rc = purge_random(w, g);
    return rc;
}

/* Pages of ORDER BY metrics.acc through the latest-value index while the
 * latest values change (also to and from NaN) and runs are purged between
 * pages: each page holds exactly the rows after the token's row in the
 * order of the store at that moment; at the end the index still verifies
 * (a rebuild from the vlog gives the same digest). */
static void
metric_walks(struct world *w, struct rv_rng *g, const char *plan)
{
    const char *orders[] = {"metrics.acc DESC", "metrics.acc",
                            "metrics.acc DESC", "metrics.acc"};
    const char *filters[] = {"", "", "metrics.acc > 0.3",
                             "metrics.acc <= 0.5 AND metrics.acc >= 0.1"};
    static int64_t step = 10;
    for (int k = 0; k < 4; k++) {
        struct walk wk = {filters[k],
                          orders[k],
                          plan,
                          STORE_VIEW_ALL,
                          25,
                          {{O_ACC}, {k % 2 == 0}, 1},
                          acc_case_matches,
                          &k,
                          between_acc,
                          &step};
        walk_pages(w, &wk, g);
    }
}

/* The same over one team, over three teams (the teams' walks merged: the
 * values tie across teams), and read by a principal of one of the three
 * (its own team's walk only, never another team's run). */
static void
test_metric_index_pages_while_values_change_and_runs_purge(void)
{
    struct world w;
    struct rv_rng g;
    for (int teams = 0; teams < 2; teams++) {
        CHECK_OK(walk_world(&w, &g, 909 + (uint64_t)teams, teams == 0),
                 w.errmsg);
        metric_walks(&w, &g, teams == 0 ? "metric-order" : "metric-order*3");
        /* The walk (merged or not) stops after a page and its ties. */
        struct store_page page;
        struct store_query q = {.order_by = "metrics.acc DESC",
                                .view = STORE_VIEW_ALL,
                                .per_page = 10};
        CHECK_OK(query_once(&w, STORE_EVERY_TEAM, &q, &page), w.errmsg);
        CHECK(page.n_runs == 10 && page.n_examined < w.m.n / 4);
        store_page_free(&page);
        if (teams == 1) {
            walk_reader = 1;
            metric_walks(&w, &g, "metric-order");
            walk_reader = -1;
        }
        store_plan_set_ordered_min(STORE_ORDERED_SCAN_MIN);
        reopen_checked(&w, 0);
        if (w.s != NULL)
            world_done(&w);
    }
}

/* One command on run id: a rename (name not NULL), else a delete. */
static int
rename_or_delete(struct world *w, const char *id, const char *name)
{
    Rv__Command c = RV__COMMAND__INIT;
    Rv__RunUpdate u = RV__RUN_UPDATE__INIT;
    Rv__RunRef ref = RV__RUN_REF__INIT;
    if (name != NULL) {
        u.run_id = (char *)id;
        u.name = (char *)name;
        c.body_case = RV__COMMAND__BODY_RUN_UPDATE;
        c.run_update = &u;
    } else {
        ref.run_id = (char *)id;
        c.body_case = RV__COMMAND__BODY_RUN_DELETE;
        c.run_delete = &ref;
    }
    Rv__Command *cmds[1] = {&c};
    return apply_batch(w, cmds, 1);
}

/* Between name pages: renames (into and out of the filter, case
 * variants), a delete and a purge. */
static int
between_names(struct world *w, struct rv_rng *g, void *ctx)
{
    int rc = RV_OK;
    (void)ctx;
    for (int i = 0; rc == RV_OK && i < 6; i++) {
        struct mrun *m = &w->m.runs[rv_rng_below(g, w->m.n)];
        if (m->deleted)
            continue; /* A deleted run cannot be renamed. */
        int to = (int)rv_rng_below(g, N_NAMES);
        rc = rename_or_delete(w, m->id, NAMES[to]);
        m->name = to;
    }
    struct mrun *d = &w->m.runs[rv_rng_below(g, w->m.n)];
    if (rc == RV_OK && !d->deleted) {
        rc = rename_or_delete(w, d->id, NULL);
        d->deleted = 1;
    }
    return rc == RV_OK ? purge_random(w, g) : rc;
}

/* Pages of run-name filters through the name index while runs are
 * renamed, deleted and purged between pages: each page holds exactly the
 * matching rows after the token's row at that moment. A team's reader
 * examines only its own team's entries. At the end, a rebuild from the
 * vlog gives the same digest and verify agrees. */
static void
test_name_index_pages_while_runs_are_renamed_and_purged(void)
{
    struct world w;
    struct rv_rng g;
    uint64_t seed = rv_test_seed(5150);
    CHECK_OK(world_init(&w, seed, 500), w.errmsg);
    rv_rng_seed(&g, seed + 3);
    static const struct {
        int op; /* As struct spec: 0 =, 6 LIKE, 7 ILIKE. */
        const char *val, *order, *plan;
        int term, desc;
    } cases[] = {
        {0, "alpha", "", "name", -1, 0},
        {7, "X_y", "", "name-folded", -1, 0},
        {7, "al%", "", "created", -1, 0},
        {6, "al%", "run_name DESC", "name", O_NAME, 1},
        {7, "AL%", "run_name", "name-folded", O_NAME, 0},
        /* Not selective enough: the teams' metric walks, merged. */
        {6, "alpha_%", "metrics.loss", "metric-order*3", O_LOSS, 0},
        {7, "B", "start_time", "name-folded", O_CREATED, 0},
        {7, "a%", "start_time", "created", O_CREATED, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct spec sp = {0};
        sp.field = F_NAME;
        sp.op = cases[k].op;
        sp.strs[0] = cases[k].val;
        sp.n_strs = 1;
        char filter[256];
        size_t fn = 0;
        render(&sp, filter, sizeof filter, &fn);
        struct walk wk = {
            filter,
            cases[k].order,
            cases[k].plan,
            STORE_VIEW_ACTIVE,
            7,
            {{cases[k].term}, {cases[k].desc}, cases[k].term >= 0},
            active_spec_matches,
            &sp,
            between_names,
            NULL};
        walk_pages(&w, &wk, &g);
    }
    /* A team's reader: its own entries only (deleted ones too). */
    struct store_page page;
    struct store_query q = {.filter = "run_name = 'alpha'",
                            .view = STORE_VIEW_ALL,
                            .per_page = 1000};
    uint64_t n_team = 0;
    for (size_t i = 0; i < w.m.n; i++)
        n_team += w.m.runs[i].team == 1 && w.m.runs[i].name == 0;
    CHECK_OK(query_once(&w, TEAMS[1], &q, &page), w.errmsg);
    CHECK(strcmp(page.plan, "name") == 0);
    CHECK(page.n_runs == n_team && page.n_examined == n_team);
    store_page_free(&page);
    reopen_checked(&w, 1);
    if (w.s == NULL)
        return;
    /* The rebuilt index answers like the one built by apply. */
    CHECK_OK(query_once(&w, TEAMS[1], &q, &page), w.errmsg);
    CHECK(strcmp(page.plan, "name") == 0 && page.n_runs == n_team);
    store_page_free(&page);
    world_done(&w);
}

/* Set the status of run id to FINISHED (ended at ended, 0: none) or, with
 * is_running, back to RUNNING (no end time). */
static int
set_status(struct world *w, const char *id, int is_running, int64_t ended)
{
    Rv__Command c = RV__COMMAND__INIT;
    Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
    st.run_id = (char *)id;
    st.status = is_running ? RV__RUN_STATUS__RUNNING : RV__RUN_STATUS__FINISHED;
    st.has_ended_at_ms = ended != 0;
    st.ended_at_ms = ended;
    c.body_case = RV__COMMAND__BODY_RUN_STATUS;
    c.run_status = &st;
    Rv__Command *cmds[1] = {&c};
    return apply_batch(w, cmds, 1);
}

/* Active runs (the end-time walk's filter is in ctx: 0 none, 1 ended in
 * [2050, 2150], 2 end_time < 2100, which runs not ended match). */
static int
end_case_matches(const struct mrun *m, const void *ctx)
{
    int k = *(const int *)ctx;
    if (m->deleted)
        return 0;
    return k == 0 ||
           (k == 1 ? m->ended >= 2050 && m->ended <= 2150 : m->ended < 2100);
}

/* Between end-time pages: runs end, end again at another time, or go
 * back to running. */
static int
between_ends(struct world *w, struct rv_rng *g, void *ctx)
{
    int rc = RV_OK;
    (void)ctx;
    for (int i = 0; rc == RV_OK && i < 8; i++) {
        struct mrun *m = &w->m.runs[rv_rng_below(g, w->m.n)];
        if (m->deleted)
            continue; /* A deleted run keeps its status. */
        int is_running = rv_rng_below(g, 4) == 0;
        int64_t ended = is_running ? 0 : 2000 + (int64_t)rv_rng_below(g, 200);
        rc = set_status(w, m->id, is_running, ended);
        m->status = is_running ? 0 : 2;
        m->ended = ended;
    }
    return rc;
}

/* Pages of ORDER BY end_time through the end-time index (one team) while
 * runs end, end again at another time and go back to running between
 * pages; then rebuild and verify. */
static void
end_walks(struct world *w, struct rv_rng *g, const char *plan)
{
    static const char *const filters[] = {
        "", "end_time >= 2050 AND end_time <= 2150", "end_time < 2100"};
    for (int k = 0; k < 6; k++) {
        int fk = k % 3, desc = k >= 3;
        struct walk wk = {filters[fk],
                          desc ? "end_time DESC" : "end_time",
                          plan,
                          STORE_VIEW_ACTIVE,
                          20,
                          {{O_ENDED}, {desc}, 1},
                          end_case_matches,
                          &fk,
                          between_ends,
                          NULL};
        walk_pages(w, &wk, g);
    }
}

/* The same over one team, three teams (merged) and a reader of one. */
static void
test_end_index_pages_while_runs_end_and_restart(void)
{
    struct world w;
    struct rv_rng g;
    for (int teams = 0; teams < 2; teams++) {
        CHECK_OK(walk_world(&w, &g, 6060 + (uint64_t)teams, teams == 0),
                 w.errmsg);
        end_walks(&w, &g, teams == 0 ? "end-order" : "end-order*3");
        if (teams == 1) {
            walk_reader = 2;
            end_walks(&w, &g, "end-order");
            walk_reader = -1;
        }
        store_plan_set_ordered_min(STORE_ORDERED_SCAN_MIN);
        reopen_checked(&w, 1);
        if (w.s != NULL)
            world_done(&w);
    }
}

static void
test_keyset_pages_stay_correct_while_runs_are_added(void)
{
    struct world w;
    struct rv_rng g;
    uint64_t seed = rv_test_seed(77);
    CHECK_OK(world_init(&w, seed, 300), w.errmsg);
    rv_rng_seed(&g, seed + 1);
    const char *orders[] = {"", "metrics.acc DESC", "params.opt, status"};
    for (int k = 0; k < 3; k++) {
        struct store_query q = {.order_by = orders[k], .per_page = 40};
        struct store_read *r;
        struct store_page page;
        CHECK_OK(store_read_begin(w.s, STORE_EVERY_TEAM, &r, w.errmsg),
                 w.errmsg);
        CHECK_OK(store_query_runs(r, &q, &page, w.errmsg), w.errmsg);
        CHECK(page.n_runs == 40 && page.next_page_token[0] != '\0');
        static char token[CONTRACT_PAGE_TOKEN_BYTES];
        memcpy(token, page.next_page_token, sizeof token);
        char last_id[16];
        snprintf(last_id, sizeof last_id, "%s", page.runs[39].run_id);
        store_page_free(&page);
        store_read_end(r);
        /* Add 60 runs, some sorting before the token row, some after. */
        for (int i = 0; i < 60; i++) {
            struct mrun *nr = &w.m.runs[w.m.n];
            gen_run(&g, 700 + (size_t)k * 60 + (size_t)i, nr);
            nr->deleted = 0;
            CHECK_OK(store_add_run(&w, nr), w.errmsg);
            w.m.n++;
        }
        /* Expected: every active run strictly after the token row. */
        struct order o = {{0}, {0}, 0};
        if (k == 1) {
            o.n = 1;
            o.term[0] = O_ACC;
            o.desc[0] = 1;
        } else if (k == 2) {
            o.n = 2;
            o.term[0] = O_OPT;
            o.term[1] = O_STATUS;
        }
        static const struct mrun *all[MAX_RUNS];
        size_t n_all = 0, at = SIZE_MAX;
        for (size_t i = 0; i < w.m.n; i++)
            if (!w.m.runs[i].deleted)
                all[n_all++] = &w.m.runs[i];
        cmp_order = &o;
        qsort(all, n_all, sizeof *all, cmp_runs);
        for (size_t i = 0; i < n_all; i++)
            if (strcmp(all[i]->id, last_id) == 0)
                at = i;
        CHECK(at != SIZE_MAX);
        q.page_token = token;
        q.per_page = 1000;
        CHECK_OK(store_read_begin(w.s, STORE_EVERY_TEAM, &r, w.errmsg),
                 w.errmsg);
        CHECK_OK(store_query_runs(r, &q, &page, w.errmsg), w.errmsg);
        CHECK(page.n_runs == n_all - at - 1);
        for (size_t i = 0; i < page.n_runs; i++)
            CHECK(strcmp(page.runs[i].run_id, all[at + 1 + i]->id) == 0);
        store_page_free(&page);
        store_read_end(r);
    }
    world_done(&w);
}

static void
test_bad_queries_are_clear_errors(void)
{
    struct world w;
    struct store_read *r;
    struct store_page page;
    CHECK_OK(world_init(&w, 5, 50), w.errmsg);
    CHECK_OK(store_read_begin(w.s, STORE_EVERY_TEAM, &r, w.errmsg), w.errmsg);
    struct store_query q = {.filter = "metrics.acc >"};
    CHECK_RC(store_query_runs(r, &q, &page, w.errmsg), RV_EPARSE, w.errmsg);
    CHECK(strstr(w.errmsg, "position") != NULL);
    q.filter = NULL;
    q.order_by = "metrics.acc SIDEWAYS";
    CHECK_RC(store_query_runs(r, &q, &page, w.errmsg), RV_EPARSE, w.errmsg);
    q.order_by = NULL;
    q.per_page = 1001;
    CHECK_RC(store_query_runs(r, &q, &page, w.errmsg), RV_EINVAL, w.errmsg);
    q.per_page = 10;
    const char *bad_tokens[] = {"zz", "abc", "00", "01ffffffffffffffff",
                                "not hex at all"};
    for (size_t i = 0; i < 5; i++) {
        q.page_token = bad_tokens[i];
        CHECK_RC(store_query_runs(r, &q, &page, w.errmsg), RV_EINVAL, w.errmsg);
    }
    /* A token from another query, and a truncated one. */
    q.page_token = NULL;
    CHECK_OK(store_query_runs(r, &q, &page, w.errmsg), w.errmsg);
    static char token[CONTRACT_PAGE_TOKEN_BYTES];
    memcpy(token, page.next_page_token, sizeof token);
    store_page_free(&page);
    CHECK(token[0] != '\0');
    struct store_query q2 = q;
    q2.filter = "status = 'RUNNING'";
    q2.page_token = token;
    CHECK_RC(store_query_runs(r, &q2, &page, w.errmsg), RV_EINVAL, w.errmsg);
    CHECK(strstr(w.errmsg, "another query") != NULL);
    token[strlen(token) - 2] = '\0';
    q.page_token = token;
    CHECK_RC(store_query_runs(r, &q, &page, w.errmsg), RV_EINVAL, w.errmsg);
    store_read_end(r);
    world_done(&w);
}

static void
test_analytics_match_the_model(void)
{
    struct world w;
    uint64_t seed = rv_test_seed(31);
    CHECK_OK(world_init(&w, seed, 400), w.errmsg);
    struct store_read *r;
    CHECK_OK(store_read_begin(w.s, STORE_EVERY_TEAM, &r, w.errmsg), w.errmsg);
    for (int scope = 0; scope < 3; scope++) {
        const char *team = scope >= 1 ? TEAMS[1] : NULL;
        const char *proj = scope == 2 ? PROJECTS[2] : NULL;
        for (int grp = 0; grp < 3; grp++) {
            struct store_count *cs;
            size_t n;
            CHECK_OK(store_analytics(r, (enum store_group)grp, team, proj, &cs,
                                     &n, w.errmsg),
                     w.errmsg);
            uint64_t total = 0;
            for (size_t i = 0; i < n; i++) {
                uint64_t want = 0;
                for (size_t k = 0; k < w.m.n; k++) {
                    const struct mrun *m = &w.m.runs[k];
                    if (m->deleted || (team && m->team != 1) ||
                        (proj && m->project != 2))
                        continue;
                    const char *label = grp == 0   ? STATUS[m->status]
                                        : grp == 1 ? PROJECTS[m->project]
                                                   : "1970-01-01";
                    want += strcmp(label, cs[i].label) == 0;
                }
                CHECK(cs[i].n == want);
                if (i > 0)
                    CHECK(strcmp(cs[i - 1].label, cs[i].label) < 0);
                total += cs[i].n;
            }
            uint64_t active = 0;
            for (size_t k = 0; k < w.m.n; k++)
                active += !w.m.runs[k].deleted &&
                          (!team || w.m.runs[k].team == 1) &&
                          (!proj || w.m.runs[k].project == 2);
            CHECK(total == active);
            store_counts_free(cs, n);
        }
    }
    struct store_count *cs;
    size_t n;
    CHECK_RC(
        store_analytics(r, STORE_GROUP_STATUS, NULL, "p0", &cs, &n, w.errmsg),
        RV_EINVAL, w.errmsg);
    store_read_end(r);
    world_done(&w);
}

static const struct rv_test tests[] = {
    {"random_filters_match_the_oracle", test_random_filters_match_the_oracle},
    {"random_filters_one_team_match_the_oracle",
     test_random_filters_one_team_match_the_oracle},
    {"metric_index_pages_while_values_change_and_runs_purge",
     test_metric_index_pages_while_values_change_and_runs_purge},
    {"name_index_pages_while_runs_are_renamed_and_purged",
     test_name_index_pages_while_runs_are_renamed_and_purged},
    {"end_index_pages_while_runs_end_and_restart",
     test_end_index_pages_while_runs_end_and_restart},
    {"keyset_pages_stay_correct_while_runs_are_added",
     test_keyset_pages_stay_correct_while_runs_are_added},
    {"bad_queries_are_clear_errors", test_bad_queries_are_clear_errors},
    {"analytics_match_the_model", test_analytics_match_the_model},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
