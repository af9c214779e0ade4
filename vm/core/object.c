/* SPDX-License-Identifier: MIT */
/* Object constructors and the generic value operations (hash, equality, truth, str, repr)
 * that builtins and the eval loop's slow paths share. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/core/state.h"

/* For allocations that cannot fail here: the reserve, then MemoryError at the next poll. */
#define xrealloc vm_xrealloc

value vm_str_new(vm_thread *t, const char *s, size_t len)
{
    vm_str *o = (vm_str *)vm_alloc(t, T_STR, sizeof(vm_str) + len + 1);
    o->len = len;
    if (len)
        memcpy(o->data, s, len);
    o->data[len] = 0;
    return V_OBJ(T_STR, o);
}

value vm_str_c(vm_thread *t, const char *s) { return vm_str_new(t, s, strlen(s)); }

value vm_bytes_new(vm_thread *t, const char *s, size_t len)
{
    value v = vm_str_new(t, s, len);
    v.tag = T_BYTES;
    v.u.o->tag = T_BYTES;
    return v;
}

value vm_no_items[1];

value vm_list_new(vm_thread *t, size_t cap)
{
    vm_list *l = (vm_list *)vm_alloc(t, T_LIST, sizeof(vm_list));
    l->cap = cap;
    l->items = cap ? xrealloc(NULL, cap * sizeof(value)) : vm_no_items;
    vm_heap_charge(t, cap * sizeof(value));
    return V_OBJ(T_LIST, l);
}

int vm_list_append(vm_thread *t, vm_list *l, value v)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (vm_heap_reserve(t, (cap - l->cap) * sizeof(value)))
            return -1;
        value *items = vm_realloc(l->cap ? l->items : NULL, cap * sizeof(value));
        if (!items)
            return vm_raise(t, VM_INTERP(t)->exc.memory_error, "cannot grow a list to %zu items",
                            cap);
        l->items = items;
        vm_heap_charge(t, (cap - l->cap) * sizeof(value));
        l->cap = cap;
    }
    l->items[l->len++] = v;
    return 0;
}

value vm_tuple_new(vm_thread *t, size_t n, const value *items)
{
    vm_tuple *o = (vm_tuple *)vm_alloc(t, T_TUPLE, sizeof(vm_tuple) + n * sizeof(value));
    o->len = n;
    vm_values_copy(o->items, items, n);
    return V_OBJ(T_TUPLE, o);
}

vm_code *vm_code_new(vm_thread *t) { return (vm_code *)vm_alloc(t, T_CODE, sizeof(vm_code)); }

size_t vm_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf)
        k = 1, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        k = 2, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n <= k)
        return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k + 1;
}

/* ---- hashing and equality ---- */

/* SipHash-1-3 keyed with the process's seed (vm_hash_key, hashseed.c), as CPython hashes
 * str and bytes: which strings collide cannot be known without the key, so a program's
 * input cannot flood a dict (tests/embed: the seed changes hash() between processes). */
#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND() \
    do { \
        v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32); \
        v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32); \
    } while (0)

uint64_t vm_hash_bytes(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t k0 = vm_hash_key[0], k1 = vm_hash_key[1];
    uint64_t v0 = k0 ^ 0x736f6d6570736575u, v1 = k1 ^ 0x646f72616e646f6du;
    uint64_t v2 = k0 ^ 0x6c7967656e657261u, v3 = k1 ^ 0x7465646279746573u;
    size_t n = len;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t m;
        memcpy(&m, p, 8);       /* little-endian hosts; a big-endian one hashes differently */
        v3 ^= m;
        SIP_ROUND();
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < n; i++)
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIP_ROUND();
    v0 ^= b;
    v2 ^= 0xff;
    SIP_ROUND();
    SIP_ROUND();
    SIP_ROUND();
    uint64_t h = v0 ^ v1 ^ v2 ^ v3;
    return h ? h : 1;
}

#define mix64 vm_hash_int

static int hash_depth(vm_thread *t, value v, uint64_t *h, int depth);

int vm_hash_slow(vm_thread *t, value v, uint64_t *h) { return hash_depth(t, v, h, 0); }

static int hash_depth(vm_thread *t, value v, uint64_t *h, int depth)
{
    switch (v.tag) {
    case T_NONE: *h = 0x9e3779b9u; return 0;
    case T_BOOL:
    case T_INT: *h = mix64((uint64_t)v.u.i); return 0;
    case T_FLOAT:
        if (v.u.f == floor(v.u.f) && v.u.f >= -9223372036854775808.0 && v.u.f < 9223372036854775808.0) {   /* 1.0 == 1: same hash */
            *h = mix64((uint64_t)(int64_t)v.u.f);
            return 0;
        }
        {
            uint64_t bits;
            memcpy(&bits, &v.u.f, sizeof bits);
            *h = mix64(bits);
        }
        return 0;
    case T_STR:
    case T_BYTES: {
        vm_str *s = AS_STR(v);
        if (!s->hash)
            s->hash = vm_hash_bytes(s->data, s->len) + (v.tag == T_BYTES);
        *h = s->hash;
        return 0;
    }
    case T_TUPLE: {
        vm_tuple *tu = AS_TUPLE(v);
        uint64_t acc = 0x345678u;
        size_t n = depth > 200 ? 0 : tu->len;   /* deep nesting: outer levels only */
        for (size_t i = 0; i < n; i++) {
            uint64_t ih;
            if (hash_depth(t, tu->items[i], &ih, depth + 1))
                return -1;
            acc = (acc ^ ih) * 1000003u;
        }
        *h = mix64(acc);
        return 0;
    }
    case T_LIST:
    case T_DICT:
        return vm_raise(t, VM_INTERP(t)->exc.type_error, "unhashable type: '%s'", vm_type_name(v));
    default:
        *h = mix64((uint64_t)(uintptr_t)v.u.o);
        return 0;
    }
}

static bool is_num(value v) { return v.tag == T_INT || v.tag == T_BOOL || v.tag == T_FLOAT; }

int vm_num_cmp(value a, value b)
{
    if (a.tag != T_FLOAT && b.tag != T_FLOAT)
        return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
    if (a.tag == T_FLOAT && b.tag == T_FLOAT)
        return a.u.f < b.u.f ? -1 : a.u.f > b.u.f ? 1 : a.u.f == b.u.f ? 0 : 2;
    /* int against float, exactly (2**53 + 1 != 2.0**53), as CPython's float_richcompare */
    int flip = a.tag == T_FLOAT;
    int64_t i = flip ? b.u.i : a.u.i;
    double f = flip ? a.u.f : b.u.f;
    int c;
    if (isnan(f))
        return 2;
    if (f >= 9223372036854775808.0)
        c = -1;
    else if (f < -9223372036854775808.0)
        c = 1;
    else {
        double fl = floor(f);
        int64_t fi = (int64_t)fl;
        c = i < fi ? -1 : i > fi ? 1 : (f > fl ? -1 : 0);
    }
    return flip ? -c : c;
}

static bool equal_depth(value a, value b, int depth);

bool vm_equal(value a, value b) { return equal_depth(a, b, 0); }

static bool equal_depth(value a, value b, int depth)
{
    if (is_num(a) && is_num(b))
        return vm_num_cmp(a, b) == 0;
    if (a.tag != b.tag)
        return false;
    switch (a.tag) {
    case T_NONE: return true;
    case T_STR:
    case T_BYTES: {
        vm_str *x = AS_STR(a), *y = AS_STR(b);
        return x == y || (x->len == y->len && memcmp(x->data, y->data, x->len) == 0);
    }
    case T_TUPLE:
    case T_LIST: {
        if (a.u.o == b.u.o)
            return true;
        if (depth > 200)    /* deeper than any sane data: compare by identity */
            return false;
        size_t n = a.tag == T_TUPLE ? AS_TUPLE(a)->len : AS_LIST(a)->len;
        size_t m = b.tag == T_TUPLE ? AS_TUPLE(b)->len : AS_LIST(b)->len;
        const value *x = a.tag == T_TUPLE ? AS_TUPLE(a)->items : AS_LIST(a)->items;
        const value *y = b.tag == T_TUPLE ? AS_TUPLE(b)->items : AS_LIST(b)->items;
        if (n != m)
            return false;
        for (size_t i = 0; i < n; i++)
            if (!equal_depth(x[i], y[i], depth + 1))
                return false;
        return true;
    }
    case T_DICT: {
        vm_dict *x = AS_DICT(a), *y = AS_DICT(b);
        if (x == y)
            return true;
        if (x->len != y->len)
            return false;
        for (size_t i = 0; i < x->used; i++) {
            vm_dict_entry *e = &x->entries[i];
            if (e->key.tag == T_UNDEF)
                continue;
            value other;
            if (depth > 200 || vm_dict_get(NULL, y, e->key, &other) != 1 ||
                !equal_depth(e->val, other, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return a.u.o == b.u.o;
    }
}

bool vm_truthy(value v)
{
    switch (v.tag) {
    case T_NONE: return false;
    case T_BOOL:
    case T_INT: return v.u.i != 0;
    case T_FLOAT: return v.u.f != 0.0;
    case T_STR:
    case T_BYTES: return AS_STR(v)->len != 0;
    case T_LIST: return AS_LIST(v)->len != 0;
    case T_TUPLE: return AS_TUPLE(v)->len != 0;
    case T_DICT: return AS_DICT(v)->len != 0;
    default: return true;
    }
}

const char *vm_type_name(value v)
{
    static const char *const names[T__COUNT] = {
        [T_UNDEF] = "undefined", [T_NONE] = "NoneType", [T_BOOL] = "bool", [T_INT] = "int",
        [T_FLOAT] = "float", [T_STR] = "str", [T_BYTES] = "bytes", [T_LIST] = "list",
        [T_TUPLE] = "tuple", [T_DICT] = "dict", [T_FUNC] = "function",
        [T_NATIVE] = "builtin_function_or_method", [T_CODE] = "code", [T_CLASS] = "type",
        [T_ITER] = "iterator", [T_THREAD] = "thread", [T_LOCK] = "lock", [T_QUEUE] = "queue",
        [T_INTERP] = "interpreter", [T_XIQUEUE] = "xiqueue", [T_FFI_LIB] = "ffi_library", [T_FFI_FUNC] = "ffi_function",
        [T_FFI_BUFFER] = "ffi_buffer", [T_FFI_CALLBACK] = "ffi_callback",
    };
    if (v.tag == T_EXC)
        return AS_EXC(v)->cls->name->data;
    return v.tag < T__COUNT ? names[v.tag] : "?";
}

/* ---- str() and repr() through a growable buffer ---- */

typedef struct {
    char *p;
    size_t len, cap;
    size_t limit;               /* vm_repr_prefix: write no more than this; 0, no limit */
    bool cut;                   /* the limit was reached: what follows is not written */
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->limit && b->len + n > b->limit) {
        n = b->limit - b->len;
        b->cut = true;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* repr() of a float as CPython's: the shortest digits that read back the same, positional
 * when the decimal exponent is in [-4, 16), else with an exponent ("1e+16", "1.5e-05"). */
static void format_float(char *buf, size_t n, double f)
{
    if (isnan(f)) { snprintf(buf, n, "nan"); return; }
    if (isinf(f)) { snprintf(buf, n, f > 0 ? "inf" : "-inf"); return; }
    char e[40];
    int prec = 0;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, f);
        if (strtod(e, NULL) == f)
            break;
    }
    char *ep = strchr(e, 'e');
    int exp = atoi(ep + 1);
    *ep = 0;
    char digits[24];
    size_t nd = 0;
    for (const char *p = e; *p; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    digits[nd] = 0;
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = 0;
    const char *sign = signbit(f) ? "-" : "";
    if (exp < -4 || exp >= 16) {
        if (nd == 1)
            snprintf(buf, n, "%s%se%c%02d", sign, digits, exp < 0 ? '-' : '+', abs(exp));
        else
            snprintf(buf, n, "%s%c.%se%c%02d", sign, digits[0], digits + 1, exp < 0 ? '-' : '+',
                     abs(exp));
    } else if (exp < 0)
        snprintf(buf, n, "%s0.%.*s%s", sign, -exp - 1, "0000", digits);
    else if ((size_t)exp + 1 >= nd)
        snprintf(buf, n, "%s%s%.*s.0", sign, digits, exp + 1 - (int)nd, "000000000000000");
    else
        snprintf(buf, n, "%s%.*s.%s", sign, exp + 1, digits, digits + exp + 1);
}

static void repr_quoted(sbuf *b, const vm_str *s, bool bytes)
{
    if (bytes)
        sb_add(b, "b", 1);
    char q = memchr(s->data, '\'', s->len) && !memchr(s->data, '"', s->len) ? '"' : '\'';
    sb_add(b, &q, 1);
    for (size_t i = 0; i < s->len && !b->cut; i++) {
        unsigned char c = (unsigned char)s->data[i];
        char esc[8];
        if (c == (unsigned char)q || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; sb_add(b, esc, 2); }
        else if (c == '\n') sb_add(b, "\\n", 2);
        else if (c == '\t') sb_add(b, "\\t", 2);
        else if (c == '\r') sb_add(b, "\\r", 2);
        else if (c < 32 || c == 127 || (bytes && c >= 128)) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            sb_str(b, esc);
        } else
            sb_add(b, (const char *)&c, 1);
    }
    sb_add(b, &q, 1);
}

static void write_value(sbuf *b, value v, bool repr, int depth)
{
    char buf[64];
    if (depth > 100) {
        sb_str(b, "...");
        return;
    }
    switch (v.tag) {
    case T_UNDEF: sb_str(b, "<undefined>"); break;
    case T_NONE: sb_str(b, "None"); break;
    case T_BOOL: sb_str(b, v.u.i ? "True" : "False"); break;
    case T_INT: snprintf(buf, sizeof buf, "%" PRId64, v.u.i); sb_str(b, buf); break;
    case T_FLOAT: format_float(buf, sizeof buf, v.u.f); sb_str(b, buf); break;
    case T_STR:
        if (repr) repr_quoted(b, AS_STR(v), false);
        else sb_add(b, AS_STR(v)->data, AS_STR(v)->len);
        break;
    case T_BYTES: repr_quoted(b, AS_STR(v), true); break;
    case T_LIST:
    case T_TUPLE: {
        bool tup = v.tag == T_TUPLE;
        size_t n = tup ? AS_TUPLE(v)->len : AS_LIST(v)->len;
        value *items = tup ? AS_TUPLE(v)->items : AS_LIST(v)->items;
        sb_str(b, tup ? "(" : "[");
        for (size_t i = 0; i < n && !b->cut; i++) {
            if (i)
                sb_str(b, ", ");
            write_value(b, items[i], true, depth + 1);
        }
        if (tup && n == 1)
            sb_str(b, ",");
        sb_str(b, tup ? ")" : "]");
        break;
    }
    case T_DICT: {
        vm_dict *d = AS_DICT(v);
        sb_str(b, "{");
        bool first = true;
        for (size_t i = 0; i < d->used && !b->cut; i++) {
            if (d->entries[i].key.tag == T_UNDEF)
                continue;
            if (!first)
                sb_str(b, ", ");
            first = false;
            write_value(b, d->entries[i].key, true, depth + 1);
            sb_str(b, ": ");
            write_value(b, d->entries[i].val, true, depth + 1);
        }
        sb_str(b, "}");
        break;
    }
    case T_FUNC: sb_str(b, "<function "); sb_str(b, AS_FUNC(v)->code->name->data); sb_str(b, ">"); break;
    case T_NATIVE: sb_str(b, "<built-in function "); sb_str(b, AS_NATIVE(v)->name); sb_str(b, ">"); break;
    case T_CODE: sb_str(b, "<code "); sb_str(b, AS_CODE(v)->name->data); sb_str(b, ">"); break;
    case T_CLASS: sb_str(b, "<class '"); sb_str(b, AS_CLASS(v)->name->data); sb_str(b, "'>"); break;
    case T_EXC: {
        vm_exc *e = AS_EXC(v);
        if (repr) {
            sb_str(b, e->cls->name->data);
            sb_str(b, "(");
            if (e->arg.tag != T_NONE)
                write_value(b, e->arg, true, depth + 1);
            sb_str(b, ")");
        } else if (e->arg.tag != T_NONE)
            write_value(b, e->arg, false, depth + 1);
        break;
    }
    default:
        snprintf(buf, sizeof buf, "<%s object at %p>", vm_type_name(v), (void *)v.u.o);
        sb_str(b, buf);
        break;
    }
}

static value finish(vm_thread *t, sbuf *b)
{
    value s = vm_str_new(t, b->p ? b->p : "", b->len);
    vm_free(b->p);
    return s;
}

/* str(i), written backwards into a small buffer: no snprintf, no growing buffer to free. */
static value int_to_str(vm_thread *t, int64_t i)
{
    char buf[24], *p = buf + sizeof buf;
    uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (i < 0)
        *--p = '-';
    return vm_str_new(t, p, (size_t)(buf + sizeof buf - p));
}

value vm_to_str(vm_thread *t, value v)
{
    if (v.tag == T_STR)
        return v;
    if (v.tag == T_INT)
        return int_to_str(t, v.u.i);
    sbuf b = {0};
    write_value(&b, v, false, 0);
    return finish(t, &b);
}

value vm_repr(vm_thread *t, value v)
{
    sbuf b = {0};
    write_value(&b, v, true, 0);
    return finish(t, &b);
}

value vm_repr_prefix(vm_thread *t, value v, size_t max, bool *cut)
{
    sbuf b = {.limit = max};
    write_value(&b, v, true, 0);
    *cut = b.cut;
    return finish(t, &b);
}
