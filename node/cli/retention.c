/* runvault retention set|clear|list and compact (DESIGN §12, Appendix
 * B.4): a project's retention rule as one retention_put command, the
 * rules through an ADMIN_RETENTION read, a compaction as one compact
 * command. */
#include "base/exit.h"
#include "base/parse.h"
#include "node/cli/cli_int.h"
#include "proto/proto.h"

#include <stdio.h>
#include <string.h>

#define CLI_DAY_MS        INT64_C(86400000)
#define CLI_MAX_PERIOD_MS (INT64_C(36500) * CLI_DAY_MS) /* 100 years. */

/* "0", or N followed by d, h, m or s, as milliseconds (at most a hundred
 * years); -1 if not. */
static int
cli__period(const char *s, int64_t *ms)
{
    static const char units[] = "smhd";
    static const int64_t mult[] = {1000, 60000, 3600000, 86400000};
    uint64_t n;
    const char *end, *u;
    if (rv_parse_u64_prefix(s, &n, &end) != 0)
        return -1;
    if (n == 0 && end[0] == '\0') {
        *ms = 0;
        return 0;
    }
    if (end[0] == '\0' || end[1] != '\0' || (u = strchr(units, end[0])) == NULL)
        return -1;
    int64_t m = mult[u - units];
    if (n > (uint64_t)(CLI_MAX_PERIOD_MS / m))
        return -1;
    *ms = (int64_t)n * m;
    return 0;
}

/* "FINISHED,FAILED" into st (at most max); -1 after a message. */
static int
cli__statuses(const struct cli *cl, const char *s, Rv__RunStatus *st,
              size_t max, size_t *n)
{
    char buf[128];
    *n = 0;
    if (strlen(s) >= sizeof buf)
        goto bad;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *p = buf, *comma; p != NULL; p = comma ? comma + 1 : NULL) {
        comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (*n == max || proto_status_parse(p, &st[*n]) != 0 ||
            st[*n] == RV__RUN_STATUS__RUN_STATUS_UNSPECIFIED)
            goto bad;
        (*n)++;
    }
    return 0;
bad:
    fprintf(stderr,
            "runvault %s: --statuses wants up to %zu of RUNNING, SCHEDULED, "
            "FINISHED, FAILED, KILLED, CRASHED, comma-separated\n",
            cl->name, max);
    return -1;
}

/* PROJECT (1..250 bytes of UTF-8). */
static int
cli__project(const struct cli *cl, const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > CONTRACT_MAX_SCOPE_BYTES || !contract_utf8_valid(p, n)) {
        fprintf(stderr, "runvault %s: PROJECT wants 1..%d bytes of UTF-8\n",
                cl->name, CONTRACT_MAX_SCOPE_BYTES);
        return -1;
    }
    return 0;
}

/* Send p as a retention_put; the exit code after a message. */
static int
cli__retention_put(struct cli *cl, Rv__RetentionPut *p, const char *done)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    uint64_t index = 0;
    cmd.body_case = RV__COMMAND__BODY_RETENTION_PUT;
    cmd.retention_put = p;
    int rc = cli__admin_write(cl, &cmd, &index);
    if (rc == RV_OK)
        printf("retention of project %s %s (index %llu)\n", p->project, done,
               (unsigned long long)index);
    return cli__admin_done(cl, rc);
}

int
cli__retention_set(struct cli *cl, const struct cli_args *a)
{
    Rv__RetentionPut p = RV__RETENTION_PUT__INIT;
    Rv__RunStatus st[8];
    uint64_t keep = 0;
    p.project = (char *)a->pos[0];
    p.team = (char *)a->v[O_TEAM];
    if (cli__project(cl, p.project) != 0 ||
        (p.team != NULL && cli__team_check(cl, "--team", p.team) != 0))
        return RV_EXIT_USAGE;
    if ((a->v[O_MAX_AGE] && cli__period(a->v[O_MAX_AGE], &p.max_age_ms)) ||
        (a->v[O_TRASH] && cli__period(a->v[O_TRASH], &p.trash_ms))) {
        fprintf(stderr,
                "runvault %s: --max-age and --trash want 0 or N followed by "
                "d, h, m or s (at most 100 years): 365d, 12h\n",
                cl->name);
        return RV_EXIT_USAGE;
    }
    if (a->v[O_KEEP_LAST] &&
        (rv_parse_u64(a->v[O_KEEP_LAST], &keep) != 0 || keep > INT32_MAX)) {
        fprintf(stderr, "runvault %s: --keep-last wants a count (0: none)\n",
                cl->name);
        return RV_EXIT_USAGE;
    }
    if (a->v[O_STATUSES] &&
        cli__statuses(cl, a->v[O_STATUSES], st, 8, &p.n_statuses) != 0)
        return RV_EXIT_USAGE;
    p.has_max_age_ms = a->v[O_MAX_AGE] != NULL;
    p.has_trash_ms = a->v[O_TRASH] != NULL;
    p.has_keep_last = a->v[O_KEEP_LAST] != NULL;
    p.keep_last = keep;
    p.statuses = st;
    if (!p.has_max_age_ms && !p.has_trash_ms && !p.has_keep_last) {
        fprintf(stderr, "runvault %s: give --max-age, --keep-last or --trash\n",
                cl->name);
        return RV_EXIT_USAGE;
    }
    return cli__retention_put(cl, &p, "set");
}

int
cli__retention_clear(struct cli *cl, const struct cli_args *a)
{
    Rv__RetentionPut p = RV__RETENTION_PUT__INIT;
    p.project = (char *)a->pos[0];
    p.team = (char *)a->v[O_TEAM];
    if (cli__project(cl, p.project) != 0 ||
        (p.team != NULL && cli__team_check(cl, "--team", p.team) != 0))
        return RV_EXIT_USAGE;
    p.has_clear = p.clear = 1;
    return cli__retention_put(cl, &p, "cleared");
}

/* A period for a table: "-" (none), "0", whole days, else hours. */
static void
cli__period_text(int has, int64_t ms, char *out, size_t n)
{
    if (!has)
        snprintf(out, n, "-");
    else if (ms % CLI_DAY_MS == 0)
        snprintf(out, n, "%lldd", (long long)(ms / CLI_DAY_MS));
    else
        snprintf(out, n, "%.2fh", (double)ms / 3600000.0);
}

static void
cli__statuses_text(const Rv__RetentionInfo *t, char *out, size_t n)
{
    out[0] = '\0';
    for (size_t k = 0; k < t->n_statuses; k++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", k ? "," : "",
                 proto_status_name(t->statuses[k]));
}

int
cli__retention_list(struct cli *cl, const struct cli_args *a)
{
    Rv__Response *r;
    char age[32], trash[32], sts[128];
    if (cli__team_flag(cl, a) != 0)
        return RV_EXIT_USAGE;
    int rc = cli__admin_read(cl, RV__ADMIN_OP__ADMIN_RETENTION, a->v[O_TEAM], 0,
                             0, &r);
    if (rc != RV_OK)
        return cli__fail(cl, rc, cli__exit_for(rc));
    json_t *rules = a->v[O_JSON] != NULL ? json_array() : NULL;
    if (rules == NULL)
        printf("%-16s %-24s %-9s %-9s %-9s %s\n", "TEAM", "PROJECT", "MAX AGE",
               "KEEP", "TRASH", "STATUSES");
    for (size_t i = 0; i < r->n_retention; i++) {
        const Rv__RetentionInfo *t = r->retention[i];
        cli__period_text(t->max_age_ms > 0, t->max_age_ms, age, sizeof age);
        cli__period_text(t->has_trash_ms, t->trash_ms, trash, sizeof trash);
        cli__statuses_text(t, sts, sizeof sts);
        if (rules == NULL) {
            char keep[24] = "-";
            if (t->keep_last > 0)
                snprintf(keep, sizeof keep, "%llu",
                         (unsigned long long)t->keep_last);
            printf("%-16s %-24s %-9s %-9s %-9s %s\n", t->team, t->project, age,
                   keep, t->has_trash_ms ? trash : "default", sts);
            continue;
        }
        json_t *o = json_object();
        json_object_set_new(o, "team", cli__json_string(t->team));
        json_object_set_new(o, "project", cli__json_string(t->project));
        json_object_set_new(o, "max_age_ms",
                            json_integer((json_int_t)t->max_age_ms));
        json_object_set_new(o, "keep_last",
                            json_integer((json_int_t)t->keep_last));
        json_object_set_new(o, "trash_ms",
                            t->has_trash_ms
                                ? json_integer((json_int_t)t->trash_ms)
                                : json_null());
        json_t *sa = json_array();
        for (size_t k = 0; k < t->n_statuses; k++)
            json_array_append_new(
                sa, cli__json_string(proto_status_name(t->statuses[k])));
        json_object_set_new(o, "statuses", sa);
        json_array_append_new(rules, o);
    }
    int code = RV_EXIT_OK;
    if (rules != NULL) {
        json_t *doc = json_object();
        json_object_set_new(doc, "rules", rules);
        json_object_set_new(doc, "default_trash_ms",
                            json_integer((json_int_t)r->default_trash_ms));
        code = cli__json_print(stdout, doc, 0);
    }
    rvc_response_free(r);
    return code;
}

/* runvault compact: one compact command (a cluster-admin); every node
 * then rewrites its sealed segments in the background. */
int
cli__compact(struct cli *cl, const struct cli_args *a)
{
    (void)a;
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__Compact cp = RV__COMPACT__INIT;
    uint64_t index = 0;
    cmd.body_case = RV__COMMAND__BODY_COMPACT;
    cmd.compact = &cp;
    int rc = cli__admin_write(cl, &cmd, &index);
    if (rc == RV_OK)
        printf("compaction at index %llu: every node rewrites its sealed "
               "segments now (GET /api/v2/cluster shows each node)\n",
               (unsigned long long)index);
    return cli__admin_done(cl, rc);
}
