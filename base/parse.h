/* Checked decimal numbers from text: flags, config values, query and path
 * parameters, numbers in answers. One definition of "a number" for every
 * front door: decimal digits only (no space, no '+'; a leading '-' only
 * for the signed parse), at least one digit, no overflow.
 *
 * Any thread; no state. */
#ifndef RV_BASE_PARSE_H
#define RV_BASE_PARSE_H

#include <stdint.h>

/* The number at the start of s: 0 with *out and *end (the first byte after
 * the digits) set, or -1 with both untouched if s is NULL, does not start
 * with a digit (after '-' for rv_parse_i64_prefix) or the number does not
 * fit. What follows the digits is the caller's to check. */
int rv_parse_u64_prefix(const char *s, uint64_t *out, const char **end);
int rv_parse_i64_prefix(const char *s, int64_t *out, const char **end);

/* s whole as a number: as the prefix forms, and -1 unless the digits end
 * the string. */
int rv_parse_u64(const char *s, uint64_t *out);
int rv_parse_i64(const char *s, int64_t *out);

#endif /* RV_BASE_PARSE_H */
