/* The client commands of the runvault binary: ls, show, metrics, logs,
 * ingest, export, import and the admin commands (team create|list, token
 * create|list|revoke, quota set, whoami, audit), all over the native RPC
 * client (rpc/client/client.h) to any node of a cluster. The endpoint list
 * comes from
 * --endpoint LIST or RUNVAULT_ENDPOINT (default NODE_DEFAULT_ENDPOINT,
 * node/defaults.h); the usage text of each command is in cli.c (runvault
 * COMMAND --help).
 *
 * node/cli/ holds one file per job: flags.c (the flag parser of every
 * command of the binary), output.c (tables, numbers, JSON through
 * jansson), filter.c (ls's flags -> a filter string), call.c (requests,
 * metric history, exit codes), one file per command (ls.c, show.c,
 * metrics.c, logs.c, ingest.c, export.c, import.c; admin.c the admin
 * writes, admin_list.c the admin reads), write.c (what ingest and import
 * share to write runs), cred.c (the caller's token) and cli.c (the
 * command table). */
#ifndef RV_NODE_CLI_H
#define RV_NODE_CLI_H

#include "base/token.h"

/* The lines the top-level usage text lists for the client commands. */
extern const char cli_usage_summary[];

/* 1 if name is one of the client commands or a group of them ("token"),
 * else 0. Every client command takes the caller's token from --token-file
 * FILE or RUNVAULT_TOKEN (cli__token_load, cred.c). */
int cli_is_command(const char *name);

/* The caller's token: the one line of file (its newline stripped) if
 * file is not NULL, else RUNVAULT_TOKEN, into out ("" if neither is
 * given; an empty variable is none). Its form is checked with
 * rv_token_parse before anything is sent. 0, or -1 after a message
 * prefixed with prog that names the source and never shows the token.
 * Main thread (reads the environment). */
int cli_token_read(const char *prog, const char *file,
                   char out[RV_TOKEN_TEXT_CHARS + 1]);

/* Run the client command argv[0] with its arguments argv[1, argc);
 * returns the process exit code (base/exit.h: RV_EXIT_*). Main thread
 * only: logs --follow blocks SIGINT and SIGTERM in it and waits for them. */
int cli_main(int argc, char **argv);

#endif /* RV_NODE_CLI_H */
