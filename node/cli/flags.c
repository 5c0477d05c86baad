/* The one flag parser (flags.h). */
#include "node/cli/flags.h"

#include "base/err.h"
#include "rpc/client/tls.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cli_flags_find(const struct cli_flag *flags, size_t n_flags, const char *name,
               size_t n)
{
    for (size_t i = 0; i < n_flags; i++)
        if (strlen(flags[i].name) == n && memcmp(flags[i].name, name, n) == 0)
            return (int)i;
    return -1;
}

/* Keep value v of flag o; -1 after a message. */
static int
cli_flags_keep(const struct cli_spec *spec, int o, const char *v,
               struct cli_args *a)
{
    if (spec->flags[o].is_repeat) {
        size_t n = 0;
        for (size_t i = 0; i < a->n_multi; i++)
            n += a->multi_flag[i] == o;
        if (n == CLI_MAX_REPEAT || a->n_multi == CLI_MAX_MULTI) {
            fprintf(stderr, "%s: at most %d of --%s\n", spec->prog,
                    CLI_MAX_REPEAT, spec->flags[o].name);
            return -1;
        }
        a->multi[a->n_multi] = v;
        a->multi_flag[a->n_multi++] = o;
    }
    a->v[o] = v;
    return 0;
}

/* The flag argv[*i] (and its value, *i moved past it); -1 after a
 * message. */
static int
cli_flags_one(const struct cli_spec *spec, int argc, char **argv, int *i,
              struct cli_args *a)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    int o = strncmp(arg, "--", 2) == 0
                ? cli_flags_find(spec->flags, spec->n_flags, arg + 2, n - 2)
                : -1;
    if (o < 0 || !(spec->allowed & CLI_FLAG_BIT(o))) {
        fprintf(stderr, "%s: unknown flag '%.*s'\n", spec->prog, (int)n, arg);
        return -1;
    }
    const char *v = "1";
    if (spec->flags[o].has_value) {
        if (eq == NULL && *i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", spec->prog, arg);
            return -1;
        }
        v = eq ? eq + 1 : argv[++*i];
    } else if (eq != NULL) {
        fprintf(stderr, "%s: %.*s takes no value\n", spec->prog, (int)n, arg);
        return -1;
    }
    return cli_flags_keep(spec, o, v, a);
}

int
cli_flags_parse(const struct cli_spec *spec, int argc, char **argv,
                struct cli_args *a)
{
    assert(spec->n_flags <= CLI_MAX_FLAGS && spec->max_pos <= CLI_MAX_POS);
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return CLI_FLAGS_HELP;
        if (arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->n_pos == spec->max_pos) {
                fprintf(stderr, "%s: unexpected argument '%s'\n", spec->prog,
                        arg);
                return -1;
            }
            a->pos[a->n_pos++] = arg;
        } else if (cli_flags_one(spec, argc, argv, &i, a) != 0) {
            return -1;
        }
    }
    if (a->n_pos < spec->min_pos) {
        fprintf(stderr, "%s: missing argument\n", spec->prog);
        return -1;
    }
    return 0;
}

const char *
cli_flags_value(const char *given, const char *env_name, const char *def)
{
    const char *env = getenv(env_name);
    return given != NULL ? given : env != NULL && env[0] != '\0' ? env : def;
}

int
cli_flags_tls(const char *prog, const char *ca, const char *cert,
              const char *key, struct rvc_tls **out)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    ca = cli_flags_value(ca, "RUNVAULT_TLS_CA", "");
    cert = cli_flags_value(cert, "RUNVAULT_TLS_CERT", "");
    key = cli_flags_value(key, "RUNVAULT_TLS_KEY", "");
    *out = NULL;
    if (ca[0] == '\0' && cert[0] == '\0' && key[0] == '\0')
        return 0;
    if (rvc_tls_open(out, ca, cert, key, errmsg) != RV_OK) {
        fprintf(stderr, "%s: TLS (--tls-ca, --tls-cert, --tls-key): %s\n", prog,
                errmsg);
        return -1;
    }
    if (rvc_tls_warning(*out) != NULL)
        fprintf(stderr, "%s: warning: %s\n", prog, rvc_tls_warning(*out));
    return 0;
}
