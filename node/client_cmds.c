/* runvault ls | show | metrics | logs | ingest | export | import: the
 * client commands (client_cmds.h), over the native RPC client.
 *
 * Output is for people (aligned tables) unless --json or --csv asks for
 * a machine format. JSON is written by hand (cli__json_*) with full string
 * escaping; non-finite metric values are the strings "NaN", "Infinity" and
 * "-Infinity", as on the HTTP API. Input JSON (ingest, import) is parsed
 * with jansson, one bounded line or file at a time. */
#include "node/client_cmds.h"

#include "base/clock.h"
#include "base/exit.h"
#include "node/defaults.h"
#include "proto/proto.h"
#include "rpc/batch.h"
#include "rpc/client.h"
#include "store/filter.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <nettle/sha2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLI_MAX_MULTI       64 /* --tag / --param given at most. */
#define CLI_MAX_POS         2  /* Positional arguments. */
#define CLI_DEFAULT_LIMIT   50 /* ls rows. */
#define CLI_DEFAULT_TIMEOUT 30000
#define CLI_FOLLOW_POLL_MS  500
#define CLI_LOG_PAGE        1000         /* Log lines per LogsRequest. */
#define CLI_MAX_LINE_BYTES  (1u << 20)   /* One JSONL line. */
#define CLI_LOG_CMD_BYTES   (256u << 10) /* Text per LogLines command. */
#define CLI_LOG_CMD_LINES   1000
#define CLI_ARTIFACT_READ   (4u << 20) /* Bytes per ArtifactRequest. */
#define CLI_NAME_BYTES      200        /* A directory name made from a name. */
#define CLI_PATH_BYTES      4096
#define CLI_NUM_BYTES       40  /* A formatted double or integer. */
#define CLI_TIME_BYTES      32  /* An ISO 8601 UTC time. */
#define CLI_SPLIT_DEPTH     160 /* Step ranges a history fetch splits. */
#define CLI_PROGRESS_MS     250
#define CLI_IMPORT_ID_SALT  "runvault-import/"

/* ---- Arguments ---------------------------------------------------------- */

enum cli_opt {
    O_ENDPOINT,
    O_TIMEOUT,
    O_CONSISTENCY,
    O_PROJECT,
    O_EXPERIMENT,
    O_STATUS,
    O_TAG,
    O_PARAM,
    O_DAY,
    O_FILTER,
    O_ORDER_BY,
    O_LIMIT,
    O_JSON,
    O_CSV,
    O_KEY,
    O_CONTEXT,
    O_DOWNSAMPLE,
    O_MIN_STEP,
    O_MAX_STEP,
    O_FOLLOW,
    O_FROM,
    O_OUT,
    O_COUNT
};

static const struct {
    const char *name;
    int has_value;
} cli_flags[O_COUNT] = {
    {"--endpoint", 1}, {"--timeout-ms", 1}, {"--consistency", 1},
    {"--project", 1},  {"--experiment", 1}, {"--status", 1},
    {"--tag", 1},      {"--param", 1},      {"--day", 1},
    {"--filter", 1},   {"--order-by", 1},   {"--limit", 1},
    {"--json", 0},     {"--csv", 0},        {"--key", 1},
    {"--context", 1},  {"--downsample", 1}, {"--min-step", 1},
    {"--max-step", 1}, {"--follow", 0},     {"--from", 1},
    {"--out", 1},
};

#define CLI_BIT(o)  (1u << (o))
#define CLI_COMMON  (CLI_BIT(O_ENDPOINT) | CLI_BIT(O_TIMEOUT))
#define CLI_READING (CLI_COMMON | CLI_BIT(O_CONSISTENCY))

struct cli_args {
    const char *v[O_COUNT]; /* Borrowed from argv; NULL if not given. */
    const char *tags[CLI_MAX_MULTI], *params[CLI_MAX_MULTI];
    size_t n_tags, n_params;
    const char *pos[CLI_MAX_POS];
    size_t n_pos;
};

/* One client command run: the connection and the read options. */
struct cli {
    const char *name; /* "ls", for messages. */
    struct rvc *c;
    Rv__ReadOptions read;
    int is_tty; /* stderr is a terminal: show progress. */
    char errmsg[RV_ERRMSG_SIZE];
};

struct cli_command {
    const char *name;
    unsigned flags; /* The options it takes (CLI_BIT). */
    size_t min_pos, max_pos;
    int (*run)(struct cli *cl, const struct cli_args *a);
    const char *usage;
};

static const char cli_exit_text[] =
    "exit codes: 0 ok, 1 bad arguments, 3 local failure, 9 no node "
    "answered,\n"
    "            10 bad input data, 11 run or series not found, 12 request "
    "refused\n"
    "endpoint:   --endpoint LIST (tcp://IP:PORT, ipc://PATH or "
    "http://IP:PORT,\n"
    "            comma-separated) or RUNVAULT_ENDPOINT; "
    "default " NODE_DEFAULT_ENDPOINT "\n"
    "            --timeout-ms MS bounds each call, retries included "
    "(30000)\n";

const char cli_usage_summary[] =
    "  ls             list runs (filters: --project --experiment --status "
    "--tag\n"
    "                 --param --day --filter; --order-by --limit --json)\n"
    "  show           one run: attributes, params, tags, metric summary\n"
    "  metrics        a metric series (--key K; --csv or --json)\n"
    "  logs           a run's log lines (--follow)\n"
    "  ingest         JSONL metric points and runs from a file or stdin\n"
    "  export         runs to a directory tree (--out DIR)\n"
    "  import         runs from an export tree, idempotently\n";

/* ---- Small helpers ------------------------------------------------------ */

static int
cli__parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (s == NULL || s[0] == '\0')
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || errno != 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int
cli__parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* 64-bit FNV-1a of two strings, for ids and names (not secrets). */
static uint64_t
cli__hash(const char *a, const char *b)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (const char *s = a; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * UINT64_C(0x100000001b3);
    for (const char *s = b; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * UINT64_C(0x100000001b3);
    return h;
}

/* Shortest of %.15g..%.17g that reads back as v; NaN and the infinities
 * as "NaN", "Infinity", "-Infinity". */
static void
cli__fmt_double(double v, char out[CLI_NUM_BYTES])
{
    if (isnan(v)) {
        snprintf(out, CLI_NUM_BYTES, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, CLI_NUM_BYTES, "%s", v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, CLI_NUM_BYTES, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ"; 0 as "-". */
static void
cli__fmt_time(int64_t ms, char out[CLI_TIME_BYTES])
{
    struct tm tm;
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    time_t t = (time_t)secs;
    if (ms == 0 || gmtime_r(&t, &tm) == NULL ||
        strftime(out, CLI_TIME_BYTES, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, CLI_TIME_BYTES, "-");
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian, y >= 1970), or -1
 * if the date does not exist. */
static int64_t
cli__epoch_days(int64_t y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int is_leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1] + (m == 2 && is_leap))
        return -1;
    /* Leap years in [1970, y): those up to y - 1 minus those up to 1969. */
    int64_t p = y - 1;
    int64_t leaps =
        (p / 4 - p / 100 + p / 400) - (1969 / 4 - 1969 / 100 + 1969 / 400);
    int64_t days = 365 * (y - 1970) + leaps;
    for (int i = 0; i < m - 1; i++)
        days += mdays[i] + (i == 1 && is_leap);
    return days + d - 1;
}

/* Characters a display column holds: UTF-8 lead bytes. */
static size_t
cli__width(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((uint8_t)*s & 0xC0) != 0x80;
    return n;
}

static void
cli__pad(FILE *f, const char *s, size_t width, int is_right)
{
    size_t w = cli__width(s);
    if (is_right)
        for (size_t i = w; i < width; i++)
            fputc(' ', f);
    fputs(s, f);
    if (!is_right)
        for (size_t i = w; i < width; i++)
            fputc(' ', f);
}

static const char *
cli__str(const char *s)
{
    return s != NULL ? s : "";
}

/* ---- JSON output -------------------------------------------------------- */

static void
cli__json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const uint8_t *p = (const uint8_t *)cli__str(s); *p != '\0'; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", (unsigned)*p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* A metric value: a JSON number, or "NaN"/"Infinity"/"-Infinity". */
static void
cli__json_double(FILE *f, double v)
{
    char num[CLI_NUM_BYTES];
    cli__fmt_double(v, num);
    if (isfinite(v))
        fputs(num, f);
    else
        fprintf(f, "\"%s\"", num);
}

static void
cli__json_kvs(FILE *f, Rv__KV *const *kvs, size_t n)
{
    fputc('{', f);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            fputc(',', f);
        cli__json_str(f, kvs[i]->key);
        fputc(':', f);
        cli__json_str(f, kvs[i]->value);
    }
    fputc('}', f);
}

static void
cli__json_time(FILE *f, int has, int64_t ms)
{
    if (has && ms != 0)
        fprintf(f, "%lld", (long long)ms);
    else
        fputs("null", f);
}

/* ---- Calls -------------------------------------------------------------- */

static int
cli__is_no_answer(int code)
{
    return code == RV_ENOTLEADER || code == RV_EUNAVAILABLE ||
           code == RV_ETIMEDOUT || code == RV_EUNKNOWN;
}

/* The codes of a failure on this machine (a file, memory, an answer that
 * does not decode or an artifact whose SHA-256 differs); any other code
 * is the cluster's answer. */
static int
cli__is_local(int code)
{
    return code == RV_EIO || code == RV_ENOMEM || code == RV_ENOSPACE ||
           code == RV_EMALFORMED || code == RV_ECORRUPT;
}

/* The exit code for an RV_* outcome of a read or of an argument check. */
static int
cli__exit_for(int code)
{
    if (code == RV_OK)
        return RV_EXIT_OK;
    if (code == RV_ENOTFOUND)
        return RV_EXIT_NOTFOUND;
    if (code == RV_EINVAL || code == RV_EPARSE)
        return RV_EXIT_USAGE;
    if (cli__is_no_answer(code))
        return RV_EXIT_UNAVAILABLE;
    if (cli__is_local(code))
        return RV_EXIT_FAILURE;
    return RV_EXIT_REFUSED;
}

/* The exit code for an RV_* outcome of a write of input data. */
static int
cli__exit_for_data(int code)
{
    if (code == RV_EINVAL || code == RV_ECONFLICT || code == RV_EEXIST ||
        code == RV_ETOOBIG || code == RV_ESTATE || code == RV_ENOTFOUND)
        return RV_EXIT_DATA;
    return cli__exit_for(code);
}

/* Send req (a read gets cl->read). On RV_OK *resp is an RV_OK response
 * (free with rvc_response_free). Otherwise the code of the failure with its
 * text in cl->errmsg, and *resp NULL. */
static int
cli__rpc(struct cli *cl, Rv__Request *req, Rv__Response **resp)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    *resp = NULL;
    if (req->body_case != RV__REQUEST__BODY_WRITE)
        req->read = &cl->read;
    Rv__Response *r = NULL;
    int rc = rvc_call(cl->c, req, &r, errmsg);
    if (rc != RV_OK) {
        rv_errmsg_printf(cl->errmsg, "no node answered: %s", errmsg);
        return cli__is_no_answer(rc) ? rc : RV_EUNAVAILABLE;
    }
    if (r->code != RV_OK) {
        rc = (int)r->code;
        if (cli__is_no_answer(rc))
            rv_errmsg_printf(cl->errmsg, "no node could serve it (%s): %s",
                             rvc_last_endpoint(cl->c),
                             r->message ? r->message : rv_strerror(rc));
        else
            rv_errmsg_printf(cl->errmsg, "%s",
                             r->message && r->message[0] ? r->message
                                                         : rv_strerror(rc));
        rvc_response_free(r);
        return rc;
    }
    *resp = r;
    return RV_OK;
}

/* Print the failure of the command and return its exit code. */
static int
cli__fail(struct cli *cl, int code, int exit_code)
{
    fprintf(stderr, "runvault %s: %s\n", cl->name,
            cl->errmsg[0] ? cl->errmsg : rv_strerror(code));
    return exit_code;
}

static int
cli__get_run(struct cli *cl, const char *run_id, Rv__Response **resp)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest g = RV__GET_RUN_REQUEST__INIT;
    g.run_id = (char *)run_id;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &g;
    int rc = cli__rpc(cl, &req, resp);
    if (rc == RV_OK && (*resp)->run == NULL) {
        rvc_response_free(*resp);
        *resp = NULL;
        rv_errmsg_printf(cl->errmsg, "run '%s': the answer holds no run",
                         run_id);
        return RV_EMALFORMED;
    }
    if (rc == RV_ENOTFOUND)
        rv_errmsg_printf(cl->errmsg, "run '%s' not found", run_id);
    return rc;
}

/* ---- Metric history ----------------------------------------------------- */

struct cli_points {
    int64_t *steps, *ts;
    double *values;
    size_t n, cap;
};

static void
cli__points_free(struct cli_points *p)
{
    free(p->steps);
    free(p->ts);
    free(p->values);
    memset(p, 0, sizeof *p);
}

static int
cli__points_append(struct cli_points *p, const Rv__Response *r)
{
    size_t n = r->n_values;
    if (r->n_steps != n || r->n_timestamps_ms != n)
        return RV_EMALFORMED;
    if (n == 0)
        return RV_OK;
    if (p->n + n > p->cap) {
        size_t cap = p->cap ? p->cap : 1024;
        while (cap < p->n + n)
            cap *= 2;
        int64_t *s = realloc(p->steps, cap * sizeof *s);
        if (s != NULL)
            p->steps = s;
        int64_t *t = realloc(p->ts, cap * sizeof *t);
        if (t != NULL)
            p->ts = t;
        double *v = realloc(p->values, cap * sizeof *v);
        if (v != NULL)
            p->values = v;
        if (s == NULL || t == NULL || v == NULL)
            return RV_ENOMEM;
        p->cap = cap;
    }
    memcpy(p->steps + p->n, r->steps, n * sizeof *p->steps);
    memcpy(p->ts + p->n, r->timestamps_ms, n * sizeof *p->ts);
    memcpy(p->values + p->n, r->values, n * sizeof *p->values);
    p->n += n;
    return RV_OK;
}

/* Points of series (key, ctx) of run_id with steps in [lo, hi], in step
 * order. Without downsampling a node answers at most
 * STORE_MAX_HISTORY_POINTS per request (RV_ETOOBIG beyond): the range is
 * then split in halves until each half fits, so any series can be read
 * whole. */
static int
cli__history(struct cli *cl, const char *run_id, const char *key,
             const char *ctx, int64_t lo, int64_t hi, uint32_t downsample,
             struct cli_points *out)
{
    int64_t st_lo[CLI_SPLIT_DEPTH], st_hi[CLI_SPLIT_DEPTH];
    size_t sp = 0;
    st_lo[sp] = lo;
    st_hi[sp++] = hi;
    while (sp > 0) {
        int64_t a = st_lo[--sp], b = st_hi[sp];
        Rv__Request req = RV__REQUEST__INIT;
        Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
        Rv__Response *resp;
        h.run_id = (char *)run_id;
        h.key = (char *)key;
        h.context = (char *)ctx;
        h.has_min_step = h.has_max_step = 1;
        h.min_step = a;
        h.max_step = b;
        h.has_downsample = downsample > 0;
        h.downsample = downsample;
        req.body_case = RV__REQUEST__BODY_HISTORY;
        req.history = &h;
        int rc = cli__rpc(cl, &req, &resp);
        if (rc == RV_ETOOBIG && downsample == 0 && a < b &&
            sp + 2 <= CLI_SPLIT_DEPTH) {
            int64_t mid = a + (int64_t)(((uint64_t)b - (uint64_t)a) / 2);
            st_lo[sp] = mid + 1;
            st_hi[sp++] = b;
            st_lo[sp] = a;
            st_hi[sp++] = mid;
            continue;
        }
        if (rc == RV_ENOTFOUND)
            rv_errmsg_printf(cl->errmsg, "run '%s' has no metric '%s'%s%s%s",
                             run_id, key, ctx && ctx[0] ? " (context '" : "",
                             ctx && ctx[0] ? ctx : "",
                             ctx && ctx[0] ? "')" : "");
        if (rc != RV_OK)
            return rc;
        rc = cli__points_append(out, resp);
        rvc_response_free(resp);
        if (rc != RV_OK) {
            rv_errmsg_printf(cl->errmsg, "metric history: %s", rv_strerror(rc));
            return rc;
        }
    }
    return RV_OK;
}

/* ---- ls ----------------------------------------------------------------- */

/* A filter expression under construction; is_over once it passed the
 * grammar's length limit. */
struct cli_expr {
    char s[FILTER_MAX_EXPR_BYTES + 1];
    size_t n;
    int is_over;
};

static void
cli__expr_add(struct cli_expr *e, const char *s, size_t n)
{
    if (e->is_over || e->n + n > FILTER_MAX_EXPR_BYTES) {
        e->is_over = 1;
        return;
    }
    memcpy(e->s + e->n, s, n);
    e->n += n;
    e->s[e->n] = '\0';
}

static void
cli__expr_puts(struct cli_expr *e, const char *s)
{
    cli__expr_add(e, s, strlen(s));
}

static void
cli__expr_and(struct cli_expr *e)
{
    if (e->n > 0)
        cli__expr_puts(e, " and ");
}

/* A string constant: single quotes, a quote inside doubled
 * (store/filter.h: 'single quoted string' with '' for a quote). */
static void
cli__expr_value(struct cli_expr *e, const char *v)
{
    cli__expr_puts(e, "'");
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\'')
            cli__expr_puts(e, "''");
        else
            cli__expr_add(e, p, 1);
    }
    cli__expr_puts(e, "'");
}

/* prefix.name with name bare if it is a bare word of the grammar, else in
 * backticks, else in double quotes; -1 if it holds both (no escape). */
static int
cli__expr_ident(struct cli_expr *e, const char *prefix, const char *name,
                size_t n)
{
    int is_bare = n > 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':' ||
              ch == '/' || ch == '-'))
            is_bare = 0;
    }
    const char *quote = is_bare                        ? ""
                        : memchr(name, '`', n) == NULL ? "`"
                        : memchr(name, '"', n) == NULL ? "\""
                                                       : NULL;
    if (quote == NULL || n == 0)
        return -1;
    cli__expr_puts(e, prefix);
    cli__expr_puts(e, quote);
    cli__expr_add(e, name, n);
    cli__expr_puts(e, quote);
    return 0;
}

/* "prefix.k = 'v'" from "k=v"; -1 if it is not of that form. */
static int
cli__expr_kv(struct cli_expr *e, const char *prefix, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv)
        return -1;
    cli__expr_and(e);
    if (cli__expr_ident(e, prefix, kv, (size_t)(eq - kv)) != 0)
        return -1;
    cli__expr_puts(e, " = ");
    cli__expr_value(e, eq + 1);
    return 0;
}

/* The filter of ls's flags, joined with "and"; prints the error and
 * returns -1 if a flag is bad. */
static int
cli__ls_filter(const struct cli_args *a, struct cli_expr *e)
{
    memset(e, 0, sizeof *e);
    if (a->v[O_FILTER] != NULL && a->v[O_FILTER][0] != '\0') {
        cli__expr_puts(e, "(");
        cli__expr_puts(e, a->v[O_FILTER]);
        cli__expr_puts(e, ")");
    }
    if (a->v[O_STATUS] != NULL) {
        char up[16];
        size_t n = strlen(a->v[O_STATUS]);
        Rv__RunStatus st;
        for (size_t i = 0; i < n && i + 1 < sizeof up; i++)
            up[i] = (char)(a->v[O_STATUS][i] >= 'a' && a->v[O_STATUS][i] <= 'z'
                               ? a->v[O_STATUS][i] - 'a' + 'A'
                               : a->v[O_STATUS][i]);
        up[n < sizeof up ? n : sizeof up - 1] = '\0';
        if (n >= sizeof up || proto_status_parse(up, &st) != 0) {
            fprintf(stderr,
                    "runvault ls: unknown status '%s' (RUNNING, "
                    "SCHEDULED, FINISHED, FAILED, KILLED, CRASHED)\n",
                    a->v[O_STATUS]);
            return -1;
        }
        cli__expr_and(e);
        cli__expr_puts(e, "attributes.status = ");
        cli__expr_value(e, up);
    }
    for (size_t i = 0; i < a->n_tags; i++) {
        if (cli__expr_kv(e, "tags.", a->tags[i]) != 0) {
            fprintf(stderr, "runvault ls: --tag wants KEY=VALUE, got '%s'\n",
                    a->tags[i]);
            return -1;
        }
    }
    for (size_t i = 0; i < a->n_params; i++) {
        if (cli__expr_kv(e, "params.", a->params[i]) != 0) {
            fprintf(stderr, "runvault ls: --param wants KEY=VALUE, got '%s'\n",
                    a->params[i]);
            return -1;
        }
    }
    if (a->v[O_DAY] != NULL) {
        int y, m, d;
        char tail;
        int64_t days = -1;
        if (strlen(a->v[O_DAY]) == 10 &&
            sscanf(a->v[O_DAY], "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3)
            days = cli__epoch_days(y, m, d);
        if (days < 0) {
            fprintf(stderr, "runvault ls: --day wants YYYY-MM-DD, got '%s'\n",
                    a->v[O_DAY]);
            return -1;
        }
        char t[96];
        int64_t from = days * 86400000;
        snprintf(t, sizeof t,
                 "attributes.start_time >= %lld and "
                 "attributes.start_time < %lld",
                 (long long)from, (long long)(from + 86400000));
        cli__expr_and(e);
        cli__expr_puts(e, t);
    }
    if (e->is_over) {
        fprintf(stderr, "runvault ls: the filter is longer than %d bytes\n",
                FILTER_MAX_EXPR_BYTES);
        return -1;
    }
    return 0;
}

/* The attributes a run's JSON starts with, "run_id" to "ended_at" (user
 * only when with_user). */
static void
cli__run_attrs_json(const Rv__RunInfo *r, int with_user)
{
    printf("\"run_id\":");
    cli__json_str(stdout, r->run_id);
    printf(",\"team\":");
    cli__json_str(stdout, r->team);
    printf(",\"project\":");
    cli__json_str(stdout, r->project);
    printf(",\"experiment\":");
    cli__json_str(stdout, r->experiment);
    printf(",\"name\":");
    cli__json_str(stdout, r->name);
    if (with_user) {
        printf(",\"user\":");
        cli__json_str(stdout, r->user);
    }
    printf(",\"status\":");
    cli__json_str(stdout, proto_status_name(r->status));
    printf(",\"created_at\":");
    cli__json_time(stdout, r->has_created_at_ms, r->created_at_ms);
    printf(",\"ended_at\":");
    cli__json_time(stdout, r->has_ended_at_ms, r->ended_at_ms);
}

static void
cli__ls_json(const Rv__RunInfo *const *runs, size_t n)
{
    printf("{\"runs\":[");
    for (size_t i = 0; i < n; i++) {
        const Rv__RunInfo *r = runs[i];
        printf("%s{", i ? "," : "");
        cli__run_attrs_json(r, 0);
        printf(",\"n_points\":%llu}", (unsigned long long)r->n_points);
    }
    printf("]}\n");
}

static void
cli__ls_table(const Rv__RunInfo *const *runs, size_t n)
{
    enum {
        C_ID,
        C_PROJECT,
        C_EXPERIMENT,
        C_NAME,
        C_STATUS,
        C_CREATED,
        C_POINTS,
        C_N
    };
    static const char *const head[C_N] = {"RUN ID", "PROJECT", "EXPERIMENT",
                                          "NAME",   "STATUS",  "CREATED",
                                          "POINTS"};
    size_t w[C_N];
    for (int k = 0; k < C_N; k++)
        w[k] = strlen(head[k]);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (int k = 0; k < C_N; k++) {
                cli__pad(stdout, head[k], k == C_N - 1 ? 0 : w[k], 0);
                fputs(k == C_N - 1 ? "\n" : "  ", stdout);
            }
        }
        for (size_t i = 0; i < n; i++) {
            const Rv__RunInfo *r = runs[i];
            char created[CLI_TIME_BYTES], points[CLI_NUM_BYTES];
            cli__fmt_time(r->has_created_at_ms ? r->created_at_ms : 0, created);
            snprintf(points, sizeof points, "%llu",
                     (unsigned long long)r->n_points);
            const char *col[C_N] = {r->run_id,
                                    cli__str(r->project),
                                    cli__str(r->experiment),
                                    r->name && r->name[0] ? r->name : "-",
                                    proto_status_name(r->status),
                                    created,
                                    points};
            for (int k = 0; k < C_N; k++) {
                size_t cw = cli__width(col[k]);
                if (pass == 0 && cw > w[k])
                    w[k] = cw;
                if (pass == 1) {
                    cli__pad(stdout, col[k], k == C_N - 1 ? 0 : w[k], 0);
                    fputs(k == C_N - 1 ? "\n" : "  ", stdout);
                }
            }
        }
    }
}

/* Pages of ListRuns until limit rows (0: all) or the last page. */
static int
cli__ls_fetch(struct cli *cl, const struct cli_args *a, const char *filter,
              uint64_t limit, Rv__Response ***pages, size_t *n_pages)
{
    char token[STORE_PAGE_TOKEN_BYTES] = "";
    uint64_t got = 0;
    size_t cap = 0;
    *pages = NULL;
    *n_pages = 0;
    for (;;) {
        Rv__Request req = RV__REQUEST__INIT;
        Rv__ListRunsRequest l = RV__LIST_RUNS_REQUEST__INIT;
        Rv__Response *resp;
        uint64_t want = limit == 0 ? STORE_MAX_PER_PAGE : limit - got;
        l.project = (char *)a->v[O_PROJECT];
        l.experiment = (char *)a->v[O_EXPERIMENT];
        l.filter = filter[0] ? (char *)filter : NULL;
        l.order_by = (char *)a->v[O_ORDER_BY];
        l.has_per_page = 1;
        l.per_page =
            (uint32_t)(want < STORE_MAX_PER_PAGE ? want : STORE_MAX_PER_PAGE);
        l.page_token = token[0] ? token : NULL;
        req.body_case = RV__REQUEST__BODY_LIST_RUNS;
        req.list_runs = &l;
        int rc = cli__rpc(cl, &req, &resp);
        if (rc != RV_OK)
            return rc;
        if (*n_pages == cap) {
            cap = cap ? 2 * cap : 8;
            Rv__Response **p = realloc(*pages, cap * sizeof *p);
            if (p == NULL) {
                rvc_response_free(resp);
                rv_errmsg_printf(cl->errmsg, "out of memory");
                return RV_ENOMEM;
            }
            *pages = p;
        }
        (*pages)[(*n_pages)++] = resp;
        got += resp->n_runs;
        const char *next = resp->next_page_token;
        if (resp->n_runs == 0 || next == NULL || next[0] == '\0' ||
            (limit != 0 && got >= limit))
            return RV_OK;
        if (strlen(next) >= sizeof token) {
            rv_errmsg_printf(cl->errmsg, "a page token is too long");
            return RV_EMALFORMED;
        }
        snprintf(token, sizeof token, "%s", next);
    }
}

static int
cli__ls(struct cli *cl, const struct cli_args *a)
{
    struct cli_expr e;
    uint64_t limit = CLI_DEFAULT_LIMIT;
    if (a->v[O_LIMIT] != NULL && cli__parse_u64(a->v[O_LIMIT], &limit) != 0) {
        fprintf(stderr, "runvault ls: --limit wants a number (0: all)\n");
        return RV_EXIT_USAGE;
    }
    if (cli__ls_filter(a, &e) != 0)
        return RV_EXIT_USAGE;
    Rv__Response **pages;
    size_t n_pages;
    int rc = cli__ls_fetch(cl, a, e.s, limit, &pages, &n_pages);
    size_t n = 0;
    for (size_t i = 0; i < n_pages; i++)
        n += pages[i]->n_runs;
    const Rv__RunInfo **runs = calloc(n ? n : 1, sizeof *runs);
    if (rc == RV_OK && runs == NULL) {
        rc = RV_ENOMEM;
        rv_errmsg_printf(cl->errmsg, "out of memory");
    }
    int code = RV_EXIT_OK;
    if (rc == RV_OK) {
        n = 0;
        for (size_t i = 0; i < n_pages; i++)
            for (size_t k = 0; k < pages[i]->n_runs; k++)
                if (limit == 0 || n < limit)
                    runs[n++] = pages[i]->runs[k];
        if (a->v[O_JSON] != NULL)
            cli__ls_json(runs, n);
        else
            cli__ls_table(runs, n);
    } else {
        code = cli__fail(cl, rc, cli__exit_for(rc));
    }
    free(runs);
    for (size_t i = 0; i < n_pages; i++)
        rvc_response_free(pages[i]);
    free(pages);
    return code;
}

/* ---- show --------------------------------------------------------------- */

static void
cli__show_json(const Rv__RunInfo *r)
{
    printf("{\"run\":{");
    cli__run_attrs_json(r, 1);
    printf(",\"n_points\":%llu,\"n_log_lines\":%llu,\"params\":",
           (unsigned long long)r->n_points, (unsigned long long)r->n_log_lines);
    cli__json_kvs(stdout, r->params, r->n_params);
    printf(",\"tags\":");
    cli__json_kvs(stdout, r->tags, r->n_tags);
    printf(",\"summary\":[");
    for (size_t i = 0; i < r->n_summary; i++) {
        const Rv__Summary *m = r->summary[i];
        printf("%s{\"key\":", i ? "," : "");
        cli__json_str(stdout, m->key);
        printf(",\"context\":");
        cli__json_str(stdout, m->context);
        printf(",\"last\":");
        cli__json_double(stdout, m->last);
        printf(",\"min\":");
        cli__json_double(stdout, m->min);
        printf(",\"max\":");
        cli__json_double(stdout, m->max);
        printf(",\"count\":%llu,\"last_step\":%lld,\"last_timestamp\":%lld}",
               (unsigned long long)m->count, (long long)m->last_step,
               (long long)m->last_timestamp_ms);
    }
    printf("]}}\n");
}

static void
cli__show_summary(const Rv__RunInfo *r)
{
    enum { S_KEY, S_CTX, S_LAST, S_MIN, S_MAX, S_COUNT, S_STEP, S_N };
    static const char *const head[S_N] = {"KEY", "CONTEXT", "LAST",     "MIN",
                                          "MAX", "COUNT",   "LAST STEP"};
    size_t w[S_N];
    for (int k = 0; k < S_N; k++)
        w[k] = strlen(head[k]);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i <= r->n_summary; i++) {
            char num[5][CLI_NUM_BYTES];
            const char *col[S_N];
            if (i == 0) {
                if (pass == 0)
                    continue;
                memcpy(col, head, sizeof col);
            } else {
                const Rv__Summary *m = r->summary[i - 1];
                cli__fmt_double(m->last, num[0]);
                cli__fmt_double(m->min, num[1]);
                cli__fmt_double(m->max, num[2]);
                snprintf(num[3], CLI_NUM_BYTES, "%llu",
                         (unsigned long long)m->count);
                snprintf(num[4], CLI_NUM_BYTES, "%lld",
                         (long long)m->last_step);
                col[S_KEY] = m->key;
                col[S_CTX] = m->context && m->context[0] ? m->context : "-";
                col[S_LAST] = num[0];
                col[S_MIN] = num[1];
                col[S_MAX] = num[2];
                col[S_COUNT] = num[3];
                col[S_STEP] = num[4];
            }
            for (int k = 0; k < S_N; k++) {
                if (pass == 0 && cli__width(col[k]) > w[k])
                    w[k] = cli__width(col[k]);
                if (pass == 1) {
                    fputs("  ", stdout);
                    cli__pad(stdout, col[k], k == S_N - 1 ? 0 : w[k], 0);
                }
            }
            if (pass == 1)
                fputc('\n', stdout);
        }
    }
}

static int
cli__show(struct cli *cl, const struct cli_args *a)
{
    Rv__Response *resp;
    int rc = cli__get_run(cl, a->pos[0], &resp);
    if (rc != RV_OK)
        return cli__fail(cl, rc, cli__exit_for(rc));
    const Rv__RunInfo *r = resp->run;
    if (a->v[O_JSON] != NULL) {
        cli__show_json(r);
        rvc_response_free(resp);
        return RV_EXIT_OK;
    }
    char created[CLI_TIME_BYTES], ended[CLI_TIME_BYTES];
    cli__fmt_time(r->has_created_at_ms ? r->created_at_ms : 0, created);
    cli__fmt_time(r->has_ended_at_ms ? r->ended_at_ms : 0, ended);
    printf("run:         %s\n", r->run_id);
    printf("team:        %s\n", cli__str(r->team));
    printf("project:     %s\n", cli__str(r->project));
    printf("experiment:  %s\n", cli__str(r->experiment));
    printf("name:        %s\n", r->name && r->name[0] ? r->name : "-");
    printf("user:        %s\n", r->user && r->user[0] ? r->user : "-");
    printf("status:      %s\n", proto_status_name(r->status));
    printf("created:     %s\n", created);
    printf("ended:       %s\n", ended);
    printf("points:      %llu\n", (unsigned long long)r->n_points);
    printf("log lines:   %llu\n", (unsigned long long)r->n_log_lines);
    printf("params:%s\n", r->n_params ? "" : "      -");
    for (size_t i = 0; i < r->n_params; i++)
        printf("  %s = %s\n", r->params[i]->key, r->params[i]->value);
    printf("tags:%s\n", r->n_tags ? "" : "        -");
    for (size_t i = 0; i < r->n_tags; i++)
        printf("  %s = %s\n", r->tags[i]->key, r->tags[i]->value);
    printf("summary:%s\n", r->n_summary ? "" : "     -");
    if (r->n_summary > 0)
        cli__show_summary(r);
    rvc_response_free(resp);
    return RV_EXIT_OK;
}

/* ---- metrics ------------------------------------------------------------ */

static int
cli__metrics(struct cli *cl, const struct cli_args *a)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    uint64_t ds = 0;
    if (a->v[O_KEY] == NULL || a->v[O_KEY][0] == '\0') {
        fprintf(stderr, "runvault metrics: --key KEY is required\n");
        return RV_EXIT_USAGE;
    }
    if ((a->v[O_MIN_STEP] && cli__parse_i64(a->v[O_MIN_STEP], &lo) != 0) ||
        (a->v[O_MAX_STEP] && cli__parse_i64(a->v[O_MAX_STEP], &hi) != 0) ||
        (a->v[O_DOWNSAMPLE] && (cli__parse_u64(a->v[O_DOWNSAMPLE], &ds) != 0 ||
                                ds > STORE_MAX_DOWNSAMPLE))) {
        fprintf(stderr,
                "runvault metrics: --min-step and --max-step want integers, "
                "--downsample 0..%d\n",
                STORE_MAX_DOWNSAMPLE);
        return RV_EXIT_USAGE;
    }
    if (a->v[O_JSON] != NULL && a->v[O_CSV] != NULL) {
        fprintf(stderr, "runvault metrics: --json or --csv, not both\n");
        return RV_EXIT_USAGE;
    }
    struct cli_points pts;
    memset(&pts, 0, sizeof pts);
    const char *ctx = a->v[O_CONTEXT] ? a->v[O_CONTEXT] : "";
    int rc = cli__history(cl, a->pos[0], a->v[O_KEY], ctx, lo, hi, (uint32_t)ds,
                          &pts);
    if (rc != RV_OK) {
        cli__points_free(&pts);
        return cli__fail(cl, rc, cli__exit_for(rc));
    }
    char num[CLI_NUM_BYTES], when[CLI_TIME_BYTES];
    if (a->v[O_JSON] != NULL) {
        printf("{\"run_id\":");
        cli__json_str(stdout, a->pos[0]);
        printf(",\"key\":");
        cli__json_str(stdout, a->v[O_KEY]);
        printf(",\"context\":");
        cli__json_str(stdout, ctx);
        printf(",\"points\":[");
        for (size_t i = 0; i < pts.n; i++) {
            printf("%s[%lld,%lld,", i ? "," : "", (long long)pts.steps[i],
                   (long long)pts.ts[i]);
            cli__json_double(stdout, pts.values[i]);
            putchar(']');
        }
        printf("]}\n");
    } else if (a->v[O_CSV] != NULL) {
        printf("step,timestamp,value\n");
        for (size_t i = 0; i < pts.n; i++) {
            cli__fmt_double(pts.values[i], num);
            printf("%lld,%lld,%s\n", (long long)pts.steps[i],
                   (long long)pts.ts[i], num);
        }
    } else {
        printf("%12s  %-20s  %s\n", "STEP", "TIME", "VALUE");
        for (size_t i = 0; i < pts.n; i++) {
            cli__fmt_double(pts.values[i], num);
            cli__fmt_time(pts.ts[i], when);
            printf("%12lld  %-20s  %s\n", (long long)pts.steps[i], when, num);
        }
    }
    cli__points_free(&pts);
    return RV_EXIT_OK;
}

/* ---- logs --------------------------------------------------------------- */

/* Wait up to ms for SIGINT or SIGTERM (blocked by the caller); 1 if one
 * came. */
static int
cli__wait_signal(const sigset_t *set, unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    for (;;) {
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return 1;
        if (errno != EINTR)
            return 0;
    }
}

static int
cli__run_is_live(struct cli *cl, const char *run_id, int *is_live)
{
    Rv__Response *resp;
    int rc = cli__get_run(cl, run_id, &resp);
    if (rc != RV_OK)
        return rc;
    *is_live = resp->run->status == RV__RUN_STATUS__RUNNING ||
               resp->run->status == RV__RUN_STATUS__SCHEDULED;
    rvc_response_free(resp);
    return RV_OK;
}

static int
cli__logs(struct cli *cl, const struct cli_args *a)
{
    uint64_t next = 0;
    int is_follow = a->v[O_FOLLOW] != NULL, is_ended = 0;
    sigset_t set;
    if (a->v[O_FROM] != NULL && cli__parse_u64(a->v[O_FROM], &next) != 0) {
        fprintf(stderr, "runvault logs: --from wants a line number\n");
        return RV_EXIT_USAGE;
    }
    /* Blocked in this thread and in the nng threads it starts (none run
     * yet: rvc_open dials nothing), then taken by sigtimedwait. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (is_follow)
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        Rv__Request req = RV__REQUEST__INIT;
        Rv__LogsRequest l = RV__LOGS_REQUEST__INIT;
        Rv__Response *resp;
        l.run_id = (char *)a->pos[0];
        l.has_from_line = l.has_max_lines = 1;
        l.from_line = next;
        l.max_lines = CLI_LOG_PAGE;
        req.body_case = RV__REQUEST__BODY_LOGS;
        req.logs = &l;
        int rc = cli__rpc(cl, &req, &resp);
        if (rc == RV_ENOTFOUND)
            rv_errmsg_printf(cl->errmsg, "run '%s' not found", a->pos[0]);
        if (rc != RV_OK)
            return cli__fail(cl, rc, cli__exit_for(rc));
        for (size_t i = 0; i < resp->n_lines; i++) {
            const char *t = resp->lines[i]->text;
            size_t tn = strlen(t);
            fputs(t, stdout);
            if (tn == 0 || t[tn - 1] != '\n')
                fputc('\n', stdout);
        }
        size_t n = resp->n_lines;
        next = resp->has_next_line ? resp->next_line : next + n;
        rvc_response_free(resp);
        fflush(stdout);
        if (is_follow && cli__wait_signal(&set, 0))
            return RV_EXIT_OK;
        if (n > 0)
            continue;
        if (!is_follow || is_ended)
            return RV_EXIT_OK;
        /* Caught up: a run that ended gets one more look for its last
         * lines; a live one is polled. */
        int is_live = 1;
        rc = cli__run_is_live(cl, a->pos[0], &is_live);
        if (rc != RV_OK)
            return cli__fail(cl, rc, cli__exit_for(rc));
        if (!is_live)
            is_ended = 1;
        else if (cli__wait_signal(&set, CLI_FOLLOW_POLL_MS))
            return RV_EXIT_OK;
    }
}

/* ---- Writing runs (ingest, import) -------------------------------------- */

/* KVs copied out of a JSON object of strings (borrowed from it: valid while
 * the object lives). */
struct cli_kvs {
    Rv__KV *kvs;
    Rv__KV **ptrs;
    size_t n;
};

static void
cli__kvs_free(struct cli_kvs *k)
{
    free(k->kvs);
    free(k->ptrs);
    memset(k, 0, sizeof *k);
}

/* obj NULL is an empty set; anything but an object of strings is an error
 * (-1, the reason in why). */
static int
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

/* Queue a run_create (resume allowed) for run c->run_id with params and
 * tags; those past the per-command limits follow in LogBatch commands. */
static int
cli__queue_run(struct rvc_batcher *b, Rv__RunCreate *c,
               const struct cli_kvs *params, const struct cli_kvs *tags)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    size_t np = params->n < STORE_MAX_PARAMS_PER_COMMAND
                    ? params->n
                    : STORE_MAX_PARAMS_PER_COMMAND;
    size_t nt = tags->n < STORE_MAX_TAGS_PER_COMMAND
                    ? tags->n
                    : STORE_MAX_TAGS_PER_COMMAND;
    c->has_resume = 1;
    c->resume = RV__RESUME__RESUME_ALLOW;
    c->n_params = np;
    c->params = params->ptrs;
    c->n_tags = nt;
    c->tags = tags->ptrs;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = c;
    int rc = rvc_batcher_command(b, &cmd);
    while (rc == RV_OK && (np < params->n || nt < tags->n)) {
        Rv__LogBatch lb = RV__LOG_BATCH__INIT;
        size_t kp = params->n - np, kt = tags->n - nt;
        lb.run_id = c->run_id;
        lb.n_params = kp < STORE_MAX_PARAMS_PER_COMMAND
                          ? kp
                          : STORE_MAX_PARAMS_PER_COMMAND;
        lb.params = params->ptrs + np;
        lb.n_tags =
            kt < STORE_MAX_TAGS_PER_COMMAND ? kt : STORE_MAX_TAGS_PER_COMMAND;
        lb.tags = tags->ptrs + nt;
        np += lb.n_params;
        nt += lb.n_tags;
        cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
        cmd.log_batch = &lb;
        rc = rvc_batcher_command(b, &cmd);
    }
    return rc;
}

/* Log lines of one run collected into LogLines commands. */
struct cli_loglines {
    char run_id[STORE_MAX_RUN_ID_BYTES + 1];
    Rv__LogLine lines[CLI_LOG_CMD_LINES];
    Rv__LogLine *ptrs[CLI_LOG_CMD_LINES];
    char *texts[CLI_LOG_CMD_LINES]; /* Owned copies. */
    size_t n, n_bytes;
};

static int
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

static int
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

static void
cli__loglines_clear(struct cli_loglines *ll)
{
    for (size_t i = 0; i < ll->n; i++)
        free(ll->texts[i]);
    ll->n = ll->n_bytes = 0;
}

static void
cli__hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Queue the file at file as artifact path of run_id in ArtifactChunk
 * commands of at most STORE_MAX_ARTIFACT_CHUNK_BYTES, the last one with
 * the SHA-256 of the whole. want_hex, if not NULL, is the SHA-256 the
 * bytes must have (lower-case hex). Returns RV_OK, a batcher error, or
 * RV_EIO / RV_EMALFORMED (the reason in why). */
static int
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
    uint8_t *buf = malloc(STORE_MAX_ARTIFACT_CHUNK_BYTES);
    struct sha256_ctx sha;
    uint8_t digest[SHA256_DIGEST_SIZE];
    uint64_t size = (uint64_t)st.st_size, off = 0;
    int rc = buf != NULL ? RV_OK : RV_ENOMEM;
    sha256_init(&sha);
    do {
        uint64_t left = size - off;
        size_t want = left < STORE_MAX_ARTIFACT_CHUNK_BYTES
                          ? (size_t)left
                          : STORE_MAX_ARTIFACT_CHUNK_BYTES;
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
            cli__hex(digest, SHA256_DIGEST_SIZE, hex);
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

/* Progress "what [####....] done/total" on stderr, at most every
 * CLI_PROGRESS_MS (always for the last). */
struct cli_progress {
    int is_on;
    uint64_t last_ms;
};

static void
cli__progress(struct cli_progress *p, const char *what, size_t done,
              size_t total)
{
    uint64_t now = rv_clock_mono_ms();
    if (!p->is_on || (done < total && now < p->last_ms + CLI_PROGRESS_MS))
        return;
    p->last_ms = now;
    char bar[31];
    size_t fill = total ? done * 30 / total : 30;
    for (size_t i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %zu/%zu runs", what, bar, done, total);
    if (done == total)
        fputc('\n', stderr);
}

/* ---- ingest ------------------------------------------------------------- */

/* The run ids an ingest has seen: open addressing, FNV-1a. */
struct cli_set {
    char **slots;
    size_t cap, n;
};

static void
cli__set_free(struct cli_set *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static size_t
cli__set_find(const struct cli_set *s, const char *k)
{
    size_t i = (size_t)(cli__hash(k, "") & (s->cap - 1));
    while (s->slots[i] != NULL && strcmp(s->slots[i], k) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int
cli__set_has(const struct cli_set *s, const char *k)
{
    return s->cap > 0 && s->slots[cli__set_find(s, k)] != NULL;
}

static int
cli__set_add(struct cli_set *s, const char *k)
{
    if (2 * (s->n + 1) > s->cap) {
        struct cli_set g = {NULL, s->cap ? 2 * s->cap : 64, 0};
        g.slots = calloc(g.cap, sizeof *g.slots);
        if (g.slots == NULL)
            return RV_ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i] != NULL)
                g.slots[cli__set_find(&g, s->slots[i])] = s->slots[i];
        g.n = s->n;
        free(s->slots);
        *s = g;
    }
    size_t i = cli__set_find(s, k);
    if (s->slots[i] != NULL)
        return RV_OK;
    size_t n = strlen(k);
    s->slots[i] = malloc(n + 1);
    if (s->slots[i] == NULL)
        return RV_ENOMEM;
    memcpy(s->slots[i], k, n + 1);
    s->n++;
    return RV_OK;
}

struct cli_ingest {
    struct cli *cl;
    struct rvc_batcher *b;
    struct cli_set runs;       /* Created or found in this ingest. */
    struct cli_loglines *logs; /* Pending log lines. */
    uint64_t n_lines, n_runs, n_points, n_log_lines, n_artifacts;
    char why[RV_ERRMSG_SIZE]; /* What is wrong with the current line. */
};

/* A string member: 0 and *out (NULL if absent and optional), or -1. */
static int
cli__jstr(const json_t *o, const char *k, int is_required, const char **out,
          char *why)
{
    const json_t *v = json_object_get(o, k);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (is_required)
            rv_errmsg_printf(why, "\"%s\" is missing", k);
        return is_required ? -1 : 0;
    }
    if (!json_is_string(v) ||
        json_string_length(v) != strlen(json_string_value(v))) {
        rv_errmsg_printf(why, "\"%s\" must be a string", k);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* An integer member: 0 (*out untouched if absent and optional), or -1. */
static int
cli__jint(const json_t *o, const char *k, int is_required, int64_t *out,
          char *why)
{
    const json_t *v = json_object_get(o, k);
    if (v == NULL || json_is_null(v)) {
        if (is_required)
            rv_errmsg_printf(why, "\"%s\" is missing", k);
        return is_required ? -1 : 0;
    }
    if (!json_is_integer(v)) {
        rv_errmsg_printf(why, "\"%s\" must be an integer", k);
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* A metric value: a number, or "NaN", "Infinity", "-Infinity". */
static int
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

/* A run line, or the project/experiment of a metric line: queue the
 * run_create. Status and ended_at (run lines only) follow as a status. */
static int
cli__ingest_run(struct cli_ingest *in, const json_t *o, const char *run_id,
                int is_run_line)
{
    Rv__RunCreate c = RV__RUN_CREATE__INIT;
    struct cli_kvs params, tags;
    const char *status = NULL;
    int64_t created = 0, ended = 0;
    c.run_id = (char *)run_id;
    if (cli__jstr(o, "project", 1, (const char **)&c.project, in->why) ||
        cli__jstr(o, "experiment", 1, (const char **)&c.experiment, in->why) ||
        cli__jstr(o, "name", 0, (const char **)&c.name, in->why) ||
        cli__jstr(o, "team", 0, (const char **)&c.team, in->why) ||
        cli__jstr(o, "user", 0, (const char **)&c.user, in->why))
        return RV_EINVAL;
    if (is_run_line && (cli__jint(o, "created_at", 0, &created, in->why) ||
                        cli__jint(o, "ended_at", 0, &ended, in->why) ||
                        cli__jstr(o, "status", 0, &status, in->why)))
        return RV_EINVAL;
    Rv__RunStatus st = RV__RUN_STATUS__RUNNING;
    if (status != NULL && proto_status_parse(status, &st) != 0) {
        rv_errmsg_printf(in->why, "unknown status '%.32s'", status);
        return RV_EINVAL;
    }
    c.created_at_ms = created;
    if (cli__kvs_from_json(is_run_line ? json_object_get(o, "params") : NULL,
                           "params", &params, in->why) != 0)
        return RV_EINVAL;
    if (cli__kvs_from_json(is_run_line ? json_object_get(o, "tags") : NULL,
                           "tags", &tags, in->why) != 0) {
        cli__kvs_free(&params);
        return RV_EINVAL;
    }
    int rc = cli__loglines_flush(in->logs, in->b);
    if (rc == RV_OK)
        rc = cli__queue_run(in->b, &c, &params, &tags);
    cli__kvs_free(&params);
    cli__kvs_free(&tags);
    if (rc == RV_OK && status != NULL) {
        Rv__Command cmd = RV__COMMAND__INIT;
        Rv__RunSetStatus s = RV__RUN_SET_STATUS__INIT;
        s.run_id = (char *)run_id;
        s.status = st;
        s.has_ended_at_ms = ended != 0;
        s.ended_at_ms = ended;
        cmd.body_case = RV__COMMAND__BODY_RUN_STATUS;
        cmd.run_status = &s;
        rc = rvc_batcher_command(in->b, &cmd);
    }
    if (rc == RV_OK && !cli__set_has(&in->runs, run_id))
        in->n_runs++;
    if (rc == RV_OK)
        rc = cli__set_add(&in->runs, run_id);
    return rc;
}

/* A run first named by a line that has no project and experiment: it must
 * exist already. */
static int
cli__ingest_known(struct cli_ingest *in, const char *run_id)
{
    if (cli__set_has(&in->runs, run_id))
        return RV_OK;
    Rv__Response *resp;
    int rc = cli__get_run(in->cl, run_id, &resp);
    if (rc == RV_ENOTFOUND) {
        rv_errmsg_printf(in->why,
                         "run '%.64s' does not exist and the line has no "
                         "\"project\" and \"experiment\" to create it",
                         run_id);
        return RV_EINVAL;
    }
    if (rc != RV_OK)
        return rc;
    rvc_response_free(resp);
    return cli__set_add(&in->runs, run_id);
}

static int
cli__ingest_metric(struct cli_ingest *in, const json_t *o, const char *run_id)
{
    const char *key, *ctx;
    int64_t step = 0, ts = (int64_t)rv_clock_wall_ms();
    double value;
    if (cli__jstr(o, "key", 1, &key, in->why) ||
        cli__jstr(o, "context", 0, &ctx, in->why) ||
        cli__jint(o, "step", 1, &step, in->why) ||
        cli__jint(o, "timestamp", 0, &ts, in->why) ||
        cli__jvalue(o, "value", &value, in->why))
        return RV_EINVAL;
    int rc = RV_OK;
    if (!cli__set_has(&in->runs, run_id)) {
        rc = json_object_get(o, "project") != NULL
                 ? cli__ingest_run(in, o, run_id, 0)
                 : cli__ingest_known(in, run_id);
        if (rc != RV_OK)
            return rc;
    }
    rc = rvc_batcher_point(in->b, run_id, key, ctx, step, ts, value);
    if (rc == RV_EINVAL)
        rv_errmsg_printf(in->why, "%s", rvc_batcher_errmsg(in->b));
    if (rc == RV_OK)
        in->n_points++;
    return rc;
}

static int
cli__ingest_log(struct cli_ingest *in, const json_t *o, const char *run_id)
{
    const char *text, *stream = NULL;
    int64_t ts = (int64_t)rv_clock_wall_ms();
    if (cli__jstr(o, "text", 1, &text, in->why) ||
        cli__jstr(o, "stream", 0, &stream, in->why) ||
        cli__jint(o, "timestamp", 0, &ts, in->why))
        return RV_EINVAL;
    if (stream != NULL && strcmp(stream, "stdout") != 0 &&
        strcmp(stream, "stderr") != 0) {
        rv_errmsg_printf(in->why, "\"stream\" is stdout or stderr");
        return RV_EINVAL;
    }
    int rc = cli__ingest_known(in, run_id);
    if (rc == RV_OK)
        rc = cli__loglines_add(in->logs, in->b, run_id, ts,
                               stream && strcmp(stream, "stderr") == 0
                                   ? RV__STREAM__STDERR
                                   : RV__STREAM__STDOUT,
                               text, strlen(text));
    if (rc == RV_OK)
        in->n_log_lines++;
    return rc;
}

static int
cli__ingest_artifact(struct cli_ingest *in, const json_t *o, const char *run_id)
{
    const char *path, *file, *type;
    if (cli__jstr(o, "path", 1, &path, in->why) ||
        cli__jstr(o, "file", 1, &file, in->why) ||
        cli__jstr(o, "content_type", 0, &type, in->why))
        return RV_EINVAL;
    int rc = cli__ingest_known(in, run_id);
    if (rc == RV_OK)
        rc = cli__loglines_flush(in->logs, in->b);
    if (rc == RV_OK)
        rc =
            cli__queue_artifact(in->b, run_id, path, type, file, NULL, in->why);
    if (rc == RV_EIO)
        rc = RV_EINVAL; /* A file the line names: bad input. */
    if (rc == RV_OK)
        in->n_artifacts++;
    return rc;
}

/* One JSONL line. RV_EINVAL: the line is bad (why says how); other codes
 * come from sending. */
static int
cli__ingest_line(struct cli_ingest *in, const char *line, size_t n)
{
    json_error_t jerr;
    const char *type = NULL, *run_id;
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        rv_errmsg_printf(in->why, "%s",
                         o == NULL ? jerr.text : "not a JSON object");
        json_decref(o);
        return RV_EINVAL;
    }
    int rc = RV_EINVAL;
    if (cli__jstr(o, "type", 0, &type, in->why) == 0 &&
        cli__jstr(o, "run_id", 1, &run_id, in->why) == 0) {
        size_t rn = strlen(run_id);
        if (rn == 0 || rn > STORE_MAX_RUN_ID_BYTES)
            rv_errmsg_printf(in->why, "\"run_id\" must have 1 to %d bytes",
                             STORE_MAX_RUN_ID_BYTES);
        else if (type == NULL || strcmp(type, "metric") == 0)
            rc = cli__ingest_metric(in, o, run_id);
        else if (strcmp(type, "run") == 0)
            rc = cli__ingest_run(in, o, run_id, 1);
        else if (strcmp(type, "log") == 0)
            rc = cli__ingest_log(in, o, run_id);
        else if (strcmp(type, "artifact") == 0)
            rc = cli__ingest_artifact(in, o, run_id);
        else
            rv_errmsg_printf(in->why,
                             "unknown \"type\" '%.32s' (run, "
                             "metric, log, artifact)",
                             type);
    }
    json_decref(o);
    return rc;
}

/* Send what is pending; the exit code for its failure (0 if none). */
static int
cli__ingest_flush(struct cli_ingest *in)
{
    int rc = cli__loglines_flush(in->logs, in->b);
    if (rc == RV_OK)
        rc = rvc_batcher_flush(in->b);
    if (rc == RV_OK)
        return RV_EXIT_OK;
    fprintf(stderr, "runvault ingest: %s\n", rvc_batcher_errmsg(in->b));
    return cli__exit_for_data(rc);
}

static void
cli__ingest_report(struct cli_ingest *in, FILE *f, const char *end)
{
    const struct rvc_batch_stats *st = rvc_batcher_stats(in->b);
    fprintf(f,
            "ingest: %llu lines, %llu runs, %llu points (%llu acked), "
            "%llu log lines, %llu artifacts, %llu writes%s",
            (unsigned long long)in->n_lines, (unsigned long long)in->n_runs,
            (unsigned long long)in->n_points, (unsigned long long)st->n_points,
            (unsigned long long)in->n_log_lines,
            (unsigned long long)in->n_artifacts,
            (unsigned long long)st->n_writes, end);
}

/* Lines are sent in order as they are read. At a bad line everything
 * before it is sent (and acknowledged) and nothing from it on: the exit
 * code is RV_EXIT_DATA and the message names the line, so the input can be
 * fixed and resumed from that line. */
static int
cli__ingest(struct cli *cl, const struct cli_args *a)
{
    const char *path = a->n_pos > 0 ? a->pos[0] : "-";
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "runvault ingest: %s: %s\n", path, strerror(errno));
        return RV_EXIT_USAGE;
    }
    struct cli_ingest in;
    memset(&in, 0, sizeof in);
    in.cl = cl;
    in.logs = calloc(1, sizeof *in.logs);
    if (in.logs == NULL || rvc_batcher_open(&in.b, cl->c, 0, 0) != RV_OK) {
        free(in.logs);
        if (f != stdin)
            fclose(f);
        fprintf(stderr, "runvault ingest: out of memory\n");
        return RV_EXIT_FAILURE;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int code = RV_EXIT_OK;
    uint64_t last_ms = 0;
    while (code == RV_EXIT_OK && (len = getline(&line, &cap, f)) >= 0) {
        size_t n = (size_t)len;
        in.n_lines++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        size_t lead = strspn(line, " \t");
        if (lead >= n)
            continue;
        uint64_t failed = rvc_batcher_stats(in.b)->failed_write;
        int rc = n > CLI_MAX_LINE_BYTES ? RV_ETOOBIG
                                        : cli__ingest_line(&in, line, n);
        if (rc == RV_ETOOBIG)
            rv_errmsg_printf(in.why, "longer than %u bytes",
                             CLI_MAX_LINE_BYTES);
        if (rvc_batcher_stats(in.b)->failed_write != failed) {
            /* A write this line set off failed: not the line's fault. */
            fprintf(stderr, "runvault ingest: %s\n", rvc_batcher_errmsg(in.b));
            code = cli__exit_for_data(rc);
        } else if (rc == RV_EINVAL || rc == RV_ETOOBIG) {
            code = cli__ingest_flush(&in);
            fprintf(stderr, "runvault ingest: %s:%llu: %s\n", path,
                    (unsigned long long)in.n_lines, in.why);
            code = code != RV_EXIT_OK ? code : RV_EXIT_DATA;
        } else if (rc != RV_OK) {
            fprintf(stderr, "runvault ingest: %s:%llu: %s\n", path,
                    (unsigned long long)in.n_lines, in.cl->errmsg);
            code = cli__exit_for(rc);
        }
        if (cl->is_tty && rv_clock_mono_ms() >= last_ms + CLI_PROGRESS_MS) {
            last_ms = rv_clock_mono_ms();
            cli__ingest_report(&in, stderr, "\r");
        }
    }
    if (code == RV_EXIT_OK && ferror(f)) {
        fprintf(stderr, "runvault ingest: %s: %s\n", path, strerror(errno));
        code = RV_EXIT_FAILURE;
    }
    if (code == RV_EXIT_OK)
        code = cli__ingest_flush(&in);
    if (cl->is_tty)
        fputc('\n', stderr);
    cli__ingest_report(&in, code == RV_EXIT_OK ? stdout : stderr, "\n");
    free(line);
    if (f != stdin)
        fclose(f);
    cli__loglines_clear(in.logs);
    free(in.logs);
    cli__set_free(&in.runs);
    rvc_batcher_close(in.b);
    return code;
}

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
    char full[3 * STORE_MAX_ARTIFACT_PATH_BYTES + 1];
    size_t k = 0, cut = 0;
    if (n > STORE_MAX_ARTIFACT_PATH_BYTES)
        n = STORE_MAX_ARTIFACT_PATH_BYTES;
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
        char whole[STORE_MAX_ARTIFACT_PATH_BYTES + 1];
        snprintf(whole, sizeof whole, "%.*s", (int)n, s);
        snprintf(out, CLI_NAME_BYTES, "%.*s~%016llx", (int)cut, full,
                 (unsigned long long)cli__hash(whole, ""));
    }
}

/* dir/enc(part)/enc(part)... of an artifact path; -1 if too long. */
static int
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

struct cli_xstats {
    uint64_t n_runs, n_points, n_log_lines, n_artifacts, n_skipped;
    uint64_t n_duplicates;
};

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
static int
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

static int
cli__export_meta(struct cli *cl, const char *dir, const Rv__RunInfo *r,
                 const Rv__Response *arts)
{
    char path[CLI_PATH_BYTES], hex[2 * SHA256_DIGEST_SIZE + 1];
    FILE *f = cli__open_out(cl, path, dir, "meta.json");
    if (f == NULL)
        return RV_EIO;
    fprintf(f, "{\"run_id\":");
    cli__json_str(f, r->run_id);
    fprintf(f, ",\"team\":");
    cli__json_str(f, r->team);
    fprintf(f, ",\"project\":");
    cli__json_str(f, r->project);
    fprintf(f, ",\"experiment\":");
    cli__json_str(f, r->experiment);
    fprintf(f, ",\"name\":");
    cli__json_str(f, r->name);
    fprintf(f, ",\"user\":");
    cli__json_str(f, r->user);
    fprintf(f, ",\"params\":");
    cli__json_kvs(f, r->params, r->n_params);
    fprintf(f, ",\"tags\":");
    cli__json_kvs(f, r->tags, r->n_tags);
    fprintf(f, ",\"artifacts\":[");
    for (size_t i = 0, k = 0; arts != NULL && i < arts->n_artifacts; i++) {
        const Rv__ArtifactInfo *a = arts->artifacts[i];
        if (!a->is_complete)
            continue;
        cli__hex(a->sha256.data,
                 a->sha256.len < SHA256_DIGEST_SIZE ? a->sha256.len
                                                    : SHA256_DIGEST_SIZE,
                 hex);
        fprintf(f, "%s{\"path\":", k++ ? "," : "");
        cli__json_str(f, a->path);
        fprintf(f, ",\"content_type\":");
        cli__json_str(f, a->content_type);
        fprintf(f, ",\"size\":%llu,\"sha256\":\"%s\"}",
                (unsigned long long)a->size, hex);
    }
    fprintf(f, "]}\n");
    int rc = cli__close_file(cl, f, path);
    if (rc != RV_OK)
        return rc;
    if ((f = cli__open_out(cl, path, dir, "status.json")) == NULL)
        return RV_EIO;
    fprintf(f, "{\"status\":");
    cli__json_str(f, proto_status_name(r->status));
    fprintf(f, ",\"created_at\":");
    cli__json_time(f, r->has_created_at_ms, r->created_at_ms);
    fprintf(f, ",\"ended_at\":");
    cli__json_time(f, r->has_ended_at_ms, r->ended_at_ms);
    fprintf(f, "}\n");
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
            fprintf(f, "{\"key\":");
            cli__json_str(f, m->key);
            fprintf(f, ",\"context\":");
            cli__json_str(f, m->context);
            fprintf(f, ",\"step\":%lld,\"timestamp\":%lld,\"value\":",
                    (long long)pts.steps[k], (long long)pts.ts[k]);
            cli__json_double(f, pts.values[k]);
            fprintf(f, "}\n");
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
        Rv__Request req = RV__REQUEST__INIT;
        Rv__LogsRequest l = RV__LOGS_REQUEST__INIT;
        Rv__Response *resp;
        l.run_id = (char *)run_id;
        l.has_from_line = l.has_max_lines = 1;
        l.from_line = next;
        l.max_lines = CLI_LOG_PAGE;
        req.body_case = RV__REQUEST__BODY_LOGS;
        req.logs = &l;
        rc = cli__rpc(cl, &req, &resp);
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

static void
cli__strs_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

static int
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
            snprintf(im.why, sizeof im.why, "%s: %s", dir,
                     rvc_batcher_errmsg(im.b));
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

static int
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

/* ---- Dispatch ----------------------------------------------------------- */

static const struct cli_command cli_commands[] = {
    {"ls",
     CLI_READING | CLI_BIT(O_PROJECT) | CLI_BIT(O_EXPERIMENT) |
         CLI_BIT(O_STATUS) | CLI_BIT(O_TAG) | CLI_BIT(O_PARAM) |
         CLI_BIT(O_DAY) | CLI_BIT(O_FILTER) | CLI_BIT(O_ORDER_BY) |
         CLI_BIT(O_LIMIT) | CLI_BIT(O_JSON),
     0, 0, cli__ls,
     "usage: runvault ls [--project P] [--experiment E] [--status S]\n"
     "           [--tag K=V]... [--param K=V]... [--day YYYY-MM-DD]\n"
     "           [--filter EXPR] [--order-by EXPR] [--limit N] [--json]\n"
     "           [--consistency stale|leader|linearizable]\n"
     "List runs, newest first unless --order-by says otherwise. The flags\n"
     "are joined with 'and' into one filter of the MLflow grammar (--day:\n"
     "created on that UTC day). --limit N rows (default 50, 0: all).\n"},
    {"show", CLI_READING | CLI_BIT(O_JSON), 1, 1, cli__show,
     "usage: runvault show RUN_ID [--json]\n"
     "A run's attributes, params, tags and metric summary.\n"},
    {"metrics",
     CLI_READING | CLI_BIT(O_KEY) | CLI_BIT(O_CONTEXT) | CLI_BIT(O_DOWNSAMPLE) |
         CLI_BIT(O_MIN_STEP) | CLI_BIT(O_MAX_STEP) | CLI_BIT(O_JSON) |
         CLI_BIT(O_CSV),
     1, 1, cli__metrics,
     "usage: runvault metrics RUN_ID --key K [--context C] [--downsample N]\n"
     "           [--min-step A] [--max-step B] [--json | --csv]\n"
     "The points of one series in step order; --csv prints\n"
     "step,timestamp,value (NaN, Infinity and -Infinity as such).\n"},
    {"logs", CLI_READING | CLI_BIT(O_FOLLOW) | CLI_BIT(O_FROM), 1, 1, cli__logs,
     "usage: runvault logs RUN_ID [--follow] [--from N]\n"
     "A run's log lines from line N (0-based) on. --follow polls for new\n"
     "ones until SIGINT or SIGTERM, or until the run is no longer RUNNING\n"
     "and no new lines came (exit 0 either way).\n"},
    {"ingest", CLI_COMMON, 0, 1, cli__ingest,
     "usage: runvault ingest [FILE | -]\n"
     "JSON lines from FILE or stdin, one object per line:\n"
     "  {\"run_id\",\"key\",\"step\",\"value\",\"timestamp\"?,"
     "\"context\"?,\n"
     "   \"project\"?,\"experiment\"?,\"name\"?}          a metric point\n"
     "  {\"type\":\"run\",\"run_id\",\"project\",\"experiment\",\"name\"?,\n"
     "   \"params\"?,\"tags\"?,\"created_at\"?,\"status\"?,\"ended_at\"?}\n"
     "  {\"type\":\"log\",\"run_id\",\"text\",\"stream\"?,\"timestamp\"?}\n"
     "  {\"type\":\"artifact\",\"run_id\",\"path\",\"file\","
     "\"content_type\"?}\n"
     "A run line creates the run (or resumes it); a point of a run not yet\n"
     "seen needs project and experiment unless the run exists. Values may\n"
     "be \"NaN\", \"Infinity\", \"-Infinity\"; timestamps default to now.\n"
     "Sent in batches, in order. At a bad line, everything before it is\n"
     "sent and acknowledged, nothing from it on, and the exit code is 10.\n"},
    {"export",
     CLI_READING | CLI_BIT(O_OUT) | CLI_BIT(O_PROJECT) | CLI_BIT(O_EXPERIMENT),
     0, 0, cli__export,
     "usage: runvault export --out DIR [--project P] [--experiment E]\n"
     "Write runs to DIR/PROJECT/EXPERIMENT/RUN_ID/{meta.json,status.json,\n"
     "events.jsonl,logs.txt,media/}.\n"},
    {"import", CLI_COMMON, 1, 1, cli__import,
     "usage: runvault import DIR\n"
     "Re-create the runs of an export tree with their run ids, metrics,\n"
     "logs and artifacts. Idempotent: importing the same tree again into\n"
     "the same cluster applies nothing twice.\n"},
};

#define CLI_N_COMMANDS (sizeof cli_commands / sizeof cli_commands[0])

static const struct cli_command *
cli__command(const char *name)
{
    for (size_t i = 0; i < CLI_N_COMMANDS; i++)
        if (strcmp(cli_commands[i].name, name) == 0)
            return &cli_commands[i];
    return NULL;
}

int
cli_is_command(const char *name)
{
    return cli__command(name) != NULL;
}

static int
cli__usage(const struct cli_command *cmd, FILE *f)
{
    fprintf(f, "%s%s", cmd->usage, cli_exit_text);
    return RV_EXIT_USAGE;
}

/* Parse argv[1, argc) against cmd's flags: "--flag VALUE" or
 * "--flag=VALUE". -1 (after a message) on a bad argument, 1 for --help. */
static int
cli__parse(const struct cli_command *cmd, int argc, char **argv,
           struct cli_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return 1;
        if (arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->n_pos == cmd->max_pos) {
                fprintf(stderr, "runvault %s: unexpected argument '%s'\n",
                        cmd->name, arg);
                return -1;
            }
            a->pos[a->n_pos++] = arg;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        int o = 0;
        while (o < O_COUNT && (strlen(cli_flags[o].name) != n ||
                               memcmp(cli_flags[o].name, arg, n) != 0))
            o++;
        if (o == O_COUNT || !(cmd->flags & CLI_BIT(o))) {
            fprintf(stderr, "runvault %s: unknown flag '%.*s'\n", cmd->name,
                    (int)n, arg);
            return -1;
        }
        const char *v = "1";
        if (cli_flags[o].has_value) {
            if (eq == NULL && i + 1 >= argc) {
                fprintf(stderr, "runvault %s: %s needs a value\n", cmd->name,
                        arg);
                return -1;
            }
            v = eq ? eq + 1 : argv[++i];
        } else if (eq != NULL) {
            fprintf(stderr, "runvault %s: %.*s takes no value\n", cmd->name,
                    (int)n, arg);
            return -1;
        }
        if (o == O_TAG || o == O_PARAM) {
            size_t *k = o == O_TAG ? &a->n_tags : &a->n_params;
            if (*k == CLI_MAX_MULTI) {
                fprintf(stderr, "runvault %s: at most %d of %s\n", cmd->name,
                        CLI_MAX_MULTI, cli_flags[o].name);
                return -1;
            }
            (o == O_TAG ? a->tags : a->params)[(*k)++] = v;
        }
        a->v[o] = v;
    }
    if (a->n_pos < cmd->min_pos) {
        fprintf(stderr, "runvault %s: missing argument\n", cmd->name);
        return -1;
    }
    return 0;
}

/* Endpoint, timeouts and read options into cl; -1 after a message. */
static int
cli__setup(struct cli *cl, const struct cli_args *a)
{
    const char *env = getenv("RUNVAULT_ENDPOINT");
    const char *ep = a->v[O_ENDPOINT] != NULL        ? a->v[O_ENDPOINT]
                     : env != NULL && env[0] != '\0' ? env
                                                     : NODE_DEFAULT_ENDPOINT;
    uint64_t total = CLI_DEFAULT_TIMEOUT;
    if (a->v[O_TIMEOUT] != NULL &&
        (cli__parse_u64(a->v[O_TIMEOUT], &total) != 0 || total == 0 ||
         total > 3600000)) {
        fprintf(stderr, "runvault %s: --timeout-ms wants 1..3600000\n",
                cl->name);
        return -1;
    }
    rv__read_options__init(&cl->read);
    if (a->v[O_CONSISTENCY] != NULL) {
        static const char *const names[] = {"stale", "leader", "linearizable"};
        static const Rv__Consistency values[] = {RV__CONSISTENCY__STALE,
                                                 RV__CONSISTENCY__LEADER,
                                                 RV__CONSISTENCY__LINEARIZABLE};
        size_t i = 0;
        while (i < 3 && strcmp(names[i], a->v[O_CONSISTENCY]) != 0)
            i++;
        if (i == 3) {
            fprintf(stderr,
                    "runvault %s: --consistency is stale, leader or "
                    "linearizable\n",
                    cl->name);
            return -1;
        }
        cl->read.has_consistency = 1;
        cl->read.consistency = values[i];
    }
    char errmsg[RV_ERRMSG_SIZE] = "";
    if (rvc_open(&cl->c, ep, errmsg) != RV_OK) {
        fprintf(stderr, "runvault %s: --endpoint: %s\n", cl->name, errmsg);
        return -1;
    }
    unsigned t = (unsigned)total;
    rvc_set_timeouts(cl->c, t < RVC_DEFAULT_ATTEMPT ? t : RVC_DEFAULT_ATTEMPT,
                     t);
    cl->is_tty = isatty(STDERR_FILENO);
    return 0;
}

int
cli_main(int argc, char **argv)
{
    const struct cli_command *cmd = cli__command(argv[0]);
    struct cli_args a;
    struct cli cl;
    if (cmd == NULL)
        return RV_EXIT_USAGE;
    int rc = cli__parse(cmd, argc, argv, &a);
    if (rc == 1) {
        fprintf(stdout, "%s%s", cmd->usage, cli_exit_text);
        return RV_EXIT_OK;
    }
    if (rc != 0)
        return cli__usage(cmd, stderr);
    memset(&cl, 0, sizeof cl);
    cl.name = cmd->name;
    if (cli__setup(&cl, &a) != 0)
        return RV_EXIT_USAGE;
    int code = cmd->run(&cl, &a);
    fflush(stdout);
    rvc_close(cl.c);
    return code;
}
