/* The run filter language (grammar and semantics in filter.h): a bounded
 * tokenizer, a recursive-descent parser into struct filter_node, and the
 * evaluator. Input is treated as bytes and never read past its length. */
#include "store/filter.h"

#include "base/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILTER_MAX_KEY_BYTES 250

/* ---- Tokens ------------------------------------------------------------ */

enum filter_tok {
    TOK_END,
    TOK_WORD,   /* Bare word: identifier or keyword. */
    TOK_QIDENT, /* "double" or `backtick` quoted identifier part. */
    TOK_STRING, /* 'single quoted' constant. */
    TOK_NUMBER,
    TOK_DOT,
    TOK_COMMA,
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_OP, /* = != <> < <= > >= */
};

struct filter_lex {
    const char *s;
    size_t len, pos;
    const char *where; /* "" or "order_by " for messages. */
    /* Current token. */
    enum filter_tok tok;
    size_t tok_pos; /* 0-based start. */
    const char *text;
    size_t text_len;
    char *str; /* Unescaped string / quoted ident (owned, NUL-terminated). */
    size_t str_len;
    double number;
    enum filter_op op;
    char *errmsg;
    size_t n_nodes, depth;
};

static int
filter_is_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '/' ||
           c == '-';
}

/* A short, printable rendering of the current token for messages. */
static void
filter_tok_show(const struct filter_lex *lx, char *out, size_t size)
{
    if (lx->tok == TOK_END) {
        snprintf(out, size, "the end of the input");
        return;
    }
    size_t n = lx->text_len < 32 ? lx->text_len : 32, k = 0;
    out[k++] = '\'';
    for (size_t i = 0; i < n && k + 5 < size; i++) {
        unsigned char c = (unsigned char)lx->text[i];
        if (c >= 0x20 && c < 0x7f)
            out[k++] = (char)c;
        else
            k += (size_t)snprintf(out + k, size - k, "\\x%02x", c);
    }
    out[k++] = '\'';
    out[k] = '\0';
}

static int
filter_error(struct filter_lex *lx, const char *expected)
{
    char found[160];
    filter_tok_show(lx, found, sizeof found);
    rv_errmsg_printf(lx->errmsg, "%sat position %zu: expected %s, found %s",
                     lx->where, lx->tok_pos + 1, expected, found);
    return RV_EPARSE;
}

static int
filter_error_at(struct filter_lex *lx, size_t pos, const char *msg)
{
    rv_errmsg_printf(lx->errmsg, "%sat position %zu: %s", lx->where, pos + 1,
                     msg);
    return RV_EPARSE;
}

/* Read a quoted run ending in q; a doubled q stands for one q. */
static int
filter_lex_quoted(struct filter_lex *lx, char q)
{
    size_t start = lx->pos + 1, i = start, n = 0;
    char *out = malloc(lx->len - lx->pos + 1);
    if (out == NULL)
        return RV_ENOMEM;
    for (;;) {
        if (i >= lx->len) {
            free(out);
            lx->pos = lx->len;
            return filter_error_at(lx, lx->tok_pos, "unterminated quote");
        }
        if (lx->s[i] == q) {
            if (i + 1 < lx->len && lx->s[i + 1] == q) {
                out[n++] = q;
                i += 2;
                continue;
            }
            break;
        }
        if (lx->s[i] == '\0') {
            free(out);
            return filter_error_at(lx, i, "NUL byte inside a quoted string");
        }
        out[n++] = lx->s[i++];
    }
    out[n] = '\0';
    free(lx->str);
    lx->str = out;
    lx->str_len = n;
    lx->pos = i + 1;
    return RV_OK;
}

static int
filter_lex_number(struct filter_lex *lx)
{
    size_t i = lx->pos;
    char buf[64];
    if (lx->s[i] == '-' || lx->s[i] == '+')
        i++;
    while (i < lx->len &&
           ((lx->s[i] >= '0' && lx->s[i] <= '9') || lx->s[i] == '.' ||
            lx->s[i] == 'e' || lx->s[i] == 'E' ||
            ((lx->s[i] == '-' || lx->s[i] == '+') &&
             (lx->s[i - 1] == 'e' || lx->s[i - 1] == 'E'))))
        i++;
    size_t n = i - lx->pos;
    if (n == 0 || n >= sizeof buf)
        return filter_error_at(lx, lx->pos, "malformed number");
    memcpy(buf, lx->s + lx->pos, n);
    buf[n] = '\0';
    char *end;
    lx->number = strtod(buf, &end);
    if (*end != '\0' || isnan(lx->number))
        return filter_error_at(lx, lx->pos, "malformed number");
    lx->pos = i;
    return RV_OK;
}

/* Advance to the next token. */
static int
filter_next(struct filter_lex *lx)
{
    while (lx->pos < lx->len &&
           (lx->s[lx->pos] == ' ' || lx->s[lx->pos] == '\t' ||
            lx->s[lx->pos] == '\n' || lx->s[lx->pos] == '\r'))
        lx->pos++;
    lx->tok_pos = lx->pos;
    lx->text = lx->s + lx->pos;
    if (lx->pos >= lx->len) {
        lx->tok = TOK_END;
        lx->text_len = 0;
        return RV_OK;
    }
    unsigned char c = (unsigned char)lx->s[lx->pos];
    unsigned char d =
        lx->pos + 1 < lx->len ? (unsigned char)lx->s[lx->pos + 1] : 0;
    int rc = RV_OK;
    if (c == '\'') {
        lx->tok = TOK_STRING;
        rc = filter_lex_quoted(lx, '\'');
    } else if (c == '"' || c == '`') {
        lx->tok = TOK_QIDENT;
        rc = filter_lex_quoted(lx, (char)c);
    } else if ((c >= '0' && c <= '9') ||
               ((c == '-' || c == '+' || c == '.') &&
                ((d >= '0' && d <= '9') || d == '.'))) {
        lx->tok = TOK_NUMBER;
        rc = filter_lex_number(lx);
    } else if (filter_is_word_char(c)) {
        lx->tok = TOK_WORD;
        while (lx->pos < lx->len &&
               filter_is_word_char((unsigned char)lx->s[lx->pos]))
            lx->pos++;
    } else if (c == '.') {
        lx->tok = TOK_DOT;
        lx->pos++;
    } else if (c == ',') {
        lx->tok = TOK_COMMA;
        lx->pos++;
    } else if (c == '(') {
        lx->tok = TOK_LPAREN;
        lx->pos++;
    } else if (c == ')') {
        lx->tok = TOK_RPAREN;
        lx->pos++;
    } else if (c == '=' || c == '<' || c == '>' || (c == '!' && d == '=')) {
        lx->tok = TOK_OP;
        size_t n = 1;
        if (c == '=')
            lx->op = FILTER_OP_EQ;
        else if (c == '!')
            lx->op = FILTER_OP_NE, n = 2;
        else if (c == '<' && d == '>')
            lx->op = FILTER_OP_NE, n = 2;
        else if (c == '<')
            lx->op = d == '=' ? (n = 2, FILTER_OP_LE) : FILTER_OP_LT;
        else
            lx->op = d == '=' ? (n = 2, FILTER_OP_GE) : FILTER_OP_GT;
        if (c == '=' && d == '=')
            n = 2; /* "==" is accepted as "=". */
        lx->pos += n;
    } else {
        lx->tok = TOK_WORD; /* For the message only. */
        lx->text_len = 1;
        return filter_error(lx, "a comparison");
    }
    lx->text_len = lx->pos - lx->tok_pos;
    return rc;
}

static int
filter_is_kw(const struct filter_lex *lx, const char *kw)
{
    return lx->tok == TOK_WORD && lx->text_len == strlen(kw) &&
           strncasecmp(lx->text, kw, lx->text_len) == 0;
}

/* ---- Identifiers ------------------------------------------------------- */

struct filter_attr_name {
    const char *name;
    enum filter_attr attr;
};

static const struct filter_attr_name filter_attr_names[] = {
    {"run_id", FILTER_ATTR_RUN_ID},
    {"run_name", FILTER_ATTR_RUN_NAME},
    {"run name", FILTER_ATTR_RUN_NAME},
    {"name", FILTER_ATTR_RUN_NAME},
    {"status", FILTER_ATTR_STATUS},
    {"user_id", FILTER_ATTR_USER},
    {"user", FILTER_ATTR_USER},
    {"project", FILTER_ATTR_PROJECT},
    {"experiment", FILTER_ATTR_EXPERIMENT},
    {"team", FILTER_ATTR_TEAM},
    {"lifecycle_stage", FILTER_ATTR_LIFECYCLE},
    {"start_time", FILTER_ATTR_START_TIME},
    {"created", FILTER_ATTR_START_TIME},
    {"created_at", FILTER_ATTR_START_TIME},
    {"end_time", FILTER_ATTR_END_TIME},
};

enum filter_attr
filter_attr_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof filter_attr_names / sizeof *filter_attr_names;
         i++) {
        const char *n = filter_attr_names[i].name;
        if (strlen(n) == len && strncasecmp(n, name, len) == 0)
            return filter_attr_names[i].attr;
    }
    return FILTER_ATTR_NONE;
}

int
filter_attr_is_numeric(enum filter_attr attr)
{
    return attr == FILTER_ATTR_START_TIME || attr == FILTER_ATTR_END_TIME;
}

static int
filter_prefix_lookup(const char *w, size_t n, enum filter_field *field)
{
    static const struct {
        const char *name;
        enum filter_field field;
    } prefixes[] = {
        {"metrics", FILTER_FIELD_METRIC},  {"metric", FILTER_FIELD_METRIC},
        {"params", FILTER_FIELD_PARAM},    {"param", FILTER_FIELD_PARAM},
        {"parameter", FILTER_FIELD_PARAM}, {"parameters", FILTER_FIELD_PARAM},
        {"tags", FILTER_FIELD_TAG},        {"tag", FILTER_FIELD_TAG},
        {"attributes", FILTER_FIELD_ATTR}, {"attribute", FILTER_FIELD_ATTR},
        {"attr", FILTER_FIELD_ATTR},       {"run", FILTER_FIELD_ATTR},
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        if (strlen(prefixes[i].name) == n &&
            strncasecmp(prefixes[i].name, w, n) == 0) {
            *field = prefixes[i].field;
            return 1;
        }
    }
    return 0;
}

struct filter_ident {
    enum filter_field field;
    enum filter_attr attr;
    char *key;
    size_t key_len;
    size_t pos;
};

/* ident := prefix '.' name | attribute-name. The name after the prefix is
 * a bare word (which may contain dots: "metrics.val.acc") or quoted. */
static int
filter_parse_ident(struct filter_lex *lx, struct filter_ident *id)
{
    memset(id, 0, sizeof *id);
    id->pos = lx->tok_pos;
    if (lx->tok == TOK_QIDENT) {
        id->field = FILTER_FIELD_ATTR;
        id->attr = filter_attr_lookup(lx->str, lx->str_len);
        if (id->attr == FILTER_ATTR_NONE)
            return filter_error_at(lx, id->pos, "unknown attribute");
        return filter_next(lx);
    }
    if (lx->tok != TOK_WORD)
        return filter_error(lx, "an identifier such as metrics.acc, "
                                "params.lr, tags.team or status");
    const char *w = lx->text;
    size_t wn = lx->text_len;
    enum filter_field field;
    int rc = filter_next(lx);
    if (rc != RV_OK)
        return rc;
    if (lx->tok != TOK_DOT || !filter_prefix_lookup(w, wn, &field)) {
        if (lx->tok == TOK_DOT)
            return filter_error_at(lx, id->pos,
                                   "unknown identifier prefix "
                                   "(use metrics., params., "
                                   "tags. or attributes.)");
        id->field = FILTER_FIELD_ATTR;
        id->attr = filter_attr_lookup(w, wn);
        if (id->attr == FILTER_ATTR_NONE)
            return filter_error_at(lx, id->pos, "unknown attribute");
        return RV_OK;
    }
    if ((rc = filter_next(lx)) != RV_OK)
        return rc;
    const char *name;
    size_t n;
    if (lx->tok == TOK_QIDENT) {
        name = lx->str;
        n = lx->str_len;
    } else if (lx->tok == TOK_WORD || lx->tok == TOK_NUMBER) {
        /* A bare name runs to the next space or operator, dots included. */
        size_t end = lx->tok_pos;
        while (end < lx->len &&
               (filter_is_word_char((unsigned char)lx->s[end]) ||
                lx->s[end] == '.'))
            end++;
        lx->pos = end;
        name = lx->text;
        n = end - lx->tok_pos;
    } else {
        return filter_error(lx, "a name after the prefix");
    }
    id->field = field;
    if (field == FILTER_FIELD_ATTR) {
        id->attr = filter_attr_lookup(name, n);
        if (id->attr == FILTER_ATTR_NONE)
            return filter_error_at(lx, lx->tok_pos, "unknown attribute");
    } else {
        if (n == 0 || n > FILTER_MAX_KEY_BYTES)
            return filter_error_at(lx, lx->tok_pos, "key must be 1..250 bytes");
        if (memchr(name, '\0', n) != NULL)
            return filter_error_at(lx, lx->tok_pos, "NUL byte in a key");
        id->key = malloc(n + 1);
        if (id->key == NULL)
            return RV_ENOMEM;
        memcpy(id->key, name, n);
        id->key[n] = '\0';
        id->key_len = n;
    }
    return filter_next(lx);
}

static int
filter_ident_is_numeric(const struct filter_ident *id)
{
    return id->field == FILTER_FIELD_METRIC ||
           (id->field == FILTER_FIELD_ATTR && filter_attr_is_numeric(id->attr));
}

/* ---- Nodes ------------------------------------------------------------- */

static void
filter_node_free(struct filter_node *n)
{
    if (n == NULL)
        return;
    filter_node_free(n->left);
    filter_node_free(n->right);
    for (size_t i = 0; i < n->n_values; i++)
        free(n->values[i].str);
    free(n->values);
    free(n->key);
    free(n);
}

static struct filter_node *
filter_node_new(struct filter_lex *lx, enum filter_node_kind kind)
{
    if (lx->n_nodes >= FILTER_MAX_NODES)
        return NULL;
    struct filter_node *n = calloc(1, sizeof *n);
    if (n != NULL) {
        n->kind = kind;
        lx->n_nodes++;
    }
    return n;
}

static int
filter_too_many(struct filter_lex *lx)
{
    rv_errmsg_printf(lx->errmsg,
                     "%sat position %zu: more than %d "
                     "comparisons and operators",
                     lx->where, lx->tok_pos + 1, FILTER_MAX_NODES);
    return RV_ETOOBIG;
}

/* One constant of the type the identifier needs. */
static int
filter_parse_value(struct filter_lex *lx, const struct filter_ident *id,
                   struct filter_value *v)
{
    if (filter_ident_is_numeric(id)) {
        if (lx->tok != TOK_NUMBER)
            return filter_error(lx, "a number");
        v->is_number = 1;
        v->number = lx->number;
        return filter_next(lx);
    }
    if (lx->tok != TOK_STRING)
        return filter_error(lx, "a quoted string");
    v->str = lx->str;
    v->len = lx->str_len;
    lx->str = NULL;
    return filter_next(lx);
}

static int
filter_parse_in_list(struct filter_lex *lx, const struct filter_ident *id,
                     struct filter_node *n)
{
    int rc;
    if (lx->tok != TOK_LPAREN)
        return filter_error(lx, "'(' after IN");
    if ((rc = filter_next(lx)) != RV_OK)
        return rc;
    size_t cap = 0;
    for (;;) {
        if (n->n_values == FILTER_MAX_IN_VALUES) {
            rv_errmsg_printf(lx->errmsg,
                             "%sat position %zu: more than %d "
                             "values in IN",
                             lx->where, lx->tok_pos + 1, FILTER_MAX_IN_VALUES);
            return RV_ETOOBIG;
        }
        if (n->n_values == cap) {
            cap = cap ? 2 * cap : 4;
            void *p = realloc(n->values, cap * sizeof *n->values);
            if (p == NULL)
                return RV_ENOMEM;
            n->values = p;
        }
        memset(&n->values[n->n_values], 0, sizeof *n->values);
        /* Counted before checking rc: the value may own a string even when
         * the token after it fails to lex. */
        rc = filter_parse_value(lx, id, &n->values[n->n_values++]);
        if (rc != RV_OK)
            return rc;
        if (lx->tok == TOK_RPAREN)
            return filter_next(lx);
        if (lx->tok != TOK_COMMA)
            return filter_error(lx, "',' or ')'");
        if ((rc = filter_next(lx)) != RV_OK)
            return rc;
    }
}

static int
filter_parse_compare(struct filter_lex *lx, struct filter_node **out)
{
    struct filter_ident id;
    int rc = filter_parse_ident(lx, &id);
    if (rc != RV_OK) {
        free(id.key);
        return rc;
    }
    struct filter_node *n = filter_node_new(lx, FILTER_NODE_CMP);
    if (n == NULL) {
        free(id.key);
        return lx->n_nodes >= FILTER_MAX_NODES ? filter_too_many(lx)
                                               : RV_ENOMEM;
    }
    n->field = id.field;
    n->attr = id.attr;
    n->key = id.key;
    n->key_len = id.key_len;
    *out = n;
    size_t op_pos = lx->tok_pos;
    int is_numeric = filter_ident_is_numeric(&id);
    if (lx->tok == TOK_OP) {
        n->op = lx->op;
    } else if (filter_is_kw(lx, "LIKE")) {
        n->op = FILTER_OP_LIKE;
    } else if (filter_is_kw(lx, "ILIKE")) {
        n->op = FILTER_OP_ILIKE;
    } else if (filter_is_kw(lx, "IN")) {
        n->op = FILTER_OP_IN;
    } else if (filter_is_kw(lx, "NOT")) {
        if ((rc = filter_next(lx)) != RV_OK)
            return rc;
        if (!filter_is_kw(lx, "IN"))
            return filter_error(lx, "IN after NOT");
        n->op = FILTER_OP_NOT_IN;
    } else {
        return filter_error(lx, "a comparison operator (=, !=, <, <=, >, >=, "
                                "LIKE, ILIKE, IN, NOT IN)");
    }
    if (is_numeric && n->op >= FILTER_OP_LIKE)
        return filter_error_at(lx, op_pos,
                               "LIKE, ILIKE and IN are not valid "
                               "for a number; use = != < <= > >=");
    if (!is_numeric && n->op >= FILTER_OP_LT && n->op <= FILTER_OP_GE)
        return filter_error_at(lx, op_pos,
                               "< <= > >= are not valid for a "
                               "string; use = != LIKE ILIKE IN");
    if ((rc = filter_next(lx)) != RV_OK)
        return rc;
    if (n->op == FILTER_OP_IN || n->op == FILTER_OP_NOT_IN)
        return filter_parse_in_list(lx, &id, n);
    n->values = calloc(1, sizeof *n->values);
    if (n->values == NULL)
        return RV_ENOMEM;
    n->n_values = 1; /* Freed with the node whatever rc is. */
    return filter_parse_value(lx, &id, &n->values[0]);
}

static int filter_parse_or(struct filter_lex *lx, struct filter_node **out);

static int
filter_parse_primary(struct filter_lex *lx, struct filter_node **out)
{
    if (lx->tok != TOK_LPAREN)
        return filter_parse_compare(lx, out);
    if (++lx->depth > FILTER_MAX_DEPTH) {
        rv_errmsg_printf(lx->errmsg,
                         "%sat position %zu: parentheses nested "
                         "deeper than %d",
                         lx->where, lx->tok_pos + 1, FILTER_MAX_DEPTH);
        return RV_ETOOBIG;
    }
    int rc = filter_next(lx);
    if (rc == RV_OK && lx->tok == TOK_RPAREN)
        return filter_error(lx, "a comparison inside the parentheses");
    if (rc == RV_OK)
        rc = filter_parse_or(lx, out);
    if (rc == RV_OK && lx->tok != TOK_RPAREN)
        rc = filter_error(lx, "')'");
    if (rc == RV_OK)
        rc = filter_next(lx);
    lx->depth--;
    return rc;
}

static int
filter_parse_binary(struct filter_lex *lx, struct filter_node **out,
                    const char *kw, enum filter_node_kind kind,
                    int (*sub)(struct filter_lex *, struct filter_node **))
{
    int rc = sub(lx, out);
    while (rc == RV_OK && filter_is_kw(lx, kw)) {
        struct filter_node *n = filter_node_new(lx, kind);
        if (n == NULL)
            return lx->n_nodes >= FILTER_MAX_NODES ? filter_too_many(lx)
                                                   : RV_ENOMEM;
        n->left = *out;
        *out = n;
        if ((rc = filter_next(lx)) == RV_OK)
            rc = sub(lx, &n->right);
    }
    return rc;
}

static int
filter_parse_and(struct filter_lex *lx, struct filter_node **out)
{
    return filter_parse_binary(lx, out, "AND", FILTER_NODE_AND,
                               filter_parse_primary);
}

static int
filter_parse_or(struct filter_lex *lx, struct filter_node **out)
{
    return filter_parse_binary(lx, out, "OR", FILTER_NODE_OR, filter_parse_and);
}

/* ---- ORDER BY ---------------------------------------------------------- */

static int
filter_parse_order(struct filter_lex *lx, struct filter *f)
{
    int rc = filter_next(lx);
    while (rc == RV_OK && lx->tok != TOK_END) {
        if (f->n_order == FILTER_MAX_ORDER_TERMS) {
            rv_errmsg_printf(lx->errmsg,
                             "%sat position %zu: more than %d "
                             "terms",
                             lx->where, lx->tok_pos + 1,
                             FILTER_MAX_ORDER_TERMS);
            return RV_ETOOBIG;
        }
        struct filter_ident id;
        rc = filter_parse_ident(lx, &id);
        struct filter_order_term *t = &f->order[f->n_order];
        memset(t, 0, sizeof *t);
        t->field = id.field;
        t->attr = id.attr;
        t->key = id.key;
        t->key_len = id.key_len;
        f->n_order++;
        if (rc != RV_OK)
            return rc;
        if (filter_is_kw(lx, "DESC") || filter_is_kw(lx, "ASC")) {
            t->is_desc = filter_is_kw(lx, "DESC");
            if ((rc = filter_next(lx)) != RV_OK)
                return rc;
        }
        if (lx->tok == TOK_END)
            break;
        if (lx->tok != TOK_COMMA)
            return filter_error(lx, "',' ASC or DESC");
        rc = filter_next(lx);
        if (rc == RV_OK && lx->tok == TOK_END)
            rc = filter_error(lx, "another ORDER BY term after ','");
    }
    return rc;
}

/* ---- Entry points ------------------------------------------------------ */

void
filter_free(struct filter *f)
{
    if (f == NULL)
        return;
    filter_node_free(f->root);
    for (size_t i = 0; i < f->n_order; i++)
        free(f->order[i].key);
    free(f);
}

int
filter_parse(const char *expr, size_t len, const char *order_by,
             size_t order_len, struct filter **out, char *errmsg)
{
    if (len > FILTER_MAX_EXPR_BYTES || order_len > FILTER_MAX_EXPR_BYTES) {
        rv_errmsg_printf(errmsg, "filter or order_by longer than %d bytes",
                         FILTER_MAX_EXPR_BYTES);
        return RV_ETOOBIG;
    }
    struct filter *f = calloc(1, sizeof *f);
    if (f == NULL)
        return RV_ENOMEM;
    struct filter_lex lx = {
        .s = expr ? expr : "", .len = len, .where = "", .errmsg = errmsg};
    int rc = filter_next(&lx);
    if (rc == RV_OK && lx.tok != TOK_END) {
        rc = filter_parse_or(&lx, &f->root);
        if (rc == RV_OK && lx.tok != TOK_END)
            rc = filter_error(&lx, "AND, OR or the end of the filter");
    }
    free(lx.str);
    if (rc == RV_OK && order_len > 0) {
        struct filter_lex ox = {.s = order_by,
                                .len = order_len,
                                .where = "order_by ",
                                .errmsg = errmsg};
        rc = filter_parse_order(&ox, f);
        free(ox.str);
    }
    if (rc != RV_OK) {
        filter_free(f);
        return rc;
    }
    *out = f;
    return RV_OK;
}

/* ---- Evaluation -------------------------------------------------------- */

int
filter_like(const char *s, size_t n, const char *pat, size_t pn, int is_ci)
{
    size_t i = 0, j = 0, star_j = SIZE_MAX, star_i = 0;
    while (i < n) {
        if (j < pn && pat[j] == '%') {
            star_j = j++;
            star_i = i;
            continue;
        }
        if (j < pn) {
            unsigned char a = (unsigned char)s[i], b = (unsigned char)pat[j];
            if (is_ci) {
                a = (unsigned char)(a >= 'A' && a <= 'Z' ? a + 32 : a);
                b = (unsigned char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
            }
            if (b == '_' || a == b) {
                i++;
                j++;
                continue;
            }
        }
        if (star_j == SIZE_MAX)
            return 0;
        j = star_j + 1;
        i = ++star_i;
    }
    while (j < pn && pat[j] == '%')
        j++;
    return j == pn;
}

static int
filter_str_cmp_op(const struct filter_node *n, const char *s, size_t len)
{
    int any = 0;
    for (size_t i = 0; i < n->n_values && !any; i++) {
        const struct filter_value *v = &n->values[i];
        switch (n->op) {
        case FILTER_OP_EQ:
        case FILTER_OP_NE:
        case FILTER_OP_IN:
        case FILTER_OP_NOT_IN:
            any = v->len == len && memcmp(v->str, s, len) == 0;
            break;
        case FILTER_OP_LIKE:
            any = filter_like(s, len, v->str, v->len, 0);
            break;
        case FILTER_OP_ILIKE:
            any = filter_like(s, len, v->str, v->len, 1);
            break;
        default:
            return 0;
        }
    }
    return n->op == FILTER_OP_NE || n->op == FILTER_OP_NOT_IN ? !any : any;
}

/* IEEE semantics: NaN compares false except for !=. */
static int
filter_num_cmp_op(enum filter_op op, double x, double c)
{
    switch (op) {
    case FILTER_OP_EQ:
        return x == c;
    case FILTER_OP_NE:
        return x != c;
    case FILTER_OP_LT:
        return x < c;
    case FILTER_OP_LE:
        return x <= c;
    case FILTER_OP_GT:
        return x > c;
    case FILTER_OP_GE:
        return x >= c;
    default:
        return 0;
    }
}

static const char *
filter_attr_str(const struct filter_run *r, enum filter_attr a)
{
    switch (a) {
    case FILTER_ATTR_RUN_ID:
        return r->run_id;
    case FILTER_ATTR_RUN_NAME:
        return r->name;
    case FILTER_ATTR_STATUS:
        return r->status;
    case FILTER_ATTR_USER:
        return r->user;
    case FILTER_ATTR_PROJECT:
        return r->project;
    case FILTER_ATTR_EXPERIMENT:
        return r->experiment;
    case FILTER_ATTR_TEAM:
        return r->team;
    case FILTER_ATTR_LIFECYCLE:
        return r->lifecycle;
    default:
        return NULL;
    }
}

static int
filter_cmp(const struct filter_node *n, const struct filter_run *r)
{
    const char *s;
    size_t len;
    double d;
    switch (n->field) {
    case FILTER_FIELD_METRIC:
        if (!r->metric(r->ctx, n->key, n->key_len, &d))
            return 0;
        return filter_num_cmp_op(n->op, d, n->values[0].number);
    case FILTER_FIELD_PARAM:
        if (!r->param(r->ctx, n->key, n->key_len, &s, &len))
            return 0;
        return filter_str_cmp_op(n, s, len);
    case FILTER_FIELD_TAG:
        if (!r->tag(r->ctx, n->key, n->key_len, &s, &len))
            return 0;
        return filter_str_cmp_op(n, s, len);
    case FILTER_FIELD_ATTR:
    default:
        if (n->attr == FILTER_ATTR_START_TIME)
            return filter_num_cmp_op(n->op, (double)r->created_at_ms,
                                     n->values[0].number);
        if (n->attr == FILTER_ATTR_END_TIME)
            return filter_num_cmp_op(n->op, (double)r->ended_at_ms,
                                     n->values[0].number);
        s = filter_attr_str(r, n->attr);
        if (s == NULL)
            return 0;
        return filter_str_cmp_op(n, s, strlen(s));
    }
}

static int
filter_eval(const struct filter_node *n, const struct filter_run *r)
{
    /* Iterative on the left spine (long AND/OR chains), recursive on the
     * right, which the depth limit bounds. */
    while (n->kind != FILTER_NODE_CMP) {
        int right = filter_eval(n->right, r);
        if (n->kind == FILTER_NODE_AND && !right)
            return 0;
        if (n->kind == FILTER_NODE_OR && right)
            return 1;
        n = n->left;
    }
    return filter_cmp(n, r);
}

int
filter_match(const struct filter *f, const struct filter_run *run)
{
    return f->root == NULL || filter_eval(f->root, run);
}
