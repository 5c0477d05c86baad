/* MLflow's artifact proxy (DESIGN Appendix B.2) on runvault's
 * content-addressed artifacts: a run's artifact_uri is
 * mlflow-artifacts:/<experiment id>/<run id>/artifacts, which MLflow's
 * client reaches as /api/2.0/mlflow-artifacts/artifacts/<that>/<path>:
 * PUT uploads (runvault's upload: chunked commands, deduplicated bytes),
 * GET downloads, GET ...artifacts?path= lists one directory level; and the
 * tracking API's artifacts/list?run_id=&path= for MLflow's UI. */
#include "base/parse.h"
#include "gateway/gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Split "<exp>/<run>/artifacts[/<rest>]" (a copy in c's blocks) into the
 * run id and the rest ("" when none). Returns 0, or -1 when answered. */
static int
gw__mlf_art_split(struct gw_ctx *c, const char *full, char **run, char **rest)
{
    size_t n = strlen(full);
    char *s = gw__alloc(c, n + 1);
    uint64_t exp;
    if (s == NULL) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        return -1;
    }
    memcpy(s, full, n + 1);
    char *a = strchr(s, '/'), *b = a != NULL ? strchr(a + 1, '/') : NULL;
    if (a == NULL || b == NULL || strncmp(b + 1, "artifacts", 9) != 0 ||
        (b[10] != '\0' && b[10] != '/'))
        return gw__reject(c, RV_ENOTFOUND,
                          "artifact path '%.200s' is not "
                          "<experiment id>/<run id>/artifacts/<path>",
                          full);
    *a = *b = '\0';
    if (rv_parse_u64(s, &exp) != 0 || gw__run_id(c, a + 1) != 0) {
        if (c->x->status == 0)
            gw__reject(c, RV_ENOTFOUND, "no experiment '%.32s'", s);
        return -1;
    }
    *run = a + 1;
    *rest = b[10] == '/' ? b + 11 : b + 10;
    return 0;
}

/* PUT /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path> */
void
gw_mlf_art_put(struct gw_ctx *c)
{
    char *run, *rest;
    if (gw__mlf_art_split(c, c->param[GW_P_PATH], &run, &rest) != 0)
        return;
    c->param[GW_P_RUN] = run;
    c->param[GW_P_PATH] = rest;
    gw_artifact_put(c);
}

/* GET /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path> */
void
gw_mlf_art_get(struct gw_ctx *c)
{
    char *run, *rest;
    if (gw__mlf_art_split(c, c->param[GW_P_PATH], &run, &rest) != 0)
        return;
    c->param[GW_P_RUN] = run;
    c->param[GW_P_PATH] = rest;
    gw_artifact_get(c);
}

/* The entries of run's artifacts one level below dir ("" the root):
 * {"path" (relative to dir),"is_dir","file_size"?}. NULL when answered. */
static json_t *
gw__mlf_art_entries(struct gw_ctx *c, const char *run, const char *dir)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__ArtifactRequest a = RV__ARTIFACT_REQUEST__INIT;
    size_t dn = strlen(dir);
    while (dn > 0 && dir[dn - 1] == '/')
        dn--;
    if (gw__read_options(c, &req, &ro) != 0)
        return NULL;
    a.run_id = (char *)run;
    req.body_case = RV__REQUEST__BODY_ARTIFACT;
    req.artifact = &a;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return NULL;
    json_t *files = json_array();
    for (size_t i = 0; files != NULL && i < r->n_artifacts; i++) {
        const Rv__ArtifactInfo *ai = r->artifacts[i];
        const char *p = ai->path;
        if (!ai->is_complete)
            continue;
        if (dn > 0 && (strncmp(p, dir, dn) != 0 || p[dn] != '/'))
            continue;
        p += dn > 0 ? dn + 1 : 0;
        const char *slash = strchr(p, '/');
        size_t en = slash != NULL ? (size_t)(slash - p) : strlen(p);
        char name[CONTRACT_MAX_ARTIFACT_PATH_BYTES + 1];
        snprintf(name, sizeof name, "%.*s", (int)en, p);
        /* Paths come sorted: a directory's files are next to each other. */
        size_t last = json_array_size(files);
        json_t *prev = last > 0 ? json_array_get(files, last - 1) : NULL;
        if (slash != NULL && prev != NULL &&
            strcmp(json_string_value(json_object_get(prev, "path")), name) == 0)
            continue;
        if (slash != NULL)
            json_array_append_new(
                files, json_pack("{s:s,s:b}", "path", name, "is_dir", 1));
        else
            json_array_append_new(
                files, json_pack("{s:s,s:b,s:I}", "path", name, "is_dir", 0,
                                 "file_size", (json_int_t)ai->size));
    }
    return files;
}

/* GET /api/2.0/mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts/<dir> */
void
gw_mlf_art_list(struct gw_ctx *c)
{
    const char *path;
    char *run, *rest;
    if (gw__q_str(c, "path", GATEWAY_MAX_PATH_BYTES, &path) != 0)
        return;
    if (path == NULL || strchr(path, '/') == NULL) {
        /* The root or an experiment: runvault lists runs' artifacts only. */
        gw_reply_json(c->x, 200, json_pack("{s:[]}", "files"));
        return;
    }
    if (gw__mlf_art_split(c, path, &run, &rest) != 0)
        return;
    json_t *files = gw__mlf_art_entries(c, run, rest);
    if (files != NULL)
        gw_reply_json(c->x, 200, json_pack("{s:o}", "files", files));
}

/* GET /api/2.0/mlflow/artifacts/list?run_id=&path= (the tracking API):
 * {"root_uri","files"} with paths relative to the run's root. */
void
gw_mlf_art_list_run(struct gw_ctx *c)
{
    const char *run_id, *dir;
    json_t *j = gw__mlf_args(c);
    if (j == NULL)
        return;
    if (gw__mlf_run_id(c, j, &run_id) != 0 ||
        gw__mlf_str(c, j, "path", 0, CONTRACT_MAX_ARTIFACT_PATH_BYTES, &dir) !=
            0)
        goto out;
    json_t *files = gw__mlf_art_entries(c, run_id, dir != NULL ? dir : "");
    if (files == NULL)
        goto out;
    if (dir != NULL && dir[0] != '\0') { /* Paths from the run's root. */
        size_t dn = strlen(dir);
        while (dn > 0 && dir[dn - 1] == '/')
            dn--;
        size_t i;
        json_t *f;
        json_array_foreach(files, i, f)
        {
            char full[2 * CONTRACT_MAX_ARTIFACT_PATH_BYTES + 2];
            snprintf(full, sizeof full, "%.*s/%s", (int)dn, dir,
                     json_string_value(json_object_get(f, "path")));
            json_object_set_new(f, "path", json_string(full));
        }
    }
    /* The root: the run's artifact_uri, which names its experiment. */
    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    char root[CONTRACT_MAX_RUN_ID_BYTES + 64] = "";
    uint64_t exp = 0;
    gr.run_id = (char *)run_id;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    const Rv__Response *r = gw__call_quiet(c, &req);
    if (r->code == RV_OK && r->run != NULL) {
        char team[CONTRACT_MAX_TEAM_BYTES + 1],
            project[CONTRACT_MAX_SCOPE_BYTES + 1],
            experiment[CONTRACT_MAX_SCOPE_BYTES + 1];
        snprintf(team, sizeof team, "%s", r->run->team ? r->run->team : "");
        snprintf(project, sizeof project, "%s",
                 r->run->project ? r->run->project : "");
        snprintf(experiment, sizeof experiment, "%s",
                 r->run->experiment ? r->run->experiment : "");
        gw__mlf_exp_of_scope(c, team, project, experiment, &exp);
    }
    snprintf(root, sizeof root, "mlflow-artifacts:/%llu/%s/artifacts",
             (unsigned long long)exp, run_id);
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:o}", "root_uri", root, "files", files));
out:
    json_decref(j);
}
