/* Store -> protobuf for MLflow's experiments (DESIGN Appendix B.2): one by
 * id, name or scope, or a page in id order. The read's scope (the
 * principal's team) is applied by the store: another team's experiment is
 * not found. */
#include "rpc/server_int.h"

#include <stdlib.h>
#include <string.h>

struct rpc__mlflow_answer {
    struct store_mlflow_exp *exps;
    size_t n;
    Rv__MlflowExperiment *outs, **ptrs;
    Rv__KV *kvs, **kv_ptrs;
};

static void
rpc__mlflow_answer_free(void *body)
{
    struct rpc__mlflow_answer *a = body;
    for (size_t i = 0; i < a->n; i++)
        store_mlflow_free(&a->exps[i]);
    free(a->exps);
    free(a->outs);
    free(a->ptrs);
    free(a->kvs);
    free(a->kv_ptrs);
    free(a);
}

static enum store_view
rpc__view(int has, Rv__RunView v)
{
    if (!has)
        return STORE_VIEW_ACTIVE;
    return v == RV__RUN_VIEW__VIEW_DELETED ? STORE_VIEW_DELETED
           : v == RV__RUN_VIEW__VIEW_ALL   ? STORE_VIEW_ALL
                                           : STORE_VIEW_ACTIVE;
}

enum store_view
rpc__run_view(int has, Rv__RunView v)
{
    return rpc__view(has, v);
}

int
rpc__mlflow_read(struct store_read *rd, const Rv__MlflowExperimentsRequest *m,
                 struct rpc_reply *rp, char *errmsg)
{
    struct store_mlflow_query q;
    struct rpc__mlflow_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__mlflow_answer_free);
    if (a == NULL)
        return RV_ENOMEM;
    memset(&q, 0, sizeof q);
    q.team = m->team;
    q.id = m->experiment_id;
    q.name = m->name;
    q.project = m->project;
    q.experiment = m->experiment;
    q.after_id = m->after_id;
    q.max = m->has_max_results ? m->max_results : 0;
    q.view = rpc__view(m->has_view, m->view);
    int rc;
    if (m->has_experiment_id || m->name != NULL ||
        (m->project != NULL && m->experiment != NULL)) {
        a->exps = calloc(1, sizeof *a->exps);
        if (a->exps == NULL)
            return RV_ENOMEM;
        rc = store_mlflow_get(rd, &q, &a->exps[0], errmsg);
        a->n = rc == RV_OK;
    } else {
        rc = store_mlflow_list(rd, &q, &a->exps, &a->n, errmsg);
    }
    if (rc != RV_OK)
        return rc;
    size_t n_tags = 0;
    for (size_t i = 0; i < a->n; i++)
        n_tags += a->exps[i].n_tags;
    a->outs = calloc(a->n ? a->n : 1, sizeof *a->outs);
    a->ptrs = calloc(a->n ? a->n : 1, sizeof *a->ptrs);
    a->kvs = calloc(n_tags ? n_tags : 1, sizeof *a->kvs);
    a->kv_ptrs = calloc(n_tags ? n_tags : 1, sizeof *a->kv_ptrs);
    if (a->outs == NULL || a->ptrs == NULL || a->kvs == NULL ||
        a->kv_ptrs == NULL)
        return RV_ENOMEM;
    size_t t = 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct store_mlflow_exp *e = &a->exps[i];
        Rv__MlflowExperiment *o = &a->outs[i];
        rv__mlflow_experiment__init(o);
        o->experiment_id = e->id;
        o->team = e->team;
        o->project = e->project;
        o->experiment = e->experiment;
        o->name = e->name;
        o->has_is_deleted = o->has_created_at_ms = o->has_updated_at_ms = 1;
        o->is_deleted = e->is_deleted != 0;
        o->created_at_ms = e->created_at_ms;
        o->updated_at_ms = e->updated_at_ms;
        o->tags = a->kv_ptrs + t;
        o->n_tags = e->n_tags;
        for (size_t j = 0; j < e->n_tags; j++, t++) {
            rv__kv__init(&a->kvs[t]);
            a->kvs[t].key = e->tags[j].key;
            a->kvs[t].value = e->tags[j].value;
            a->kv_ptrs[t] = &a->kvs[t];
        }
        a->ptrs[i] = o;
    }
    rp->resp.n_experiments = a->n;
    rp->resp.experiments = a->ptrs;
    return RV_OK;
}
