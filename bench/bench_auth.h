/* Authentication for the benchmarks: the cluster-admin token a node
 * started with --auth on writes to DATA_DIR/admin.token, and the teams
 * and team tokens a benchmark makes with it (admin writes over native
 * RPC, the auth contract: Command.team_put, Command.token_put with the
 * hash of a token made here by rv_token_make).
 *
 * Threads: every function opens its own client; any thread. Token texts
 * are secrets: never printed, only sent in Request.token. */
#ifndef RV_BENCH_BENCH_AUTH_H
#define RV_BENCH_BENCH_AUTH_H

#include "base/token.h"
#include "proto/runvault.pb-c.h"
#include "tests/lib/cluster.h"

/* In every call, tls (borrowed; NULL: plain only) is used for tls+tcp://
 * endpoints. */
struct rvc_tls;

/* Wait (at most timeout_ms) until the cluster at endpoints (a
 * comma-separated RPC list) answers whoami to token as a cluster-admin.
 * RV_OK or RV_ETIMEDOUT. */
int bench_auth_wait_admin(const char *endpoints, const struct rvc_tls *tls,
                          const char *token, unsigned timeout_ms, char *errmsg);

/* Create team through endpoints as admin (a cluster-admin token); an
 * existing team is fine. RV_OK or the error. */
int bench_auth_team(const char *endpoints, const struct rvc_tls *tls,
                    const char *admin, const char *team, char *errmsg);

/* Make a token of role in team (name: its listing label) as admin and
 * register its hash; RV_OK and the token text in out, else the error. */
int bench_auth_token(const char *endpoints, const struct rvc_tls *tls,
                     const char *admin, const char *team, Rv__Role role,
                     const char *name, char out[RV_TOKEN_TEXT_CHARS + 1],
                     char *errmsg);

/* Start c's nodes (cluster_init done, nothing running) with --auth on
 * (c->extra[0..1]; the rest of c->extra must be free). With auth on a node
 * answers status only to a token, so cluster_start_all/cluster_leader
 * cannot tell when it is up: this waits (at most timeout_ms) for the
 * first leader's admin.token (into admin) and for the node that answers
 * status as leader to it (its index into *leader). RV_OK, or RV_ETIMEDOUT
 * with errmsg; the caller's cluster_done() stops the nodes either way. */
int bench_auth_cluster_start(struct cluster *c, unsigned timeout_ms,
                             char admin[RV_TOKEN_TEXT_CHARS + 1], int *leader,
                             char *errmsg);

/* bench_auth_cluster_start, then team and a token of role in it (made
 * with the admin token) into out. RV_OK, or the first error (errmsg says
 * which). */
int bench_auth_cluster_principal(struct cluster *c, const char *team,
                                 Rv__Role role, const char *name,
                                 char out[RV_TOKEN_TEXT_CHARS + 1], int *leader,
                                 char *errmsg);

#endif /* RV_BENCH_BENCH_AUTH_H */
