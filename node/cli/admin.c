/* runvault team create, token create|revoke, quota set (DESIGN Appendix
 * B.1): each is one replicated command sent as a write of its own, with
 * an idempotency key so a retried send applies once. A token is made here
 * (rv_token_make): only its SHA-256 is sent, and its text is printed once,
 * on stdout, by token create and nowhere else. */
#include "base/clock.h"
#include "base/exit.h"
#include "base/parse.h"
#include "node/cli/cli_int.h"

#include <stdio.h>
#include <string.h>

/* The longest --expires-in: ten years. */
#define CLI_MAX_EXPIRES_S (UINT64_C(10) * 366 * 86400)

/* 1 if s holds a control character (C0 or DEL). */
static int
cli__has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* s is a name the cluster takes for what (--team, --name): 1..max bytes
 * of UTF-8 without control characters. 0, or -1 after a message. */
static int
cli__name_check(const struct cli *cl, const char *what, const char *s,
                size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !contract_utf8_valid(s, n) ||
        cli__has_control(s)) {
        fprintf(stderr,
                "runvault %s: %s wants 1..%zu bytes of UTF-8 without "
                "control characters\n",
                cl->name, what, max);
        return -1;
    }
    return 0;
}

/* A team name (never "*", which names every team). */
int
cli__team_check(const struct cli *cl, const char *what, const char *team)
{
    if (cli__name_check(cl, what, team, CONTRACT_MAX_TEAM_BYTES) != 0)
        return -1;
    if (strcmp(team, "*") == 0) {
        fprintf(stderr, "runvault %s: %s '*' names every team, not one\n",
                cl->name, what);
        return -1;
    }
    return 0;
}

/* "90d", "12h", "30m", "3600s" or "3600" as seconds, 1..ten years; -1
 * if not. */
static int
cli__parse_duration(const char *s, uint64_t *out)
{
    static const char units[] = "smhd";
    static const uint64_t mult[] = {1, 60, 3600, 86400};
    uint64_t n;
    const char *end;
    if (rv_parse_u64_prefix(s, &n, &end) != 0)
        return -1;
    size_t k = 0; /* Seconds without a unit. */
    if (end[0] != '\0') {
        const char *u = strchr(units, end[0]);
        if (u == NULL || end[1] != '\0')
            return -1;
        k = (size_t)(u - units);
    }
    uint64_t m = mult[k];
    if (n == 0 || n > CLI_MAX_EXPIRES_S / m)
        return -1;
    *out = n * m;
    return 0;
}

/* "N", "NK", "NM" or "NG" (binary: 2^10, 2^20, 2^30) as bytes; -1 if
 * not or if it does not fit in 64 bits. */
static int
cli__parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "KMG";
    uint64_t n;
    const char *end;
    if (rv_parse_u64_prefix(s, &n, &end) != 0)
        return -1;
    unsigned shift = 0;
    if (end[0] != '\0') {
        const char *u = strchr(units, end[0]);
        if (u == NULL || end[1] != '\0')
            return -1;
        shift = 10u * (unsigned)(u - units + 1);
    }
    if (shift > 0 && n > (UINT64_MAX >> shift))
        return -1;
    *out = n << shift;
    return 0;
}

/* Send cmd as a write of its own. RV_OK, or the failure with its text in
 * cl->errmsg (the command's own outcome when the write was answered). */
int
cli__admin_write(struct cli *cl, Rv__Command *cmd, uint64_t *index)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest w = RV__WRITE_REQUEST__INIT;
    Rv__Command *cmds[1] = {cmd};
    Rv__Response *resp;
    cmd->has_client_id = cmd->has_seq = 1;
    cmd->client_id = rv_random_id(cl);
    cmd->seq = 1;
    w.n_commands = 1;
    w.commands = cmds;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &w;
    int rc = cli__rpc(cl, &req, &resp);
    if (rc != RV_OK)
        return rc;
    if (resp->n_results < 1) {
        rvc_response_free(resp);
        rv_errmsg_printf(cl->errmsg, "the answer holds no result");
        return RV_EMALFORMED;
    }
    const Rv__CommandResult *res = resp->results[0];
    rc = (int)res->code;
    if (rc != RV_OK)
        rv_errmsg_printf(cl->errmsg, "%s%s", cli__refusal_hint(rc),
                         res->message && res->message[0] ? res->message
                                                         : rv_strerror(rc));
    if (index != NULL)
        *index = resp->index;
    rvc_response_free(resp);
    return rc;
}

/* The outcome of an admin write as an exit code, after a message. */
int
cli__admin_done(struct cli *cl, int rc)
{
    return rc == RV_OK ? RV_EXIT_OK : cli__fail(cl, rc, cli__exit_for(rc));
}

int
cli__team_create(struct cli *cl, const struct cli_args *a)
{
    const char *team = a->pos[0];
    if (cli__team_check(cl, "TEAM", team) != 0)
        return RV_EXIT_USAGE;
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__TeamPut t = RV__TEAM_PUT__INIT;
    t.team = (char *)team;
    cmd.body_case = RV__COMMAND__BODY_TEAM_PUT;
    cmd.team_put = &t;
    int rc = cli__admin_write(cl, &cmd, NULL);
    if (rc == RV_EEXIST)
        rv_errmsg_printf(cl->errmsg, "team '%s' exists", team);
    if (rc == RV_OK)
        printf("team %s created\n", team);
    return cli__admin_done(cl, rc);
}

/* The team and role of token create into *team and *role; 0, or -1 after
 * a message. A cluster-admin token is of team "*". */
static int
cli__token_scope(struct cli *cl, const struct cli_args *a, const char **team,
                 Rv__Role *role)
{
    const char *r = a->v[O_ROLE];
    if (r == NULL || proto_role_parse(r, role) != 0) {
        fprintf(stderr,
                "runvault %s: --role is reader, writer, admin or "
                "cluster-admin\n",
                cl->name);
        return -1;
    }
    *team = a->v[O_TEAM];
    if (*role == RV__ROLE__ROLE_CLUSTER_ADMIN) {
        if (*team != NULL && strcmp(*team, "*") != 0) {
            fprintf(stderr,
                    "runvault %s: a cluster-admin token is of every team: "
                    "give no --team (or --team '*')\n",
                    cl->name);
            return -1;
        }
        *team = "*";
        return 0;
    }
    if (*team == NULL) {
        fprintf(stderr, "runvault %s: --team TEAM is required\n", cl->name);
        return -1;
    }
    return cli__team_check(cl, "--team", *team);
}

/* The new token's text on stdout (the only place it is ever shown), its
 * id on stderr, or both in one JSON object with --json. 0, or -1 if
 * stdout could not take it. */
static int
cli__token_show(const struct cli_args *a, const char *text, const char *id,
                const char *team, Rv__Role role, uint64_t expires_s)
{
    if (a->v[O_JSON] != NULL) {
        json_t *doc = json_object();
        json_object_set_new(doc, "token_id", cli__json_string(id));
        json_object_set_new(doc, "token", cli__json_string(text));
        json_object_set_new(doc, "team", cli__json_string(team));
        json_object_set_new(doc, "role",
                            cli__json_string(proto_role_name((int)role)));
        json_object_set_new(doc, "name", cli__json_string(a->v[O_NAME]));
        json_object_set_new(doc, "expires_in_s",
                            expires_s ? json_integer((json_int_t)expires_s)
                                      : json_null());
        if (cli__json_print(stdout, doc, 0) != 0)
            return -1;
    } else {
        printf("%s\n", text);
        fprintf(stderr,
                "runvault token create: token id %s (team %s, role %s); the "
                "token above is shown only this once\n",
                id, team, proto_role_name((int)role));
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

/* The flags of token create checked: scope, name and expiry. */
static int
cli__token_args(struct cli *cl, const struct cli_args *a, const char **team,
                Rv__Role *role, uint64_t *expires_s)
{
    if (cli__token_scope(cl, a, team, role) != 0)
        return -1;
    if (a->v[O_NAME] == NULL) {
        fprintf(stderr, "runvault %s: --name NAME is required\n", cl->name);
        return -1;
    }
    if (cli__name_check(cl, "--name", a->v[O_NAME],
                        CONTRACT_MAX_TOKEN_NAME_BYTES) != 0)
        return -1;
    *expires_s = 0;
    if (a->v[O_EXPIRES_IN] != NULL &&
        cli__parse_duration(a->v[O_EXPIRES_IN], expires_s) != 0) {
        fprintf(stderr,
                "runvault %s: --expires-in wants N followed by d, h, m or s "
                "(1 s to 10 years): 90d, 12h, 3600s\n",
                cl->name);
        return -1;
    }
    return 0;
}

int
cli__token_create(struct cli *cl, const struct cli_args *a)
{
    const char *team;
    Rv__Role role;
    uint64_t expires_s;
    char text[RV_TOKEN_TEXT_CHARS + 1], id[RV_TOKEN_ID_CHARS + 1];
    uint8_t sha[RV_TOKEN_SHA256];
    if (cli__token_args(cl, a, &team, &role, &expires_s) != 0)
        return RV_EXIT_USAGE;
    if (rv_token_make(text, id, sha) != RV_OK) {
        fprintf(stderr, "runvault %s: no random bytes from the kernel\n",
                cl->name);
        return RV_EXIT_FAILURE;
    }
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__TokenPut t = RV__TOKEN_PUT__INIT;
    t.token_sha256.data = sha;
    t.token_sha256.len = sizeof sha;
    t.team = (char *)team;
    t.has_role = 1;
    t.role = role;
    t.token_id = id;
    t.name = (char *)a->v[O_NAME];
    t.has_expires_in_s = expires_s > 0;
    t.expires_in_s = expires_s;
    cmd.body_case = RV__COMMAND__BODY_TOKEN_PUT;
    cmd.token_put = &t;
    int rc = cli__admin_write(cl, &cmd, NULL);
    int code = cli__admin_done(cl, rc);
    if (rc == RV_OK &&
        cli__token_show(a, text, id, team, role, expires_s) != 0) {
        fprintf(stderr,
                "runvault %s: token %s was made but could not be written to "
                "stdout: revoke it with runvault token revoke %s\n",
                cl->name, id, id);
        code = RV_EXIT_FAILURE;
    }
    cli__wipe(text, sizeof text);
    return code;
}

int
cli__token_revoke(struct cli *cl, const struct cli_args *a)
{
    const char *id = a->pos[0];
    char parsed[RV_TOKEN_ID_CHARS + 1];
    size_t n = strlen(id);
    if (!rv_token_id_valid(id, n)) {
        fprintf(stderr,
                "runvault %s: TOKEN_ID is the token's id (16 lower-case hex "
                "digits%s)\n",
                cl->name,
                rv_token_parse(id, n, parsed) == RV_OK
                    ? ", not the token itself: that is a secret"
                    : "");
        return RV_EXIT_USAGE;
    }
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__TokenDel d = RV__TOKEN_DEL__INIT;
    uint64_t index = 0;
    d.token_id = (char *)id;
    cmd.body_case = RV__COMMAND__BODY_TOKEN_DEL;
    cmd.token_del = &d;
    int rc = cli__admin_write(cl, &cmd, &index);
    if (rc == RV_ENOTFOUND)
        rv_errmsg_printf(cl->errmsg, "no token %s", id);
    if (rc == RV_OK)
        printf("token %s revoked (index %llu)\n", id,
               (unsigned long long)index);
    return cli__admin_done(cl, rc);
}

/* One quota flag into *has and *v; 0, or -1 after a message. */
static int
cli__quota_flag(const struct cli *cl, const char *flag, const char *s,
                int is_size, protobuf_c_boolean *has, uint64_t *v)
{
    if (s == NULL)
        return 0;
    if ((is_size ? cli__parse_size(s, v) : rv_parse_u64(s, v)) != 0) {
        fprintf(stderr, "runvault %s: --%s wants a number%s (0: no limit)\n",
                cl->name, flag, is_size ? " with an optional K, M or G" : "");
        return -1;
    }
    *has = 1;
    return 0;
}

int
cli__quota_set(struct cli *cl, const struct cli_args *a)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__QuotaPut q = RV__QUOTA_PUT__INIT;
    q.team = (char *)a->pos[0];
    if (cli__team_check(cl, "TEAM", q.team) != 0 ||
        cli__quota_flag(cl, "max-runs", a->v[O_MAX_RUNS], 0, &q.has_max_runs,
                        &q.max_runs) != 0 ||
        cli__quota_flag(cl, "max-bytes", a->v[O_MAX_BYTES], 1, &q.has_max_bytes,
                        &q.max_bytes) != 0 ||
        cli__quota_flag(cl, "max-points-per-s", a->v[O_MAX_POINTS_PER_S], 0,
                        &q.has_max_points_per_s, &q.max_points_per_s) != 0)
        return RV_EXIT_USAGE;
    if (!q.has_max_runs && !q.has_max_bytes && !q.has_max_points_per_s) {
        fprintf(stderr,
                "runvault %s: give --max-runs, --max-bytes or "
                "--max-points-per-s\n",
                cl->name);
        return RV_EXIT_USAGE;
    }
    cmd.body_case = RV__COMMAND__BODY_QUOTA_PUT;
    cmd.quota_put = &q;
    int rc = cli__admin_write(cl, &cmd, NULL);
    if (rc == RV_ENOTFOUND)
        rv_errmsg_printf(cl->errmsg, "no team '%s'", q.team);
    if (rc == RV_OK)
        printf("quota of team %s set\n", q.team);
    return cli__admin_done(cl, rc);
}
