/* Structured logging with levels. The sink is a parameter (struct rv_log),
 * never a global: modules receive the rv_log they write to. */
#ifndef RV_BASE_LOG_H
#define RV_BASE_LOG_H

enum rv_log_level { RV_LOG_DEBUG, RV_LOG_INFO, RV_LOG_WARN, RV_LOG_ERROR };

/* A sink receives one formatted message (no trailing newline). */
typedef void (*rv_log_fn)(void *data, enum rv_log_level level,
                          const char *module, const char *msg);

struct rv_log {
    rv_log_fn fn;  /* NULL: discard everything. */
    void *data;    /* Passed to fn. Borrowed. */
    int min_level; /* Messages below this level are dropped. */
};

/* The stderr sink: "2026-11-22T14:00:00.123Z INFO store: message". */
void rv_log_stderr(void *data, enum rv_log_level level, const char *module,
                   const char *msg);

/* Log through log (may be NULL). Any thread, if fn is thread-safe. */
void rv_logf(const struct rv_log *log, enum rv_log_level level,
             const char *module, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

const char *rv_log_level_name(enum rv_log_level level);

/* Parse "debug|info|warn|error". Returns 0 or -1 if unknown. */
int rv_log_level_parse(const char *s, enum rv_log_level *out);

#endif /* RV_BASE_LOG_H */
