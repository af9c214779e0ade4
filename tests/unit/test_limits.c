/* SPDX-License-Identifier: MIT */
/* Unit tests of the limits for untrusted code through the embedding API (gilvm_set_limits,
 * vm/lib/limits.c, vm/core/poll.c, vm/core/gc.c): the instruction count and the clock stop a
 * program with LimitExceeded that no handler catches, counts restart when the limits are set
 * again, every thread is stopped, and a heap limit raises a MemoryError a program can catch.
 * Each test is forked (one runtime per process) with a timeout. */
#include <check.h>
#include <signal.h>
#include <stdio.h>

#include "runtime/runtime.h"
#include "vm/api/gilvm.h"
#include "vm/core/state.h"

static void start(void)
{
    gilvm_config cfg = {.no_signal_handlers = 1};
    ck_assert_int_eq(gilvm_runtime_init(&cfg), 0);
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));   /* the expected tracebacks */
}

static int set_limits(unsigned long long ins, unsigned long long ms, unsigned long long mem)
{
    gilvm_limits l = {.max_instructions = ins, .timeout_ms = ms, .max_memory = mem};
    return gilvm_set_limits(&l);
}

/* A global of the main interpreter, or T_UNDEF. */
static value global(const char *name)
{
    return vm_global_get(VM_INTERP(vm_main_thread()), name);
}

/* An endless loop inside a function inside a .try whose handler sets `caught`. */
static const char endless[] =
    ".func spin()\n"
    "loop:\n"
    "    JUMP_BACKWARD loop\n"
    ".end\n"
    ".try handler\n"
    "    LOAD_GLOBAL spin\n"
    "    CALL 0\n"
    "    POP\n"
    ".end_try\n"
    "HALT\n"
    "handler:\n"
    "    POP\n"
    "    LOAD_INT 1\n"
    "    STORE_GLOBAL caught\n";

/* 1,000 iterations of a counting loop (how many instructions depends on the dispatch: the
 * switch build has no superinstructions, so the tests measure it first). */
static const char thousand[] =
    "LOAD_INT 0\n"
    "STORE_GLOBAL i\n"
    "loop:\n"
    "    LOAD_GLOBAL i\n"
    "    LOAD_INT 1\n"
    "    ADD\n"
    "    STORE_GLOBAL i\n"
    "    LOAD_GLOBAL i\n"
    "    LOAD_INT 1000\n"
    "    LT\n"
    "    POP_JUMP_IF_FALSE done\n"
    "    JUMP_BACKWARD loop\n"
    "done:\n";

START_TEST(test_instruction_limit_is_not_caught)
{
    start();
    ck_assert_int_eq(set_limits(100000, 0, 0), 0);
    ck_assert_int_eq(gilvm_run_string("endless", endless), GILVM_EXIT_LIMIT);
    ck_assert_int_eq(global("caught").tag, T_UNDEF);     /* the handler never ran */
    /* Lifted: the same interpreter runs code again, to the end. */
    ck_assert_int_eq(set_limits(0, 0, 0), 0);
    ck_assert_int_eq(gilvm_run_string("thousand", thousand), 0);
    ck_assert_int_eq(global("i").u.i, 1000);
    gilvm_runtime_finalize(0);
}
END_TEST

START_TEST(test_instruction_count_restarts_when_set)
{
    start();
    ck_assert_int_eq(set_limits(1000000000, 0, 0), 0);                   /* to count a run */
    ck_assert_int_eq(gilvm_run_string("thousand", thousand), 0);
    unsigned long long run = VM_INTERP(vm_main_thread())->limits.executed;
    ck_assert_uint_gt(run, 3000);
    unsigned long long limit = run + run / 2;
    ck_assert_int_eq(set_limits(limit, 0, 0), 0);
    ck_assert_int_eq(gilvm_run_string("thousand", thousand), 0);          /* one run */
    ck_assert_int_eq(gilvm_run_string("thousand", thousand), GILVM_EXIT_LIMIT);  /* two */
    ck_assert_int_lt(global("i").u.i, 1000);
    ck_assert_int_eq(set_limits(limit, 0, 0), 0);                        /* count from 0 */
    ck_assert_int_eq(gilvm_run_string("thousand", thousand), 0);
    ck_assert_int_eq(global("i").u.i, 1000);
    gilvm_runtime_finalize(0);
}
END_TEST

START_TEST(test_timeout_stops_every_thread)
{
    start();
    static const char src[] =
        ".func spin()\n"
        "loop:\n"
        "    JUMP_BACKWARD loop\n"
        ".end\n"
        "LOAD_GLOBAL thread_start\n"
        "LOAD_GLOBAL spin\n"
        "CALL 1\n"
        "STORE_GLOBAL th\n"
        "LOAD_GLOBAL spin\n"
        "CALL 0\n";
    uint64_t t0 = rt_now_ns();
    ck_assert_int_eq(set_limits(0, 100, 0), 0);
    ck_assert_int_eq(gilvm_run_string("timeout", src), GILVM_EXIT_LIMIT);
    ck_assert_uint_ge(rt_now_ns() - t0, 100000000u);
    /* The worker was stopped too: finalization joins it (a hang fails the test's timeout). */
    ck_assert_int_eq(gilvm_runtime_finalize(0), 0);
}
END_TEST

START_TEST(test_heap_limit_raises_memory_error)
{
    start();
    static const char src[] =
        "BUILD_LIST 0\n"
        "STORE_GLOBAL l\n"
        ".try handler\n"
        "loop:\n"
        "    LOAD_GLOBAL append\n"
        "    LOAD_GLOBAL l\n"
        "    LOAD_CONST \"0123456789abcdef\"\n"
        "    LOAD_INT 4\n"
        "    MUL\n"
        "    CALL 2\n"
        "    POP\n"
        "    JUMP_BACKWARD loop\n"
        ".end_try\n"
        "HALT\n"
        "handler:\n"
        "    LOAD_GLOBAL type\n"
        "    SWAP\n"
        "    CALL 1\n"
        "    STORE_GLOBAL caught\n"
        "    LOAD_GLOBAL len\n"
        "    LOAD_GLOBAL l\n"
        "    CALL 1\n"
        "    STORE_GLOBAL n\n"
        "    LOAD_NONE\n"
        "    STORE_GLOBAL l\n";
    ck_assert_int_eq(set_limits(0, 0, 16u << 20), 0);
    ck_assert_int_eq(gilvm_run_string("grow", src), 0);
    ck_assert_str_eq(AS_STR(global("caught"))->data, "MemoryError");      /* type(e) */
    /* It stopped near the limit: 16 MiB hold at most 16 Mi / (16 + 64 + 16) items. */
    ck_assert_int_gt(global("n").u.i, 1000);
    ck_assert_int_lt(global("n").u.i, (16 << 20) / 96 + (4 << 20) / 96);
    gilvm_runtime_finalize(0);
}
END_TEST

Suite *suite_limits(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_instruction_limit_is_not_caught);
    tcase_add_test(tc, test_instruction_count_restarts_when_set);
    tcase_add_test(tc, test_timeout_stops_every_thread);
    tcase_add_test(tc, test_heap_limit_raises_memory_error);
    suite_add_tcase(s, tc);
    return s;
}
