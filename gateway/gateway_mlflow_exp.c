/* MLflow's experiments endpoints (DESIGN Appendix B.2): create, get,
 * get-by-name, update, delete, restore, set-experiment-tag,
 * delete-experiment-tag (search: gateway_mlflow_search.c). An
 * MLflow experiment is a (project, experiment) of the caller's team: the
 * name "P/E" is project P, experiment E; a name without '/' is project
 * "default". Ids are given out by the store at apply (store_mlflow.c). */
#include "gateway/gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Split an MLflow name into (project, experiment) in the caller's bufs. */
static int
gw__mlf_split(struct gw_ctx *c, const char *name, char *project,
              char *experiment)
{
    const char *slash = strchr(name, '/');
    size_t pn = slash != NULL ? (size_t)(slash - name) : 7;
    const char *e = slash != NULL ? slash + 1 : name;
    if (pn == 0 || pn > CONTRACT_MAX_SCOPE_BYTES || e[0] == '\0' ||
        strlen(e) > CONTRACT_MAX_SCOPE_BYTES) {
        return gw__reject(c, RV_EINVAL,
                          "Invalid experiment name '%.200s': 'E' or "
                          "'P/E' with P and E of 1 to %d bytes",
                          name, CONTRACT_MAX_SCOPE_BYTES);
    }
    memcpy(project, slash != NULL ? name : "default", pn);
    project[pn] = '\0';
    snprintf(experiment, CONTRACT_MAX_SCOPE_BYTES + 1, "%s", e);
    return 0;
}

/* MLflow's tags array [{"key","value"}] into KVs (gw__alloc'd). */
int
gw__mlf_tags(struct gw_ctx *c, json_t *j, const char *name, size_t max_n,
             Rv__KV ***out, size_t *n_out)
{
    json_t *a = json_object_get(j, name);
    *out = NULL;
    *n_out = 0;
    if (a == NULL || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return gw__reject(c, RV_EINVAL, "'%s' must be an array", name);
    size_t n = json_array_size(a);
    if (n > max_n)
        return gw__reject(c, RV_EINVAL,
                          "A request can contain at most %zu %s, got %zu",
                          max_n, name, n);
    Rv__KV *kvs = gw__alloc(c, (n ? n : 1) * sizeof *kvs);
    Rv__KV **ptrs = gw__alloc(c, (n ? n : 1) * sizeof *ptrs);
    if (kvs == NULL || ptrs == NULL) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(a, i);
        const char *k, *v;
        if (!json_is_object(t))
            return gw__reject(c, RV_EINVAL, "%s[%zu] must be an object", name,
                              i);
        if (gw__mlf_str(c, t, "key", 1, CONTRACT_MAX_KEY_BYTES, &k) != 0 ||
            gw__mlf_str(c, t, "value", 0, CONTRACT_MAX_TAG_VALUE_BYTES, &v) !=
                0 ||
            gw__key(c, name, " ", k) != 0)
            return -1;
        rv__kv__init(&kvs[i]);
        kvs[i].key = (char *)k;
        kvs[i].value = (char *)(v != NULL ? v : "");
        ptrs[i] = &kvs[i];
    }
    *out = ptrs;
    *n_out = n;
    return 0;
}

/* Send one experiment command; its result's id (decimal) or NULL. */
static const char *
gw__mlf_exp_write(struct gw_ctx *c, Rv__MlflowExperimentPut *m)
{
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    if (gw__stamp(c, &cmd) != 0)
        return NULL;
    cmd.body_case = RV__COMMAND__BODY_MLFLOW_EXPERIMENT;
    cmd.mlflow_experiment = m;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r == NULL)
        return NULL;
    return r->n_results > 0 && r->results[0]->run_id != NULL
               ? r->results[0]->run_id
               : "";
}

/* POST experiments/create {"name","artifact_location"?,"tags"?} */
void
gw_mlf_exp_create(struct gw_ctx *c)
{
    Rv__MlflowExperimentPut m = RV__MLFLOW_EXPERIMENT_PUT__INIT;
    char project[CONTRACT_MAX_SCOPE_BYTES + 1],
        experiment[CONTRACT_MAX_SCOPE_BYTES + 1];
    const char *name, *loc;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_str(c, j, "name", 1, 2 * CONTRACT_MAX_SCOPE_BYTES + 1, &name) !=
            0 ||
        gw__mlf_str(c, j, "artifact_location", 0, 4096, &loc) != 0 ||
        gw__mlf_split(c, name, project, experiment) != 0 ||
        gw__mlf_tags(c, j, "tags", 100, &m.tags, &m.n_tags) != 0)
        goto out;
    m.op = RV__MLFLOW_OP__MLFLOW_CREATE;
    m.project = project;
    m.experiment = experiment;
    m.name = (char *)name;
    const char *id = gw__mlf_exp_write(c, &m);
    if (id != NULL)
        gw_reply_json(c->x, 200, json_pack("{s:s}", "experiment_id", id));
out:
    json_decref(j);
}

static void
gw__mlf_exp_answer(struct gw_ctx *c, const Rv__Response *r)
{
    if (r == NULL)
        return;
    if (r->n_experiments != 1) {
        gw_reply_error(c->x, RV_ENOTFOUND, "experiment not found");
        return;
    }
    gw_reply_json(
        c->x, 200,
        json_pack("{s:o*}", "experiment", gw__mlf_exp_json(r->experiments[0])));
}

/* GET experiments/get?experiment_id= */
void
gw_mlf_exp_get(struct gw_ctx *c)
{
    Rv__MlflowExperimentsRequest m = RV__MLFLOW_EXPERIMENTS_REQUEST__INIT;
    const char *s;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_str(c, j, "experiment_id", 1, 24, &s) == 0 &&
        gw__mlf_exp_id(c, s, &m.experiment_id) == 0) {
        m.has_experiment_id = 1;
        gw__mlf_exp_answer(c, gw__mlf_exp_read(c, &m));
    }
    json_decref(j);
}

/* GET experiments/get-by-name?experiment_name= */
void
gw_mlf_exp_get_by_name(struct gw_ctx *c)
{
    Rv__MlflowExperimentsRequest m = RV__MLFLOW_EXPERIMENTS_REQUEST__INIT;
    const char *s;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_str(c, j, "experiment_name", 1,
                    2 * CONTRACT_MAX_SCOPE_BYTES + 1, &s) == 0) {
        m.name = (char *)s;
        gw__mlf_exp_answer(c, gw__mlf_exp_read(c, &m));
    }
    json_decref(j);
}

/* One change of an existing experiment (update, delete, restore, tag). */
static void
gw__mlf_exp_change(struct gw_ctx *c, Rv__MlflowOp op)
{
    Rv__MlflowExperimentPut m = RV__MLFLOW_EXPERIMENT_PUT__INIT;
    Rv__KV kv = RV__KV__INIT, *kvs[1] = {&kv};
    const char *s, *name = NULL;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_str(c, j, "experiment_id", 1, 24, &s) != 0 ||
        gw__mlf_exp_id(c, s, &m.experiment_id) != 0)
        goto out;
    if (op == RV__MLFLOW_OP__MLFLOW_RENAME &&
        gw__mlf_str(c, j, "new_name", 1, 2 * CONTRACT_MAX_SCOPE_BYTES + 1,
                    &name) != 0)
        goto out;
    if (op == RV__MLFLOW_OP__MLFLOW_SET_TAG ||
        op == RV__MLFLOW_OP__MLFLOW_DELETE_TAG) {
        const char *k, *v = NULL;
        if (gw__mlf_str(c, j, "key", 1, CONTRACT_MAX_KEY_BYTES, &k) != 0 ||
            (op == RV__MLFLOW_OP__MLFLOW_SET_TAG &&
             gw__mlf_str(c, j, "value", 0, CONTRACT_MAX_TAG_VALUE_BYTES, &v) !=
                 0) ||
            gw__key(c, "tag", " ", k) != 0)
            goto out;
        kv.key = (char *)k;
        kv.value = (char *)(v != NULL ? v : "");
        m.tags = kvs;
        m.n_tags = 1;
    }
    m.op = op;
    m.has_experiment_id = 1;
    m.name = (char *)name;
    if (gw__mlf_exp_write(c, &m) != NULL)
        gw__mlf_reply_empty(c);
out:
    json_decref(j);
}

void
gw_mlf_exp_update(struct gw_ctx *c)
{
    gw__mlf_exp_change(c, RV__MLFLOW_OP__MLFLOW_RENAME);
}

void
gw_mlf_exp_delete(struct gw_ctx *c)
{
    gw__mlf_exp_change(c, RV__MLFLOW_OP__MLFLOW_DELETE);
}

void
gw_mlf_exp_restore(struct gw_ctx *c)
{
    gw__mlf_exp_change(c, RV__MLFLOW_OP__MLFLOW_RESTORE);
}

void
gw_mlf_exp_set_tag(struct gw_ctx *c)
{
    gw__mlf_exp_change(c, RV__MLFLOW_OP__MLFLOW_SET_TAG);
}

void
gw_mlf_exp_delete_tag(struct gw_ctx *c)
{
    gw__mlf_exp_change(c, RV__MLFLOW_OP__MLFLOW_DELETE_TAG);
}
