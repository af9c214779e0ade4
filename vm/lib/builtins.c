/* SPDX-License-Identifier: MIT */
/* The builtins on values: output, conversions, numbers, containers, strings.  The
 * builtins about the program and the VM itself are in sys.c; threads, time, signals and the
 * OS have files of their own. */
#define _GNU_SOURCE 1  /* memmem */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm/core/ops.h"
#include "vm/core/output.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"

/* [the assert statement] */
BUILTIN(assert)
{
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "assert expected 1 or 2 arguments, got %d", argc);
    if (vm_truthy(argv[0])) {
        *out = V_NONE;
        return 0;
    }
    return vm_raise_value(t, vm_exc_new(t, EXC(t)->assertion_error, argc == 2 ? argv[1] : V_NONE));
}

BUILTIN(print)
{
    for (int i = 0; i < argc; i++) {
        value s = vm_to_str(t, argv[i]);
        if (i)
            vm_write(VM_STDOUT, " ", 1);
        vm_write(VM_STDOUT, AS_STR(s)->data, AS_STR(s)->len);
    }
    vm_write(VM_STDOUT, "\n", 1);
    *out = V_NONE;
    return 0;
}

BUILTIN(len)
{
    value v = argv[0];
    switch (v.tag) {
    case T_STR:
    case T_BYTES: *out = V_INT((int64_t)AS_STR(v)->len); return 0;
    case T_LIST: *out = V_INT((int64_t)AS_LIST(v)->len); return 0;
    case T_TUPLE: *out = V_INT((int64_t)AS_TUPLE(v)->len); return 0;
    case T_DICT: *out = V_INT((int64_t)AS_DICT(v)->len); return 0;
    default:
        return vm_raise(t, EXC(t)->type_error, "object of type '%s' has no len()", vm_type_name(v));
    }
}

BUILTIN(str) { *out = vm_to_str(t, argv[0]); return 0; }
BUILTIN(repr) { *out = vm_repr(t, argv[0]); return 0; }
BUILTIN(bool) { *out = V_BOOL(vm_truthy(argv[0])); return 0; }

BUILTIN(type)
{
    *out = vm_str_c(t, vm_type_name(argv[0]));
    return 0;
}

/* After strtoll or strtod stopped at `end` in s: true if they read something and only
 * blanks follow, up to the end of the string (which has no NUL inside). */
static bool parsed_whole(const vm_str *s, const char *end)
{
    if (end == s->data)
        return false;
    while (*end == ' ' || *end == '\n' || *end == '\t')
        end++;
    return !*end && s->len == strlen(s->data);
}

BUILTIN(int)
{
    value v = argv[0];
    switch (v.tag) {
    case T_INT: *out = v; return 0;
    case T_BOOL: *out = V_INT(v.u.i); return 0;
    case T_FLOAT:
        if (isnan(v.u.f))
            return vm_raise(t, EXC(t)->value_error, "cannot convert float NaN to integer");
        if (!(v.u.f >= -9223372036854775808.0 && v.u.f < 9223372036854775808.0))
            return vm_raise(t, EXC(t)->overflow_error, "cannot convert float to 64-bit integer");
        *out = V_INT((int64_t)v.u.f);
        return 0;
    case T_STR: {
        const char *s = AS_STR(v)->data;
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (!parsed_whole(AS_STR(v), end))
            return vm_raise(t, EXC(t)->value_error, "invalid literal for int() with base 10: '%.100s'", s);
        if (errno == ERANGE)
            return vm_raise(t, EXC(t)->overflow_error, "int too large for 64 bits: '%.100s'", s);
        *out = V_INT(n);
        return 0;
    }
    default:
        return vm_type_err(t, "int", "a string or a number", v);
    }
}

BUILTIN(float)
{
    value v = argv[0];
    switch (v.tag) {
    case T_FLOAT: *out = v; return 0;
    case T_INT:
    case T_BOOL: *out = V_FLOAT((double)v.u.i); return 0;
    case T_STR: {
        const char *s = AS_STR(v)->data;
        char *end = (char *)s;
        double d = 0;
        if (!strpbrk(s, "xXpP"))    /* strtod also reads hex ("0x10"); Python's float() does not */
            d = strtod(s, &end);
        if (!parsed_whole(AS_STR(v), end))
            return vm_raise(t, EXC(t)->value_error, "could not convert string to float: '%.100s'", s);
        *out = V_FLOAT(d);
        return 0;
    }
    default:
        return vm_type_err(t, "float", "a string or a number", v);
    }
}

BUILTIN(abs)
{
    value v = argv[0];
    if (v.tag == T_FLOAT) {
        *out = V_FLOAT(fabs(v.u.f));
        return 0;
    }
    if (v.tag != T_INT && v.tag != T_BOOL)
        return vm_raise(t, EXC(t)->type_error, "bad operand type for abs(): '%s'", vm_type_name(v));
    if (v.u.i == INT64_MIN)
        return vm_raise(t, EXC(t)->overflow_error, "integer overflow");
    *out = V_INT(v.u.i < 0 ? -v.u.i : v.u.i);
    return 0;
}

static int to_list(vm_thread *t, value x, value *out);

static int minmax(vm_thread *t, int argc, value *argv, value *out, int sign, const char *name)
{
    const value *items = argv;
    size_t n = (size_t)argc;
    if (argc == 0)
        return vm_raise(t, EXC(t)->type_error, "%s expected at least 1 argument, got 0", name);
    if (argc == 1) {        /* one argument: an iterable */
        value l;
        if (to_list(t, argv[0], &l))
            return -1;
        items = AS_LIST(l)->items;
        n = AS_LIST(l)->len;
    }
    if (n == 0)
        return vm_raise(t, EXC(t)->value_error, "%s() arg is an empty sequence", name);
    value best = items[0];
    for (size_t i = 1; i < n; i++) {
        int c;
        if (vm_order(t, items[i], best, &c))
            return -1;
        if (c == sign)
            best = items[i];
    }
    *out = best;
    return 0;
}

BUILTIN(min) { return minmax(t, argc, argv, out, -1, "min"); }
BUILTIN(max) { return minmax(t, argc, argv, out, 1, "max"); }

BUILTIN(range)
{
    int64_t a[3] = {0, 0, 1};
    if (argc < 1 || argc > 3)
        return vm_raise(t, EXC(t)->type_error, "range expected 1 to 3 arguments, got %d", argc);
    for (int i = 0; i < argc; i++)
        if (vm_want_int(t, "range", argv[i], &a[i]))
            return -1;
    if (argc == 1) {
        a[1] = a[0];
        a[0] = 0;
    }
    if (a[2] == 0)
        return vm_raise(t, EXC(t)->value_error, "range() arg 3 must not be zero");
    *out = vm_range_new(t, a[0], a[1], a[2]);
    return 0;
}

/* Collects an iterable into a new list. */
static int to_list(vm_thread *t, value x, value *out)
{
    value it;
    if (vm_get_iter(t, x, &it))
        return -1;
    value l = vm_list_new(t, 0), v;
    int r;
    while ((r = vm_iter_next(t, (vm_iter *)it.u.o, &v)) > 0)
        if (vm_list_append(t, AS_LIST(l), v))
            return -1;
    if (r < 0)
        return -1;
    *out = l;
    return 0;
}

BUILTIN(list)
{
    if (argc == 0) {
        *out = vm_list_new(t, 0);
        return 0;
    }
    if (argc != 1)
        return vm_raise(t, EXC(t)->type_error, "list expected at most 1 argument, got %d", argc);
    return to_list(t, argv[0], out);
}

BUILTIN(tuple)
{
    value l;
    if (argc == 0) {
        *out = vm_tuple_new(t, 0, NULL);
        return 0;
    }
    if (argc != 1)
        return vm_raise(t, EXC(t)->type_error, "tuple expected at most 1 argument, got %d", argc);
    if (to_list(t, argv[0], &l))
        return -1;
    *out = vm_tuple_new(t, AS_LIST(l)->len, AS_LIST(l)->items);
    return 0;
}

BUILTIN(append)
{
    if (argv[0].tag != T_LIST)
        return vm_type_err(t, "append", "list", argv[0]);
    if (vm_list_append(t, AS_LIST(argv[0]), argv[1]))
        return -1;
    *out = V_NONE;
    return 0;
}

BUILTIN(pop)
{
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "pop expected 1 or 2 arguments, got %d", argc);
    if (argv[0].tag == T_DICT) {
        if (argc != 2)
            return vm_raise(t, EXC(t)->type_error, "pop() on a dict needs a key");
        vm_dict *d = AS_DICT(argv[0]);
        int r = vm_dict_get(t, d, argv[1], out);
        if (r < 0)
            return -1;
        if (r == 0)
            return vm_raise_value(t, vm_exc_new(t, EXC(t)->key_error, vm_repr(t, argv[1])));
        vm_dict_del(t, d, argv[1]);
        return 0;
    }
    if (argv[0].tag != T_LIST)
        return vm_type_err(t, "pop", "list or dict", argv[0]);
    vm_list *l = AS_LIST(argv[0]);
    if (l->len == 0)
        return vm_raise(t, EXC(t)->index_error, "pop from empty list");
    int64_t i = (int64_t)l->len - 1;
    if (argc == 2) {
        if (vm_want_int(t, "pop", argv[1], &i))
            return -1;
        if (i < 0)
            i += (int64_t)l->len;
        if (i < 0 || (size_t)i >= l->len)
            return vm_raise(t, EXC(t)->index_error, "pop index out of range");
    }
    *out = l->items[i];
    memmove(l->items + i, l->items + i + 1, (l->len - (size_t)i - 1) * sizeof(value));
    l->len--;
    return 0;
}

BUILTIN(insert)
{
    int64_t i = 0;
    if (argv[0].tag != T_LIST)
        return vm_type_err(t, "insert", "list", argv[0]);
    if (vm_want_int(t, "insert", argv[1], &i))
        return -1;
    vm_list *l = AS_LIST(argv[0]);
    if (i < 0)
        i += (int64_t)l->len;
    if (i < 0)
        i = 0;
    if ((size_t)i > l->len)
        i = (int64_t)l->len;
    if (vm_list_append(t, l, V_NONE))
        return -1;
    memmove(l->items + i + 1, l->items + i, (l->len - 1 - (size_t)i) * sizeof(value));
    l->items[i] = argv[2];
    *out = V_NONE;
    return 0;
}

static int dict_view(vm_thread *t, value d, int which, value *out, const char *fn)
{
    if (d.tag != T_DICT)
        return vm_type_err(t, fn, "dict", d);
    vm_dict *dd = AS_DICT(d);
    value l = vm_list_new(t, dd->len);
    for (size_t i = 0; i < dd->used; i++) {
        vm_dict_entry *e = &dd->entries[i];
        if (e->key.tag == T_UNDEF)
            continue;
        value v = which == 0 ? e->key : which == 1 ? e->val
                : vm_tuple_new(t, 2, (value[]){e->key, e->val});
        if (vm_list_append(t, AS_LIST(l), v))
            return -1;
    }
    *out = l;
    return 0;
}

BUILTIN(keys) { return dict_view(t, argv[0], 0, out, "keys"); }
BUILTIN(values) { return dict_view(t, argv[0], 1, out, "values"); }
BUILTIN(items) { return dict_view(t, argv[0], 2, out, "items"); }

BUILTIN(get)
{
    if (argc < 2 || argc > 3)
        return vm_raise(t, EXC(t)->type_error, "get expected 2 or 3 arguments, got %d", argc);
    if (argv[0].tag != T_DICT)
        return vm_type_err(t, "get", "dict", argv[0]);
    int r = vm_dict_get(t, AS_DICT(argv[0]), argv[1], out);
    if (r < 0)
        return -1;
    if (r == 0)
        *out = argc == 3 ? argv[2] : V_NONE;
    return 0;
}

static int sort_values(vm_thread *t, value *v, size_t n)
{
    /* Insertion-merge sort: stable, with errors from comparisons propagated. */
    if (n < 2)
        return 0;
    size_t h = n / 2;
    if (sort_values(t, v, h) || sort_values(t, v + h, n - h))
        return -1;
    value *tmp = vm_malloc(n * sizeof(value));
    if (!tmp)
        return vm_raise(t, EXC(t)->memory_error, "cannot sort %zu items", n);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int c;
        if (vm_order(t, v[j], v[i], &c)) {
            vm_free(tmp);
            return -1;
        }
        tmp[k++] = c < 0 ? v[j++] : v[i++];
    }
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof(value));
    vm_free(tmp);
    return 0;
}

BUILTIN(sorted)
{
    value l;
    if (to_list(t, argv[0], &l))
        return -1;
    if (sort_values(t, AS_LIST(l)->items, AS_LIST(l)->len))
        return -1;
    *out = l;
    return 0;
}

BUILTIN(isinstance)
{
    value v = argv[0], c = argv[1];
    if (c.tag == T_CLASS || c.tag == T_TUPLE) {
        int r = vm_exc_matches(t, v, c);
        if (r < 0)
            return -1;
        *out = V_BOOL(r);
        return 0;
    }
    return vm_type_err(t, "isinstance", "an exception class", c);
}

BUILTIN(ord)
{
    if ((argv[0].tag != T_STR && argv[0].tag != T_BYTES) || AS_STR(argv[0])->len != 1)
        return vm_raise(t, EXC(t)->type_error, "ord() expected a character");
    *out = V_INT((unsigned char)AS_STR(argv[0])->data[0]);
    return 0;
}

BUILTIN(chr)
{
    int64_t c = 0;
    if (vm_want_int(t, "chr", argv[0], &c))
        return -1;
    if (c < 0 || c > 0x10ffff)
        return vm_raise(t, EXC(t)->value_error, "chr() arg not in range(0x110000)");
    char buf[4];
    size_t n;
    if (c < 0x80) { buf[0] = (char)c; n = 1; }
    else if (c < 0x800) { buf[0] = (char)(0xc0 | c >> 6); buf[1] = (char)(0x80 | (c & 0x3f)); n = 2; }
    else if (c < 0x10000) {
        buf[0] = (char)(0xe0 | c >> 12); buf[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        buf[2] = (char)(0x80 | (c & 0x3f)); n = 3;
    } else {
        buf[0] = (char)(0xf0 | c >> 18); buf[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        buf[2] = (char)(0x80 | ((c >> 6) & 0x3f)); buf[3] = (char)(0x80 | (c & 0x3f)); n = 4;
    }
    *out = vm_str_new(t, buf, n);
    return 0;
}

BUILTIN(hash)
{
    uint64_t h;
    if (vm_hash(t, argv[0], &h))
        return -1;
    *out = V_INT((int64_t)(h >> 1));
    return 0;
}

BUILTIN(slice)
{
    value s = argv[0];
    int64_t a = 0, b = 0;
    if (vm_want_int(t, "slice", argv[1], &a) || vm_want_int(t, "slice", argv[2], &b))
        return -1;
    int64_t n = 0;
    switch (s.tag) {
    case T_STR: case T_BYTES: n = (int64_t)AS_STR(s)->len; break;
    case T_LIST: n = (int64_t)AS_LIST(s)->len; break;
    case T_TUPLE: n = (int64_t)AS_TUPLE(s)->len; break;
    default: return vm_type_err(t, "slice", "a sequence", s);
    }
    if (a < 0) a += n;
    if (b < 0) b += n;
    if (a < 0) a = 0;
    if (b > n) b = n;
    if (b < a) b = a;
    if (a > n) a = b = n;
    size_t len = (size_t)(b - a);
    if (s.tag == T_STR)
        *out = vm_str_new(t, AS_STR(s)->data + a, len);
    else if (s.tag == T_BYTES)
        *out = vm_bytes_new(t, AS_STR(s)->data + a, len);
    else if (s.tag == T_TUPLE)
        *out = vm_tuple_new(t, len, AS_TUPLE(s)->items + a);
    else {
        *out = vm_list_new(t, len);
        for (size_t i = 0; i < len; i++)
            if (vm_list_append(t, AS_LIST(*out), AS_LIST(s)->items[a + (int64_t)i]))
                return -1;
    }
    return 0;
}

BUILTIN(join)
{
    value sep = argv[0], seq = argv[1];
    if (sep.tag != T_STR)
        return vm_type_err(t, "join", "str", sep);
    value l;
    if (to_list(t, seq, &l))
        return -1;
    size_t total = 0, n = AS_LIST(l)->len;
    for (size_t i = 0; i < n; i++) {
        value v = AS_LIST(l)->items[i];
        if (v.tag != T_STR)
            return vm_raise(t, EXC(t)->type_error, "sequence item %zu: expected str instance, %s found",
                            i, vm_type_name(v));
        total += AS_STR(v)->len + (i ? AS_STR(sep)->len : 0);
    }
    if (vm_heap_reserve(t, total))
        return -1;
    char *buf = vm_malloc(total + 1), *p = buf;
    if (!buf)
        return vm_raise(t, EXC(t)->memory_error, "cannot join %zu bytes", total);
    for (size_t i = 0; i < n; i++) {
        if (i) {
            memcpy(p, AS_STR(sep)->data, AS_STR(sep)->len);
            p += AS_STR(sep)->len;
        }
        vm_str *s = AS_STR(AS_LIST(l)->items[i]);
        memcpy(p, s->data, s->len);
        p += s->len;
    }
    *out = vm_str_new(t, buf, total);
    vm_free(buf);
    return 0;
}

BUILTIN(split)
{
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "split expected 1 or 2 arguments, got %d", argc);
    if (argv[0].tag != T_STR)
        return vm_type_err(t, "split", "str", argv[0]);
    vm_str *s = AS_STR(argv[0]);
    value l = vm_list_new(t, 0);
    if (argc == 1 || argv[1].tag == T_NONE) {      /* whitespace runs */
        size_t i = 0;
        while (i < s->len) {
            while (i < s->len && strchr(" \t\n\r\f\v", s->data[i]) && s->data[i])
                i++;
            size_t j = i;
            while (j < s->len && !(strchr(" \t\n\r\f\v", s->data[j]) && s->data[j]))
                j++;
            if (j > i)
                if (vm_list_append(t, AS_LIST(l), vm_str_new(t, s->data + i, j - i)))
                    return -1;
            i = j;
        }
    } else {
        if (argv[1].tag != T_STR)
            return vm_type_err(t, "split", "str", argv[1]);
        vm_str *sep = AS_STR(argv[1]);
        if (sep->len == 0)
            return vm_raise(t, EXC(t)->value_error, "empty separator");
        size_t i = 0;
        for (;;) {
            const char *hit = memmem(s->data + i, s->len - i, sep->data, sep->len);
            size_t j = hit ? (size_t)(hit - s->data) : s->len;
            if (vm_list_append(t, AS_LIST(l), vm_str_new(t, s->data + i, j - i)))
                return -1;
            if (!hit)
                break;
            i = j + sep->len;
        }
    }
    *out = l;
    return 0;
}

static int str_case(vm_thread *t, value v, value *out, int upper, const char *fn)
{
    if (v.tag != T_STR)
        return vm_type_err(t, fn, "str", v);
    *out = vm_str_new(t, AS_STR(v)->data, AS_STR(v)->len);
    for (size_t i = 0; i < AS_STR(*out)->len; i++) {
        char *c = &AS_STR(*out)->data[i];
        if (upper && *c >= 'a' && *c <= 'z')
            *c = (char)(*c - 32);
        else if (!upper && *c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    }
    return 0;
}

BUILTIN(upper) { return str_case(t, argv[0], out, 1, "upper"); }
BUILTIN(lower) { return str_case(t, argv[0], out, 0, "lower"); }

BUILTIN(find)
{
    if (argv[0].tag != argv[1].tag || (argv[0].tag != T_STR && argv[0].tag != T_BYTES))
        return vm_type_err(t, "find", "two str or two bytes", argv[0].tag == T_STR ? argv[1] : argv[0]);
    vm_str *s = AS_STR(argv[0]), *sub = AS_STR(argv[1]);
    const char *hit = sub->len ? memmem(s->data, s->len, sub->data, sub->len) : s->data;
    *out = V_INT(hit ? (int64_t)(hit - s->data) : -1);
    return 0;
}

BUILTIN(encode)
{
    if (argv[0].tag != T_STR)
        return vm_type_err(t, "encode", "str", argv[0]);
    *out = vm_bytes_new(t, AS_STR(argv[0])->data, AS_STR(argv[0])->len);
    return 0;
}

BUILTIN(decode)
{
    if (argv[0].tag != T_BYTES)
        return vm_type_err(t, "decode", "bytes", argv[0]);
    *out = vm_str_new(t, AS_STR(argv[0])->data, AS_STR(argv[0])->len);
    return 0;
}

/* format("{} and {}", a, b): each {} takes the next argument's str(); {{ and }} escape. */
BUILTIN(format)
{
    if (argc < 1 || argv[0].tag != T_STR)
        return vm_raise(t, EXC(t)->type_error, "format() needs a format string");
    vm_str *f = AS_STR(argv[0]);
    value parts = vm_list_new(t, 0);
    int next = 1, rc = 0;
    size_t i = 0, lit = 0;
    while (i < f->len) {
        if ((f->data[i] == '{' || f->data[i] == '}') && i + 1 < f->len && f->data[i + 1] == f->data[i]) {
            if (vm_list_append(t, AS_LIST(parts), vm_str_new(t, f->data + lit, i + 1 - lit)))
                return -1;
            i += 2;
            lit = i;
        } else if (f->data[i] == '{' && i + 1 < f->len && f->data[i + 1] == '}') {
            if (vm_list_append(t, AS_LIST(parts), vm_str_new(t, f->data + lit, i - lit)))
                return -1;
            if (next >= argc) {
                rc = vm_raise(t, EXC(t)->index_error, "format(): not enough arguments");
                break;
            }
            if (vm_list_append(t, AS_LIST(parts), vm_to_str(t, argv[next++])))
                return -1;
            i += 2;
            lit = i;
        } else
            i++;
    }
    if (!rc) {
        if (vm_list_append(t, AS_LIST(parts), vm_str_new(t, f->data + lit, f->len - lit)))
            return -1;
        value args[2] = {vm_str_new(t, "", 0), parts};
        rc = bi_join(t, 2, args, out);
    }
    return rc;
}

void vm_builtins_install(vm_thread *t)
{
    static const vm_native_def natives[] = {
        {"print", -1, bi_print, "print(*values)"},
        {"assert", -1, bi_assert, "assert(cond, msg=None)"},
        {"len", 1, bi_len, "len(x)"},
        {"str", 1, bi_str, "str(x)"},
        {"repr", 1, bi_repr, "repr(x)"},
        {"bool", 1, bi_bool, "bool(x)"},
        {"type", 1, bi_type, "type(x)"},
        {"int", 1, bi_int, "int(x)"},
        {"float", 1, bi_float, "float(x)"},
        {"abs", 1, bi_abs, "abs(x)"},
        {"min", -1, bi_min, "min(iterable)\nmin(a, b, *rest)"},
        {"max", -1, bi_max, "max(iterable)\nmax(a, b, *rest)"},
        {"range", -1, bi_range, "range(stop)\nrange(start, stop, step=1)"},
        {"list", -1, bi_list, "list(iterable=())"},
        {"tuple", -1, bi_tuple, "tuple(iterable=())"},
        {"append", 2, bi_append, "append(list, x)"},
        {"pop", -1, bi_pop, "pop(list, index=-1)\npop(dict, key)"},
        {"insert", 3, bi_insert, "insert(list, index, x)"},
        {"keys", 1, bi_keys, "keys(dict)"},
        {"values", 1, bi_values, "values(dict)"},
        {"items", 1, bi_items, "items(dict)"},
        {"get", -1, bi_get, "get(dict, key, default=None)"},
        {"sorted", 1, bi_sorted, "sorted(iterable)"},
        {"isinstance", 2, bi_isinstance, "isinstance(x, cls)"},
        {"ord", 1, bi_ord, "ord(c)"},
        {"chr", 1, bi_chr, "chr(i)"},
        {"hash", 1, bi_hash, "hash(x)"},
        {"slice", 3, bi_slice, "slice(seq, start, stop)"},
        {"join", 2, bi_join, "join(sep, iterable)"},
        {"split", -1, bi_split, "split(s, sep=None)"},
        {"upper", 1, bi_upper, "upper(s)"},
        {"lower", 1, bi_lower, "lower(s)"},
        {"find", 2, bi_find, "find(s, sub)"},
        {"encode", 1, bi_encode, "encode(s)"},
        {"decode", 1, bi_decode, "decode(b)"},
        {"format", -1, bi_format, "format(fmt, *args)"},
    };
    VM_DEF_NATIVES(t, natives);
    vm_native_set_fast(t, "get", VM_FAST_GET);
    vm_native_set_fast(t, "len", VM_FAST_LEN);
    vm_native_set_fast(t, "append", VM_FAST_APPEND);
}
