#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const rv_err_texts[] = {
#define RV_ERR_TEXT(code, text) text,
    RV_ERR_MAP(RV_ERR_TEXT)
#undef RV_ERR_TEXT
};

static const char *const rv_err_names[] = {
#define RV_ERR_NAME(code, text) #code,
    RV_ERR_MAP(RV_ERR_NAME)
#undef RV_ERR_NAME
};

const char *
rv_strerror(int code)
{
    if (code < 0 || code >= RV_ERR_COUNT)
        return "unknown error";
    return rv_err_texts[code];
}

const char *
rv_errname(int code)
{
    /* Not a code's name: RV_EUNKNOWN is a real code. */
    if (code < 0 || code >= RV_ERR_COUNT)
        return "RV_E?";
    return rv_err_names[code];
}

void
rv_errmsg_printf(char *errmsg, const char *fmt, ...)
{
    va_list ap;

    if (errmsg == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(errmsg, RV_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

void
rv_errmsg_wrap(char *errmsg, const char *prefix)
{
    char old[RV_ERRMSG_SIZE];

    if (errmsg == NULL)
        return;
    memcpy(old, errmsg, RV_ERRMSG_SIZE);
    old[RV_ERRMSG_SIZE - 1] = '\0';
    size_t n = strlen(prefix);
    if (n > RV_ERRMSG_SIZE - 3)
        n = RV_ERRMSG_SIZE - 3;
    memcpy(errmsg, prefix, n);
    errmsg[n] = ':';
    errmsg[n + 1] = ' ';
    size_t room = RV_ERRMSG_SIZE - n - 3;
    size_t m = strlen(old);
    if (m > room)
        m = room;
    memcpy(errmsg + n + 2, old, m);
    errmsg[n + 2 + m] = '\0';
}
