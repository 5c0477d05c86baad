/* runvault export --out DIR: runs to a directory tree. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- export ------------------------------------------------------------- *
 * The Runicorn layout, one directory per run:
 *
 *   DIR/PROJECT/EXPERIMENT/RUN_ID/
 *     meta.json     {"run_id","team","project","experiment","name","user",
 *                    "params":{k:v},"tags":{k:v},"artifacts":[{"path",
 *                    "content_type","size","sha256"}]}
 *     status.json   {"status","created_at","ended_at"} (ms; null: none)
 *     events.jsonl  {"key","context","step","timestamp","value"} per point,
 *                   series in the order of the run's summary, points in
 *                   step order; value as in the HTTP API (NaN a string)
 *     logs.txt      "<timestamp ms> <stdout|stderr> <text>" per line; in the
 *                   text '\' is written "\\", newline "\n", return "\r"
 *     media/PATH    each complete artifact's bytes
 *
 * PROJECT, EXPERIMENT and each part of PATH are made safe as file names:
 * bytes other than [A-Za-z0-9_-] and '.' (not leading) become %XX; a name
 * longer than CLI_NAME_BYTES keeps its start and gets "~" and a hash.
 * Import reads the names from meta.json, never from the directory names. */

static void
cli__enc_name(const char *s, size_t n, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    char full[3 * CONTRACT_MAX_ARTIFACT_PATH_BYTES + 1];
    size_t k = 0, cut = 0;
    if (n > CONTRACT_MAX_ARTIFACT_PATH_BYTES)
        n = CONTRACT_MAX_ARTIFACT_PATH_BYTES;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = (uint8_t)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
            (ch == '.' && i > 0)) {
            full[k++] = (char)ch;
        } else {
            full[k++] = '%';
            full[k++] = digits[ch >> 4];
            full[k++] = digits[ch & 15];
        }
        if (k <= CLI_NAME_BYTES - 20)
            cut = k; /* Never inside a %XX. */
    }
    full[k] = '\0';
    if (n == 0) {
        snprintf(out, CLI_NAME_BYTES, "_");
    } else if (k < CLI_NAME_BYTES) {
        memcpy(out, full, k + 1);
    } else {
        char whole[CONTRACT_MAX_ARTIFACT_PATH_BYTES + 1];
        snprintf(whole, sizeof whole, "%.*s", (int)n, s);
        snprintf(out, CLI_NAME_BYTES, "%.*s~%016llx", (int)cut, full,
                 (unsigned long long)cli__hash(whole, ""));
    }
}

/* dir/enc(part)/enc(part)... of an artifact path; -1 if too long. */
int
cli__media_path(const char *dir, const char *path, char *out, size_t size)
{
    size_t k = (size_t)snprintf(out, size, "%s/media", dir);
    for (const char *p = path; k < size;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char part[CLI_NAME_BYTES];
        cli__enc_name(p, n, part);
        k += (size_t)snprintf(out + k, size - k, "/%s", part);
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    return k < size ? 0 : -1;
}

/* mkdir -p of path's directory part (is_file) or of path itself. */
static int
cli__mkdirs(const char *path, int is_file)
{
    char p[CLI_PATH_BYTES];
    size_t n = strlen(path);
    if (n >= sizeof p)
        return -1;
    memcpy(p, path, n + 1);
    if (is_file) {
        char *slash = strrchr(p, '/');
        if (slash == NULL)
            return 0;
        *slash = '\0';
    }
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char keep = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return -1;
        *s = keep;
        if (keep == '\0')
            return 0;
    }
}

/* Close f, which was written to path; RV_EIO (why in errmsg) on error. */
static int
cli__close_file(struct cli *cl, FILE *f, const char *path)
{
    int is_bad = ferror(f);
    if (fclose(f) != 0 || is_bad) {
        rv_errmsg_printf(cl->errmsg, "%s: %s", path, strerror(errno));
        return RV_EIO;
    }
    return RV_OK;
}

/* dir/name into out[size]; -1 if it does not fit. */
int
cli__join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Create path (its directories too) for writing; with dir, path is first
 * set to dir/name (path holds CLI_PATH_BYTES). */
static FILE *
cli__open_out(struct cli *cl, char *path, const char *dir, const char *name)
{
    if (dir != NULL && cli__join(path, CLI_PATH_BYTES, dir, name) != 0) {
        rv_errmsg_printf(cl->errmsg, "%s/%s: path too long", dir, name);
        return NULL;
    }
    FILE *f = cli__mkdirs(path, 1) == 0 ? fopen(path, "wb") : NULL;
    if (f == NULL)
        rv_errmsg_printf(cl->errmsg, "%s: %s", path, strerror(errno));
    return f;
}

/* The bytes of one artifact into media/, checked against its SHA-256. */
static int
cli__export_artifact(struct cli *cl, const char *dir, const char *run_id,
                     const Rv__ArtifactInfo *art)
{
    char file[CLI_PATH_BYTES];
    if (cli__media_path(dir, art->path, file, sizeof file) != 0) {
        rv_errmsg_printf(cl->errmsg, "artifact '%.64s': path too long",
                         art->path);
        return RV_EIO;
    }
    FILE *f = cli__open_out(cl, file, NULL, NULL);
    if (f == NULL)
        return RV_EIO;
    struct sha256_ctx sha;
    uint8_t digest[SHA256_DIGEST_SIZE];
    uint64_t off = 0;
    int rc = RV_OK;
    sha256_init(&sha);
    while (rc == RV_OK && off < art->size) {
        Rv__Request req = RV__REQUEST__INIT;
        Rv__ArtifactRequest ar = RV__ARTIFACT_REQUEST__INIT;
        Rv__Response *resp;
        ar.run_id = (char *)run_id;
        ar.path = art->path;
        ar.has_offset = ar.has_max_bytes = 1;
        ar.offset = off;
        ar.max_bytes = CLI_ARTIFACT_READ;
        req.body_case = RV__REQUEST__BODY_ARTIFACT;
        req.artifact = &ar;
        rc = cli__rpc(cl, &req, &resp);
        if (rc != RV_OK)
            break;
        if (resp->data.len == 0 || resp->data.len > art->size - off) {
            rv_errmsg_printf(cl->errmsg,
                             "artifact '%.64s': %zu bytes at offset %llu of "
                             "%llu",
                             art->path, resp->data.len, (unsigned long long)off,
                             (unsigned long long)art->size);
            rc = RV_EMALFORMED;
        } else {
            sha256_update(&sha, resp->data.len, resp->data.data);
            if (fwrite(resp->data.data, 1, resp->data.len, f) != resp->data.len)
                rc = RV_EIO;
            off += resp->data.len;
        }
        rvc_response_free(resp);
    }
    int crc = cli__close_file(cl, f, file);
    if (rc != RV_OK)
        return rc;
    sha256_digest(&sha, SHA256_DIGEST_SIZE, digest);
    if (art->has_sha256 &&
        (art->sha256.len != SHA256_DIGEST_SIZE ||
         memcmp(art->sha256.data, digest, SHA256_DIGEST_SIZE) != 0)) {
        rv_errmsg_printf(cl->errmsg, "artifact '%.64s': SHA-256 differs",
                         art->path);
        return RV_ECORRUPT;
    }
    return crc;
}

/* meta.json's "artifacts": the complete ones. */
static json_t *
cli__export_arts_json(const Rv__Response *arts)
{
    char hex[2 * SHA256_DIGEST_SIZE + 1];
    json_t *list = json_array();
    for (size_t i = 0; arts != NULL && i < arts->n_artifacts; i++) {
        const Rv__ArtifactInfo *a = arts->artifacts[i];
        if (!a->is_complete)
            continue;
        rv_hex(a->sha256.data,
               a->sha256.len < SHA256_DIGEST_SIZE ? a->sha256.len
                                                  : SHA256_DIGEST_SIZE,
               hex);
        json_t *o = json_object();
        json_object_set_new(o, "path", cli__json_string(a->path));
        json_object_set_new(o, "content_type",
                            cli__json_string(a->content_type));
        json_object_set_new(o, "size", json_integer((json_int_t)a->size));
        json_object_set_new(o, "sha256", json_string(hex));
        json_array_append_new(list, o);
    }
    return list;
}

static int
cli__export_meta(struct cli *cl, const char *dir, const Rv__RunInfo *r,
                 const Rv__Response *arts)
{
    char path[CLI_PATH_BYTES];
    FILE *f = cli__open_out(cl, path, dir, "meta.json");
    if (f == NULL)
        return RV_EIO;
    json_t *meta = json_object();
    json_object_set_new(meta, "run_id", cli__json_string(r->run_id));
    json_object_set_new(meta, "team", cli__json_string(r->team));
    json_object_set_new(meta, "project", cli__json_string(r->project));
    json_object_set_new(meta, "experiment", cli__json_string(r->experiment));
    json_object_set_new(meta, "name", cli__json_string(r->name));
    json_object_set_new(meta, "user", cli__json_string(r->user));
    json_object_set_new(meta, "params", cli__json_kvs(r->params, r->n_params));
    json_object_set_new(meta, "tags", cli__json_kvs(r->tags, r->n_tags));
    json_object_set_new(meta, "artifacts", cli__export_arts_json(arts));
    cli__json_print(f, meta, 0);
    int rc = cli__close_file(cl, f, path);
    if (rc != RV_OK)
        return rc;
    if ((f = cli__open_out(cl, path, dir, "status.json")) == NULL)
        return RV_EIO;
    json_t *status = json_object();
    json_object_set_new(status, "status",
                        cli__json_string(proto_status_name(r->status)));
    json_object_set_new(status, "created_at",
                        cli__json_time(r->has_created_at_ms, r->created_at_ms));
    json_object_set_new(status, "ended_at",
                        cli__json_time(r->has_ended_at_ms, r->ended_at_ms));
    cli__json_print(f, status, 0);
    return cli__close_file(cl, f, path);
}

static int
cli__export_events(struct cli *cl, const char *dir, const Rv__RunInfo *r,
                   struct cli_xstats *st)
{
    char path[CLI_PATH_BYTES];
    FILE *f = cli__open_out(cl, path, dir, "events.jsonl");
    if (f == NULL)
        return RV_EIO;
    int rc = RV_OK;
    for (size_t i = 0; rc == RV_OK && i < r->n_summary; i++) {
        const Rv__Summary *m = r->summary[i];
        struct cli_points pts;
        memset(&pts, 0, sizeof pts);
        rc = cli__history(cl, r->run_id, m->key, cli__str(m->context),
                          INT64_MIN, INT64_MAX, 0, &pts);
        for (size_t k = 0; rc == RV_OK && k < pts.n; k++) {
            int prec = 0;
            json_t *o = json_object();
            json_object_set_new(o, "key", cli__json_string(m->key));
            json_object_set_new(o, "context", cli__json_string(m->context));
            json_object_set_new(o, "step", json_integer(pts.steps[k]));
            json_object_set_new(o, "timestamp", json_integer(pts.ts[k]));
            json_object_set_new(o, "value",
                                cli__json_value(pts.values[k], &prec));
            cli__json_print(f, o, prec);
        }
        st->n_points += pts.n;
        cli__points_free(&pts);
    }
    int crc = cli__close_file(cl, f, path);
    return rc != RV_OK ? rc : crc;
}

static void
cli__log_escape(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\r')
            fputs("\\r", f);
        else
            fputc(*s, f);
    }
}

static int
cli__export_logs(struct cli *cl, const char *dir, const char *run_id,
                 struct cli_xstats *st)
{
    char path[CLI_PATH_BYTES];
    FILE *f = cli__open_out(cl, path, dir, "logs.txt");
    if (f == NULL)
        return RV_EIO;
    uint64_t next = 0;
    int rc = RV_OK;
    for (;;) {
        Rv__Response *resp;
        rc = cli__logs_page(cl, run_id, next, &resp);
        if (rc != RV_OK)
            break;
        for (size_t i = 0; i < resp->n_lines; i++) {
            const Rv__LogLineOut *o = resp->lines[i];
            fprintf(f, "%lld %s ", (long long)o->timestamp_ms,
                    o->stream == RV__STREAM__STDERR ? "stderr" : "stdout");
            cli__log_escape(f, o->text);
            fputc('\n', f);
        }
        size_t n = resp->n_lines;
        st->n_log_lines += n;
        next = resp->has_next_line ? resp->next_line : next + n;
        rvc_response_free(resp);
        if (n == 0)
            break;
    }
    int crc = cli__close_file(cl, f, path);
    return rc != RV_OK ? rc : crc;
}

static int
cli__export_run(struct cli *cl, const char *root, const char *run_id,
                struct cli_xstats *st)
{
    Rv__Response *run = NULL, *arts = NULL;
    char dir[CLI_PATH_BYTES], proj[CLI_NAME_BYTES], exp[CLI_NAME_BYTES];
    int rc = cli__get_run(cl, run_id, &run);
    if (rc != RV_OK)
        return rc;
    const Rv__RunInfo *r = run->run;
    cli__enc_name(cli__str(r->project), strlen(cli__str(r->project)), proj);
    cli__enc_name(cli__str(r->experiment), strlen(cli__str(r->experiment)),
                  exp);
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s/%s/%s", root, proj, exp,
                         r->run_id) >= sizeof dir ||
        cli__mkdirs(dir, 0) != 0) {
        rv_errmsg_printf(cl->errmsg, "%s: %s", dir, strerror(errno));
        rvc_response_free(run);
        return RV_EIO;
    }
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ArtifactRequest ar = RV__ARTIFACT_REQUEST__INIT;
    ar.run_id = r->run_id;
    req.body_case = RV__REQUEST__BODY_ARTIFACT;
    req.artifact = &ar;
    rc = cli__rpc(cl, &req, &arts);
    for (size_t i = 0; rc == RV_OK && i < arts->n_artifacts; i++) {
        if (!arts->artifacts[i]->is_complete) {
            fprintf(stderr,
                    "runvault export: run %s: artifact '%s' is incomplete; "
                    "skipped\n",
                    r->run_id, arts->artifacts[i]->path);
            st->n_skipped++;
            continue;
        }
        rc = cli__export_artifact(cl, dir, r->run_id, arts->artifacts[i]);
        st->n_artifacts++;
    }
    if (rc == RV_OK)
        rc = cli__export_meta(cl, dir, r, arts);
    if (rc == RV_OK)
        rc = cli__export_events(cl, dir, r, st);
    if (rc == RV_OK)
        rc = cli__export_logs(cl, dir, r->run_id, st);
    if (rc == RV_OK)
        st->n_runs++;
    rvc_response_free(arts);
    rvc_response_free(run);
    return rc;
}

/* The ids of every run matching the flags (all pages), copied. */
static int
cli__run_ids(struct cli *cl, const struct cli_args *a, char ***ids,
             size_t *n_ids)
{
    Rv__Response **pages;
    size_t n_pages, n = 0;
    int rc = cli__ls_fetch(cl, a, "", 0, &pages, &n_pages);
    for (size_t i = 0; i < n_pages; i++)
        n += pages[i]->n_runs;
    *ids = calloc(n ? n : 1, sizeof **ids);
    *n_ids = 0;
    if (*ids == NULL && rc == RV_OK) {
        rv_errmsg_printf(cl->errmsg, "out of memory");
        rc = RV_ENOMEM;
    }
    for (size_t i = 0; rc == RV_OK && i < n_pages; i++) {
        for (size_t k = 0; rc == RV_OK && k < pages[i]->n_runs; k++) {
            size_t len = strlen(pages[i]->runs[k]->run_id);
            char *id = malloc(len + 1);
            if (id == NULL) {
                rc = RV_ENOMEM;
                break;
            }
            memcpy(id, pages[i]->runs[k]->run_id, len + 1);
            (*ids)[(*n_ids)++] = id;
        }
    }
    for (size_t i = 0; i < n_pages; i++)
        rvc_response_free(pages[i]);
    free(pages);
    return rc;
}

void
cli__strs_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

int
cli__export(struct cli *cl, const struct cli_args *a)
{
    const char *root = a->v[O_OUT];
    if (root == NULL || root[0] == '\0') {
        fprintf(stderr, "runvault export: --out DIR is required\n");
        return RV_EXIT_USAGE;
    }
    if (cli__mkdirs(root, 0) != 0) {
        fprintf(stderr, "runvault export: %s: %s\n", root, strerror(errno));
        return RV_EXIT_FAILURE;
    }
    char **ids;
    size_t n_ids;
    int rc = cli__run_ids(cl, a, &ids, &n_ids);
    struct cli_xstats st;
    struct cli_progress pr = {cl->is_tty, 0};
    memset(&st, 0, sizeof st);
    for (size_t i = 0; rc == RV_OK && i < n_ids; i++) {
        rc = cli__export_run(cl, root, ids[i], &st);
        if (rc != RV_OK)
            rv_errmsg_wrap(cl->errmsg, ids[i]);
        cli__progress(&pr, "export", i + 1, n_ids);
    }
    cli__strs_free(ids, n_ids);
    if (rc != RV_OK)
        return cli__fail(cl, rc, cli__exit_for(rc));
    printf("export: %llu runs, %llu points, %llu log lines, %llu artifacts "
           "to %s\n",
           (unsigned long long)st.n_runs, (unsigned long long)st.n_points,
           (unsigned long long)st.n_log_lines,
           (unsigned long long)st.n_artifacts, root);
    return RV_EXIT_OK;
}
