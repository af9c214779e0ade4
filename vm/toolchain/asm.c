/* SPDX-License-Identifier: MIT */
/* The assembler: .gasm source text to code objects (syntax in docs/assembly.md).  Called by
 * the CLI (gilvm FILE, gilvm asm), the REPL and the embedding API, holding the GIL.
 *
 * One pass over the lines builds the module body and each function in a `builder`; opcode
 * facts (mnemonics, operand kinds, flags, stack effects) come only from opcodes.h.  Stack
 * depth is tracked linearly while emitting, for errors that point at the offending line.  When
 * a code object is complete, the verifier's flow analysis (flow.c) checks the code the linear
 * pass could not see (reached only by a backward jump), gives each exception region its depth
 * and yields maxstack, all from the bytecode alone, so that the disassembler's output
 * re-assembles to identical bytecode.  No collection runs during assembly (collections run
 * only at eval-loop polls), so objects held in C locals and malloc'd arrays are safe. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/toolchain/flow.h"
#include "vm/toolchain/module.h"

#define MAX_TUPLE_NESTING 64

typedef struct {
    uint32_t line, col;
} srcpos;

/* ---- small utilities ---- */

/* Out of memory, the assembler's arrays take the reserve: MemoryError at the first poll. */
static void *xrealloc(void *p, size_t n)
{
    return vm_xrealloc(p, n);
}

/* Makes room for one more element in a malloc'd array. */
#define GROW(arr, n, cap)                                                   \
    do {                                                                    \
        if ((n) >= (cap)) {                                                 \
            size_t nc_ = (cap) ? (size_t)(cap) * 2 : 16;                    \
            (arr) = xrealloc((arr), nc_ * sizeof *(arr));                   \
            (cap) = nc_;                                                    \
        }                                                                   \
    } while (0)

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* String -> uint32 map, open addressing.  Keys point into storage that outlives the map
 * (the source text or a string object's data). */
typedef struct {
    const char *s;
    size_t len;
    uint64_t h;
    uint32_t val;
} sment;

typedef struct {
    sment *e;
    size_t cap, n;
} smap;

static int smap_get(const smap *m, const char *s, size_t len, uint32_t *val)
{
    if (!m->cap)
        return 0;
    uint64_t h = vm_hash_bytes(s, len);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const sment *e = &m->e[i];
        if (!e->s)
            return 0;
        if (e->h == h && e->len == len && memcmp(e->s, s, len) == 0) {
            *val = e->val;
            return 1;
        }
    }
}

/* Adds a key known to be absent. */
static void smap_put(smap *m, const char *s, size_t len, uint32_t val)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        sment *ne = xrealloc(NULL, nc * sizeof *ne);
        memset(ne, 0, nc * sizeof *ne);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].s)
                continue;
            size_t j = (size_t)m->e[i].h & (nc - 1);
            while (ne[j].s)
                j = (j + 1) & (nc - 1);
            ne[j] = m->e[i];
        }
        vm_free(m->e);
        m->e = ne;
        m->cap = nc;
    }
    uint64_t h = vm_hash_bytes(s, len);
    size_t j = (size_t)h & (m->cap - 1);
    while (m->e[j].s)
        j = (j + 1) & (m->cap - 1);
    m->e[j] = (sment){s, len, h, val};
    m->n++;
}

static void smap_free(smap *m)
{
    vm_free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

/* ---- constants: identity is type plus exact value (1, 1.0 and True differ; 0.0 and -0.0
 * differ; strings and bytes by content; tuples item by item) ---- */

static uint64_t const_hash(value v)
{
    uint64_t h = mix64(v.tag + 0x9e3779b97f4a7c15ull);
    switch (v.tag) {
    case T_BOOL:
    case T_INT:
        return h ^ mix64((uint64_t)v.u.i);
    case T_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v.u.f, sizeof bits);
        return h ^ mix64(bits);
    }
    case T_STR:
    case T_BYTES:
        return h ^ vm_hash_bytes(AS_STR(v)->data, AS_STR(v)->len);
    case T_TUPLE: {
        vm_tuple *tp = AS_TUPLE(v);
        for (size_t i = 0; i < tp->len; i++)
            h = mix64(h ^ const_hash(tp->items[i]));
        return h;
    }
    default:
        return h;
    }
}

static bool const_same(value a, value b)
{
    if (a.tag != b.tag)
        return false;
    switch (a.tag) {
    case T_BOOL:
    case T_INT:
        return a.u.i == b.u.i;
    case T_FLOAT:
        return memcmp(&a.u.f, &b.u.f, sizeof a.u.f) == 0;
    case T_STR:
    case T_BYTES:
        return AS_STR(a)->len == AS_STR(b)->len &&
               memcmp(AS_STR(a)->data, AS_STR(b)->data, AS_STR(a)->len) == 0;
    case T_TUPLE: {
        vm_tuple *x = AS_TUPLE(a), *y = AS_TUPLE(b);
        if (x->len != y->len)
            return false;
        for (size_t i = 0; i < x->len; i++)
            if (!const_same(x->items[i], y->items[i]))
                return false;
        return true;
    }
    default:
        return a.u.o == b.u.o;
    }
}

/* ---- builders: one code object under construction ---- */

typedef struct {
    const char *name;           /* into the source text */
    size_t len;
    int64_t index;              /* instruction it marks; valid when defined */
    int64_t depth;              /* stack depth there, -1 unknown */
    int defined, referenced, has_back;
    srcpos def, ref, back;      /* definition, first reference, first backward-only jump */
    unsigned back_op;
} label;

typedef struct {
    uint32_t insn, label;
} fixup;

typedef struct {                /* one .try ... .end_try region */
    uint32_t start, end, label;
    int32_t parent;             /* enclosing region, -1 */
    srcpos pos;
} tryrec;

typedef struct {
    int is_func;
    vm_str *name;
    srcpos pos;                 /* .func directive */
    uint32_t nparams;

    instr *code;                /* parallel arrays of n instructions */
    uint32_t *lines;
    srcpos *where;
    size_t n, cap;

    value *consts;
    uint64_t *chash;
    size_t nconsts, cconsts;
    uint32_t *ctab;             /* const index + 1, 0 empty */
    size_t ctcap;

    vm_str **names;
    size_t nnames, cnames;
    smap nametab;

    vm_str **locals;
    size_t nlocals, clocals;
    smap localtab;

    label *labels;
    size_t nlabels, clabels;
    smap labeltab;

    fixup *fix;
    size_t nfix, cfix;

    tryrec *trys;
    size_t ntrys, ctrys;
    int32_t open;               /* innermost open region, -1 */
    uint32_t *closed;           /* emitted regions in closing order: the exception table */
    size_t nclosed, cclosed;

    int64_t depth;              /* linear stack depth, -1 unknown */
    uint32_t entry_depth;

    int resume_pending;         /* function whose implicit RESUME is not emitted yet */
    uint32_t resume_line;
    srcpos resume_where;
} builder;

typedef struct {
    vm_thread *t;
    const char *file;
    const char *ln;             /* current line (without its newline) */
    size_t lnlen, p;
    uint32_t lineno;
    char *err;
    size_t errlen;

    builder body, fn;
    builder *cur;
    int in_func;

    int line_set;               /* a .line N directive is in force */
    uint32_t line_val;

    vm_str *source;             /* from .source */
    int have_source;

    vm_code **codes;            /* codes[0] reserved for the body */
    size_t ncodes, ccodes;
    smap funcs;                 /* function name -> line of its .func */

    char *sb;                   /* scratch for string literals and float text */
    size_t sbn, sbcap;
} asm_state;

static void builder_init(builder *b, int is_func, uint32_t entry_depth)
{
    memset(b, 0, sizeof *b);
    b->is_func = is_func;
    b->open = -1;
    b->entry_depth = entry_depth;
    b->depth = entry_depth;
}

static void builder_free(builder *b)
{
    vm_free(b->code);
    vm_free(b->lines);
    vm_free(b->where);
    vm_free(b->consts);
    vm_free(b->chash);
    vm_free(b->ctab);
    vm_free(b->names);
    smap_free(&b->nametab);
    vm_free(b->locals);
    smap_free(&b->localtab);
    vm_free(b->labels);
    smap_free(&b->labeltab);
    vm_free(b->fix);
    vm_free(b->trys);
    vm_free(b->closed);
    memset(b, 0, sizeof *b);
}

/* ---- errors ---- */

__attribute__((format(printf, 4, 5)))
static int fail_at(asm_state *a, uint32_t line, uint32_t col, const char *fmt, ...)
{
    if (!a->err || !a->errlen)
        return -1;
    int k = snprintf(a->err, a->errlen, "%s:%u:%u: ", a->file, line, col);
    if (k >= 0 && (size_t)k < a->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err + k, a->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    for (char *c = a->err; *c; c++)     /* exactly one line, whatever the file name holds */
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return -1;
}

/* Error at byte offset `off` of the current line. */
#define FAIL(a, off, ...) fail_at((a), (a)->lineno, (uint32_t)(off) + 1, __VA_ARGS__)

/* A token made printable for a message: non-printable bytes as \xNN, long ones cut. */
static const char *tok(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= cap || i >= 48) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = 0;
    return buf;
}

#define TOK(s, n) tok((s), (n), (char[128]){0}, 128)

/* The character at the cursor, quoted, for "found ..." in messages. */
static const char *found(asm_state *a, char *buf)
{
    if (a->p >= a->lnlen || a->ln[a->p] == ';')
        return "end of line";
    unsigned char c = (unsigned char)a->ln[a->p];
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "'\\x%02x'", c);
    return buf;
}

#define FOUND(a) found((a), (char[16]){0})

/* ---- lexing within the current line ---- */

static int is_id0(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static int is_dig(int c) { return c >= '0' && c <= '9'; }
static int is_id(int c) { return is_id0(c) || is_dig(c); }

static int peek(const asm_state *a)
{
    return a->p < a->lnlen ? (unsigned char)a->ln[a->p] : -1;
}

static int peek2(const asm_state *a)
{
    return a->p + 1 < a->lnlen ? (unsigned char)a->ln[a->p + 1] : -1;
}

static void skip_ws(asm_state *a)
{
    while (a->p < a->lnlen) {
        char c = a->ln[a->p];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v')
            break;
        a->p++;
    }
}

static int at_eol(asm_state *a)
{
    skip_ws(a);
    return a->p >= a->lnlen || a->ln[a->p] == ';';
}

static size_t scan_ident(asm_state *a)
{
    size_t s = a->p;
    if (!is_id0(peek(a)))
        return 0;
    while (is_id(peek(a)))
        a->p++;
    return a->p - s;
}

static int expect_eol(asm_state *a, const char *after)
{
    if (at_eol(a))
        return 0;
    return FAIL(a, a->p, "expected end of line after %s, found %s", after, FOUND(a));
}

static void sb_put(asm_state *a, char c)
{
    GROW(a->sb, a->sbn, a->sbcap);
    a->sb[a->sbn++] = c;
}

static void sb_utf8(asm_state *a, uint32_t cp)
{
    if (cp < 0x80) {
        sb_put(a, (char)cp);
    } else if (cp < 0x800) {
        sb_put(a, (char)(0xc0 | (cp >> 6)));
        sb_put(a, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        sb_put(a, (char)(0xe0 | (cp >> 12)));
        sb_put(a, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sb_put(a, (char)(0x80 | (cp & 0x3f)));
    } else {
        sb_put(a, (char)(0xf0 | (cp >> 18)));
        sb_put(a, (char)(0x80 | ((cp >> 12) & 0x3f)));
        sb_put(a, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sb_put(a, (char)(0x80 | (cp & 0x3f)));
    }
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k) {
        k = s[i] < 0x80 ? 1 : vm_utf8_seq(s + i, n - i);
        if (!k)
            return 0;
    }
    return 1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parses "..." (or the part after b of b"...") into a->sb / a->sbn. */
static int parse_string(asm_state *a, int bytes)
{
    size_t q = a->p;
    a->p++;
    a->sbn = 0;
    for (;;) {
        if (a->p >= a->lnlen)
            return FAIL(a, q, "unterminated %s literal (missing closing '\"')",
                        bytes ? "bytes" : "string");
        char c = a->ln[a->p];
        if (c == '"') {
            a->p++;
            break;
        }
        if (c != '\\') {
            sb_put(a, c);
            a->p++;
            continue;
        }
        size_t es = a->p++;
        if (a->p >= a->lnlen)
            return FAIL(a, q, "unterminated %s literal (missing closing '\"')",
                        bytes ? "bytes" : "string");
        c = a->ln[a->p++];
        switch (c) {
        case 'n': sb_put(a, '\n'); break;
        case 't': sb_put(a, '\t'); break;
        case 'r': sb_put(a, '\r'); break;
        case '0': sb_put(a, '\0'); break;
        case '\\': sb_put(a, '\\'); break;
        case '"': sb_put(a, '"'); break;
        case '\'': sb_put(a, '\''); break;
        case 'x': {
            int h1 = hexval(peek(a)), h2 = hexval(peek2(a));
            if (h1 < 0 || h2 < 0)
                return FAIL(a, es, "expected two hex digits after \\x");
            a->p += 2;
            if (bytes)
                sb_put(a, (char)(h1 * 16 + h2));
            else
                sb_utf8(a, (uint32_t)(h1 * 16 + h2));
            break;
        }
        case 'u': {
            if (bytes)
                return FAIL(a, es, "\\u escape not allowed in a bytes literal; use \\xNN");
            if (peek(a) != '{')
                return FAIL(a, es, "expected \\u{HEX} (1 to 6 hex digits)");
            a->p++;
            uint32_t cp = 0;
            int nd = 0, h;
            while ((h = hexval(peek(a))) >= 0 && nd < 7) {
                cp = cp * 16 + (uint32_t)h;
                nd++;
                a->p++;
            }
            if (nd == 0 || nd > 6 || peek(a) != '}')
                return FAIL(a, es, "expected \\u{HEX} (1 to 6 hex digits)");
            a->p++;
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return FAIL(a, es, "invalid code point U+%X in \\u escape", (unsigned)cp);
            sb_utf8(a, cp);
            break;
        }
        default: {
            char b[16];
            a->p--;
            return FAIL(a, es, "unknown escape '\\%s' in %s literal",
                        tok(&a->ln[a->p], 1, b, sizeof b), bytes ? "bytes" : "string");
        }
        }
    }
    if (!bytes && !utf8_valid((const unsigned char *)a->sb, a->sbn))
        return FAIL(a, q, "string literal is not valid UTF-8 (use a bytes literal b\"...\")");
    return 0;
}

/* A name: an identifier, or a string literal for names that are not identifiers.  The
 * result points into the line or into a->sb (valid until the next string is parsed). */
static int parse_name(asm_state *a, const char *what, const char **s, size_t *n, size_t *col)
{
    skip_ws(a);
    *col = a->p;
    if (is_id0(peek(a))) {
        *n = scan_ident(a);
        *s = a->ln + *col;
        return 0;
    }
    if (peek(a) == '"') {
        if (parse_string(a, 0) < 0)
            return -1;
        if (a->sbn == 0)
            return FAIL(a, *col, "expected %s, found an empty string", what);
        *s = a->sb;
        *n = a->sbn;
        return 0;
    }
    return FAIL(a, *col, "expected %s, found %s", what, FOUND(a));
}

static int digit_in(int c, int base)
{
    int v = hexval(c);
    return v >= 0 && v < base;
}

/* A number: integer (decimal, 0x, 0o, 0b, '_' between digits, optional '-') or, when
 * `floats` is set, a float (1.5, 1e9, 1.5e-3, inf, nan).  Sets *is_float. */
static int parse_number(asm_state *a, int floats, int64_t *iv, double *fv, int *is_float)
{
    size_t s = a->p;
    int neg = 0;
    *is_float = 0;
    if (peek(a) == '-') {
        neg = 1;
        a->p++;
    }
    if (is_id0(peek(a))) {
        size_t is = a->p, n = scan_ident(a);
        int inf = n == 3 && memcmp(a->ln + is, "inf", 3) == 0;
        int nan = n == 3 && memcmp(a->ln + is, "nan", 3) == 0;
        if (!floats || (!inf && !nan))
            return FAIL(a, s, "expected %s, found '%s'", floats ? "a number" : "an integer",
                        TOK(a->ln + s, a->p - s));
        *is_float = 1;
        *fv = inf ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        return 0;
    }
    if (!is_dig(peek(a)))
        return FAIL(a, a->p, "expected %s, found %s", floats ? "a number" : "an integer",
                    FOUND(a));
    int base = 10;
    if (peek(a) == '0') {
        int c = peek2(a);
        if (c == 'x' || c == 'X')
            base = 16;
        else if (c == 'o' || c == 'O')
            base = 8;
        else if (c == 'b' || c == 'B')
            base = 2;
        if (base != 10)
            a->p += 2;
    }
    uint64_t mag = 0;
    int ovf = 0, prev_ok = base != 10;
    size_t ndig = 0;
    for (;;) {
        int c = peek(a);
        if (c == '_') {
            if (!prev_ok || !digit_in(peek2(a), base))
                return FAIL(a, a->p, "'_' in a number must stand between digits");
            a->p++;
            prev_ok = 0;
            continue;
        }
        if (!digit_in(c, base))
            break;
        unsigned d = (unsigned)hexval(c);
        if (!ovf && mag > (UINT64_MAX - d) / (unsigned)base)
            ovf = 1;
        else if (!ovf)
            mag = mag * (unsigned)base + d;
        ndig++;
        a->p++;
        prev_ok = 1;
    }
    if (!ndig)
        return FAIL(a, a->p, "expected digits after '%s'", TOK(a->ln + s, a->p - s));
    int c = peek(a);
    if (base == 10 && (c == '.' || c == 'e' || c == 'E')) {
        if (c == '.') {
            a->p++;
            prev_ok = 0;
            while (is_dig(peek(a)) || (peek(a) == '_' && prev_ok && is_dig(peek2(a)))) {
                prev_ok = peek(a) != '_';
                a->p++;
            }
        }
        if (peek(a) == 'e' || peek(a) == 'E') {
            a->p++;
            if (peek(a) == '+' || peek(a) == '-')
                a->p++;
            if (!is_dig(peek(a)))
                return FAIL(a, a->p, "expected digits in the exponent, found %s", FOUND(a));
            while (is_dig(peek(a)) || (peek(a) == '_' && is_dig(peek2(a))))
                a->p++;
        }
        if (is_id(peek(a)) || peek(a) == '.' || peek(a) == '_')
            return FAIL(a, a->p, "invalid character %s in number", FOUND(a));
        if (!floats)
            return FAIL(a, s, "expected an integer, found the float '%s'",
                        TOK(a->ln + s, a->p - s));
        a->sbn = 0;
        for (size_t i = s; i < a->p; i++)
            if (a->ln[i] != '_')
                sb_put(a, a->ln[i]);
        sb_put(a, 0);
        char *end;
        errno = 0;
        *fv = strtod(a->sb, &end);     /* assumes LC_NUMERIC is "C" */
        if (end != a->sb + a->sbn - 1)
            return FAIL(a, s, "malformed float '%s'", TOK(a->ln + s, a->p - s));
        *is_float = 1;
        return 0;
    }
    if (is_id(peek(a)) || peek(a) == '.')
        return FAIL(a, a->p, "invalid character %s in number", FOUND(a));
    if (ovf || mag > (uint64_t)INT64_MAX + (uint64_t)neg)
        return FAIL(a, s, "integer '%s' out of range (must fit in 64 bits)",
                    TOK(a->ln + s, a->p - s));
    *iv = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static int parse_int(asm_state *a, int64_t *v)
{
    double f;
    int isf;
    return parse_number(a, 0, v, &f, &isf);
}

/* A literal of any type; string objects are made in t's heap. */
static int parse_literal(asm_state *a, value *out, int depth)
{
    skip_ws(a);
    size_t s = a->p;
    int c = peek(a);
    if (c == '"') {
        if (parse_string(a, 0) < 0)
            return -1;
        *out = vm_str_new(a->t, a->sb, a->sbn);
        return 0;
    }
    if (c == 'b' && peek2(a) == '"') {
        a->p++;
        if (parse_string(a, 1) < 0)
            return -1;
        *out = vm_bytes_new(a->t, a->sb, a->sbn);
        return 0;
    }
    if (c == '(') {
        if (depth >= MAX_TUPLE_NESTING)
            return FAIL(a, s, "tuple literal nested too deeply (limit %d)", MAX_TUPLE_NESTING);
        a->p++;
        value *items = NULL;
        size_t n = 0, cap = 0;
        skip_ws(a);
        if (peek(a) == ')') {
            a->p++;
        } else {
            for (;;) {
                value v;
                if (parse_literal(a, &v, depth + 1) < 0)
                    goto bad;
                GROW(items, n, cap);
                items[n++] = v;
                skip_ws(a);
                if (peek(a) == ',') {
                    a->p++;
                    skip_ws(a);
                    if (peek(a) == ')') {
                        a->p++;
                        break;
                    }
                    continue;
                }
                if (peek(a) == ')') {
                    if (n == 1) {
                        FAIL(a, a->p, "expected ',' before ')': a one-element tuple is "
                             "written (x,)");
                        goto bad;
                    }
                    a->p++;
                    break;
                }
                FAIL(a, a->p, "expected ',' or ')' in tuple literal, found %s", FOUND(a));
                goto bad;
            }
        }
        *out = vm_tuple_new(a->t, n, items);
        vm_free(items);
        return 0;
    bad:
        vm_free(items);
        return -1;
    }
    if (c == '-' || is_dig(c)) {
        int64_t iv;
        double fv;
        int isf;
        if (parse_number(a, 1, &iv, &fv, &isf) < 0)
            return -1;
        *out = isf ? V_FLOAT(fv) : V_INT(iv);
        return 0;
    }
    if (is_id0(c)) {
        size_t n = scan_ident(a);
        const char *w = a->ln + s;
        if (n == 4 && memcmp(w, "None", 4) == 0)
            *out = V_NONE;
        else if (n == 4 && memcmp(w, "True", 4) == 0)
            *out = V_BOOL(1);
        else if (n == 5 && memcmp(w, "False", 5) == 0)
            *out = V_BOOL(0);
        else if (n == 3 && (memcmp(w, "inf", 3) == 0 || memcmp(w, "nan", 3) == 0))
            *out = V_FLOAT(w[0] == 'i' ? INFINITY : NAN);
        else
            return FAIL(a, s, "expected a literal (None, True, False, a number, \"string\", "
                        "b\"bytes\" or a tuple), found '%s'", TOK(w, n));
        return 0;
    }
    return FAIL(a, s, "expected a literal (None, True, False, a number, \"string\", "
                "b\"bytes\" or a tuple), found %s", FOUND(a));
}

/* ---- tables of the code object being built ---- */

static int add_const(asm_state *a, builder *b, value v, size_t col, uint32_t *idx)
{
    uint64_t h = const_hash(v);
    if (b->ctcap) {
        size_t mask = b->ctcap - 1;
        for (size_t i = (size_t)h & mask; b->ctab[i]; i = (i + 1) & mask) {
            uint32_t k = b->ctab[i] - 1;
            if (b->chash[k] == h && const_same(b->consts[k], v)) {
                *idx = k;
                return 0;
            }
        }
    }
    if (b->nconsts > OPARG_MAX)
        return FAIL(a, col, "too many constants (limit %u)", OPARG_MAX + 1);
    if ((b->nconsts + 1) * 2 > b->ctcap) {
        size_t nc = b->ctcap ? b->ctcap * 2 : 16;
        vm_free(b->ctab);
        b->ctab = xrealloc(NULL, nc * sizeof *b->ctab);
        memset(b->ctab, 0, nc * sizeof *b->ctab);
        b->ctcap = nc;
        for (size_t k = 0; k < b->nconsts; k++) {
            size_t i = (size_t)b->chash[k] & (nc - 1);
            while (b->ctab[i])
                i = (i + 1) & (nc - 1);
            b->ctab[i] = (uint32_t)k + 1;
        }
    }
    size_t cc = b->cconsts;
    GROW(b->consts, b->nconsts, b->cconsts);
    if (cc != b->cconsts)
        b->chash = xrealloc(b->chash, b->cconsts * sizeof *b->chash);
    b->consts[b->nconsts] = v;
    b->chash[b->nconsts] = h;
    size_t i = (size_t)h & (b->ctcap - 1);
    while (b->ctab[i])
        i = (i + 1) & (b->ctcap - 1);
    b->ctab[i] = (uint32_t)b->nconsts + 1;
    *idx = (uint32_t)b->nconsts++;
    return 0;
}

static int add_name(asm_state *a, builder *b, const char *s, size_t n, size_t col, uint32_t *idx)
{
    if (smap_get(&b->nametab, s, n, idx))
        return 0;
    if (b->nnames > OPARG_MAX)
        return FAIL(a, col, "too many global names (limit %u)", OPARG_MAX + 1);
    vm_str *str = AS_STR(vm_str_new(a->t, s, n));
    GROW(b->names, b->nnames, b->cnames);
    b->names[b->nnames] = str;
    smap_put(&b->nametab, str->data, str->len, (uint32_t)b->nnames);
    *idx = (uint32_t)b->nnames++;
    return 0;
}

static int add_local(asm_state *a, builder *b, const char *s, size_t n, size_t col,
                     const char *what)
{
    uint32_t dummy;
    if (smap_get(&b->localtab, s, n, &dummy))
        return FAIL(a, col, "duplicate %s '%s'", what, TOK(s, n));
    if (b->nlocals > OPARG_MAX)
        return FAIL(a, col, "too many locals (limit %u)", OPARG_MAX + 1);
    vm_str *str = AS_STR(vm_str_new(a->t, s, n));
    GROW(b->locals, b->nlocals, b->clocals);
    b->locals[b->nlocals] = str;
    smap_put(&b->localtab, str->data, str->len, (uint32_t)b->nlocals);
    b->nlocals++;
    return 0;
}

static uint32_t label_get(builder *b, const char *s, size_t n)
{
    uint32_t id;
    if (smap_get(&b->labeltab, s, n, &id))
        return id;
    GROW(b->labels, b->nlabels, b->clabels);
    label *L = &b->labels[b->nlabels];
    memset(L, 0, sizeof *L);
    L->name = s;
    L->len = n;
    L->depth = -1;
    smap_put(&b->labeltab, s, n, (uint32_t)b->nlabels);
    return (uint32_t)b->nlabels++;
}

static const char *scope_name(const builder *b, char *buf, size_t cap)
{
    if (!b->is_func)
        return "the module body";
    snprintf(buf, cap, "function %s", tok(b->name->data, b->name->len, (char[128]){0}, 128));
    return buf;
}

#define SCOPE(b) scope_name((b), (char[160]){0}, 160)

/* The jump opcode that goes the other way with the same stack effect, if the table has one
 * (JUMP_FORWARD <-> JUMP_BACKWARD). */
static int counterpart(unsigned op)
{
    unsigned f = op_flags(op);
    for (unsigned o = 0; o < OP__COUNT; o++) {
        unsigned g = op_flags(o);
        if (o != op && (g & OPF_JUMP) && (g & OPF_END) == (f & OPF_END) &&
            (g & OPF_BACK) != (f & OPF_BACK) && op_pops(o, 0) == op_pops(op, 0) &&
            op_pushes(o, 0) == op_pushes(op, 0) &&
            op_jump_pushes(o, 0) == op_jump_pushes(op, 0))
            return (int)o;
    }
    return -1;
}

static int wrong_direction(asm_state *a, srcpos at, unsigned op, const label *L)
{
    int back = (op_flags(op) & OPF_BACK) != 0;
    int other = counterpart(op);
    char hint[96] = "";
    if (other >= 0)
        snprintf(hint, sizeof hint, "; use %s", op_name((unsigned)other));
    else if (!back)
        for (unsigned o = 0; o < OP__COUNT; o++)
            if ((op_flags(o) & (OPF_JUMP | OPF_BACK)) == (OPF_JUMP | OPF_BACK)) {
                snprintf(hint, sizeof hint, "; only %s jumps backward", op_name(o));
                break;
            }
    return fail_at(a, at.line, at.col, "%s must target %s instruction, but label %s is %s%s",
                   op_name(op), back ? "an earlier-or-same" : "a later",
                   TOK(L->name, L->len), back ? "later" : "not later", hint);
}

static int mismatch(asm_state *a, srcpos at, const label *L, int64_t first, int64_t second)
{
    return fail_at(a, at.line, at.col, "stack depth mismatch at label %s (%lld vs %lld)",
                   TOK(L->name, L->len), (long long)first, (long long)second);
}

static int underflow(asm_state *a, srcpos at, const char *op, int64_t pops, int64_t depth)
{
    return fail_at(a, at.line, at.col, "stack underflow: %s needs %lld value%s, the stack holds "
                   "%lld", op, (long long)pops, pops == 1 ? "" : "s", (long long)depth);
}

/* A reference to label `id` from instruction `insn` (a jump) or, with insn == UINT32_MAX, from
 * a .try naming it as handler; `jd` is the stack depth on arrival, -1 unknown. */
static int label_ref(asm_state *a, uint32_t id, int64_t jd, uint32_t insn, unsigned op,
                     srcpos at)
{
    builder *b = a->cur;
    label *L = &b->labels[id];
    int is_jump = insn != UINT32_MAX;
    if (L->defined) {
        if (is_jump) {
            int back = (op_flags(op) & OPF_BACK) != 0;
            if (back ? L->index > (int64_t)insn : L->index <= (int64_t)insn)
                return wrong_direction(a, at, op, L);
            b->code[insn] = INSTR(op, (uint32_t)L->index);
        }
    } else {
        if (!L->referenced) {
            L->referenced = 1;
            L->ref = at;
        }
        if (is_jump && (op_flags(op) & OPF_BACK) && !L->has_back) {
            L->has_back = 1;
            L->back = at;
            L->back_op = op;
        }
        if (is_jump) {
            GROW(b->fix, b->nfix, b->cfix);
            b->fix[b->nfix++] = (fixup){insn, id};
        }
    }
    if (jd >= 0) {
        if (L->depth >= 0 && L->depth != jd)
            return mismatch(a, at, L, L->depth, jd);
        L->depth = jd;
    }
    return 0;
}

static int define_label(asm_state *a, const char *s, size_t n, size_t col)
{
    builder *b = a->cur;
    uint32_t id = label_get(b, s, n);
    label *L = &b->labels[id];
    if (L->defined)
        return FAIL(a, col, "duplicate label %s (first defined at line %u)", TOK(s, n),
                    L->def.line);
    L->defined = 1;
    L->index = (int64_t)b->n;
    L->def = (srcpos){a->lineno, (uint32_t)col + 1};
    if (L->has_back)
        return wrong_direction(a, L->back, L->back_op, L);
    if (b->depth >= 0) {
        if (L->depth >= 0 && L->depth != b->depth)
            return mismatch(a, L->def, L, L->depth, b->depth);
        L->depth = b->depth;
    } else {
        b->depth = L->depth;
    }
    return 0;
}

static uint32_t cur_line(const asm_state *a)
{
    return a->line_set ? a->line_val : a->lineno;
}

/* Appends one instruction, tracking the linear stack depth; `lbl` is the jump's label id. */
static int emit_core(asm_state *a, unsigned op, uint32_t arg, uint32_t line, srcpos at,
                     int64_t lbl, srcpos lat)
{
    builder *b = a->cur;
    if (b->n >= OPARG_MAX)
        return fail_at(a, at.line, at.col, "too many instructions in %s (limit %u)",
                       SCOPE(b), OPARG_MAX);
    uint32_t i = (uint32_t)b->n;
    unsigned fl = op_flags(op);
    int64_t d = b->depth, jd = -1;
    if (d >= 0) {
        long pops = op_pops(op, arg), pushes = op_pushes(op, arg);
        if (pops > d)
            return underflow(a, at, op_name(op), pops, d);
        int64_t after = d - pops + pushes;
        if (fl & OPF_JUMP)
            jd = d - pops + op_jump_pushes(op, arg);
        d = after;
    }
    if (b->n >= b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        b->code = xrealloc(b->code, nc * sizeof *b->code);
        b->lines = xrealloc(b->lines, nc * sizeof *b->lines);
        b->where = xrealloc(b->where, nc * sizeof *b->where);
        b->cap = nc;
    }
    b->code[i] = INSTR(op, arg & OPARG_MAX);
    b->lines[i] = line;
    b->where[i] = at;
    b->n++;
    b->depth = (fl & OPF_END) ? -1 : d;
    if (lbl >= 0)
        return label_ref(a, (uint32_t)lbl, jd, i, op, lat);
    return 0;
}

/* Emits the function's implicit RESUME if it is still owed, before the first instruction.
 * Labels and .try written before that instruction mark it, not the RESUME: the entry poll
 * stays outside the function's own regions.  (An explicit RESUME is an instruction like any
 * other, so `L: RESUME` and `.try H` + `RESUME` keep L and H's region at offset 0; that is
 * how the disassembler's output reproduces either layout.) */
static int flush_resume(asm_state *a, unsigned next_op)
{
    builder *b = a->cur;
    if (!b->resume_pending)
        return 0;
    b->resume_pending = 0;
    if (next_op == OP_RESUME)
        return 0;
    int rc = emit_core(a, OP_RESUME, 0, b->resume_line, b->resume_where, -1, b->resume_where);
    for (size_t i = 0; i < b->nlabels; i++)
        if (b->labels[i].defined)
            b->labels[i].index = 1;     /* all were defined at offset 0 */
    for (int32_t r = b->open; r >= 0; r = b->trys[r].parent)
        b->trys[r].start = 1;
    return rc;
}

/* ---- statements ---- */

static int instruction(asm_state *a, size_t s, size_t n)
{
    char up[32];
    int op = -1;
    if (n < sizeof up) {
        for (size_t i = 0; i < n; i++) {
            char c = a->ln[s + i];
            up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        }
        op = op_lookup(up, (unsigned)n);
    }
    if (op < 0)
        return FAIL(a, s, "unknown opcode '%s'", TOK(a->ln + s, n));
    unsigned uop = (unsigned)op;
    const char *nm = op_name(uop);
    builder *b = a->cur;
    if (uop == OP_HALT && b->is_func)
        return FAIL(a, s, "HALT is only allowed in the module body; use RETURN in %s", SCOPE(b));
    op_kind k = op_kind_of(uop);
    skip_ws(a);
    size_t as = a->p;
    uint32_t arg = 0;
    int64_t lbl = -1;
    if (k == OPK_NONE) {
        if (!at_eol(a))
            return FAIL(a, as, "%s takes no operand, found %s", nm, FOUND(a));
    } else if (at_eol(a))
        return FAIL(a, as, "expected %s after %s", op_kind_operand(k), nm);
    switch (k) {
    case OPK_NONE:
        break;
    case OPK_CONST: {
        value v;
        if (parse_literal(a, &v, 0) < 0 || add_const(a, b, v, as, &arg) < 0)
            return -1;
        break;
    }
    case OPK_LOCAL:
        if (is_dig(peek(a))) {
            int64_t v;
            if (parse_int(a, &v) < 0)
                return -1;
            if (v < 0 || (uint64_t)v >= b->nlocals)
                return FAIL(a, as, "local index %lld out of range (%s has %zu local%s)",
                            (long long)v, SCOPE(b), b->nlocals, b->nlocals == 1 ? "" : "s");
            arg = (uint32_t)v;
        } else {
            const char *ns;
            size_t nn, col;
            if (parse_name(a, "a local name or index", &ns, &nn, &col) < 0)
                return -1;
            if (!smap_get(&b->localtab, ns, nn, &arg))
                return FAIL(a, col, "unknown local '%s'%s", TOK(ns, nn),
                            b->is_func ? " (declare it with .local)"
                                       : " (the module body has no locals; use globals)");
        }
        break;
    case OPK_NAME: {
        const char *ns;
        size_t nn, col;
        if (parse_name(a, "a global name", &ns, &nn, &col) < 0 ||
            add_name(a, b, ns, nn, col, &arg) < 0)
            return -1;
        break;
    }
    case OPK_JUMP: {
        size_t ln = scan_ident(a);
        if (!ln)
            return FAIL(a, as, "expected a label after %s, found %s", nm, FOUND(a));
        lbl = label_get(b, a->ln + as, ln);
        break;
    }
    case OPK_COUNT: {
        int64_t v;
        if (peek(a) == '-')
            return FAIL(a, as, "expected an unsigned integer after %s, found '-'", nm);
        if (parse_int(a, &v) < 0)
            return -1;
        if (v > (int64_t)OPARG_MAX)
            return FAIL(a, as, "count %lld out of range for %s (0..%u)", (long long)v, nm,
                        OPARG_MAX);
        arg = (uint32_t)v;
        break;
    }
    case OPK_IMM: {
        int64_t v;
        if (parse_int(a, &v) < 0)
            return -1;
        if (v < IMM_MIN || v > IMM_MAX)
            return FAIL(a, as, "immediate %lld out of range for %s (%d..%d); use LOAD_CONST",
                        (long long)v, nm, IMM_MIN, IMM_MAX);
        arg = (uint32_t)(int32_t)v & OPARG_MAX;
        break;
    }
    }
    if (expect_eol(a, nm) < 0)
        return -1;
    if (flush_resume(a, uop) < 0)
        return -1;
    return emit_core(a, uop, arg, cur_line(a), (srcpos){a->lineno, (uint32_t)s + 1}, lbl,
                     (srcpos){a->lineno, (uint32_t)as + 1});
}

static int dir_func(asm_state *a, size_t dcol)
{
    if (a->in_func)
        return FAIL(a, dcol, "nested .func: %s is still open (close it with .end)",
                    SCOPE(&a->fn));
    const char *s;
    size_t n, col;
    if (parse_name(a, "a function name", &s, &n, &col) < 0)
        return -1;
    uint32_t prev;
    if (smap_get(&a->funcs, s, n, &prev))
        return FAIL(a, col, "duplicate function %s (first defined at line %u)", TOK(s, n), prev);
    builder *b = &a->fn;
    builder_init(b, 1, 0);
    b->name = AS_STR(vm_str_new(a->t, s, n));
    b->pos = (srcpos){a->lineno, (uint32_t)dcol + 1};
    a->cur = b;
    a->in_func = 1;
    smap_put(&a->funcs, b->name->data, b->name->len, a->lineno);
    skip_ws(a);
    if (peek(a) != '(')
        return FAIL(a, a->p, "expected '(' after the function name, found %s", FOUND(a));
    a->p++;
    skip_ws(a);
    if (peek(a) == ')') {
        a->p++;
    } else {
        for (;;) {
            if (parse_name(a, "a parameter name", &s, &n, &col) < 0 ||
                add_local(a, b, s, n, col, "parameter") < 0)
                return -1;
            skip_ws(a);
            if (peek(a) == ',') {
                a->p++;
                continue;
            }
            if (peek(a) == ')') {
                a->p++;
                break;
            }
            return FAIL(a, a->p, "expected ',' or ')' in the parameter list, found %s",
                        FOUND(a));
        }
    }
    b->nparams = (uint32_t)b->nlocals;
    b->resume_pending = 1;
    b->resume_line = cur_line(a);
    b->resume_where = b->pos;
    return expect_eol(a, "the parameter list");
}

static int dir_local(asm_state *a, size_t dcol)
{
    if (!a->in_func)
        return FAIL(a, dcol, ".local outside .func (the module body has no locals; use globals)");
    for (;;) {
        const char *s;
        size_t n, col;
        if (parse_name(a, "a local name", &s, &n, &col) < 0 ||
            add_local(a, a->cur, s, n, col, "local") < 0)
            return -1;
        skip_ws(a);
        if (peek(a) != ',')
            break;
        a->p++;
    }
    return expect_eol(a, "the local names");
}

static int dir_try(asm_state *a, size_t dcol)
{
    builder *b = a->cur;
    skip_ws(a);
    size_t s = a->p, n = scan_ident(a);
    if (!n)
        return FAIL(a, s, "expected a handler label after .try, found %s", FOUND(a));
    if (expect_eol(a, ".try LABEL") < 0)
        return -1;
    uint32_t id = label_get(b, a->ln + s, n);
    GROW(b->trys, b->ntrys, b->ctrys);
    tryrec *r = &b->trys[b->ntrys];
    memset(r, 0, sizeof *r);
    r->start = (uint32_t)b->n;
    r->label = id;
    r->parent = b->open;
    r->pos = (srcpos){a->lineno, (uint32_t)dcol + 1};
    b->open = (int32_t)b->ntrys++;
    return label_ref(a, id, b->depth >= 0 ? b->depth + 1 : -1, UINT32_MAX, 0,
                     (srcpos){a->lineno, (uint32_t)s + 1});
}

static int dir_end_try(asm_state *a, size_t dcol)
{
    builder *b = a->cur;
    if (b->open < 0)
        return FAIL(a, dcol, ".end_try without .try in %s", SCOPE(b));
    if (expect_eol(a, ".end_try") < 0)
        return -1;
    tryrec *r = &b->trys[b->open];
    r->end = (uint32_t)b->n;
    if (r->end > r->start) {
        GROW(b->closed, b->nclosed, b->cclosed);
        b->closed[b->nclosed++] = (uint32_t)b->open;
    }
    b->open = r->parent;
    return 0;
}

static int dir_line(asm_state *a)
{
    if (at_eol(a)) {
        a->line_set = 0;
        return 0;
    }
    size_t s = a->p;
    int64_t v;
    if (peek(a) == '-')
        return FAIL(a, s, "expected a line number after .line, found '-'");
    if (parse_int(a, &v) < 0)
        return -1;
    if (v > (int64_t)UINT32_MAX)
        return FAIL(a, s, "line number %lld out of range", (long long)v);
    a->line_set = 1;
    a->line_val = (uint32_t)v;
    return expect_eol(a, ".line N");
}

static int dir_source(asm_state *a, size_t dcol)
{
    if (a->have_source)
        return FAIL(a, dcol, "duplicate .source (the file name is set once per module)");
    skip_ws(a);
    if (peek(a) != '"')
        return FAIL(a, a->p, "expected a string after .source, found %s", FOUND(a));
    if (parse_string(a, 0) < 0)
        return -1;
    a->source = AS_STR(vm_str_new(a->t, a->sb, a->sbn));
    a->have_source = 1;
    return expect_eol(a, ".source \"NAME\"");
}

static vm_code *finish(asm_state *a, builder *b, srcpos endpos);

static int dir_end(asm_state *a, size_t dcol)
{
    if (!a->in_func)
        return FAIL(a, dcol, ".end without .func");
    if (expect_eol(a, ".end") < 0)
        return -1;
    vm_code *c = finish(a, &a->fn, (srcpos){a->lineno, (uint32_t)dcol + 1});
    if (!c)
        return -1;
    GROW(a->codes, a->ncodes, a->ccodes);
    a->codes[a->ncodes++] = c;
    builder_free(&a->fn);
    a->cur = &a->body;
    a->in_func = 0;
    return 0;
}

static int directive(asm_state *a, size_t dcol, const char *s, size_t n)
{
#define IS(w) (n == sizeof(w) - 1 && memcmp(s, w, n) == 0)
    if (IS("func"))
        return dir_func(a, dcol);
    if (IS("end"))
        return dir_end(a, dcol);
    if (IS("local"))
        return dir_local(a, dcol);
    if (IS("try"))
        return dir_try(a, dcol);
    if (IS("end_try"))
        return dir_end_try(a, dcol);
    if (IS("line"))
        return dir_line(a);
    if (IS("source"))
        return dir_source(a, dcol);
#undef IS
    return FAIL(a, dcol, "unknown directive '.%s' (expected .func, .end, .local, .try, "
                ".end_try, .line or .source)", TOK(s, n));
}

static int do_line(asm_state *a)
{
    for (;;) {
        if (at_eol(a))
            return 0;
        size_t s = a->p, n = scan_ident(a);
        if (n) {
            size_t after = a->p;
            skip_ws(a);
            if (peek(a) == ':') {
                a->p++;
                if (define_label(a, a->ln + s, n, s) < 0)
                    return -1;
                continue;
            }
            a->p = after;
            return instruction(a, s, n);
        }
        if (peek(a) == '.') {
            a->p++;
            size_t ds = a->p;
            n = scan_ident(a);
            if (!n)
                return FAIL(a, s, "expected a directive name after '.', found %s", FOUND(a));
            return directive(a, s, a->ln + ds, n);
        }
        return FAIL(a, s, "expected an instruction, a label or a directive, found %s",
                    FOUND(a));
    }
}

/* ---- completing a code object ---- */

static const label *label_at(const builder *b, uint32_t index)
{
    for (size_t i = 0; i < b->nlabels; i++)
        if (b->labels[i].defined && b->labels[i].index == (int64_t)index)
            return &b->labels[i];
    return NULL;
}

/* Runs the flow analysis the verifier runs too (flow.c) on the finished bytecode and reports
 * its first failure at a source line.  It gives each region its depth (the depth before its
 * first instruction) and yields maxstack, both from the bytecode alone, so that the
 * disassembly re-assembles to the same code object.  On success *exc is the exception table
 * (malloc'd, NULL if empty). */
static int flow_pass(asm_state *a, builder *b, vm_exc_entry **exc, int64_t *maxd)
{
    flow_entry *fe = xrealloc(NULL, b->nclosed * sizeof *fe);
    for (size_t k = 0; k < b->nclosed; k++) {
        const tryrec *r = &b->trys[b->closed[k]];
        fe[k] = (flow_entry){r->start, r->end, (uint32_t)b->labels[r->label].index,
                             FLOW_UNKNOWN};
    }
    flow_code f = {.code = b->code, .ncode = (uint32_t)b->n, .entry_depth = b->entry_depth,
                   .maxstack = FLOW_NO_LIMIT, .exc = fe, .nexc = (uint32_t)b->nclosed};
    if (flow_analyze(&f) == 0) {
        *exc = NULL;
        if (b->nclosed)
            *exc = xrealloc(NULL, b->nclosed * sizeof **exc);
        for (size_t k = 0; k < b->nclosed; k++)
            (*exc)[k] = (vm_exc_entry){fe[k].start, fe[k].end, fe[k].target,
                                       (uint32_t)fe[k].depth};
        *maxd = f.maxdepth;
        vm_free(fe);
        return 0;
    }
    vm_free(fe);
    const flow_failure *e = &f.fail;
    const char *nm = op_name(INSTR_OP(b->code[e->pc]));
    srcpos at = b->where[e->pc];
    long long depth = e->depth, other = e->other;
    switch (e->kind) {
    case FLOW_MISMATCH: {
        if (e->from >= 0)
            at = b->where[e->from];
        else
            at = b->trys[b->closed[e->entry]].pos;
        const label *L = label_at(b, e->pc);
        if (L)
            return mismatch(a, at, L, depth, other);
        return fail_at(a, at.line, at.col, "stack depth mismatch at offset %u (%lld vs %lld)",
                       e->pc, depth, other);
    }
    case FLOW_UNDERFLOW:
        return underflow(a, at, nm, other, depth);
    case FLOW_UNWIND:
        return fail_at(a, at.line, at.col,
                       "%s leaves %lld value%s on the stack, fewer than the %lld its .try "
                       "(line %u) unwinds to; open the .try later or close it earlier",
                       nm, other, other == 1 ? "" : "s", (long long)e->limit,
                       b->trys[b->closed[e->entry]].pos.line);
    case FLOW_NOMEM:
        return fail_at(a, 0, 0, "out of memory");
    case FLOW_OK:
    case FLOW_OVERFLOW:         /* no limit was given */
        break;
    }
    RT_FATAL("flow_analyze failed without a reason");
}

/* Closes builder `b`: implicit instructions, label and region checks, jump fixups, the flow
 * pass, then the code object (arrays handed over to it). */
static vm_code *finish(asm_state *a, builder *b, srcpos endpos)
{
    a->cur = b;
    if (b->is_func && flush_resume(a, OP_NOP) < 0)
        return NULL;
    if (b->open >= 0) {
        tryrec *r = &b->trys[b->open];
        fail_at(a, r->pos.line, r->pos.col, "unclosed .try (missing .end_try)");
        return NULL;
    }
    for (size_t i = 0; i < b->nlabels; i++) {
        label *L = &b->labels[i];
        if (!L->defined) {
            fail_at(a, L->ref.line, L->ref.col, "undefined label %s in %s",
                    TOK(L->name, L->len), SCOPE(b));
            return NULL;
        }
    }
    if (!b->is_func) {
        if (!b->n || INSTR_OP(b->code[b->n - 1]) != OP_HALT || label_at(b, (uint32_t)b->n)) {
            uint32_t line = a->line_set ? a->line_val : b->n ? b->lines[b->n - 1] : a->lineno;
            if (emit_core(a, OP_HALT, 0, line, endpos, -1, endpos) < 0)
                return NULL;
        }
    } else {
        const label *L = label_at(b, (uint32_t)b->n);
        if (L) {
            fail_at(a, L->def.line, L->def.col, "label %s marks no instruction (it is at the "
                    "end of %s)", TOK(L->name, L->len), SCOPE(b));
            return NULL;
        }
        if (!(op_flags(INSTR_OP(b->code[b->n - 1])) & OPF_END)) {
            fail_at(a, endpos.line, endpos.col, "function %s can fall off its end; add RETURN",
                    TOK(b->name->data, b->name->len));
            return NULL;
        }
    }
    for (size_t i = 0; i < b->nfix; i++) {
        fixup *x = &b->fix[i];
        b->code[x->insn] = INSTR(INSTR_OP(b->code[x->insn]), (uint32_t)b->labels[x->label].index);
    }
    vm_exc_entry *exc = NULL;
    int64_t maxd = 0;
    if (flow_pass(a, b, &exc, &maxd) < 0)
        return NULL;
    if (maxd > (int64_t)UINT32_MAX) {
        vm_free(exc);
        fail_at(a, endpos.line, endpos.col, "stack too deep in %s", SCOPE(b));
        return NULL;
    }
    vm_code *c = vm_code_new(a->t);
    c->name = b->is_func ? b->name : AS_STR(vm_str_c(a->t, "<module>"));
    c->nparams = b->nparams;
    c->nlocals = (uint32_t)b->nlocals;
    c->maxstack = (uint32_t)maxd;
    c->ncode = (uint32_t)b->n;
    c->nconsts = (uint32_t)b->nconsts;
    c->nnames = (uint32_t)b->nnames;
    c->nexc = (uint32_t)b->nclosed;
    c->code = b->code;
    c->lines = b->lines;
    c->consts = b->consts;
    c->names = b->names;
    c->localnames = b->locals;
    c->exc = exc;
    c->flags = b->is_func ? 0 : CO_MODULE;
    c->entry_depth = b->is_func ? 0 : b->entry_depth;
    b->code = NULL;
    b->lines = NULL;
    b->consts = NULL;
    b->names = NULL;
    b->locals = NULL;
    return c;
}

/* A UTF-8 byte-order mark, which some editors write, is not part of the text (as in python's
 * source decoding): the first line's columns count from after it. */
static void skip_bom(const char **src, size_t *len)
{
    if (*len >= 3 && !memcmp(*src, "\xEF\xBB\xBF", 3)) {
        *src += 3;
        *len -= 3;
    }
}

void asm_error_context(const char *name, const char *src, size_t len, const char *err,
                       char *out, size_t outlen)
{
    size_t nl = strlen(name);
    unsigned line = 0, col = 0;
    if (outlen)
        out[0] = 0;
    if (strncmp(err, name, nl) || sscanf(err + nl, ":%u:%u:", &line, &col) != 2 || !line)
        return;
    skip_bom(&src, &len);
    const char *s = src, *end = src + len;
    for (unsigned i = 1; i < line && s; i++) {
        s = memchr(s, '\n', (size_t)(end - s));
        if (s)
            s++;
    }
    if (!s)
        return;
    const char *e = memchr(s, '\n', (size_t)(end - s));
    size_t n = (size_t)((e ? e : end) - s);
    if (n && s[n - 1] == '\r')
        n--;
    if (!n || col < 1 || col > n + 1 || 2 * (n + 8) > outlen)
        return;                         /* no line to show, or too long to show whole */
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return;                     /* not text: a terminal would garble it */
    size_t k = (size_t)snprintf(out, outlen, "    %.*s\n    ", (int)n, s);
    for (unsigned i = 1; i < col; i++)
        out[k++] = s[i - 1] == '\t' ? '\t' : ' ';
    out[k++] = '^';
    out[k] = 0;
}

int asm_assemble(vm_thread *t, const char *filename, const char *src, size_t len,
                 uint32_t entry_depth, vm_module *out, char *err, size_t errlen)
{
    asm_state a;
    memset(&a, 0, sizeof a);
    a.t = t;
    a.file = filename ? filename : "<input>";
    a.err = err;
    a.errlen = errlen;
    if (err && errlen)
        err[0] = 0;
    out->ncodes = 0;
    out->codes = NULL;
    builder_init(&a.body, 0, entry_depth);
    a.cur = &a.body;
    GROW(a.codes, a.ncodes, a.ccodes);
    a.codes[a.ncodes++] = NULL;                 /* the body, filled last */

    int rc = -1;
    size_t off = 0;
    skip_bom(&src, &len);
    while (off < len) {
        const char *nl = memchr(src + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - src) : len;
        if (a.lineno == UINT32_MAX) {
            fail_at(&a, a.lineno, 1, "file too long");
            goto out;
        }
        a.lineno++;
        a.ln = src + off;
        a.lnlen = end - off;
        a.p = 0;
        if (do_line(&a) < 0)
            goto out;
        off = nl ? end + 1 : len;
    }
    if (a.lineno == 0)
        a.lineno = 1;
    if (a.in_func) {
        fail_at(&a, a.fn.pos.line, a.fn.pos.col, "unclosed .func %s (missing .end)",
                TOK(a.fn.name->data, a.fn.name->len));
        goto out;
    }
    a.ln = "";
    a.lnlen = a.p = 0;
    vm_code *body = finish(&a, &a.body, (srcpos){a.lineno, 1});
    if (!body)
        goto out;
    a.codes[0] = body;
    vm_str *file = a.have_source ? a.source : AS_STR(vm_str_c(t, a.file));
    for (size_t i = 0; i < a.ncodes; i++)
        a.codes[i]->file = file;
    out->ncodes = (uint32_t)a.ncodes;
    out->codes = a.codes;
    a.codes = NULL;
    rc = 0;
out:
    builder_free(&a.body);
    builder_free(&a.fn);
    smap_free(&a.funcs);
    vm_free(a.codes);
    vm_free(a.sb);
    return rc;
}
