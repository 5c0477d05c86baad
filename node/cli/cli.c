/* The client commands' table and dispatch (cli.h): their flags, usage
 * texts, and the connection every command gets. */
#include "base/exit.h"
#include "base/parse.h"
#include "node/cli/cli_int.h"
#include "node/defaults.h"
#include "rpc/client/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Indexed by enum cli_opt. */
static const struct cli_flag cli_flags[O_COUNT] = {
    [O_ENDPOINT] = {"endpoint", 1},
    [O_TIMEOUT] = {"timeout-ms", 1},
    [O_CONSISTENCY] = {"consistency", 1},
    [O_PROJECT] = {"project", 1},
    [O_EXPERIMENT] = {"experiment", 1},
    [O_STATUS] = {"status", 1},
    [O_TAG] = {"tag", 1, 1},
    [O_PARAM] = {"param", 1, 1},
    [O_DAY] = {"day", 1},
    [O_FILTER] = {"filter", 1},
    [O_ORDER_BY] = {"order-by", 1},
    [O_LIMIT] = {"limit", 1},
    [O_JSON] = {"json", 0},
    [O_CSV] = {"csv", 0},
    [O_KEY] = {"key", 1},
    [O_CONTEXT] = {"context", 1},
    [O_DOWNSAMPLE] = {"downsample", 1},
    [O_MIN_STEP] = {"min-step", 1},
    [O_MAX_STEP] = {"max-step", 1},
    [O_FOLLOW] = {"follow", 0},
    [O_FROM] = {"from", 1},
    [O_OUT] = {"out", 1},
    [O_TOKEN_FILE] = {"token-file", 1},
    [O_TEAM] = {"team", 1},
    [O_ROLE] = {"role", 1},
    [O_NAME] = {"name", 1},
    [O_EXPIRES_IN] = {"expires-in", 1},
    [O_MAX_RUNS] = {"max-runs", 1},
    [O_MAX_BYTES] = {"max-bytes", 1},
    [O_MAX_POINTS_PER_S] = {"max-points-per-s", 1},
    [O_SINCE_INDEX] = {"since-index", 1},
    [O_MAX_AGE] = {"max-age", 1},
    [O_KEEP_LAST] = {"keep-last", 1},
    [O_STATUSES] = {"statuses", 1},
    [O_TRASH] = {"trash", 1},
    [O_TLS_CA] = {"tls-ca", 1},
    [O_TLS_CERT] = {"tls-cert", 1},
    [O_TLS_KEY] = {"tls-key", 1},
    [O_TO] = {"to", 1},
};

#define CLI_COMMON                                         \
    (CLI_FLAG_BIT(O_ENDPOINT) | CLI_FLAG_BIT(O_TIMEOUT) |  \
     CLI_FLAG_BIT(O_TOKEN_FILE) | CLI_FLAG_BIT(O_TLS_CA) | \
     CLI_FLAG_BIT(O_TLS_CERT) | CLI_FLAG_BIT(O_TLS_KEY))
#define CLI_READING (CLI_COMMON | CLI_FLAG_BIT(O_CONSISTENCY))

struct cli_command {
    const char *name; /* "ls", or a group and its verb: "token create". */
    uint64_t flags;   /* The options it takes (CLI_FLAG_BIT). */
    size_t min_pos, max_pos;
    int (*run)(struct cli *cl, const struct cli_args *a);
    const char *usage;
};

static const char cli_exit_text[] =
    "exit codes: 0 ok, 1 bad arguments, 3 local failure, 9 no node "
    "answered,\n"
    "            10 bad input data, 11 run or series not found, 12 request "
    "refused\n"
    "endpoint:   --endpoint LIST (tcp://IP:PORT, ipc://PATH or "
    "http://IP:PORT,\n"
    "            comma-separated) or RUNVAULT_ENDPOINT; "
    "default " NODE_DEFAULT_ENDPOINT "\n"
    "            --timeout-ms MS bounds each call, retries included "
    "(30000)\n"
    "token:      --token-file FILE (one line) or RUNVAULT_TOKEN; the flag "
    "wins\n";

const char cli_usage_summary[] =
    "  ls             list runs (filters: --project --experiment --status "
    "--tag\n"
    "                 --param --day --filter; --order-by --limit --json)\n"
    "  show           one run: attributes, params, tags, metric summary\n"
    "  metrics        a metric series (--key K; --csv or --json)\n"
    "  logs           a run's log lines (--follow)\n"
    "  ingest         JSONL metric points and runs from a file or stdin\n"
    "  export         runs to a directory tree (--out DIR)\n"
    "  import         runs from an export tree, idempotently\n"
    "  team           create NAME | list: teams and their use against quota\n"
    "  token          create | list | revoke: the tokens of teams\n"
    "  quota set      a team's limits of runs, bytes and points/s\n"
    "  whoami         the caller's token id, team and role\n"
    "  audit          the audit log of admin actions\n"
    "  retention      set | clear | list: per-project retention and trash\n"
    "  compact        reclaim the bytes of purged runs on every node\n"
    "  backup         an online, incremental backup (--out DIR)\n";

static const struct cli_command cli_commands[] = {
    {"ls",
     CLI_READING | CLI_FLAG_BIT(O_TEAM) | CLI_FLAG_BIT(O_PROJECT) |
         CLI_FLAG_BIT(O_EXPERIMENT) | CLI_FLAG_BIT(O_STATUS) |
         CLI_FLAG_BIT(O_TAG) | CLI_FLAG_BIT(O_PARAM) | CLI_FLAG_BIT(O_DAY) |
         CLI_FLAG_BIT(O_FILTER) | CLI_FLAG_BIT(O_ORDER_BY) |
         CLI_FLAG_BIT(O_LIMIT) | CLI_FLAG_BIT(O_JSON),
     0, 0, cli__ls,
     "usage: runvault ls [--team T] [--project P] [--experiment E]\n"
     "           [--status S] [--tag K=V]... [--param K=V]...\n"
     "           [--day YYYY-MM-DD]\n"
     "           [--filter EXPR] [--order-by EXPR] [--limit N] [--json]\n"
     "           [--consistency stale|leader|linearizable]\n"
     "List runs, newest first unless --order-by says otherwise. The flags\n"
     "are joined with 'and' into one filter of the MLflow grammar (--day:\n"
     "created on that UTC day). --limit N rows (default 50, 0: all).\n"
     "--team T: one team's runs (a cluster-admin's token sees every team).\n"},
    {"show", CLI_READING | CLI_FLAG_BIT(O_JSON), 1, 1, cli__show,
     "usage: runvault show RUN_ID [--json]\n"
     "A run's attributes, params, tags and metric summary.\n"},
    {"metrics",
     CLI_READING | CLI_FLAG_BIT(O_KEY) | CLI_FLAG_BIT(O_CONTEXT) |
         CLI_FLAG_BIT(O_DOWNSAMPLE) | CLI_FLAG_BIT(O_MIN_STEP) |
         CLI_FLAG_BIT(O_MAX_STEP) | CLI_FLAG_BIT(O_JSON) | CLI_FLAG_BIT(O_CSV),
     1, 1, cli__metrics,
     "usage: runvault metrics RUN_ID --key K [--context C] [--downsample N]\n"
     "           [--min-step A] [--max-step B] [--json | --csv]\n"
     "The points of one series in step order; --csv prints\n"
     "step,timestamp,value (NaN, Infinity and -Infinity as such).\n"},
    {"logs", CLI_READING | CLI_FLAG_BIT(O_FOLLOW) | CLI_FLAG_BIT(O_FROM), 1, 1,
     cli__logs,
     "usage: runvault logs RUN_ID [--follow] [--from N]\n"
     "A run's log lines from line N (0-based) on. --follow polls for new\n"
     "ones until SIGINT or SIGTERM, or until the run is no longer RUNNING\n"
     "and no new lines came (exit 0 either way).\n"},
    {"ingest", CLI_COMMON, 0, 1, cli__ingest,
     "usage: runvault ingest [FILE | -]\n"
     "JSON lines from FILE or stdin, one object per line:\n"
     "  {\"run_id\",\"key\",\"step\",\"value\",\"timestamp\"?,"
     "\"context\"?,\n"
     "   \"project\"?,\"experiment\"?,\"name\"?}          a metric point\n"
     "  {\"type\":\"run\",\"run_id\",\"project\",\"experiment\",\"name\"?,\n"
     "   \"params\"?,\"tags\"?,\"created_at\"?,\"status\"?,\"ended_at\"?}\n"
     "  {\"type\":\"log\",\"run_id\",\"text\",\"stream\"?,\"timestamp\"?}\n"
     "  {\"type\":\"artifact\",\"run_id\",\"path\",\"file\","
     "\"content_type\"?}\n"
     "A run line creates the run (or resumes it); a point of a run not yet\n"
     "seen needs project and experiment unless the run exists. Values may\n"
     "be \"NaN\", \"Infinity\", \"-Infinity\"; timestamps default to now.\n"
     "Sent in batches, in order. At a bad line, everything before it is\n"
     "sent and acknowledged, nothing from it on, and the exit code is 10.\n"},
    {"export",
     CLI_READING | CLI_FLAG_BIT(O_OUT) | CLI_FLAG_BIT(O_TEAM) |
         CLI_FLAG_BIT(O_PROJECT) | CLI_FLAG_BIT(O_EXPERIMENT),
     0, 0, cli__export,
     "usage: runvault export --out DIR [--team T] [--project P]\n"
     "           [--experiment E]\n"
     "Write runs to DIR/PROJECT/EXPERIMENT/RUN_ID/{meta.json,status.json,\n"
     "events.jsonl,logs.txt,media/}.\n"},
    {"import", CLI_COMMON, 1, 1, cli__import,
     "usage: runvault import DIR\n"
     "Re-create the runs of an export tree with their run ids, metrics,\n"
     "logs and artifacts. Idempotent: importing the same tree again into\n"
     "the same cluster applies nothing twice.\n"},
    {"backup", CLI_COMMON | CLI_FLAG_BIT(O_OUT) | CLI_FLAG_BIT(O_TO), 0, 0,
     cli__backup,
     "usage: runvault backup --out DIR (or --to DIR)\n"
     "Copy the archive of the node answering (leader or follower) up to\n"
     "its applied index into DIR, over the native RPC (cluster-admin). The\n"
     "node first waits (up to 10 s) to have applied the leader's index, so\n"
     "every write acknowledged before the backup started is in it.\n"
     "Incremental: files DIR holds with the same name, size and SHA-256\n"
     "are kept. DIR/manifest.json names the index, its digest and the\n"
     "SHA-256 of every file; one JSON line of figures goes to stdout.\n"
     "Check it with runvault verify-backup DIR; restore with runvault\n"
     "restore DIR --data-dir D.\n"},
    {"team create", CLI_COMMON, 1, 1, cli__team_create,
     "usage: runvault team create TEAM\n"
     "Create a team (cluster-admin).\n"},
    {"team list", CLI_READING | CLI_FLAG_BIT(O_JSON), 0, 0, cli__team_list,
     "usage: runvault team list [--json]\n"
     "Teams with their use against quota: runs, bytes, points/s (- : no\n"
     "limit). A team's own tokens see only their team.\n"},
    {"token create",
     CLI_COMMON | CLI_FLAG_BIT(O_TEAM) | CLI_FLAG_BIT(O_ROLE) |
         CLI_FLAG_BIT(O_NAME) | CLI_FLAG_BIT(O_EXPIRES_IN) |
         CLI_FLAG_BIT(O_JSON),
     0, 0, cli__token_create,
     "usage: runvault token create --team TEAM --role ROLE --name NAME\n"
     "           [--expires-in 90d|12h|30m|3600s] [--json]\n"
     "Make a token (role reader, writer, admin, or cluster-admin without\n"
     "--team) and register its SHA-256. The token is printed on stdout this\n"
     "once and never again; its id goes to stderr (both in --json).\n"},
    {"token list", CLI_READING | CLI_FLAG_BIT(O_TEAM) | CLI_FLAG_BIT(O_JSON), 0,
     0, cli__token_list,
     "usage: runvault token list [--team TEAM] [--json]\n"
     "Tokens by id with team, role, name, created, expiry and state (never\n"
     "a secret).\n"},
    {"token revoke", CLI_COMMON, 1, 1, cli__token_revoke,
     "usage: runvault token revoke TOKEN_ID\n"
     "Revoke a token by its id (16 hex digits): refused from that log\n"
     "index on, on every node.\n"},
    {"quota set",
     CLI_COMMON | CLI_FLAG_BIT(O_MAX_RUNS) | CLI_FLAG_BIT(O_MAX_BYTES) |
         CLI_FLAG_BIT(O_MAX_POINTS_PER_S),
     1, 1, cli__quota_set,
     "usage: runvault quota set TEAM [--max-runs N] [--max-bytes N[K|M|G]]\n"
     "           [--max-points-per-s N]\n"
     "Set a team's limits (cluster-admin); 0 removes a limit, a flag not\n"
     "given keeps it. K, M, G are 2^10, 2^20, 2^30 bytes.\n"},
    {"retention set",
     CLI_COMMON | CLI_FLAG_BIT(O_TEAM) | CLI_FLAG_BIT(O_MAX_AGE) |
         CLI_FLAG_BIT(O_KEEP_LAST) | CLI_FLAG_BIT(O_STATUSES) |
         CLI_FLAG_BIT(O_TRASH),
     1, 1, cli__retention_set,
     "usage: runvault retention set PROJECT [--max-age 365d] [--keep-last N]\n"
     "           [--statuses FINISHED,FAILED] [--trash 30d] [--team TEAM]\n"
     "Replace a project's retention rule (a team admin). A run of one of\n"
     "the statuses (default FINISHED,FAILED,KILLED,CRASHED) older than\n"
     "--max-age and not among the --keep-last newest goes to trash; a run\n"
     "in trash longer than --trash (default 30d; 0: at once) is purged.\n"
     "Durations: N followed by d, h, m or s. The leader applies the rules\n"
     "as replicated commands; each trash and purge is audited.\n"},
    {"retention clear", CLI_COMMON | CLI_FLAG_BIT(O_TEAM), 1, 1,
     cli__retention_clear,
     "usage: runvault retention clear PROJECT [--team TEAM]\n"
     "Remove a project's rule (the default trash period applies again).\n"},
    {"retention list",
     CLI_READING | CLI_FLAG_BIT(O_TEAM) | CLI_FLAG_BIT(O_JSON), 0, 0,
     cli__retention_list,
     "usage: runvault retention list [--team TEAM] [--json]\n"
     "The retention rules a token sees (its team's; all for cluster-admin).\n"},
    {"compact", CLI_COMMON, 0, 0, cli__compact,
     "usage: runvault compact\n"
     "Ask for a compaction (cluster-admin): at its log index every node\n"
     "writes an image of its index and rewrites its sealed vlog segments\n"
     "without the commands of purged runs and superseded artifact chunks,\n"
     "in the background (--compact-rate bytes/s). The leader also asks by\n"
     "itself once --compact-min-bytes were purged.\n"},
    {"whoami", CLI_READING | CLI_FLAG_BIT(O_JSON), 0, 0, cli__whoami,
     "usage: runvault whoami [--json]\n"
     "The token id, team, role and name the cluster sees for the caller.\n"},
    {"audit",
     CLI_READING | CLI_FLAG_BIT(O_TEAM) | CLI_FLAG_BIT(O_SINCE_INDEX) |
         CLI_FLAG_BIT(O_LIMIT) | CLI_FLAG_BIT(O_JSON),
     0, 0, cli__audit,
     "usage: runvault audit [--team TEAM] [--since-index N] [--limit N]\n"
     "           [--json]\n"
     "Admin actions (teams, tokens, quotas, membership, delete, restore,\n"
     "purge) with index, time and token id, from log index N on; --limit\n"
     "rows (default 1000, 0: all). Cluster-admins see all, team admins\n"
     "their team.\n"},
};

#define CLI_N_COMMANDS (sizeof cli_commands / sizeof cli_commands[0])

/* The command named by argv[0] (and argv[1] for a group's verb); *used
 * is how many words name it. NULL if none. */
static const struct cli_command *
cli__command(int argc, char **argv, int *used)
{
    for (size_t i = 0; i < CLI_N_COMMANDS; i++) {
        const char *name = cli_commands[i].name, *sp = strchr(name, ' ');
        if (sp == NULL && strcmp(name, argv[0]) == 0) {
            *used = 1;
            return &cli_commands[i];
        }
        size_t g = sp ? (size_t)(sp - name) : 0;
        if (sp != NULL && argc >= 2 && strncmp(name, argv[0], g) == 0 &&
            argv[0][g] == '\0' && strcmp(sp + 1, argv[1]) == 0) {
            *used = 2;
            return &cli_commands[i];
        }
    }
    return NULL;
}

/* 1 if name is a group of commands ("token"). */
static int
cli__is_group(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < CLI_N_COMMANDS; i++)
        if (strncmp(cli_commands[i].name, name, n) == 0 &&
            cli_commands[i].name[n] == ' ')
            return 1;
    return 0;
}

int
cli_is_command(const char *name)
{
    int used;
    char *argv[1] = {(char *)name};
    return cli__command(1, argv, &used) != NULL || cli__is_group(name);
}

/* A group without a known verb: the usage of each of its verbs. */
static int
cli__group_usage(int argc, char **argv)
{
    size_t n = strlen(argv[0]);
    int is_help = argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
                                strcmp(argv[1], "--help") == 0);
    FILE *f = is_help ? stdout : stderr;
    if (!is_help)
        fprintf(f, "runvault %s: %s '%s'\n\n", argv[0],
                argc >= 2 ? "unknown verb" : "missing verb",
                argc >= 2 ? argv[1] : "");
    for (size_t i = 0; i < CLI_N_COMMANDS; i++)
        if (strncmp(cli_commands[i].name, argv[0], n) == 0 &&
            cli_commands[i].name[n] == ' ')
            fprintf(f, "%s\n", cli_commands[i].usage);
    fputs(cli_exit_text, f);
    return is_help ? RV_EXIT_OK : RV_EXIT_USAGE;
}

/* Endpoint, timeouts and read options into cl; -1 after a message. */
static int
cli__setup(struct cli *cl, const struct cli_args *a)
{
    const char *ep = cli_flags_value(a->v[O_ENDPOINT], "RUNVAULT_ENDPOINT",
                                     NODE_DEFAULT_ENDPOINT);
    uint64_t total = CLI_DEFAULT_TIMEOUT;
    if (a->v[O_TIMEOUT] != NULL &&
        (rv_parse_u64(a->v[O_TIMEOUT], &total) != 0 || total == 0 ||
         total > 3600000)) {
        fprintf(stderr, "runvault %s: --timeout-ms wants 1..3600000\n",
                cl->name);
        return -1;
    }
    rv__read_options__init(&cl->read);
    if (a->v[O_CONSISTENCY] != NULL) {
        static const char *const names[] = {"stale", "leader", "linearizable"};
        static const Rv__Consistency values[] = {RV__CONSISTENCY__STALE,
                                                 RV__CONSISTENCY__LEADER,
                                                 RV__CONSISTENCY__LINEARIZABLE};
        size_t i = 0;
        while (i < 3 && strcmp(names[i], a->v[O_CONSISTENCY]) != 0)
            i++;
        if (i == 3) {
            fprintf(stderr,
                    "runvault %s: --consistency is stale, leader or "
                    "linearizable\n",
                    cl->name);
            return -1;
        }
        cl->read.has_consistency = 1;
        cl->read.consistency = values[i];
    }
    if (cli__token_load(cl, a) != 0)
        return -1;
    char errmsg[RV_ERRMSG_SIZE] = "", prog[64];
    snprintf(prog, sizeof prog, "runvault %s", cl->name);
    if (cli_flags_tls(prog, a->v[O_TLS_CA], a->v[O_TLS_CERT], a->v[O_TLS_KEY],
                      &cl->tls) != 0)
        return -1;
    if (rvc_open(&cl->c, ep, errmsg) != RV_OK) {
        fprintf(stderr, "runvault %s: --endpoint: %s\n", cl->name, errmsg);
        return -1;
    }
    rvc_set_tls(cl->c, cl->tls);
    unsigned t = (unsigned)total;
    rvc_set_timeouts(cl->c, t < RVC_DEFAULT_ATTEMPT ? t : RVC_DEFAULT_ATTEMPT,
                     t);
    rvc_set_token(cl->c, cl->token[0] ? cl->token : NULL);
    cl->is_tty = isatty(STDERR_FILENO);
    return 0;
}

int
cli_main(int argc, char **argv)
{
    int used = 0;
    const struct cli_command *cmd = cli__command(argc, argv, &used);
    struct cli_args a;
    struct cli cl;
    char prog[64];
    if (cmd == NULL)
        return cli__is_group(argv[0]) ? cli__group_usage(argc, argv)
                                      : RV_EXIT_USAGE;
    snprintf(prog, sizeof prog, "runvault %s", cmd->name);
    struct cli_spec spec = {prog,       cli_flags,    O_COUNT,
                            cmd->flags, cmd->min_pos, cmd->max_pos};
    int rc = cli_flags_parse(&spec, argc - used, argv + used, &a);
    if (rc != 0) {
        FILE *f = rc == CLI_FLAGS_HELP ? stdout : stderr;
        fprintf(f, "%s%s", cmd->usage, cli_exit_text);
        return rc == CLI_FLAGS_HELP ? RV_EXIT_OK : RV_EXIT_USAGE;
    }
    memset(&cl, 0, sizeof cl);
    cl.name = cmd->name;
    if (cli__setup(&cl, &a) != 0) {
        cli__wipe(cl.token, sizeof cl.token);
        rvc_tls_close(cl.tls);
        return RV_EXIT_USAGE;
    }
    int code = cmd->run(&cl, &a);
    fflush(stdout);
    rvc_close(cl.c);
    cli__wipe(cl.token, sizeof cl.token);
    rvc_tls_close(cl.tls);
    return code;
}
