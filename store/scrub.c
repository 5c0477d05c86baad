/* The vlog scrub thread (contract in scrub.h). */
#include "store/scrub.h"

#include "base/clock.h"
#include "base/err.h"
#include "store/vlog.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct store_scrub {
    char dir[4096]; /* data_dir/vlog */
    const struct rv_log *log;
    store_scrub_corrupt_fn on_corrupt;
    void *data;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int is_stop; /* Under lock. */
};

/* Wait pause_ms or until stopped (lock held). Returns 1 to scrub next. */
static int
store__scrub_pause(struct store_scrub *s, uint64_t pause_ms)
{
    struct timespec until;
    rv_deadline_mono(&until, pause_ms);
    return pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT &&
           !s->is_stop;
}

static void *
store__scrub_main(void *arg)
{
    struct store_scrub *s = arg;
    char errmsg[RV_ERRMSG_SIZE];
    uint32_t cursor = 0;
    uint64_t pause_ms = STORE_SCRUB_FIRST_MS;
    pthread_mutex_lock(&s->lock);
    while (!s->is_stop) {
        if (!store__scrub_pause(s, pause_ms))
            continue;
        pthread_mutex_unlock(&s->lock);
        uint64_t bytes = 0;
        int rc = vlog_scrub(s->dir, &cursor, &bytes, errmsg);
        if (rc == RV_ECORRUPT) {
            rv_logf(s->log, RV_LOG_ERROR, "replica", "scrub: %s", errmsg);
        } else if (rc != RV_OK && rc != RV_ENOTFOUND) {
            rv_logf(s->log, RV_LOG_WARN, "replica", "scrub: %s: %s",
                    rv_strerror(rc), errmsg);
        }
        pthread_mutex_lock(&s->lock);
        if (rc == RV_ECORRUPT) {
            /* Under the lock: store_scrub_stop() waits for the report. */
            if (!s->is_stop)
                s->on_corrupt(s->data, errmsg);
            break;
        }
        pause_ms =
            STORE_SCRUB_PAUSE_MS + bytes * 1000 / STORE_SCRUB_BYTES_PER_S;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int
store_scrub_start(struct store_scrub **out, const char *data_dir,
                  const struct rv_log *log, store_scrub_corrupt_fn on_corrupt,
                  void *data)
{
    struct store_scrub *s = calloc(1, sizeof *s);
    if (s == NULL)
        return RV_ENOMEM;
    snprintf(s->dir, sizeof s->dir, "%s/vlog", data_dir);
    s->log = log;
    s->on_corrupt = on_corrupt;
    s->data = data;
    pthread_mutex_init(&s->lock, NULL);
    rv_cond_init_mono(&s->cond);
    if (pthread_create(&s->thread, NULL, store__scrub_main, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
        return RV_ENOMEM;
    }
    *out = s;
    return RV_OK;
}

void
store_scrub_stop(struct store_scrub *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->is_stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void
store_scrub_wait(struct store_scrub *s)
{
    if (s == NULL)
        return;
    store_scrub_stop(s);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
