/* runvault: the command-line entry point.
 *
 *   runvault demo [--data-dir DIR]           store demo: ingest, query, verify
 *   runvault verify [--data-dir DIR]         check every vlog CRC, the digest
 *   runvault rebuild-index [--data-dir DIR]  regenerate LMDB from the vlog
 *                                            (node/maint.c, node/demo.c)
 *
 *   runvault serve [flags]                   run a node (node/serve.c)
 *   runvault cluster VERB [flags]            membership (node/cluster.c)
 *   runvault ls|show|metrics|logs|ingest|export|import
 *   runvault team|token|quota|whoami|audit   client commands (node/cli/)
 *
 * Every command parses its flags with node/cli/flags.h and exits with a
 * code of the one table, base/exit.h. */
#include "base/exit.h"
#include "base/log.h"
#include "node/backup.h"
#include "node/cli/cli.h"
#include "node/cli/flags.h"
#include "node/defaults.h"
#include "node/maint.h"
#include "node/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char rv_usage[] =
    "usage: runvault <command> [--data-dir DIR] [--log-level LEVEL]\n"
    "\n"
    "commands:\n"
    "  serve          run a node (runvault serve --help for its flags)\n"
    "  cluster        status | add | remove | transfer (through any node)\n"
    "  demo           ingest sample runs into the store, query them, verify\n"
    "  verify         check every vlog record's CRC and recompute the digest\n"
    "  rebuild-index  regenerate the LMDB index from the vlog alone\n"
    "  verify-backup  check a backup's files and replay it (DIR)\n"
    "  restore        build a data dir from a backup (DIR --data-dir D)\n"
    "\n"
    "client commands (runvault COMMAND --help for each):\n";

static const char rv_usage_tail[] =
    "\n"
    "DIR defaults to $RUNVAULT_DATA_DIR or " NODE_DEFAULT_DATA_DIR ".\n"
    "Client commands reach a cluster through --endpoint LIST or\n"
    "$RUNVAULT_ENDPOINT (default " NODE_DEFAULT_ENDPOINT ") with the token\n"
    "of --token-file FILE or $RUNVAULT_TOKEN (when auth is on).\n"
    "\n"
    "exit codes (every command):\n";

static void
rv_print_usage(FILE *f)
{
    fputs(rv_usage, f);
    fputs(cli_usage_summary, f);
    fputs(rv_usage_tail, f);
    for (int code = RV_EXIT_OK; code <= RV_EXIT_VERSION; code++)
        fprintf(f, "  %2d  %s\n", code, rv_exit_text(code));
}

/* `runvault demo|verify|rebuild-index --help`. */
static const char rv_maint_usage[] =
    "usage: runvault demo|verify|rebuild-index [--data-dir DIR] "
    "[--log-level LEVEL]\n"
    "  demo           ingest sample runs into the store in DIR, query them,\n"
    "                 verify (a store of its own: not a node's data dir)\n"
    "  verify         check every vlog record's CRC and recompute the digest\n"
    "                 of the store in DIR (the node must be stopped)\n"
    "  rebuild-index  regenerate DIR's LMDB index from its vlog alone (the\n"
    "                 node must be stopped)\n"
    "DIR defaults to $RUNVAULT_DATA_DIR or " NODE_DEFAULT_DATA_DIR ";\n"
    "LEVEL is debug | info | warn | error.\n";

enum { RV_O_DATA_DIR, RV_O_LOG_LEVEL, RV_O_COUNT };

static const struct cli_flag rv_flags[RV_O_COUNT] = {
    [RV_O_DATA_DIR] = {"data-dir", 1},
    [RV_O_LOG_LEVEL] = {"log-level", 1},
};

/* The maintenance command's name and settings; -1 after a message (or
 * for --help). */
static int
rv_maint_parse(int argc, char **argv, const char **command, struct maint *m)
{
    struct cli_spec spec = {"runvault",    rv_flags, RV_O_COUNT,
                            CLI_FLAGS_ALL, 0,        1};
    struct cli_args a;
    int rc = cli_flags_parse(&spec, argc - 1, argv + 1, &a);
    if (rc == CLI_FLAGS_HELP)
        return CLI_FLAGS_HELP;
    if (rc != 0 || a.n_pos == 0)
        return -1;
    *command = a.pos[0];
    m->data_dir = cli_flags_value(a.v[RV_O_DATA_DIR], "RUNVAULT_DATA_DIR",
                                  NODE_DEFAULT_DATA_DIR);
    m->log = (struct rv_log){rv_log_stderr, NULL, RV_LOG_INFO};
    if (a.v[RV_O_LOG_LEVEL] != NULL) {
        enum rv_log_level lvl;
        if (rv_log_level_parse(a.v[RV_O_LOG_LEVEL], &lvl) != 0) {
            fprintf(stderr, "runvault: unknown log level '%s'\n",
                    a.v[RV_O_LOG_LEVEL]);
            return -1;
        }
        m->log.min_level = (int)lvl;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *command;
    struct maint m;
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return rv_cmd_serve(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "cluster") == 0)
        return rv_cmd_cluster(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "verify-backup") == 0)
        return rv_cmd_verify_backup(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "restore") == 0)
        return rv_cmd_restore(argc - 2, argv + 2);
    if (argc >= 2 && cli_is_command(argv[1]))
        return cli_main(argc - 1, argv + 1);
    if (argc == 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
         strcmp(argv[1], "help") == 0)) {
        rv_print_usage(stdout);
        return RV_EXIT_OK;
    }
    if (argc >= 2 && argv[1][0] != '-' && strcmp(argv[1], "demo") != 0 &&
        strcmp(argv[1], "verify") != 0 &&
        strcmp(argv[1], "rebuild-index") != 0) {
        /* Before the flags: `runvault NOSUCH --help` is no command's help. */
        fprintf(stderr, "runvault: unknown command '%s'\n\n", argv[1]);
        rv_print_usage(stderr);
        return RV_EXIT_USAGE;
    }
    int rc = rv_maint_parse(argc, argv, &command, &m);
    if (rc == CLI_FLAGS_HELP) {
        fputs(rv_maint_usage, stdout);
        return RV_EXIT_OK;
    }
    if (rc != 0) {
        rv_print_usage(stderr);
        return RV_EXIT_USAGE;
    }
    if (strcmp(command, "demo") == 0)
        return maint_demo(&m);
    if (strcmp(command, "verify") == 0)
        return maint_verify(&m);
    if (strcmp(command, "rebuild-index") == 0)
        return maint_rebuild_index(&m);
    fprintf(stderr, "runvault: unknown command '%s'\n\n", command);
    rv_print_usage(stderr);
    return RV_EXIT_USAGE;
}
