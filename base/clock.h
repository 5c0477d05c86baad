/* Time and randomness come in through these, so tests control them.
 * The apply path of the store never uses either: it is a pure function of
 * (state, entry). */
#ifndef RV_BASE_CLOCK_H
#define RV_BASE_CLOCK_H

#include <stdint.h>

/* Wall clock in ms since the epoch, and a monotonic clock in ns. */
uint64_t rv_clock_wall_ms(void);
uint64_t rv_clock_mono_ns(void);
static inline uint64_t
rv_clock_mono_ms(void)
{
    return rv_clock_mono_ns() / 1000000u;
}

/* Sleep the calling thread (never the raft loop in normal operation). */
void rv_clock_sleep_ms(unsigned ms);

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

#endif /* RV_BASE_CLOCK_H */
