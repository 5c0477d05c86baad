/* ls's flags as one filter string of the MLflow grammar (store/filter.h):
 * --filter, --status, --tag, --param and --day joined with "and". */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <stdio.h>
#include <string.h>

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
static void
cli__expr_add(struct cli_expr *e, const char *s, size_t n)
{
    if (e->is_over || e->n + n > CONTRACT_MAX_FILTER_BYTES) {
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

/* "prefix.k = 'v'" for each value "k=v" of the repeatable flag o. */
static int
cli__filter_kvs(const struct cli_args *a, int o, const char *prefix,
                struct cli_expr *e)
{
    for (size_t i = 0; i < a->n_multi; i++) {
        if (a->multi_flag[i] == o &&
            cli__expr_kv(e, prefix, a->multi[i]) != 0) {
            fprintf(stderr, "runvault ls: --%s wants KEY=VALUE, got '%s'\n",
                    o == O_TAG ? "tag" : "param", a->multi[i]);
            return -1;
        }
    }
    return 0;
}

/* The filter of ls's flags, joined with "and"; prints the error and
 * returns -1 if a flag is bad. */
int
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
    if (cli__filter_kvs(a, O_TAG, "tags.", e) != 0 ||
        cli__filter_kvs(a, O_PARAM, "params.", e) != 0)
        return -1;
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
                CONTRACT_MAX_FILTER_BYTES);
        return -1;
    }
    return 0;
}
