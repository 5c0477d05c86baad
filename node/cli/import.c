/* runvault import DIR: the runs of an export tree, idempotently. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- import ------------------------------------------------------------- *
 * Every run of an export tree, with the same run_id (resume allowed), one
 * batcher per run whose client_id is a hash of the run_id and whose seqs
 * start at 1: the same tree always gives the same commands with the same
 * idempotency keys, so importing it again applies nothing twice. (Into
 * the cluster the tree came from, the points would be logged again: the
 * keys there are other ones.) */

struct cli_import {
    struct cli *cl;
    struct rvc_batcher *b;
    struct cli_loglines *logs;
    const char *dir;
    struct cli_xstats *st;
    char why[RV_ERRMSG_SIZE]; /* A bad file: which and why. */
};

static json_t *
cli__load_json(struct cli_import *im, const char *name)
{
    char path[CLI_PATH_BYTES];
    json_error_t jerr;
    if (cli__join(path, sizeof path, im->dir, name) != 0) {
        rv_errmsg_printf(im->why, "%s/%s: path too long", im->dir, name);
        return NULL;
    }
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        rv_errmsg_printf(im->why, "%s:%d: %s", path, jerr.line, jerr.text);
    else if (!json_is_object(j)) {
        rv_errmsg_printf(im->why, "%s: not a JSON object", path);
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* Read the lines of dir/name (a missing file has none) and hand each,
 * without its newline, to fn; fn's error stops it. */
static int
cli__each_line(struct cli_import *im, const char *name,
               int (*fn)(struct cli_import *im, char *line, size_t n,
                         char *why))
{
    char path[CLI_PATH_BYTES], why[RV_ERRMSG_SIZE] = "";
    if (cli__join(path, sizeof path, im->dir, name) != 0) {
        rv_errmsg_printf(im->why, "%s/%s: path too long", im->dir, name);
        return RV_EINVAL;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL && errno == ENOENT)
        return RV_OK;
    if (f == NULL) {
        rv_errmsg_printf(im->why, "%s: %s", path, strerror(errno));
        return RV_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = RV_OK;
    for (unsigned long no = 1;
         rc == RV_OK && (len = getline(&line, &cap, f)) >= 0; no++) {
        size_t n = (size_t)len;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0)
            continue;
        rc = n > CLI_MAX_LINE_BYTES ? RV_ETOOBIG : fn(im, line, n, why);
        if (rc == RV_EINVAL || rc == RV_ETOOBIG)
            rv_errmsg_printf(im->why, "%s:%lu: %s", path, no,
                             rc == RV_ETOOBIG ? "line too long" : why);
    }
    if (rc == RV_OK && ferror(f)) {
        rv_errmsg_printf(im->why, "%s: %s", path, strerror(errno));
        rc = RV_EIO;
    }
    free(line);
    fclose(f);
    return rc;
}

static int
cli__import_event(struct cli_import *im, char *line, size_t n, char *why)
{
    json_error_t jerr;
    const char *key, *ctx;
    int64_t step = 0, ts = 0;
    double value;
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
    int rc = RV_EINVAL;
    if (o == NULL || !json_is_object(o))
        rv_errmsg_printf(why, "%s", o ? "not a JSON object" : jerr.text);
    else if (cli__jstr(o, "key", 1, &key, why) == 0 &&
             cli__jstr(o, "context", 0, &ctx, why) == 0 &&
             cli__jint(o, "step", 1, &step, why) == 0 &&
             cli__jint(o, "timestamp", 1, &ts, why) == 0 &&
             cli__jvalue(o, "value", &value, why) == 0) {
        rc = rvc_batcher_point(im->b, im->logs->run_id, key, ctx, step, ts,
                               value);
        if (rc == RV_EINVAL)
            rv_errmsg_printf(why, "%s", rvc_batcher_errmsg(im->b));
    }
    json_decref(o);
    return rc;
}

/* "<timestamp> <stdout|stderr> <escaped text>" (see export). */
static int
cli__import_log(struct cli_import *im, char *line, size_t n, char *why)
{
    char *end;
    errno = 0;
    long long ts = strtoll(line, &end, 10);
    Rv__Stream stream;
    if (end == line || errno != 0 || *end != ' ') {
        rv_errmsg_printf(why, "no timestamp");
        return RV_EINVAL;
    }
    char *p = end + 1;
    if (strncmp(p, "stdout ", 7) == 0)
        stream = RV__STREAM__STDOUT;
    else if (strncmp(p, "stderr ", 7) == 0)
        stream = RV__STREAM__STDERR;
    else {
        rv_errmsg_printf(why, "the stream is not stdout or stderr");
        return RV_EINVAL;
    }
    p += 7;
    size_t k = 0;
    char *out = p; /* Unescape in place: the text only shrinks. */
    for (; p < line + n; p++) {
        if (*p != '\\') {
            out[k++] = *p;
            continue;
        }
        char e = ++p < line + n ? *p : '\0';
        if (e != '\\' && e != 'n' && e != 'r') {
            rv_errmsg_printf(why, "bad escape in the text");
            return RV_EINVAL;
        }
        out[k++] = e == 'n' ? '\n' : e == 'r' ? '\r' : '\\';
    }
    im->st->n_log_lines++;
    return cli__loglines_add(im->logs, im->b, im->logs->run_id, (int64_t)ts,
                             stream, out, k);
}

static int
cli__import_artifacts(struct cli_import *im, const json_t *meta,
                      const char *run_id)
{
    const json_t *arts = json_object_get(meta, "artifacts");
    char file[CLI_PATH_BYTES];
    if (arts == NULL)
        return RV_OK;
    if (!json_is_array(arts)) {
        rv_errmsg_printf(im->why,
                         "%s/meta.json: \"artifacts\" is not an "
                         "array",
                         im->dir);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(arts); i++) {
        const json_t *a = json_array_get(arts, i);
        const char *path, *type, *sha;
        char why[RV_ERRMSG_SIZE] = "";
        if (!json_is_object(a) || cli__jstr(a, "path", 1, &path, why) ||
            cli__jstr(a, "content_type", 0, &type, why) ||
            cli__jstr(a, "sha256", 0, &sha, why) ||
            cli__media_path(im->dir, path, file, sizeof file) != 0) {
            rv_errmsg_printf(im->why, "%s/meta.json: artifact %zu: %s", im->dir,
                             i, why[0] ? why : "bad entry");
            return RV_EINVAL;
        }
        int rc =
            cli__queue_artifact(im->b, run_id, path, type, file, sha, im->why);
        if (rc != RV_OK)
            return rc == RV_EIO || rc == RV_EMALFORMED ? RV_EINVAL : rc;
        im->st->n_artifacts++;
    }
    return RV_OK;
}

/* The run_create (from meta.json and status.json) and, at the end, the
 * status with its end time. */
static int
cli__import_head(struct cli_import *im, const json_t *meta,
                 const json_t *status, Rv__RunSetStatus *set)
{
    Rv__RunCreate c = RV__RUN_CREATE__INIT;
    const char *st_name;
    struct cli_kvs params, tags;
    char why[RV_ERRMSG_SIZE] = "";
    int64_t created = 0, ended = 0;
    if (cli__jstr(meta, "run_id", 1, (const char **)&c.run_id, why) ||
        cli__jstr(meta, "team", 0, (const char **)&c.team, why) ||
        cli__jstr(meta, "project", 1, (const char **)&c.project, why) ||
        cli__jstr(meta, "experiment", 1, (const char **)&c.experiment, why) ||
        cli__jstr(meta, "name", 0, (const char **)&c.name, why) ||
        cli__jstr(meta, "user", 0, (const char **)&c.user, why) ||
        cli__jstr(status, "status", 1, &st_name, why) ||
        cli__jint(status, "created_at", 0, &created, why) ||
        cli__jint(status, "ended_at", 0, &ended, why) ||
        proto_status_parse(st_name, &set->status) != 0) {
        rv_errmsg_printf(im->why, "%s: meta.json or status.json: %s", im->dir,
                         why[0] ? why : "unknown status");
        return RV_EINVAL;
    }
    c.created_at_ms = created;
    set->run_id = c.run_id;
    set->has_ended_at_ms = 1; /* Never stamped anew: 0 stays "not ended". */
    set->ended_at_ms = ended;
    if (cli__kvs_from_json(json_object_get(meta, "params"), "params", &params,
                           why) != 0)
        goto bad;
    if (cli__kvs_from_json(json_object_get(meta, "tags"), "tags", &tags, why) !=
        0) {
        cli__kvs_free(&params);
        goto bad;
    }
    snprintf(im->logs->run_id, sizeof im->logs->run_id, "%s", c.run_id);
    int rc = cli__queue_run(im->b, &c, &params, &tags);
    cli__kvs_free(&params);
    cli__kvs_free(&tags);
    return rc;
bad:
    rv_errmsg_printf(im->why, "%s/meta.json: %s", im->dir, why);
    return RV_EINVAL;
}

static int
cli__import_run(struct cli *cl, const char *dir, struct cli_xstats *st,
                char *why)
{
    struct cli_import im = {cl, NULL, NULL, dir, st, ""};
    Rv__RunSetStatus set = RV__RUN_SET_STATUS__INIT;
    json_t *meta = cli__load_json(&im, "meta.json");
    json_t *status = meta ? cli__load_json(&im, "status.json") : NULL;
    int rc = status != NULL ? RV_OK : RV_EINVAL;
    const char *run_id =
        meta ? json_string_value(json_object_get(meta, "run_id")) : NULL;
    im.logs = calloc(1, sizeof *im.logs);
    if (rc == RV_OK && (run_id == NULL || im.logs == NULL)) {
        rv_errmsg_printf(im.why, "%s/meta.json: no \"run_id\"", dir);
        rc = RV_EINVAL;
    }
    if (rc == RV_OK) {
        uint64_t id = cli__hash(CLI_IMPORT_ID_SALT, run_id);
        rc = rvc_batcher_open(&im.b, cl->c, id != 0 ? id : 1, 0);
    }
    if (rc == RV_OK)
        rc = cli__import_head(&im, meta, status, &set);
    if (rc == RV_OK)
        rc = cli__each_line(&im, "events.jsonl", cli__import_event);
    if (rc == RV_OK)
        rc = cli__each_line(&im, "logs.txt", cli__import_log);
    if (rc == RV_OK)
        rc = cli__loglines_flush(im.logs, im.b);
    if (rc == RV_OK)
        rc = cli__import_artifacts(&im, meta, run_id);
    if (rc == RV_OK && set.status != RV__RUN_STATUS__RUNNING) {
        Rv__Command cmd = RV__COMMAND__INIT;
        cmd.body_case = RV__COMMAND__BODY_RUN_STATUS;
        cmd.run_status = &set;
        rc = rvc_batcher_command(im.b, &cmd);
    }
    if (rc == RV_OK)
        rc = rvc_batcher_flush(im.b);
    if (im.b != NULL) {
        const struct rvc_batch_stats *bs = rvc_batcher_stats(im.b);
        st->n_points += bs->n_points;
        st->n_duplicates += bs->n_duplicates;
        if (bs->failed_code != RV_OK && rc == bs->failed_code)
            snprintf(im.why, sizeof im.why, "%s: %s%s", dir,
                     cli__refusal_hint(rc), rvc_batcher_errmsg(im.b));
    }
    if (rc == RV_OK)
        st->n_runs++;
    snprintf(why, RV_ERRMSG_SIZE, "%s", im.why);
    if (im.logs != NULL)
        cli__loglines_clear(im.logs);
    free(im.logs);
    rvc_batcher_close(im.b);
    json_decref(status);
    json_decref(meta);
    return rc;
}

static int
cli__names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir that are directories (not starting with '.'),
 * sorted; -1 if dir cannot be read. */
static int
cli__subdirs(const char *dir, char ***out, size_t *n_out)
{
    DIR *d = opendir(dir);
    size_t cap = 0;
    *out = NULL;
    *n_out = 0;
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char path[CLI_PATH_BYTES];
        struct stat st;
        if (e->d_name[0] == '.' ||
            cli__join(path, sizeof path, dir, e->d_name) != 0 ||
            stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (*n_out == cap) {
            cap = cap ? 2 * cap : 16;
            char **v = realloc(*out, cap * sizeof *v);
            if (v == NULL)
                break;
            *out = v;
        }
        size_t n = strlen(path);
        char *copy = malloc(n + 1);
        if (copy == NULL)
            break;
        memcpy(copy, path, n + 1);
        (*out)[(*n_out)++] = copy;
    }
    closedir(d);
    if (*n_out > 0)
        qsort(*out, *n_out, sizeof **out, cli__names_cmp);
    return 0;
}

/* DIR/project/experiment/run directories holding a meta.json, sorted. */
static int
cli__find_runs(const char *root, char ***runs, size_t *n_runs)
{
    char **projects, **exps, **ids;
    size_t np, ne, ni, cap = 0;
    *runs = NULL;
    *n_runs = 0;
    if (cli__subdirs(root, &projects, &np) != 0)
        return -1;
    for (size_t p = 0; p < np; p++) {
        cli__subdirs(projects[p], &exps, &ne);
        for (size_t e = 0; e < ne; e++) {
            cli__subdirs(exps[e], &ids, &ni);
            for (size_t i = 0; i < ni; i++) {
                char meta[CLI_PATH_BYTES];
                struct stat st;
                snprintf(meta, sizeof meta, "%s/meta.json", ids[i]);
                if (stat(meta, &st) != 0)
                    continue;
                if (*n_runs == cap) {
                    cap = cap ? 2 * cap : 64;
                    char **v = realloc(*runs, cap * sizeof *v);
                    if (v == NULL)
                        continue;
                    *runs = v;
                }
                (*runs)[(*n_runs)++] = ids[i];
                ids[i] = NULL;
            }
            cli__strs_free(ids, ni);
        }
        cli__strs_free(exps, ne);
    }
    cli__strs_free(projects, np);
    return 0;
}

int
cli__import(struct cli *cl, const struct cli_args *a)
{
    char **runs;
    size_t n_runs;
    if (cli__find_runs(a->pos[0], &runs, &n_runs) != 0) {
        fprintf(stderr, "runvault import: %s: %s\n", a->pos[0],
                strerror(errno));
        return RV_EXIT_USAGE;
    }
    struct cli_xstats st;
    struct cli_progress pr = {cl->is_tty, 0};
    char why[RV_ERRMSG_SIZE] = "";
    int rc = RV_OK;
    memset(&st, 0, sizeof st);
    for (size_t i = 0; rc == RV_OK && i < n_runs; i++) {
        rc = cli__import_run(cl, runs[i], &st, why);
        cli__progress(&pr, "import", i + 1, n_runs);
    }
    cli__strs_free(runs, n_runs);
    if (rc != RV_OK) {
        snprintf(cl->errmsg, sizeof cl->errmsg, "%s",
                 why[0] ? why : rv_strerror(rc));
        return cli__fail(cl, rc, cli__exit_for_data(rc));
    }
    printf("import: %llu runs, %llu points, %llu log lines, %llu artifacts "
           "(%llu commands applied before)\n",
           (unsigned long long)st.n_runs, (unsigned long long)st.n_points,
           (unsigned long long)st.n_log_lines,
           (unsigned long long)st.n_artifacts,
           (unsigned long long)st.n_duplicates);
    return RV_EXIT_OK;
}
