#include "base/parse.h"

#include <errno.h>
#include <stdlib.h>

int
rv_parse_u64_prefix(const char *s, uint64_t *out, const char **end)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno != 0)
        return -1;
    *out = (uint64_t)v;
    *end = e;
    return 0;
}

int
rv_parse_i64_prefix(const char *s, int64_t *out, const char **end)
{
    if (s == NULL)
        return -1;
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (digits[0] < '0' || digits[0] > '9')
        return -1;
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno != 0)
        return -1;
    *out = (int64_t)v;
    *end = e;
    return 0;
}

int
rv_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *end;
    if (rv_parse_u64_prefix(s, &v, &end) != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int
rv_parse_i64(const char *s, int64_t *out)
{
    int64_t v;
    const char *end;
    if (rv_parse_i64_prefix(s, &v, &end) != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}
