/* SPDX-License-Identifier: MIT */
/* Slow paths of arithmetic, comparison, indexing, iteration and calls (see ops.h). */
#define _GNU_SOURCE 1  /* memmem */
#include <math.h>
#include <string.h>

#include "vm/core/ops.h"

static bool is_num(value v) { return v.tag == T_INT || v.tag == T_BOOL || v.tag == T_FLOAT; }
static bool is_intlike(value v) { return v.tag == T_INT || v.tag == T_BOOL; }
static double fval(value v) { return v.tag == T_FLOAT ? v.u.f : (double)v.u.i; }

static const char *op_symbol(int op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "** or pow()";
    case OP_BIT_AND: return "&";
    case OP_BIT_OR: return "|";
    case OP_BIT_XOR: return "^";
    case OP_SHL: return "<<";
    case OP_SHR: return ">>";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    default: return "?";
    }
}

static int unsupported(vm_thread *t, int op, value a, value b)
{
    return vm_raise(t, EXC(t)->type_error, "unsupported operand type(s) for %s: '%s' and '%s'",
                    op_symbol(op), vm_type_name(a), vm_type_name(b));
}

static int overflow(vm_thread *t) { return vm_raise(t, EXC(t)->overflow_error, "integer overflow"); }

static int int_binop(vm_thread *t, int op, int64_t a, int64_t b, value *out)
{
    int64_t r;
    switch (op) {
    case OP_ADD: if (__builtin_add_overflow(a, b, &r)) return overflow(t); break;
    case OP_SUB: if (__builtin_sub_overflow(a, b, &r)) return overflow(t); break;
    case OP_MUL: if (__builtin_mul_overflow(a, b, &r)) return overflow(t); break;
    case OP_DIV:
        if (b == 0)
            return vm_raise(t, EXC(t)->zero_division_error, "division by zero");
        *out = V_FLOAT((double)a / (double)b);
        return 0;
    case OP_FLOORDIV:
    case OP_MOD: {
        if (b == 0)
            return vm_raise(t, EXC(t)->zero_division_error,
                            op == OP_MOD ? "integer modulo by zero" : "integer division by zero");
        if (a == INT64_MIN && b == -1) {
            if (op == OP_MOD) { r = 0; break; }
            return overflow(t);
        }
        int64_t q = a / b, m = a % b;
        if (m != 0 && ((m < 0) != (b < 0))) {  /* floor toward -inf, as Python */
            q--;
            m += b;
        }
        r = op == OP_MOD ? m : q;
        break;
    }
    case OP_POW: {
        if (b < 0) {
            if (a == 0)
                return vm_raise(t, EXC(t)->zero_division_error,
                                "0.0 cannot be raised to a negative power");
            *out = V_FLOAT(pow((double)a, (double)b));
            return 0;
        }
        int64_t base = a, acc = 1;
        for (int64_t e = b; e; e >>= 1) {
            if ((e & 1) && __builtin_mul_overflow(acc, base, &acc))
                return overflow(t);
            if (e > 1 && __builtin_mul_overflow(base, base, &base))
                return overflow(t);
        }
        r = acc;
        break;
    }
    case OP_BIT_AND: r = a & b; break;
    case OP_BIT_OR: r = a | b; break;
    case OP_BIT_XOR: r = a ^ b; break;
    case OP_SHL:
        if (b < 0)
            return vm_raise(t, EXC(t)->value_error, "negative shift count");
        if (a == 0) { r = 0; break; }
        if (b >= 64)
            return overflow(t);
        r = (int64_t)((uint64_t)a << b);
        if ((r >> b) != a)
            return overflow(t);
        break;
    case OP_SHR:
        if (b < 0)
            return vm_raise(t, EXC(t)->value_error, "negative shift count");
        r = b >= 63 ? (a < 0 ? -1 : 0) : a >> b;
        break;
    default:
        return vm_raise(t, EXC(t)->type_error, "bad integer operation");
    }
    *out = V_INT(r);
    return 0;
}

static int float_binop(vm_thread *t, int op, double a, double b, value *out)
{
    double r;
    switch (op) {
    case OP_ADD: r = a + b; break;
    case OP_SUB: r = a - b; break;
    case OP_MUL: r = a * b; break;
    case OP_DIV:
        if (b == 0.0)
            return vm_raise(t, EXC(t)->zero_division_error, "float division by zero");
        r = a / b;
        break;
    case OP_FLOORDIV:
    case OP_MOD:
        if (b == 0.0)
            return vm_raise(t, EXC(t)->zero_division_error,
                            op == OP_MOD ? "float modulo" : "float floor division by zero");
        {   /* as CPython's float_divmod: exact floor from fmod, not floor(a / b) */
            double mod = fmod(a, b), div = (a - mod) / b;
            if (mod != 0.0) {
                if ((b < 0) != (mod < 0)) {
                    mod += b;
                    div -= 1.0;
                }
            } else
                mod = copysign(0.0, b);
            double fdiv;
            if (div != 0.0) {
                fdiv = floor(div);
                if (div - fdiv > 0.5)
                    fdiv += 1.0;
            } else
                fdiv = copysign(0.0, a / b);
            r = op == OP_FLOORDIV ? fdiv : mod;
        }
        break;
    case OP_POW:
        if (a == 0.0 && b < 0)
            return vm_raise(t, EXC(t)->zero_division_error,
                            "0.0 cannot be raised to a negative power");
        if (a < 0 && b != floor(b) && isfinite(b))
            return vm_raise(t, EXC(t)->value_error,
                            "negative number cannot be raised to a fractional power");
        r = pow(a, b);
        break;
    default: return -2;
    }
    *out = V_FLOAT(r);
    return 0;
}

/* *out = a + b for two strings or bytes (a, b: their data, na, nb bytes) or two lists or
 * tuples (a, b: their items, na, nb values); -1 with MemoryError if too large. */
static int concat(vm_thread *t, vm_tag tag, const void *a, size_t na, const void *b, size_t nb,
                  value *out)
{
    int bytes = tag == T_STR || tag == T_BYTES;
    if (vm_heap_reserve(t, (na + nb) * (bytes ? 1 : sizeof(value))))
        return -1;
    if (bytes) {
        vm_str *o = (vm_str *)vm_alloc(t, tag, sizeof(vm_str) + na + nb + 1);
        memcpy(o->data, a, na);
        memcpy(o->data + na, b, nb);
        o->len = na + nb;
        o->data[na + nb] = 0;
        *out = V_OBJ(tag, o);
        return 0;
    }
    value *items;
    if (tag == T_TUPLE) {
        vm_tuple *o = (vm_tuple *)vm_alloc(t, T_TUPLE, sizeof(vm_tuple) + (na + nb) * sizeof(value));
        o->len = na + nb;
        items = o->items;
        *out = V_OBJ(T_TUPLE, o);
    } else {
        *out = vm_list_new(t, na + nb);
        AS_LIST(*out)->len = na + nb;
        items = AS_LIST(*out)->items;
    }
    vm_values_copy(items, a, na);
    vm_values_copy(items + na, b, nb);
    return 0;
}

static int repeat(vm_thread *t, value seq, int64_t n, value *out)
{
    if (n < 0)
        n = 0;
    size_t len = seq.tag == T_LIST ? AS_LIST(seq)->len
               : seq.tag == T_TUPLE ? AS_TUPLE(seq)->len : AS_STR(seq)->len;
    size_t elem = seq.tag == T_STR || seq.tag == T_BYTES ? 1 : sizeof(value);
    if (len && (uint64_t)n > ((size_t)1 << 40) / (len * elem))
        return vm_raise(t, EXC(t)->memory_error, "repeated sequence is too long");
    if (vm_heap_reserve(t, len * (size_t)n * elem))
        return -1;
    if (seq.tag == T_STR || seq.tag == T_BYTES) {
        vm_str *o = (vm_str *)vm_alloc(t, (vm_tag)seq.tag, sizeof(vm_str) + len * (size_t)n + 1);
        for (int64_t i = 0; i < n; i++)
            memcpy(o->data + (size_t)i * len, AS_STR(seq)->data, len);
        o->len = len * (size_t)n;
        o->data[o->len] = 0;
        *out = V_OBJ(seq.tag, o);
        return 0;
    }
    const value *items = seq.tag == T_LIST ? AS_LIST(seq)->items : AS_TUPLE(seq)->items;
    value l = vm_list_new(t, len * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        vm_values_copy(AS_LIST(l)->items + (size_t)i * len, items, len);    /* [] * 3 */
    AS_LIST(l)->len = len * (size_t)n;
    if (seq.tag == T_TUPLE)
        l = vm_tuple_new(t, AS_LIST(l)->len, AS_LIST(l)->items);
    *out = l;
    return 0;
}

static int contains(vm_thread *t, value x, value c, value *out)
{
    switch (c.tag) {
    case T_LIST:
    case T_TUPLE: {
        size_t n = c.tag == T_LIST ? AS_LIST(c)->len : AS_TUPLE(c)->len;
        const value *items = c.tag == T_LIST ? AS_LIST(c)->items : AS_TUPLE(c)->items;
        for (size_t i = 0; i < n; i++)
            if (vm_equal(items[i], x)) {
                *out = V_BOOL(1);
                return 0;
            }
        *out = V_BOOL(0);
        return 0;
    }
    case T_DICT: {
        value v;
        int r = vm_dict_get(t, AS_DICT(c), x, &v);
        if (r < 0)
            return -1;
        *out = V_BOOL(r);
        return 0;
    }
    case T_STR:
    case T_BYTES:
        if (x.tag != c.tag)
            return vm_raise(t, EXC(t)->type_error, "'in <%s>' requires %s as left operand, not %s",
                            vm_type_name(c), vm_type_name(c), vm_type_name(x));
        *out = V_BOOL(AS_STR(x)->len == 0 ||
                      memmem(AS_STR(c)->data, AS_STR(c)->len, AS_STR(x)->data, AS_STR(x)->len));
        return 0;
    default:
        return vm_raise(t, EXC(t)->type_error, "argument of type '%s' is not iterable",
                        vm_type_name(c));
    }
}

int vm_binop(vm_thread *t, int op, value a, value b, value *out)
{
    if (op == OP_CONTAINS)
        return contains(t, a, b, out);
    if (is_intlike(a) && is_intlike(b)) {
        if (a.tag == T_BOOL && b.tag == T_BOOL && (op == OP_BIT_AND || op == OP_BIT_OR || op == OP_BIT_XOR)) {
            *out = V_BOOL(op == OP_BIT_AND ? a.u.i & b.u.i : op == OP_BIT_OR ? a.u.i | b.u.i : a.u.i ^ b.u.i);
            return 0;
        }
        return int_binop(t, op, a.u.i, b.u.i, out);
    }
    if (is_num(a) && is_num(b)) {
        int r = float_binop(t, op, fval(a), fval(b), out);
        return r == -2 ? unsupported(t, op, a, b) : r;
    }
    if (op == OP_ADD && a.tag == b.tag) {
        switch (a.tag) {
        case T_STR:
        case T_BYTES:
            return concat(t, (vm_tag)a.tag, AS_STR(a)->data, AS_STR(a)->len, AS_STR(b)->data,
                          AS_STR(b)->len, out);
        case T_LIST:
            return concat(t, T_LIST, AS_LIST(a)->items, AS_LIST(a)->len, AS_LIST(b)->items,
                          AS_LIST(b)->len, out);
        case T_TUPLE:
            return concat(t, T_TUPLE, AS_TUPLE(a)->items, AS_TUPLE(a)->len, AS_TUPLE(b)->items,
                          AS_TUPLE(b)->len, out);
        }
    }
    if (op == OP_MUL) {
        bool seq_a = a.tag == T_STR || a.tag == T_BYTES || a.tag == T_LIST || a.tag == T_TUPLE;
        bool seq_b = b.tag == T_STR || b.tag == T_BYTES || b.tag == T_LIST || b.tag == T_TUPLE;
        if (seq_a && is_intlike(b))
            return repeat(t, a, b.u.i, out);
        if (seq_b && is_intlike(a))
            return repeat(t, b, a.u.i, out);
    }
    if (op == OP_MOD && a.tag == T_STR)
        return vm_raise(t, EXC(t)->type_error, "str %% formatting is not supported; use format()");
    return unsupported(t, op, a, b);
}

static int order(vm_thread *t, value a, value b, int *cmp, const char *sym, int depth);

static int seq_order(vm_thread *t, const value *x, size_t n, const value *y, size_t m, int *cmp,
                     const char *sym, int depth)
{
    /* Bounded as CPython's recursion check: a list that contains itself must not overflow
     * the C stack (tests/programs/core/cyclic_compare.gasm). */
    if (depth > 200)
        return vm_raise(t, EXC(t)->recursion_error, "maximum recursion depth exceeded in comparison");
    for (size_t i = 0; i < n && i < m; i++) {
        if (vm_equal(x[i], y[i]))
            continue;
        return order(t, x[i], y[i], cmp, sym, depth + 1);
    }
    *cmp = n < m ? -1 : n > m;
    return 0;
}

int vm_order(vm_thread *t, value a, value b, int *cmp) { return order(t, a, b, cmp, "<", 0); }

/* Three-way comparison; the TypeError for unorderable items names operator `sym`. */
static int order(vm_thread *t, value a, value b, int *cmp, const char *sym, int depth)
{
    if (is_num(a) && is_num(b)) {
        *cmp = vm_num_cmp(a, b);    /* 2: unordered (nan) */
        return 0;
    }
    if (a.tag == b.tag && (a.tag == T_STR || a.tag == T_BYTES)) {
        vm_str *x = AS_STR(a), *y = AS_STR(b);
        int c = memcmp(x->data, y->data, x->len < y->len ? x->len : y->len);
        *cmp = c ? (c < 0 ? -1 : 1) : (x->len < y->len ? -1 : x->len > y->len);
        return 0;
    }
    if (a.tag == b.tag && a.tag == T_LIST)
        return seq_order(t, AS_LIST(a)->items, AS_LIST(a)->len, AS_LIST(b)->items, AS_LIST(b)->len,
                         cmp, sym, depth);
    if (a.tag == b.tag && a.tag == T_TUPLE)
        return seq_order(t, AS_TUPLE(a)->items, AS_TUPLE(a)->len, AS_TUPLE(b)->items,
                         AS_TUPLE(b)->len, cmp, sym, depth);
    return vm_raise(t, EXC(t)->type_error, "'%s' not supported between instances of '%s' and '%s'",
                    sym, vm_type_name(a), vm_type_name(b));
}

int vm_compare(vm_thread *t, int op, value a, value b, value *out)
{
    int c;
    if (order(t, a, b, &c, op_symbol(op), 0))
        return -1;
    bool r;
    switch (op) {
    case OP_LT: r = c == -1; break;
    case OP_LE: r = c == -1 || c == 0; break;
    case OP_GT: r = c == 1; break;
    default: r = c == 1 || c == 0; break;
    }
    *out = V_BOOL(r);
    return 0;
}

/* Normalises index k of a sequence of length n; -1 with IndexError when out of range. */
static int seq_index(vm_thread *t, value k, size_t n, const char *what, size_t *out)
{
    if (!is_intlike(k))
        return vm_raise(t, EXC(t)->type_error, "%s indices must be integers, not %s", what,
                        vm_type_name(k));
    int64_t i = k.u.i;
    if (i < 0)
        i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n)
        return vm_raise(t, EXC(t)->index_error, "%s index out of range", what);
    *out = (size_t)i;
    return 0;
}

int vm_get_item(vm_thread *t, value c, value k, value *out)
{
    size_t i;
    switch (c.tag) {
    case T_LIST:
        if (seq_index(t, k, AS_LIST(c)->len, "list", &i))
            return -1;
        *out = AS_LIST(c)->items[i];
        return 0;
    case T_TUPLE:
        if (seq_index(t, k, AS_TUPLE(c)->len, "tuple", &i))
            return -1;
        *out = AS_TUPLE(c)->items[i];
        return 0;
    case T_STR:
        if (seq_index(t, k, AS_STR(c)->len, "string", &i))
            return -1;
        *out = vm_str_new(t, AS_STR(c)->data + i, 1);
        return 0;
    case T_BYTES:
        if (seq_index(t, k, AS_STR(c)->len, "bytes", &i))
            return -1;
        *out = V_INT((unsigned char)AS_STR(c)->data[i]);
        return 0;
    case T_DICT: {
        int r = vm_dict_get(t, AS_DICT(c), k, out);
        if (r < 0)
            return -1;
        if (r == 0)
            return vm_raise_value(t, vm_exc_new(t, EXC(t)->key_error, vm_repr(t, k)));
        return 0;
    }
    default:
        return vm_raise(t, EXC(t)->type_error, "'%s' object is not subscriptable", vm_type_name(c));
    }
}

int vm_set_item(vm_thread *t, value c, value k, value v)
{
    size_t i;
    switch (c.tag) {
    case T_LIST:
        if (seq_index(t, k, AS_LIST(c)->len, "list assignment", &i))
            return -1;
        AS_LIST(c)->items[i] = v;
        return 0;
    case T_DICT:
        return vm_dict_set(t, AS_DICT(c), k, v);
    default:
        return vm_raise(t, EXC(t)->type_error, "'%s' object does not support item assignment",
                        vm_type_name(c));
    }
}

value vm_range_new(vm_thread *t, int64_t start, int64_t stop, int64_t step)
{
    vm_iter *it = (vm_iter *)vm_alloc(t, T_ITER, sizeof(vm_iter));
    it->seq = V_NONE;
    it->pos = start;
    it->stop = stop;
    it->step = step;
    return V_OBJ(T_ITER, it);
}

int vm_get_iter(vm_thread *t, value x, value *out)
{
    switch (x.tag) {
    case T_ITER:
        *out = x;
        return 0;
    case T_LIST:
    case T_TUPLE:
    case T_STR:
    case T_BYTES:
    case T_DICT: {
        vm_iter *it = (vm_iter *)vm_alloc(t, T_ITER, sizeof(vm_iter));
        it->seq = x;
        it->step = 1;
        *out = V_OBJ(T_ITER, it);
        return 0;
    }
    default:
        return vm_raise(t, EXC(t)->type_error, "'%s' object is not iterable", vm_type_name(x));
    }
}

int vm_iter_next(vm_thread *t, vm_iter *it, value *out)
{
    value s = it->seq;
    switch (s.tag) {
    case T_NONE:
        if (it->step > 0 ? it->pos >= it->stop : it->pos <= it->stop)
            return 0;
        *out = V_INT(it->pos);
        if (__builtin_add_overflow(it->pos, it->step, &it->pos))
            it->pos = it->stop;
        return 1;
    case T_LIST:
        if ((size_t)it->pos >= AS_LIST(s)->len)
            return 0;
        *out = AS_LIST(s)->items[it->pos++];
        return 1;
    case T_TUPLE:
        if ((size_t)it->pos >= AS_TUPLE(s)->len)
            return 0;
        *out = AS_TUPLE(s)->items[it->pos++];
        return 1;
    case T_STR:
    case T_BYTES:
        if ((size_t)it->pos >= AS_STR(s)->len)
            return 0;
        if (s.tag == T_STR)
            *out = vm_str_new(t, AS_STR(s)->data + it->pos, 1);
        else
            *out = V_INT((unsigned char)AS_STR(s)->data[it->pos]);
        it->pos++;
        return 1;
    case T_DICT: {
        vm_dict *d = AS_DICT(s);
        while ((size_t)it->pos < d->used && d->entries[it->pos].key.tag == T_UNDEF)
            it->pos++;
        if ((size_t)it->pos >= d->used)
            return 0;
        *out = d->entries[it->pos++].key;
        return 1;
    }
    default:
        return 0;
    }
}

vm_call_fn vm_call_hooks[T__COUNT];

int vm_call_other(vm_thread *t, value f, int argc, const value *argv, value *out)
{
    if (f.tag == T_CLASS) {
        if (argc > 1)
            return vm_raise(t, EXC(t)->type_error, "%s() takes at most 1 argument (%d given)",
                            AS_CLASS(f)->name->data, argc);
        *out = vm_exc_new(t, AS_CLASS(f), argc ? argv[0] : V_NONE);
        return 0;
    }
    if (f.tag == T_NATIVE) {
        vm_native *nf = AS_NATIVE(f);
        if (nf->arity >= 0 && nf->arity != argc)
            return vm_raise(t, EXC(t)->type_error, "%s() takes exactly %d argument%s (%d given)",
                            nf->name, nf->arity, nf->arity == 1 ? "" : "s", argc);
        return nf->fn(t, argc, (value *)argv, out);
    }
    if (f.tag < T__COUNT && vm_call_hooks[f.tag])
        return vm_call_hooks[f.tag](t, f, argc, argv, out);
    return vm_raise(t, EXC(t)->type_error, "'%s' object is not callable", vm_type_name(f));
}

int vm_exc_matches(vm_thread *t, value e, value cls)
{
    if (cls.tag == T_TUPLE) {   /* one level, as `except (A, B):` */
        for (size_t i = 0; i < AS_TUPLE(cls)->len; i++) {
            value c = AS_TUPLE(cls)->items[i];
            if (c.tag != T_CLASS)
                return vm_exc_matches(t, e, c);
            if (e.tag == T_EXC && vm_class_is(AS_EXC(e)->cls, AS_CLASS(c)))
                return 1;
        }
        return 0;
    }
    if (cls.tag != T_CLASS)
        return vm_raise(t, EXC(t)->type_error,
                        "catching classes that do not inherit from BaseException is not allowed");
    return e.tag == T_EXC && vm_class_is(AS_EXC(e)->cls, AS_CLASS(cls));
}
