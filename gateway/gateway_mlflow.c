/* MLflow REST 2.0 (DESIGN Appendix B.2), what its endpoints share: the
 * request's arguments (a JSON body, or the query of a GET) and their
 * checks with MLflow's messages, experiments read from the node, and the
 * JSON of MLflow's Experiment, RunInfo and RunData. Errors keep MLflow's
 * shape and statuses (gw_reply_error maps them for MLflow rows). */
#include "base/parse.h"
#include "gateway/gateway_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *
gw__mlf_args(struct gw_ctx *c)
{
    struct gw_exchange *x = c->x;
    if (strcmp(x->method, "POST") == 0 && x->body_len > 0)
        return gw__body(c);
    json_t *j = json_object();
    if (j == NULL) {
        gw_reply_error(x, RV_ENOMEM, NULL);
        return NULL;
    }
    if (strcmp(x->method, "POST") == 0)
        return j; /* An empty body: every field absent. */
    for (size_t i = 0; i < x->n_query; i++) {
        json_t *v = json_string(x->query[i].value);
        json_t *had = json_object_get(j, x->query[i].key);
        if (v != NULL && had != NULL) { /* Repeated (run_ids): an array. */
            if (!json_is_array(had)) {
                json_t *a = json_array();
                json_array_append(a, had);
                json_object_set_new(j, x->query[i].key, a);
                had = a;
            }
            json_array_append_new(had, v);
            continue;
        }
        if (v == NULL || json_object_set_new(j, x->query[i].key, v) != 0) {
            json_decref(j);
            gw_reply_error(x, RV_EINVAL, "a query parameter is not UTF-8");
            return NULL;
        }
    }
    return j;
}

int
gw__mlf_str(struct gw_ctx *c, json_t *j, const char *name, int is_required,
            size_t max, const char **out)
{
    json_t *v = json_object_get(j, name);
    *out = NULL;
    if (v == NULL || json_is_null(v) ||
        (json_is_string(v) && json_string_length(v) == 0 && is_required)) {
        if (!is_required)
            return 0;
        return gw__reject(c, RV_EINVAL,
                          "Missing value for required parameter '%s'.", name);
    }
    if (!json_is_string(v) || json_string_length(v) > max ||
        memchr(json_string_value(v), '\0', json_string_length(v)) != NULL) {
        return gw__reject(c, RV_EINVAL,
                          "Invalid value for parameter '%s' supplied: a "
                          "string of at most %zu bytes is expected",
                          name, max);
    }
    *out = json_string_value(v);
    return 0;
}

int
gw__mlf_i64(struct gw_ctx *c, json_t *j, const char *name, int64_t min,
            int64_t max, int64_t *out, int *is_set)
{
    json_t *v = json_object_get(j, name);
    int64_t n = 0;
    *is_set = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    /* Protobuf's JSON writes 64-bit integers as strings. */
    int ok = json_is_integer(v) ||
             (json_is_string(v) && rv_parse_i64(json_string_value(v), &n) == 0);
    if (json_is_integer(v))
        n = (int64_t)json_integer_value(v);
    if (!ok || n < min || n > max) {
        return gw__reject(c, RV_EINVAL,
                          "Invalid value for parameter '%s' supplied: an "
                          "integer from %lld to %lld is expected",
                          name, (long long)min, (long long)max);
    }
    *out = n;
    *is_set = 1;
    return 0;
}

int
gw__mlf_exp_id(struct gw_ctx *c, const char *s, uint64_t *id)
{
    if (s == NULL || s[0] == '\0' || (s[0] == '0' && s[1] != '\0') ||
        rv_parse_u64(s, id) != 0) {
        return gw__reject(c, RV_EINVAL,
                          "Invalid value '%.64s' for parameter "
                          "'experiment_id': a decimal experiment id is "
                          "expected",
                          s != NULL ? s : "");
    }
    return 0;
}

int
gw__mlf_view(struct gw_ctx *c, json_t *j, const char *name, Rv__RunView *out)
{
    const char *v;
    if (gw__mlf_str(c, j, name, 0, 32, &v) != 0)
        return -1;
    if (v == NULL || strcmp(v, "ACTIVE_ONLY") == 0 || strcmp(v, "1") == 0)
        *out = RV__RUN_VIEW__VIEW_ACTIVE;
    else if (strcmp(v, "DELETED_ONLY") == 0 || strcmp(v, "2") == 0)
        *out = RV__RUN_VIEW__VIEW_DELETED;
    else if (strcmp(v, "ALL") == 0 || strcmp(v, "3") == 0)
        *out = RV__RUN_VIEW__VIEW_ALL;
    else
        return gw__reject(c, RV_EINVAL,
                          "Invalid value '%.32s' for parameter '%s': "
                          "ACTIVE_ONLY, DELETED_ONLY or ALL",
                          v, name);
    return 0;
}

/* ---- Experiments ----------------------------------------------------------
 */

void
gw__mlx_set(struct gw_mlx *out, const Rv__MlflowExperiment *e)
{
    out->id = e->experiment_id;
    snprintf(out->team, sizeof out->team, "%s", e->team);
    snprintf(out->project, sizeof out->project, "%s", e->project);
    snprintf(out->experiment, sizeof out->experiment, "%s", e->experiment);
    snprintf(out->name, sizeof out->name, "%s", e->name);
    out->is_deleted = e->has_is_deleted && e->is_deleted;
}

const Rv__Response *
gw__mlf_exp_read(struct gw_ctx *c, Rv__MlflowExperimentsRequest *m)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    if (gw__read_options(c, &req, &ro) != 0)
        return NULL;
    req.body_case = RV__REQUEST__BODY_MLFLOW_EXPERIMENTS;
    req.mlflow_experiments = m;
    return gw__call(c, &req);
}

int
gw__mlf_exp_by_id(struct gw_ctx *c, uint64_t id, struct gw_mlx *out,
                  const Rv__MlflowExperiment **full)
{
    Rv__MlflowExperimentsRequest m = RV__MLFLOW_EXPERIMENTS_REQUEST__INIT;
    m.has_experiment_id = 1;
    m.experiment_id = id;
    const Rv__Response *r = gw__mlf_exp_read(c, &m);
    if (r == NULL)
        return -1;
    if (r->n_experiments != 1)
        return gw__reject(c, RV_ENOTFOUND, "No Experiment with id=%llu exists",
                          (unsigned long long)id);
    gw__mlx_set(out, r->experiments[0]);
    if (full != NULL)
        *full = r->experiments[0];
    return 0;
}

int
gw__mlf_exp_of_scope(struct gw_ctx *c, const char *team, const char *project,
                     const char *experiment, uint64_t *id)
{
    Rv__MlflowExperimentsRequest m = RV__MLFLOW_EXPERIMENTS_REQUEST__INIT;
    m.team = (char *)team;
    m.project = (char *)project;
    m.experiment = (char *)experiment;
    m.has_view = 1;
    m.view = RV__RUN_VIEW__VIEW_ALL;
    Rv__Request req = RV__REQUEST__INIT;
    *id = 0;
    req.body_case = RV__REQUEST__BODY_MLFLOW_EXPERIMENTS;
    req.mlflow_experiments = &m;
    const Rv__Response *r = gw__call_quiet(c, &req);
    if (r->code == RV_OK && r->n_experiments == 1) {
        *id = r->experiments[0]->experiment_id;
        return 0;
    }
    return -1;
}

json_t *
gw__mlf_exp_json(const Rv__MlflowExperiment *e)
{
    char id[24], loc[64];
    json_t *tags = json_array();
    snprintf(id, sizeof id, "%llu", (unsigned long long)e->experiment_id);
    snprintf(loc, sizeof loc, "mlflow-artifacts:/%s", id);
    for (size_t i = 0; tags != NULL && i < e->n_tags; i++)
        json_array_append_new(tags,
                              json_pack("{s:s,s:s}", "key", e->tags[i]->key,
                                        "value", e->tags[i]->value));
    return json_pack(
        "{s:s,s:s,s:s,s:s,s:I,s:I,s:o*}", "experiment_id", id, "name", e->name,
        "artifact_location", loc, "lifecycle_stage",
        e->has_is_deleted && e->is_deleted ? "deleted" : "active",
        "last_update_time", (json_int_t)e->updated_at_ms, "creation_time",
        (json_int_t)e->created_at_ms, "tags", tags);
}

/* ---- Runs -----------------------------------------------------------------
 */

const char *
gw__mlf_status_name(int status)
{
    switch (status) {
    case RV__RUN_STATUS__SCHEDULED:
        return "SCHEDULED";
    case RV__RUN_STATUS__FINISHED:
        return "FINISHED";
    case RV__RUN_STATUS__FAILED:
    case RV__RUN_STATUS__CRASHED:
        return "FAILED";
    case RV__RUN_STATUS__KILLED:
        return "KILLED";
    default:
        return "RUNNING";
    }
}

int
gw__mlf_status_parse(const char *s, Rv__RunStatus *out)
{
    static const struct {
        const char *name;
        Rv__RunStatus st;
    } names[] = {
        {"RUNNING", RV__RUN_STATUS__RUNNING},
        {"SCHEDULED", RV__RUN_STATUS__SCHEDULED},
        {"FINISHED", RV__RUN_STATUS__FINISHED},
        {"FAILED", RV__RUN_STATUS__FAILED},
        {"KILLED", RV__RUN_STATUS__KILLED},
        {"1", RV__RUN_STATUS__RUNNING},
        {"2", RV__RUN_STATUS__SCHEDULED},
        {"3", RV__RUN_STATUS__FINISHED},
        {"4", RV__RUN_STATUS__FAILED},
        {"5", RV__RUN_STATUS__KILLED},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].st;
            return 0;
        }
    return -1;
}

static int
gw__mlf_is_dataset_tag(const char *key)
{
    return strncmp(key, GW_MLF_DATASET_TAG, sizeof GW_MLF_DATASET_TAG - 1) == 0;
}

/* kvs as [{"key","value"}]; with inputs, the dataset tags (log-inputs)
 * go there as MLflow's DatasetInputs instead. */
static json_t *
gw__mlf_kv_array(Rv__KV **kvs, size_t n, json_t *inputs)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        if (inputs != NULL && gw__mlf_is_dataset_tag(kvs[i]->key)) {
            json_t *d = json_loads(kvs[i]->value, JSON_REJECT_DUPLICATES, NULL);
            if (d != NULL)
                json_array_append_new(inputs, d);
            continue;
        }
        json_array_append_new(a, json_pack("{s:s,s:s}", "key", kvs[i]->key,
                                           "value", kvs[i]->value));
    }
    return a;
}

json_t *
gw__mlf_run_info_json(const Rv__RunInfo *ri, uint64_t exp_id)
{
    char id[24], uri[CONTRACT_MAX_RUN_ID_BYTES + 64];
    snprintf(id, sizeof id, "%llu", (unsigned long long)exp_id);
    snprintf(uri, sizeof uri, "mlflow-artifacts:/%s/%s/artifacts", id,
             ri->run_id);
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s}", "run_id", ri->run_id,
        "run_uuid", ri->run_id, "run_name", ri->name ? ri->name : "",
        "experiment_id", id, "user_id", ri->user ? ri->user : "", "status",
        gw__mlf_status_name((int)ri->status), "start_time",
        (json_int_t)ri->created_at_ms, "artifact_uri", uri, "lifecycle_stage",
        ri->has_is_deleted && ri->is_deleted ? "deleted" : "active");
    if (o != NULL && ri->has_ended_at_ms)
        json_object_set_new(o, "end_time", json_integer(ri->ended_at_ms));
    return o;
}

json_t *
gw__mlf_run_json(const Rv__RunInfo *ri, uint64_t exp_id)
{
    json_t *metrics = json_array();
    for (size_t i = 0; metrics != NULL && i < ri->n_summary; i++) {
        const Rv__Summary *s = ri->summary[i];
        /* MLflow has no contexts: the default context's series only. */
        if (s->context != NULL && s->context[0] != '\0')
            continue;
        json_array_append_new(
            metrics, json_pack("{s:s,s:o,s:I,s:I}", "key", s->key, "value",
                               gw_json_double(s->last), "timestamp",
                               (json_int_t)s->last_timestamp_ms, "step",
                               (json_int_t)s->last_step));
    }
    json_t *inputs = json_array();
    json_t *data =
        json_pack("{s:o*,s:o*,s:o*}", "metrics", metrics, "params",
                  gw__mlf_kv_array(ri->params, ri->n_params, NULL), "tags",
                  gw__mlf_kv_array(ri->tags, ri->n_tags, inputs));
    return json_pack("{s:o*,s:o*,s:{s:o*}}", "info",
                     gw__mlf_run_info_json(ri, exp_id), "data", data, "inputs",
                     "dataset_inputs", inputs);
}

/* The run's MLflow JSON, read now: {"run": ...} or {"run_info": ...}
 * when is_info_only. Answers itself; returns 0, or -1 when an error was
 * answered. */
int
gw__mlf_reply_run(struct gw_ctx *c, const char *run_id, int is_info_only)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    char team[CONTRACT_MAX_TEAM_BYTES + 1],
        project[CONTRACT_MAX_SCOPE_BYTES + 1],
        experiment[CONTRACT_MAX_SCOPE_BYTES + 1];
    if (gw__read_options(c, &req, &ro) != 0)
        return -1;
    gr.run_id = (char *)run_id;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return -1;
    if (r->run == NULL)
        return gw__reject(c, RV_ENOTFOUND, "Run '%.64s' not found", run_id);
    snprintf(team, sizeof team, "%s", r->run->team ? r->run->team : "");
    snprintf(project, sizeof project, "%s",
             r->run->project ? r->run->project : "");
    snprintf(experiment, sizeof experiment, "%s",
             r->run->experiment ? r->run->experiment : "");
    /* The JSON is made before the next call reuses the answer. */
    json_t *run = is_info_only ? gw__mlf_run_info_json(r->run, 0)
                               : gw__mlf_run_json(r->run, 0);
    uint64_t id = 0;
    gw__mlf_exp_of_scope(c, team, project, experiment, &id);
    json_t *info = is_info_only ? run : json_object_get(run, "info");
    if (info != NULL && id != 0) {
        char ids[24], uri[CONTRACT_MAX_RUN_ID_BYTES + 64];
        snprintf(ids, sizeof ids, "%llu", (unsigned long long)id);
        snprintf(uri, sizeof uri, "mlflow-artifacts:/%s/%s/artifacts", ids,
                 run_id);
        json_object_set_new(info, "experiment_id", json_string(ids));
        json_object_set_new(info, "artifact_uri", json_string(uri));
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:o*}", is_info_only ? "run_info" : "run", run));
    return 0;
}

/* The run id of an MLflow request: run_id, or the older run_uuid. */
int
gw__mlf_run_id(struct gw_ctx *c, json_t *j, const char **out)
{
    const char *a, *b;
    if (gw__mlf_str(c, j, "run_id", 0, CONTRACT_MAX_RUN_ID_BYTES, &a) != 0 ||
        gw__mlf_str(c, j, "run_uuid", 0, CONTRACT_MAX_RUN_ID_BYTES, &b) != 0)
        return -1;
    *out = a != NULL && a[0] ? a : b;
    if (*out == NULL || (*out)[0] == '\0')
        return gw__reject(c, RV_EINVAL,
                          "Missing value for required parameter 'run_id'.");
    if (!contract_run_id_valid(*out, strlen(*out)))
        return gw__reject(c, RV_ENOTFOUND, "Run '%.64s' not found", *out);
    return 0;
}

void
gw__mlf_cat(struct rv_buf *b, const char *s)
{
    rv_buf_append(b, s, strlen(s));
}

/* An empty JSON object: what most MLflow writes answer. */
void
gw__mlf_reply_empty(struct gw_ctx *c)
{
    gw_reply_json(c->x, 200, json_object());
}
