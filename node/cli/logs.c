/* runvault logs RUN_ID [--follow]: a run's log lines, polled for new
 * ones until a signal or the end of the run. */
#include "base/clock.h"
#include "base/exit.h"
#include "base/parse.h"
#include "node/cli/cli_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

/* Wait up to ms for SIGINT or SIGTERM (blocked by the caller); 1 if one
 * came. */
static int
cli__wait_signal(const sigset_t *set, unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    for (;;) {
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return 1;
        if (errno != EINTR)
            return 0;
    }
}

static int
cli__run_is_live(struct cli *cl, const char *run_id, int *is_live)
{
    Rv__Response *resp;
    int rc = cli__get_run(cl, run_id, &resp);
    if (rc != RV_OK)
        return rc;
    *is_live = resp->run->status == RV__RUN_STATUS__RUNNING ||
               resp->run->status == RV__RUN_STATUS__SCHEDULED;
    rvc_response_free(resp);
    return RV_OK;
}

int
cli__logs(struct cli *cl, const struct cli_args *a)
{
    uint64_t next = 0;
    int is_follow = a->v[O_FOLLOW] != NULL, is_ended = 0;
    sigset_t set;
    if (a->v[O_FROM] != NULL && rv_parse_u64(a->v[O_FROM], &next) != 0) {
        fprintf(stderr, "runvault logs: --from wants a line number\n");
        return RV_EXIT_USAGE;
    }
    /* Blocked in this thread and in the nng threads it starts (none run
     * yet: rvc_open dials nothing), then taken by sigtimedwait. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (is_follow)
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        Rv__Response *resp;
        int rc = cli__logs_page(cl, a->pos[0], next, &resp);
        if (rc == RV_ENOTFOUND)
            rv_errmsg_printf(cl->errmsg, "run '%s' not found", a->pos[0]);
        if (rc != RV_OK)
            return cli__fail(cl, rc, cli__exit_for(rc));
        for (size_t i = 0; i < resp->n_lines; i++) {
            const char *t = resp->lines[i]->text;
            size_t tn = strlen(t);
            fputs(t, stdout);
            if (tn == 0 || t[tn - 1] != '\n')
                fputc('\n', stdout);
        }
        size_t n = resp->n_lines;
        next = resp->has_next_line ? resp->next_line : next + n;
        rvc_response_free(resp);
        fflush(stdout);
        if (is_follow && cli__wait_signal(&set, 0))
            return RV_EXIT_OK;
        if (n > 0)
            continue;
        if (!is_follow || is_ended)
            return RV_EXIT_OK;
        /* Caught up: a run that ended gets one more look for its last
         * lines; a live one is polled. */
        int is_live = 1;
        rc = cli__run_is_live(cl, a->pos[0], &is_live);
        if (rc != RV_OK)
            return cli__fail(cl, rc, cli__exit_for(rc));
        if (!is_live)
            is_ended = 1;
        else if (cli__wait_signal(&set, CLI_FOLLOW_POLL_MS))
            return RV_EXIT_OK;
    }
}
