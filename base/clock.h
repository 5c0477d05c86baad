/* Time and randomness. The apply path of the store never uses either: it
 * is a pure function of (state, entry).
 *
 * Time can be injected through struct rv_clock: code that takes a
 * `const struct rv_clock *` reads time only through it, and a test passes
 * a manual clock it moves by hand (rv_clock_manual_init). The free
 * functions rv_clock_wall_ms/rv_clock_mono_ns read the system clocks and
 * cannot be controlled. Today every caller outside base/ still calls them
 * directly, so tests do NOT control time there; where injection would go
 * (a `const struct rv_clock *` in the owning struct, set by node/ from
 * rv_clock_system()): gateway/gateway.c and gateway_route.c (request
 * timing, timestamps of created runs), rpc/client/client.c (deadlines and
 * retries), node/serve.c, node/cluster.c, node/cli/, node/main.c
 * (progress, waits). Randomness is injectable already: struct rv_rng is
 * seeded by its owner. All functions here: any thread. */
#ifndef RV_BASE_CLOCK_H
#define RV_BASE_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall clock in ms since the epoch, and a monotonic clock in ns. */
uint64_t rv_clock_wall_ms(void);
uint64_t rv_clock_mono_ns(void);
static inline uint64_t
rv_clock_mono_ms(void)
{
    return rv_clock_mono_ns() / 1000000u;
}

/* A source of time. Both functions get data; neither may fail. The struct
 * is borrowed by whoever is given it and must outlive them. */
struct rv_clock {
    uint64_t (*wall_ms)(void *data); /* ms since the epoch */
    uint64_t (*mono_ns)(void *data); /* monotonic ns, never goes back */
    void *data;
};

/* The system clocks (rv_clock_wall_ms, rv_clock_mono_ns). Static, never
 * freed, shared by every caller. */
const struct rv_clock *rv_clock_system(void);

/* Read clock c; c NULL reads the system clocks. */
uint64_t rv_clock_read_wall_ms(const struct rv_clock *c);
uint64_t rv_clock_read_mono_ns(const struct rv_clock *c);

/* A clock that moves only when its owner sets the fields: for tests. */
struct rv_clock_manual {
    uint64_t wall_ms;
    uint64_t mono_ns;
};

/* Make *c read *m. m is borrowed and must outlive every use of c. */
void rv_clock_manual_init(struct rv_clock *c, struct rv_clock_manual *m);

/* Sleep the calling thread (never the raft loop in normal operation). */
void rv_clock_sleep_ms(unsigned ms);

/* Timed waits that a wall-clock step cannot stretch or cut short: a
 * condition variable on CLOCK_MONOTONIC, and the absolute monotonic time
 * ms from now for pthread_cond_timedwait on it. */
int rv_cond_init_mono(pthread_cond_t *cond);
void rv_deadline_mono(struct timespec *until, uint64_t ms);

/* A seeded pseudo-random generator (xoshiro256**). Not for secrets. */
struct rv_rng {
    uint64_t s[4];
};

void rv_rng_seed(struct rv_rng *r, uint64_t seed);
uint64_t rv_rng_next(struct rv_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t rv_rng_below(struct rv_rng *r, uint64_t n);
/* Uniform double in [0, 1). */
double rv_rng_double(struct rv_rng *r);

/* Fill out with n bytes from the kernel's generator (getrandom(2), else
 * /dev/urandom): fit for secrets. Returns RV_OK, or RV_EIO when the kernel
 * gave no bytes (out is then unspecified: never use it). Any thread. */
int rv_random_bytes(void *out, size_t n);

/* A random nonzero 64-bit value for ids (client ids, run ids), not for
 * secrets: rv_random_bytes, else, when the kernel gives nothing, a mix of
 * the clocks, the pid and salt (any address unique to the caller). Any
 * thread. */
uint64_t rv_random_id(const void *salt);

#endif /* RV_BASE_CLOCK_H */
