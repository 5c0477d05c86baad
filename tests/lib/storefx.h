/* A store in a temporary directory for unit tests: open, apply encoded
 * entries at consecutive indexes, close and remove. */
#ifndef RV_TESTS_LIB_STOREFX_H
#define RV_TESTS_LIB_STOREFX_H

#include "proto/proto.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct storefx {
    char *dir;
    struct store *s;
    uint64_t index; /* Of the last entry applied. */
    char errmsg[RV_ERRMSG_SIZE];
    struct store_result last; /* Result of the last command applied. */
};

/* (Re)open f->dir with the tests' store settings (1 GiB map, 64 KiB
 * segments). Returns store_open's code. */
int storefx_open(struct storefx *f);

/* A new temporary directory named after tag, and the store in it; aborts
 * the test when it cannot open. */
void storefx_init(struct storefx *f, const char *tag);

/* Close the store and remove the directory. */
void storefx_done(struct storefx *f);

/* Encode cmds as one entry and apply it to s at index; *out (n_out
 * results, freed by the caller) as store_apply gives them. */
int storefx_apply_at(struct store *s, uint64_t index, Rv__Command **cmds,
                     size_t n, struct store_result **out, size_t *n_out,
                     char *errmsg);

/* Encode cmds as one entry and apply it at the next index. Returns the
 * store_apply code; the results are copied into res (may be NULL) and the
 * last one into f->last. */
int storefx_apply(struct storefx *f, Rv__Command **cmds, size_t n,
                  struct store_result *res);

#endif
