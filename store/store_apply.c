/* The deterministic apply: one committed entry -> one vlog record and one
 * LMDB write transaction. This file only dispatches each command to its
 * entity's file (store_run.c, store_metric.c, store_log.c,
 * store_artifact.c, store_admin.c), keeps the idempotency records
 * (client_id, seq), chains the digest and redoes an entry with nested
 * transactions when a command fails. Nothing in the apply path reads a
 * clock, a random source or local configuration; every write goes through
 * store__put/store__del so the digest covers it. Writer thread only. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Codes that mean the node itself is broken, not the command. */
static int
store__is_local_fault(int rc)
{
    return rc == RV_EIO || rc == RV_ENOSPACE || rc == RV_ECORRUPT ||
           rc == RV_ENOMEM;
}
/* ---- Commands ---------------------------------------------------------- */

static int
store__dispatch_body(struct store_wctx *w, const Rv__Command *cmd,
                     struct vlog_ptr ptr, uint16_t cmd_no,
                     struct store_result *res)
{
    switch (cmd->body_case) {
    case RV__COMMAND__BODY_RUN_CREATE:
        return store__run_create(w, cmd->run_create, res);
    case RV__COMMAND__BODY_RUN_UPDATE:
        return store__run_update(w, cmd->run_update);
    case RV__COMMAND__BODY_RUN_STATUS:
        return store__run_status(w, cmd->run_status);
    case RV__COMMAND__BODY_LOG_BATCH:
        return store__log_batch(w, cmd->log_batch,
                                cmd->has_content_key ? &cmd->content_key : NULL,
                                ptr, cmd_no);
    case RV__COMMAND__BODY_LOG_LINES:
        return store__log_lines(w, cmd->log_lines, ptr, cmd_no);
    case RV__COMMAND__BODY_ARTIFACT_CHUNK:
        return store__artifact_chunk(w, cmd->artifact_chunk, ptr, cmd_no);
    case RV__COMMAND__BODY_RUN_DELETE:
        return store__run_lifecycle(w, cmd->run_delete->run_id, STORE_DELETED);
    case RV__COMMAND__BODY_RUN_RESTORE:
        return store__run_lifecycle(w, cmd->run_restore->run_id, STORE_ACTIVE);
    case RV__COMMAND__BODY_RUN_PURGE:
        return store__run_purge(w, cmd->run_purge->run_id);
    case RV__COMMAND__BODY_TEAM_PUT:
        return store__team_put(w, cmd->team_put);
    case RV__COMMAND__BODY_TOKEN_PUT:
        return store__token_put(w, cmd->token_put);
    case RV__COMMAND__BODY_TOKEN_DEL:
        return store__token_del(w, cmd->token_del);
    case RV__COMMAND__BODY_NOOP:
        return RV_OK;
    case RV__COMMAND__BODY_NODE_PUT:
        return store__node_put(w, cmd->node_put);
    case RV__COMMAND__BODY_NODE_DEL:
        return store__node_del(w, cmd->node_del);
    case RV__COMMAND__BODY_QUOTA_PUT:
        return store__quota_put(w, cmd->quota_put);
    case RV__COMMAND__BODY_AUTH_ON:
        return store__auth_on(w);
    case RV__COMMAND__BODY_MLFLOW_EXPERIMENT:
        return store__mlflow_experiment(w, cmd, res);
    case RV__COMMAND__BODY_RETENTION_PUT:
        return store__retention_put(w, cmd->retention_put);
    case RV__COMMAND__BODY_RETENTION_SWEEP:
        return store__retention_sweep(w, cmd->retention_sweep, cmd_no);
    case RV__COMMAND__BODY_CHECK:
        return store__check_apply(w, cmd->check);
    case RV__COMMAND__BODY_COMPACT:
        return store__compact_apply(w, ptr);
    case RV__COMMAND__BODY__NOT_SET:
    default:
        rv_errmsg_printf(w->errmsg, "empty command");
        return RV_EINVAL;
    }
}

/* A command its caller may make (store__authorise passed, ctx from it):
 * the team's byte quota, its body, its accounting (store_auth.c). */
static int
store__dispatch(struct store_wctx *w, const Rv__Command *cmd,
                struct vlog_ptr ptr, uint16_t cmd_no, struct store_result *res,
                struct store__cmdctx *ctx)
{
    int rc = store__bytes_check(w, ctx);
    if (rc == RV_OK)
        rc = store__dispatch_body(w, cmd, ptr, cmd_no, res);
    if (rc == RV_OK)
        rc = store__account(w, cmd, cmd_no, ctx);
    return rc;
}

/* Client record: be64 high-water seq, then up to STORE_CLIENT_RESULTS
 * entries of (be64 seq, be32 code, u8 flags, str16 run_id, str16 message),
 * newest first. */
static int
store__client_lookup(struct store_wctx *w, uint64_t client_id, uint64_t seq,
                     struct store_result *res, int *is_done)
{
    uint8_t k[8];
    MDB_val v;
    *is_done = 0;
    rv_put_be64(k, client_id);
    int rc =
        store__get(w->txn, w->s->dbi[STORE_DB_CLIENT], k, 8, &v, w->errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_OK;
    if (rc != RV_OK)
        return rc;
    const uint8_t *p = v.mv_data, *end = p + v.mv_size;
    if (v.mv_size < 8)
        return RV_ECORRUPT;
    if (seq > rv_get_be64(p))
        return RV_OK;
    *is_done = 1;
    res->is_duplicate = 1;
    for (p += 8; end - p >= 17;) {
        uint64_t s = rv_get_be64(p);
        int code = (int)rv_get_be32(p + 8);
        uint8_t flags = p[12];
        uint16_t rn = rv_get_be16(p + 13);
        if ((size_t)(end - p) < 15u + rn + 2)
            return RV_ECORRUPT;
        uint16_t mn = rv_get_be16(p + 15 + rn);
        if ((size_t)(end - p) < 17u + rn + mn)
            return RV_ECORRUPT;
        if (s == seq) {
            res->code = code;
            res->is_resumed = flags & 1;
            snprintf(res->run_id, sizeof res->run_id, "%.*s", (int)rn,
                     (const char *)p + 15);
            snprintf(res->message, sizeof res->message, "%.*s", (int)mn,
                     (const char *)p + 17 + rn);
            return RV_OK;
        }
        p += 17 + rn + mn;
    }
    res->code = RV_ESTALE;
    snprintf(res->message, sizeof res->message,
             "client %llu seq %llu was applied earlier; its result is no "
             "longer kept",
             (unsigned long long)client_id, (unsigned long long)seq);
    return RV_OK;
}

static int
store__client_record(struct store_wctx *w, uint64_t client_id, uint64_t seq,
                     const struct store_result *res)
{
    uint8_t k[8];
    MDB_val v;
    struct rv_buf b;
    rv_put_be64(k, client_id);
    rv_buf_init(&b);
    rv_buf_append_be64(&b, seq);
    size_t rn = strlen(res->run_id), mn = strlen(res->message);
    rv_buf_append_be64(&b, seq);
    rv_buf_append_be32(&b, (uint32_t)res->code);
    rv_buf_append_u8(&b, (uint8_t)(res->is_resumed ? 1 : 0));
    rv_buf_append_str16(&b, res->run_id, rn);
    rv_buf_append_str16(&b, res->message, mn);
    int rc =
        store__get(w->txn, w->s->dbi[STORE_DB_CLIENT], k, 8, &v, w->errmsg);
    if (rc == RV_OK && v.mv_size >= 8) {
        /* Keep the newest STORE_CLIENT_RESULTS - 1 older entries. */
        const uint8_t *p = (const uint8_t *)v.mv_data + 8,
                      *end = (const uint8_t *)v.mv_data + v.mv_size;
        for (int kept = 1; kept < STORE_CLIENT_RESULTS && end - p >= 17;
             kept++) {
            uint16_t n1 = rv_get_be16(p + 13);
            if ((size_t)(end - p) < 17u + n1)
                break;
            uint16_t n2 = rv_get_be16(p + 15 + n1);
            size_t len = 17u + n1 + n2;
            if ((size_t)(end - p) < len)
                break;
            rv_buf_append(&b, p, len);
            p += len;
        }
        rc = RV_OK;
    } else if (rc == RV_ENOTFOUND) {
        rc = RV_OK;
    }
    if (rc == RV_OK)
        rc = b.is_failed ? RV_ENOMEM
                         : store__put(w, STORE_DB_CLIENT, k, 8, b.data, b.len);
    rv_buf_free(&b);
    return rc;
}

/* Apply one command: all of it or nothing. With is_nested the command runs
 * in a nested transaction that a business error aborts alone. Without it
 * (the fast path) the command writes straight into txn, and a business
 * error makes the caller redo the
 * whole entry with nested transactions (STORE_REDO_NESTED): the outcome is
 * the same either way, and commands rarely fail. */
#define STORE_REDO_NESTED (-1)

static int
store__command(struct store *s, MDB_txn *parent, XXH3_state_t *entry_hash,
               XXH3_state_t *cmd_hash, uint64_t index, const Rv__Command *cmd,
               struct vlog_ptr ptr, uint16_t cmd_no, int is_nested,
               struct store_result *res, char *errmsg)
{
    struct store_wctx pw = {s, parent, entry_hash, index, res->message, 0};
    struct store__cmdctx ctx;
    if (cmd->has_stamped_at_ms) {
        if (cmd->stamped_at_ms > s->time_hw_ms)
            s->time_hw_ms = cmd->stamped_at_ms;
        pw.at_ms = s->time_hw_ms;
    }
    int is_done = 0;
    uint64_t client_id = cmd->has_client_id ? cmd->client_id : 0;
    uint64_t seq = cmd->has_seq ? cmd->seq : 0;
    int rc;

    /* Who may make it comes first, and a refusal is not recorded under
     * the idempotency key: the same command retried with a valid token
     * applies, and a caller who may not make it learns nothing of an
     * earlier outcome. Read-only, so it needs no nested transaction. */
    rc = store__authorise(&pw, cmd, &ctx);
    if (rc != RV_OK) {
        if (store__is_local_fault(rc)) {
            snprintf(errmsg, RV_ERRMSG_SIZE, "%s: %.200s",
                     proto_command_name(cmd), res->message);
            return rc;
        }
        res->code = rc;
        if (res->message[0] == '\0')
            snprintf(res->message, sizeof res->message, "%s", rv_strerror(rc));
        return RV_OK;
    }
    if (client_id != 0) {
        rc = store__client_lookup(&pw, client_id, seq, res, &is_done);
        if (rc != RV_OK || is_done)
            return rc;
    }
    MDB_txn *txn = parent;
    if (is_nested) {
        int mrc = mdb_txn_begin(s->env, parent, 0, &txn);
        if (mrc != 0)
            return store__err_mdb(mrc, "mdb_txn_begin (nested)", errmsg);
    }
    XXH3_128bits_reset(cmd_hash);
    struct store_wctx w = {s, txn, cmd_hash, index, res->message, pw.at_ms};
    uint64_t run_num = s->next_run_num, series_id = s->next_series_id;
    rc = store__dispatch(&w, cmd, ptr, cmd_no, res, &ctx);
    if (store__is_local_fault(rc)) {
        if (is_nested)
            mdb_txn_abort(txn);
        snprintf(errmsg, RV_ERRMSG_SIZE, "%s: %.200s", proto_command_name(cmd),
                 res->message);
        return rc;
    }
    if (rc != RV_OK && !is_nested)
        return STORE_REDO_NESTED;
    if (rc != RV_OK) {
        mdb_txn_abort(txn);
        s->next_run_num = run_num;
        s->next_series_id = series_id;
        res->code = rc;
        if (res->message[0] == '\0')
            snprintf(res->message, sizeof res->message, "%s", rv_strerror(rc));
    } else {
        if (is_nested) {
            int mrc = mdb_txn_commit(txn);
            if (mrc != 0)
                return store__err_mdb(mrc, "mdb_txn_commit (nested)", errmsg);
        }
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(cmd_hash));
        XXH3_128bits_update(entry_hash, c.digest, sizeof c.digest);
        res->code = RV_OK;
        res->message[0] = '\0';
    }
    if (client_id != 0) {
        pw.errmsg = errmsg;
        rc = store__client_record(&pw, client_id, seq, res);
        if (rc != RV_OK)
            return rc;
    }
    return RV_OK;
}

static int
store__meta_put(MDB_txn *txn, MDB_dbi dbi, const char *name, const void *v,
                size_t n, char *errmsg)
{
    MDB_val key = {strlen(name), (void *)name}, val = {n, (void *)v};
    int rc = mdb_put(txn, dbi, &key, &val, 0);
    return rc == 0 ? RV_OK : store__err_mdb(rc, "meta", errmsg);
}

static int
store__meta_store(struct store *s, MDB_txn *txn, uint64_t index,
                  const uint8_t digest[STORE_DIGEST_BYTES], char *errmsg)
{
    uint8_t v[8];
    MDB_dbi meta = s->dbi[STORE_DB_META];
    rv_put_be64(v, index);
    int rc = store__meta_put(txn, meta, "applied", v, 8, errmsg);
    if (rc == RV_OK)
        rc = store__meta_put(txn, meta, "digest", digest, STORE_DIGEST_BYTES,
                             errmsg);
    rv_put_be64(v, s->next_run_num);
    if (rc == RV_OK)
        rc = store__meta_put(txn, meta, "seq.run", v, 8, errmsg);
    rv_put_be64(v, s->next_series_id);
    if (rc == RV_OK)
        rc = store__meta_put(txn, meta, "seq.series", v, 8, errmsg);
    rv_put_be64(v, (uint64_t)s->time_hw_ms);
    if (rc == RV_OK && s->time_hw_ms > 0)
        rc = store__meta_put(txn, meta, "time.hw", v, 8, errmsg);
    return rc;
}

/* The next digest: XXH3-128 of (previous digest, index, hash of the entry's
 * index writes). */
static void
store__digest_next(const uint8_t prev[STORE_DIGEST_BYTES], uint64_t index,
                   XXH3_state_t *entry_hash, uint8_t out[STORE_DIGEST_BYTES])
{
    uint8_t buf[STORE_DIGEST_BYTES + 8 + 16];
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(entry_hash));
    memcpy(buf, prev, STORE_DIGEST_BYTES);
    rv_put_be64(buf + STORE_DIGEST_BYTES, index);
    memcpy(buf + STORE_DIGEST_BYTES + 8, c.digest, 16);
    XXH128_canonicalFromHash(&c, XXH3_128bits(buf, sizeof buf));
    memcpy(out, c.digest, STORE_DIGEST_BYTES);
}

static int
store__apply_batch(struct store *s, MDB_txn *txn, uint64_t index,
                   const Rv__CommandBatch *batch, struct vlog_ptr ptr,
                   int is_nested, struct store_result *results,
                   XXH3_state_t *entry_hash, char *errmsg)
{
    XXH3_state_t *cmd_hash = XXH3_createState();
    if (cmd_hash == NULL)
        return RV_ENOMEM;
    int rc = RV_OK;
    int64_t time_hw = s->time_hw_ms; /* restored for a nested redo */
    for (size_t i = 0; rc == RV_OK && i < batch->n_commands; i++) {
        rc = store__command(s, txn, entry_hash, cmd_hash, index,
                            batch->commands[i], ptr, (uint16_t)i, is_nested,
                            &results[i], errmsg);
    }
    if (rc == STORE_REDO_NESTED)
        s->time_hw_ms = time_hw;
    XXH3_freeState(cmd_hash);
    return rc;
}

int
store__decode_record(uint64_t index, const uint8_t *payload, size_t n,
                     Rv__CommandBatch **batch, char *why, char *errmsg)
{
    *batch = NULL;
    if (proto_batch_decode(payload, n, batch, why) != RV_OK)
        return RV_OK; /* applied as a malformed batch, as it was live */
    if ((*batch)->n_pad > 0) {
        /* A compacted record is never replayed: the checkpoint's image
         * stands for every record up to it (store_compact.c). A proposer
         * never writes padding: store_apply archives such a batch empty. */
        rv_errmsg_printf(errmsg,
                         "vlog record %llu was compacted: only the "
                         "compaction checkpoint's image can stand for it",
                         (unsigned long long)index);
        proto_batch_free(*batch);
        *batch = NULL;
        return RV_ECORRUPT;
    }
    return RV_OK;
}

int
store__materialise(struct store *s, uint64_t index, Rv__CommandBatch *batch,
                   struct vlog_ptr ptr, const char *malformed_msg,
                   struct store_result **results, size_t *n_results,
                   char *errmsg)
{
    char why[RV_ERRMSG_SIZE] = "";
    int is_malformed = batch == NULL;
    *results = NULL;
    *n_results = 0;
    if (store__marker_dirty(s, errmsg) != RV_OK) {
        proto_batch_free(batch);
        return RV_EIO;
    }
    if (!is_malformed && batch->n_commands > CONTRACT_MAX_COMMANDS_PER_BATCH) {
        snprintf(why, sizeof why, "batch of %zu commands exceeds %d",
                 batch->n_commands, CONTRACT_MAX_COMMANDS_PER_BATCH);
        is_malformed = 1;
    }
    size_t n_cmds = is_malformed ? 1 : batch->n_commands;
    struct store_result *res = calloc(n_cmds ? n_cmds : 1, sizeof *res);
    XXH3_state_t *entry_hash = XXH3_createState();
    MDB_txn *txn = NULL;
    int rc = res && entry_hash ? RV_OK : RV_ENOMEM;
    uint64_t run_num = s->next_run_num, series_id = s->next_series_id;
    uint8_t digest[STORE_DIGEST_BYTES];
    for (int is_nested = 0; rc == RV_OK && is_nested < 2; is_nested++) {
        int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (mrc != 0) {
            rc = store__err_mdb(mrc, "mdb_txn_begin", errmsg);
            break;
        }
        XXH3_128bits_reset(entry_hash);
        if (is_malformed) {
            res[0].code = RV_EMALFORMED;
            snprintf(res[0].message, sizeof res[0].message, "%s",
                     why[0] != '\0' || malformed_msg == NULL ? why
                                                             : malformed_msg);
            break;
        }
        rc = store__apply_batch(s, txn, index, batch, ptr, is_nested, res,
                                entry_hash, errmsg);
        if (rc != STORE_REDO_NESTED)
            break;
        /* A command failed on the fast path: start over, nested. */
        mdb_txn_abort(txn);
        txn = NULL;
        s->next_run_num = run_num;
        s->next_series_id = series_id;
        memset(res, 0, n_cmds * sizeof *res);
        rc = RV_OK;
    }
    if (rc == RV_OK) {
        store__digest_next(s->digest, index, entry_hash, digest);
        rc = store__meta_store(s, txn, index, digest, errmsg);
    }
    if (rc == RV_OK) {
        int mrc = mdb_txn_commit(txn);
        txn = NULL;
        if (mrc != 0)
            rc = store__err_mdb(mrc, "mdb_txn_commit", errmsg);
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc == RV_OK) {
        s->applied_index = index;
        memcpy(s->digest, digest, STORE_DIGEST_BYTES);
        store__check_after_commit(s);
        store__compact_after_commit(s);
        *results = res;
        *n_results = n_cmds;
    } else {
        s->next_run_num = run_num;
        s->next_series_id = series_id;
        s->check_pending = 0;
        s->compact_pending = 0;
        free(res);
    }
    XXH3_freeState(entry_hash);
    proto_batch_free(batch);
    return rc;
}

int
store_apply(struct store *s, uint64_t index, const void *entry, size_t len,
            struct store_result **results, size_t *n_results, char *errmsg)
{
    const uint8_t *payload;
    size_t n;
    char why[RV_ERRMSG_SIZE] = "";

    *results = NULL;
    *n_results = 0;
    if (index <= s->applied_index)
        return RV_OK;
    if (vlog_last_index(s->vlog) >= index) {
        rv_errmsg_printf(errmsg,
                         "vlog already holds index %llu beyond the "
                         "applied index %llu",
                         (unsigned long long)index,
                         (unsigned long long)s->applied_index);
        return RV_ECORRUPT;
    }
    int orc = proto_envelope_open(entry, len, &payload, &n, why);
    if (orc == RV_EVERSION) {
        /* A newer runvault's entry: applying it as an empty batch would
         * diverge from the nodes that understand it. Refuse (the node
         * stops, nothing is archived) until this node is upgraded. */
        rv_errmsg_printf(errmsg, "entry %llu: %s", (unsigned long long)index,
                         why);
        return RV_EVERSION;
    }
    Rv__CommandBatch *batch = NULL;
    if (orc == RV_OK && proto_batch_decode(payload, n, &batch, why) == RV_OK &&
        batch->n_pad > 0) {
        /* Padding is compaction's mark (a compacted record never replays):
         * a proposer never writes it, so such a batch is malformed. */
        snprintf(why, sizeof why,
                 "a proposed batch carries compaction padding");
        proto_batch_free(batch);
        batch = NULL;
    }
    if (batch == NULL) {
        /* Archive an empty batch: replaying it changes nothing, as here. */
        payload = (const uint8_t *)"";
        n = 0;
    }
    struct vlog_ptr ptr;
    int rc =
        vlog_append(s->vlog, index, VLOG_TYPE_BATCH, payload, n, &ptr, errmsg);
    if (rc != RV_OK) {
        proto_batch_free(batch);
        rv_errmsg_wrap(errmsg, "vlog");
        return rc;
    }
    return store__materialise(s, index, batch, ptr, why, results, n_results,
                              errmsg);
}

int
store_apply_record(struct store *s, uint64_t index, const void *payload,
                   size_t n, char *errmsg)
{
    if (index <= s->applied_index || vlog_last_index(s->vlog) >= index) {
        rv_errmsg_printf(errmsg, "record %llu does not follow %llu",
                         (unsigned long long)index,
                         (unsigned long long)s->applied_index);
        return RV_EINVAL;
    }
    Rv__CommandBatch *batch;
    char why[RV_ERRMSG_SIZE] = "";
    int rc = store__decode_record(index, payload, n, &batch, why, errmsg);
    if (rc != RV_OK)
        return rc;
    struct vlog_ptr ptr;
    rc = vlog_append(s->vlog, index, VLOG_TYPE_BATCH, payload, n, &ptr, errmsg);
    if (rc != RV_OK) {
        proto_batch_free(batch);
        rv_errmsg_wrap(errmsg, "vlog");
        return rc;
    }
    struct store_result *results;
    size_t n_results;
    rc = store__materialise(s, index, batch, ptr, why, &results, &n_results,
                            errmsg);
    free(results);
    return rc;
}
