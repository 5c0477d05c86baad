/* The run filter language: MLflow's search_runs grammar plus OR, NOT-free
 * parentheses, and IN / NOT IN on params and tags (DESIGN §8).
 *
 *   filter   := or_expr
 *   or_expr  := and_expr ( OR and_expr )*
 *   and_expr := primary ( AND primary )*
 *   primary  := '(' or_expr ')' | compare
 *   compare  := ident op value | ident (IN | NOT IN) '(' value (',' value)* ')'
 *   ident    := prefix '.' name | attribute-name
 *   prefix   := metrics|metric | params|param|parameter|parameters
 *             | tags|tag | attributes|attribute|attr|run
 *   name     := bare word [A-Za-z0-9_.:/-]+ | "double quoted" | `backticked`
 *   value    := 'single quoted string' (with '' for a quote) | number
 *   op       := = | != | <> | < | <= | > | >= | LIKE | ILIKE
 *
 * Keywords are case-insensitive. Attributes: run_id, run_name (alias
 * "run name", name), status, user_id (alias user), project, experiment,
 * team, lifecycle_stage, start_time (aliases created, created_at),
 * end_time. A bare attribute name may omit "attributes.".
 *
 * Types (as MLflow): metrics and the numeric attributes start_time and
 * end_time take = != < <= > >= with a number; params, tags and string
 * attributes take = != LIKE ILIKE IN NOT IN with strings. LIKE is
 * case-sensitive with % and _ wildcards, ILIKE is not. A run lacking the
 * param, tag or metric named never matches the comparison (not even !=).
 * Metrics compare the latest value of the series with the empty context.
 *
 * ORDER BY: a comma-separated list of "ident [ASC|DESC]" (ASC default).
 * Ties are broken by start_time DESC, then run_id ASC (MLflow). Missing
 * values sort last in both directions; NaN sorts after every number.
 *
 * Errors name the 1-based character position and what was expected:
 * "at position 17: expected a comparison operator, found 'foo'". */
#ifndef RV_STORE_FILTER_H
#define RV_STORE_FILTER_H

#include "proto/contract.h"

#include <stddef.h>
#include <stdint.h>

#define FILTER_MAX_EXPR_BYTES  CONTRACT_MAX_FILTER_BYTES /* Else RV_ETOOBIG. */
#define FILTER_MAX_NODES       256 /* Comparisons + AND/OR nodes. */
#define FILTER_MAX_DEPTH       32  /* Parenthesis nesting. */
#define FILTER_MAX_IN_VALUES   1000
#define FILTER_MAX_ORDER_TERMS 8

enum filter_field {
    FILTER_FIELD_ATTR,
    FILTER_FIELD_PARAM,
    FILTER_FIELD_TAG,
    FILTER_FIELD_METRIC,
};

enum filter_attr {
    FILTER_ATTR_NONE, /* For params, tags and metrics. */
    FILTER_ATTR_RUN_ID,
    FILTER_ATTR_RUN_NAME,
    FILTER_ATTR_STATUS,
    FILTER_ATTR_USER,
    FILTER_ATTR_PROJECT,
    FILTER_ATTR_EXPERIMENT,
    FILTER_ATTR_TEAM,
    FILTER_ATTR_LIFECYCLE,
    FILTER_ATTR_START_TIME, /* Numeric: created_at_ms. */
    FILTER_ATTR_END_TIME,   /* Numeric: ended_at_ms; 0 = not ended. */
};

enum filter_op {
    FILTER_OP_EQ,
    FILTER_OP_NE,
    FILTER_OP_LT,
    FILTER_OP_LE,
    FILTER_OP_GT,
    FILTER_OP_GE,
    FILTER_OP_LIKE,
    FILTER_OP_ILIKE,
    FILTER_OP_IN,
    FILTER_OP_NOT_IN,
};

enum filter_node_kind { FILTER_NODE_AND, FILTER_NODE_OR, FILTER_NODE_CMP };

/* A constant. Strings are NUL-terminated copies (owned by the filter). */
struct filter_value {
    int is_number;
    double number;
    char *str;
    size_t len;
};

struct filter_node {
    enum filter_node_kind kind;
    /* FILTER_NODE_AND / FILTER_NODE_OR: */
    struct filter_node *left, *right;
    /* FILTER_NODE_CMP: */
    enum filter_field field;
    enum filter_attr attr;
    char *key; /* Param/tag/metric name, NUL-terminated; NULL for attrs. */
    size_t key_len;
    enum filter_op op;
    struct filter_value *values; /* 1 value, or n_values for IN/NOT IN. */
    size_t n_values;
};

struct filter_order_term {
    enum filter_field field;
    enum filter_attr attr;
    char *key;
    size_t key_len;
    int is_desc;
};

/* A parsed filter and order. root is NULL for an empty filter (all runs).
 * Everything is owned by the struct; free with filter_free(). */
struct filter {
    struct filter_node *root;
    struct filter_order_term order[FILTER_MAX_ORDER_TERMS];
    size_t n_order;
};

/* The run as the evaluator sees it. Strings are borrowed for the call. The
 * lookups return 1 and set the out-values if the run has the key, else 0. */
struct filter_run {
    const char *run_id, *name, *status, *user, *project, *experiment, *team,
        *lifecycle;
    int64_t created_at_ms, ended_at_ms;
    void *ctx;
    int (*param)(void *ctx, const char *key, size_t key_len, const char **val,
                 size_t *val_len);
    int (*tag)(void *ctx, const char *key, size_t key_len, const char **val,
               size_t *val_len);
    int (*metric)(void *ctx, const char *key, size_t key_len, double *val);
};

/* Parse expr[0, len) (the filter) and order_by[0, order_len) (the ORDER BY
 * list; may be empty). Either may be NULL with length 0. On RV_OK the
 * caller frees *out with filter_free(). Errors: RV_EPARSE with position and
 * expected token in errmsg, RV_ETOOBIG (limits above), RV_ENOMEM. */
int filter_parse(const char *expr, size_t len, const char *order_by,
                 size_t order_len, struct filter **out, char *errmsg);
void filter_free(struct filter *f);

/* 1 if run matches f (an empty filter matches everything), else 0. */
int filter_match(const struct filter *f, const struct filter_run *run);

/* SQL LIKE on bytes: % any run, _ one byte; is_ci folds ASCII case. */
int filter_like(const char *s, size_t n, const char *pat, size_t pn, int is_ci);

/* Parse an attribute name as it may appear in a filter or an ORDER BY
 * ("status", "created", ...). Returns FILTER_ATTR_NONE if unknown. */
enum filter_attr filter_attr_lookup(const char *name, size_t len);

/* 1 for start_time and end_time. */
int filter_attr_is_numeric(enum filter_attr attr);

#endif /* RV_STORE_FILTER_H */
