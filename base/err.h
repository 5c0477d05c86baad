/* Project-wide error codes and the errmsg convention.
 *
 * Every fallible function returns int: RV_OK (0) or a positive RV_E* code.
 * Detail text goes into a caller-owned char errmsg[RV_ERRMSG_SIZE]; each
 * layer may prefix its context with rv_errmsg_wrap(). */
#ifndef RV_BASE_ERR_H
#define RV_BASE_ERR_H

#include <stddef.h>

#define RV_ERRMSG_SIZE 256

#define RV_ERR_MAP(X)                                                      \
    X(RV_OK, "success")                                                    \
    X(RV_ENOMEM, "out of memory")                                          \
    X(RV_EINVAL, "invalid argument")                                       \
    X(RV_ENOTFOUND, "not found")                                           \
    X(RV_EEXIST, "already exists")                                         \
    X(RV_ECONFLICT, "conflicts with the stored value")                     \
    X(RV_ETOOBIG, "too large")                                             \
    X(RV_EMALFORMED, "malformed input")                                    \
    X(RV_ECORRUPT, "stored data is corrupt")                               \
    X(RV_EIO, "I/O error")                                                 \
    X(RV_ENOSPACE, "no space left")                                        \
    X(RV_ESTATE, "not allowed in the current state")                       \
    X(RV_ESTALE, "sequence number already applied")                        \
    X(RV_ENOTLEADER, "this node is not the leader")                        \
    X(RV_EUNAVAILABLE, "service unavailable")                              \
    X(RV_ETIMEDOUT, "timed out")                                           \
    X(RV_EPARSE, "syntax error")                                           \
    X(RV_EQUOTA, "quota exceeded")                                         \
    X(RV_EUNKNOWN, "outcome unknown: retry with the same idempotency key") \
    X(RV_EUNAUTHENTICATED, "no valid token")                               \
    X(RV_EPERM, "permission denied")                                       \
    X(RV_ERATE, "rate limit exceeded")                                     \
    X(RV_EVERSION, "unknown format version (written by a newer runvault)")

enum rv_err {
#define RV_ERR_ENUM(code, text) code,
    RV_ERR_MAP(RV_ERR_ENUM)
#undef RV_ERR_ENUM
        RV_ERR_COUNT
};

/* Static text for code, never NULL. Any thread. */
const char *rv_strerror(int code);

/* Symbolic name of code ("RV_ENOTFOUND"), never NULL. A code outside the
 * table answers "RV_E?", which names no code. Static text. Any thread. */
const char *rv_errname(int code);

/* Format into errmsg (RV_ERRMSG_SIZE bytes), truncating. errmsg may be NULL,
 * in which case nothing happens. Returns nothing: formatting cannot fail. */
void rv_errmsg_printf(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix errmsg with "prefix: ", keeping as much of the old text as fits. */
void rv_errmsg_wrap(char *errmsg, const char *prefix);

#endif /* RV_BASE_ERR_H */
