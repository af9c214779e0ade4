/* SPDX-License-Identifier: MIT */
/* Exceptions: creating and raising them, class matching, tracebacks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vm/core/output.h"
#include "vm/core/state.h"

value vm_exc_new(vm_thread *t, vm_class *cls, value arg)
{
    vm_exc *e = (vm_exc *)vm_alloc(t, T_EXC, sizeof(vm_exc));
    e->cls = cls;
    e->arg = arg;
    e->context = V_NONE;
    e->tb = e->tb_small;
    e->captb = VM_EXC_TB_SMALL;
    return V_OBJ(T_EXC, e);
}

bool vm_class_is(vm_class *c, vm_class *base)
{
    for (; c; c = c->base)
        if (c == base)
            return true;
    return false;
}

int vm_raise_value(vm_thread *t, value exc)
{
    if (exc.tag == T_CLASS)
        exc = vm_exc_new(t, AS_CLASS(exc), V_NONE);
    if (exc.tag != T_EXC)
        return vm_raise(t, VM_INTERP(t)->exc.type_error,
                        "exceptions must derive from BaseException, not '%s'", vm_type_name(exc));
    if (AS_EXC(exc)->context.tag == T_NONE && t->handled.tag == T_EXC &&
        t->handled.u.o != exc.u.o)
        AS_EXC(exc)->context = t->handled;
    t->exc = exc;
    return -1;
}

int vm_raise(vm_thread *t, vm_class *cls, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return vm_raise_value(t, vm_exc_new(t, cls, vm_str_c(t, buf)));
}

void vm_exc_add_tb(vm_thread *t, vm_exc *e, vm_code *code, uint32_t pc)
{
    if (e->ntb == e->captb) {
        uint32_t cap = e->captb * 2;
        vm_tb_entry *tb = vm_realloc(e->tb == e->tb_small ? NULL : e->tb, cap * sizeof *tb);
        if (!tb)
            return;                 /* out of memory: the traceback stops short */
        if (e->tb == e->tb_small)
            memcpy(tb, e->tb_small, sizeof e->tb_small);
        e->tb = tb;
        e->captb = cap;
    }
    e->tb[e->ntb++] = (vm_tb_entry){code, pc};
}

value vm_exc_format(vm_thread *t, value exc)
{
    vm_exc *e = AS_EXC(exc);
    value msg = e->arg.tag == T_NONE ? V_UNDEF : vm_to_str(t, e->arg);
    size_t nlen = e->cls->name->len, mlen = msg.tag == T_STR ? AS_STR(msg)->len : 0;
    char *buf = vm_malloc(nlen + mlen + 3);
    if (!buf)
        return V_OBJ(T_STR, e->cls->name);     /* out of memory: the class name alone */
    memcpy(buf, e->cls->name->data, nlen);
    size_t n = nlen;
    if (mlen) {
        memcpy(buf + n, ": ", 2);
        memcpy(buf + n + 2, AS_STR(msg)->data, mlen);
        n += 2 + mlen;
    }
    value s = vm_str_new(t, buf, n);
    vm_free(buf);
    return s;
}

/* A growing text buffer for a formatted traceback; on out of memory it keeps what it has. */
typedef struct {
    char *p;
    size_t len, cap;
} tbuf;

static void tb_printf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(tbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = vm_realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Prints line `lineno` of `file`, stripped, as the traceback's source line (linecache). */
static void print_source_line(tbuf *b, const char *file, uint32_t lineno)
{
    struct stat st;
    if (stat(file, &st) || !S_ISREG(st.st_mode))   /* a .gbc may name a FIFO: never block */
        return;
    FILE *fp = fopen(file, "r");
    if (!fp)
        return;
    char line[1024];
    uint32_t n = 0;
    while (fgets(line, sizeof line, fp)) {
        size_t len = strlen(line);
        int whole = len && line[len - 1] == '\n';
        if (++n == lineno) {
            char *s = line;
            while (*s == ' ' || *s == '\t')
                s++;
            size_t l = strlen(s);
            while (l && (s[l - 1] == '\n' || s[l - 1] == '\r' || s[l - 1] == ' '))
                s[--l] = 0;
            if (l)
                tb_printf(b, "    %s\n", s);
            break;
        }
        while (!whole && fgets(line, sizeof line, fp)) {    /* rest of a long line */
            len = strlen(line);
            whole = len && line[len - 1] == '\n';
        }
    }
    fclose(fp);
}

/* As CPython's tb_print_internal: after TB_REPEAT_CUTOFF identical consecutive entries
 * (same code object and line), the rest of the run is one line
 * (tests/programs/core/recursion_traceback.gasm). */
enum { TB_REPEAT_CUTOFF = 3 };

static void print_repeated(tbuf *b, uint32_t count)
{
    if (count > TB_REPEAT_CUTOFF)
        tb_printf(b, "  [Previous line repeated %u more time%s]\n", count - TB_REPEAT_CUTOFF,
                count - TB_REPEAT_CUTOFF > 1 ? "s" : "");
}

static void print_one(tbuf *b, vm_thread *t, value exc)
{
    vm_exc *e = AS_EXC(exc);
    vm_code *last_code = NULL;
    uint32_t last_line = 0, count = 0;
    tb_printf(b, "Traceback (most recent call last):\n");
    for (uint32_t i = e->ntb; i-- > 0;) {
        vm_code *c = e->tb[i].code;
        uint32_t line = c->lines && e->tb[i].pc < c->ncode ? c->lines[e->tb[i].pc] : 0;
        if (count && c == last_code && line == last_line) {
            if (++count > TB_REPEAT_CUTOFF)
                continue;
        } else {
            print_repeated(b, count);
            last_code = c;
            last_line = line;
            count = 1;
        }
        tb_printf(b, "  File \"%s\", line %u, in %s\n", c->file ? c->file->data : "?", line,
                c->name->data);
        if (c->file && line)
            print_source_line(b, c->file->data, line);
    }
    print_repeated(b, count);
    value s = vm_exc_format(t, exc);
    tb_printf(b, "%s\n", AS_STR(s)->data);
}

char *vm_format_traceback(vm_thread *t, value exc)
{
    tbuf b = {0};
    tb_printf(&b, "%s", "");
    if (exc.tag != T_EXC)
        return b.p;
    /* The context chain, oldest printed first; walked in a loop (a chain can be as long as
     * bytecode makes it) and cut at 1000 links, which also ends any cycle. */
    enum { MAX_CHAIN = 1000 };
    vm_exc *chain[MAX_CHAIN];
    int n = 0;
    for (vm_exc *e = AS_EXC(exc); e && n < MAX_CHAIN; ) {
        chain[n++] = e;
        e = e->context.tag == T_EXC ? AS_EXC(e->context) : NULL;
    }
    for (int i = n; i-- > 0;) {
        print_one(&b, t, V_OBJ(T_EXC, chain[i]));
        if (i)
            tb_printf(&b, "\nDuring handling of the above exception, another exception occurred:\n\n");
    }
    return b.p;
}

void vm_print_traceback(vm_thread *t, value exc)
{
    char *s = vm_format_traceback(t, exc);
    if (s)
        vm_write(VM_STDERR, s, strlen(s));
    vm_free(s);
}

void vm_report_ignored(vm_thread *t, const char *what, value func)
{
    value e = t->exc;
    t->exc = V_UNDEF;
    vm_output_flush();
    if (func.tag != T_UNDEF)
        vm_printf(VM_STDERR, "Exception ignored in %s: %s\n", what, AS_STR(vm_repr(t, func))->data);
    else
        vm_printf(VM_STDERR, "Exception ignored in %s:\n", what);
    vm_print_traceback(t, e);
}
