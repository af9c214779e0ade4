/* SPDX-License-Identifier: MIT */
/* The disassembler: code objects back to .gasm text that re-assembles to identical bytecode
 * (docs/assembly.md).  Called by `gilvm dis`, the REPL's :dis and tests; reads only.
 *
 * Labels are named L<index of the instruction they mark>; exception-table entries become
 * .try/.end_try regions (opened outer-first, closed inner-first, so re-assembly emits them in
 * the same order); .line precedes every instruction whose line differs from the previous one
 * and the first instruction of every code object.  Code from a hand-crafted .gbc that the
 * syntax cannot express is printed as faithfully as possible, never crashing. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/toolchain/module.h"

#define COMMENT_COL 40
#define MAX_CONST_NESTING 200

typedef struct {
    FILE *f;
    long col;                   /* characters written on the current output line */
} writer;

__attribute__((format(printf, 2, 3)))
static void w_printf(writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vfprintf(w->f, fmt, ap);
    va_end(ap);
    if (k > 0)
        w->col += k;
}

static void w_putc(writer *w, char c)
{
    putc(c, w->f);
    w->col = c == '\n' ? 0 : w->col + 1;
}

static void w_nl(writer *w) { w_putc(w, '\n'); }

static void w_indent(writer *w, int n)
{
    for (int i = 0; i < n; i++)
        w_putc(w, ' ');
}

static int is_ident(const char *s, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* A string or bytes literal.  Strings keep valid UTF-8 as is; bytes escape all non-ASCII. */
static void w_strlit(writer *w, const char *data, size_t n, int bytes)
{
    const unsigned char *s = (const unsigned char *)data;
    if (bytes)
        w_putc(w, 'b');
    w_putc(w, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        switch (c) {
        case '\n': w_printf(w, "\\n"); continue;
        case '\t': w_printf(w, "\\t"); continue;
        case '\r': w_printf(w, "\\r"); continue;
        case '\\': w_printf(w, "\\\\"); continue;
        case '"': w_printf(w, "\\\""); continue;
        case 0:
            /* \0 then a digit still reads back as NUL and the digit (no octal escapes) */
            w_printf(w, "\\0");
            continue;
        }
        if (c >= 0x20 && c < 0x7f) {
            w_putc(w, (char)c);
        } else if (c >= 0x80 && !bytes) {
            size_t k = vm_utf8_seq(s + i, n - i);
            if (k) {
                fwrite(s + i, 1, k, w->f);
                w->col++;
                i += k - 1;
            } else {
                w_printf(w, "\\x%02x", c);   /* not expressible; hand-crafted input only */
            }
        } else {
            w_printf(w, "\\x%02x", c);
        }
    }
    w_putc(w, '"');
}

/* A name: bare if it is an identifier, else as a string literal. */
static void w_name(writer *w, const vm_str *s)
{
    if (!s)
        w_printf(w, "\"?\"");
    else if (is_ident(s->data, s->len))
        fwrite(s->data, 1, s->len, w->f), w->col += (long)s->len;
    else
        w_strlit(w, s->data, s->len, 0);
}

/* The shortest text that reads back as the same double, always recognisably a float. */
static void w_float(writer *w, double x)
{
    if (isnan(x)) {
        w_printf(w, signbit(x) ? "-nan" : "nan");
        return;
    }
    if (isinf(x)) {
        w_printf(w, x < 0 ? "-inf" : "inf");
        return;
    }
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    if (!strpbrk(buf, ".e"))
        strcat(buf, ".0");
    w_printf(w, "%s", buf);
}

static void w_const(writer *w, value v, int depth)
{
    switch (v.tag) {
    case T_NONE: w_printf(w, "None"); return;
    case T_BOOL: w_printf(w, v.u.i ? "True" : "False"); return;
    case T_INT: w_printf(w, "%lld", (long long)v.u.i); return;
    case T_FLOAT: w_float(w, v.u.f); return;
    case T_STR:
    case T_BYTES:
        if (v.u.o)
            w_strlit(w, AS_STR(v)->data, AS_STR(v)->len, v.tag == T_BYTES);
        else
            w_printf(w, "None ; <null %s>", v.tag == T_BYTES ? "bytes" : "str");
        return;
    case T_TUPLE: {
        vm_tuple *tp = AS_TUPLE(v);
        if (!tp || depth >= MAX_CONST_NESTING) {
            w_printf(w, "() ; <tuple not shown>");
            return;
        }
        w_putc(w, '(');
        for (size_t i = 0; i < tp->len; i++) {
            if (i)
                w_printf(w, ", ");
            w_const(w, tp->items[i], depth + 1);
        }
        if (tp->len == 1)
            w_putc(w, ',');
        w_putc(w, ')');
        return;
    }
    default:
        w_printf(w, "None ; <constant of tag %u has no literal>", (unsigned)v.tag);
        return;
    }
}

typedef struct {
    uint32_t start, end, idx;
} region;

static int region_cmp(const void *x, const void *y)
{
    const region *a = x, *b = y;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->end != b->end)               /* outer (longer) first */
        return a->end > b->end ? -1 : 1;
    return a->idx > b->idx ? -1 : a->idx < b->idx;   /* same range: later entry is outer */
}

/* The instructions, labels, regions and lines of one code object, indented by `ind`. */
static void dis_body(writer *w, const vm_code *c, int ind)
{
    uint32_t n = c->code ? c->ncode : 0;
    uint8_t *target = vm_xrealloc(NULL, (size_t)n + 1);
    region *rg = vm_xrealloc(NULL, ((size_t)c->nexc + 1) * sizeof *rg);
    uint32_t *open = vm_xrealloc(NULL, ((size_t)c->nexc + 1) * sizeof *open);
    memset(target, 0, (size_t)n + 1);
    for (uint32_t i = 0; i < n; i++) {
        unsigned op = INSTR_OP(c->code[i]);
        if (op < OP__COUNT && op_kind_of(op) == OPK_JUMP && INSTR_ARG(c->code[i]) <= n)
            target[INSTR_ARG(c->code[i])] = 1;
    }
    size_t nrg = 0;
    for (uint32_t k = 0; c->exc && k < c->nexc; k++) {
        const vm_exc_entry *e = &c->exc[k];
        if (e->target <= n)
            target[e->target] = 1;
        if (e->start < e->end && e->end <= n)
            rg[nrg++] = (region){e->start, e->end, k};
        else
            w_printf(w, "%*s; exception entry %u [%u, %u) -> %u not shown\n", ind, "", k,
                     e->start, e->end, e->target);
    }
    qsort(rg, nrg, sizeof *rg, region_cmp);

    size_t next = 0, nopen = 0;
    int have_line = 0;
    uint32_t prev_line = 0;
    for (uint32_t i = 0; i <= n; i++) {
        while (nopen && rg[open[nopen - 1]].end <= i) {
            nopen--;
            w_indent(w, ind + 2 * (int)nopen);
            w_printf(w, ".end_try");
            w_nl(w);
        }
        if (target[i]) {
            w_printf(w, "L%u:", i);
            w_nl(w);
        }
        if (i == n)
            break;
        while (next < nrg && rg[next].start == i) {
            w_indent(w, ind + 2 * (int)nopen);
            w_printf(w, ".try L%u", c->exc[rg[next].idx].target);
            w_nl(w);
            open[nopen++] = (uint32_t)next++;
        }
        int in = ind + 2 * (int)nopen;
        if (c->lines && (!have_line || c->lines[i] != prev_line)) {
            w_indent(w, in);
            w_printf(w, ".line %u", c->lines[i]);
            w_nl(w);
            have_line = 1;
            prev_line = c->lines[i];
        }
        instr ins = c->code[i];
        unsigned op = INSTR_OP(ins);
        uint32_t arg = INSTR_ARG(ins);
        w_indent(w, in);
        if (op >= OP__COUNT) {
            w_printf(w, "; unknown opcode %u, operand %u", op, arg);
            w_nl(w);
            continue;
        }
        w_printf(w, "%s", op_name(op));
        switch (op_kind_of(op)) {
        case OPK_NONE:
            break;
        case OPK_CONST:
            w_putc(w, ' ');
            if (c->consts && arg < c->nconsts)
                w_const(w, c->consts[arg], 0);
            else
                w_printf(w, "None ; <constant %u out of range>", arg);
            break;
        case OPK_LOCAL:
            w_putc(w, ' ');
            if (c->localnames && arg < c->nlocals && c->localnames[arg])
                w_name(w, c->localnames[arg]);
            else
                w_printf(w, "%u", arg);
            break;
        case OPK_NAME:
            w_putc(w, ' ');
            if (c->names && arg < c->nnames)
                w_name(w, c->names[arg]);
            else
                w_printf(w, "\"?\" ; <name %u out of range>", arg);
            break;
        case OPK_JUMP:
            w_printf(w, " L%u", arg);
            break;
        case OPK_COUNT:
            w_printf(w, " %u", arg);
            break;
        case OPK_IMM:
            w_printf(w, " %d", (int)INSTR_IMM(ins));
            break;
        }
        if (w->col < COMMENT_COL)
            w_indent(w, (int)(COMMENT_COL - w->col));
        else
            w_putc(w, ' ');
        w_printf(w, "; %u", i);
        w_nl(w);
    }
    vm_free(target);
    vm_free(rg);
    vm_free(open);
}

static void dis_func(writer *w, const vm_code *c)
{
    w_printf(w, ".func ");
    w_name(w, c->name);
    w_putc(w, '(');
    for (uint32_t i = 0; i < c->nparams && i < c->nlocals; i++) {
        if (i)
            w_printf(w, ", ");
        if (c->localnames && c->localnames[i])
            w_name(w, c->localnames[i]);
        else
            w_printf(w, "_%u", i);
    }
    w_putc(w, ')');
    w_indent(w, w->col < COMMENT_COL ? (int)(COMMENT_COL - w->col) : 1);
    w_printf(w, "; maxstack %u", c->maxstack);
    w_nl(w);
    if (c->nlocals > c->nparams) {
        w_printf(w, "    .local ");
        for (uint32_t i = c->nparams; i < c->nlocals; i++) {
            if (i > c->nparams)
                w_printf(w, ", ");
            if (c->localnames && c->localnames[i])
                w_name(w, c->localnames[i]);
            else
                w_printf(w, "_%u", i);
        }
        w_nl(w);
    }
    dis_body(w, c, 4);
    w_printf(w, ".end");
    w_nl(w);
}

int dis_code(FILE *out, const vm_code *c)
{
    writer w = {out, 0};
    if (c->flags & CO_MODULE) {
        w_printf(&w, "; module body");
        if (c->file) {
            w_printf(&w, " of ");
            w_strlit(&w, c->file->data, c->file->len, 0);
        }
        w_printf(&w, ", maxstack %u", c->maxstack);
        w_nl(&w);
        dis_body(&w, c, 4);
    } else {
        dis_func(&w, c);
    }
    return ferror(out) ? -1 : 0;
}

int dis_module(FILE *out, const vm_module *m)
{
    writer w = {out, 0};
    if (!m->ncodes)
        return 0;
    const vm_code *body = m->codes[0];
    if (body->file) {
        w_printf(&w, ".source ");
        w_strlit(&w, body->file->data, body->file->len, 0);
        w_nl(&w);
    }
    for (uint32_t i = 1; i < m->ncodes; i++) {
        w_nl(&w);
        dis_func(&w, m->codes[i]);
    }
    w_nl(&w);
    w_printf(&w, "; module body, maxstack %u", body->maxstack);
    w_nl(&w);
    dis_body(&w, body, 4);
    return ferror(out) ? -1 : 0;
}
