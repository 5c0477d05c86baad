/* runvault ingest [FILE | -]: JSON lines of runs, points, log lines and
 * artifacts, sent in order through one batcher. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
        if (rn == 0 || rn > CONTRACT_MAX_RUN_ID_BYTES)
            rv_errmsg_printf(in->why, "\"run_id\" must have 1 to %d bytes",
                             CONTRACT_MAX_RUN_ID_BYTES);
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
    fprintf(stderr, "runvault ingest: %s%s\n", cli__refusal_hint(rc),
            rvc_batcher_errmsg(in->b));
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
int
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
            fprintf(stderr, "runvault ingest: %s%s\n", cli__refusal_hint(rc),
                    rvc_batcher_errmsg(in.b));
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
