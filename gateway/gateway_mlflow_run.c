/* MLflow's runs endpoints (DESIGN Appendix B.2): create, get, update,
 * delete, restore, search. A run of MLflow experiment N is a runvault run
 * in N's (team, project, experiment); run_name is the run's name and the
 * mlflow.runName tag, user_id its user, start_time its creation time. */
#include "base/clock.h"
#include "base/parse.h"
#include "gateway/gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_MLF_MAX_RESULTS    50000 /* MLflow's limit for runs/search. */
#define GW_MLF_SEARCH_EXP_MAX 100   /* Experiments in one runs/search. */

/* 32 lower-case hex digits, as MLflow's run ids (a random UUID's). */
static void
gw__mlf_make_run_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[16];
    if (rv_random_bytes(raw, sizeof raw) != RV_OK) {
        uint64_t a = rv_random_id(raw), b = rv_random_id(&a);
        memcpy(raw, &a, 8);
        memcpy(raw + 8, &b, 8);
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
}

static const char *
gw__mlf_tag_of(Rv__KV **tags, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(tags[i]->key, key) == 0)
            return tags[i]->value;
    return NULL;
}

/* POST runs/create {"experiment_id"?,"user_id"?,"run_name"?,"start_time"?,
 * "tags"?} */
void
gw_mlf_run_create(struct gw_ctx *c)
{
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunCreate rc = RV__RUN_CREATE__INIT;
    struct gw_mlx e;
    char run_id[33], made_name[48];
    const char *exp_s, *user, *name;
    int64_t start = 0;
    int has_start;
    uint64_t exp_id = 0;
    Rv__KV **tags;
    size_t n_tags;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_str(c, j, "experiment_id", 0, 24, &exp_s) != 0 ||
        (exp_s != NULL && gw__mlf_exp_id(c, exp_s, &exp_id) != 0) ||
        gw__mlf_str(c, j, "user_id", 0, CONTRACT_MAX_SCOPE_BYTES, &user) != 0 ||
        gw__mlf_str(c, j, "run_name", 0, CONTRACT_MAX_NAME_BYTES, &name) != 0 ||
        gw__mlf_i64(c, j, "start_time", 0, INT64_MAX, &start, &has_start) !=
            0 ||
        gw__mlf_tags(c, j, "tags", CONTRACT_MAX_TAGS_PER_COMMAND - 1, &tags,
                     &n_tags) != 0 ||
        gw__mlf_exp_by_id(c, exp_id, &e, NULL) != 0)
        goto out;
    if (e.is_deleted) {
        gw__reject(c, RV_EINVAL,
                   "Could not create run under non-active experiment with "
                   "id %llu.",
                   (unsigned long long)e.id);
        goto out;
    }
    gw__mlf_make_run_id(run_id);
    const char *tag_name = gw__mlf_tag_of(tags, n_tags, "mlflow.runName");
    if (name == NULL || name[0] == '\0')
        name = tag_name;
    if (name == NULL || name[0] == '\0') {
        snprintf(made_name, sizeof made_name, "run-%.8s", run_id);
        name = made_name;
    }
    if (tag_name != NULL && strcmp(tag_name, name) != 0) {
        gw__reject(c, RV_EINVAL,
                   "Both 'run_name' argument and 'mlflow.runName' tag are "
                   "specified, but with different values (run_name='%.100s', "
                   "mlflow.runName='%.100s').",
                   name, tag_name);
        goto out;
    }
    /* mlflow.runName joins the tags when the request lacks it. */
    Rv__KV name_kv = RV__KV__INIT;
    Rv__KV **all = gw__alloc(c, (n_tags + 1) * sizeof *all);
    if (all == NULL) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        goto out;
    }
    if (n_tags > 0)
        memcpy(all, tags, n_tags * sizeof *all);
    if (tag_name == NULL) {
        name_kv.key = "mlflow.runName";
        name_kv.value = (char *)name;
        all[n_tags++] = &name_kv;
    }
    rc.run_id = run_id;
    rc.team = e.team;
    rc.project = e.project;
    rc.experiment = e.experiment;
    rc.name = (char *)name;
    rc.user =
        (char *)(user != NULL ? user
                              : gw__mlf_tag_of(all, n_tags, "mlflow.user"));
    rc.created_at_ms = has_start ? start : (int64_t)rv_clock_wall_ms();
    rc.tags = all;
    rc.n_tags = n_tags;
    rc.has_resume = 1;
    rc.resume = RV__RESUME__RESUME_NEVER;
    if (gw__stamp(c, &cmd) != 0)
        goto out;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &rc;
    if (gw__write(c, cmds, 1) != NULL)
        gw__mlf_reply_run(c, run_id, 0);
out:
    json_decref(j);
}

/* GET runs/get?run_id= */
void
gw_mlf_run_get(struct gw_ctx *c)
{
    const char *run_id;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_run_id(c, j, &run_id) == 0)
        gw__mlf_reply_run(c, run_id, 0);
    json_decref(j);
}

/* POST runs/update {"run_id","status"?,"end_time"?,"run_name"?} ->
 * {"run_info"} */
void
gw_mlf_run_update(struct gw_ctx *c)
{
    Rv__Command cs = RV__COMMAND__INIT, cu = RV__COMMAND__INIT,
                ct = RV__COMMAND__INIT, *cmds[3];
    Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
    Rv__RunUpdate up = RV__RUN_UPDATE__INIT;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__KV kv = RV__KV__INIT, *kvs[1] = {&kv};
    const char *run_id, *status, *name;
    int64_t end = 0;
    int has_end;
    size_t n = 0;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_run_id(c, j, &run_id) != 0 ||
        gw__mlf_str(c, j, "status", 0, 16, &status) != 0 ||
        gw__mlf_str(c, j, "run_name", 0, CONTRACT_MAX_NAME_BYTES, &name) != 0 ||
        gw__mlf_i64(c, j, "end_time", 0, INT64_MAX, &end, &has_end) != 0)
        goto out;
    if (status != NULL && gw__mlf_status_parse(status, &st.status) != 0) {
        gw__reject(c, RV_EINVAL,
                   "Invalid value '%.16s' for parameter 'status': RUNNING, "
                   "SCHEDULED, FINISHED, FAILED or KILLED",
                   status);
        goto out;
    }
    if (status == NULL && has_end) {
        /* An end time alone keeps the status: read it. */
        Rv__Request req = RV__REQUEST__INIT;
        Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
        gr.run_id = (char *)run_id;
        req.body_case = RV__REQUEST__BODY_GET_RUN;
        req.get_run = &gr;
        const Rv__Response *r = gw__call(c, &req);
        if (r == NULL)
            goto out;
        if (r->run == NULL) {
            gw__reject(c, RV_ENOTFOUND, "Run '%.64s' not found", run_id);
            goto out;
        }
        st.status = r->run->status;
        status = "";
    }
    if (status != NULL) {
        st.run_id = (char *)run_id;
        st.has_ended_at_ms = has_end;
        st.ended_at_ms = end;
        if (gw__stamp(c, &cs) != 0)
            goto out;
        cs.body_case = RV__COMMAND__BODY_RUN_STATUS;
        cs.run_status = &st;
        cmds[n++] = &cs;
    }
    if (name != NULL && name[0] != '\0') {
        up.run_id = lb.run_id = (char *)run_id;
        up.name = (char *)name;
        kv.key = "mlflow.runName";
        kv.value = (char *)name;
        lb.tags = kvs;
        lb.n_tags = 1;
        if (gw__stamp(c, &cu) != 0 || gw__stamp(c, &ct) != 0)
            goto out;
        cu.body_case = RV__COMMAND__BODY_RUN_UPDATE;
        cu.run_update = &up;
        ct.body_case = RV__COMMAND__BODY_LOG_BATCH;
        ct.log_batch = &lb;
        cmds[n++] = &cu;
        cmds[n++] = &ct;
    }
    if (n == 0 || gw__write(c, cmds, n) != NULL)
        gw__mlf_reply_run(c, run_id, 1);
out:
    json_decref(j);
}

static void
gw__mlf_run_ref(struct gw_ctx *c, Rv__Command__BodyCase body)
{
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunRef ref = RV__RUN_REF__INIT;
    const char *run_id;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_run_id(c, j, &run_id) != 0 || gw__stamp(c, &cmd) != 0)
        goto out;
    ref.run_id = (char *)run_id;
    cmd.body_case = body;
    if (body == RV__COMMAND__BODY_RUN_DELETE)
        cmd.run_delete = &ref;
    else
        cmd.run_restore = &ref;
    if (gw__write(c, cmds, 1) != NULL)
        gw__mlf_reply_empty(c);
out:
    json_decref(j);
}

void
gw_mlf_run_delete(struct gw_ctx *c)
{
    gw__mlf_run_ref(c, RV__COMMAND__BODY_RUN_DELETE);
}

void
gw_mlf_run_restore(struct gw_ctx *c)
{
    gw__mlf_run_ref(c, RV__COMMAND__BODY_RUN_RESTORE);
}

/* ---- runs/search ----------------------------------------------------------
 */

/* Append s as a quoted filter string ('' for a quote). */
static void
gw__mlf_quote(struct rv_buf *b, const char *s)
{
    rv_buf_append_u8(b, '\'');
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            rv_buf_append_u8(b, '\'');
        rv_buf_append_u8(b, (uint8_t)*s);
    }
    rv_buf_append_u8(b, '\'');
}

/* The experiments of a search, read once: their scopes and ids. */
struct gw_mlf_scope {
    struct gw_mlx e[GW_MLF_SEARCH_EXP_MAX];
    size_t n;
};

static uint64_t
gw__mlf_scope_id(const struct gw_mlf_scope *s, const Rv__RunInfo *ri)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].project, ri->project ? ri->project : "") == 0 &&
            strcmp(s->e[i].experiment, ri->experiment ? ri->experiment : "") ==
                0)
            return s->e[i].id;
    return 0;
}

/* Read the experiments of ids (missing ones are skipped, as MLflow). */
static int
gw__mlf_scopes(struct gw_ctx *c, json_t *ids, struct gw_mlf_scope *s)
{
    s->n = 0;
    if (ids == NULL || json_is_null(ids))
        return 0;
    if (json_is_string(ids)) { /* A GET's one value. */
        json_t *a = json_array();
        json_array_append(a, ids);
        int rc = gw__mlf_scopes(c, a, s);
        json_decref(a);
        return rc;
    }
    if (!json_is_array(ids))
        return gw__reject(c, RV_EINVAL, "'experiment_ids' must be an array");
    if (json_array_size(ids) > GW_MLF_SEARCH_EXP_MAX)
        return gw__reject(c, RV_EINVAL,
                          "at most %d experiment_ids in one search",
                          GW_MLF_SEARCH_EXP_MAX);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *v = json_string_value(json_array_get(ids, i));
        uint64_t id;
        if (v == NULL)
            return gw__reject(c, RV_EINVAL,
                              "experiment_ids[%zu] must be a string", i);
        if (gw__mlf_exp_id(c, v, &id) != 0)
            return -1;
        Rv__MlflowExperimentsRequest m = RV__MLFLOW_EXPERIMENTS_REQUEST__INIT;
        Rv__Request req = RV__REQUEST__INIT;
        Rv__ReadOptions ro;
        if (gw__read_options(c, &req, &ro) != 0)
            return -1;
        m.has_experiment_id = 1;
        m.experiment_id = id;
        req.body_case = RV__REQUEST__BODY_MLFLOW_EXPERIMENTS;
        req.mlflow_experiments = &m;
        const Rv__Response *r = gw__call_quiet(c, &req);
        if (r->code == RV_ENOTFOUND)
            continue; /* MLflow searches the experiments that exist. */
        if (r->code != RV_OK) {
            gw_reply_error(c->x, (int)r->code, r->message);
            return -1;
        }
        if (r->n_experiments == 1)
            gw__mlx_set(&s->e[s->n++], r->experiments[0]);
    }
    return 0;
}

/* POST runs/search {"experiment_ids","filter"?,"run_view_type"?,
 * "max_results"?,"order_by"?,"page_token"?} */
void
gw_mlf_run_search(struct gw_ctx *c)
{
    struct gw_mlf_scope *sc = gw__alloc(c, sizeof *sc);
    struct rv_buf filter, order;
    const char *user_filter, *token;
    int64_t max = 1000;
    Rv__RunView view;
    json_t *j = gw__mlf_args(c), *runs = json_array();
    rv_buf_init(&filter);
    rv_buf_init(&order);
    if (j == NULL || sc == NULL || runs == NULL) {
        if (j != NULL)
            gw_reply_error(c->x, RV_ENOMEM, NULL);
        goto out;
    }
    if (gw__mlf_str(c, j, "filter", 0, CONTRACT_MAX_FILTER_BYTES / 2,
                    &user_filter) != 0 ||
        gw__mlf_str(c, j, "page_token", 0, CONTRACT_PAGE_TOKEN_BYTES - 1,
                    &token) != 0 ||
        gw__mlf_view(c, j, "run_view_type", &view) != 0)
        goto out;
    json_t *mr = json_object_get(j, "max_results");
    if (mr != NULL && !json_is_null(mr)) {
        int64_t v = 0;
        int ok = json_is_integer(mr) ||
                 (json_is_string(mr) &&
                  rv_parse_i64(json_string_value(mr), &v) == 0);
        if (json_is_integer(mr))
            v = (int64_t)json_integer_value(mr);
        if (!ok || v < 1 || v > GW_MLF_MAX_RESULTS) {
            gw__reject(c, RV_EINVAL,
                       "Invalid value for request parameter max_results. It "
                       "must be at most %d, and a positive integer",
                       GW_MLF_MAX_RESULTS);
            goto out;
        }
        max = v;
    }
    json_t *ob = json_object_get(j, "order_by");
    if (ob != NULL && json_is_string(ob)) {
        rv_buf_append(&order, json_string_value(ob), json_string_length(ob));
    } else if (ob != NULL && json_is_array(ob)) {
        for (size_t i = 0; i < json_array_size(ob); i++) {
            const char *s = json_string_value(json_array_get(ob, i));
            if (s == NULL) {
                gw__reject(c, RV_EINVAL, "order_by[%zu] must be a string", i);
                goto out;
            }
            if (i > 0)
                rv_buf_append(&order, ", ", 2);
            rv_buf_append(&order, s, strlen(s));
        }
    } else if (ob != NULL && !json_is_null(ob)) {
        gw__reject(c, RV_EINVAL, "'order_by' must be an array of strings");
        goto out;
    }
    if (gw__mlf_scopes(c, json_object_get(j, "experiment_ids"), sc) != 0)
        goto out;
    const char *next = "";
    if (sc->n == 0)
        goto reply; /* No experiment: no run. */
    /* Several experiments: their scopes ORed in the filter (one is the
     * query's scope, which the planner indexes). */
    if (sc->n > 1) {
        gw__mlf_cat(&filter, "(");
        for (size_t i = 0; i < sc->n; i++) {
            gw__mlf_cat(&filter, i ? " OR (project = " : "(project = ");
            gw__mlf_quote(&filter, sc->e[i].project);
            gw__mlf_cat(&filter, " AND experiment = ");
            gw__mlf_quote(&filter, sc->e[i].experiment);
            gw__mlf_cat(&filter, ")");
        }
        gw__mlf_cat(&filter, ")");
    }
    if (user_filter != NULL && user_filter[0] != '\0') {
        if (filter.len > 0)
            gw__mlf_cat(&filter, " AND (");
        rv_buf_append(&filter, user_filter, strlen(user_filter));
        if (sc->n > 1)
            gw__mlf_cat(&filter, ")");
    }
    rv_buf_append_u8(&filter, 0);
    rv_buf_append_u8(&order, 0);
    if (filter.is_failed || order.is_failed ||
        filter.len > CONTRACT_MAX_FILTER_BYTES) {
        gw__reject(c, RV_EINVAL, "the filter is too long");
        goto out;
    }
    /* Pages of the native list until max_results runs or the last page. */
    char tok[CONTRACT_PAGE_TOKEN_BYTES];
    snprintf(tok, sizeof tok, "%s", token != NULL ? token : "");
    int64_t left = max;
    while (left > 0) {
        Rv__Request req = RV__REQUEST__INIT;
        Rv__ReadOptions ro;
        Rv__ListRunsRequest l = RV__LIST_RUNS_REQUEST__INIT;
        if (gw__read_options(c, &req, &ro) != 0)
            goto out;
        l.team = sc->e[0].team;
        if (sc->n == 1) {
            l.project = sc->e[0].project;
            l.experiment = sc->e[0].experiment;
        }
        l.filter = filter.len > 1 ? (char *)filter.data : NULL;
        l.order_by = order.len > 1 ? (char *)order.data : NULL;
        l.page_token = tok[0] ? tok : NULL;
        l.has_per_page = l.has_view = l.has_is_full = l.is_full = 1;
        l.per_page =
            (uint32_t)(left < CONTRACT_MAX_PER_PAGE ? left
                                                    : CONTRACT_MAX_PER_PAGE);
        l.view = view;
        req.body_case = RV__REQUEST__BODY_LIST_RUNS;
        req.list_runs = &l;
        const Rv__Response *r = gw__call(c, &req);
        if (r == NULL)
            goto out;
        for (size_t i = 0; i < r->n_runs; i++)
            json_array_append_new(
                runs,
                gw__mlf_run_json(r->runs[i], gw__mlf_scope_id(sc, r->runs[i])));
        left -= (int64_t)r->n_runs;
        snprintf(tok, sizeof tok, "%s",
                 r->next_page_token ? r->next_page_token : "");
        if (tok[0] == '\0' || r->n_runs == 0)
            break;
    }
    next = tok;
reply:;
    json_t *o = json_pack("{s:O}", "runs", runs);
    if (o != NULL && next[0] != '\0')
        json_object_set_new(o, "next_page_token", json_string(next));
    gw_reply_json(c->x, 200, o);
out:
    rv_buf_free(&filter);
    rv_buf_free(&order);
    json_decref(runs);
    json_decref(j);
}
