/* The client commands of the runvault binary: ls, show, metrics, logs,
 * ingest, export and import, all over the native RPC client (rpc/client.h)
 * to any node of a cluster. The endpoint list comes from --endpoint LIST or
 * RUNVAULT_ENDPOINT (default CLI_DEFAULT_ENDPOINT); the usage text of each
 * command is in client_cmds.c (runvault COMMAND --help). */
#ifndef RV_NODE_CLIENT_CMDS_H
#define RV_NODE_CLIENT_CMDS_H

#define CLI_DEFAULT_ENDPOINT "tcp://127.0.0.1:7481"

/* Exit codes of the client commands (0, 1 and 9 as in node/serve.h). */
#define CLI_EXIT_OK          0
#define CLI_EXIT_USAGE       1 /* Bad flags or arguments (or filter). */
#define CLI_EXIT_DATA        2 /* Bad input data (ingest, import). */
#define CLI_EXIT_NOTFOUND    3 /* No such run or series. */
#define CLI_EXIT_FAILURE     4 /* Local I/O, or the cluster refused. */
#define CLI_EXIT_UNAVAILABLE 9 /* No node answered. */

/* The lines the top-level usage text lists for the client commands. */
extern const char cli_usage_summary[];

/* 1 if name is one of the client commands, else 0. */
int cli_is_command(const char *name);

/* Run the client command argv[0] with its arguments argv[1, argc);
 * returns the process exit code (CLI_EXIT_*). Main thread only: logs
 * --follow blocks SIGINT and SIGTERM in it and waits for them. */
int cli_main(int argc, char **argv);

#endif /* RV_NODE_CLIENT_CMDS_H */
