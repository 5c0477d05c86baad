/* Output of the client commands (cli_int.h): aligned tables, numbers and
 * times as people read them, JSON, progress. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <math.h>
#include <stdio.h>
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

void
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
void
cli__json_double(FILE *f, double v)
{
    char num[CLI_NUM_BYTES];
    cli__fmt_double(v, num);
    if (isfinite(v))
        fputs(num, f);
    else
        fprintf(f, "\"%s\"", num);
}

void
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

void
cli__json_time(FILE *f, int has, int64_t ms)
{
    if (has && ms != 0)
        fprintf(f, "%lld", (long long)ms);
    else
        fputs("null", f);
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
