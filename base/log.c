#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const rv_log_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

const char *
rv_log_level_name(enum rv_log_level level)
{
    if ((unsigned)level > RV_LOG_ERROR)
        return "?";
    return rv_log_names[level];
}

int
rv_log_level_parse(const char *s, enum rv_log_level *out)
{
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i <= RV_LOG_ERROR; i++) {
        if (strcmp(s, lower[i]) == 0) {
            *out = (enum rv_log_level)i;
            return 0;
        }
    }
    return -1;
}

void
rv_log_stderr(void *data, enum rv_log_level level, const char *module,
              const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char when[32];

    (void)data;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000L,
            rv_log_level_name(level), module, msg);
}

void
rv_logf(const struct rv_log *log, enum rv_log_level level, const char *module,
        const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (log == NULL || log->fn == NULL || (int)level < log->min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log->fn(log->data, level, module, msg);
}
