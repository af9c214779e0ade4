/* SPDX-License-Identifier: MIT */
/* Unit tests of values and their operations (vm/core/object.c, vm/core/dict.c, vm/core/ops.c, and the eval
 * loop's fast paths through small module bodies): equality and hashing, truthiness, str()
 * and repr() formats, dicts and lists under load, and the arithmetic and comparison rules
 * with their exceptions, which follow Python's. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/api/run.h"
#include "vm/api/gilvm.h"
#include "vm/toolchain/module.h"
#include "vm/core/ops.h"

static vm_thread *T;

static void setup(void)
{
    ck_assert_int_eq(gilvm_runtime_init(NULL), 0);
    T = vm_main_thread();
}

static void teardown(void) { gilvm_runtime_finalize(0); }

static value S(const char *s) { return vm_str_c(T, s); }
static value B(const char *s, size_t n) { return vm_bytes_new(T, s, n); }
static value TUP(size_t n, const value *v) { return vm_tuple_new(T, n, v); }
#define TUPLE(...) TUP(sizeof((value[]){__VA_ARGS__}) / sizeof(value), (value[]){__VA_ARGS__})

static uint64_t H(value v)
{
    uint64_t h = 0;
    ck_assert_msg(vm_hash(T, v, &h) == 0, "unhashable %s", vm_type_name(v));
    return h;
}

static const char *cstr(value s)
{
    ck_assert_uint_eq(s.tag, T_STR);
    return AS_STR(s)->data;
}

/* The pending exception is of class `cls` with a message containing `msg`; clears it. */
static void expect_exc(vm_class *cls, const char *msg, int line)
{
    ck_assert_msg(T->exc.tag == T_EXC, "line %d: no exception", line);
    vm_exc *e = AS_EXC(T->exc);
    value m = e->arg.tag == T_NONE ? S("") : vm_to_str(T, e->arg);
    ck_assert_msg(e->cls == cls, "line %d: %s: %s, want %s", line, e->cls->name->data, cstr(m),
                  cls->name->data);
    ck_assert_msg(strstr(cstr(m), msg), "line %d: message \"%s\" lacks \"%s\"", line, cstr(m),
                  msg);
    T->exc = V_UNDEF;
}
#define EXPECT_EXC(cls, msg) expect_exc(EXC(T)->cls, (msg), __LINE__)

static void repr_is(value v, const char *want, int line)
{
    value r = vm_repr(T, v);
    ck_assert_msg(strcmp(cstr(r), want) == 0, "line %d: repr %s, want %s", line, cstr(r), want);
    ck_assert_uint_eq(AS_STR(r)->len, strlen(want));
}
static void str_is(value v, const char *want, int line)
{
    value r = vm_to_str(T, v);
    ck_assert_msg(strcmp(cstr(r), want) == 0, "line %d: str %s, want %s", line, cstr(r), want);
}
#define REPR_IS(v, want) repr_is((v), (want), __LINE__)
#define STR_IS(v, want) str_is((v), (want), __LINE__)

/* a OP b through vm_binop: 0 with *out, or -1 with the exception pending. */
static int binop(int op, value a, value b, value *out) { return vm_binop(T, op, a, b, out); }

static int64_t int_of(int op, value a, value b, int line)
{
    value r;
    ck_assert_msg(binop(op, a, b, &r) == 0, "line %d: %s raised", line, op_name(op));
    ck_assert_msg(r.tag == T_INT, "line %d: %s gave a %s", line, op_name(op), vm_type_name(r));
    return r.u.i;
}
static double float_of(int op, value a, value b, int line)
{
    value r;
    ck_assert_msg(binop(op, a, b, &r) == 0, "line %d: %s raised", line, op_name(op));
    ck_assert_msg(r.tag == T_FLOAT, "line %d: %s gave a %s", line, op_name(op), vm_type_name(r));
    return r.u.f;
}
#define INT_OF(op, a, b) int_of(OP_##op, (a), (b), __LINE__)
#define FLOAT_OF(op, a, b) float_of(OP_##op, (a), (b), __LINE__)
#define BINOP_RAISES(op, a, b, cls, msg) \
    do { \
        value r_; \
        ck_assert_msg(binop(OP_##op, (a), (b), &r_) == -1, "line %d: no exception", __LINE__); \
        EXPECT_EXC(cls, msg); \
    } while (0)

/* Runs a module body (its source) that leaves its result in global `r`; 0 with *out, or -1
 * with the exception pending on T. */
static int run(const char *src, value *out)
{
    vm_module m;
    char err[512] = "";
    ck_assert_msg(asm_assemble(T, "v.gasm", src, strlen(src), 0, &m, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(vm_module_verify(&m, "v.gasm", err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(vm_module_link(T, &m), 0);
    vm_code *body = m.codes[0];
    vm_module_free(&m);
    if (vm_run_code(T, body, NULL, NULL, 0))
        return -1;
    *out = vm_global_get(VM_INTERP(T), "r");
    return 0;
}

static int64_t run_int(const char *src, int line)
{
    value r;
    ck_assert_msg(run(src, &r) == 0, "line %d: raised", line);
    ck_assert_msg(r.tag == T_INT || r.tag == T_BOOL, "line %d: a %s", line, vm_type_name(r));
    return r.u.i;
}
#define RUN_INT(src) run_int((src), __LINE__)
#define RUN_RAISES(src, cls, msg) \
    do { \
        value r_; \
        ck_assert_msg(run((src), &r_) == -1, "line %d: no exception", __LINE__); \
        EXPECT_EXC(cls, msg); \
    } while (0)

/* ---- equality and hashing ---- */

START_TEST(numbers_equal_and_hash_alike)
{
    value one[] = {V_INT(1), V_FLOAT(1.0), V_BOOL(1)};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            ck_assert_msg(vm_equal(one[i], one[j]), "%d %d", i, j);
            ck_assert_uint_eq(H(one[i]), H(one[j]));
        }
    value zero[] = {V_INT(0), V_FLOAT(0.0), V_FLOAT(-0.0), V_BOOL(0)};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            ck_assert(vm_equal(zero[i], zero[j]));
            ck_assert_uint_eq(H(zero[i]), H(zero[j]));
        }
    int64_t ints[] = {-1, 2, -1000000, 1LL << 40, -(1LL << 52), 1LL << 62};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        value a = V_INT(ints[i]), b = V_FLOAT((double)ints[i]);
        ck_assert(vm_equal(a, b));
        ck_assert_uint_eq(H(a), H(b));
    }
    ck_assert(!vm_equal(V_INT(1), V_INT(2)));
    ck_assert(!vm_equal(V_INT(1), V_FLOAT(1.5)));
    ck_assert(!vm_equal(V_BOOL(1), V_INT(2)));
    ck_assert(!vm_equal(V_FLOAT(NAN), V_FLOAT(NAN)));
    ck_assert(vm_equal(V_FLOAT(INFINITY), V_FLOAT(INFINITY)));
    H(V_FLOAT(NAN));
    H(V_FLOAT(INFINITY));
    H(V_FLOAT(1e300));
    ck_assert(vm_equal(V_NONE, V_NONE));
    ck_assert(!vm_equal(V_NONE, V_INT(0)));
    ck_assert(!vm_equal(V_NONE, V_BOOL(0)));
    ck_assert(!vm_equal(V_INT(0), S("")));
    ck_assert(!vm_equal(V_INT(1), S("1")));
}
END_TEST

/* Python compares int with float exactly; equal values must hash alike. */
START_TEST(int_float_compare_exactly)
{
    int64_t big = (1LL << 53) + 1;              /* not a double: (double)big == 2**53 */
    ck_assert_msg(!vm_equal(V_INT(big), V_FLOAT(9007199254740992.0)),
                  "2**53+1 == 2.0**53 (Python: False)");
    ck_assert(vm_equal(V_INT(1LL << 53), V_FLOAT(9007199254740992.0)));
    int c = 0;
    ck_assert_int_eq(vm_order(T, V_INT(big), V_FLOAT(9007199254740992.0), &c), 0);
    ck_assert_msg(c == 1, "2**53+1 vs 2.0**53 ordered %d (Python: greater)", c);
    ck_assert(!vm_equal(V_INT(INT64_MAX), V_FLOAT(9223372036854775808.0)));
    /* 2**63 - 1024 is exactly a double, above the float hash's integer cut-off. */
    int64_t edge = INT64_MAX - 1023;
    ck_assert(vm_equal(V_INT(edge), V_FLOAT((double)edge)));
    ck_assert_msg(H(V_INT(edge)) == H(V_FLOAT((double)edge)),
                  "equal int and float hash differently: %lld", (long long)edge);
    ck_assert(vm_equal(V_INT(INT64_MIN), V_FLOAT(-9223372036854775808.0)));
    ck_assert_uint_eq(H(V_INT(INT64_MIN)), H(V_FLOAT(-9223372036854775808.0)));
}
END_TEST

START_TEST(strings_bytes_tuples_equal_and_hash)
{
    value a = S("hello"), b = S("hello"), c = S("hellp");
    ck_assert_ptr_ne(a.u.o, b.u.o);
    ck_assert(vm_equal(a, b));
    ck_assert_uint_eq(H(a), H(b));
    ck_assert(!vm_equal(a, c));
    ck_assert(!vm_equal(S("hell"), a));
    ck_assert(vm_equal(S(""), S("")));
    ck_assert_uint_eq(H(S("")), H(S("")));
    /* Embedded NULs count. */
    ck_assert(!vm_equal(vm_str_new(T, "a\0b", 3), vm_str_new(T, "a\0c", 3)));
    ck_assert(vm_equal(vm_str_new(T, "a\0b", 3), vm_str_new(T, "a\0b", 3)));
    /* str is not bytes (Python 3: 'ab' != b'ab'). */
    ck_assert(!vm_equal(S("ab"), B("ab", 2)));
    ck_assert(vm_equal(B("ab", 2), B("ab", 2)));
    ck_assert_uint_eq(H(B("\x00\xff", 2)), H(B("\x00\xff", 2)));

    value t1 = TUPLE(V_INT(1), S("a"), TUPLE(V_FLOAT(2.0), V_NONE));
    value t2 = TUPLE(V_FLOAT(1.0), S("a"), TUPLE(V_INT(2), V_NONE));
    value t3 = TUPLE(V_INT(1), S("a"), TUPLE(V_INT(2), V_BOOL(0)));
    ck_assert(vm_equal(t1, t2));
    ck_assert_uint_eq(H(t1), H(t2));
    ck_assert(!vm_equal(t1, t3));
    ck_assert(vm_equal(TUP(0, NULL), TUP(0, NULL)));
    ck_assert_uint_eq(H(TUP(0, NULL)), H(TUP(0, NULL)));
    ck_assert(!vm_equal(TUPLE(V_INT(1)), TUPLE(V_INT(1), V_INT(1))));
    /* Order matters in tuple hashes (not a sum). */
    ck_assert_uint_ne(H(TUPLE(V_INT(1), V_INT(2))), H(TUPLE(V_INT(2), V_INT(1))));
    /* A tuple is not a list with the same items. */
    value l = vm_list_new(T, 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), V_INT(1)), 0);
    ck_assert(!vm_equal(TUPLE(V_INT(1)), l));
    ck_assert(!vm_equal(l, TUPLE(V_INT(1))));
    value l2 = vm_list_new(T, 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l2), V_FLOAT(1.0)), 0);
    ck_assert(vm_equal(l, l2));

    /* Deep nesting: bounded, no crash, equal structures compare equal near the top. */
    value d1 = V_INT(0), d2 = V_INT(0);
    for (int i = 0; i < 5000; i++) {
        d1 = TUPLE(d1);
        d2 = TUPLE(d2);
    }
    H(d1);
    ck_assert_uint_eq(H(d1), H(d2));
    vm_equal(d1, d2);
    ck_assert(vm_equal(d1, d1));

    /* Dicts compare by content. */
    value x = vm_dict_new(T), y = vm_dict_new(T);
    ck_assert_int_eq(vm_dict_set(T, AS_DICT(x), V_INT(1), S("a")), 0);
    ck_assert_int_eq(vm_dict_set(T, AS_DICT(x), S("k"), TUPLE(V_INT(2))), 0);
    ck_assert_int_eq(vm_dict_set(T, AS_DICT(y), S("k"), TUPLE(V_FLOAT(2.0))), 0);
    ck_assert(!vm_equal(x, y));
    ck_assert_int_eq(vm_dict_set(T, AS_DICT(y), V_FLOAT(1.0), S("a")), 0);
    ck_assert(vm_equal(x, y));
    ck_assert_int_eq(vm_dict_set(T, AS_DICT(y), V_BOOL(1), S("b")), 0);   /* same key as 1.0 */
    ck_assert_uint_eq(AS_DICT(y)->len, 2);
    ck_assert(!vm_equal(x, y));
}
END_TEST

START_TEST(unhashable_raise_type_error)
{
    uint64_t h;
    value l = vm_list_new(T, 0), d = vm_dict_new(T);
    ck_assert_int_eq(vm_hash(T, l, &h), -1);
    EXPECT_EXC(type_error, "unhashable type: 'list'");
    ck_assert_int_eq(vm_hash(T, d, &h), -1);
    EXPECT_EXC(type_error, "unhashable type: 'dict'");
    ck_assert_int_eq(vm_hash(T, TUPLE(V_INT(1), l), &h), -1);
    EXPECT_EXC(type_error, "unhashable type: 'list'");
    ck_assert_int_eq(vm_dict_set(T, AS_DICT(d), l, V_INT(1)), -1);
    EXPECT_EXC(type_error, "unhashable");
    value out;
    ck_assert_int_eq(vm_dict_get(T, AS_DICT(d), TUPLE(d), &out), -1);
    EXPECT_EXC(type_error, "unhashable type: 'dict'");
    ck_assert_int_eq(vm_dict_del(T, AS_DICT(d), l), -1);
    EXPECT_EXC(type_error, "unhashable");
    ck_assert_uint_eq(AS_DICT(d)->len, 0);
    /* Hashable objects of other kinds hash by identity. */
    value e = vm_exc_new(T, EXC(T)->value_error, V_NONE);
    ck_assert_uint_eq(H(e), H(e));
    ck_assert(vm_equal(e, e));
    ck_assert(!vm_equal(e, vm_exc_new(T, EXC(T)->value_error, V_NONE)));
    ck_assert(T->exc.tag == T_UNDEF);
}
END_TEST

/* ---- truthiness ---- */

START_TEST(truthiness)
{
    value falsy[] = {V_NONE, V_BOOL(0), V_INT(0), V_FLOAT(0.0), V_FLOAT(-0.0), S(""), B("", 0),
                     vm_list_new(T, 8), TUP(0, NULL), vm_dict_new(T)};
    for (size_t i = 0; i < sizeof falsy / sizeof falsy[0]; i++)
        ck_assert_msg(!vm_truthy(falsy[i]), "%zu (%s) is true", i, vm_type_name(falsy[i]));
    value l = vm_list_new(T, 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), V_NONE), 0);
    value d = vm_dict_new(T);
    vm_dict_set(T, AS_DICT(d), V_NONE, V_NONE);
    value truthy[] = {V_BOOL(1), V_INT(-1), V_INT(INT64_MIN), V_FLOAT(1e-300), V_FLOAT(NAN),
                      V_FLOAT(-INFINITY), S("0"), S(" "), vm_str_new(T, "\0", 1), B("\0", 1), l,
                      TUPLE(V_NONE), d, vm_exc_new(T, EXC(T)->value_error, V_NONE),
                      V_OBJ(T_CLASS, EXC(T)->exception), vm_global_get(VM_INTERP(T), "print")};
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++)
        ck_assert_msg(vm_truthy(truthy[i]), "%zu (%s) is false", i, vm_type_name(truthy[i]));
    /* A dict emptied by deletion is false again. */
    vm_dict_del(T, AS_DICT(d), V_NONE);
    ck_assert(!vm_truthy(d));
}
END_TEST

/* ---- str() and repr() ---- */

START_TEST(repr_scalars)
{
    REPR_IS(V_NONE, "None");
    REPR_IS(V_BOOL(1), "True");
    REPR_IS(V_BOOL(0), "False");
    REPR_IS(V_INT(0), "0");
    REPR_IS(V_INT(-42), "-42");
    REPR_IS(V_INT(INT64_MAX), "9223372036854775807");
    REPR_IS(V_INT(INT64_MIN), "-9223372036854775808");
    STR_IS(V_INT(7), "7");
    STR_IS(V_BOOL(1), "True");
    STR_IS(V_NONE, "None");
}
END_TEST

START_TEST(repr_floats_shortest_round_trip)
{
    REPR_IS(V_FLOAT(0.1), "0.1");
    REPR_IS(V_FLOAT(0.2 + 0.1), "0.30000000000000004");
    REPR_IS(V_FLOAT(1.0), "1.0");
    REPR_IS(V_FLOAT(-1.0), "-1.0");
    REPR_IS(V_FLOAT(0.0), "0.0");
    REPR_IS(V_FLOAT(-0.0), "-0.0");
    REPR_IS(V_FLOAT(2.5), "2.5");
    REPR_IS(V_FLOAT(1.0 / 3), "0.3333333333333333");
    REPR_IS(V_FLOAT(1e100), "1e+100");
    REPR_IS(V_FLOAT(1e16), "1e+16");
    REPR_IS(V_FLOAT(1.5e300), "1.5e+300");
    REPR_IS(V_FLOAT(1e-5), "1e-05");
    REPR_IS(V_FLOAT(0.0001), "0.0001");
    REPR_IS(V_FLOAT(5e-324), "5e-324");
    REPR_IS(V_FLOAT(1.7976931348623157e308), "1.7976931348623157e+308");
    REPR_IS(V_FLOAT(123456789.0), "123456789.0");
    REPR_IS(V_FLOAT(123456789012345678.0), "1.2345678901234568e+17");
    REPR_IS(V_FLOAT(INFINITY), "inf");
    REPR_IS(V_FLOAT(-INFINITY), "-inf");
    REPR_IS(V_FLOAT(NAN), "nan");
    STR_IS(V_FLOAT(0.1), "0.1");
    STR_IS(V_FLOAT(INFINITY), "inf");
    /* Every repr reads back as the same double. */
    double samples[] = {0.1, 1.0 / 3, 2.0 / 3, 1e23, 9007199254740993.0, 4.35, 0.000123,
                        6.02214076e23, -1.25e-7, 3.141592653589793, 1e22, 2.2250738585072014e-308};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        value r = vm_repr(T, V_FLOAT(samples[i]));
        ck_assert_msg(strtod(cstr(r), NULL) == samples[i], "%s does not round-trip", cstr(r));
        ck_assert_msg(strpbrk(cstr(r), ".e"), "%s does not look like a float", cstr(r));
    }
}
END_TEST

/* Python's repr uses positional notation for exponents -4 <= e < 16. */
START_TEST(repr_floats_positional_as_python)
{
    REPR_IS(V_FLOAT(100.0), "100.0");
    REPR_IS(V_FLOAT(10.0), "10.0");
    REPR_IS(V_FLOAT(-200.0), "-200.0");
    REPR_IS(V_FLOAT(1e15), "1000000000000000.0");
    REPR_IS(V_FLOAT(120000.0), "120000.0");
    REPR_IS(V_FLOAT(1.5e10), "15000000000.0");
    STR_IS(V_FLOAT(100.0), "100.0");
}
END_TEST

START_TEST(repr_strings_and_bytes)
{
    REPR_IS(S("abc"), "'abc'");
    REPR_IS(S(""), "''");
    REPR_IS(S("it's"), "\"it's\"");
    REPR_IS(S("say \"hi\""), "'say \"hi\"'");
    REPR_IS(S("a'b\"c"), "'a\\'b\"c'");
    REPR_IS(S("tab\there\nnl\rcr\\bs"), "'tab\\there\\nnl\\rcr\\\\bs'");
    REPR_IS(vm_str_new(T, "\x01\0\x7f", 3), "'\\x01\\x00\\x7f'");
    REPR_IS(S("caf\xc3\xa9"), "'caf\xc3\xa9'");              /* UTF-8 printed as is */
    STR_IS(S("it's \"x\"\n"), "it's \"x\"\n");
    value s = S("same");
    ck_assert_ptr_eq(vm_to_str(T, s).u.o, s.u.o);             /* str(str) is itself */

    REPR_IS(B("", 0), "b''");
    REPR_IS(B("\x00\xff" "ab", 4), "b'\\x00\\xffab'");
    REPR_IS(B("it's", 4), "b\"it's\"");
    REPR_IS(B("\n\t\\", 3), "b'\\n\\t\\\\'");
    STR_IS(B("ab", 2), "b'ab'");                              /* str(bytes) is its repr */
}
END_TEST

START_TEST(repr_containers_and_objects)
{
    value l = vm_list_new(T, 0);
    REPR_IS(l, "[]");
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), V_INT(1)), 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), S("a")), 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), TUPLE(V_INT(2))), 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), V_NONE), 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), V_FLOAT(0.5)), 0);
    REPR_IS(l, "[1, 'a', (2,), None, 0.5]");
    STR_IS(l, "[1, 'a', (2,), None, 0.5]");                   /* items by repr in str too */
    REPR_IS(TUP(0, NULL), "()");
    REPR_IS(TUPLE(V_INT(1), V_INT(2)), "(1, 2)");
    REPR_IS(TUPLE(S("x"), TUPLE(B("y", 1), TUP(0, NULL))), "('x', (b'y', ()))");
    value d = vm_dict_new(T);
    REPR_IS(d, "{}");
    vm_dict_set(T, AS_DICT(d), V_INT(1), S("a"));
    vm_dict_set(T, AS_DICT(d), S("b"), l);
    vm_dict_set(T, AS_DICT(d), TUPLE(V_INT(1), V_INT(2)), V_BOOL(1));
    REPR_IS(d, "{1: 'a', 'b': [1, 'a', (2,), None, 0.5], (1, 2): True}");
    vm_dict_del(T, AS_DICT(d), S("b"));
    REPR_IS(d, "{1: 'a', (1, 2): True}");

    /* A list containing itself: bounded output, no crash. */
    value self = vm_list_new(T, 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(self), self), 0);
    value r = vm_repr(T, self);
    ck_assert_uint_gt(AS_STR(r)->len, 0);
    ck_assert_uint_lt(AS_STR(r)->len, 100000);
    ck_assert_int_eq(cstr(r)[0], '[');

    value e = vm_exc_new(T, EXC(T)->value_error, S("bad 'x'"));
    REPR_IS(e, "ValueError(\"bad 'x'\")");
    STR_IS(e, "bad 'x'");
    value e0 = vm_exc_new(T, EXC(T)->key_error, V_NONE);
    REPR_IS(e0, "KeyError()");
    STR_IS(e0, "");
    value e3 = vm_exc_new(T, EXC(T)->system_exit, V_INT(3));
    REPR_IS(e3, "SystemExit(3)");
    STR_IS(e3, "3");
    STR_IS(vm_exc_format(T, e), "ValueError: bad 'x'");
    STR_IS(vm_exc_format(T, e0), "KeyError");
    REPR_IS(V_OBJ(T_CLASS, EXC(T)->type_error), "<class 'TypeError'>");
    REPR_IS(vm_global_get(VM_INTERP(T), "print"), "<built-in function print>");
    ck_assert_str_eq(vm_type_name(e), "ValueError");
    ck_assert_str_eq(vm_type_name(V_INT(1)), "int");
    ck_assert_str_eq(vm_type_name(V_BOOL(1)), "bool");
    ck_assert_str_eq(vm_type_name(V_NONE), "NoneType");
    ck_assert_str_eq(vm_type_name(d), "dict");
}
END_TEST

/* ---- dicts and lists under load ---- */

/* String keys "k<i>" for even i, ints for odd i. */
static value key(int i)
{
    if (i % 2)
        return V_INT(i);
    char buf[16];
    int n = snprintf(buf, sizeof buf, "k%d", i);
    return vm_str_new(T, buf, (size_t)n);
}

START_TEST(dict_many_keys_with_deletions)
{
    enum { N = 10000 };
    value dv = vm_dict_new(T);
    vm_dict *d = AS_DICT(dv);
    value out;
    ck_assert_int_eq(vm_dict_get(T, d, V_INT(1), &out), 0);     /* empty */
    ck_assert_int_eq(vm_dict_del(T, d, V_INT(1)), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(vm_dict_set(T, d, key(i), V_INT(i * 3)), 0);
    ck_assert_uint_eq(d->len, N);
    ck_assert_uint_le(d->used, d->cap);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(vm_dict_get(T, d, key(i), &out), 1);
        ck_assert_int_eq(out.u.i, i * 3);
    }
    ck_assert_int_eq(vm_dict_get(T, d, V_INT(N + 1), &out), 0);
    ck_assert_int_eq(vm_dict_get(T, d, S("k1"), &out), 0);     /* 1 is an int key */
    ck_assert_int_eq(vm_dict_get(T, d, V_FLOAT(3.0), &out), 1); /* 3.0 finds 3 */
    ck_assert_int_eq(out.u.i, 9);
    /* Overwriting keeps the length and the first insertion's place. */
    ck_assert_int_eq(vm_dict_set(T, d, V_FLOAT(1.0), S("one")), 0);
    ck_assert_uint_eq(d->len, N);
    ck_assert(vm_equal(d->entries[1].key, V_INT(1)));
    ck_assert(vm_equal(d->entries[1].val, S("one")));
    ck_assert_int_eq(vm_dict_set(T, d, V_INT(1), V_INT(3)), 0);

    /* Delete every key divisible by 3. */
    int live = N;
    for (int i = 0; i < N; i += 3) {
        ck_assert_int_eq(vm_dict_del(T, d, key(i)), 1);
        live--;
    }
    ck_assert_int_eq(vm_dict_del(T, d, key(0)), 0);             /* already gone */
    ck_assert_uint_eq(d->len, (size_t)live);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(vm_dict_get(T, d, key(i), &out), i % 3 ? 1 : 0);
    /* Iteration order is insertion order, holes skipped. */
    int prev = -1, seen = 0;
    for (size_t k = 0; k < d->used; k++) {
        if (d->entries[k].key.tag == T_UNDEF)
            continue;
        int i = (int)(d->entries[k].val.u.i / 3);
        ck_assert_int_gt(i, prev);
        ck_assert_int_ne(i % 3, 0);
        prev = i;
        seen++;
    }
    ck_assert_int_eq(seen, live);
    /* Re-insert the deleted ones: they go to the end. */
    for (int i = 0; i < N; i += 3)
        ck_assert_int_eq(vm_dict_set(T, d, key(i), V_INT(-i)), 0);
    ck_assert_uint_eq(d->len, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(vm_dict_get(T, d, key(i), &out), 1);
        ck_assert_int_eq(out.u.i, i % 3 ? i * 3 : -i);
    }
    /* Delete everything, then the dict is usable again. */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(vm_dict_del(T, d, key(i)), 1);
    ck_assert_uint_eq(d->len, 0);
    ck_assert_int_eq(vm_dict_get(T, d, key(5), &out), 0);
    ck_assert_int_eq(vm_dict_set(T, d, key(5), V_INT(5)), 0);
    ck_assert_int_eq(vm_dict_get(T, d, key(5), &out), 1);
    ck_assert_uint_eq(d->len, 1);
}
END_TEST

START_TEST(dict_churn_stays_small)
{
    /* Insert and delete the same few keys many times: deleted slots are reclaimed by
     * resizes, so the tables stay small and lookups keep terminating. */
    value dv = vm_dict_new(T);
    vm_dict *d = AS_DICT(dv);
    for (int round = 0; round < 100000; round++) {
        value k = V_INT(round % 5);
        ck_assert_int_eq(vm_dict_set(T, d, k, V_INT(round)), 0);
        if (round % 2)
            ck_assert_int_eq(vm_dict_del(T, d, k), 1);
    }
    ck_assert_uint_le(d->len, 5);
    ck_assert_uint_le(d->cap, 64);
    value out;
    for (int k = 0; k < 5; k++)
        vm_dict_get(T, d, V_INT(k), &out);
    /* Distinct keys inserted and deleted: length 0, table bounded by the peak. */
    for (int i = 0; i < 50000; i++) {
        ck_assert_int_eq(vm_dict_set(T, d, V_INT(1000 + i), V_NONE), 0);
        ck_assert_int_eq(vm_dict_del(T, d, V_INT(1000 + i)), 1);
    }
    ck_assert_uint_le(d->cap, 64);
}
END_TEST

START_TEST(list_append_growth)
{
    value lv = vm_list_new(T, 0);
    vm_list *l = AS_LIST(lv);
    ck_assert_uint_eq(l->len, 0);
    size_t reallocs = 0, cap = l->cap;
    for (int i = 0; i < 200000; i++) {
        ck_assert_int_eq(vm_list_append(T, l, V_INT(i)), 0);
        if (l->cap != cap) {
            reallocs++;
            ck_assert_uint_ge(l->cap, cap + cap / 8);     /* geometric growth */
            cap = l->cap;
        }
        ck_assert_uint_ge(l->cap, l->len);
    }
    ck_assert_uint_eq(l->len, 200000);
    ck_assert_uint_lt(reallocs, 120);                   /* not one per append */
    for (int i = 0; i < 200000; i++)
        ck_assert_int_eq(l->items[i].u.i, i);
    /* A list made with room uses it first. */
    value m = vm_list_new(T, 10);
    ck_assert_uint_eq(AS_LIST(m)->cap, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(vm_list_append(T, AS_LIST(m), V_NONE), 0);
    ck_assert_uint_eq(AS_LIST(m)->cap, 10);
}
END_TEST

/* ---- arithmetic ---- */

START_TEST(integer_overflow_raises)
{
    value max = V_INT(INT64_MAX), min = V_INT(INT64_MIN);
    BINOP_RAISES(ADD, max, V_INT(1), overflow_error, "integer overflow");
    BINOP_RAISES(SUB, min, V_INT(1), overflow_error, "overflow");
    BINOP_RAISES(MUL, V_INT(1LL << 32), V_INT(1LL << 31), overflow_error, "overflow");
    BINOP_RAISES(MUL, min, V_INT(-1), overflow_error, "overflow");
    BINOP_RAISES(POW, V_INT(2), V_INT(63), overflow_error, "overflow");
    BINOP_RAISES(POW, V_INT(3), V_INT(40), overflow_error, "overflow");
    BINOP_RAISES(POW, V_INT(-3), V_INT(41), overflow_error, "overflow");
    BINOP_RAISES(SHL, V_INT(1), V_INT(63), overflow_error, "overflow");
    BINOP_RAISES(SHL, V_INT(3), V_INT(62), overflow_error, "overflow");
    BINOP_RAISES(SHL, V_INT(-3), V_INT(62), overflow_error, "overflow");
    BINOP_RAISES(SHL, V_INT(1), V_INT(1000), overflow_error, "overflow");
    BINOP_RAISES(FLOORDIV, min, V_INT(-1), overflow_error, "overflow");
    BINOP_RAISES(ADD, V_BOOL(1), max, overflow_error, "overflow");
    /* Just inside the range. */
    ck_assert_int_eq(INT_OF(ADD, V_INT(INT64_MAX - 1), V_INT(1)), INT64_MAX);
    ck_assert_int_eq(INT_OF(SUB, V_INT(INT64_MIN + 1), V_INT(1)), INT64_MIN);
    ck_assert_int_eq(INT_OF(MUL, V_INT(-(1LL << 62)), V_INT(2)), INT64_MIN);
    ck_assert_int_eq(INT_OF(POW, V_INT(2), V_INT(62)), 1LL << 62);
    ck_assert_int_eq(INT_OF(POW, V_INT(-2), V_INT(63)), INT64_MIN);
    ck_assert_int_eq(INT_OF(POW, V_INT(3), V_INT(39)), 4052555153018976267LL);
    ck_assert_int_eq(INT_OF(POW, V_INT(7), V_INT(0)), 1);
    ck_assert_int_eq(INT_OF(POW, V_INT(0), V_INT(0)), 1);
    ck_assert_int_eq(INT_OF(POW, V_INT(-1), V_INT(INT64_MAX)), -1);
    ck_assert_int_eq(INT_OF(POW, V_INT(1), V_INT(INT64_MAX)), 1);
    ck_assert_int_eq(INT_OF(SHL, V_INT(1), V_INT(62)), 1LL << 62);
    ck_assert_int_eq(INT_OF(SHL, V_INT(-1), V_INT(62)), -(1LL << 62));
    ck_assert_int_eq(INT_OF(SHL, V_INT(0), V_INT(1000)), 0);
    ck_assert_int_eq(INT_OF(MOD, min, V_INT(-1)), 0);
    ck_assert(FLOAT_OF(POW, V_INT(2), V_INT(-2)) == 0.25);

    /* The eval loop's own fast paths (ADD SUB MUL inline, NEG, superinstructions). */
    RUN_RAISES("LOAD_CONST 9223372036854775807\nLOAD_INT 1\nADD\nSTORE_GLOBAL r\n",
               overflow_error, "integer overflow");
    RUN_RAISES("LOAD_CONST -9223372036854775808\nLOAD_INT 1\nSUB\nSTORE_GLOBAL r\n",
               overflow_error, "integer overflow");
    RUN_RAISES("LOAD_CONST 4294967296\nDUP\nMUL\nSTORE_GLOBAL r\n", overflow_error,
               "integer overflow");
    RUN_RAISES("LOAD_CONST -9223372036854775808\nNEG\nSTORE_GLOBAL r\n", overflow_error,
               "integer overflow");
    RUN_RAISES("LOAD_INT 2\nLOAD_INT 63\nPOW\nSTORE_GLOBAL r\n", overflow_error, "overflow");
    RUN_RAISES("LOAD_INT 1\nLOAD_INT 63\nSHL\nSTORE_GLOBAL r\n", overflow_error, "overflow");
    ck_assert_int_eq(RUN_INT("LOAD_CONST -9223372036854775807\nNEG\nSTORE_GLOBAL r\n"),
                     INT64_MAX);
    ck_assert_int_eq(RUN_INT("LOAD_CONST 9223372036854775806\nLOAD_INT 1\nADD\nSTORE_GLOBAL r\n"),
                     INT64_MAX);
    /* Superinstructions with an immediate: fast path, and the overflow falls back. */
    static const char fused[] =
        ".func inc(x)\n"
        "    .local y\n"
        "    LOAD_LOCAL x\n    LOAD_INT 1\n    ADD\n    STORE_LOCAL y\n"   /* LOCAL_ADD_INT_STORE */
        "    LOAD_LOCAL y\n    LOAD_INT 1\n    SUB\n"                      /* LOCAL_SUB_INT */
        "    LOAD_INT 1\n    ADD\n"                                        /* INT_ADD */
        "    RETURN\n"
        ".end\n"
        "LOAD_GLOBAL inc\nLOAD_CONST %s\nCALL 1\nSTORE_GLOBAL r\n";
    char src[1024];
    snprintf(src, sizeof src, fused, "41");
    ck_assert_int_eq(RUN_INT(src), 42);
    snprintf(src, sizeof src, fused, "9223372036854775806");
    ck_assert_int_eq(RUN_INT(src), INT64_MAX);
    snprintf(src, sizeof src, fused, "9223372036854775807");
    RUN_RAISES(src, overflow_error, "integer overflow");
    snprintf(src, sizeof src, fused, "1.5");
    value r;
    ck_assert_int_eq(run(src, &r), 0);
    ck_assert(r.tag == T_FLOAT && r.u.f == 2.5);
    snprintf(src, sizeof src, fused, "\"s\"");
    RUN_RAISES(src, type_error, "unsupported operand type(s) for +: 'str' and 'int'");
}
END_TEST

START_TEST(floor_division_and_modulo_signs)
{
    struct { int64_t a, b, q, m; } cases[] = {
        {7, 2, 3, 1}, {-7, 2, -4, 1}, {7, -2, -4, -1}, {-7, -2, 3, -1},
        {6, 3, 2, 0}, {-6, 3, -2, 0}, {6, -3, -2, 0}, {0, 5, 0, 0}, {0, -5, 0, 0},
        {1, 7, 0, 1}, {-1, 7, -1, 6}, {1, -7, -1, -6}, {INT64_MAX, 2, INT64_MAX / 2, 1},
        {INT64_MIN, 2, INT64_MIN / 2, 0}, {INT64_MIN, 3, -3074457345618258603LL, 1},
        {INT64_MIN, INT64_MAX, -2, INT64_MAX - 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        value a = V_INT(cases[i].a), b = V_INT(cases[i].b);
        ck_assert_msg(INT_OF(FLOORDIV, a, b) == cases[i].q, "%lld // %lld",
                      (long long)cases[i].a, (long long)cases[i].b);
        ck_assert_msg(INT_OF(MOD, a, b) == cases[i].m, "%lld %% %lld", (long long)cases[i].a,
                      (long long)cases[i].b);
    }
    ck_assert(FLOAT_OF(FLOORDIV, V_FLOAT(-7.5), V_INT(2)) == -4.0);
    ck_assert(FLOAT_OF(MOD, V_FLOAT(-7.5), V_INT(2)) == 0.5);
    ck_assert(FLOAT_OF(MOD, V_FLOAT(7.5), V_INT(-2)) == -0.5);
    ck_assert(FLOAT_OF(FLOORDIV, V_FLOAT(7.5), V_FLOAT(-2.0)) == -4.0);
    ck_assert(FLOAT_OF(MOD, V_INT(-1), V_FLOAT(3.0)) == 2.0);
    ck_assert(FLOAT_OF(DIV, V_INT(7), V_INT(2)) == 3.5);
    ck_assert(FLOAT_OF(DIV, V_INT(-7), V_INT(2)) == -3.5);
    ck_assert(FLOAT_OF(DIV, V_INT(6), V_INT(3)) == 2.0);        /* int / int is a float */
    ck_assert(FLOAT_OF(DIV, V_BOOL(1), V_FLOAT(4.0)) == 0.25);
    ck_assert_int_eq(INT_OF(ADD, V_BOOL(1), V_BOOL(1)), 2);     /* bools are ints */
    ck_assert(FLOAT_OF(ADD, V_INT(1), V_FLOAT(0.5)) == 1.5);
    ck_assert(FLOAT_OF(MUL, V_FLOAT(1.5), V_BOOL(1)) == 1.5);
    ck_assert(isinf(FLOAT_OF(MUL, V_FLOAT(1e300), V_FLOAT(1e300))));  /* floats do not raise */
    /* Through the eval loop too. */
    ck_assert_int_eq(RUN_INT("LOAD_INT -7\nLOAD_INT 2\nFLOORDIV\nSTORE_GLOBAL r\n"), -4);
    ck_assert_int_eq(RUN_INT("LOAD_INT -7\nLOAD_INT 2\nMOD\nSTORE_GLOBAL r\n"), 1);
    ck_assert_int_eq(RUN_INT("LOAD_INT 7\nLOAD_INT -2\nMOD\nSTORE_GLOBAL r\n"), -1);
}
END_TEST

/* Float floor division and modulo as Python computes them (floatobject.c's float_divmod). */
START_TEST(float_floor_division_as_python)
{
    ck_assert_msg(FLOAT_OF(FLOORDIV, V_FLOAT(1.0), V_FLOAT(0.1)) == 9.0,
                  "1.0 // 0.1 gave %g (Python: 9.0, and 1.0 %% 0.1 == 0.09999999999999995)",
                  FLOAT_OF(FLOORDIV, V_FLOAT(1.0), V_FLOAT(0.1)));
    double m = FLOAT_OF(MOD, V_FLOAT(-4.0), V_FLOAT(2.0));
    ck_assert_msg(m == 0.0 && !signbit(m), "-4.0 %% 2.0 gave -0.0 (Python: 0.0)");
    m = FLOAT_OF(MOD, V_FLOAT(4.0), V_FLOAT(-2.0));
    ck_assert_msg(m == 0.0 && signbit(m), "4.0 %% -2.0 gave 0.0 (Python: -0.0)");
}
END_TEST

START_TEST(python_int_edge_cases)
{
    /* -1 << 63 is -2**63, which fits. */
    value r;
    int rc = binop(OP_SHL, V_INT(-1), V_INT(63), &r);
    if (rc)
        T->exc = V_UNDEF;
    ck_assert_msg(rc == 0 && r.tag == T_INT && r.u.i == INT64_MIN,
                  "-1 << 63 raised instead of giving -9223372036854775808");
    /* 0 ** -1: Python raises ZeroDivisionError, it does not return inf. */
    rc = binop(OP_POW, V_INT(0), V_INT(-1), &r);
    ck_assert_msg(rc == -1, "0 ** -1 gave %s", cstr(vm_repr(T, r)));
    EXPECT_EXC(zero_division_error, "0.0 cannot be raised to a negative power");
}
END_TEST

START_TEST(division_by_zero_messages)
{
    BINOP_RAISES(DIV, V_INT(1), V_INT(0), zero_division_error, "division by zero");
    BINOP_RAISES(FLOORDIV, V_INT(1), V_INT(0), zero_division_error, "integer division by zero");
    BINOP_RAISES(MOD, V_INT(1), V_INT(0), zero_division_error, "integer modulo by zero");
    BINOP_RAISES(DIV, V_FLOAT(1.0), V_INT(0), zero_division_error, "float division by zero");
    BINOP_RAISES(DIV, V_INT(1), V_FLOAT(0.0), zero_division_error, "float division by zero");
    BINOP_RAISES(DIV, V_INT(1), V_FLOAT(-0.0), zero_division_error, "float division by zero");
    BINOP_RAISES(FLOORDIV, V_FLOAT(1.0), V_FLOAT(0.0), zero_division_error,
                 "float floor division by zero");
    BINOP_RAISES(MOD, V_FLOAT(1.0), V_FLOAT(0.0), zero_division_error, "float modulo");
    BINOP_RAISES(MOD, V_INT(1), V_BOOL(0), zero_division_error, "integer modulo by zero");
    RUN_RAISES("LOAD_INT 1\nLOAD_INT 0\nDIV\nSTORE_GLOBAL r\n", zero_division_error,
               "division by zero");
    /* ArithmeticError is the common base. */
    ck_assert(vm_class_is(EXC(T)->zero_division_error, EXC(T)->arithmetic_error));
    ck_assert(vm_class_is(EXC(T)->overflow_error, EXC(T)->arithmetic_error));
    ck_assert(vm_class_is(EXC(T)->arithmetic_error, EXC(T)->exception));
    ck_assert(!vm_class_is(EXC(T)->system_exit, EXC(T)->exception));
    ck_assert(!vm_class_is(EXC(T)->keyboard_interrupt, EXC(T)->exception));
}
END_TEST

START_TEST(bitwise_and_shifts)
{
    ck_assert_int_eq(INT_OF(BIT_AND, V_INT(12), V_INT(10)), 8);
    ck_assert_int_eq(INT_OF(BIT_OR, V_INT(12), V_INT(10)), 14);
    ck_assert_int_eq(INT_OF(BIT_XOR, V_INT(12), V_INT(10)), 6);
    ck_assert_int_eq(INT_OF(BIT_AND, V_INT(-1), V_INT(255)), 255);
    ck_assert_int_eq(INT_OF(SHR, V_INT(-9), V_INT(1)), -5);    /* arithmetic, floors */
    ck_assert_int_eq(INT_OF(SHR, V_INT(-1), V_INT(100)), -1);
    ck_assert_int_eq(INT_OF(SHR, V_INT(5), V_INT(100)), 0);
    ck_assert_int_eq(INT_OF(SHL, V_INT(-5), V_INT(2)), -20);
    BINOP_RAISES(SHL, V_INT(1), V_INT(-1), value_error, "negative shift count");
    BINOP_RAISES(SHR, V_INT(1), V_INT(-1), value_error, "negative shift count");
    BINOP_RAISES(BIT_AND, V_FLOAT(1.0), V_INT(1), type_error,
                 "unsupported operand type(s) for &: 'float' and 'int'");
    BINOP_RAISES(SHL, V_INT(1), V_FLOAT(1.0), type_error, "for <<: 'int' and 'float'");
    BINOP_RAISES(BIT_XOR, S("a"), S("b"), type_error, "for ^: 'str' and 'str'");
}
END_TEST

START_TEST(sequence_arithmetic)
{
    value r;
    ck_assert_int_eq(binop(OP_ADD, S("ab"), S("cd"), &r), 0);
    STR_IS(r, "abcd");
    ck_assert_int_eq(binop(OP_MUL, S("ab"), V_INT(3), &r), 0);
    STR_IS(r, "ababab");
    ck_assert_int_eq(binop(OP_MUL, V_INT(2), TUPLE(V_INT(1)), &r), 0);
    REPR_IS(r, "(1, 1)");
    ck_assert_int_eq(binop(OP_MUL, S("ab"), V_INT(-3), &r), 0);
    REPR_IS(r, "''");
    ck_assert_int_eq(binop(OP_ADD, B("a", 1), B("b", 1), &r), 0);
    REPR_IS(r, "b'ab'");
    BINOP_RAISES(ADD, S("a"), B("b", 1), type_error, "for +: 'str' and 'bytes'");
    BINOP_RAISES(ADD, S("a"), V_INT(1), type_error, "for +: 'str' and 'int'");
    BINOP_RAISES(ADD, TUPLE(V_INT(1)), vm_list_new(T, 0), type_error, "'tuple' and 'list'");
    BINOP_RAISES(SUB, S("a"), S("a"), type_error, "for -: 'str' and 'str'");
    BINOP_RAISES(MUL, S("a"), V_FLOAT(2.0), type_error, "for *: 'str' and 'float'");
    BINOP_RAISES(MUL, S("ab"), V_INT(1LL << 40), memory_error, "");
    BINOP_RAISES(ADD, V_NONE, V_INT(1), type_error, "'NoneType' and 'int'");
    RUN_RAISES("LOAD_CONST \"x\"\nNEG\nSTORE_GLOBAL r\n", type_error,
               "bad operand type for unary -: 'str'");
}
END_TEST

/* ---- comparisons ---- */

static int cmp(int op, value a, value b)
{
    value r;
    ck_assert_int_eq(vm_compare(T, op, a, b, &r), 0);
    ck_assert_uint_eq(r.tag, T_BOOL);
    return (int)r.u.i;
}

START_TEST(comparisons)
{
    ck_assert(cmp(OP_LT, V_INT(1), V_FLOAT(1.5)));
    ck_assert(cmp(OP_LE, V_BOOL(1), V_INT(1)));
    ck_assert(!cmp(OP_GT, V_FLOAT(-0.0), V_INT(0)));
    ck_assert(cmp(OP_GE, V_FLOAT(-0.0), V_INT(0)));
    ck_assert(cmp(OP_LT, S("abc"), S("abd")));
    ck_assert(cmp(OP_LT, S("ab"), S("abc")));
    ck_assert(!cmp(OP_LT, S("b"), S("abc")));
    ck_assert(cmp(OP_LT, S("A"), S("a")));
    ck_assert(cmp(OP_GT, B("\xff", 1), B("\x01", 1)));         /* bytes compare unsigned */
    ck_assert(cmp(OP_GT, S("\xc3\xa9"), S("z")));
    ck_assert(cmp(OP_LT, TUPLE(V_INT(1), S("a")), TUPLE(V_INT(1), S("b"))));
    ck_assert(cmp(OP_LT, TUPLE(V_INT(1)), TUPLE(V_INT(1), V_INT(0))));
    ck_assert(cmp(OP_GE, TUPLE(V_INT(2)), TUPLE(V_INT(1), V_INT(9))));
    ck_assert(cmp(OP_LE, TUP(0, NULL), TUP(0, NULL)));
    /* Equal items are skipped even when unorderable (Python: (None, 1) < (None, 2)). */
    ck_assert(cmp(OP_LT, TUPLE(V_NONE, V_INT(1)), TUPLE(V_NONE, V_INT(2))));
    value nan = V_FLOAT(NAN);
    ck_assert(!cmp(OP_LT, nan, V_INT(1)));
    ck_assert(!cmp(OP_LE, nan, nan));
    ck_assert(!cmp(OP_GT, V_INT(1), nan));
    ck_assert(!cmp(OP_GE, nan, V_FLOAT(INFINITY)));

    value r;
    ck_assert_int_eq(vm_compare(T, OP_LT, V_INT(1), S("a"), &r), -1);
    EXPECT_EXC(type_error, "'<' not supported between instances of 'int' and 'str'");
    ck_assert_int_eq(vm_compare(T, OP_GE, S("a"), V_INT(1), &r), -1);
    EXPECT_EXC(type_error, "'>=' not supported between instances of 'str' and 'int'");
    ck_assert_int_eq(vm_compare(T, OP_LE, V_NONE, V_NONE, &r), -1);
    EXPECT_EXC(type_error, "'<=' not supported between instances of 'NoneType' and 'NoneType'");
    ck_assert_int_eq(vm_compare(T, OP_GT, S("a"), B("a", 1), &r), -1);
    EXPECT_EXC(type_error, "'str' and 'bytes'");
    ck_assert_int_eq(vm_compare(T, OP_LT, TUPLE(V_INT(1)), vm_list_new(T, 0), &r), -1);
    EXPECT_EXC(type_error, "'tuple' and 'list'");
    ck_assert_int_eq(vm_compare(T, OP_LT, vm_dict_new(T), vm_dict_new(T), &r), -1);
    EXPECT_EXC(type_error, "'dict' and 'dict'");
    /* The eval loop's compare (and its fused compare-and-jump) raises the same. */
    RUN_RAISES("LOAD_INT 1\nLOAD_CONST \"a\"\nLT\nSTORE_GLOBAL r\n", type_error,
               "'<' not supported between instances of 'int' and 'str'");
    RUN_RAISES("LOAD_INT 1\nLOAD_CONST \"a\"\nGT\nPOP_JUMP_IF_FALSE x\nx: LOAD_NONE\n"
               "STORE_GLOBAL r\n", type_error, "'>' not supported");
    /* EQ and NE never raise. */
    ck_assert_int_eq(RUN_INT("LOAD_INT 1\nLOAD_CONST \"a\"\nEQ\nSTORE_GLOBAL r\n"), 0);
    ck_assert_int_eq(RUN_INT("LOAD_INT 1\nLOAD_CONST 1.0\nEQ\nSTORE_GLOBAL r\n"), 1);
    ck_assert_int_eq(RUN_INT("LOAD_NONE\nBUILD_LIST 0\nNE\nSTORE_GLOBAL r\n"), 1);
}
END_TEST

/* Python names the items that could not be ordered, not the tuples holding them. */
START_TEST(compare_error_names_the_items)
{
    value r;
    ck_assert_int_eq(vm_compare(T, OP_LT, TUPLE(V_INT(1), S("a")), TUPLE(V_INT(1), V_INT(2)), &r),
                     -1);
    EXPECT_EXC(type_error, "'<' not supported between instances of 'str' and 'int'");
    value l1 = vm_list_new(T, 0), l2 = vm_list_new(T, 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l1), V_NONE), 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l2), V_INT(1)), 0);
    ck_assert_int_eq(vm_compare(T, OP_GT, l1, l2, &r), -1);
    EXPECT_EXC(type_error, "'>' not supported between instances of 'NoneType' and 'int'");
}
END_TEST

START_TEST(contains_and_items)
{
    value r;
    value l = vm_list_new(T, 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), V_INT(1)), 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), S("x")), 0);
    ck_assert_int_eq(binop(OP_CONTAINS, V_FLOAT(1.0), l, &r), 0);
    ck_assert(r.tag == T_BOOL && r.u.i);
    ck_assert_int_eq(binop(OP_CONTAINS, S("y"), l, &r), 0);
    ck_assert(r.tag == T_BOOL && !r.u.i);
    ck_assert_int_eq(binop(OP_CONTAINS, S("an"), S("banana"), &r), 0);
    ck_assert(r.u.i);
    ck_assert_int_eq(binop(OP_CONTAINS, S(""), S(""), &r), 0);
    ck_assert(r.u.i);
    BINOP_RAISES(CONTAINS, V_INT(1), S("1"), type_error,
                 "'in <str>' requires str as left operand, not int");
    BINOP_RAISES(CONTAINS, V_INT(1), V_INT(1), type_error, "argument of type 'int' is not iterable");
    BINOP_RAISES(CONTAINS, l, vm_dict_new(T), type_error, "unhashable type: 'list'");

    ck_assert_int_eq(vm_get_item(T, l, V_INT(-1), &r), 0);
    STR_IS(r, "x");
    ck_assert_int_eq(vm_get_item(T, l, V_BOOL(1), &r), 0);        /* a bool is an index */
    STR_IS(r, "x");
    ck_assert_int_eq(vm_get_item(T, l, V_INT(2), &r), -1);
    EXPECT_EXC(index_error, "list index out of range");
    ck_assert_int_eq(vm_get_item(T, l, V_INT(-3), &r), -1);
    EXPECT_EXC(index_error, "list index out of range");
    ck_assert_int_eq(vm_get_item(T, l, V_INT(INT64_MIN), &r), -1);
    EXPECT_EXC(index_error, "out of range");
    ck_assert_int_eq(vm_get_item(T, l, V_FLOAT(0.0), &r), -1);
    EXPECT_EXC(type_error, "list indices must be integers, not float");
    ck_assert_int_eq(vm_get_item(T, B("\xff", 1), V_INT(0), &r), 0);
    ck_assert(r.tag == T_INT && r.u.i == 255);
    ck_assert_int_eq(vm_get_item(T, S("abc"), V_INT(5), &r), -1);
    EXPECT_EXC(index_error, "string index out of range");
    ck_assert_int_eq(vm_get_item(T, V_INT(5), V_INT(0), &r), -1);
    EXPECT_EXC(type_error, "'int' object is not subscriptable");
    value d = vm_dict_new(T);
    ck_assert_int_eq(vm_get_item(T, d, S("nope"), &r), -1);
    EXPECT_EXC(key_error, "'nope'");
    ck_assert_int_eq(vm_set_item(T, TUPLE(V_INT(1)), V_INT(0), V_INT(2)), -1);
    EXPECT_EXC(type_error, "'tuple' object does not support item assignment");
    ck_assert_int_eq(vm_set_item(T, l, V_INT(5), V_INT(2)), -1);
    EXPECT_EXC(index_error, "list assignment index out of range");
    ck_assert_int_eq(vm_set_item(T, d, l, V_INT(2)), -1);
    EXPECT_EXC(type_error, "unhashable type: 'list'");
    ck_assert_int_eq(vm_set_item(T, l, V_INT(-2), V_NONE), 0);
    ck_assert_uint_eq(AS_LIST(l)->items[0].tag, T_NONE);
}
END_TEST

Suite *suite_values(void)
{
    Suite *s = suite_create("values");
    TCase *tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, numbers_equal_and_hash_alike);
    tcase_add_test(tc, int_float_compare_exactly);
    tcase_add_test(tc, strings_bytes_tuples_equal_and_hash);
    tcase_add_test(tc, unhashable_raise_type_error);
    tcase_add_test(tc, truthiness);
    tcase_add_test(tc, repr_scalars);
    tcase_add_test(tc, repr_floats_shortest_round_trip);
    tcase_add_test(tc, repr_floats_positional_as_python);
    tcase_add_test(tc, repr_strings_and_bytes);
    tcase_add_test(tc, repr_containers_and_objects);
    tcase_add_test(tc, dict_many_keys_with_deletions);
    tcase_add_test(tc, dict_churn_stays_small);
    tcase_add_test(tc, list_append_growth);
    tcase_add_test(tc, integer_overflow_raises);
    tcase_add_test(tc, floor_division_and_modulo_signs);
    tcase_add_test(tc, float_floor_division_as_python);
    tcase_add_test(tc, python_int_edge_cases);
    tcase_add_test(tc, division_by_zero_messages);
    tcase_add_test(tc, bitwise_and_shifts);
    tcase_add_test(tc, sequence_arithmetic);
    tcase_add_test(tc, comparisons);
    tcase_add_test(tc, compare_error_names_the_items);
    tcase_add_test(tc, contains_and_items);
    suite_add_tcase(s, tc);
    return s;
}
