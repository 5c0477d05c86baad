/* Artifacts: a raw upload -> chunk commands (each with its own derived
 * idempotency pair, the last with the SHA-256), the listing of a run's
 * artifacts and a download read in parts. */
#include "gateway/gateway_int.h"
#include "rpc/server.h"

#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

/* A derived client id for the chunks of one artifact upload, so each
 * chunk has its own (client_id, seq) and a retry of the whole request
 * applies each chunk once. */
static uint64_t
gw__derive_client(uint64_t client_id, uint64_t seq)
{
    uint64_t z = client_id ^ (seq * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}

/* The first 32 bytes of d in lower-case hex ("" when n is 0). */
static void
gw__hex(const uint8_t *d, size_t n, char out[2 * SHA256_DIGEST_SIZE + 1])
{
    out[0] = '\0';
    for (size_t k = 0; k < n && k < SHA256_DIGEST_SIZE; k++)
        snprintf(out + 2 * k, 3, "%02x", d[k]);
}

static int
gw__artifact_path_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > CONTRACT_MAX_ARTIFACT_PATH_BYTES || p[0] == '/' ||
        p[n - 1] == '/')
        return 0;
    for (const char *s = p; s != NULL; s = strchr(s, '/')) {
        if (*s == '/')
            s++;
        if (strncmp(s, "..", 2) == 0 && (s[2] == '/' || s[2] == '\0'))
            return 0;
        if (*s == '/' || (s[0] == '.' && (s[1] == '/' || s[1] == '\0')))
            return 0;
    }
    for (const char *s = p; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20)
            return 0;
    return 1;
}

/* PUT /api/v2/runs/{run}/artifacts/{path}: the raw body, one command
 * per chunk. A streamed body (the artifact proxy's PUT) is read a chunk at
 * a time as it arrives: one chunk in memory, whatever the size. */
void
gw_artifact_put(struct gw_ctx *c)
{
    char *run_id = c->param[GW_P_RUN], *path = c->param[GW_P_PATH];
    uint64_t client_id, seq;
    struct sha256_ctx h;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[2 * SHA256_DIGEST_SIZE + 1];
    const char *type = c->x->content_type != NULL ? c->x->content_type
                                                  : "application/octet-stream";
    if (!gw__artifact_path_ok(path)) {
        gw__reject(c, RV_EINVAL,
                   "artifact path '%.64s' is invalid: 1 to %d bytes, "
                   "relative, no empty, '.' or '..' parts",
                   path, CONTRACT_MAX_ARTIFACT_PATH_BYTES);
        return;
    }
    if (strlen(type) > CONTRACT_MAX_SCOPE_BYTES ||
        !contract_utf8_valid(type, strlen(type))) {
        gw_reply_error(c->x, RV_EINVAL, "Content-Type is too long");
        return;
    }
    if (gw__idempotency(c, &client_id, &seq) != 0)
        return;
    int is_stream = c->x->has_body_stream;
    uint64_t total = is_stream ? c->x->body_left : c->x->body_len, off = 0;
    uint8_t *buf = NULL;
    if (is_stream &&
        (buf = gw__alloc(c, CONTRACT_MAX_ARTIFACT_CHUNK_BYTES)) == NULL) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        return;
    }
    sha256_init(&h);
    size_t part = 0;
    const Rv__Response *r = NULL;
    uint64_t derived = gw__derive_client(client_id, seq);
    do {
        size_t n = total - off > CONTRACT_MAX_ARTIFACT_CHUNK_BYTES
                       ? CONTRACT_MAX_ARTIFACT_CHUNK_BYTES
                       : (size_t)(total - off);
        const uint8_t *data = (const uint8_t *)c->x->body + off;
        if (is_stream) {
            if (gw_body_read(c->x, buf, n) != 0)
                return;
            data = buf;
        }
        sha256_update(&h, n, data);
        Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
        Rv__ArtifactChunk ch = RV__ARTIFACT_CHUNK__INIT;
        ch.run_id = run_id;
        ch.path = path;
        ch.content_type = (char *)type;
        ch.offset = off;
        ch.data.data = (uint8_t *)data;
        ch.data.len = n;
        ch.has_is_last = 1;
        ch.is_last = off + n == total;
        if (ch.is_last) {
            sha256_digest(&h, sizeof digest, digest);
            ch.has_sha256 = 1;
            ch.sha256.data = digest;
            ch.sha256.len = sizeof digest;
        }
        cmd.has_client_id = cmd.has_seq = 1;
        cmd.client_id = derived;
        cmd.seq = ++part;
        cmd.body_case = RV__COMMAND__BODY_ARTIFACT_CHUNK;
        cmd.artifact_chunk = &ch;
        r = gw__write(c, cmds, 1);
        if (r == NULL)
            return;
        off += n;
    } while (off < total);
    gw__hex(digest, sizeof digest, hex);
    atomic_fetch_add(&c->x->g->stats.n_artifact_bytes, total);
    gw_reply_json(c->x, 200,
                  json_pack("{s:I,s:s,s:I,s:s}", "index", (json_int_t)r->index,
                            "path", path, "size", (json_int_t)total, "sha256",
                            hex));
}

/* One artifact request as the query asks: read options, offset=,
 * length=. */
struct gw_artifact_read {
    Rv__Request req;
    Rv__ReadOptions ro;
    Rv__ArtifactRequest a;
    uint64_t offset, length;
    int has_off, has_len;
};

/* Set q up for the run's artifact path (NULL: the listing). Returns 0, or
 * -1 when a bad query parameter is answered. */
static int
gw__artifact_read_init(struct gw_ctx *c, struct gw_artifact_read *q, char *path)
{
    rv__request__init(&q->req);
    rv__artifact_request__init(&q->a);
    q->offset = q->length = 0;
    if (gw__read_options(c, &q->req, &q->ro) != 0 ||
        gw__q_u64(c, "offset", UINT64_MAX, &q->offset, &q->has_off) != 0 ||
        gw__q_u64(c, "length", GATEWAY_MAX_RAW_BODY, &q->length, &q->has_len) !=
            0)
        return -1;
    q->a.run_id = c->param[GW_P_RUN];
    q->a.path = path;
    q->req.body_case = RV__REQUEST__BODY_ARTIFACT;
    q->req.artifact = &q->a;
    return 0;
}

/* GET /api/v2/runs/{run}/artifacts */
void
gw_artifact_list(struct gw_ctx *c)
{
    struct gw_artifact_read q;
    if (gw__artifact_read_init(c, &q, NULL) != 0)
        return;
    const Rv__Response *r = gw__call(c, &q.req);
    if (r == NULL)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < r->n_artifacts; i++) {
        const Rv__ArtifactInfo *ai = r->artifacts[i];
        char hex[2 * SHA256_DIGEST_SIZE + 1];
        gw__hex(ai->sha256.data, ai->sha256.len, hex);
        json_array_append_new(
            arr,
            json_pack("{s:s,s:s,s:I,s:s,s:b}", "path", ai->path, "content_type",
                      ai->content_type ? ai->content_type : "", "size",
                      (json_int_t)ai->size, "sha256", hex, "complete",
                      ai->is_complete));
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:o,s:f}", "artifacts", arr, "query_time_ms",
                            gw__elapsed_ms(c->x)));
}

/* Answer want bytes of q's artifact from q->offset, read in parts of at
 * most RPC_MAX_ARTIFACT_READ, with Content-Type type. */
static void
gw__artifact_send(struct gw_ctx *c, struct gw_artifact_read *q, uint64_t want,
                  const char *type)
{
    struct rv_buf all;
    rv_buf_init(&all);
    while (all.len < want) {
        q->a.has_offset = q->a.has_max_bytes = 1;
        q->a.offset = q->offset + all.len;
        uint64_t left = want - all.len;
        q->a.max_bytes =
            (uint32_t)(left < RPC_MAX_ARTIFACT_READ ? left
                                                    : RPC_MAX_ARTIFACT_READ);
        const Rv__Response *r = gw__call(c, &q->req);
        if (r == NULL) {
            rv_buf_free(&all);
            return;
        }
        if (!r->has_data || r->data.len == 0)
            break;
        rv_buf_append(&all, r->data.data, r->data.len);
    }
    if (all.is_failed)
        gw_reply_error(c->x, RV_ENOMEM, NULL);
    else
        gw_reply_bytes(c->x, 200, type, all.data ? all.data : (uint8_t *)"",
                       all.len);
    rv_buf_free(&all);
    if (c->x->status == 200) {
        snprintf(c->x->type_buf, sizeof c->x->type_buf, "%s", type);
        c->x->out_type = c->x->type_buf;
    }
}

/* Write want bytes of q's artifact from q->offset on the connection as
 * they are read (an answer over GATEWAY_MAX_RAW_BODY): the first part is
 * read before the status line, so a failure then is an ordinary error; a
 * later one drops the connection (the client sees a short body). */
static void
gw__artifact_stream(struct gw_ctx *c, struct gw_artifact_read *q, uint64_t want,
                    const char *type)
{
    uint64_t sent = 0;
    while (sent < want) {
        q->a.has_offset = q->a.has_max_bytes = 1;
        q->a.offset = q->offset + sent;
        uint64_t left = want - sent;
        q->a.max_bytes =
            (uint32_t)(left < RPC_MAX_ARTIFACT_READ ? left
                                                    : RPC_MAX_ARTIFACT_READ);
        const Rv__Response *r = gw__call(c, &q->req);
        if (r != NULL &&
            (!r->has_data || r->data.len == 0 || r->data.len > left)) {
            gw_reply_error(c->x, RV_ECORRUPT, "artifact read came short");
            r = NULL;
        }
        if (r == NULL) {
            if (c->x->is_sent)
                c->x->is_broken = 1;
            return;
        }
        if ((sent == 0 && gw_stream_begin(c->x, type, want) != 0) ||
            gw_stream_write(c->x, r->data.data, r->data.len) != 0)
            return;
        sent += r->data.len;
    }
}

/* GET /api/v2/runs/{run}/artifacts/{path}?offset=&length=: the metadata,
 * then the bytes (streamed when over GATEWAY_MAX_RAW_BODY). */
void
gw_artifact_get(struct gw_ctx *c)
{
    struct gw_artifact_read q;
    if (gw__artifact_read_init(c, &q, c->param[GW_P_PATH]) != 0)
        return;
    const Rv__Response *r = gw__call(c, &q.req); /* Metadata first. */
    if (r == NULL)
        return;
    if (r->n_artifacts != 1) {
        gw_reply_error(c->x, RV_ENOTFOUND, NULL);
        return;
    }
    uint64_t size = r->artifacts[0]->size;
    char type[CONTRACT_MAX_SCOPE_BYTES + 1];
    snprintf(type, sizeof type, "%s",
             r->artifacts[0]->content_type && r->artifacts[0]->content_type[0]
                 ? r->artifacts[0]->content_type
                 : "application/octet-stream");
    if (q.offset > size) {
        gw_reply_error(c->x, RV_EINVAL, "offset is past the artifact's end");
        return;
    }
    uint64_t want = q.has_len ? q.length : size - q.offset;
    if (want > size - q.offset)
        want = size - q.offset;
    if (want > GATEWAY_MAX_RAW_BODY && c->x->conn != NULL) {
        gw__artifact_stream(c, &q, want, type);
        return;
    }
    if (want > GATEWAY_MAX_RAW_BODY) {
        gw_reply_error(c->x, RV_ETOOBIG,
                       "the artifact is over 16 MiB: read it in parts with "
                       "offset= and length=");
        return;
    }
    gw__artifact_send(c, &q, want, type);
}
