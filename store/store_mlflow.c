/* MLflow's experiments (DESIGN Appendix B.2): the decimal id of a team's
 * (project, experiment), its MLflow name, lifecycle and tags. Ids are
 * assigned here, at apply, from one counter, so every replica gives the
 * same id to the same command and the digest covers the records. Layouts
 * of the mlx table (store_int.h lists it):
 *
 *   'I' be64 id                     u8 deleted, s64 created, s64 updated,
 *                                   str16 team, project, experiment, name,
 *                                   be16 n_tags, then (str16 key, str16
 *                                   value) per tag
 *   'N' str16 team, 16-byte XXH3-128 of the name     be64 id
 *   'H' str16 team, 16-byte XXH3-128 of str16 project + experiment  be64 id
 *   'T' str16 team, be64 id         (empty): the team's experiments in id
 *                                   order
 *
 * The hashed keys keep keys under LMDB's 511 bytes; every lookup compares
 * the record's own strings, so a collision is a refusal, never a wrong
 * answer. Experiment 0 ("Default": project "default", experiment
 * "Default") exists in every team without a record; its name cannot be
 * taken and it cannot be renamed, deleted or tagged. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MLX_MAX_TAGS 100 /* Tags per experiment. */
#define MLX_KEY_MAX  (1 + 2 + CONTRACT_MAX_TEAM_BYTES + 16)

static const uint8_t mlx_counter_key[1] = {'M'}; /* cnt: the last id. */

/* A decoded record; strings point into the record's bytes. */
struct mlx_rec {
    uint64_t id;
    int is_deleted;
    int64_t created, updated;
    const char *str[4]; /* team, project, experiment, name */
    uint16_t len[4];
    size_t n_tags;
    const uint8_t *tags; /* n_tags (str16 key, str16 value). */
    const uint8_t *end;
};

enum { MLX_TEAM, MLX_PROJECT, MLX_EXPERIMENT, MLX_NAME };

static int
mlx_str16(const uint8_t **p, const uint8_t *end, const char **s, uint16_t *n)
{
    if (end - *p < 2)
        return RV_ECORRUPT;
    *n = rv_get_be16(*p);
    if ((size_t)(end - *p - 2) < *n)
        return RV_ECORRUPT;
    *s = (const char *)*p + 2;
    *p += 2 + *n;
    return RV_OK;
}

static int
mlx_decode(uint64_t id, const MDB_val *v, struct mlx_rec *r)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    memset(r, 0, sizeof *r);
    if (v->mv_size < 17)
        return RV_ECORRUPT;
    r->id = id;
    r->is_deleted = p[0] != 0;
    r->created = (int64_t)(rv_get_be64(p + 1) ^ (1ull << 63));
    r->updated = (int64_t)(rv_get_be64(p + 9) ^ (1ull << 63));
    p += 17;
    for (int i = 0; i < 4; i++)
        if (mlx_str16(&p, end, &r->str[i], &r->len[i]) != RV_OK)
            return RV_ECORRUPT;
    if (end - p < 2)
        return RV_ECORRUPT;
    r->n_tags = rv_get_be16(p);
    p += 2;
    r->tags = p;
    for (size_t i = 0; i < r->n_tags; i++) {
        const char *s;
        uint16_t n;
        if (mlx_str16(&p, end, &s, &n) != RV_OK ||
            mlx_str16(&p, end, &s, &n) != RV_OK)
            return RV_ECORRUPT;
    }
    r->end = p;
    return p == end ? RV_OK : RV_ECORRUPT;
}

static int
mlx_eq(const struct mlx_rec *r, int i, const char *s)
{
    return r->len[i] == strlen(s) && memcmp(r->str[i], s, r->len[i]) == 0;
}

/* Key kinds N and H: str16 team, then a 128-bit hash. */
static size_t
mlx_key_hashed(uint8_t *k, char kind, const char *team, const char *a,
               const char *b)
{
    XXH3_state_t *st = XXH3_createState();
    XXH128_hash_t h;
    uint8_t len[2];
    size_t n = 1;
    k[0] = (uint8_t)kind;
    n += store__key_str16(k + 1, team, strlen(team));
    if (st == NULL) { /* Out of memory: a one-shot hash of the first. */
        h = XXH3_128bits(a, strlen(a));
    } else {
        XXH3_128bits_reset(st);
        if (b != NULL) {
            rv_put_be16(len, (uint16_t)strlen(a));
            XXH3_128bits_update(st, len, 2);
        }
        XXH3_128bits_update(st, a, strlen(a));
        if (b != NULL)
            XXH3_128bits_update(st, b, strlen(b));
        h = XXH3_128bits_digest(st);
        XXH3_freeState(st);
    }
    rv_put_be64(k + n, h.high64);
    rv_put_be64(k + n + 8, h.low64);
    return n + 16;
}

static size_t
mlx_key_team(uint8_t *k, const char *team, uint64_t id)
{
    k[0] = 'T';
    size_t n = 1 + store__key_str16(k + 1, team, strlen(team));
    rv_put_be64(k + n, id);
    return n + 8;
}

/* The record of id in txn (RV_ENOTFOUND if none). */
static int
mlx_load(MDB_txn *txn, const struct store *s, uint64_t id, struct mlx_rec *r,
         char *errmsg)
{
    uint8_t k[9];
    MDB_val v;
    k[0] = 'I';
    rv_put_be64(k + 1, id);
    int rc = store__get(txn, s->dbi[STORE_DB_MLX], k, 9, &v, errmsg);
    if (rc != RV_OK)
        return rc;
    return mlx_decode(id, &v, r);
}

/* The id under a hashed key whose record matches (0: none). */
static int
mlx_lookup(MDB_txn *txn, const struct store *s, const uint8_t *k, size_t kn,
           int field, const char *a, const char *b, const char *team,
           uint64_t *id, char *errmsg)
{
    MDB_val v;
    struct mlx_rec r;
    *id = 0;
    int rc = store__get(txn, s->dbi[STORE_DB_MLX], k, kn, &v, errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_OK;
    if (rc != RV_OK)
        return rc;
    if (v.mv_size != 8)
        return RV_ECORRUPT;
    uint64_t found = rv_get_be64(v.mv_data);
    rc = mlx_load(txn, s, found, &r, errmsg);
    if (rc != RV_OK)
        return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    if (!mlx_eq(&r, MLX_TEAM, team) || !mlx_eq(&r, field, a) ||
        (b != NULL && !mlx_eq(&r, MLX_EXPERIMENT, b))) {
        rv_errmsg_printf(errmsg, "experiment key collision");
        return RV_ECONFLICT;
    }
    *id = found;
    return RV_OK;
}

static int
mlx_is_default(const char *project, const char *experiment)
{
    return strcmp(project, "default") == 0 &&
           strcmp(experiment, "Default") == 0;
}

/* The MLflow name of a scope: "P/E", or "E" in project "default". */
static void
mlx_name_of(char *out, size_t size, const char *project, const char *experiment)
{
    if (strcmp(project, "default") == 0)
        snprintf(out, size, "%s", experiment);
    else
        snprintf(out, size, "%s/%s", project, experiment);
}

/* Is the key ks (kn bytes) one of kvs' keys? */
static int
mlx_key_in(Rv__KV **kvs, size_t n, const char *ks, uint16_t kn)
{
    for (size_t j = 0; j < n; j++)
        if (kvs[j]->key != NULL && strlen(kvs[j]->key) == kn &&
            memcmp(kvs[j]->key, ks, kn) == 0)
            return 1;
    return 0;
}

/* Write record r: its tags but those whose keys are in set or drop, then
 * set's (of a key repeated in set, the last). */
static int
mlx_write(struct store_wctx *w, const struct mlx_rec *r, Rv__KV **set,
          size_t n_set, Rv__KV **drop, size_t n_drop)
{
    struct rv_buf b;
    uint8_t k[9];
    const uint8_t *p = r->tags;
    rv_buf_init(&b);
    rv_buf_append_u8(&b, (uint8_t)(r->is_deleted ? 1 : 0));
    rv_buf_append_be64(&b, (uint64_t)r->created ^ (1ull << 63));
    rv_buf_append_be64(&b, (uint64_t)r->updated ^ (1ull << 63));
    for (int i = 0; i < 4; i++)
        rv_buf_append_str16(&b, r->str[i], r->len[i]);
    size_t count_at = b.len;
    rv_buf_append_be16(&b, 0);
    size_t n_out = 0;
    for (size_t i = 0; i < r->n_tags; i++) {
        const char *ks, *vs;
        uint16_t kn, vn;
        if (mlx_str16(&p, r->end, &ks, &kn) != RV_OK ||
            mlx_str16(&p, r->end, &vs, &vn) != RV_OK) {
            rv_buf_free(&b);
            return RV_ECORRUPT;
        }
        if (mlx_key_in(set, n_set, ks, kn) || mlx_key_in(drop, n_drop, ks, kn))
            continue;
        rv_buf_append_str16(&b, ks, kn);
        rv_buf_append_str16(&b, vs, vn);
        n_out++;
    }
    for (size_t j = 0; j < n_set; j++) {
        if (mlx_key_in(set + j + 1, n_set - j - 1, set[j]->key,
                       (uint16_t)strlen(set[j]->key)))
            continue; /* A later one counts. */
        rv_buf_append_str16(&b, set[j]->key, strlen(set[j]->key));
        rv_buf_append_str16(&b, set[j]->value, strlen(set[j]->value));
        n_out++;
    }
    if (n_out > MLX_MAX_TAGS) {
        rv_buf_free(&b);
        rv_errmsg_printf(w->errmsg, "an experiment has at most %d tags",
                         MLX_MAX_TAGS);
        return RV_EINVAL;
    }
    if (b.is_failed) {
        rv_buf_free(&b);
        return RV_ENOMEM;
    }
    rv_put_be16(b.data + count_at, (uint16_t)n_out);
    k[0] = 'I';
    rv_put_be64(k + 1, r->id);
    int rc = store__put(w, STORE_DB_MLX, k, 9, b.data, b.len);
    rv_buf_free(&b);
    return rc;
}

static int
mlx_tags_check(struct store_wctx *w, Rv__KV **tags, size_t n)
{
    if (n > MLX_MAX_TAGS) {
        rv_errmsg_printf(w->errmsg, "at most %d tags", MLX_MAX_TAGS);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (tags[i]->key == NULL || tags[i]->value == NULL ||
            !contract_key_valid(tags[i]->key, strlen(tags[i]->key))) {
            rv_errmsg_printf(w->errmsg, "invalid tag key");
            return RV_EINVAL;
        }
        int rc = store__str_check(tags[i]->value, CONTRACT_MAX_TAG_VALUE_BYTES,
                                  0, "tag value", w->errmsg);
        if (rc != RV_OK)
            return rc;
    }
    return RV_OK;
}

/* Make a new experiment of team for (project, experiment) named name. */
static int
mlx_insert(struct store_wctx *w, const char *team, const char *project,
           const char *experiment, const char *name, int64_t now, Rv__KV **tags,
           size_t n_tags, uint64_t *id)
{
    uint8_t k[MLX_KEY_MAX], v[8];
    struct mlx_rec r;
    int rc = store__cnt_add(w, mlx_counter_key, 1, 1);
    if (rc != RV_OK)
        return rc;
    *id = store__cnt_get(w->txn, w->s, mlx_counter_key, 1);
    memset(&r, 0, sizeof r);
    r.id = *id;
    r.created = r.updated = now;
    const char *strs[4] = {team, project, experiment, name};
    for (int i = 0; i < 4; i++) {
        r.str[i] = strs[i];
        r.len[i] = (uint16_t)strlen(strs[i]);
    }
    rc = mlx_write(w, &r, tags, n_tags, NULL, 0);
    rv_put_be64(v, *id);
    if (rc == RV_OK)
        rc = store__put(w, STORE_DB_MLX, k,
                        mlx_key_hashed(k, 'N', team, name, NULL), v, 8);
    if (rc == RV_OK)
        rc =
            store__put(w, STORE_DB_MLX, k,
                       mlx_key_hashed(k, 'H', team, project, experiment), v, 8);
    if (rc == RV_OK)
        rc =
            store__put(w, STORE_DB_MLX, k, mlx_key_team(k, team, *id), NULL, 0);
    return rc;
}

int
store__mlflow_ensure(struct store_wctx *w, const char *team,
                     const char *project, const char *experiment, int64_t now,
                     uint64_t *id)
{
    uint8_t k[MLX_KEY_MAX];
    char name[2 * CONTRACT_MAX_SCOPE_BYTES + 2];
    uint64_t by_name;
    *id = 0;
    if (mlx_is_default(project, experiment))
        return RV_OK;
    int rc = mlx_lookup(w->txn, w->s, k,
                        mlx_key_hashed(k, 'H', team, project, experiment),
                        MLX_PROJECT, project, experiment, team, id, w->errmsg);
    if (rc == RV_ECONFLICT) /* A 128-bit collision: the scope gets no id. */
        return RV_OK;
    if (rc != RV_OK || *id != 0)
        return rc;
    mlx_name_of(name, sizeof name, project, experiment);
    rc = mlx_lookup(w->txn, w->s, k, mlx_key_hashed(k, 'N', team, name, NULL),
                    MLX_NAME, name, NULL, team, &by_name, w->errmsg);
    if (rc != RV_OK)
        return rc;
    if (by_name != 0) {
        /* The name was given to another scope by a rename: this scope's
         * experiment gets its scope as name plus its id, made below. */
        uint64_t next = store__cnt_get(w->txn, w->s, mlx_counter_key, 1) + 1;
        size_t n = strlen(name);
        snprintf(name + n, sizeof name - n, " (%llu)",
                 (unsigned long long)next);
    }
    return mlx_insert(w, team, project, experiment, name, now, NULL, 0, id);
}

static int
mlx_name_check(struct store_wctx *w, const char *name)
{
    int rc = store__str_check(name, 2 * CONTRACT_MAX_SCOPE_BYTES + 1, 1, "name",
                              w->errmsg);
    if (rc == RV_OK && strcmp(name, "Default") == 0) {
        rv_errmsg_printf(w->errmsg,
                         "experiment 'Default' already exists (id 0)");
        rc = RV_EEXIST;
    }
    return rc;
}

static int
mlx_create(struct store_wctx *w, const Rv__MlflowExperimentPut *m,
           const char *team, int64_t now, uint64_t *id)
{
    uint8_t k[MLX_KEY_MAX];
    char made[2 * CONTRACT_MAX_SCOPE_BYTES + 2];
    uint64_t found;
    int rc = store__str_check(m->project, CONTRACT_MAX_SCOPE_BYTES, 1,
                              "project", w->errmsg);
    if (rc == RV_OK)
        rc = store__str_check(m->experiment, CONTRACT_MAX_SCOPE_BYTES, 1,
                              "experiment", w->errmsg);
    if (rc != RV_OK)
        return rc;
    const char *name = m->name;
    if (name == NULL) {
        mlx_name_of(made, sizeof made, m->project, m->experiment);
        name = made;
    }
    rc = mlx_name_check(w, name);
    if (rc == RV_OK)
        rc = mlx_tags_check(w, m->tags, m->n_tags);
    if (rc == RV_OK && mlx_is_default(m->project, m->experiment)) {
        rv_errmsg_printf(w->errmsg, "experiment 'Default' already exists "
                                    "(id 0)");
        rc = RV_EEXIST;
    }
    if (rc == RV_OK)
        rc = mlx_lookup(w->txn, w->s, k,
                        mlx_key_hashed(k, 'N', team, name, NULL), MLX_NAME,
                        name, NULL, team, &found, w->errmsg);
    if (rc == RV_OK && found != 0) {
        rv_errmsg_printf(w->errmsg,
                         "Experiment '%.200s' already exists (id %llu)", name,
                         (unsigned long long)found);
        rc = RV_EEXIST;
    }
    if (rc == RV_OK)
        rc = mlx_lookup(w->txn, w->s, k,
                        mlx_key_hashed(k, 'H', team, m->project, m->experiment),
                        MLX_PROJECT, m->project, m->experiment, team, &found,
                        w->errmsg);
    if (rc == RV_OK && found != 0) {
        rv_errmsg_printf(w->errmsg,
                         "project '%.100s' experiment '%.100s' already has "
                         "an experiment (id %llu)",
                         m->project, m->experiment, (unsigned long long)found);
        rc = RV_EEXIST;
    }
    if (rc != RV_OK)
        return rc;
    return mlx_insert(w, team, m->project, m->experiment, name, now, m->tags,
                      m->n_tags, id);
}

/* Remove the keys of tags from r (each must be there). */
static int
mlx_tags_delete(struct store_wctx *w, struct mlx_rec *r, Rv__KV **tags,
                size_t n)
{
    for (size_t j = 0; j < n; j++) {
        const uint8_t *p = r->tags;
        int found = 0;
        for (size_t i = 0; i < r->n_tags && !found; i++) {
            const char *ks, *vs;
            uint16_t kn, vn;
            if (mlx_str16(&p, r->end, &ks, &kn) != RV_OK ||
                mlx_str16(&p, r->end, &vs, &vn) != RV_OK)
                return RV_ECORRUPT;
            found = mlx_key_in(tags + j, 1, ks, kn);
        }
        if (!found) {
            rv_errmsg_printf(w->errmsg,
                             "No tag with name: %.64s in experiment %llu",
                             tags[j]->key != NULL ? tags[j]->key : "",
                             (unsigned long long)r->id);
            return RV_ENOTFOUND;
        }
    }
    return mlx_write(w, r, NULL, 0, tags, n);
}

/* Rename, delete, restore or tag experiment m->experiment_id of team. */
static int
mlx_change(struct store_wctx *w, const Rv__MlflowExperimentPut *m,
           const char *team, int64_t now)
{
    struct mlx_rec r;
    uint8_t k[MLX_KEY_MAX], v[8];
    char old_name[2 * CONTRACT_MAX_SCOPE_BYTES + 2];
    uint64_t found;
    int rc = RV_OK;
    if (!m->has_experiment_id || m->experiment_id == 0) {
        rv_errmsg_printf(w->errmsg, m->has_experiment_id
                                        ? "experiment 0 (Default) cannot be "
                                          "changed"
                                        : "experiment_id is required");
        return RV_EINVAL;
    }
    rc = mlx_load(w->txn, w->s, m->experiment_id, &r, w->errmsg);
    if (rc == RV_OK && !mlx_eq(&r, MLX_TEAM, team))
        rc = RV_ENOTFOUND; /* Another team's is answered as missing. */
    if (rc == RV_ENOTFOUND) {
        rv_errmsg_printf(w->errmsg, "No Experiment with id=%llu exists",
                         (unsigned long long)m->experiment_id);
        return rc;
    }
    if (rc != RV_OK)
        return rc;
    r.updated = now > r.updated ? now : r.updated;
    switch (m->op) {
    case RV__MLFLOW_OP__MLFLOW_DELETE:
    case RV__MLFLOW_OP__MLFLOW_RESTORE:
        r.is_deleted = m->op == RV__MLFLOW_OP__MLFLOW_DELETE;
        return mlx_write(w, &r, NULL, 0, NULL, 0);
    case RV__MLFLOW_OP__MLFLOW_SET_TAG:
        if (r.is_deleted) {
            rv_errmsg_printf(w->errmsg, "experiment %llu is deleted",
                             (unsigned long long)r.id);
            return RV_EINVAL;
        }
        rc = mlx_tags_check(w, m->tags, m->n_tags);
        return rc != RV_OK ? rc : mlx_write(w, &r, m->tags, m->n_tags, NULL, 0);
    case RV__MLFLOW_OP__MLFLOW_DELETE_TAG:
        rc = mlx_tags_check(w, m->tags, m->n_tags);
        return rc != RV_OK ? rc : mlx_tags_delete(w, &r, m->tags, m->n_tags);
    case RV__MLFLOW_OP__MLFLOW_RENAME:
        rc = mlx_name_check(w, m->name != NULL ? m->name : "");
        if (rc == RV_OK)
            rc = mlx_lookup(w->txn, w->s, k,
                            mlx_key_hashed(k, 'N', team, m->name, NULL),
                            MLX_NAME, m->name, NULL, team, &found, w->errmsg);
        if (rc != RV_OK)
            return rc;
        if (found == r.id)
            return RV_OK;
        if (found != 0) {
            rv_errmsg_printf(w->errmsg,
                             "Experiment '%.200s' already exists (id %llu)",
                             m->name, (unsigned long long)found);
            return RV_EEXIST;
        }
        snprintf(old_name, sizeof old_name, "%.*s", (int)r.len[MLX_NAME],
                 r.str[MLX_NAME]);
        rc = store__del(w, STORE_DB_MLX, k,
                        mlx_key_hashed(k, 'N', team, old_name, NULL));
        r.str[MLX_NAME] = m->name;
        r.len[MLX_NAME] = (uint16_t)strlen(m->name);
        if (rc == RV_OK)
            rc = mlx_write(w, &r, NULL, 0, NULL, 0);
        rv_put_be64(v, r.id);
        if (rc == RV_OK)
            rc = store__put(w, STORE_DB_MLX, k,
                            mlx_key_hashed(k, 'N', team, m->name, NULL), v, 8);
        return rc;
    default:
        rv_errmsg_printf(w->errmsg, "unknown MLflow experiment operation");
        return RV_EINVAL;
    }
}

int
store__mlflow_experiment(struct store_wctx *w, const Rv__Command *c,
                         struct store_result *res)
{
    const Rv__MlflowExperimentPut *m = c->mlflow_experiment;
    const char *team = m->team != NULL && m->team[0] ? m->team : "default";
    int64_t now = c->has_stamped_at_ms ? c->stamped_at_ms : 0;
    uint64_t id = m->has_experiment_id ? m->experiment_id : 0;
    int rc =
        store__str_check(team, CONTRACT_MAX_TEAM_BYTES, 1, "team", w->errmsg);
    if (rc != RV_OK)
        return rc;
    switch (m->op) {
    case RV__MLFLOW_OP__MLFLOW_CREATE:
        rc = mlx_create(w, m, team, now, &id);
        break;
    case RV__MLFLOW_OP__MLFLOW_ENSURE:
        rc = store__str_check(m->project, CONTRACT_MAX_SCOPE_BYTES, 1,
                              "project", w->errmsg);
        if (rc == RV_OK)
            rc = store__str_check(m->experiment, CONTRACT_MAX_SCOPE_BYTES, 1,
                                  "experiment", w->errmsg);
        if (rc == RV_OK)
            rc = store__mlflow_ensure(w, team, m->project, m->experiment, now,
                                      &id);
        break;
    default:
        rc = mlx_change(w, m, team, now);
        break;
    }
    if (rc == RV_OK)
        snprintf(res->run_id, sizeof res->run_id, "%llu",
                 (unsigned long long)id);
    return rc;
}

/* ---- Reads --------------------------------------------------------------- */

void
store_mlflow_free(struct store_mlflow_exp *e)
{
    if (e == NULL)
        return;
    free(e->team);
    free(e->project);
    free(e->experiment);
    free(e->name);
    for (size_t i = 0; i < e->n_tags; i++) {
        free(e->tags[i].key);
        free(e->tags[i].value);
    }
    free(e->tags);
    memset(e, 0, sizeof *e);
}

static int
mlx_fill(const struct mlx_rec *r, struct store_mlflow_exp *e)
{
    char **dst[4] = {&e->team, &e->project, &e->experiment, &e->name};
    const uint8_t *p = r->tags;
    memset(e, 0, sizeof *e);
    e->id = r->id;
    e->is_deleted = r->is_deleted;
    e->created_at_ms = r->created;
    e->updated_at_ms = r->updated;
    for (int i = 0; i < 4; i++)
        if ((*dst[i] = store__strndup(r->str[i], r->len[i])) == NULL)
            goto nomem;
    e->tags = calloc(r->n_tags ? r->n_tags : 1, sizeof *e->tags);
    if (e->tags == NULL)
        goto nomem;
    for (size_t i = 0; i < r->n_tags; i++) {
        const char *ks, *vs;
        uint16_t kn, vn;
        if (mlx_str16(&p, r->end, &ks, &kn) != RV_OK ||
            mlx_str16(&p, r->end, &vs, &vn) != RV_OK) {
            store_mlflow_free(e);
            return RV_ECORRUPT;
        }
        e->tags[i].key = store__strndup(ks, kn);
        e->tags[i].value = store__strndup(vs, vn);
        e->n_tags = i + 1;
        if (e->tags[i].key == NULL || e->tags[i].value == NULL)
            goto nomem;
    }
    return RV_OK;
nomem:
    store_mlflow_free(e);
    return RV_ENOMEM;
}

/* The team a read of experiments acts in: the reader's own, else the one
 * asked for, else "default". NULL when the reader may not see team. */
static const char *
mlx_read_team(const struct store_read *r, const char *team)
{
    if (r->is_scoped)
        return team == NULL || team[0] == '\0' || strcmp(team, r->team) == 0
                   ? r->team
                   : NULL;
    return team != NULL && team[0] != '\0' ? team : "default";
}

/* Experiment 0 of team, made up (it has no record). */
static int
mlx_default(const char *team, struct store_mlflow_exp *e)
{
    memset(e, 0, sizeof *e);
    e->team = store__strndup(team, strlen(team));
    e->project = store__strndup("default", 7);
    e->experiment = store__strndup("Default", 7);
    e->name = store__strndup("Default", 7);
    e->tags = calloc(1, sizeof *e->tags);
    if (e->team == NULL || e->project == NULL || e->experiment == NULL ||
        e->name == NULL || e->tags == NULL) {
        store_mlflow_free(e);
        return RV_ENOMEM;
    }
    return RV_OK;
}

int
store_mlflow_get(struct store_read *r, const struct store_mlflow_query *q,
                 struct store_mlflow_exp *out, char *errmsg)
{
    struct mlx_rec rec;
    uint8_t k[MLX_KEY_MAX];
    uint64_t id = q->id;
    int rc = RV_OK;
    const char *team = mlx_read_team(r, q->team);
    memset(out, 0, sizeof *out);
    if (team == NULL)
        goto missing;
    if (q->name != NULL) {
        if (strcmp(q->name, "Default") == 0)
            return mlx_default(team, out);
        rc = mlx_lookup(r->txn, r->s, k,
                        mlx_key_hashed(k, 'N', team, q->name, NULL), MLX_NAME,
                        q->name, NULL, team, &id, errmsg);
    } else if (q->project != NULL && q->experiment != NULL) {
        if (mlx_is_default(q->project, q->experiment))
            return mlx_default(team, out);
        rc = mlx_lookup(r->txn, r->s, k,
                        mlx_key_hashed(k, 'H', team, q->project, q->experiment),
                        MLX_PROJECT, q->project, q->experiment, team, &id,
                        errmsg);
    } else if (id == 0) {
        return mlx_default(team, out);
    }
    if (rc == RV_ECONFLICT)
        goto missing;
    if (rc != RV_OK)
        return rc;
    if (id == 0)
        goto missing;
    rc = mlx_load(r->txn, r->s, id, &rec, errmsg);
    if (rc == RV_ENOTFOUND || (rc == RV_OK && !mlx_eq(&rec, MLX_TEAM, team)))
        goto missing;
    if (rc != RV_OK)
        return rc;
    return mlx_fill(&rec, out);
missing:
    if (q->name != NULL)
        rv_errmsg_printf(errmsg, "Could not find experiment with name '%.200s'",
                         q->name);
    else
        rv_errmsg_printf(errmsg, "No Experiment with id=%llu exists",
                         (unsigned long long)q->id);
    return RV_ENOTFOUND;
}

int
store_mlflow_list(struct store_read *r, const struct store_mlflow_query *q,
                  struct store_mlflow_exp **out, size_t *n_out, char *errmsg)
{
    const char *team = mlx_read_team(r, q->team);
    size_t max = q->max > 0 && q->max <= STORE_MLFLOW_MAX_LIST
                     ? q->max
                     : STORE_MLFLOW_MAX_LIST;
    struct store_mlflow_exp *v = calloc(max, sizeof *v);
    size_t n = 0;
    int rc = RV_OK;
    *out = NULL;
    *n_out = 0;
    if (v == NULL)
        return RV_ENOMEM;
    if (team == NULL) {
        *out = v;
        return RV_OK;
    }
    if (q->after_id == 0 && q->view != STORE_VIEW_DELETED) {
        rc = mlx_default(team, &v[n]);
        n += rc == RV_OK;
    }
    uint8_t k[MLX_KEY_MAX];
    size_t kn = mlx_key_team(k, team, q->after_id + 1), pn = kn - 8;
    MDB_cursor *cur = NULL;
    MDB_val key = {kn, k}, val;
    if (rc == RV_OK && mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_MLX], &cur))
        rc = RV_EIO;
    int mrc = rc == RV_OK ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)
                          : MDB_NOTFOUND;
    for (; rc == RV_OK && mrc == 0 && n < max;
         mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        struct mlx_rec rec;
        if (key.mv_size != kn || memcmp(key.mv_data, k, pn) != 0)
            break;
        uint64_t id = rv_get_be64((const uint8_t *)key.mv_data + pn);
        rc = mlx_load(r->txn, r->s, id, &rec, errmsg);
        if (rc != RV_OK)
            break;
        if ((q->view == STORE_VIEW_ACTIVE && rec.is_deleted) ||
            (q->view == STORE_VIEW_DELETED && !rec.is_deleted))
            continue;
        rc = mlx_fill(&rec, &v[n]);
        n += rc == RV_OK;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (rc != RV_OK) {
        for (size_t i = 0; i < n; i++)
            store_mlflow_free(&v[i]);
        free(v);
        return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    }
    *out = v;
    *n_out = n;
    return RV_OK;
}
