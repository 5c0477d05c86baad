/* What every write shares: the JSON body and its members checked at the
 * door (unknown fields are errors), params/tags maps, the idempotency pair
 * of a command, durability=, and the one call that sends commands
 * (contracts in gateway_int.h). */
#include "gateway/gateway_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

json_t *
gw__body(struct gw_ctx *c)
{
    json_error_t err;
    if (c->x->body_len == 0) {
        gw_reply_error(c->x, RV_EINVAL, "the request needs a JSON body");
        return NULL;
    }
    json_t *j = json_loadb((const char *)c->x->body, c->x->body_len,
                           JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        gw__reject(c, RV_EMALFORMED, "invalid JSON at line %d column %d: %s",
                   err.line, err.column, err.text);
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
int
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
            return gw__reject(c, RV_EINVAL, "%s: unknown field '%.64s'", where,
                              k);
        }
    }
    return 0;
}

/* A string member of at most max bytes (jansson has checked the UTF-8 and
 * refused NUL). Absent: *out = NULL, an error if is_required. */
int
gw__str(struct gw_ctx *c, json_t *obj, const char *name, int is_required,
        size_t max, char **out)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!is_required)
            return 0;
        return gw__reject(c, RV_EINVAL, "missing field '%s'", name);
    }
    if (!json_is_string(v)) {
        return gw__reject(c, RV_EINVAL, "field '%s' must be a string", name);
    }
    if (json_string_length(v) > max ||
        (is_required && json_string_length(v) == 0)) {
        return gw__reject(c, RV_EINVAL, "field '%s' must be %d to %zu bytes",
                          name, is_required ? 1 : 0, max);
    }
    *out = (char *)json_string_value(v);
    return 0;
}

/* An integer member in [min, max]; absent leaves *out. */
int
gw__int(struct gw_ctx *c, json_t *obj, const char *name, const char *where,
        int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        return gw__reject(
            c, RV_EINVAL, "%s%s%s must be an integer from %lld to %lld", where,
            where[0] ? "." : "", name, (long long)min, (long long)max);
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* params/tags: an object of string values -> KV pointers. */
int
gw__kvs(struct gw_ctx *c, json_t *obj, const char *name, size_t max_n,
        size_t max_value, Rv__KV ***out, size_t *n_out)
{
    json_t *m = json_object_get(obj, name);
    *out = NULL;
    *n_out = 0;
    if (m == NULL || json_is_null(m))
        return 0;
    if (!json_is_object(m)) {
        return gw__reject(c, RV_EINVAL, "'%s' must be an object of strings",
                          name);
    }
    size_t n = json_object_size(m);
    if (n > max_n) {
        return gw__reject(c, RV_EINVAL, "'%s' has %zu entries, at most %zu",
                          name, n, max_n);
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
        if (gw__key(c, name, " ", k) != 0)
            return -1;
        if (!json_is_string(v) || json_string_length(v) > max_value) {
            return gw__reject(c, RV_EINVAL,
                              "%s '%.64s' must be a string of at most %zu "
                              "bytes",
                              name, k, max_value);
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

int
gw__key(struct gw_ctx *c, const char *where, const char *sep, const char *key)
{
    if (contract_key_valid(key, strlen(key)))
        return 0;
    return gw__reject(c, RV_EINVAL,
                      "%s%skey '%.64s' is invalid: 1 to %d bytes of "
                      "letters, digits, '_', '-', '.', ' ', '/'",
                      where, sep, key, CONTRACT_MAX_KEY_BYTES);
}

/* (client_id, seq) from the Idempotency-Key header "<client_id>/<seq>", or
 * the worker's own pair. */
int
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

int
gw__stamp(struct gw_ctx *c, Rv__Command *cmd)
{
    if (gw__idempotency(c, &cmd->client_id, &cmd->seq) != 0)
        return -1;
    cmd->has_client_id = cmd->has_seq = 1;
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
const Rv__Response *
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

json_t *
gw__index_reply(const Rv__Response *r)
{
    return json_pack("{s:I}", "index", (json_int_t)r->index);
}
