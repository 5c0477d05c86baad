/* What ingest and import share to write runs (cli_int.h): JSON members,
 * params and tags, run creation, log lines and artifacts into a batcher. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <errno.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void
cli__kvs_free(struct cli_kvs *k)
{
    free(k->kvs);
    free(k->ptrs);
    memset(k, 0, sizeof *k);
}

/* obj NULL is an empty set; anything but an object of strings is an error
 * (-1, the reason in why). */
int
cli__kvs_from_json(const json_t *obj, const char *what, struct cli_kvs *out,
                   char *why)
{
    memset(out, 0, sizeof *out);
    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj)) {
        rv_errmsg_printf(why, "\"%s\" must be an object of strings", what);
        return -1;
    }
    size_t n = json_object_size(obj);
    out->kvs = calloc(n ? n : 1, sizeof *out->kvs);
    out->ptrs = calloc(n ? n : 1, sizeof *out->ptrs);
    if (out->kvs == NULL || out->ptrs == NULL) {
        cli__kvs_free(out);
        rv_errmsg_printf(why, "out of memory");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (!json_is_string(v) ||
            json_string_length(v) != strlen(json_string_value(v))) {
            rv_errmsg_printf(why,
                             "\"%s\": the value of '%.64s' must be a "
                             "string",
                             what, k);
            cli__kvs_free(out);
            return -1;
        }
        Rv__KV *kv = &out->kvs[out->n];
        rv__kv__init(kv);
        kv->key = (char *)k;
        kv->value = (char *)json_string_value(v);
        out->ptrs[out->n++] = kv;
    }
    return 0;
}

/* The one Rv__LogBatch the client commands assemble by hand: the params
 * and tags of run_id from *np and *nt on, as many as one command takes;
 * *np and *nt move past them. (The batcher builds the metric batches.) */
static int
cli__queue_kvs(struct rvc_batcher *b, char *run_id,
               const struct cli_kvs *params, const struct cli_kvs *tags,
               size_t *np, size_t *nt)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    size_t kp = params->n - *np, kt = tags->n - *nt;
    lb.run_id = run_id;
    lb.n_params = kp < CONTRACT_MAX_PARAMS_PER_COMMAND
                      ? kp
                      : CONTRACT_MAX_PARAMS_PER_COMMAND;
    lb.params = params->ptrs + *np;
    lb.n_tags =
        kt < CONTRACT_MAX_TAGS_PER_COMMAND ? kt : CONTRACT_MAX_TAGS_PER_COMMAND;
    lb.tags = tags->ptrs + *nt;
    *np += lb.n_params;
    *nt += lb.n_tags;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    return rvc_batcher_command(b, &cmd);
}

/* Queue a run_create (resume allowed) for run c->run_id with params and
 * tags; those past the per-command limits follow in LogBatch commands. */
int
cli__queue_run(struct rvc_batcher *b, Rv__RunCreate *c,
               const struct cli_kvs *params, const struct cli_kvs *tags)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    size_t np = params->n < CONTRACT_MAX_PARAMS_PER_COMMAND
                    ? params->n
                    : CONTRACT_MAX_PARAMS_PER_COMMAND;
    size_t nt = tags->n < CONTRACT_MAX_TAGS_PER_COMMAND
                    ? tags->n
                    : CONTRACT_MAX_TAGS_PER_COMMAND;
    c->has_resume = 1;
    c->resume = RV__RESUME__RESUME_ALLOW;
    c->n_params = np;
    c->params = params->ptrs;
    c->n_tags = nt;
    c->tags = tags->ptrs;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = c;
    int rc = rvc_batcher_command(b, &cmd);
    while (rc == RV_OK && (np < params->n || nt < tags->n))
        rc = cli__queue_kvs(b, c->run_id, params, tags, &np, &nt);
    return rc;
}

int
cli__loglines_flush(struct cli_loglines *ll, struct rvc_batcher *b)
{
    if (ll->n == 0)
        return RV_OK;
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__LogLines lines = RV__LOG_LINES__INIT;
    lines.run_id = ll->run_id;
    lines.n_lines = ll->n;
    lines.lines = ll->ptrs;
    cmd.body_case = RV__COMMAND__BODY_LOG_LINES;
    cmd.log_lines = &lines;
    int rc = rvc_batcher_command(b, &cmd);
    if (rc != RV_OK)
        return rc;
    for (size_t i = 0; i < ll->n; i++)
        free(ll->texts[i]);
    ll->n = ll->n_bytes = 0;
    return RV_OK;
}

int
cli__loglines_add(struct cli_loglines *ll, struct rvc_batcher *b,
                  const char *run_id, int64_t ts_ms, Rv__Stream stream,
                  const char *text, size_t n)
{
    int rc = RV_OK;
    if (ll->n > 0 &&
        (strcmp(ll->run_id, run_id) != 0 || ll->n == CLI_LOG_CMD_LINES ||
         ll->n_bytes + n > CLI_LOG_CMD_BYTES))
        rc = cli__loglines_flush(ll, b);
    if (rc != RV_OK)
        return rc;
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return RV_ENOMEM;
    memcpy(copy, text, n);
    copy[n] = '\0';
    if (ll->run_id != run_id)
        snprintf(ll->run_id, sizeof ll->run_id, "%s", run_id);
    Rv__LogLine *l = &ll->lines[ll->n];
    rv__log_line__init(l);
    l->timestamp_ms = ts_ms;
    l->has_stream = 1;
    l->stream = stream;
    l->text = copy;
    ll->texts[ll->n] = copy;
    ll->ptrs[ll->n++] = l;
    ll->n_bytes += n + 16;
    return RV_OK;
}

void
cli__loglines_clear(struct cli_loglines *ll)
{
    for (size_t i = 0; i < ll->n; i++)
        free(ll->texts[i]);
    ll->n = ll->n_bytes = 0;
}

/* Queue the file at file as artifact path of run_id in ArtifactChunk
 * commands of at most CONTRACT_MAX_ARTIFACT_CHUNK_BYTES, the last one with
 * the SHA-256 of the whole. want_hex, if not NULL, is the SHA-256 the
 * bytes must have (lower-case hex). Returns RV_OK, a batcher error, or
 * RV_EIO / RV_EMALFORMED (the reason in why). */
int
cli__queue_artifact(struct rvc_batcher *b, const char *run_id, const char *path,
                    const char *content_type, const char *file,
                    const char *want_hex, char *why)
{
    FILE *f = fopen(file, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rv_errmsg_printf(why, "%s: %s", file,
                         f == NULL ? strerror(errno) : "not a regular file");
        if (f != NULL)
            fclose(f);
        return RV_EIO;
    }
    uint8_t *buf = malloc(CONTRACT_MAX_ARTIFACT_CHUNK_BYTES);
    struct sha256_ctx sha;
    uint8_t digest[SHA256_DIGEST_SIZE];
    uint64_t size = (uint64_t)st.st_size, off = 0;
    int rc = buf != NULL ? RV_OK : RV_ENOMEM;
    sha256_init(&sha);
    do {
        uint64_t left = size - off;
        size_t want = left < CONTRACT_MAX_ARTIFACT_CHUNK_BYTES
                          ? (size_t)left
                          : CONTRACT_MAX_ARTIFACT_CHUNK_BYTES;
        if (rc != RV_OK)
            break;
        if (fread(buf, 1, want, f) != want) {
            rv_errmsg_printf(why, "%s: short read", file);
            rc = RV_EIO;
            break;
        }
        sha256_update(&sha, want, buf);
        Rv__Command cmd = RV__COMMAND__INIT;
        Rv__ArtifactChunk ch = RV__ARTIFACT_CHUNK__INIT;
        ch.run_id = (char *)run_id;
        ch.path = (char *)path;
        ch.content_type = off == 0 ? (char *)content_type : NULL;
        ch.offset = off;
        ch.data.data = buf;
        ch.data.len = want;
        off += want;
        if (off == size) {
            char hex[2 * SHA256_DIGEST_SIZE + 1];
            sha256_digest(&sha, SHA256_DIGEST_SIZE, digest);
            rv_hex(digest, SHA256_DIGEST_SIZE, hex);
            if (want_hex != NULL && strcmp(hex, want_hex) != 0) {
                rv_errmsg_printf(why, "%s: SHA-256 %s, the metadata says %s",
                                 file, hex, want_hex);
                rc = RV_EMALFORMED;
                break;
            }
            ch.has_is_last = ch.is_last = 1;
            ch.has_sha256 = 1;
            ch.sha256.data = digest;
            ch.sha256.len = SHA256_DIGEST_SIZE;
        }
        cmd.body_case = RV__COMMAND__BODY_ARTIFACT_CHUNK;
        cmd.artifact_chunk = &ch;
        rc = rvc_batcher_command(b, &cmd);
        if (rc != RV_OK)
            rv_errmsg_printf(why, "%s", rvc_batcher_errmsg(b));
    } while (rc == RV_OK && off < size);
    free(buf);
    fclose(f);
    return rc;
}

/* Member k of o into *v: 1 if present (not null), 0 if absent and
 * optional, -1 (why says so) if absent and required. */
static int
cli__jmember(const json_t *o, const char *k, int is_required, const json_t **v,
             char *why)
{
    *v = json_object_get(o, k);
    if (*v != NULL && !json_is_null(*v))
        return 1;
    if (is_required)
        rv_errmsg_printf(why, "\"%s\" is missing", k);
    return is_required ? -1 : 0;
}

/* A string member: 0 and *out (NULL if absent and optional), or -1. */
int
cli__jstr(const json_t *o, const char *k, int is_required, const char **out,
          char *why)
{
    const json_t *v;
    int has = cli__jmember(o, k, is_required, &v, why);
    *out = NULL;
    if (has <= 0)
        return has;
    if (!json_is_string(v) ||
        json_string_length(v) != strlen(json_string_value(v))) {
        rv_errmsg_printf(why, "\"%s\" must be a string", k);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* An integer member: 0 (*out untouched if absent and optional), or -1. */
int
cli__jint(const json_t *o, const char *k, int is_required, int64_t *out,
          char *why)
{
    const json_t *v;
    int has = cli__jmember(o, k, is_required, &v, why);
    if (has <= 0)
        return has;
    if (!json_is_integer(v)) {
        rv_errmsg_printf(why, "\"%s\" must be an integer", k);
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* A metric value: a number, or "NaN", "Infinity", "-Infinity". */
int
cli__jvalue(const json_t *o, const char *k, double *out, char *why)
{
    const json_t *v = json_object_get(o, k);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (json_is_number(v))
        *out = json_number_value(v);
    else if (s != NULL && strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (s != NULL && strcmp(s, "Infinity") == 0)
        *out = INFINITY;
    else if (s != NULL && strcmp(s, "-Infinity") == 0)
        *out = -INFINITY;
    else {
        rv_errmsg_printf(why,
                         "\"%s\" must be a number, \"NaN\", "
                         "\"Infinity\" or \"-Infinity\"",
                         k);
        return -1;
    }
    return 0;
}
