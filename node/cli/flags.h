/* THE flag parser of the runvault binary: serve, cluster, the maintenance
 * commands (demo, verify, rebuild-index) and the client commands all read
 * their arguments with cli_flags_parse() against a table of their flags.
 *
 * Flags are "--name VALUE" or "--name=VALUE" (a switch: "--name" alone);
 * "-h" or "--help" asks for the usage; any other argument not starting
 * with '-' (and "-" itself) is positional. Values are borrowed from argv.
 * Everything here runs on the main thread, before any other starts. */
#ifndef RV_NODE_CLI_FLAGS_H
#define RV_NODE_CLI_FLAGS_H

#include <stddef.h>
#include <stdint.h>

#define CLI_MAX_FLAGS  64  /* Flags in one table. */
#define CLI_MAX_REPEAT 64  /* Values one repeatable flag takes. */
#define CLI_MAX_MULTI  128 /* Values all repeatable flags take. */
#define CLI_MAX_POS    2   /* Positional arguments. */

/* One flag. env, def and help are for settings that also come from the
 * environment and a config file (serve); NULL where unused. */
struct cli_flag {
    const char *name; /* Without the leading "--": "endpoint". */
    int has_value;    /* 0: a switch, given the value "1". */
    int is_repeat;    /* May be given again: every value is kept. */
    const char *env, *def, *help;
};

/* What one command accepts. */
struct cli_spec {
    const char *prog; /* "runvault ls": the prefix of every message. */
    const struct cli_flag *flags;
    size_t n_flags;   /* At most CLI_MAX_FLAGS. */
    uint64_t allowed; /* Bit i set: flags[i] is accepted. */
    size_t min_pos, max_pos;
};

#define CLI_FLAG_BIT(i) (UINT64_C(1) << (i))
#define CLI_FLAGS_ALL   UINT64_MAX

/* The parsed arguments: borrowed from argv, valid while it is. */
struct cli_args {
    const char *v[CLI_MAX_FLAGS]; /* Last value of flag i; NULL if absent. */
    const char *multi[CLI_MAX_MULTI]; /* Values of repeatable flags, */
    int multi_flag[CLI_MAX_MULTI];    /* in order, with their flag. */
    size_t n_multi;
    const char *pos[CLI_MAX_POS];
    size_t n_pos;
};

#define CLI_FLAGS_HELP 1 /* cli_flags_parse(): -h or --help was given. */

/* Parse argv[0, argc) against spec into *a. Returns 0, CLI_FLAGS_HELP, or
 * -1 after printing why on stderr ("PROG: unknown flag '--x'"): an unknown
 * or not allowed flag, a missing value, a value given to a switch, too
 * many or too few positional arguments, a flag repeated more than
 * CLI_MAX_REPEAT times. */
int cli_flags_parse(const struct cli_spec *spec, int argc, char **argv,
                    struct cli_args *a);

/* The index of the flag called name (n bytes, no "--") in flags, or -1. */
int cli_flags_find(const struct cli_flag *flags, size_t n_flags,
                   const char *name, size_t n);

/* A setting given as a flag or a variable: given if not NULL, else the
 * variable env_name if set and not empty, else def. Borrowed. */
const char *cli_flags_value(const char *given, const char *env_name,
                            const char *def);

/* The TLS settings of a client command: --tls-ca, --tls-cert and --tls-key
 * as given (NULL if absent), else RUNVAULT_TLS_CA, RUNVAULT_TLS_CERT and
 * RUNVAULT_TLS_KEY. *out is NULL when no CA is given (plain endpoints
 * only); otherwise the caller frees it with rvc_tls_close after the
 * client (rpc/client/tls.h). Returns 0, or -1 after a message prefixed
 * with prog (an unreadable or invalid file, a certificate without its
 * key). */
struct rvc_tls;
int cli_flags_tls(const char *prog, const char *ca, const char *cert,
                  const char *key, struct rvc_tls **out);

#endif /* RV_NODE_CLI_FLAGS_H */
