/* SPDX-License-Identifier: MIT */
/* Unit tests of the collector (vm/core/gc.c): what is freed and what survives, found by walking
 * the interpreter's heap list before and after vm_gc_collect.  Roots covered: globals,
 * frames (locals and operand stack, also while a native runs), thread exceptions, code
 * constants, and the objects tracebacks and exception contexts hold. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/api/run.h"
#include "vm/api/gilvm.h"
#include "vm/toolchain/module.h"
#include "vm/core/ops.h"
#include "vm/lib/native.h"

static vm_thread *T;
#define IN VM_INTERP(T)

static void setup(void)
{
    ck_assert_int_eq(gilvm_runtime_init(NULL), 0);
    T = vm_main_thread();
}

static void teardown(void) { gilvm_runtime_finalize(0); }

static size_t heap_count(void)
{
    size_t n = 0;
    for (vm_obj *o = IN->heap; o; o = o->next)
        n++;
    return n;
}

/* Whether `p` is (still) an object of the heap.  Compares addresses only: a freed object's
 * memory is never read. */
static int on_heap(const void *p)
{
    for (vm_obj *o = IN->heap; o; o = o->next)
        if ((const void *)o == p)
            return 1;
    return 0;
}

static void no_marks_left(void)
{
    for (vm_obj *o = IN->heap; o; o = o->next)
        ck_assert_msg(!o->marked, "a %d object is still marked after a collection", o->tag);
}

static value S(const char *s) { return vm_str_c(T, s); }

/* Assembles, verifies and links `src`; returns the module body. */
static vm_code *load(const char *src)
{
    vm_module m;
    char err[512] = "";
    ck_assert_msg(asm_assemble(T, "g.gasm", src, strlen(src), 0, &m, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(vm_module_verify(&m, "g.gasm", err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(vm_module_link(T, &m), 0);
    vm_code *body = m.codes[0];
    vm_module_free(&m);
    return body;
}

START_TEST(unreachable_objects_are_freed)
{
    vm_gc_collect(T);
    size_t base = heap_count();
    size_t runs = IN->ncollections;
    void *ptrs[6];
    ptrs[0] = S("garbage").u.o;
    ptrs[1] = vm_list_new(T, 100).u.o;
    ptrs[2] = vm_tuple_new(T, 1, (value[]){S("in a tuple")}).u.o;
    ptrs[3] = vm_dict_new(T).u.o;
    ptrs[4] = vm_exc_new(T, EXC(T)->value_error, S("msg")).u.o;
    ptrs[5] = vm_bytes_new(T, "b", 1).u.o;
    vm_dict_set(T, (vm_dict *)ptrs[3], S("k"), S("v"));
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(vm_list_append(T, (vm_list *)ptrs[1], S("item")), 0);
    ck_assert_uint_ge(heap_count(), base + 1000 + 6);
    vm_gc_collect(T);
    ck_assert_uint_eq(heap_count(), base);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(!on_heap(ptrs[i]), "object %d survived", i);
    ck_assert_uint_eq(IN->ncollections, runs + 1);
    no_marks_left();
    /* Collecting again frees nothing more: the setup's objects are all reachable. */
    vm_gc_collect(T);
    ck_assert_uint_eq(heap_count(), base);
    ck_assert_ptr_nonnull(vm_global_get(IN, "print").u.o);
    ck_assert_uint_eq(vm_global_get(IN, "ValueError").tag, T_CLASS);
}
END_TEST

START_TEST(cycles_are_collected)
{
    vm_gc_collect(T);
    size_t base = heap_count();
    value l = vm_list_new(T, 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), l), 0);                     /* l = [l] */
    value a = vm_list_new(T, 0), b = vm_dict_new(T);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(a), b), 0);                     /* a = [b], b = {"a": a} */
    vm_dict_set(T, AS_DICT(b), S("a"), a);
    value e1 = vm_exc_new(T, EXC(T)->value_error, V_NONE), e2 = vm_exc_new(T, EXC(T)->type_error, e1);
    AS_EXC(e1)->context = e2;                             /* exceptions in a context cycle */
    vm_gc_collect(T);
    ck_assert(!on_heap(l.u.o));
    ck_assert(!on_heap(a.u.o));
    ck_assert(!on_heap(b.u.o));
    ck_assert(!on_heap(e1.u.o));
    ck_assert(!on_heap(e2.u.o));
    ck_assert_uint_eq(heap_count(), base);
}
END_TEST

START_TEST(reachable_from_globals_survive)
{
    /* One of each container kind, nested, under a single global. */
    value leaf_s = S("leaf"), leaf_b = vm_bytes_new(T, "x", 1);
    value tup = vm_tuple_new(T, 2, (value[]){leaf_s, V_INT(1)});
    value it;
    ck_assert_int_eq(vm_get_iter(T, leaf_b, &it), 0);     /* an iterator keeps its sequence */
    value ctx = vm_exc_new(T, EXC(T)->key_error, S("ctx msg"));
    value exc = vm_exc_new(T, EXC(T)->value_error, S("arg msg"));
    AS_EXC(exc)->context = ctx;
    value l = vm_list_new(T, 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), tup), 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), it), 0);
    ck_assert_int_eq(vm_list_append(T, AS_LIST(l), exc), 0);
    value dkey = S("dict key");
    value d = vm_dict_new(T);
    vm_dict_set(T, AS_DICT(d), dkey, l);
    vm_dict_set(T, AS_DICT(d), S("deleted"), S("deleted value"));
    vm_dict_del(T, AS_DICT(d), S("deleted"));
    vm_global_set(T, "root", d);
    void *keep[] = {leaf_s.u.o, leaf_b.u.o, tup.u.o, it.u.o, ctx.u.o, exc.u.o, l.u.o,
                    dkey.u.o, d.u.o, AS_EXC(ctx)->arg.u.o, AS_EXC(exc)->arg.u.o};
    size_t nkeep = sizeof keep / sizeof keep[0];
    vm_gc_collect(T);
    for (size_t i = 0; i < nkeep; i++)
        ck_assert_msg(on_heap(keep[i]), "object %zu was freed while reachable", i);
    no_marks_left();
    /* Contents are intact. */
    value got;
    ck_assert_int_eq(vm_dict_get(T, AS_DICT(d), S("dict key"), &got), 1);
    ck_assert_ptr_eq(got.u.o, l.u.o);
    ck_assert_str_eq(AS_STR(vm_repr(T, tup))->data, "('leaf', 1)");
    /* Drop the global: everything goes. */
    vm_global_set(T, "root", V_NONE);
    vm_gc_collect(T);
    for (size_t i = 0; i < nkeep; i++)
        ck_assert_msg(!on_heap(keep[i]), "object %zu survived after its root went", i);
}
END_TEST

START_TEST(thread_exceptions_and_roots_survive)
{
    value raised = vm_exc_new(T, EXC(T)->value_error, S("raised"));
    value handled = vm_exc_new(T, EXC(T)->type_error, S("handled"));
    value rooted = vm_list_new(T, 0);
    T->exc = raised;
    T->handled = handled;
    ck_assert_int_lt(T->nroots, 16);
    int slot = T->nroots++;
    T->roots[slot] = rooted;
    vm_gc_collect(T);
    ck_assert(on_heap(raised.u.o));
    ck_assert(on_heap(AS_EXC(raised)->arg.u.o));
    ck_assert(on_heap(handled.u.o));
    ck_assert(on_heap(rooted.u.o));
    T->exc = V_UNDEF;
    T->handled = V_NONE;
    T->nroots--;
    vm_gc_collect(T);
    ck_assert(!on_heap(raised.u.o));
    ck_assert(!on_heap(handled.u.o));
    ck_assert(!on_heap(rooted.u.o));
}
END_TEST

START_TEST(frames_keep_locals_and_stack)
{
    vm_code *body = load(".func f(a, b)\n    .local c\n    LOAD_LOCAL a\n    LOAD_LOCAL b\n"
                         "    POP\n    RETURN\n.end\n");
    vm_code *fcode = AS_FUNC(vm_global_get(IN, "f"))->code;
    value a = S("arg a"), b = vm_list_new(T, 0), c = vm_dict_new(T);
    value on_stack = vm_tuple_new(T, 1, (value[]){S("on the stack")});
    value above = S("above sp");
    vm_frame *fr = vm_frame_push(T, fcode, (value[]){a, b}, 2);
    ck_assert_ptr_nonnull(fr);
    ck_assert_uint_ge(fcode->maxstack, 2);
    fr->locals[2] = c;
    FRAME_STACK(fr)[0] = on_stack;
    FRAME_STACK(fr)[1] = above;                                 /* beyond sp: dead */
    fr->sp = FRAME_STACK(fr) + 1;
    vm_global_set(T, "f", V_NONE);                        /* only the frame holds the code */
    vm_global_set(T, "body", V_OBJ(T_CODE, body));
    vm_gc_collect(T);
    ck_assert(on_heap(a.u.o));
    ck_assert(on_heap(b.u.o));
    ck_assert(on_heap(c.u.o));
    ck_assert(on_heap(on_stack.u.o));
    ck_assert(on_heap(AS_TUPLE(on_stack)->items[0].u.o));
    ck_assert(on_heap(fcode));
    ck_assert(on_heap(fcode->name));
    ck_assert(!on_heap(above.u.o));
    vm_frame_pop(T);
    vm_gc_collect(T);
    ck_assert(!on_heap(a.u.o));
    ck_assert(!on_heap(c.u.o));
    ck_assert(!on_heap(on_stack.u.o));
    ck_assert(!on_heap(fcode));
}
END_TEST

/* Natives the bytecode below calls: collect now (a native call is a safe point: the
 * caller's stack is saved), remember an object, and say whether it is still on the heap. */
static void *watched;
static int bi_collect_now(vm_thread *t, int argc, value *argv, value *out)
{
    vm_gc_collect(t);
    *out = V_NONE;
    return 0;
}
static int bi_watch(vm_thread *t, int argc, value *argv, value *out)
{
    ck_assert(IS_OBJ(argv[0]));
    watched = argv[0].u.o;
    *out = V_NONE;
    return 0;
}
static int bi_alive(vm_thread *t, int argc, value *argv, value *out)
{
    *out = V_BOOL(on_heap(watched));
    return 0;
}

static value run_global(const char *src, const char *name)
{
    vm_code *body = load(src);
    int rc = vm_run_code(T, body, NULL, NULL, 0);
    ck_assert_msg(rc == 0, "raised %s",
                  T->exc.tag == T_EXC ? AS_STR(vm_exc_format(T, T->exc))->data : "?");
    return vm_global_get(IN, name);
}

START_TEST(running_frames_are_roots)
{
    static const vm_native_def natives[] = {
        {"collect_now", 0, bi_collect_now, NULL},
        {"watch", 1, bi_watch, NULL},
        {"alive", 0, bi_alive, NULL},
    };
    VM_DEF_NATIVES(T, natives);
    /* A list held only by a local of a running frame, and one only on its operand stack,
     * both survive a collection made by a native it calls; after the frame returns and
     * drops them, the next collection frees them. */
    static const char src[] =
        ".func inner(x)\n"
        "    LOAD_GLOBAL collect_now\n    CALL 0\n    POP\n"
        "    LOAD_GLOBAL alive\n    CALL 0\n    RETURN\n"
        ".end\n"
        ".func f()\n"
        "    .local a\n"
        "    LOAD_INT 1\n    LOAD_INT 2\n    BUILD_LIST 2\n    STORE_LOCAL a\n"
        "    LOAD_GLOBAL watch\n    LOAD_LOCAL a\n    CALL 1\n    POP\n"
        "    LOAD_GLOBAL collect_now\n    CALL 0\n    POP\n"
        "    LOAD_GLOBAL alive\n    CALL 0\n"                /* r1: local kept it */
        "    LOAD_CONST \"s\"\n    LOAD_INT 3\n    MUL\n"     /* a fresh string on the stack */
        "    DUP\n    LOAD_GLOBAL watch\n    SWAP\n    CALL 1\n    POP\n"
        "    LOAD_GLOBAL collect_now\n    CALL 0\n    POP\n"
        "    LOAD_GLOBAL alive\n    CALL 0\n"                /* r2: the stack kept it */
        "    SWAP\n    POP\n"
        "    BUILD_DICT 0\n    DUP\n    LOAD_GLOBAL watch\n    SWAP\n    CALL 1\n    POP\n"
        "    LOAD_GLOBAL inner\n    SWAP\n    CALL 1\n"      /* r3: an argument (callee local) */
        "    BUILD_TUPLE 3\n    RETURN\n"
        ".end\n"
        "LOAD_GLOBAL f\nCALL 0\nSTORE_GLOBAL r\n"
        "LOAD_GLOBAL collect_now\nCALL 0\nPOP\n"
        "LOAD_GLOBAL alive\nCALL 0\nSTORE_GLOBAL gone\n";
    value r = run_global(src, "r");
    ck_assert_str_eq(AS_STR(vm_repr(T, r))->data, "(True, True, True)");
    value gone = vm_global_get(IN, "gone");
    ck_assert(gone.tag == T_BOOL && gone.u.i == 0);
}
END_TEST

START_TEST(code_constants_survive)
{
    /* A tuple constant is referenced only by its code object, which is referenced only by
     * a function in a global. */
    vm_code *body = load(".func f()\n    LOAD_CONST (1, \"two\", (3.0, b\"four\"))\n"
                         "    RETURN\n.end\n");
    vm_global_set(T, "keep_body", V_OBJ(T_CODE, body));
    vm_code *fc = AS_FUNC(vm_global_get(IN, "f"))->code;
    value tup = V_NONE;
    for (uint32_t i = 0; i < fc->nconsts; i++)
        if (fc->consts[i].tag == T_TUPLE)
            tup = fc->consts[i];
    ck_assert_uint_eq(tup.tag, T_TUPLE);
    value inner = AS_TUPLE(tup)->items[2];
    for (int round = 0; round < 3; round++)
        vm_gc_collect(T);
    ck_assert(on_heap(tup.u.o));
    ck_assert(on_heap(AS_TUPLE(tup)->items[1].u.o));
    ck_assert(on_heap(inner.u.o));
    ck_assert(on_heap(AS_TUPLE(inner)->items[1].u.o));
    ck_assert(on_heap(fc->name));
    ck_assert(on_heap(fc->file));
    ck_assert_str_eq(AS_STR(vm_repr(T, tup))->data, "(1, 'two', (3.0, b'four'))");
    /* Calling it still works after the collections. */
    value out;
    ck_assert_int_eq(vm_call(T, vm_global_get(IN, "f"), 0, NULL, &out), 0);
    ck_assert_ptr_eq(out.u.o, tup.u.o);
    /* When the function goes, so do its code and constants. */
    vm_global_set(T, "f", V_NONE);
    vm_gc_collect(T);
    ck_assert(!on_heap(fc));
    ck_assert(!on_heap(tup.u.o));
    ck_assert(!on_heap(inner.u.o));
}
END_TEST

START_TEST(tracebacks_keep_code_alive)
{
    /* g raises; the exception, kept in a global, holds traceback entries for g and f, whose
     * functions are gone from the globals. */
    vm_code *body = load(".func g()\n    LOAD_GLOBAL ValueError\n    LOAD_CONST \"from g\"\n"
                         "    CALL 1\n    RAISE\n.end\n"
                         ".func f()\n    LOAD_GLOBAL g\n    CALL 0\n    RETURN\n.end\n");
    (void)body;
    vm_code *gc = AS_FUNC(vm_global_get(IN, "g"))->code;
    vm_code *fc = AS_FUNC(vm_global_get(IN, "f"))->code;
    value out;
    ck_assert_int_eq(vm_call(T, vm_global_get(IN, "f"), 0, NULL, &out), -1);
    value e = T->exc;
    T->exc = V_UNDEF;
    ck_assert_uint_eq(e.tag, T_EXC);
    ck_assert_uint_eq(AS_EXC(e)->ntb, 2);
    ck_assert_ptr_eq(AS_EXC(e)->tb[0].code, gc);
    ck_assert_ptr_eq(AS_EXC(e)->tb[1].code, fc);
    vm_global_set(T, "err", e);
    vm_global_set(T, "f", V_NONE);
    vm_global_set(T, "g", V_NONE);
    vm_gc_collect(T);
    ck_assert(on_heap(e.u.o));
    ck_assert(on_heap(gc));
    ck_assert(on_heap(fc));
    ck_assert(on_heap(gc->file));
    ck_assert(on_heap(gc->consts[0].u.o));
    /* The traceback prints from the surviving code objects (stderr muted: forked test). */
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
    vm_print_traceback(T, e);
    /* A new exception whose context is the old one keeps it (and the code) alive too. */
    value e2 = vm_exc_new(T, EXC(T)->runtime_error, S("later"));
    AS_EXC(e2)->context = e;
    vm_global_set(T, "err", e2);
    vm_gc_collect(T);
    ck_assert(on_heap(e.u.o));
    ck_assert(on_heap(gc));
    vm_global_set(T, "err", V_NONE);
    vm_gc_collect(T);
    ck_assert(!on_heap(e.u.o));
    ck_assert(!on_heap(e2.u.o));
    ck_assert(!on_heap(gc));
    ck_assert(!on_heap(fc));
}
END_TEST

START_TEST(allocation_schedules_a_collection)
{
    vm_gc_collect(T);
    rt_breaker_clear(&T->base.eval_breaker, RT_GC_SCHEDULED);
    ck_assert_uint_eq(rt_breaker_load(&T->base.eval_breaker) & RT_GC_SCHEDULED, 0);
    size_t threshold = IN->threshold;
    ck_assert_uint_gt(threshold, IN->allocated);
    /* Allocation only schedules: nothing is freed until a collection runs. */
    size_t before = heap_count(), n = 0;
    while (IN->allocated <= threshold) {
        vm_str_new(T, NULL, 0);
        vm_list_new(T, 64);
        n += 2;
        ck_assert_uint_lt(n, 10000000);
    }
    vm_str_new(T, NULL, 0);         /* list payloads are counted after vm_alloc's check */
    n++;
    ck_assert_uint_ne(rt_breaker_load(&T->base.eval_breaker) & RT_GC_SCHEDULED, 0);
    ck_assert_uint_eq(heap_count(), before + n);
    vm_gc_collect(T);
    rt_breaker_clear(&T->base.eval_breaker, RT_GC_SCHEDULED);
    ck_assert_uint_eq(heap_count(), before);
    ck_assert_uint_lt(IN->allocated, threshold);
    ck_assert_uint_ge(IN->threshold, 4u << 20);

    /* Bytecode allocating in a loop: the collector runs at the loop's polls, and the
     * heap stays bounded (far below what the loop allocates in total). */
    size_t runs = IN->ncollections;
    value r = run_global("LOAD_INT 0\nSTORE_GLOBAL r\n"
                         "LOAD_GLOBAL range\nLOAD_CONST 200000\nCALL 1\nGET_ITER\n"
                         "loop: FOR_ITER done\n"
                         "    LOAD_CONST \"x\"\n    BUILD_LIST 1\n    LOAD_INT 50\n    MUL\n"
                         "    POP\n    STORE_GLOBAL r\n    JUMP_BACKWARD loop\n"
                         "done: \n", "r");
    ck_assert_int_eq(r.u.i, 199999);
    ck_assert_uint_gt(IN->ncollections, runs);
    ck_assert_uint_lt(heap_count(), before + 200000);
    ck_assert_uint_lt(IN->allocated, 64u << 20);
}
END_TEST

Suite *suite_gc(void)
{
    Suite *s = suite_create("gc");
    TCase *tc = tcase_create("gc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unreachable_objects_are_freed);
    tcase_add_test(tc, cycles_are_collected);
    tcase_add_test(tc, reachable_from_globals_survive);
    tcase_add_test(tc, thread_exceptions_and_roots_survive);
    tcase_add_test(tc, frames_keep_locals_and_stack);
    tcase_add_test(tc, running_frames_are_roots);
    tcase_add_test(tc, code_constants_survive);
    tcase_add_test(tc, tracebacks_keep_code_alive);
    tcase_add_test(tc, allocation_schedules_a_collection);
    suite_add_tcase(s, tc);
    return s;
}
