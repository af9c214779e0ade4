/* SPDX-License-Identifier: MIT */
/* Unit tests of the eval breaker's handler (vm_handle_pending): with several reasons set at
 * once, one call handles them in _Py_HandlePending's order, and a failing handler ends the
 * pass, leaving the later reasons for the next poll.  Runs the VM through the embedding API
 * on the main thread; every test is forked with a timeout, and resets signals first. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "runtime/breaker.h"
#include "runtime/runtime.h"
#include "vm/api/gilvm.h"
#include "vm/core/state.h"
#include "vm/lib/native.h"

static vm_thread *T;
#define IN VM_INTERP(T)
#define BITS(t) rt_breaker_load(&(t)->base.eval_breaker)
#define ALL_REASONS (RT_EVAL_PLEASE_STOP | RT_SIGNALS_PENDING | RT_CALLS_TO_DO | \
                     RT_GC_SCHEDULED | RT_GIL_DROP_REQUEST | RT_ASYNC_EXCEPTION)

/* What happened, in order: one letter per effect, and the interpreter's collection count
 * when it happened.  Written holding the GIL, on the main thread. */
static char order[16];
static size_t at_gc[16];
static int norder;

static void note(char what)
{
    ck_assert_int_lt(norder, (int)sizeof order - 1);
    at_gc[norder] = IN->ncollections;
    order[norder++] = what;
}

/* The signal handler, a native: calling it runs no bytecode, so it does not poll.  (A
 * bytecode handler's own RESUME would poll and handle the later reasons inside the handler,
 * before its body runs, as CPython's nested _Py_HandlePending does.) */
static int signal_fails;

static int on_signal(vm_thread *t, int argc, value *argv, value *out)
{
    ck_assert_int_eq(argc, 1);
    ck_assert_int_eq(argv[0].u.i, SIGUSR1);
    note('S');
    *out = V_NONE;
    if (signal_fails)
        return vm_raise(t, VM_INTERP(t)->exc.key_error, "from the signal handler");
    return 0;
}

/* C pending calls: 'C' runs, 'F' fails without an exception (the poll raises RuntimeError). */
static int call_ok(void *arg)
{
    note((char)(intptr_t)arg);
    return 0;
}

static int call_fails(void *arg)
{
    note((char)(intptr_t)arg);
    return -1;
}

/* The GIL drop: rt_gil_yield's drop reports a hold slice (and its re-take may report more);
 * the first report of the pass is the drop. */
static void (*saved_gil_event)(rt_thread *, int, uint64_t, uint64_t);
static int gil_events;

static void on_gil_event(rt_thread *t, int event, uint64_t start, uint64_t end)
{
    (void)event, (void)start, (void)end;
    ck_assert_ptr_eq(t, &T->base);
    if (gil_events++ == 0)
        note('Y');
}

static void setup(void)
{
    signal(SIGUSR1, SIG_DFL);
    ck_assert_int_eq(gilvm_runtime_init(NULL), 0);
    T = (vm_thread *)rt_thread_current();       /* the main thread, attached */
    static const vm_native_def natives[] = {{"on_signal", 1, on_signal, NULL}};
    VM_DEF_NATIVES(T, natives);
    ck_assert_int_eq(gilvm_run_string("install.gasm",
        "    LOAD_GLOBAL signal\n    LOAD_GLOBAL SIGUSR1\n    LOAD_GLOBAL on_signal\n"
        "    CALL 2\n    POP\n"), 0);
    saved_gil_event = rt_main_runtime.hooks.gil_event;
    rt_main_runtime.hooks.gil_event = on_gil_event;
}

static void teardown(void)
{
    rt_main_runtime.hooks.gil_event = saved_gil_event;
    T->exc = V_UNDEF;
    gilvm_runtime_finalize(0);
}

/* Sets SIGNALS_PENDING (a tripped SIGUSR1), GC_SCHEDULED, GIL_DROP_REQUEST and
 * ASYNC_EXCEPTION; the caller has queued its pending calls (CALLS_TO_DO).  Returns the
 * queued async exception. */
static vm_exc *arm_the_rest(void)
{
    raise(SIGUSR1);
    ck_assert(BITS(T) & RT_SIGNALS_PENDING);
    vm_exc *e = AS_EXC(vm_exc_new(T, EXC(T)->value_error, vm_str_c(T, "async")));
    void *old = NULL;
    ck_assert_int_eq(rt_thread_set_async_exc(T->base.interp, T->base.id, e, &old, NULL), 1);
    ck_assert_ptr_null(old);
    rt_breaker_set(&T->base.eval_breaker, RT_GC_SCHEDULED | RT_GIL_DROP_REQUEST);
    ck_assert_uint_eq(BITS(T) & ~RT_EVAL_PLEASE_STOP, ALL_REASONS & ~RT_EVAL_PLEASE_STOP);
    return e;
}

/* All reasons at once, one call: signal handler, pending call, collection, GIL drop, async
 * exception.  Each adjacent pair is pinned by its own check, so swapping any two handlers
 * in vm_handle_pending fails:
 *   signals < calls   the log reads "SC", not "CS";
 *   calls < GC        the pending call saw no collection yet;
 *   GC < GIL          the GIL drop saw the collection done;
 *   GIL < async exc   the drop happened although the pass ended with the async exception
 *                     (an exception delivered first returns -1 before the drop).
 * RT_EVAL_PLEASE_STOP is set too, but its place in the order cannot be seen: for a thread
 * that need not exit (no finalization runs) handling it only clears the bit. */
START_TEST(reasons_run_in_cpython_order)
{
    ck_assert_int_eq(rt_pending_add_main(call_ok, (void *)(intptr_t)'C'), 0);
    vm_exc *async = arm_the_rest();
    rt_breaker_set(&T->base.eval_breaker, RT_EVAL_PLEASE_STOP);
    size_t n0 = IN->ncollections;

    ck_assert_int_eq(vm_handle_pending(T), -1);

    ck_assert_str_eq(order, "SCY");
    ck_assert_uint_eq(at_gc[0], n0);                    /* signal handler: before GC */
    ck_assert_uint_eq(at_gc[1], n0);                    /* pending call: before GC */
    ck_assert_uint_eq(at_gc[2], n0 + 1);                /* GIL drop: after GC */
    ck_assert_uint_eq(IN->ncollections, n0 + 1);
    ck_assert_int_eq(T->exc.tag, T_EXC);                /* async exception: last */
    ck_assert_ptr_eq(AS_EXC(T->exc), async);
    ck_assert_ptr_null(atomic_load(&T->base.async_exc));
    ck_assert_uint_eq(BITS(T) & ALL_REASONS, 0);
}
END_TEST

/* A failing pending call ends the pass: GC, GIL drop and the async exception wait, with
 * their bits set, and so does the call queued behind it; the next call handles them all. */
START_TEST(failing_pending_call_stops_the_pass)
{
    ck_assert_int_eq(rt_pending_add_main(call_fails, (void *)(intptr_t)'F'), 0);
    ck_assert_int_eq(rt_pending_add_main(call_ok, (void *)(intptr_t)'C'), 0);
    vm_exc *async = arm_the_rest();
    size_t n0 = IN->ncollections;

    ck_assert_int_eq(vm_handle_pending(T), -1);
    ck_assert_str_eq(order, "SF");
    ck_assert_int_eq(T->exc.tag, T_EXC);
    ck_assert_ptr_eq(AS_EXC(T->exc)->cls, EXC(T)->runtime_error);
    ck_assert_uint_eq(IN->ncollections, n0);
    ck_assert_int_eq(gil_events, 0);
    ck_assert_ptr_eq(atomic_load(&T->base.async_exc), async);
    uint32_t left = RT_CALLS_TO_DO | RT_GC_SCHEDULED | RT_GIL_DROP_REQUEST | RT_ASYNC_EXCEPTION;
    ck_assert_uint_eq(BITS(T) & left, left);

    T->exc = V_UNDEF;                   /* as the eval loop's handler would take it */
    ck_assert_int_eq(vm_handle_pending(T), -1);
    ck_assert_str_eq(order, "SFCY");
    ck_assert_uint_eq(at_gc[2], n0);
    ck_assert_uint_eq(at_gc[3], n0 + 1);
    ck_assert_uint_eq(IN->ncollections, n0 + 1);
    ck_assert_ptr_eq(AS_EXC(T->exc), async);
    ck_assert_uint_eq(BITS(T) & ALL_REASONS, 0);
}
END_TEST

/* Likewise a signal handler that raises: the pending call, GC, GIL drop and the async
 * exception wait for the next call. */
START_TEST(failing_signal_handler_stops_the_pass)
{
    ck_assert_int_eq(rt_pending_add_main(call_ok, (void *)(intptr_t)'C'), 0);
    vm_exc *async = arm_the_rest();
    size_t n0 = IN->ncollections;
    signal_fails = 1;

    ck_assert_int_eq(vm_handle_pending(T), -1);
    ck_assert_str_eq(order, "S");
    ck_assert_ptr_eq(AS_EXC(T->exc)->cls, EXC(T)->key_error);
    ck_assert_uint_eq(IN->ncollections, n0);
    ck_assert_int_eq(gil_events, 0);
    ck_assert_ptr_eq(atomic_load(&T->base.async_exc), async);
    uint32_t left = RT_CALLS_TO_DO | RT_GC_SCHEDULED | RT_GIL_DROP_REQUEST | RT_ASYNC_EXCEPTION;
    ck_assert_uint_eq(BITS(T) & left, left);

    T->exc = V_UNDEF;
    signal_fails = 0;
    ck_assert_int_eq(vm_handle_pending(T), -1);
    ck_assert_str_eq(order, "SCY");                     /* the signal ran once */
    ck_assert_uint_eq(IN->ncollections, n0 + 1);
    ck_assert_ptr_eq(AS_EXC(T->exc), async);
    ck_assert_uint_eq(BITS(T) & ALL_REASONS, 0);
}
END_TEST

Suite *suite_poll(void)
{
    Suite *s = suite_create("poll");
    TCase *tc = tcase_create("order");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, reasons_run_in_cpython_order);
    tcase_add_test(tc, failing_pending_call_stops_the_pass);
    tcase_add_test(tc, failing_signal_handler_stops_the_pass);
    suite_add_tcase(s, tc);
    return s;
}
