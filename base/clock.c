#include "base/clock.h"

#include "base/err.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t
rv_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
rv_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
rv_clock_system_wall_ms(void *data)
{
    (void)data;
    return rv_clock_wall_ms();
}

static uint64_t
rv_clock_system_mono_ns(void *data)
{
    (void)data;
    return rv_clock_mono_ns();
}

static const struct rv_clock rv_clock_system_clock = {
    rv_clock_system_wall_ms, rv_clock_system_mono_ns, NULL};

const struct rv_clock *
rv_clock_system(void)
{
    return &rv_clock_system_clock;
}

uint64_t
rv_clock_read_wall_ms(const struct rv_clock *c)
{
    return c == NULL ? rv_clock_wall_ms() : c->wall_ms(c->data);
}

uint64_t
rv_clock_read_mono_ns(const struct rv_clock *c)
{
    return c == NULL ? rv_clock_mono_ns() : c->mono_ns(c->data);
}

static uint64_t
rv_clock_manual_wall_ms(void *data)
{
    return ((const struct rv_clock_manual *)data)->wall_ms;
}

static uint64_t
rv_clock_manual_mono_ns(void *data)
{
    return ((const struct rv_clock_manual *)data)->mono_ns;
}

void
rv_clock_manual_init(struct rv_clock *c, struct rv_clock_manual *m)
{
    c->wall_ms = rv_clock_manual_wall_ms;
    c->mono_ns = rv_clock_manual_mono_ns;
    c->data = m;
}

static uint64_t
rv_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void
rv_rng_seed(struct rv_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rv_splitmix64(&seed);
}

static uint64_t
rv_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t
rv_rng_next(struct rv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rv_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rv_rotl(s[3], 45);
    return result;
}

uint64_t
rv_rng_below(struct rv_rng *r, uint64_t n)
{
    return rv_rng_next(r) % n;
}

double
rv_rng_double(struct rv_rng *r)
{
    return (double)(rv_rng_next(r) >> 11) * 0x1.0p-53;
}

void
rv_clock_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int
rv_random_bytes(void *out, size_t n)
{
    unsigned char *p = out;
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(p + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got == n)
        return RV_OK;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL)
        return RV_EIO;
    size_t k = fread(p, 1, n, f);
    fclose(f);
    return k == n ? RV_OK : RV_EIO;
}

uint64_t
rv_random_id(const void *salt)
{
    uint64_t id = 0;
    if (rv_random_bytes(&id, sizeof id) != RV_OK || id == 0) {
        struct rv_rng rng;
        rv_rng_seed(&rng, rv_clock_wall_ms() ^ rv_clock_mono_ns() ^
                              ((uint64_t)getpid() << 32) ^
                              (uint64_t)(uintptr_t)salt);
        id = rv_rng_next(&rng);
    }
    return id != 0 ? id : 1;
}

int
rv_cond_init_mono(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

void
rv_deadline_mono(struct timespec *until, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, until);
    until->tv_sec += (time_t)(ms / 1000);
    until->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}
