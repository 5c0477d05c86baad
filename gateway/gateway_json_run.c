/* Runs: JSON <-> commands and reads for creating a run, setting its
 * status, deleting and restoring it, reading one, listing a page of them
 * and counting them (shapes in docs/HTTP.md). */
#include "base/clock.h"
#include "gateway/gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
gw__status_name(int status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &rv__run_status__descriptor, status);
    return v != NULL ? v->name : "RUN_STATUS_UNSPECIFIED";
}

static int
gw__status_parse(const char *s, Rv__RunStatus *out)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(
        &rv__run_status__descriptor, s);
    if (v == NULL || v->value == RV__RUN_STATUS__RUN_STATUS_UNSPECIFIED)
        return -1;
    *out = (Rv__RunStatus)v->value;
    return 0;
}

/* A run id made here: 26 characters of Crockford base32 over 48 bits of
 * milliseconds and 80 random bits (ULID-style, sorts by time). */
static void
gw__make_run_id(char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t raw[16];
    uint64_t ms = rv_clock_wall_ms();
    for (int i = 0; i < 6; i++)
        raw[i] = (uint8_t)(ms >> (40 - 8 * i));
    if (rv_random_bytes(raw + 6, 10) != RV_OK) {
        uint64_t a = rv_random_id(raw), b = rv_random_id(&a);
        memcpy(raw + 6, &a, 8);
        memcpy(raw + 14, &b, 2);
    }
    /* 128 bits -> 26 digits of 5 bits (the first digit holds 3 bits). */
    for (int i = 0; i < 26; i++) {
        int bit = 128 - 5 * (26 - i);
        unsigned v = 0;
        for (int k = 0; k < 5; k++) {
            int b = bit + k;
            v <<= 1;
            if (b >= 0)
                v |= (unsigned)(raw[b / 8] >> (7 - b % 8)) & 1u;
        }
        out[i] = b32[v];
    }
    out[26] = '\0';
}

int
gw__run_id(struct gw_ctx *c, const char *id)
{
    if (!contract_run_id_valid(id, strlen(id))) {
        return gw__reject(c, RV_EINVAL,
                          "invalid run_id '%.64s': 1 to %d letters, digits, "
                          "'_' or '-', starting with a letter or digit",
                          id, CONTRACT_MAX_RUN_ID_BYTES);
    }
    return 0;
}

/* POST /api/v2/runs */
void
gw_run_create(struct gw_ctx *c)
{
    static const char *const fields[] = {
        "project", "experiment", "name",   "run_id", "user", "params",
        "tags",    "resume",     "status", "team",   NULL};
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunCreate rc = RV__RUN_CREATE__INIT;
    char made[27], *resume = NULL, *status = NULL;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "run", fields) != 0 ||
        gw__str(c, j, "project", 1, CONTRACT_MAX_SCOPE_BYTES, &rc.project) !=
            0 ||
        gw__str(c, j, "experiment", 1, CONTRACT_MAX_SCOPE_BYTES,
                &rc.experiment) != 0 ||
        gw__str(c, j, "name", 0, CONTRACT_MAX_NAME_BYTES, &rc.name) != 0 ||
        gw__str(c, j, "run_id", 0, CONTRACT_MAX_RUN_ID_BYTES, &rc.run_id) !=
            0 ||
        gw__str(c, j, "user", 0, CONTRACT_MAX_SCOPE_BYTES, &rc.user) != 0 ||
        gw__str(c, j, "team", 0, CONTRACT_MAX_TEAM_BYTES, &rc.team) != 0 ||
        gw__str(c, j, "resume", 0, 16, &resume) != 0 ||
        gw__str(c, j, "status", 0, 16, &status) != 0 ||
        gw__kvs(c, j, "params", CONTRACT_MAX_PARAMS_PER_COMMAND,
                CONTRACT_MAX_PARAM_VALUE_BYTES, &rc.params,
                &rc.n_params) != 0 ||
        gw__kvs(c, j, "tags", CONTRACT_MAX_TAGS_PER_COMMAND,
                CONTRACT_MAX_TAG_VALUE_BYTES, &rc.tags, &rc.n_tags) != 0)
        goto out;
    if (rc.run_id != NULL && gw__run_id(c, rc.run_id) != 0)
        goto out;
    /* Unset: the token's team (the node decides). */
    if (rc.team != NULL && gw__team(c, "team", rc.team) != 0)
        goto out;
    if (rc.run_id == NULL) {
        gw__make_run_id(made);
        rc.run_id = made;
    }
    rc.has_resume = 1;
    if (resume == NULL || strcmp(resume, "never") == 0)
        rc.resume = RV__RESUME__RESUME_NEVER;
    else if (strcmp(resume, "allow") == 0)
        rc.resume = RV__RESUME__RESUME_ALLOW;
    else if (strcmp(resume, "must") == 0)
        rc.resume = RV__RESUME__RESUME_MUST;
    else {
        gw_reply_error(c->x, RV_EINVAL, "resume must be allow, must or never");
        goto out;
    }
    if (status != NULL) {
        if (gw__status_parse(status, &rc.status) != 0) {
            gw_reply_error(c->x, RV_EINVAL, "unknown run status");
            goto out;
        }
        rc.has_status = 1;
    }
    if (gw__stamp(c, &cmd) != 0)
        goto out;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &rc;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r == NULL)
        goto out;
    const Rv__CommandResult *res = r->n_results > 0 ? r->results[0] : NULL;
    int is_resumed = res != NULL && res->has_is_resumed && res->is_resumed;
    json_t *o =
        json_pack("{s:s,s:I}", "run_id",
                  res != NULL && res->run_id != NULL ? res->run_id : rc.run_id,
                  "index", (json_int_t)r->index);
    if (o != NULL && is_resumed)
        json_object_set_new(o, "resumed", json_true());
    if (o != NULL && res != NULL && res->has_is_duplicate && res->is_duplicate)
        json_object_set_new(o, "duplicate", json_true());
    gw_reply_json(c->x, is_resumed ? 200 : 201, o);
out:
    json_decref(j);
}

/* POST /api/v2/runs/{run}/status */
void
gw_run_set_status(struct gw_ctx *c)
{
    char *run_id = c->param[GW_P_RUN];
    static const char *const fields[] = {"status", "ended_at", NULL};
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
    char *status;
    int64_t ended = -1;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "status", fields) != 0 ||
        gw__str(c, j, "status", 1, 16, &status) != 0 ||
        gw__int(c, j, "ended_at", "", 0, INT64_MAX, &ended) != 0)
        goto out;
    if (gw__status_parse(status, &st.status) != 0) {
        gw_reply_error(c->x, RV_EINVAL,
                       "status must be RUNNING, SCHEDULED, FINISHED, FAILED, "
                       "KILLED or CRASHED");
        goto out;
    }
    st.has_ended_at_ms = ended >= 0;
    st.ended_at_ms = ended >= 0 ? ended : 0;
    st.run_id = run_id;
    if (gw__stamp(c, &cmd) != 0)
        goto out;
    cmd.body_case = RV__COMMAND__BODY_RUN_STATUS;
    cmd.run_status = &st;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r != NULL)
        gw_reply_json(c->x, 200, gw__index_reply(r));
out:
    json_decref(j);
}

/* A delete, restore or purge of one run (body_case says which). */
static void
gw__run_ref(struct gw_ctx *c, char *run_id, Rv__Command__BodyCase body_case)
{
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = run_id;
    if (gw__stamp(c, &cmd) != 0)
        return;
    cmd.body_case = body_case;
    if (body_case == RV__COMMAND__BODY_RUN_RESTORE)
        cmd.run_restore = &ref;
    else if (body_case == RV__COMMAND__BODY_RUN_PURGE)
        cmd.run_purge = &ref;
    else
        cmd.run_delete = &ref;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r != NULL)
        gw_reply_json(c->x, 200, gw__index_reply(r));
}

/* POST /api/v2/runs/{run}/delete */
void
gw_run_delete(struct gw_ctx *c)
{
    gw__run_ref(c, c->param[GW_P_RUN], RV__COMMAND__BODY_RUN_DELETE);
}

/* POST /api/v2/runs/{run}/restore */
void
gw_run_restore(struct gw_ctx *c)
{
    gw__run_ref(c, c->param[GW_P_RUN], RV__COMMAND__BODY_RUN_RESTORE);
}

/* POST /api/v2/runs/{run}/purge */
void
gw_run_purge(struct gw_ctx *c)
{
    gw__run_ref(c, c->param[GW_P_RUN], RV__COMMAND__BODY_RUN_PURGE);
}

static json_t *
gw__run_json(const Rv__RunInfo *ri)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "run_id", json_string(ri->run_id));
    json_object_set_new(o, "project",
                        json_string(ri->project ? ri->project : ""));
    json_object_set_new(o, "experiment",
                        json_string(ri->experiment ? ri->experiment : ""));
    json_object_set_new(o, "name", json_string(ri->name ? ri->name : ""));
    json_object_set_new(o, "user", json_string(ri->user ? ri->user : ""));
    json_object_set_new(o, "team", json_string(ri->team ? ri->team : ""));
    json_object_set_new(o, "status",
                        json_string(gw__status_name((int)ri->status)));
    json_object_set_new(o, "created_at", json_integer(ri->created_at_ms));
    json_object_set_new(o, "ended_at",
                        ri->has_ended_at_ms ? json_integer(ri->ended_at_ms)
                                            : json_null());
    json_object_set_new(o, "n_points", json_integer((json_int_t)ri->n_points));
    json_object_set_new(o, "n_log_lines",
                        json_integer((json_int_t)ri->n_log_lines));
    if (ri->has_is_deleted && ri->is_deleted)
        json_object_set_new(o, "lifecycle", json_string("deleted"));
    else
        json_object_set_new(o, "lifecycle", json_string("active"));
    return o;
}

json_t *
gw__run_full_json(const Rv__RunInfo *ri)
{
    json_t *o = gw__run_json(ri);
    json_t *params = json_object(), *tags = json_object(), *sum = json_object();
    if (o == NULL || params == NULL || tags == NULL || sum == NULL) {
        json_decref(o);
        json_decref(params);
        json_decref(tags);
        json_decref(sum);
        return NULL;
    }
    for (size_t i = 0; i < ri->n_params; i++)
        json_object_set_new(params, ri->params[i]->key,
                            json_string(ri->params[i]->value));
    for (size_t i = 0; i < ri->n_tags; i++)
        json_object_set_new(tags, ri->tags[i]->key,
                            json_string(ri->tags[i]->value));
    for (size_t i = 0; i < ri->n_summary; i++) {
        const Rv__Summary *s = ri->summary[i];
        char name[CONTRACT_MAX_KEY_BYTES + CONTRACT_MAX_CONTEXT_BYTES + 3];
        int has_ctx = s->context != NULL && s->context[0] != '\0';
        if (has_ctx)
            snprintf(name, sizeof name, "%s[%s]", s->key, s->context);
        else
            snprintf(name, sizeof name, "%s", s->key);
        json_t *e = json_object();
        if (e == NULL)
            continue;
        json_object_set_new(e, "key", json_string(s->key));
        json_object_set_new(e, "context",
                            json_string(has_ctx ? s->context : ""));
        json_object_set_new(e, "last", gw_json_double(s->last));
        json_object_set_new(e, "min", gw_json_double(s->min));
        json_object_set_new(e, "max", gw_json_double(s->max));
        json_object_set_new(e, "count", json_integer((json_int_t)s->count));
        json_object_set_new(e, "last_step", json_integer(s->last_step));
        json_object_set_new(e, "last_timestamp",
                            json_integer(s->last_timestamp_ms));
        json_object_set_new(sum, name, e);
    }
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "summary", sum);
    return o;
}

/* GET /api/v2/runs/{run} */
void
gw_run_get(struct gw_ctx *c)
{
    char *run_id = c->param[GW_P_RUN];
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    if (gw__read_options(c, &req, &ro) != 0)
        return;
    gr.run_id = run_id;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    if (r->run == NULL) {
        gw_reply_error(c->x, RV_ENOTFOUND, NULL);
        return;
    }
    json_t *o = json_object();
    if (o != NULL) {
        json_object_set_new(o, "run", gw__run_full_json(r->run));
        json_object_set_new(o, "applied_index",
                            json_integer((json_int_t)r->applied_index));
        json_object_set_new(o, "query_time_ms",
                            json_real(gw__elapsed_ms(c->x)));
    }
    gw_reply_json(c->x, 200, o);
}

/* POST /api/v2/experiments/search: gw_run_list with its parameters in a
 * JSON body instead of the query. nng reads a request line of at most
 * 8 KiB, so a filter near its 8192-byte limit (%-escaped, up to three
 * times longer) only fits in a body. Members are strings or, for per_page,
 * full and min_index, non-negative integers; a member also given in the
 * query is refused. */
void
gw_run_search(struct gw_ctx *c)
{
    static const char *const names[] = {"project",     "experiment", "team",
                                        "status",      "filter",     "order_by",
                                        "page_token",  "per_page",   "full",
                                        "consistency", "min_index",  NULL};
    struct gw_exchange *x = c->x;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "the search", names) != 0) {
        json_decref(j);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        char num[24];
        const char *text = num;
        size_t n;
        if (json_is_string(v)) {
            text = json_string_value(v);
            n = json_string_length(v);
            if (memchr(text, '\0', n) != NULL) {
                gw__reject(c, RV_EINVAL, "'%s' holds a NUL byte", k);
                goto out;
            }
        } else if (json_is_integer(v) && json_integer_value(v) >= 0) {
            n = (size_t)snprintf(num, sizeof num, "%lld",
                                 (long long)json_integer_value(v));
        } else {
            gw__reject(c, RV_EINVAL, "'%s' must be a string%s", k,
                       strcmp(k, "per_page") == 0 || strcmp(k, "full") == 0 ||
                               strcmp(k, "min_index") == 0
                           ? " or a non-negative integer"
                           : "");
            goto out;
        }
        if (gw_query(x, k) != NULL) {
            gw__reject(c, RV_EINVAL, "'%s' is given in the query and the body",
                       k);
            goto out;
        }
        if (x->n_query == GATEWAY_MAX_QUERY_PARAMS) {
            gw__reject(c, RV_EINVAL, "more than %d parameters",
                       GATEWAY_MAX_QUERY_PARAMS);
            goto out;
        }
        char *key = gw__alloc(c, strlen(k) + 1);
        char *val = gw__alloc(c, n + 1);
        if (key == NULL || val == NULL) {
            gw_reply_error(x, RV_ENOMEM, NULL);
            goto out;
        }
        memcpy(key, k, strlen(k) + 1);
        memcpy(val, text, n);
        x->query[x->n_query].key = key;
        x->query[x->n_query].value = val;
        x->n_query++;
    }
    gw_run_list(c);
out:
    json_decref(j);
}

/* GET /api/v2/experiments, /api/runs: a page of runs. */
void
gw_run_list(struct gw_ctx *c)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__ListRunsRequest l = RV__LIST_RUNS_REQUEST__INIT;
    const char *project, *experiment, *status, *filter, *order, *token, *team;
    uint64_t per_page = 0, full = 0;
    int has_pp, has_full;
    char *combined = NULL;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_u64(c, "full", 1, &full, &has_full) != 0 ||
        gw__q_str(c, "project", CONTRACT_MAX_SCOPE_BYTES, &project) != 0 ||
        gw__q_str(c, "experiment", CONTRACT_MAX_SCOPE_BYTES, &experiment) !=
            0 ||
        gw__q_str(c, "team", CONTRACT_MAX_TEAM_BYTES, &team) != 0 ||
        gw__q_str(c, "status", 16, &status) != 0 ||
        gw__q_str(c, "filter", GATEWAY_MAX_FILTER_BYTES, &filter) != 0 ||
        gw__q_str(c, "order_by", GATEWAY_MAX_FILTER_BYTES, &order) != 0 ||
        gw__q_str(c, "page_token", CONTRACT_PAGE_TOKEN_BYTES, &token) != 0 ||
        gw__q_u64(c, "per_page", CONTRACT_MAX_PER_PAGE, &per_page, &has_pp) !=
            0)
        return;
    if (has_pp && per_page == 0) {
        gw_reply_error(c->x, RV_EINVAL, "per_page must be 1 to 1000");
        return;
    }
    if (status != NULL) {
        Rv__RunStatus st;
        if (gw__status_parse(status, &st) != 0) {
            gw_reply_error(c->x, RV_EINVAL, "unknown status");
            return;
        }
        size_t n = (filter ? strlen(filter) : 0) + 64;
        combined = gw__alloc(c, n);
        if (combined == NULL) {
            gw_reply_error(c->x, RV_ENOMEM, NULL);
            return;
        }
        if (filter != NULL && filter[0] != '\0')
            snprintf(combined, n, "attributes.status = '%s' and (%s)", status,
                     filter);
        else
            snprintf(combined, n, "attributes.status = '%s'", status);
        filter = combined;
    }
    l.team = (char *)team;
    l.project = (char *)(project != NULL && project[0] ? project : NULL);
    l.experiment =
        (char *)(experiment != NULL && experiment[0] ? experiment : NULL);
    l.filter = (char *)(filter != NULL && filter[0] ? filter : NULL);
    l.order_by = (char *)(order != NULL && order[0] ? order : NULL);
    l.page_token = (char *)(token != NULL && token[0] ? token : NULL);
    l.has_per_page = has_pp;
    l.per_page = (uint32_t)per_page;
    l.has_is_full = full == 1;
    l.is_full = full == 1;
    req.body_case = RV__REQUEST__BODY_LIST_RUNS;
    req.list_runs = &l;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < r->n_runs; i++)
        json_array_append_new(arr, full ? gw__run_full_json(r->runs[i])
                                        : gw__run_json(r->runs[i]));
    json_t *o = json_object();
    if (o != NULL) {
        json_object_set_new(o, "runs", arr);
        json_object_set_new(
            o, "next_page_token",
            json_string(r->next_page_token ? r->next_page_token : ""));
        if (r->has_total)
            json_object_set_new(o, "total", json_integer((json_int_t)r->total));
        json_object_set_new(o, "examined",
                            json_integer((json_int_t)r->n_examined));
        if (r->plan != NULL && r->plan[0] != '\0')
            json_object_set_new(o, "plan", json_string(r->plan));
        json_object_set_new(o, "applied_index",
                            json_integer((json_int_t)r->applied_index));
        json_object_set_new(o, "query_time_ms",
                            json_real(gw__elapsed_ms(c->x)));
    } else {
        json_decref(arr);
    }
    gw_reply_json(c->x, 200, o);
}

/* GET /api/v2/analytics: run counts by status, project or day. */
void
gw_run_analytics(struct gw_ctx *c)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__AnalyticsRequest a = RV__ANALYTICS_REQUEST__INIT;
    const char *group, *project, *team;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_str(c, "group", 16, &group) != 0 ||
        gw__q_str(c, "project", CONTRACT_MAX_SCOPE_BYTES, &project) != 0 ||
        gw__q_str(c, "team", CONTRACT_MAX_TEAM_BYTES, &team) != 0)
        return;
    a.has_group = 1;
    if (group == NULL || strcmp(group, "status") == 0)
        a.group = RV__GROUP__GROUP_STATUS;
    else if (strcmp(group, "project") == 0)
        a.group = RV__GROUP__GROUP_PROJECT;
    else if (strcmp(group, "day") == 0)
        a.group = RV__GROUP__GROUP_DAY;
    else {
        gw_reply_error(c->x, RV_EINVAL, "group must be status, project or day");
        return;
    }
    a.project = (char *)project;
    /* Without auth every run is in the default team (store_apply). */
    a.team = (char *)(team == NULL && project != NULL ? "default" : team);
    req.body_case = RV__REQUEST__BODY_ANALYTICS;
    req.analytics = &a;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *counts = json_object();
    uint64_t total = 0;
    for (size_t i = 0; counts != NULL && i < r->n_counts; i++) {
        json_object_set_new(counts, r->counts[i]->label,
                            json_integer((json_int_t)r->counts[i]->n));
        total += r->counts[i]->n;
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:o,s:I,s:f}", "group",
                            group != NULL ? group : "status", "counts", counts,
                            "total", (json_int_t)total, "query_time_ms",
                            gw__elapsed_ms(c->x)));
}
