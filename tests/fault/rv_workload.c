/* rv_workload: clients for the fault suite that record a history.
 *
 * With RUNVAULT_TOKEN set, every request carries that token; with
 * RUNVAULT_TLS_CA, tls+tcp:// endpoints are verified against that CA.
 * Each of --procs threads is one client with one request outstanding at a
 * time (its own rvc, its own client id and in-order seqs) and writes one
 * JSON line per completed operation to --out:
 *
 *   {"proc":P,"op":N,"wl":W,"f":F,"key":K,"value":V,"call":T0,"ret":T1,
 *    "type":"ok|fail|info","consistency":C,"index":I}
 *
 * with CLOCK_MONOTONIC nanoseconds (one kernel, so comparable across
 * processes and with the nemesis log). Workloads, all over native RPC:
 *  - register: a tag of the workload's run is one register; "write" sets it
 *    to a unique string, "read" gets the run and reports the tag or null;
 *  - append:   a metric series of that run, every point at step 0, so the
 *    series is in log order; "append" logs one unique integer, "read" gets
 *    the history (the list of values);
 *  - set:      "add" creates a run with a unique id in the set's
 *    experiment; the final "read_all" lists them.
 * Keys rotate every --rotate-s seconds (short per-key histories keep the
 * linearizability search small).
 *
 * A write is "ok" when acknowledged, "fail" when the node refused it for a
 * reason that means it never applied (validation), and "info" otherwise
 * (timeout, lost connection, outcome unknown): it may have applied. A read
 * is "ok" or "fail".
 *
 * After --seconds the workload stops, then (with --final) waits for a line
 * on stdin (the harness heals the cluster first; EOF or --final-wait-s
 * seconds also end the wait) and reads every key it used once more,
 * linearizably and with long retries: the "final" reads the checkers
 * compare every acknowledged write against. */
#include "base/clock.h"
#include "base/err.h"
#include "proto/runvault.pb-c.h"
#include "rpc/client/client.h"
#include "rpc/client/tls.h"
#include "tests/lib/writer.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WL_MAX_PROCS 64
#define WL_MAX_KEYS  4096 /* Distinct keys one process may touch. */
#define WL_KEY_BYTES 48

enum wl_kind { WL_REGISTER, WL_APPEND, WL_SET };

static const char *const wl_names[] = {"register", "append", "set"};

static const char *const consistency_names[] = {"default", "stale", "leader",
                                                "linearizable"};

struct wl_opts {
    const char *endpoints, *out, *name;
    enum wl_kind kind;
    int procs, proc_base;
    unsigned seconds, keys, rotate_s, pause_ms;
    unsigned attempt_ms, total_ms;
    double read_ratio;
    int consistency; /* Rv__Consistency */
    int durability;  /* Rv__Durability */
    int is_final;
    unsigned final_wait_s;
    const char *token;   /* RUNVAULT_TOKEN, or NULL. */
    struct rvc_tls *tls; /* RUNVAULT_TLS_CA: tls+tcp:// endpoints. */
};

static struct wl_opts opt = {
    .name = "w",
    .procs = 4,
    .seconds = 10,
    .keys = 4,
    .rotate_s = 5,
    .attempt_ms = 1000,
    .total_ms = 4000,
    .read_ratio = 0.5,
    .consistency = RV__CONSISTENCY__LINEARIZABLE,
    .final_wait_s = 120,
};

static FILE *out_file;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t t_start_ns;
static char run_id[96], set_experiment[96];

/* Keys used, for the final reads (shared by all threads). */
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static char used_keys[WL_MAX_KEYS][WL_KEY_BYTES];
static size_t n_used_keys;

static void
key_note(const char *key)
{
    pthread_mutex_lock(&keys_lock);
    size_t i = 0;
    while (i < n_used_keys && strcmp(used_keys[i], key) != 0)
        i++;
    if (i == n_used_keys && n_used_keys < WL_MAX_KEYS)
        snprintf(used_keys[n_used_keys++], WL_KEY_BYTES, "%s", key);
    pthread_mutex_unlock(&keys_lock);
}

/* ---- A history line ------------------------------------------------- */

struct line {
    char *p;
    size_t n, cap;
};

static void line_add(struct line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
line_add(struct line *l, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(l->p + l->n, l->cap - l->n, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if ((size_t)k < l->cap - l->n) {
            l->n += (size_t)k;
            return;
        }
        size_t cap = (l->cap + (size_t)k + 1) * 2;
        char *p = realloc(l->p, cap);
        if (p == NULL)
            abort();
        l->p = p;
        l->cap = cap;
    }
}

struct op {
    int proc;
    uint64_t no;
    const char *f;
    const char *key;
    uint64_t call_ns, ret_ns;
    const char *type;
    int consistency; /* -1: not a read */
    uint64_t index;
    int code;
    int is_final;
};

/* Strings written here are our own (keys, ids, values): [A-Za-z0-9:_-]. */
static void
op_emit(const struct op *o, const char *value_json)
{
    struct line l = {malloc(256), 0, 256};
    if (l.p == NULL)
        abort();
    line_add(&l,
             "{\"proc\":%d,\"op\":%" PRIu64 ",\"wl\":\"%s\",\"f\":\"%s\","
             "\"key\":\"%s\",\"value\":%s,\"call\":%" PRIu64 ",\"ret\":%" PRIu64
             ",\"type\":\"%s\",\"code\":\"%s\"",
             o->proc, o->no, wl_names[opt.kind], o->f, o->key, value_json,
             o->call_ns, o->ret_ns, o->type, rv_strerror(o->code));
    if (o->consistency >= 0)
        line_add(&l, ",\"consistency\":\"%s\"",
                 consistency_names[o->consistency]);
    if (o->index != 0)
        line_add(&l, ",\"index\":%" PRIu64, o->index);
    if (o->is_final)
        line_add(&l, ",\"final\":true");
    line_add(&l, "}\n");
    pthread_mutex_lock(&out_lock);
    fwrite(l.p, 1, l.n, out_file);
    fflush(out_file);
    pthread_mutex_unlock(&out_lock);
    free(l.p);
}

/* ---- Requests ------------------------------------------------------- */

/* A write's outcome: ok, fail (never applied) or info (may have). */
static const char *
write_type(int code)
{
    switch (code) {
    case RV_OK:
        return "ok";
    case RV_EINVAL:
    case RV_ENOTFOUND:
    case RV_ETOOBIG:
    case RV_EMALFORMED:
    case RV_EPARSE:
    case RV_EQUOTA:
    case RV_ECONFLICT:
        return "fail";
    default:
        return "info";
    }
}

struct client {
    struct rvc *rvc;
    uint64_t client_id, seq;
};

static int
client_open(struct client *c, int proc)
{
    char errmsg[RV_ERRMSG_SIZE];
    if (rvc_open(&c->rvc, opt.endpoints, errmsg) != RV_OK) {
        fprintf(stderr, "rv_workload: %s\n", errmsg);
        return -1;
    }
    rvc_set_tls(c->rvc, opt.tls);
    rvc_set_timeouts(c->rvc, opt.attempt_ms, opt.total_ms);
    /* Unique across workload processes and restarts of the harness. */
    c->client_id =
        (rv_clock_wall_ms() << 20) ^ ((uint64_t)getpid() << 8) ^ (uint64_t)proc;
    c->seq = 0;
    return 0;
}

/* Send one command; the command's code (or the call's) and its index. */
static int
client_write(struct client *c, Rv__Command *cmd, uint64_t *index)
{
    cmd->has_client_id = cmd->has_seq = 1;
    cmd->client_id = c->client_id;
    cmd->seq = ++c->seq;
    return testwriter_send(c->rvc, cmd, opt.durability, index);
}

static int
client_read(struct client *c, Rv__Request *req, int consistency,
            Rv__Response **resp)
{
    Rv__ReadOptions ro = RV__READ_OPTIONS__INIT;
    char errmsg[RV_ERRMSG_SIZE];
    ro.has_consistency = 1;
    ro.consistency = (Rv__Consistency)consistency;
    req->read = &ro;
    req->token = (char *)opt.token;
    *resp = NULL;
    int rc = rvc_call(c->rvc, req, resp, errmsg);
    req->read = NULL;
    if (rc == RV_OK && (*resp)->code != RV_OK) {
        rc = (int)(*resp)->code;
        rvc_response_free(*resp);
        *resp = NULL;
    }
    return rc;
}

/* The workload's run (registers and series live in it). */
static int
create_run(struct client *c)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunCreate rc;
    testwriter_run_create(&cmd, &rc, run_id, "fault", opt.name);
    rc.created_at_ms = (int64_t)rv_clock_wall_ms();
    uint64_t deadline = rv_clock_mono_ms() + 60000, index;
    while (client_write(c, &cmd, &index) != RV_OK) {
        if (rv_clock_mono_ms() > deadline)
            return -1;
        rv_clock_sleep_ms(200);
    }
    return 0;
}

/* ---- Operations ----------------------------------------------------- */

static void
do_register_write(struct client *c, struct op *o, const char *value)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__KV kv = RV__KV__INIT, *kvs[1] = {&kv};
    kv.key = (char *)o->key;
    kv.value = (char *)value;
    lb.run_id = run_id;
    lb.n_tags = 1;
    lb.tags = kvs;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    o->f = "write";
    o->call_ns = rv_clock_mono_ns();
    o->code = client_write(c, &cmd, &o->index);
    o->ret_ns = rv_clock_mono_ns();
    o->type = write_type(o->code);
    char json[128];
    snprintf(json, sizeof json, "\"%s\"", value);
    op_emit(o, json);
}

static void
do_register_read(struct client *c, struct op *o)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest g = RV__GET_RUN_REQUEST__INIT;
    Rv__Response *resp;
    g.run_id = run_id;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &g;
    o->f = "read";
    o->call_ns = rv_clock_mono_ns();
    o->code = client_read(c, &req, o->consistency, &resp);
    o->ret_ns = rv_clock_mono_ns();
    o->type = o->code == RV_OK && resp->run != NULL ? "ok" : "fail";
    char json[128] = "null";
    if (resp != NULL && resp->run != NULL) {
        o->index = resp->applied_index;
        for (size_t i = 0; i < resp->run->n_tags; i++)
            if (strcmp(resp->run->tags[i]->key, o->key) == 0)
                snprintf(json, sizeof json, "\"%s\"",
                         resp->run->tags[i]->value);
    }
    rvc_response_free(resp);
    op_emit(o, json);
}

static void
do_append(struct client *c, struct op *o, int64_t value)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__LogBatch lb;
    Rv__Metrics m;
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    if (proto_metrics_add(&mb, o->key, NULL, 0, 1000, (double)value, NULL) !=
        RV_OK)
        abort();
    testwriter_log_batch(&cmd, &lb, &m, run_id, &mb);
    o->f = "append";
    o->call_ns = rv_clock_mono_ns();
    o->code = client_write(c, &cmd, &o->index);
    o->ret_ns = rv_clock_mono_ns();
    proto_metrics_free(&mb);
    o->type = write_type(o->code);
    char json[32];
    snprintf(json, sizeof json, "%" PRId64, value);
    op_emit(o, json);
}

static void
do_series_read(struct client *c, struct op *o)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
    Rv__Response *resp;
    h.run_id = run_id;
    h.key = (char *)o->key;
    req.body_case = RV__REQUEST__BODY_HISTORY;
    req.history = &h;
    o->f = "read";
    o->call_ns = rv_clock_mono_ns();
    o->code = client_read(c, &req, o->consistency, &resp);
    o->ret_ns = rv_clock_mono_ns();
    /* A series never written yet is not found: the empty list. */
    o->type = o->code == RV_OK || o->code == RV_ENOTFOUND ? "ok" : "fail";
    struct line l = {malloc(64), 0, 64};
    if (l.p == NULL)
        abort();
    line_add(&l, "[");
    for (size_t i = 0; resp != NULL && i < resp->n_values; i++)
        line_add(&l, "%s%" PRId64, i ? "," : "", (int64_t)resp->values[i]);
    line_add(&l, "]");
    if (resp != NULL)
        o->index = resp->applied_index;
    rvc_response_free(resp);
    op_emit(o, l.p);
    free(l.p);
}

static void
do_set_add(struct client *c, struct op *o, const char *id)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunCreate rc = RV__RUN_CREATE__INIT;
    rc.run_id = (char *)id;
    rc.project = "fault";
    rc.experiment = set_experiment;
    rc.created_at_ms = (int64_t)rv_clock_wall_ms();
    rc.has_resume = 1;
    rc.resume = RV__RESUME__RESUME_NEVER;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &rc;
    o->f = "add";
    o->call_ns = rv_clock_mono_ns();
    o->code = client_write(c, &cmd, &o->index);
    o->ret_ns = rv_clock_mono_ns();
    o->type = write_type(o->code);
    char json[128];
    snprintf(json, sizeof json, "\"%s\"", id);
    op_emit(o, json);
}

/* Every run of the set's experiment, page by page. */
static void
do_set_read_all(struct client *c, struct op *o)
{
    struct line l = {malloc(64), 0, 64};
    char token[256] = "";
    int n = 0;
    if (l.p == NULL)
        abort();
    line_add(&l, "[");
    o->f = "read_all";
    o->call_ns = rv_clock_mono_ns();
    o->code = RV_OK;
    for (int page = 0; page < 100000 && o->code == RV_OK; page++) {
        Rv__Request req = RV__REQUEST__INIT;
        Rv__ListRunsRequest lr = RV__LIST_RUNS_REQUEST__INIT;
        Rv__Response *resp;
        lr.project = "fault";
        lr.experiment = set_experiment;
        lr.has_per_page = 1;
        lr.per_page = 1000;
        lr.page_token = token[0] ? token : NULL;
        req.body_case = RV__REQUEST__BODY_LIST_RUNS;
        req.list_runs = &lr;
        o->code = client_read(c, &req, RV__CONSISTENCY__LINEARIZABLE, &resp);
        if (o->code != RV_OK)
            break;
        for (size_t i = 0; i < resp->n_runs; i++)
            line_add(&l, "%s\"%s\"", n++ ? "," : "", resp->runs[i]->run_id);
        const char *next = resp->next_page_token;
        snprintf(token, sizeof token, "%s", next != NULL ? next : "");
        rvc_response_free(resp);
        if (token[0] == '\0')
            break;
    }
    line_add(&l, "]");
    o->ret_ns = rv_clock_mono_ns();
    o->type = o->code == RV_OK ? "ok" : "fail";
    op_emit(o, l.p);
    free(l.p);
}

/* ---- Threads -------------------------------------------------------- */

struct proc {
    int no; /* Global proc id. */
    pthread_t thread;
    uint64_t n_ops, n_ok, n_info, n_fail;
};

static atomic_int stopping;

static void
key_name(char *out, size_t size, uint64_t epoch, unsigned k)
{
    snprintf(out, size, "%c%s_%" PRIu64 "_%u",
             opt.kind == WL_REGISTER ? 'r' : 'a', opt.name, epoch, k);
}

static void
count(struct proc *p, const struct op *o)
{
    p->n_ops++;
    if (strcmp(o->type, "ok") == 0)
        p->n_ok++;
    else if (strcmp(o->type, "info") == 0)
        p->n_info++;
    else
        p->n_fail++;
}

static void *
proc_main(void *arg)
{
    struct proc *p = arg;
    struct client c;
    struct rv_rng rng;
    if (client_open(&c, p->no) != 0)
        return NULL;
    rv_rng_seed(&rng, c.client_id);
    uint64_t end_ns = t_start_ns + (uint64_t)opt.seconds * 1000000000u;
    for (uint64_t no = 1; !atomic_load(&stopping); no++) {
        uint64_t now = rv_clock_mono_ns();
        if (now >= end_ns)
            break;
        struct op o = {.proc = p->no, .no = no, .consistency = -1};
        char key[WL_KEY_BYTES], value[96];
        uint64_t epoch = (now - t_start_ns) / 1000000000u / opt.rotate_s;
        key_name(key, sizeof key, epoch,
                 (unsigned)rv_rng_below(&rng, opt.keys));
        o.key = key;
        int is_read = rv_rng_double(&rng) < opt.read_ratio;
        switch (opt.kind) {
        case WL_REGISTER:
            key_note(key);
            if (is_read) {
                o.consistency = opt.consistency;
                do_register_read(&c, &o);
            } else {
                snprintf(value, sizeof value, "%s:%d-%" PRIu64, opt.name, p->no,
                         no);
                do_register_write(&c, &o, value);
            }
            break;
        case WL_APPEND:
            key_note(key);
            if (is_read) {
                o.consistency = opt.consistency;
                do_series_read(&c, &o);
            } else {
                do_append(&c, &o, (int64_t)p->no * 1000000000 + (int64_t)no);
            }
            break;
        case WL_SET:
            o.key = set_experiment;
            snprintf(value, sizeof value, "s-%s-%d-%" PRIu64, opt.name, p->no,
                     no);
            do_set_add(&c, &o, value);
            break;
        }
        count(p, &o);
        if (opt.pause_ms > 0)
            rv_clock_sleep_ms(opt.pause_ms);
    }
    rvc_close(c.rvc);
    return NULL;
}

/* The final reads: every key once, linearizable, retried for a while. */
static int
final_reads(int proc)
{
    struct client c;
    if (client_open(&c, proc) != 0)
        return -1;
    rvc_set_timeouts(c.rvc, 2000, 20000);
    int n_failed = 0;
    size_t n_keys = opt.kind == WL_SET ? 1 : n_used_keys;
    for (size_t i = 0; i < n_keys; i++) {
        struct op o = {.proc = proc,
                       .no = i + 1,
                       .consistency = RV__CONSISTENCY__LINEARIZABLE,
                       .is_final = 1};
        for (int attempt = 0; attempt < 6; attempt++) {
            o.key = opt.kind == WL_SET ? set_experiment : used_keys[i];
            if (opt.kind == WL_SET) {
                o.consistency = -1;
                do_set_read_all(&c, &o);
            } else if (opt.kind == WL_APPEND) {
                do_series_read(&c, &o);
            } else {
                do_register_read(&c, &o);
            }
            if (strcmp(o.type, "ok") == 0)
                break;
            rv_clock_sleep_ms(1000);
        }
        n_failed += strcmp(o.type, "ok") != 0;
    }
    rvc_close(c.rvc);
    return n_failed;
}

/* Wait for one line on stdin (or EOF, or the bound). */
static void
wait_for_go(void)
{
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    uint64_t deadline = rv_clock_mono_ms() + (uint64_t)opt.final_wait_s * 1000;
    char buf[64];
    while (rv_clock_mono_ms() < deadline) {
        int r = poll(&pfd, 1, 200);
        if (r < 0 && errno != EINTR)
            return;
        if (r > 0) {
            ssize_t k = read(0, buf, sizeof buf);
            if (k <= 0 || memchr(buf, '\n', (size_t)k) != NULL)
                return;
        }
    }
}

/* ---- Main ------------------------------------------------------------ */

static void
usage(void)
{
    fprintf(stderr,
            "usage: rv_workload --endpoints LIST --workload "
            "register|append|set --out FILE\n"
            "  [--name NAME] [--procs N] [--proc-base N] [--seconds S]\n"
            "  [--keys K] [--rotate-s S] [--read-ratio R] [--pause-ms MS]\n"
            "  [--consistency stale|leader|linearizable]\n"
            "  [--durability memory|buffered|strict]\n"
            "  [--attempt-ms MS] [--total-ms MS] [--final] "
            "[--final-wait-s S]\n");
    exit(1);
}

static long
num_arg(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi)
        usage();
    return v;
}

static int
name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 24)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* Read the command line into opt; usage() (exits) on anything wrong. */
static void
wl_args_parse(int argc, char **argv)
{
    int have_kind = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--final") == 0) {
            opt.is_final = 1;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--endpoints") == 0) {
            opt.endpoints = v;
        } else if (strcmp(a, "--out") == 0) {
            opt.out = v;
        } else if (strcmp(a, "--name") == 0) {
            opt.name = v;
        } else if (strcmp(a, "--workload") == 0) {
            have_kind = 1;
            if (strcmp(v, "register") == 0)
                opt.kind = WL_REGISTER;
            else if (strcmp(v, "append") == 0)
                opt.kind = WL_APPEND;
            else if (strcmp(v, "set") == 0)
                opt.kind = WL_SET;
            else
                usage();
        } else if (strcmp(a, "--procs") == 0) {
            opt.procs = (int)num_arg(v, 1, WL_MAX_PROCS);
        } else if (strcmp(a, "--proc-base") == 0) {
            opt.proc_base = (int)num_arg(v, 0, 1000000);
        } else if (strcmp(a, "--seconds") == 0) {
            opt.seconds = (unsigned)num_arg(v, 1, 86400);
        } else if (strcmp(a, "--keys") == 0) {
            opt.keys = (unsigned)num_arg(v, 1, 64);
        } else if (strcmp(a, "--rotate-s") == 0) {
            opt.rotate_s = (unsigned)num_arg(v, 1, 86400);
        } else if (strcmp(a, "--pause-ms") == 0) {
            opt.pause_ms = (unsigned)num_arg(v, 0, 10000);
        } else if (strcmp(a, "--attempt-ms") == 0) {
            opt.attempt_ms = (unsigned)num_arg(v, 50, 60000);
        } else if (strcmp(a, "--total-ms") == 0) {
            opt.total_ms = (unsigned)num_arg(v, 50, 600000);
        } else if (strcmp(a, "--final-wait-s") == 0) {
            opt.final_wait_s = (unsigned)num_arg(v, 0, 3600);
        } else if (strcmp(a, "--read-ratio") == 0) {
            opt.read_ratio = (double)num_arg(v, 0, 100) / 100.0;
        } else if (strcmp(a, "--consistency") == 0) {
            if (strcmp(v, "stale") == 0)
                opt.consistency = RV__CONSISTENCY__STALE;
            else if (strcmp(v, "leader") == 0)
                opt.consistency = RV__CONSISTENCY__LEADER;
            else if (strcmp(v, "linearizable") == 0)
                opt.consistency = RV__CONSISTENCY__LINEARIZABLE;
            else
                usage();
        } else if (strcmp(a, "--durability") == 0) {
            if (strcmp(v, "memory") == 0)
                opt.durability = RV__DURABILITY__MEMORY;
            else if (strcmp(v, "buffered") == 0)
                opt.durability = RV__DURABILITY__BUFFERED;
            else if (strcmp(v, "strict") == 0)
                opt.durability = RV__DURABILITY__STRICT;
            else
                usage();
        } else {
            usage();
        }
    }
    if (opt.endpoints == NULL || opt.out == NULL || !have_kind ||
        !name_ok(opt.name))
        usage();
}

int
main(int argc, char **argv)
{
    wl_args_parse(argc, argv);
    opt.token = getenv("RUNVAULT_TOKEN");
    if (opt.token != NULL && opt.token[0] == '\0')
        opt.token = NULL;
    testwriter_set_token(opt.token);
    const char *ca = getenv("RUNVAULT_TLS_CA");
    if (ca != NULL && ca[0] != '\0') {
        char errmsg[RV_ERRMSG_SIZE];
        if (rvc_tls_open(&opt.tls, ca, NULL, NULL, errmsg) != RV_OK) {
            fprintf(stderr, "rv_workload: RUNVAULT_TLS_CA: %s\n", errmsg);
            return 1;
        }
    }
    out_file = fopen(opt.out, "a");
    if (out_file == NULL) {
        fprintf(stderr, "rv_workload: %s: %s\n", opt.out, strerror(errno));
        return 1;
    }
    /* One write(2) per line (flushed whole), so lines never interleave. */
    static char out_buf[4u << 20];
    setvbuf(out_file, out_buf, _IOFBF, sizeof out_buf);
    snprintf(run_id, sizeof run_id, "wl-%s", opt.name);
    snprintf(set_experiment, sizeof set_experiment, "set-%s", opt.name);
    if (opt.kind != WL_SET) {
        struct client c;
        if (client_open(&c, opt.proc_base) != 0)
            return 1;
        int rc = create_run(&c);
        rvc_close(c.rvc);
        if (rc != 0) {
            fprintf(stderr, "rv_workload: could not create %s\n", run_id);
            return 3;
        }
    }
    static struct proc procs[WL_MAX_PROCS];
    t_start_ns = rv_clock_mono_ns();
    for (int i = 0; i < opt.procs; i++) {
        procs[i].no = opt.proc_base + i;
        if (pthread_create(&procs[i].thread, NULL, proc_main, &procs[i]) != 0)
            return 1;
    }
    uint64_t n_ops = 0, n_ok = 0, n_info = 0, n_fail = 0;
    for (int i = 0; i < opt.procs; i++) {
        pthread_join(procs[i].thread, NULL);
        n_ops += procs[i].n_ops;
        n_ok += procs[i].n_ok;
        n_info += procs[i].n_info;
        n_fail += procs[i].n_fail;
    }
    int n_final_failed = 0;
    if (opt.is_final) {
        printf("{\"phase\":\"waiting\"}\n");
        fflush(stdout);
        wait_for_go();
        n_final_failed = final_reads(opt.proc_base + opt.procs);
    }
    printf("{\"workload\":\"%s\",\"name\":\"%s\",\"ops\":%" PRIu64
           ",\"ok\":%" PRIu64 ",\"info\":%" PRIu64 ",\"fail\":%" PRIu64
           ",\"keys\":%zu,\"final_failed\":%d,\"seconds\":%.1f}\n",
           wl_names[opt.kind], opt.name, n_ops, n_ok, n_info, n_fail,
           n_used_keys, n_final_failed,
           (double)(rv_clock_mono_ns() - t_start_ns) / 1e9);
    fclose(out_file);
    return n_final_failed == 0 ? 0 : 4;
}
