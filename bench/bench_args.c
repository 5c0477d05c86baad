/* Checked decimal numbers for the benchmarks (bench_args.h). */
#include "bench/bench_args.h"

#include "base/err.h"
#include "base/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v;
    const char *end;
    if (rv_parse_u64_prefix(s, &v, &end) != 0 || *end != '\0' || v < lo ||
        v > hi)
        return -1;
    *out = v;
    return 0;
}

uint64_t
bench_flag_u64(const char *prog, const char *flag, const char *v, uint64_t lo,
               uint64_t hi, int *is_bad)
{
    uint64_t n;
    if (bench_parse_u64(v, lo, hi, &n) == 0)
        return n;
    fprintf(stderr, "%s: %s wants a whole number in [%llu, %llu], not '%s'\n",
            prog, flag, (unsigned long long)lo, (unsigned long long)hi,
            v != NULL ? v : "");
    *is_bad = 1;
    return lo;
}

int
bench_json_u64(const char *body, const char *name, uint64_t *out)
{
    char pat[64];
    int n = snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = body != NULL ? strstr(body, pat) : NULL;
    if (n < 0 || (size_t)n >= sizeof pat || p == NULL)
        return 1;
    p += n;
    p += strspn(p, " \t\r\n");
    int is_quoted = *p == '"';
    uint64_t v;
    const char *end;
    if (rv_parse_u64_prefix(p + is_quoted, &v, &end) != 0)
        return -1;
    if (is_quoted && *end++ != '"')
        return -1;
    if (*end == '\0' || strchr(",}] \t\r\n", *end) == NULL)
        return -1;
    *out = v;
    return 0;
}

int
bench_token_load(const char *prog, const char *path,
                 char out[RV_TOKEN_TEXT_CHARS + 1])
{
    char buf[RV_TOKEN_TEXT_CHARS + 8], id[RV_TOKEN_ID_CHARS + 1];
    const char *env = getenv("RUNVAULT_TOKEN");
    size_t n = 0;
    if (path == NULL && (env == NULL || env[0] == '\0'))
        return 1;
    if (path != NULL) {
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
            return -1;
        }
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
    } else {
        n = strnlen(env, sizeof buf - 1);
        memcpy(buf, env, n);
    }
    while (n > 0 && strchr(" \t\r\n", buf[n - 1]) != NULL)
        n--;
    buf[n] = '\0';
    if (n != RV_TOKEN_TEXT_CHARS || rv_token_parse(buf, n, id) != RV_OK) {
        fprintf(stderr, "%s: %s does not hold a token (rvt_<id>_<secret>)\n",
                prog, path != NULL ? path : "RUNVAULT_TOKEN");
        memset(buf, 0, sizeof buf);
        return -1;
    }
    memcpy(out, buf, n + 1);
    memset(buf, 0, sizeof buf);
    return 0;
}

int
bench_on_off(const char *v, int *is_on)
{
    if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
        return 1;
    *is_on = strcmp(v, "on") == 0;
    return 0;
}
