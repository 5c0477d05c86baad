/* The one table of process exit codes: every command of the runvault
 * binary (serve, cluster, the maintenance and the client commands) exits
 * with one of these, and the README documents the same table. Modules
 * below node/ never exit the process: they report a reason as one of
 * these codes and node/ decides. */
#ifndef RV_BASE_EXIT_H
#define RV_BASE_EXIT_H

#define RV_EXIT_MAP(X)                                                  \
    X(RV_EXIT_OK, 0, "success, or a clean stop")                        \
    X(RV_EXIT_USAGE, 1, "bad flags, arguments, config file or filter")  \
    X(RV_EXIT_CORRUPT, 2, "stored data is corrupt (or digests differ)") \
    X(RV_EXIT_FAILURE, 3, "another local failure")                      \
    X(RV_EXIT_IO, 4, "disk error: the node stopped (fail-stop)")        \
    X(RV_EXIT_RAFT, 5, "raft would not start or stopped itself")        \
    X(RV_EXIT_REMOVED, 6, "this node was removed from the cluster")     \
    X(RV_EXIT_LOCKED, 7, "another process holds the data dir")          \
    X(RV_EXIT_LISTEN, 8, "cannot listen on an address")                 \
    X(RV_EXIT_UNAVAILABLE, 9, "no node answered")                       \
    X(RV_EXIT_DATA, 10, "bad input data (ingest, import)")              \
    X(RV_EXIT_NOTFOUND, 11, "no such run or series")                    \
    X(RV_EXIT_REFUSED, 12, "the cluster refused the request")           \
    X(RV_EXIT_VERSION, 13,                                              \
      "data or an entry in a format this version does not know")

enum rv_exit {
#define RV_EXIT_ENUM(name, code, text) name = code,
    RV_EXIT_MAP(RV_EXIT_ENUM)
#undef RV_EXIT_ENUM
};

/* Static text for an exit code ("no node answered"), never NULL; an
 * unknown code answers "unknown exit code". Any thread. */
const char *rv_exit_text(int code);

#endif /* RV_BASE_EXIT_H */
