/* The endpoints: routing, JSON in and out, checks at the door, and the
 * native requests they become (shapes in docs/HTTP.md). */
#include "base/clock.h"
#include "gateway/gateway_int.h"
#include "raft/replica.h"
#include "rpc/client.h"
#include "store/store.h"

#include <errno.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything a handler allocates for its native request lives in blocks
 * freed when the exchange ends. */
struct gw_block {
    struct gw_block *next;
    max_align_t align[];
};

struct gw_ctx {
    struct gw_exchange *x;
    struct gw_block *blocks;
    char errmsg[RV_ERRMSG_SIZE];
};

static void *
gw__alloc(struct gw_ctx *c, size_t n)
{
    struct gw_block *b = calloc(1, sizeof *b + (n ? n : 1));
    if (b == NULL)
        return NULL;
    b->next = c->blocks;
    c->blocks = b;
    return b->align;
}

static void
gw__free_all(struct gw_ctx *c)
{
    while (c->blocks != NULL) {
        struct gw_block *b = c->blocks;
        c->blocks = b->next;
        free(b);
    }
}

static double
gw__elapsed_ms(const struct gw_exchange *x)
{
    /* Rounded to 1/1024 ms: exact in binary, so it prints short. */
    uint64_t us = rv_clock_mono_ns() / 1000u - x->start_us;
    return (double)((us * 1024u + 500u) / 1000u) / 1024.0;
}

json_t *
gw_json_double(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

static const char *
gw__status_name(int status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &rv__run_status__descriptor, status);
    return v != NULL ? v->name : "RUN_STATUS_UNSPECIFIED";
}

static int
gw__status_parse(const char *s, Rv__RunStatus *out)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(
        &rv__run_status__descriptor, s);
    if (v == NULL || v->value == RV__RUN_STATUS__RUN_STATUS_UNSPECIFIED)
        return -1;
    *out = (Rv__RunStatus)v->value;
    return 0;
}

/* ---- Query parameters ---------------------------------------------------- */

static int
gw__q_i64(struct gw_ctx *c, const char *name, int64_t min, int64_t max,
          int64_t *out, int *is_set)
{
    const char *v = gw_query(c->x, name);
    *is_set = 0;
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || n < min || n > max) {
        rv_errmsg_printf(c->errmsg,
                         "query parameter %s must be an integer from %lld to "
                         "%lld",
                         name, (long long)min, (long long)max);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    *out = (int64_t)n;
    *is_set = 1;
    return 0;
}

static int
gw__q_u64(struct gw_ctx *c, const char *name, uint64_t max, uint64_t *out,
          int *is_set)
{
    const char *v = gw_query(c->x, name);
    *is_set = 0;
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n > max) {
        rv_errmsg_printf(c->errmsg,
                         "query parameter %s must be an integer from 0 to "
                         "%llu",
                         name, (unsigned long long)max);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    *out = (uint64_t)n;
    *is_set = 1;
    return 0;
}

/* A string parameter of at most max bytes, or NULL. */
static int
gw__q_str(struct gw_ctx *c, const char *name, size_t max, const char **out)
{
    const char *v = gw_query(c->x, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (strlen(v) > max) {
        rv_errmsg_printf(c->errmsg,
                         "query parameter %s is longer than %zu bytes", name,
                         max);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    *out = v;
    return 0;
}

/* Every read takes consistency= and min_index=. */
static int
gw__read_options(struct gw_ctx *c, Rv__Request *req, Rv__ReadOptions *ro)
{
    const char *cs = gw_query(c->x, "consistency");
    uint64_t min_index;
    int is_set;
    rv__read_options__init(ro);
    if (cs != NULL) {
        ro->has_consistency = 1;
        if (strcmp(cs, "stale") == 0)
            ro->consistency = RV__CONSISTENCY__STALE;
        else if (strcmp(cs, "leader") == 0)
            ro->consistency = RV__CONSISTENCY__LEADER;
        else if (strcmp(cs, "linearizable") == 0)
            ro->consistency = RV__CONSISTENCY__LINEARIZABLE;
        else {
            gw_reply_error(c->x, RV_EINVAL,
                           "consistency must be stale, leader or "
                           "linearizable");
            return -1;
        }
    }
    if (gw__q_u64(c, "min_index", UINT64_MAX, &min_index, &is_set) != 0)
        return -1;
    ro->has_min_index = is_set;
    ro->min_index = min_index;
    req->read = ro;
    return 0;
}

/* Answer the native request; on a failed response, the error answer. */
static const Rv__Response *
gw__call(struct gw_ctx *c, Rv__Request *req)
{
    const struct gw_node_ops *ops = c->x->ops;
    const Rv__Response *r = ops != NULL ? ops->answer(ops->data, req)
                                        : rpc_caller_answer(c->x->caller, req);
    if (r->code != RV_OK) {
        gw_reply_error(c->x, (int)r->code, r->message);
        return NULL;
    }
    return r;
}

/* ---- JSON bodies ----------------------------------------------------------
 */

static json_t *
gw__body(struct gw_ctx *c)
{
    json_error_t err;
    if (c->x->body_len > GATEWAY_MAX_JSON_BODY) {
        rv_errmsg_printf(c->errmsg,
                         "the JSON body is %zu bytes, over the limit of %u",
                         c->x->body_len, GATEWAY_MAX_JSON_BODY);
        gw_reply_error(c->x, RV_ETOOBIG, c->errmsg);
        return NULL;
    }
    if (c->x->body_len == 0) {
        gw_reply_error(c->x, RV_EINVAL, "the request needs a JSON body");
        return NULL;
    }
    json_t *j = json_loadb((const char *)c->x->body, c->x->body_len,
                           JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        rv_errmsg_printf(c->errmsg, "invalid JSON at line %d column %d: %s",
                         err.line, err.column, err.text);
        gw_reply_error(c->x, RV_EMALFORMED, c->errmsg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        gw_reply_error(c->x, RV_EMALFORMED, "the JSON body must be an object");
        return NULL;
    }
    return j;
}

/* Only the listed members may appear (a misspelt field is an error, not
 * silently ignored). names ends with NULL. */
static int
gw__only(struct gw_ctx *c, json_t *obj, const char *where,
         const char *const *names)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int ok = 0;
        for (const char *const *n = names; *n != NULL; n++)
            ok |= strcmp(*n, k) == 0;
        if (!ok) {
            rv_errmsg_printf(c->errmsg, "%s: unknown field '%.64s'", where, k);
            gw_reply_error(c->x, RV_EINVAL, c->errmsg);
            return -1;
        }
    }
    return 0;
}

/* A string member of at most max bytes (jansson has checked the UTF-8 and
 * refused NUL). Absent: *out = NULL, an error if is_required. */
static int
gw__str(struct gw_ctx *c, json_t *obj, const char *name, int is_required,
        size_t max, char **out)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!is_required)
            return 0;
        rv_errmsg_printf(c->errmsg, "missing field '%s'", name);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    if (!json_is_string(v)) {
        rv_errmsg_printf(c->errmsg, "field '%s' must be a string", name);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    if (json_string_length(v) > max ||
        (is_required && json_string_length(v) == 0)) {
        rv_errmsg_printf(c->errmsg, "field '%s' must be %d to %zu bytes", name,
                         is_required ? 1 : 0, max);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    *out = (char *)json_string_value(v);
    return 0;
}

/* An integer member in [min, max]; absent leaves *out. */
static int
gw__int(struct gw_ctx *c, json_t *obj, const char *name, const char *where,
        int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        rv_errmsg_printf(
            c->errmsg, "%s%s%s must be an integer from %lld to %lld", where,
            where[0] ? "." : "", name, (long long)min, (long long)max);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* params/tags: an object of string values -> KV pointers. */
static int
gw__kvs(struct gw_ctx *c, json_t *obj, const char *name, size_t max_n,
        size_t max_value, Rv__KV ***out, size_t *n_out)
{
    json_t *m = json_object_get(obj, name);
    *out = NULL;
    *n_out = 0;
    if (m == NULL || json_is_null(m))
        return 0;
    if (!json_is_object(m)) {
        rv_errmsg_printf(c->errmsg, "'%s' must be an object of strings", name);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    size_t n = json_object_size(m);
    if (n > max_n) {
        rv_errmsg_printf(c->errmsg, "'%s' has %zu entries, at most %zu", name,
                         n, max_n);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    Rv__KV *kvs = gw__alloc(c, n * sizeof *kvs);
    Rv__KV **ptrs = gw__alloc(c, n * sizeof *ptrs);
    if (kvs == NULL || ptrs == NULL) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        return -1;
    }
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(m, k, v)
    {
        size_t kn = strlen(k);
        if (!store_key_valid(k, kn)) {
            rv_errmsg_printf(c->errmsg,
                             "%s key '%.64s' is invalid: 1 to %d bytes of "
                             "letters, digits, '_', '-', '.', ' ', '/'",
                             name, k, STORE_MAX_KEY_BYTES);
            gw_reply_error(c->x, RV_EINVAL, c->errmsg);
            return -1;
        }
        if (!json_is_string(v) || json_string_length(v) > max_value) {
            rv_errmsg_printf(c->errmsg,
                             "%s '%.64s' must be a string of at most %zu "
                             "bytes",
                             name, k, max_value);
            gw_reply_error(c->x, RV_EINVAL, c->errmsg);
            return -1;
        }
        rv__kv__init(&kvs[i]);
        kvs[i].key = (char *)k;
        kvs[i].value = (char *)json_string_value(v);
        ptrs[i] = &kvs[i];
        i++;
    }
    *out = ptrs;
    *n_out = n;
    return 0;
}

/* ---- Writes ----------------------------------------------------------------
 */

/* (client_id, seq) from the Idempotency-Key header "<client_id>/<seq>", or
 * the worker's own pair. */
static int
gw__idempotency(struct gw_ctx *c, uint64_t *client_id, uint64_t *seq)
{
    const char *h = c->x->idempotency_key;
    if (h == NULL) {
        *client_id = c->x->worker_client_id;
        *seq = ++*c->x->worker_seq;
        return 0;
    }
    char *end;
    unsigned long long a = 0, b = 0;
    int ok =
        strlen(h) <= GATEWAY_MAX_IDEMPOTENCY_KEY && h[0] >= '0' && h[0] <= '9';
    if (ok) {
        errno = 0;
        a = strtoull(h, &end, 10);
        ok = errno == 0 && *end == '/' && end[1] >= '0' && end[1] <= '9';
        if (ok) {
            b = strtoull(end + 1, &end, 10);
            ok = errno == 0 && *end == '\0' && a != 0 && b != 0 &&
                 a < (1ull << 63);
        }
    }
    if (!ok) {
        gw_reply_error(c->x, RV_EINVAL,
                       "Idempotency-Key must be <client_id>/<seq>: decimal, "
                       "client_id 1 to 2^63-1, seq > 0");
        return -1;
    }
    *client_id = a;
    *seq = b;
    return 0;
}

static int
gw__durability(struct gw_ctx *c, Rv__WriteRequest *wr)
{
    const char *d = gw_query(c->x, "durability");
    if (d == NULL)
        return 0;
    wr->has_durability = 1;
    if (strcmp(d, "memory") == 0)
        wr->durability = RV__DURABILITY__MEMORY;
    else if (strcmp(d, "buffered") == 0)
        wr->durability = RV__DURABILITY__BUFFERED;
    else if (strcmp(d, "strict") == 0)
        wr->durability = RV__DURABILITY__STRICT;
    else {
        gw_reply_error(c->x, RV_EINVAL,
                       "durability must be memory, buffered or strict");
        return -1;
    }
    return 0;
}

/* Send the commands as one write; answer an error if the write or any
 * command failed. Returns the response, or NULL when answered. */
static const Rv__Response *
gw__write(struct gw_ctx *c, Rv__Command **cmds, size_t n)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    if (gw__durability(c, &wr) != 0)
        return NULL;
    wr.n_commands = n;
    wr.commands = cmds;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < r->n_results; i++)
        if (r->results[i]->code != RV_OK) {
            gw_reply_error(c->x, (int)r->results[i]->code,
                           r->results[i]->message);
            return NULL;
        }
    return r;
}

static json_t *
gw__index_reply(const Rv__Response *r)
{
    return json_pack("{s:I}", "index", (json_int_t)r->index);
}

/* A run id made here: 26 characters of Crockford base32 over 48 bits of
 * milliseconds and 80 random bits (ULID-style, sorts by time). */
static void
gw__make_run_id(char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t raw[16];
    uint64_t ms = rv_clock_wall_ms();
    for (int i = 0; i < 6; i++)
        raw[i] = (uint8_t)(ms >> (40 - 8 * i));
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(raw + 6, 1, 10, f) != 10) {
        uint64_t t = rv_clock_mono_ns();
        for (int i = 6; i < 16; i++) {
            t = t * 6364136223846793005ull + 1442695040888963407ull;
            raw[i] = (uint8_t)(t >> 56);
        }
    }
    if (f != NULL)
        fclose(f);
    /* 128 bits -> 26 digits of 5 bits (the first digit holds 3 bits). */
    for (int i = 0; i < 26; i++) {
        int bit = 128 - 5 * (26 - i);
        unsigned v = 0;
        for (int k = 0; k < 5; k++) {
            int b = bit + k;
            v <<= 1;
            if (b >= 0)
                v |= (unsigned)(raw[b / 8] >> (7 - b % 8)) & 1u;
        }
        out[i] = b32[v];
    }
    out[26] = '\0';
}

static int
gw__run_id(struct gw_ctx *c, const char *id)
{
    if (!store_run_id_valid(id, strlen(id))) {
        rv_errmsg_printf(c->errmsg,
                         "invalid run_id '%.64s': 1 to %d letters, digits, "
                         "'_' or '-', starting with a letter or digit",
                         id, STORE_MAX_RUN_ID_BYTES);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return -1;
    }
    return 0;
}

static void
gw__create_run(struct gw_ctx *c)
{
    static const char *const fields[] = {
        "project", "experiment", "name",   "run_id", "user",
        "params",  "tags",       "resume", "status", NULL};
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunCreate rc = RV__RUN_CREATE__INIT;
    char made[27], *resume = NULL, *status = NULL;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "run", fields) != 0 ||
        gw__str(c, j, "project", 1, STORE_MAX_SCOPE_BYTES, &rc.project) != 0 ||
        gw__str(c, j, "experiment", 1, STORE_MAX_SCOPE_BYTES, &rc.experiment) !=
            0 ||
        gw__str(c, j, "name", 0, STORE_MAX_NAME_BYTES, &rc.name) != 0 ||
        gw__str(c, j, "run_id", 0, STORE_MAX_RUN_ID_BYTES, &rc.run_id) != 0 ||
        gw__str(c, j, "user", 0, STORE_MAX_SCOPE_BYTES, &rc.user) != 0 ||
        gw__str(c, j, "resume", 0, 16, &resume) != 0 ||
        gw__str(c, j, "status", 0, 16, &status) != 0 ||
        gw__kvs(c, j, "params", STORE_MAX_PARAMS_PER_COMMAND,
                STORE_MAX_PARAM_VALUE_BYTES, &rc.params, &rc.n_params) != 0 ||
        gw__kvs(c, j, "tags", STORE_MAX_TAGS_PER_COMMAND,
                STORE_MAX_TAG_VALUE_BYTES, &rc.tags, &rc.n_tags) != 0)
        goto out;
    if (rc.run_id != NULL && gw__run_id(c, rc.run_id) != 0)
        goto out;
    if (rc.run_id == NULL) {
        gw__make_run_id(made);
        rc.run_id = made;
    }
    rc.has_resume = 1;
    if (resume == NULL || strcmp(resume, "never") == 0)
        rc.resume = RV__RESUME__RESUME_NEVER;
    else if (strcmp(resume, "allow") == 0)
        rc.resume = RV__RESUME__RESUME_ALLOW;
    else if (strcmp(resume, "must") == 0)
        rc.resume = RV__RESUME__RESUME_MUST;
    else {
        gw_reply_error(c->x, RV_EINVAL, "resume must be allow, must or never");
        goto out;
    }
    if (status != NULL) {
        if (gw__status_parse(status, &rc.status) != 0) {
            gw_reply_error(c->x, RV_EINVAL, "unknown run status");
            goto out;
        }
        rc.has_status = 1;
    }
    if (gw__idempotency(c, &cmd.client_id, &cmd.seq) != 0)
        goto out;
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &rc;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r == NULL)
        goto out;
    const Rv__CommandResult *res = r->n_results > 0 ? r->results[0] : NULL;
    int is_resumed = res != NULL && res->has_is_resumed && res->is_resumed;
    json_t *o =
        json_pack("{s:s,s:I}", "run_id",
                  res != NULL && res->run_id != NULL ? res->run_id : rc.run_id,
                  "index", (json_int_t)r->index);
    if (o != NULL && is_resumed)
        json_object_set_new(o, "resumed", json_true());
    if (o != NULL && res != NULL && res->has_is_duplicate && res->is_duplicate)
        json_object_set_new(o, "duplicate", json_true());
    gw_reply_json(c->x, is_resumed ? 200 : 201, o);
out:
    json_decref(j);
}

/* A tiny open-addressing table from (key, context) strings to their
 * dictionary index, for building the columnar batch. */
#define GW_DICT_SLOTS 4096 /* > 2 * (GATEWAY_MAX_METRICS + 1) */

struct gw_dict {
    const char *s[GW_DICT_SLOTS];
    uint32_t idx[GW_DICT_SLOTS];
    uint32_t n;
};

static uint32_t
gw__dict_get(struct gw_dict *d, const char *s, char **list)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = s; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    for (uint32_t i = (uint32_t)(h % GW_DICT_SLOTS);;
         i = (i + 1) % GW_DICT_SLOTS) {
        if (d->s[i] == NULL) {
            d->s[i] = s;
            d->idx[i] = d->n;
            list[d->n] = (char *)s;
            return d->n++;
        }
        if (strcmp(d->s[i], s) == 0)
            return d->idx[i];
    }
}

/* Say what is wrong with metric point i (the hot loop found it bad). */
static void
gw__point_error(struct gw_ctx *c, json_t *p, size_t i)
{
    static const char *const mfields[] = {"key",       "value",   "step",
                                          "timestamp", "context", NULL};
    char where[32], *key, *ctx;
    int64_t v = 0;
    snprintf(where, sizeof where, "metrics[%zu]", i);
    if (!json_is_object(p)) {
        rv_errmsg_printf(c->errmsg, "%s must be an object", where);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return;
    }
    if (gw__only(c, p, where, mfields) != 0 ||
        gw__str(c, p, "key", 1, STORE_MAX_KEY_BYTES, &key) != 0 ||
        gw__str(c, p, "context", 0, STORE_MAX_CONTEXT_BYTES, &ctx) != 0 ||
        gw__int(c, p, "step", where, INT64_MIN, INT64_MAX, &v) != 0 ||
        gw__int(c, p, "timestamp", where, 0, INT64_MAX, &v) != 0)
        return;
    if (!store_key_valid(key, strlen(key))) {
        rv_errmsg_printf(c->errmsg,
                         "%s.key '%.64s' is invalid: 1 to %d bytes of "
                         "letters, digits, '_', '-', '.', ' ', '/'",
                         where, key, STORE_MAX_KEY_BYTES);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return;
    }
    rv_errmsg_printf(c->errmsg,
                     "%s.value must be a number or \"NaN\", \"Infinity\", "
                     "\"-Infinity\"",
                     where);
    gw_reply_error(c->x, RV_EINVAL, c->errmsg);
}

static void
gw__log_batch(struct gw_ctx *c, char *run_id)
{
    static const char *const fields[] = {"metrics", "params", "tags", NULL};

    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m = RV__METRICS__INIT;
    struct gw_dict *keys = NULL, *ctxs = NULL;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "log-batch", fields) != 0 ||
        gw__kvs(c, j, "params", STORE_MAX_PARAMS_PER_COMMAND,
                STORE_MAX_PARAM_VALUE_BYTES, &lb.params, &lb.n_params) != 0 ||
        gw__kvs(c, j, "tags", STORE_MAX_TAGS_PER_COMMAND,
                STORE_MAX_TAG_VALUE_BYTES, &lb.tags, &lb.n_tags) != 0)
        goto out;
    json_t *ms = json_object_get(j, "metrics");
    size_t n = 0;
    if (ms != NULL && !json_is_null(ms)) {
        if (!json_is_array(ms)) {
            gw_reply_error(c->x, RV_EINVAL, "'metrics' must be an array");
            goto out;
        }
        n = json_array_size(ms);
    }
    if (n > GATEWAY_MAX_METRICS) {
        rv_errmsg_printf(c->errmsg, "%zu metrics in one batch, at most %d", n,
                         GATEWAY_MAX_METRICS);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        goto out;
    }
    if (n > 0) {
        keys = calloc(1, sizeof *keys);
        ctxs = calloc(1, sizeof *ctxs);
        m.keys = gw__alloc(c, n * sizeof *m.keys);
        m.contexts = gw__alloc(c, n * sizeof *m.contexts);
        m.key_idx = gw__alloc(c, n * sizeof *m.key_idx);
        m.ctx_idx = gw__alloc(c, n * sizeof *m.ctx_idx);
        m.steps = gw__alloc(c, n * sizeof *m.steps);
        m.timestamps_ms = gw__alloc(c, n * sizeof *m.timestamps_ms);
        m.values = gw__alloc(c, n * sizeof *m.values);
        if (keys == NULL || ctxs == NULL || m.keys == NULL ||
            m.contexts == NULL || m.key_idx == NULL || m.ctx_idx == NULL ||
            m.steps == NULL || m.timestamps_ms == NULL || m.values == NULL) {
            gw_reply_error(c->x, RV_ENOMEM, NULL);
            goto out;
        }
    }
    int64_t now = (int64_t)rv_clock_wall_ms();
    int has_context = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(ms, i);
        json_t *jk = json_object_get(p, "key"),
               *jv = json_object_get(p, "value");
        json_t *js = json_object_get(p, "step");
        json_t *jt = json_object_get(p, "timestamp");
        json_t *jc = json_object_get(p, "context");
        size_t known = (size_t)((jk != NULL) + (jv != NULL) + (js != NULL) +
                                (jt != NULL) + (jc != NULL));
        const char *key = json_string_value(jk);
        const char *ctx = json_is_null(jc) ? NULL : json_string_value(jc);
        const char *vs = json_string_value(jv);
        double d = 0;
        int is_ok = json_is_object(p) && json_object_size(p) == known &&
                    key != NULL && store_key_valid(key, json_string_length(jk));
        is_ok = is_ok && (jc == NULL || json_is_null(jc) ||
                          (ctx != NULL &&
                           json_string_length(jc) <= STORE_MAX_CONTEXT_BYTES));
        is_ok = is_ok && (js == NULL || json_is_integer(js));
        is_ok = is_ok && (jt == NULL ||
                          (json_is_integer(jt) && json_integer_value(jt) >= 0));
        if (is_ok && json_is_number(jv))
            d = json_number_value(jv);
        else if (is_ok && vs != NULL && strcmp(vs, "NaN") == 0)
            d = NAN;
        else if (is_ok && vs != NULL && strcmp(vs, "Infinity") == 0)
            d = INFINITY;
        else if (is_ok && vs != NULL && strcmp(vs, "-Infinity") == 0)
            d = -INFINITY;
        else
            is_ok = 0;
        if (!is_ok) {
            gw__point_error(c, p, i);
            goto out;
        }
        int64_t step = js != NULL ? (int64_t)json_integer_value(js) : 0;
        int64_t ts = jt != NULL ? (int64_t)json_integer_value(jt) : now;
        m.key_idx[i] = gw__dict_get(keys, key, m.keys);
        m.ctx_idx[i] = gw__dict_get(ctxs, ctx != NULL ? ctx : "", m.contexts);
        has_context |= ctx != NULL && ctx[0] != '\0';
        m.steps[i] = step;
        m.timestamps_ms[i] = ts;
        m.values[i] = d;
    }
    if (n > 0) {
        m.n_keys = keys->n;
        m.n_key_idx = m.n_steps = m.n_timestamps_ms = m.n_values = n;
        if (has_context) {
            m.n_contexts = ctxs->n;
            m.n_ctx_idx = n;
        }
        lb.metrics = &m;
    }
    lb.run_id = run_id;
    if (gw__idempotency(c, &cmd.client_id, &cmd.seq) != 0)
        goto out;
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r == NULL)
        goto out;
    atomic_fetch_add(&c->x->g->stats.n_points, n);
    int b = 0;
    for (size_t lim = 1; b < 7 && n > lim; lim *= 10)
        b++;
    atomic_fetch_add(&c->x->g->stats.batch_points_bucket[b], 1);
    gw_reply_json(c->x, 200, gw__index_reply(r));
out:
    free(keys);
    free(ctxs);
    json_decref(j);
}

static void
gw__append_logs(struct gw_ctx *c, char *run_id)
{
    static const char *const fields[] = {"lines", NULL};
    static const char *const lfields[] = {"timestamp", "stream", "text", NULL};
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__LogLines ll = RV__LOG_LINES__INIT;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "logs", fields) != 0)
        goto out;
    json_t *ls = json_object_get(j, "lines");
    if (!json_is_array(ls) || json_array_size(ls) == 0 ||
        json_array_size(ls) > GATEWAY_MAX_LOG_LINES) {
        rv_errmsg_printf(c->errmsg,
                         "'lines' must be an array of 1 to %d "
                         "lines",
                         GATEWAY_MAX_LOG_LINES);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        goto out;
    }
    size_t n = json_array_size(ls);
    Rv__LogLine *lines = gw__alloc(c, n * sizeof *lines);
    ll.lines = gw__alloc(c, n * sizeof *ll.lines);
    if (lines == NULL || ll.lines == NULL) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        goto out;
    }
    int64_t now = (int64_t)rv_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(ls, i);
        char where[32], *stream;
        snprintf(where, sizeof where, "lines[%zu]", i);
        rv__log_line__init(&lines[i]);
        lines[i].timestamp_ms = now;
        if (!json_is_object(l)) {
            rv_errmsg_printf(c->errmsg, "%s must be an object", where);
            gw_reply_error(c->x, RV_EINVAL, c->errmsg);
            goto out;
        }
        if (gw__only(c, l, where, lfields) != 0 ||
            gw__str(c, l, "text", 1, STORE_MAX_LOG_LINE_BYTES,
                    &lines[i].text) != 0 ||
            gw__str(c, l, "stream", 0, 8, &stream) != 0 ||
            gw__int(c, l, "timestamp", where, 0, INT64_MAX,
                    &lines[i].timestamp_ms) != 0)
            goto out;
        lines[i].has_stream = 1;
        if (stream == NULL || strcmp(stream, "stdout") == 0)
            lines[i].stream = RV__STREAM__STDOUT;
        else if (strcmp(stream, "stderr") == 0)
            lines[i].stream = RV__STREAM__STDERR;
        else {
            rv_errmsg_printf(c->errmsg, "%s.stream must be stdout or stderr",
                             where);
            gw_reply_error(c->x, RV_EINVAL, c->errmsg);
            goto out;
        }
        ll.lines[i] = &lines[i];
    }
    ll.n_lines = n;
    ll.run_id = run_id;
    if (gw__idempotency(c, &cmd.client_id, &cmd.seq) != 0)
        goto out;
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.body_case = RV__COMMAND__BODY_LOG_LINES;
    cmd.log_lines = &ll;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r != NULL) {
        atomic_fetch_add(&c->x->g->stats.n_log_lines, n);
        gw_reply_json(c->x, 200, gw__index_reply(r));
    }
out:
    json_decref(j);
}

static void
gw__set_status(struct gw_ctx *c, char *run_id)
{
    static const char *const fields[] = {"status", "ended_at", NULL};
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
    char *status;
    int64_t ended = -1;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "status", fields) != 0 ||
        gw__str(c, j, "status", 1, 16, &status) != 0 ||
        gw__int(c, j, "ended_at", "", 0, INT64_MAX, &ended) != 0)
        goto out;
    if (gw__status_parse(status, &st.status) != 0) {
        gw_reply_error(c->x, RV_EINVAL,
                       "status must be RUNNING, SCHEDULED, FINISHED, FAILED, "
                       "KILLED or CRASHED");
        goto out;
    }
    st.has_ended_at_ms = ended >= 0;
    st.ended_at_ms = ended >= 0 ? ended : 0;
    st.run_id = run_id;
    if (gw__idempotency(c, &cmd.client_id, &cmd.seq) != 0)
        goto out;
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.body_case = RV__COMMAND__BODY_RUN_STATUS;
    cmd.run_status = &st;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r != NULL)
        gw_reply_json(c->x, 200, gw__index_reply(r));
out:
    json_decref(j);
}

static void
gw__run_ref(struct gw_ctx *c, char *run_id, int is_restore)
{
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = run_id;
    if (gw__idempotency(c, &cmd.client_id, &cmd.seq) != 0)
        return;
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.body_case = is_restore ? RV__COMMAND__BODY_RUN_RESTORE
                               : RV__COMMAND__BODY_RUN_DELETE;
    if (is_restore)
        cmd.run_restore = &ref;
    else
        cmd.run_delete = &ref;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r != NULL)
        gw_reply_json(c->x, 200, gw__index_reply(r));
}

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

static int
gw__artifact_path_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > STORE_MAX_ARTIFACT_PATH_BYTES || p[0] == '/' ||
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

static void
gw__put_artifact(struct gw_ctx *c, char *run_id, char *path)
{
    uint64_t client_id, seq;
    struct sha256_ctx h;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[2 * SHA256_DIGEST_SIZE + 1];
    const char *type = c->x->content_type != NULL ? c->x->content_type
                                                  : "application/octet-stream";
    if (!gw__artifact_path_ok(path)) {
        rv_errmsg_printf(c->errmsg,
                         "artifact path '%.64s' is invalid: 1 to %d bytes, "
                         "relative, no empty, '.' or '..' parts",
                         path, STORE_MAX_ARTIFACT_PATH_BYTES);
        gw_reply_error(c->x, RV_EINVAL, c->errmsg);
        return;
    }
    if (strlen(type) > STORE_MAX_SCOPE_BYTES ||
        !store_utf8_valid(type, strlen(type))) {
        gw_reply_error(c->x, RV_EINVAL, "Content-Type is too long");
        return;
    }
    if (gw__idempotency(c, &client_id, &seq) != 0)
        return;
    sha256_init(&h);
    sha256_update(&h, c->x->body_len, c->x->body);
    sha256_digest(&h, sizeof digest, digest);
    size_t off = 0, part = 0;
    const Rv__Response *r = NULL;
    uint64_t derived = gw__derive_client(client_id, seq);
    do {
        size_t n = c->x->body_len - off;
        if (n > STORE_MAX_ARTIFACT_CHUNK_BYTES)
            n = STORE_MAX_ARTIFACT_CHUNK_BYTES;
        Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
        Rv__ArtifactChunk ch = RV__ARTIFACT_CHUNK__INIT;
        ch.run_id = run_id;
        ch.path = path;
        ch.content_type = (char *)type;
        ch.offset = off;
        ch.data.data = (uint8_t *)c->x->body + off;
        ch.data.len = n;
        ch.has_is_last = 1;
        ch.is_last = off + n == c->x->body_len;
        if (ch.is_last) {
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
    } while (off < c->x->body_len);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    atomic_fetch_add(&c->x->g->stats.n_artifact_bytes, c->x->body_len);
    gw_reply_json(c->x, 200,
                  json_pack("{s:I,s:s,s:I,s:s}", "index", (json_int_t)r->index,
                            "path", path, "size", (json_int_t)c->x->body_len,
                            "sha256", hex));
}

/* ---- Reads ----------------------------------------------------------------
 */

static json_t *
gw__run_json(const Rv__RunInfo *ri)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "run_id", json_string(ri->run_id));
    json_object_set_new(o, "project",
                        json_string(ri->project ? ri->project : ""));
    json_object_set_new(o, "experiment",
                        json_string(ri->experiment ? ri->experiment : ""));
    json_object_set_new(o, "name", json_string(ri->name ? ri->name : ""));
    json_object_set_new(o, "user", json_string(ri->user ? ri->user : ""));
    json_object_set_new(o, "team", json_string(ri->team ? ri->team : ""));
    json_object_set_new(o, "status", json_string(gw__status_name(ri->status)));
    json_object_set_new(o, "created_at", json_integer(ri->created_at_ms));
    json_object_set_new(o, "ended_at",
                        ri->has_ended_at_ms ? json_integer(ri->ended_at_ms)
                                            : json_null());
    json_object_set_new(o, "n_points", json_integer((json_int_t)ri->n_points));
    json_object_set_new(o, "n_log_lines",
                        json_integer((json_int_t)ri->n_log_lines));
    if (ri->has_is_deleted && ri->is_deleted)
        json_object_set_new(o, "lifecycle", json_string("deleted"));
    else
        json_object_set_new(o, "lifecycle", json_string("active"));
    return o;
}

static json_t *
gw__run_full_json(const Rv__RunInfo *ri)
{
    json_t *o = gw__run_json(ri);
    json_t *params = json_object(), *tags = json_object(), *sum = json_object();
    if (o == NULL || params == NULL || tags == NULL || sum == NULL) {
        json_decref(o);
        json_decref(params);
        json_decref(tags);
        json_decref(sum);
        return NULL;
    }
    for (size_t i = 0; i < ri->n_params; i++)
        json_object_set_new(params, ri->params[i]->key,
                            json_string(ri->params[i]->value));
    for (size_t i = 0; i < ri->n_tags; i++)
        json_object_set_new(tags, ri->tags[i]->key,
                            json_string(ri->tags[i]->value));
    for (size_t i = 0; i < ri->n_summary; i++) {
        const Rv__Summary *s = ri->summary[i];
        char name[STORE_MAX_KEY_BYTES + STORE_MAX_CONTEXT_BYTES + 3];
        int has_ctx = s->context != NULL && s->context[0] != '\0';
        if (has_ctx)
            snprintf(name, sizeof name, "%s[%s]", s->key, s->context);
        else
            snprintf(name, sizeof name, "%s", s->key);
        json_t *e = json_object();
        if (e == NULL)
            continue;
        json_object_set_new(e, "key", json_string(s->key));
        json_object_set_new(e, "context",
                            json_string(has_ctx ? s->context : ""));
        json_object_set_new(e, "last", gw_json_double(s->last));
        json_object_set_new(e, "min", gw_json_double(s->min));
        json_object_set_new(e, "max", gw_json_double(s->max));
        json_object_set_new(e, "count", json_integer((json_int_t)s->count));
        json_object_set_new(e, "last_step", json_integer(s->last_step));
        json_object_set_new(e, "last_timestamp",
                            json_integer(s->last_timestamp_ms));
        json_object_set_new(sum, name, e);
    }
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "summary", sum);
    return o;
}

static void
gw__get_run(struct gw_ctx *c, char *run_id)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    if (gw__read_options(c, &req, &ro) != 0)
        return;
    gr.run_id = run_id;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    if (r->run == NULL) {
        gw_reply_error(c->x, RV_ENOTFOUND, NULL);
        return;
    }
    json_t *o = json_object();
    if (o != NULL) {
        json_object_set_new(o, "run", gw__run_full_json(r->run));
        json_object_set_new(o, "applied_index",
                            json_integer((json_int_t)r->applied_index));
        json_object_set_new(o, "query_time_ms",
                            json_real(gw__elapsed_ms(c->x)));
    }
    gw_reply_json(c->x, 200, o);
}

static void
gw__history(struct gw_ctx *c, char *run_id)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
    const char *key, *ctx;
    int64_t min_step = 0, max_step = 0;
    uint64_t ds = 0;
    int has_min, has_max, has_ds;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_str(c, "key", STORE_MAX_KEY_BYTES, &key) != 0 ||
        gw__q_str(c, "context", STORE_MAX_CONTEXT_BYTES, &ctx) != 0 ||
        gw__q_i64(c, "min_step", INT64_MIN, INT64_MAX, &min_step, &has_min) !=
            0 ||
        gw__q_i64(c, "max_step", INT64_MIN, INT64_MAX, &max_step, &has_max) !=
            0 ||
        gw__q_u64(c, "downsample", STORE_MAX_DOWNSAMPLE, &ds, &has_ds) != 0)
        return;
    if (key == NULL) {
        /* No key: the run's series, from its summary. */
        Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
        gr.run_id = run_id;
        req.body_case = RV__REQUEST__BODY_GET_RUN;
        req.get_run = &gr;
        const Rv__Response *r = gw__call(c, &req);
        if (r == NULL || r->run == NULL) {
            if (r != NULL)
                gw_reply_error(c->x, RV_ENOTFOUND, NULL);
            return;
        }
        json_t *full = gw__run_full_json(r->run);
        json_t *arr = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(full, "summary"), k, v)
            json_array_append(arr, v);
        json_decref(full);
        gw_reply_json(c->x, 200,
                      json_pack("{s:o,s:f}", "metrics", arr, "query_time_ms",
                                gw__elapsed_ms(c->x)));
        return;
    }
    h.run_id = run_id;
    h.key = (char *)key;
    h.context = (char *)ctx;
    h.has_min_step = has_min;
    h.min_step = min_step;
    h.has_max_step = has_max;
    h.max_step = max_step;
    h.has_downsample = has_ds && ds > 0;
    h.downsample = (uint32_t)ds;
    req.body_case = RV__REQUEST__BODY_HISTORY;
    req.history = &h;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *pts = json_array();
    for (size_t i = 0; pts != NULL && i < r->n_steps; i++) {
        json_t *p = json_array();
        json_array_append_new(p, json_integer(r->steps[i]));
        json_array_append_new(p, json_integer(r->timestamps_ms[i]));
        json_array_append_new(p, gw_json_double(r->values[i]));
        json_array_append_new(pts, p);
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:s,s:o,s:I,s:f}", "key", key, "context",
                            ctx != NULL ? ctx : "", "points", pts,
                            "applied_index", (json_int_t)r->applied_index,
                            "query_time_ms", gw__elapsed_ms(c->x)));
}

static void
gw__read_logs(struct gw_ctx *c, char *run_id)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__LogsRequest l = RV__LOGS_REQUEST__INIT;
    uint64_t from = 0, max = 0;
    int has_from, has_max;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_u64(c, "from_line", UINT64_MAX, &from, &has_from) != 0 ||
        gw__q_u64(c, "max_lines", STORE_MAX_LOG_LINES_READ, &max, &has_max) !=
            0)
        return;
    if (has_max && max == 0) {
        gw_reply_error(c->x, RV_EINVAL, "max_lines must be at least 1");
        return;
    }
    l.run_id = run_id;
    l.has_from_line = has_from;
    l.from_line = from;
    l.has_max_lines = has_max;
    l.max_lines = (uint32_t)max;
    req.body_case = RV__REQUEST__BODY_LOGS;
    req.logs = &l;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < r->n_lines; i++) {
        const Rv__LogLineOut *o = r->lines[i];
        json_array_append_new(
            arr,
            json_pack("{s:I,s:I,s:s,s:s}", "line_no", (json_int_t)o->line_no,
                      "timestamp", (json_int_t)o->timestamp_ms, "stream",
                      o->stream == RV__STREAM__STDERR ? "stderr" : "stdout",
                      "text", o->text));
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:o,s:I,s:f}", "lines", arr, "next_line",
                            (json_int_t)r->next_line, "query_time_ms",
                            gw__elapsed_ms(c->x)));
}

static void
gw__list_runs(struct gw_ctx *c)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__ListRunsRequest l = RV__LIST_RUNS_REQUEST__INIT;
    const char *project, *experiment, *status, *filter, *order, *token, *team;
    uint64_t per_page = 0;
    int has_pp;
    char *combined = NULL;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_str(c, "project", STORE_MAX_SCOPE_BYTES, &project) != 0 ||
        gw__q_str(c, "experiment", STORE_MAX_SCOPE_BYTES, &experiment) != 0 ||
        gw__q_str(c, "team", STORE_MAX_TEAM_BYTES, &team) != 0 ||
        gw__q_str(c, "status", 16, &status) != 0 ||
        gw__q_str(c, "filter", GATEWAY_MAX_FILTER_BYTES, &filter) != 0 ||
        gw__q_str(c, "order_by", GATEWAY_MAX_FILTER_BYTES, &order) != 0 ||
        gw__q_str(c, "page_token", STORE_PAGE_TOKEN_BYTES, &token) != 0 ||
        gw__q_u64(c, "per_page", STORE_MAX_PER_PAGE, &per_page, &has_pp) != 0)
        return;
    if (has_pp && per_page == 0) {
        gw_reply_error(c->x, RV_EINVAL, "per_page must be 1 to 1000");
        return;
    }
    if (status != NULL) {
        Rv__RunStatus st;
        if (gw__status_parse(status, &st) != 0) {
            gw_reply_error(c->x, RV_EINVAL, "unknown status");
            return;
        }
        size_t n = (filter ? strlen(filter) : 0) + 64;
        combined = gw__alloc(c, n);
        if (combined == NULL) {
            gw_reply_error(c->x, RV_ENOMEM, NULL);
            return;
        }
        if (filter != NULL && filter[0] != '\0')
            snprintf(combined, n, "attributes.status = '%s' and (%s)", status,
                     filter);
        else
            snprintf(combined, n, "attributes.status = '%s'", status);
        filter = combined;
    }
    l.team = (char *)team;
    l.project = (char *)(project != NULL && project[0] ? project : NULL);
    l.experiment =
        (char *)(experiment != NULL && experiment[0] ? experiment : NULL);
    l.filter = (char *)(filter != NULL && filter[0] ? filter : NULL);
    l.order_by = (char *)(order != NULL && order[0] ? order : NULL);
    l.page_token = (char *)(token != NULL && token[0] ? token : NULL);
    l.has_per_page = has_pp;
    l.per_page = (uint32_t)per_page;
    req.body_case = RV__REQUEST__BODY_LIST_RUNS;
    req.list_runs = &l;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < r->n_runs; i++)
        json_array_append_new(arr, gw__run_json(r->runs[i]));
    json_t *o = json_object();
    if (o != NULL) {
        json_object_set_new(o, "runs", arr);
        json_object_set_new(
            o, "next_page_token",
            json_string(r->next_page_token ? r->next_page_token : ""));
        if (r->has_total)
            json_object_set_new(o, "total", json_integer((json_int_t)r->total));
        json_object_set_new(o, "examined",
                            json_integer((json_int_t)r->n_examined));
        json_object_set_new(o, "applied_index",
                            json_integer((json_int_t)r->applied_index));
        json_object_set_new(o, "query_time_ms",
                            json_real(gw__elapsed_ms(c->x)));
    } else {
        json_decref(arr);
    }
    gw_reply_json(c->x, 200, o);
}

static void
gw__analytics(struct gw_ctx *c)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__AnalyticsRequest a = RV__ANALYTICS_REQUEST__INIT;
    const char *group, *project, *team;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_str(c, "group", 16, &group) != 0 ||
        gw__q_str(c, "project", STORE_MAX_SCOPE_BYTES, &project) != 0 ||
        gw__q_str(c, "team", STORE_MAX_TEAM_BYTES, &team) != 0)
        return;
    a.has_group = 1;
    if (group == NULL || strcmp(group, "status") == 0)
        a.group = RV__GROUP__GROUP_STATUS;
    else if (strcmp(group, "project") == 0)
        a.group = RV__GROUP__GROUP_PROJECT;
    else if (strcmp(group, "day") == 0)
        a.group = RV__GROUP__GROUP_DAY;
    else {
        gw_reply_error(c->x, RV_EINVAL, "group must be status, project or day");
        return;
    }
    a.project = (char *)project;
    /* Without auth every run is in the default team (store_apply). */
    a.team = (char *)(team == NULL && project != NULL ? "default" : team);
    req.body_case = RV__REQUEST__BODY_ANALYTICS;
    req.analytics = &a;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *counts = json_object();
    uint64_t total = 0;
    for (size_t i = 0; counts != NULL && i < r->n_counts; i++) {
        json_object_set_new(counts, r->counts[i]->label,
                            json_integer((json_int_t)r->counts[i]->n));
        total += r->counts[i]->n;
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:o,s:I,s:f}", "group",
                            group != NULL ? group : "status", "counts", counts,
                            "total", (json_int_t)total, "query_time_ms",
                            gw__elapsed_ms(c->x)));
}

static void
gw__artifact_get(struct gw_ctx *c, char *run_id, char *path)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__ArtifactRequest a = RV__ARTIFACT_REQUEST__INIT;
    uint64_t offset = 0, length = 0;
    int has_off, has_len;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_u64(c, "offset", UINT64_MAX, &offset, &has_off) != 0 ||
        gw__q_u64(c, "length", GATEWAY_MAX_RAW_BODY, &length, &has_len) != 0)
        return;
    a.run_id = run_id;
    a.path = path;
    req.body_case = RV__REQUEST__BODY_ARTIFACT;
    req.artifact = &a;
    if (path == NULL) {
        const Rv__Response *r = gw__call(c, &req);
        if (r == NULL)
            return;
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < r->n_artifacts; i++) {
            const Rv__ArtifactInfo *ai = r->artifacts[i];
            char hex[65] = "";
            for (size_t k = 0; k < ai->sha256.len && k < 32; k++)
                snprintf(hex + 2 * k, 3, "%02x", ai->sha256.data[k]);
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:I,s:s,s:b}", "path", ai->path,
                               "content_type",
                               ai->content_type ? ai->content_type : "", "size",
                               (json_int_t)ai->size, "sha256", hex, "complete",
                               ai->is_complete));
        }
        gw_reply_json(c->x, 200,
                      json_pack("{s:o,s:f}", "artifacts", arr, "query_time_ms",
                                gw__elapsed_ms(c->x)));
        return;
    }
    const Rv__Response *r = gw__call(c, &req); /* Metadata first. */
    if (r == NULL)
        return;
    if (r->n_artifacts != 1) {
        gw_reply_error(c->x, RV_ENOTFOUND, NULL);
        return;
    }
    uint64_t size = r->artifacts[0]->size;
    char type[STORE_MAX_SCOPE_BYTES + 1];
    snprintf(type, sizeof type, "%s",
             r->artifacts[0]->content_type && r->artifacts[0]->content_type[0]
                 ? r->artifacts[0]->content_type
                 : "application/octet-stream");
    if (offset > size) {
        gw_reply_error(c->x, RV_EINVAL, "offset is past the artifact's end");
        return;
    }
    uint64_t want = has_len ? length : size - offset;
    if (want > size - offset)
        want = size - offset;
    if (want > GATEWAY_MAX_RAW_BODY) {
        gw_reply_error(c->x, RV_ETOOBIG,
                       "the artifact is over 16 MiB: read it in parts with "
                       "offset= and length=");
        return;
    }
    struct rv_buf all;
    rv_buf_init(&all);
    while (all.len < want) {
        a.has_offset = a.has_max_bytes = 1;
        a.offset = offset + all.len;
        uint64_t left = want - all.len;
        a.max_bytes =
            (uint32_t)(left < RPC_MAX_ARTIFACT_READ ? left
                                                    : RPC_MAX_ARTIFACT_READ);
        r = gw__call(c, &req);
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

/* ---- Node and cluster ------------------------------------------------------
 */

static void
gw__info(struct gw_ctx *c, struct replica_info *info)
{
    const struct gw_node_ops *ops = c->x->ops;
    if (ops != NULL)
        ops->info(ops->data, info);
    else
        replica_info(rpc_server_replica(c->x->g->cfg.rpc), info);
}

static int
gw__is_running(struct gw_ctx *c)
{
    const struct gw_node_ops *ops = c->x->ops;
    if (ops != NULL)
        return ops->is_running(ops->data);
    return replica_is_running(rpc_server_replica(c->x->g->cfg.rpc));
}

static void
gw__config(struct gw_ctx *c)
{
    struct replica_info info;
    gw__info(c, &info);
    json_t *limits = json_pack(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "max_key_bytes",
        STORE_MAX_KEY_BYTES, "max_param_value_bytes",
        STORE_MAX_PARAM_VALUE_BYTES, "max_tag_value_bytes",
        STORE_MAX_TAG_VALUE_BYTES, "max_metrics_per_batch", GATEWAY_MAX_METRICS,
        "max_params_per_batch", STORE_MAX_PARAMS_PER_COMMAND,
        "max_tags_per_batch", STORE_MAX_TAGS_PER_COMMAND, "max_json_body_bytes",
        GATEWAY_MAX_JSON_BODY, "max_artifact_put_bytes", GATEWAY_MAX_RAW_BODY,
        "max_per_page", STORE_MAX_PER_PAGE, "max_downsample",
        STORE_MAX_DOWNSAMPLE);
    gw_reply_json(c->x, 200,
                  json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:o}", "node_id",
                            (json_int_t)info.id, "http_addr",
                            c->x->g->http_addr, "rpc_addr", c->x->g->rpc_addr,
                            "raft_addr", c->x->g->raft_addr, "durability",
                            replica_durability_name(info.durability), "version",
                            "0.1", "limits", limits));
}

static void
gw__health(struct gw_ctx *c, int is_ready)
{
    struct replica_info info;
    gw__info(c, &info);
    if (!is_ready) {
        gw_reply_json(c->x, 200,
                      json_pack("{s:s,s:I}", "status", "ok", "node_id",
                                (json_int_t)info.id));
        return;
    }
    int ok = gw__is_running(c) && info.leader_id != 0 &&
             (info.state != RAFT_LEADER || info.is_serving);
    if (!ok) {
        gw_reply_status(c->x, 503, "TEMPORARILY_UNAVAILABLE",
                        gw__is_running(c) ? "no leader is known yet"
                                          : "the node is stopping");
        return;
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:I,s:s,s:I,s:I}", "status", "ready",
                            "node_id", (json_int_t)info.id, "state",
                            replica_state_name(info.state), "leader_id",
                            (json_int_t)info.leader_id, "applied_index",
                            (json_int_t)info.applied_index));
}

static void
gw__cluster(struct gw_ctx *c)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    char errmsg[RV_ERRMSG_SIZE];
    struct replica_info info;
    gw__info(c, &info);
    cr.op = RV__CLUSTER_OP__CLUSTER_STATUS;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *nodes = json_array();
    uint64_t leader = r->leader_id;
    for (size_t i = 0; nodes != NULL && i < r->n_nodes; i++) {
        const Rv__NodeStatus *ns = r->nodes[i];
        json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)ns->id,
                              "raft_addr", ns->raft_addr ? ns->raft_addr : "",
                              "rpc_addr", ns->rpc_addr ? ns->rpc_addr : "",
                              "http_addr", ns->http_addr ? ns->http_addr : "",
                              "role", ns->role ? ns->role : "");
        /* Each node's own view: state, applied index, digest. */
        Rv__Request sreq = RV__REQUEST__INIT;
        Rv__StatusRequest st = RV__STATUS_REQUEST__INIT;
        Rv__Response *sr = NULL;
        sreq.body_case = RV__REQUEST__BODY_STATUS;
        sreq.status = &st;
        if (o != NULL && ns->rpc_addr != NULL && ns->rpc_addr[0] != '\0' &&
            rvc_call_once(ns->rpc_addr, &sreq, 500, &sr, errmsg) == RV_OK &&
            sr->self != NULL) {
            json_object_set_new(
                o, "state",
                json_string(sr->self->state ? sr->self->state : ""));
            json_object_set_new(
                o, "applied_index",
                json_integer((json_int_t)sr->self->applied_index));
            json_object_set_new(o, "term",
                                json_integer((json_int_t)sr->self->term));
            json_object_set_new(
                o, "digest",
                json_string(sr->self->digest ? sr->self->digest : ""));
            json_object_set_new(
                o, "durability",
                json_string(sr->self->durability ? sr->self->durability : ""));
        } else if (o != NULL) {
            json_object_set_new(o, "state", json_string("unreachable"));
            json_object_set_new(o, "applied_index", json_null());
            json_object_set_new(o, "digest", json_null());
        }
        rvc_response_free(sr);
        json_array_append_new(nodes, o);
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:I,s:I,s:o,s:f}", "leader_id",
                            (json_int_t)leader, "node_id", (json_int_t)info.id,
                            "nodes", nodes, "query_time_ms",
                            gw__elapsed_ms(c->x)));
}

/* POST /api/v2/cluster/nodes {"id","raft_addr","rpc_addr","http_addr"},
 * DELETE /api/v2/cluster/nodes/{id}, POST /api/v2/cluster/transfer
 * {"id"?}. */
static void
gw__cluster_change(struct gw_ctx *c, Rv__ClusterOp op, uint64_t id)
{
    static const char *const fields[] = {"id", "raft_addr", "rpc_addr",
                                         "http_addr", NULL};
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    json_t *j = NULL;
    cr.op = op;
    cr.has_id = 1;
    cr.id = id;
    if (op != RV__CLUSTER_OP__CLUSTER_REMOVE && c->x->body_len > 0) {
        int64_t jid = 0;
        if ((j = gw__body(c)) == NULL)
            return;
        if (gw__only(c, j, "cluster", fields) != 0 ||
            gw__int(c, j, "id", "", 1, INT64_MAX, &jid) != 0 ||
            gw__str(c, j, "raft_addr", op == RV__CLUSTER_OP__CLUSTER_ADD,
                    STORE_MAX_ADDR_BYTES, &cr.raft_addr) != 0 ||
            gw__str(c, j, "rpc_addr", 0, STORE_MAX_ADDR_BYTES, &cr.rpc_addr) !=
                0 ||
            gw__str(c, j, "http_addr", 0, STORE_MAX_ADDR_BYTES,
                    &cr.http_addr) != 0)
            goto out;
        cr.id = (uint64_t)jid;
    }
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    if (gw__call(c, &req) != NULL)
        gw_reply_json(c->x, 200, json_pack("{s:b}", "ok", 1));
out:
    json_decref(j);
}

/* ---- Routing ----------------------------------------------------------------
 */

static int
gw__method_is(const struct gw_exchange *x, const char *m)
{
    return x->method != NULL && strcmp(x->method, m) == 0;
}

/* Route to one of the comma-separated methods, else 405. (No strtok:
 * the gateway's workers route concurrently.) */
static int
gw__allow(struct gw_ctx *c, const char *allowed)
{
    const char *m = c->x->method;
    for (const char *t = allowed; *t != '\0';) {
        size_t n = strcspn(t, ",");
        int is_get = n == 3 && strncmp(t, "GET", 3) == 0;
        if (m != NULL && ((strlen(m) == n && strncmp(m, t, n) == 0) ||
                          (is_get && strcmp(m, "HEAD") == 0)))
            return 1;
        t += n + (t[n] == ',');
    }
    rv_errmsg_printf(c->errmsg, "%s is not allowed here; use %s",
                     c->x->method != NULL ? c->x->method : "this method",
                     allowed);
    gw_reply_status(c->x, 405, "METHOD_NOT_ALLOWED", c->errmsg);
    c->x->allow = allowed;
    return 0;
}

static void
gw__route_run(struct gw_ctx *c, char *rest)
{
    char *slash = strchr(rest, '/');
    char *sub = NULL;
    if (slash != NULL) {
        *slash = '\0';
        sub = slash + 1;
    }
    char *run_id = rest;
    if (gw__run_id(c, run_id) != 0)
        return;
    struct gw_exchange *x = c->x;
    if (sub == NULL || sub[0] == '\0') {
        x->route = GW_R_GET;
        if (gw__allow(c, "GET"))
            gw__get_run(c, run_id);
    } else if (strcmp(sub, "log-batch") == 0) {
        x->route = GW_R_LOG_BATCH;
        if (gw__allow(c, "POST"))
            gw__log_batch(c, run_id);
    } else if (strcmp(sub, "logs") == 0) {
        if (gw__method_is(x, "POST")) {
            x->route = GW_R_LOGS_POST;
            gw__append_logs(c, run_id);
        } else {
            x->route = GW_R_LOGS_GET;
            if (gw__allow(c, "GET,POST"))
                gw__read_logs(c, run_id);
        }
    } else if (strcmp(sub, "status") == 0) {
        x->route = GW_R_STATUS;
        if (gw__allow(c, "POST"))
            gw__set_status(c, run_id);
    } else if (strcmp(sub, "metrics") == 0) {
        x->route = GW_R_HISTORY;
        if (gw__allow(c, "GET"))
            gw__history(c, run_id);
    } else if (strcmp(sub, "delete") == 0 || strcmp(sub, "restore") == 0) {
        int is_restore = sub[0] == 'r';
        x->route = is_restore ? GW_R_RESTORE : GW_R_DELETE;
        if (gw__allow(c, "POST"))
            gw__run_ref(c, run_id, is_restore);
    } else if (strcmp(sub, "artifacts") == 0) {
        x->route = GW_R_ARTIFACT_LIST;
        if (gw__allow(c, "GET"))
            gw__artifact_get(c, run_id, NULL);
    } else if (strncmp(sub, "artifacts/", 10) == 0) {
        char *path = sub + 10;
        if (gw__method_is(x, "PUT")) {
            x->route = GW_R_ARTIFACT_PUT;
            gw__put_artifact(c, run_id, path);
        } else {
            x->route = GW_R_ARTIFACT_GET;
            if (gw__allow(c, "GET,PUT"))
                gw__artifact_get(c, run_id, path);
        }
    } else {
        rv_errmsg_printf(c->errmsg, "no endpoint %.200s", x->path);
        gw_reply_status(x, 404, "ENDPOINT_NOT_FOUND", c->errmsg);
    }
}

void
gw_route(struct gw_exchange *x)
{
    struct gw_ctx c;
    memset(&c, 0, sizeof c);
    c.x = x;
    char *p = x->path;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    x->route = GW_R_NONE;
    if (strcmp(p, "/healthz") == 0) {
        x->route = GW_R_HEALTHZ;
        if (gw__allow(&c, "GET"))
            gw__health(&c, 0);
    } else if (strcmp(p, "/readyz") == 0) {
        x->route = GW_R_READYZ;
        if (gw__allow(&c, "GET"))
            gw__health(&c, 1);
    } else if (strcmp(p, "/metrics") == 0) {
        x->route = GW_R_METRICS;
        if (gw__allow(&c, "GET")) {
            rv_buf_reset(&x->out);
            gw_metrics_text(x->g, &x->out);
            x->status = 200;
            x->out_type = "text/plain; version=0.0.4";
        }
    } else if (strcmp(p, "/api/config") == 0) {
        x->route = GW_R_CONFIG;
        if (gw__allow(&c, "GET"))
            gw__config(&c);
    } else if (strcmp(p, "/api/v2/cluster") == 0) {
        x->route = GW_R_CLUSTER;
        if (gw__allow(&c, "GET"))
            gw__cluster(&c);
    } else if (strcmp(p, "/api/v2/cluster/nodes") == 0) {
        x->route = GW_R_CLUSTER;
        if (gw__allow(&c, "POST"))
            gw__cluster_change(&c, RV__CLUSTER_OP__CLUSTER_ADD, 0);
    } else if (strncmp(p, "/api/v2/cluster/nodes/", 22) == 0) {
        x->route = GW_R_CLUSTER;
        char *end;
        unsigned long long id = strtoull(p + 22, &end, 10);
        if (p[22] < '1' || p[22] > '9' || *end != '\0')
            gw_reply_error(x, RV_EINVAL, "a node id is a positive integer");
        else if (gw__allow(&c, "DELETE"))
            gw__cluster_change(&c, RV__CLUSTER_OP__CLUSTER_REMOVE,
                               (uint64_t)id);
    } else if (strcmp(p, "/api/v2/cluster/transfer") == 0) {
        x->route = GW_R_CLUSTER;
        if (gw__allow(&c, "POST"))
            gw__cluster_change(&c, RV__CLUSTER_OP__CLUSTER_TRANSFER, 0);
    } else if (strcmp(p, "/api/v2/experiments") == 0 ||
               strcmp(p, "/api/runs") == 0) {
        x->route = GW_R_LIST;
        if (gw__allow(&c, "GET"))
            gw__list_runs(&c);
    } else if (strcmp(p, "/api/v2/analytics") == 0) {
        x->route = GW_R_ANALYTICS;
        if (gw__allow(&c, "GET"))
            gw__analytics(&c);
    } else if (strcmp(p, "/api/v2/runs") == 0) {
        x->route = GW_R_CREATE;
        if (gw__allow(&c, "POST"))
            gw__create_run(&c);
    } else if (strncmp(p, "/api/v2/runs/", 13) == 0) {
        gw__route_run(&c, p + 13);
    } else if (strncmp(p, "/api/runs/", 10) == 0) {
        /* v1: reads only, the same shapes as v2. */
        if (gw__method_is(x, "GET") || gw__method_is(x, "HEAD"))
            gw__route_run(&c, p + 10);
        else
            gw_reply_status(x, 405, "METHOD_NOT_ALLOWED",
                            "the v1 API is read-only; write through "
                            "/api/v2");
    } else {
        rv_errmsg_printf(c.errmsg, "no endpoint %.200s", p);
        gw_reply_status(x, 404, "ENDPOINT_NOT_FOUND", c.errmsg);
    }
    if (x->status == 0)
        gw_reply_error(x, RV_EIO, "no answer was made");
    gw__free_all(&c);
}
