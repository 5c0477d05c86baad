/* Output of the client commands (cli_int.h): aligned tables, numbers and
 * times as people read them, JSON, progress. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 64-bit FNV-1a of two strings, for ids and names (not secrets). */
uint64_t
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
void
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
void
cli__fmt_time(int64_t ms, char out[CLI_TIME_BYTES])
{
    struct tm tm;
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    time_t t = (time_t)secs;
    if (ms == 0 || gmtime_r(&t, &tm) == NULL ||
        strftime(out, CLI_TIME_BYTES, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, CLI_TIME_BYTES, "-");
}

size_t
cli__width(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((uint8_t)*s & 0xC0) != 0x80;
    return n;
}

void
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

const char *
cli__str(const char *s)
{
    return s != NULL ? s : "";
}

/* The JSON of a string; NULL is "". Bytes are taken as they are (the
 * store holds UTF-8). */
json_t *
cli__json_string(const char *s)
{
    return json_string_nocheck(cli__str(s));
}

json_t *
cli__json_time(int has, int64_t ms)
{
    return has && ms != 0 ? json_integer((json_int_t)ms) : json_null();
}

/* Whole numbers below 1e15 as integers print as %.15g prints them; any
 * other finite value is a real printed with the precision of the
 * document, at least the shortest of 15..17 digits that reads back. */
json_t *
cli__json_value(double v, int *prec)
{
    char num[CLI_NUM_BYTES];
    if (!isfinite(v)) {
        cli__fmt_double(v, num);
        return json_string(num);
    }
    if (v == floor(v) && fabs(v) < 1e15 && !(v == 0 && signbit(v)))
        return json_integer((json_int_t)v);
    int p = 15;
    while (p < 17) {
        snprintf(num, sizeof num, "%.*g", p, v);
        if (strtod(num, NULL) == v)
            break;
        p++;
    }
    if (p > *prec)
        *prec = p;
    return json_real(v);
}

json_t *
cli__json_kvs(Rv__KV *const *kvs, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++)
        json_object_set_new_nocheck(o, cli__str(kvs[i]->key),
                                    cli__json_string(kvs[i]->value));
    return o;
}

json_t *
cli__json_run(const Rv__RunInfo *r, int with_user)
{
    json_t *o = json_object();
    json_object_set_new(o, "run_id", cli__json_string(r->run_id));
    json_object_set_new(o, "team", cli__json_string(r->team));
    json_object_set_new(o, "project", cli__json_string(r->project));
    json_object_set_new(o, "experiment", cli__json_string(r->experiment));
    json_object_set_new(o, "name", cli__json_string(r->name));
    if (with_user)
        json_object_set_new(o, "user", cli__json_string(r->user));
    json_object_set_new(o, "status",
                        cli__json_string(proto_status_name(r->status)));
    json_object_set_new(o, "created_at",
                        cli__json_time(r->has_created_at_ms, r->created_at_ms));
    json_object_set_new(o, "ended_at",
                        cli__json_time(r->has_ended_at_ms, r->ended_at_ms));
    return o;
}

int
cli__json_print(FILE *f, json_t *doc, int prec)
{
    int precision = prec > 0 ? prec : 15;
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER |
                   (size_t)JSON_REAL_PRECISION(precision);
    int rc = doc != NULL && json_dumpf(doc, f, flags) == 0 ? 0 : -1;
    if (rc == 0 && fputc('\n', f) == EOF)
        rc = -1;
    json_decref(doc);
    return rc;
}

void
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
