/* The answers every endpoint makes: the one error table (RV_* -> HTTP
 * status and error_code), JSON, error and raw answers with their
 * WWW-Authenticate and Retry-After, the request line split into a decoded
 * path and query parameters, and the Authorization header turned into
 * the token every native request carries (contracts in gateway.h and
 * gateway_int.h). */
#include "gateway/gateway_int.h"

#include <stdio.h>
#include <string.h>

/* ---- The error table --------------------------------------------------- */

static const struct {
    int code;
    int status;
    const char *error_code;
} gw_errors[] = {
    {RV_EINVAL, 400, "INVALID_PARAMETER_VALUE"},
    {RV_EPARSE, 400, "INVALID_PARAMETER_VALUE"},
    {RV_EMALFORMED, 400, "MALFORMED_REQUEST"},
    {RV_ECONFLICT, 400, "INVALID_PARAMETER_VALUE"},
    {RV_ENOTFOUND, 404, "RESOURCE_DOES_NOT_EXIST"},
    {RV_EEXIST, 409, "RESOURCE_ALREADY_EXISTS"},
    {RV_ESTATE, 409, "INVALID_STATE"},
    {RV_ESTALE, 409, "INVALID_STATE"},
    {RV_ETOOBIG, 413, "REQUEST_TOO_LARGE"},
    {RV_EQUOTA, 507, "RESOURCE_EXHAUSTED"},
    {RV_ERATE, 429, "RESOURCE_EXHAUSTED"},
    {RV_EUNAUTHENTICATED, 401, "UNAUTHENTICATED"},
    {RV_EPERM, 403, "PERMISSION_DENIED"},
    {RV_ENOTLEADER, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_EUNAVAILABLE, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_ETIMEDOUT, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_EUNKNOWN, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_ENOMEM, 503, "TEMPORARILY_UNAVAILABLE"},
    {RV_ENOSPACE, 507, "INSUFFICIENT_STORAGE"},
    {RV_EIO, 500, "INTERNAL_ERROR"},
    {RV_ECORRUPT, 500, "INTERNAL_ERROR"},
    {RV_EVERSION, 500, "INTERNAL_ERROR"},
};

int
gateway_status_of(int code, const char **error_code)
{
    for (size_t i = 0; i < sizeof gw_errors / sizeof gw_errors[0]; i++)
        if (gw_errors[i].code == code) {
            *error_code = gw_errors[i].error_code;
            return gw_errors[i].status;
        }
    *error_code = "INTERNAL_ERROR";
    return 500;
}

/* ---- Answers ------------------------------------------------------------ */

void
gw_reply_json(struct gw_exchange *x, int status, json_t *j)
{
    rv_buf_reset(&x->out);
    x->status = status;
    x->out_type = "application/json";
    if (j == NULL) {
        static const char oom[] = "{\"error_code\":\"TEMPORARILY_UNAVAILABLE\","
                                  "\"message\":\"out of memory\"}";
        x->status = 503;
        rv_buf_append(&x->out, oom, sizeof oom - 1);
        return;
    }
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (n > 0 && rv_buf_reserve(&x->out, n) == 0) {
        x->out.len = json_dumpb(j, (char *)x->out.data, n, JSON_COMPACT);
    } else {
        static const char fail[] = "{\"error_code\":\"INTERNAL_ERROR\","
                                   "\"message\":\"cannot encode the answer\"}";
        x->status = 500;
        rv_buf_append(&x->out, fail, sizeof fail - 1);
    }
    json_decref(j);
}

void
gw_reply_status(struct gw_exchange *x, int status, const char *error_code,
                const char *message)
{
    json_t *j = json_object();
    if (j != NULL) {
        json_object_set_new(j, "error_code", json_string(error_code));
        /* Messages may quote client input: keep only valid UTF-8. */
        json_t *m = json_string(message);
        if (m == NULL)
            m = json_string("(message not valid UTF-8)");
        json_object_set_new(j, "message", m);
    }
    gw_reply_json(x, status, j);
    /* gw__call raises this to the node's Response.retry_after_s. */
    x->retry_after_s = status == 503 || status == 429 ? 1 : 0;
    x->www_authenticate = NULL;
    if (status == 401)
        x->www_authenticate =
            x->token != NULL
                ? "Bearer realm=\"runvault\", error=\"invalid_token\""
                : "Bearer realm=\"runvault\"";
}

/* MLflow's statuses where they differ from runvault's (mlflow/exceptions.py:
 * RESOURCE_ALREADY_EXISTS is a 400; writing to a deleted run is
 * INVALID_PARAMETER_VALUE). */
static int
gw__mlflow_status_of(int code, const char **error_code)
{
    if (code == RV_EEXIST) {
        *error_code = "RESOURCE_ALREADY_EXISTS";
        return 400;
    }
    if (code == RV_ESTATE) {
        *error_code = "INVALID_PARAMETER_VALUE";
        return 400;
    }
    return gateway_status_of(code, error_code);
}

void
gw_reply_error(struct gw_exchange *x, int code, const char *message)
{
    const char *ec;
    int status = x->is_mlflow ? gw__mlflow_status_of(code, &ec)
                              : gateway_status_of(code, &ec);
    gw_reply_status(x, status, ec,
                    message != NULL && message[0] != '\0' ? message
                                                          : rv_strerror(code));
}

void
gw_reply_bytes(struct gw_exchange *x, int status, const char *type,
               const void *data, size_t n)
{
    rv_buf_reset(&x->out);
    x->status = status;
    x->out_type = type;
    rv_buf_append(&x->out, data, n);
}

const char *
gw_query(const struct gw_exchange *x, const char *name)
{
    for (size_t i = 0; i < x->n_query; i++)
        if (strcmp(x->query[i].key, name) == 0)
            return x->query[i].value;
    return NULL;
}

/* ---- The Authorization header ------------------------------------------ */

void
gw_token_take(struct gw_exchange *x)
{
    const char *tok;
    size_t n;
    const char *h = x->authorization;
    /* nng joins repeated headers with ", ", which no token holds: two
     * Authorization headers are refused like any other malformed one. */
    int rc = rv_token_from_header(
        h, h != NULL ? strnlen(h, RV_TOKEN_MAX_HEADER + 1) : 0, &tok, &n);
    x->token = NULL;
    if (rc == RV_ENOTFOUND)
        return;
    x->token = "";
    if (rc != RV_OK || n >= sizeof x->token_buf)
        return;
    memcpy(x->token_buf, tok, n);
    x->token_buf[n] = '\0';
    x->token = x->token_buf;
}

/* ---- Parsing the request line ------------------------------------------ */

static int
gw__hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s in place ('+' is a space in a query). The result must
 * be UTF-8 without NUL. Returns 0 or -1. */
static int
gw__decode(char *s, int is_query)
{
    char *o = s;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '%') {
            int h = gw__hex(p[1]), l = h < 0 ? -1 : gw__hex(p[2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -1;
            *o++ = (char)(h * 16 + l);
            p += 2;
        } else if (*p == '+' && is_query) {
            *o++ = ' ';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return contract_utf8_valid(s, (size_t)(o - s)) ? 0 : -1;
}

int
gw_parse_uri(struct gw_exchange *x, char *uri, char *errmsg)
{
    char *q = strchr(uri, '?');
    if (q != NULL)
        *q++ = '\0';
    char *hash = q != NULL ? strchr(q, '#') : strchr(uri, '#');
    if (hash != NULL)
        *hash = '\0';
    if (strlen(uri) > GATEWAY_MAX_PATH_BYTES) {
        rv_errmsg_printf(errmsg, "the path is longer than %d bytes",
                         GATEWAY_MAX_PATH_BYTES);
        return -1;
    }
    if (gw__decode(uri, 0) != 0) {
        rv_errmsg_printf(errmsg, "the path has a bad %%-escape or is not "
                                 "UTF-8");
        return -1;
    }
    x->path = uri;
    for (char *p = q; p != NULL && *p != '\0';) {
        char *amp = strchr(p, '&');
        if (amp != NULL)
            *amp = '\0';
        if (*p != '\0') {
            if (x->n_query == GATEWAY_MAX_QUERY_PARAMS) {
                rv_errmsg_printf(errmsg, "more than %d query parameters",
                                 GATEWAY_MAX_QUERY_PARAMS);
                return -1;
            }
            char *eq = strchr(p, '=');
            if (eq != NULL)
                *eq++ = '\0';
            if (gw__decode(p, 1) != 0 ||
                (eq != NULL && gw__decode(eq, 1) != 0)) {
                rv_errmsg_printf(errmsg,
                                 "query parameter '%.64s' has a bad "
                                 "%%-escape or is not UTF-8",
                                 p);
                return -1;
            }
            /* MLflow repeats run_ids= (get-history-bulk-interval); every
             * other parameter is given once. */
            for (size_t i = 0; i < x->n_query && strcmp(p, "run_ids") != 0; i++)
                if (strcmp(x->query[i].key, p) == 0) {
                    rv_errmsg_printf(errmsg,
                                     "query parameter '%.64s' given twice", p);
                    return -1;
                }
            x->query[x->n_query].key = p;
            x->query[x->n_query].value = eq != NULL ? eq : (char *)"";
            x->n_query++;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}
