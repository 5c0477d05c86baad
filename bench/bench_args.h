/* Checked decimal numbers for the benchmarks: the values of their
 * command-line flags and the numbers in the answers they measure. Every
 * parse wants a whole unsigned decimal: digits only (no sign, no space),
 * at least one, nothing after it, no overflow. */
#ifndef RV_BENCH_BENCH_ARGS_H
#define RV_BENCH_BENCH_ARGS_H

#include "base/token.h"

#include <stdint.h>

/* s as a number in [lo, hi]: 0 and *out, or -1 (*out untouched) if s is
 * NULL, empty, not all digits, or out of range. */
int bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* The value v of the command-line flag named flag ("--runs") as a number
 * in [lo, hi]; if it is not one, prints "PROG: --runs wants a whole number
 * in [lo, hi], not 'v'" on stderr, sets *is_bad to 1 and returns lo. The
 * caller prints its usage and exits as for an unknown flag. */
uint64_t bench_flag_u64(const char *prog, const char *flag, const char *v,
                        uint64_t lo, uint64_t hi, int *is_bad);

/* The value of the member "name" of the JSON text body (the first
 * "name": in it), an unsigned integer, bare or quoted (proto3's JSON
 * quotes 64-bit integers): 0 and *out; 1 if body has no such member; -1
 * (*out untouched) if the value is not a whole unsigned decimal below
 * 2^64 ending where a JSON value ends. */
int bench_json_u64(const char *body, const char *name, uint64_t *out);

/* "on" or "off" (a flag's value) into *is_on: 0, or 1 if it is neither. */
int bench_on_off(const char *v, int *is_on);

/* The caller's token for --token-file FILE: the file's first line, or,
 * with path NULL, the environment variable RUNVAULT_TOKEN. 0 and the token
 * text in out; 1 if path is NULL and RUNVAULT_TOKEN is unset or empty (no
 * token: auth off); -1 after "PROG: ..." on stderr (unreadable file, not
 * a token, base/token.h). The token is never printed. */
int bench_token_load(const char *prog, const char *path,
                     char out[RV_TOKEN_TEXT_CHARS + 1]);

#endif /* RV_BENCH_BENCH_ARGS_H */
