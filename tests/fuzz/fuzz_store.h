/* A store for a libFuzzer target's whole run (fuzz_apply, fuzz_query). */
#ifndef RV_TESTS_FUZZ_FUZZ_STORE_H
#define RV_TESTS_FUZZ_FUZZ_STORE_H

#include "store/store.h"

/* Open a store in a new temporary directory ($TMPDIR or /tmp), closed and
 * removed at exit; target names the caller in messages. Aborts when it
 * cannot. */
struct store *fuzz_store_open(const char *target);

#endif /* RV_TESTS_FUZZ_FUZZ_STORE_H */
