#include "proto/proto.h"

#include "base/crc32c.h"
#include "base/err.h"

#include <string.h>
#include <strings.h>

int
proto_envelope_encode(const Rv__CommandBatch *batch, struct rv_buf *out,
                      char *errmsg)
{
    size_t n = rv__command_batch__get_packed_size(batch);
    if (n > PROTO_MAX_PAYLOAD_BYTES) {
        rv_errmsg_printf(errmsg, "entry payload of %zu bytes exceeds %u", n,
                         PROTO_MAX_PAYLOAD_BYTES);
        return RV_ETOOBIG;
    }
    size_t total = proto_envelope_size(n);
    if (rv_buf_reserve(out, total) != RV_OK)
        return RV_ENOMEM;
    uint8_t *p = out->data + out->len;
    memset(p, 0, total);
    rv__command_batch__pack(batch, p + PROTO_HEADER_BYTES);
    rv_put_be32(p, PROTO_MAGIC);
    rv_put_be16(p + 4, PROTO_FORMAT_VERSION);
    rv_put_be16(p + 6, 0);
    rv_put_be32(p + 8, (uint32_t)n);
    rv_put_be32(p + 12, rv_crc32c(0, p + PROTO_HEADER_BYTES, n));
    out->len += total;
    return RV_OK;
}

void
proto_envelope_seal(uint8_t *out, size_t n)
{
    size_t total = proto_envelope_size(n);
    memset(out + PROTO_HEADER_BYTES + n, 0, total - PROTO_HEADER_BYTES - n);
    rv_put_be32(out, PROTO_MAGIC);
    rv_put_be16(out + 4, PROTO_FORMAT_VERSION);
    rv_put_be16(out + 6, 0);
    rv_put_be32(out + 8, (uint32_t)n);
    rv_put_be32(out + 12, rv_crc32c(0, out + PROTO_HEADER_BYTES, n));
}

void
proto_envelope_wrap(const void *payload, size_t n, uint8_t *out)
{
    memcpy(out + PROTO_HEADER_BYTES, payload, n);
    proto_envelope_seal(out, n);
}

int
proto_envelope_open(const void *data, size_t len, const uint8_t **payload,
                    size_t *n, char *errmsg)
{
    const uint8_t *p = data;

    if (len < PROTO_HEADER_BYTES) {
        rv_errmsg_printf(errmsg,
                         "entry of %zu bytes is shorter than its "
                         "%d-byte header",
                         len, PROTO_HEADER_BYTES);
        return RV_EMALFORMED;
    }
    if (rv_get_be32(p) != PROTO_MAGIC) {
        rv_errmsg_printf(errmsg, "bad entry magic 0x%08x", rv_get_be32(p));
        return RV_EMALFORMED;
    }
    if (rv_get_be16(p + 4) > PROTO_FORMAT_VERSION) {
        rv_errmsg_printf(errmsg,
                         "entry format version %u; this runvault knows "
                         "version %d at most (a newer runvault proposed it: "
                         "upgrade this node)",
                         rv_get_be16(p + 4), PROTO_FORMAT_VERSION);
        return RV_EVERSION;
    }
    if (rv_get_be16(p + 4) != PROTO_FORMAT_VERSION) {
        rv_errmsg_printf(errmsg, "unknown entry format version %u",
                         rv_get_be16(p + 4));
        return RV_EMALFORMED;
    }
    if (rv_get_be16(p + 6) != 0) {
        rv_errmsg_printf(errmsg, "unknown entry flags 0x%04x",
                         rv_get_be16(p + 6));
        return RV_EMALFORMED;
    }
    size_t plen = rv_get_be32(p + 8);
    if (plen > PROTO_MAX_PAYLOAD_BYTES || proto_envelope_size(plen) != len) {
        rv_errmsg_printf(errmsg,
                         "entry length %zu does not match payload "
                         "length %zu",
                         len, plen);
        return RV_EMALFORMED;
    }
    for (size_t i = PROTO_HEADER_BYTES + plen; i < len; i++) {
        if (p[i] != 0) {
            rv_errmsg_printf(errmsg, "non-zero entry padding at offset %zu", i);
            return RV_EMALFORMED;
        }
    }
    uint32_t crc = rv_crc32c(0, p + PROTO_HEADER_BYTES, plen);
    if (crc != rv_get_be32(p + 12)) {
        rv_errmsg_printf(errmsg,
                         "entry CRC mismatch: stored 0x%08x, "
                         "computed 0x%08x",
                         rv_get_be32(p + 12), crc);
        return RV_EMALFORMED;
    }
    *payload = p + PROTO_HEADER_BYTES;
    *n = plen;
    return RV_OK;
}

int
proto_batch_decode(const uint8_t *payload, size_t n, Rv__CommandBatch **out,
                   char *errmsg)
{
    if (n > PROTO_MAX_PAYLOAD_BYTES) {
        rv_errmsg_printf(errmsg, "command batch of %zu bytes exceeds %u", n,
                         PROTO_MAX_PAYLOAD_BYTES);
        return RV_ETOOBIG;
    }
    Rv__CommandBatch *b = rv__command_batch__unpack(NULL, n, payload);
    if (b == NULL) {
        rv_errmsg_printf(errmsg, "command batch of %zu bytes does not decode",
                         n);
        return RV_EMALFORMED;
    }
    *out = b;
    return RV_OK;
}

void
proto_batch_free(Rv__CommandBatch *batch)
{
    if (batch != NULL)
        rv__command_batch__free_unpacked(batch, NULL);
}

int
proto_entry_decode(const void *data, size_t len, Rv__CommandBatch **out,
                   char *errmsg)
{
    const uint8_t *payload;
    size_t n;
    int rc = proto_envelope_open(data, len, &payload, &n, errmsg);
    if (rc != RV_OK)
        return rc;
    return proto_batch_decode(payload, n, out, errmsg);
}

const char *
proto_command_name(const Rv__Command *cmd)
{
    switch (cmd->body_case) {
    case RV__COMMAND__BODY_RUN_CREATE:
        return "run_create";
    case RV__COMMAND__BODY_RUN_UPDATE:
        return "run_update";
    case RV__COMMAND__BODY_RUN_STATUS:
        return "run_status";
    case RV__COMMAND__BODY_LOG_BATCH:
        return "log_batch";
    case RV__COMMAND__BODY_LOG_LINES:
        return "log_lines";
    case RV__COMMAND__BODY_ARTIFACT_CHUNK:
        return "artifact_chunk";
    case RV__COMMAND__BODY_RUN_DELETE:
        return "run_delete";
    case RV__COMMAND__BODY_RUN_RESTORE:
        return "run_restore";
    case RV__COMMAND__BODY_RUN_PURGE:
        return "run_purge";
    case RV__COMMAND__BODY_TEAM_PUT:
        return "team_put";
    case RV__COMMAND__BODY_TOKEN_PUT:
        return "token_put";
    case RV__COMMAND__BODY_TOKEN_DEL:
        return "token_del";
    case RV__COMMAND__BODY_NOOP:
        return "noop";
    case RV__COMMAND__BODY_NODE_PUT:
        return "node_put";
    case RV__COMMAND__BODY_NODE_DEL:
        return "node_del";
    case RV__COMMAND__BODY_QUOTA_PUT:
        return "quota_put";
    case RV__COMMAND__BODY_AUTH_ON:
        return "auth_on";
    case RV__COMMAND__BODY_MLFLOW_EXPERIMENT:
        return "mlflow_experiment";
    case RV__COMMAND__BODY_RETENTION_PUT:
        return "retention_put";
    case RV__COMMAND__BODY_RETENTION_SWEEP:
        return "retention_sweep";
    case RV__COMMAND__BODY_CHECK:
        return "check";
    case RV__COMMAND__BODY_COMPACT:
        return "compact";
    case RV__COMMAND__BODY__NOT_SET:
    default:
        return "empty";
    }
}

const char *
proto_command_run_id(const Rv__Command *c)
{
    switch (c->body_case) {
    case RV__COMMAND__BODY_RUN_CREATE:
        return c->run_create->run_id;
    case RV__COMMAND__BODY_RUN_UPDATE:
        return c->run_update->run_id;
    case RV__COMMAND__BODY_RUN_STATUS:
        return c->run_status->run_id;
    case RV__COMMAND__BODY_LOG_BATCH:
        return c->log_batch->run_id;
    case RV__COMMAND__BODY_LOG_LINES:
        return c->log_lines->run_id;
    case RV__COMMAND__BODY_ARTIFACT_CHUNK:
        return c->artifact_chunk->run_id;
    case RV__COMMAND__BODY_RUN_DELETE:
        return c->run_delete->run_id;
    case RV__COMMAND__BODY_RUN_RESTORE:
        return c->run_restore->run_id;
    case RV__COMMAND__BODY_RUN_PURGE:
        return c->run_purge->run_id;
    default:
        return NULL;
    }
}

static const char *const proto_role_names[] = {"reader", "writer", "admin",
                                               "cluster-admin"};

const char *
proto_role_name(int role)
{
    if (role < 0 ||
        role >= (int)(sizeof proto_role_names / sizeof proto_role_names[0]))
        return "unknown";
    return proto_role_names[role];
}

int
proto_role_parse(const char *s, Rv__Role *out)
{
    for (int i = 0;
         i < (int)(sizeof proto_role_names / sizeof proto_role_names[0]); i++) {
        if (s != NULL && strcmp(s, proto_role_names[i]) == 0) {
            *out = (Rv__Role)i;
            return 0;
        }
    }
    return -1;
}

static const char *const proto_status_names[] = {
    "UNSPECIFIED", "RUNNING", "SCHEDULED", "FINISHED",
    "FAILED",      "KILLED",  "CRASHED"};

const char *
proto_status_name(Rv__RunStatus status)
{
    if ((unsigned)status > RV__RUN_STATUS__CRASHED)
        return "UNKNOWN";
    return proto_status_names[status];
}

int
proto_status_parse(const char *s, Rv__RunStatus *out)
{
    for (int i = RV__RUN_STATUS__RUNNING; i <= RV__RUN_STATUS__CRASHED; i++) {
        if (strcasecmp(s, proto_status_names[i]) == 0) {
            *out = (Rv__RunStatus)i;
            return 0;
        }
    }
    return -1;
}
