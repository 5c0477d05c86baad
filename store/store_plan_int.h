/* The run-list planner's shared state, between the planner's choice
 * (store_plan.c: candidate sources, costs, the plan, the page) and the
 * index walks that execute it (store_walk.c: candidate evaluation, the
 * heap, posting lists, ordered walks and their k-way merge across teams).
 * Internal to store/. */
#ifndef RV_STORE_STORE_PLAN_INT_H
#define RV_STORE_STORE_PLAN_INT_H

#include "store/filter.h"
#include "store/store_int.h"

/* ---- Candidate sources ------------------------------------------------- */

/* A posting list: keys of db starting with prefix; the run number is the
 * last 8 bytes of each key (ixcr: the value). */
struct store__src {
    enum store_db db;
    uint8_t prefix[2 + CONTRACT_MAX_KEY_BYTES + 16];
    size_t prefix_len;
    uint64_t count;
};

#define STORE_MAX_SOURCES FILTER_MAX_IN_VALUES

#define STORE_MAX_PROBES 3

struct store__plan {
    struct store__src *src; /* The chosen driver's lists (IN: several). */
    size_t n_src;
    uint64_t count;
    int has_driver;
    /* Other single-list conjuncts: a candidate must be in each (one B-tree
     * lookup) before the full filter runs on it. */
    struct store__src probe[STORE_MAX_PROBES];
    size_t n_probes;
};

/* ---- The visible teams ------------------------------------------------- */

/* Teams whose per-team index entries (ixmv, ixname, ixend) a query reads,
 * at most: an unscoped query over more teams than this does not use them. */
#define STORE_TEAMS_MAX 64

/* The teams a query reads: the query's (a scoped read always sets it),
 * else every team that has runs. Names point into the query or into the
 * read transaction (valid while it lives). */
struct store__teams {
    const char *team[STORE_TEAMS_MAX];
    size_t len[STORE_TEAMS_MAX];
    size_t n;
    uint64_t runs; /* Their runs (the per-team counters). */
};

/* ---- Execution --------------------------------------------------------- */

/* Rows kept so far: a max-heap on the row order, holding the best
 * (per_page + 1) rows; the worst kept row is at the top. The heap orders
 * indexes into a pool, so sifting moves 4-byte indexes, not rows. */
struct store__heap {
    const struct filter *f;
    struct store__row *rows; /* The pool, cap rows. */
    uint32_t *idx;           /* Heap of indexes into rows. */
    size_t n, cap;
};

struct store__exec {
    const struct store__plan *plan;
    struct store_read *r;
    const struct store_query *q;
    const struct filter *f;
    struct store__heap heap;
    const struct store__row *after; /* Page token, or NULL. */
    struct store__cand *cand;
    struct store__row *row;
    /* Set while scanning for the runs that lack a param: skip the others. */
    const struct filter_order_term *lacking;
    /* Set while scanning for the runs that lack a metric's series. */
    const struct filter_order_term *lacking_metric;
    /* Set while scanning for the runs that have no end time. */
    int lacking_end;
    uint64_t n_matched, n_examined;
    const char *plan_name;
    /* Per-team walks merged by the plan (0 or 1: no merge). */
    size_t n_lanes;
    /* The first ORDER BY term is a metric: once the heap is full, a
     * candidate whose value is worse than the worst kept row's is dropped
     * after that one lookup (n_pruned; the total is then not known). */
    const struct filter_order_term *prune;
    uint64_t n_pruned;
};

/* Range drivers are counted up to this many entries before the planner
 * gives up on them (the count bounds the cost of choosing). */
#define STORE_RANGE_COUNT_MAX 50000

/* An ixmv walk: per team of teams, the prefix (team, scope, metric key);
 * the value bounds [lo, hi] (class and value bytes, inclusive). */
struct store__mv {
    const struct store__teams *teams;
    const char *project; /* NULL: the team scope. */
    size_t project_len;
    const char *key;
    size_t key_len;
    uint8_t lo[STORE_MV_VALUE], hi[STORE_MV_VALUE];
    int has_range; /* A top-level comparison bounds the metric. */
};

/* An ixname driver: the key bytes after the (team, form) prefix that
 * every matching run's entry starts with, read in each of teams. */
struct store__name {
    int form;
    uint8_t tail[STORE_NAME_KEY_BYTES + 1];
    size_t tail_len;
    const struct store__teams *teams;
};

/* The top-level conjuncts of f (the leaves of its AND spine) into out
 * (FILTER_MAX_NODES entries); returns how many. */
size_t store__conjuncts(const struct filter *f, const struct filter_node **out);

/* Evaluate one candidate; offer it to the heap if it matches. */
int store__exec_one(struct store__exec *x, uint64_t run_num, char *errmsg);
/* Iterate keys of db under prefix (every run: ixcr with prefix ""). */
int store__exec_list(struct store__exec *x, enum store_db db,
                     const uint8_t *prefix, size_t prefix_len, char *errmsg);
/* Every list of the plan's driver, in full. */
int store__exec_sources(struct store__exec *x, const struct store__plan *plan,
                        char *errmsg);
/* The walks that stop after a page; *is_total: every candidate was seen.
 * ORDER BY params.<key> first (ixpv). */
int store__exec_pv(struct store__exec *x, int *is_total, char *errmsg);
/* Creation-time order either way (ixcr). */
int store__exec_created(struct store__exec *x, int is_desc, int *is_total,
                        char *errmsg);
/* ORDER BY end_time first: the teams' ixend walks merged. */
int store__exec_end(struct store__exec *x, const struct store__teams *teams,
                    int *is_total, char *errmsg);
/* Complete mv for metric key (bounds from f's top-level comparisons). */
void store__mv_key(const struct filter *f, const char *key, size_t kn,
                   struct store__mv *mv);
/* The first top-level metric comparison that bounds a range: mv completed
 * for its key; 0 if there is none. */
int store__mv_range_first(const struct filter *f, struct store__mv *mv);
/* Count the entries of mv's range in every team, stopping at limit. */
int store__mv_count(struct store__exec *x, const struct store__mv *mv,
                    uint64_t limit, uint64_t *n, char *errmsg);
/* Every entry of mv's range (plan metric-range). */
int store__exec_mv_range(struct store__exec *x, const struct store__mv *mv,
                         char *errmsg);
/* ORDER BY metrics.<key> first: the teams' ixmv walks merged. */
int store__exec_mv_order(struct store__exec *x, struct store__mv *mv,
                         const struct store__plan *plan, int *is_total,
                         char *errmsg);
/* Walk (with is_count: count, up to limit) the entries of nm in every
 * team; *n is how many were read. */
int store__name_walk(struct store__exec *x, const struct store__name *nm,
                     int is_count, uint64_t limit, uint64_t *n, char *errmsg);
/* Heap sort of the kept rows: afterwards idx[0..n) is in ascending order. */
void store__heap_sort(struct store__heap *h);

#endif /* RV_STORE_STORE_PLAN_INT_H */
