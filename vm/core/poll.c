/* SPDX-License-Identifier: MIT */
/* The poll handler [_Py_HandlePending]: what the eval loop does when it finds a bit set in
 * its thread's eval breaker at RESUME or JUMP_BACKWARD, and what a blocking wait does when
 * it wakes for a signal, a stop request or an asynchronous exception.  Called by eval.c and
 * by vm/lib/wait.c.
 *
 * Notes
 * -----
 * The breaker's reasons are handled here, in this order, which is CPython 3.14's:
 *
 *   1. RT_EVAL_PLEASE_STOP   a thread that must exit (another finalizes the runtime) ends
 *                            at the re-take of rt_gil_yield; for any other it is cleared;
 *      RT_LIMITS             (beyond CPython; sticky: never cleared here) counts the
 *                            instructions run toward the embedder's limit and raises
 *                            LimitExceeded, which no handler catches, once a limit is
 *                            exceeded, at this and every later poll of every thread;
 *   2. RT_SIGNALS_PENDING    bytecode signal handlers (main thread of the main interpreter);
 *   3. RT_CALLS_TO_DO        pending calls (runtime/pending.c: at most 100 per pass);
 *   4. RT_GC_SCHEDULED       a collection, every thread of the interpreter being at a poll
 *                            or detached; then MemoryError if the heap is still over its
 *                            limit, or malloc failed since the last collection;
 *   5. RT_GIL_DROP_REQUEST   drop the GIL and take it back (rt_gil_yield), or, without a
 *      RT_GIL_DEFERRED       request, the holder's deferred wake-ups once due;
 *      RT_SCHED              (beyond CPython; never cleared here) a scheduling point of the
 *                            controlled scheduler, which may run other threads first;
 *   6. RT_ASYNC_EXCEPTION    raise the exception another thread queued for this one.
 *
 * Each bit is cleared before its handler runs.  A handler that raises ends the pass with
 * -1: the eval loop unwinds from the poll's offset, and the reasons after it stay set for
 * the next poll (a failing pending call re-arms CALLS_TO_DO for the calls left; a signal
 * handler that raises leaves the other tripped signals pending).  tests/unit/test_poll.c
 * pins the order. */
#include <inttypes.h>
#include <signal.h>
#include <string.h>

#include "runtime/sched.h"
#include "vm/core/state.h"

/* Runs the bytecode handler of signal `signum`, if it is still a callable. */
static int run_handler(rt_thread *rt, int signum, void *arg)
{
    (void)arg;
    vm_thread *t = (vm_thread *)rt;
    value h = VM_INTERP(t)->signal_handlers[signum];
    if (!vm_callable(h))
        return 0;                   /* reset to SIG_DFL/SIG_IGN after it tripped */
    value sig = V_INT(signum), result;
    t->roots[t->nroots++] = h;      /* signal() inside the handler may drop the last ref */
    int rc = vm_call(t, h, 1, &sig, &result);
    t->nroots--;
    return rc;
}

/* 1 if the main interpreter's SIGINT handler is default_int_handler (only the main thread
 * sets handlers, and it is the caller, swapped out: nothing writes the slot meanwhile). */
static int sigint_is_default(void)
{
    vm_thread *m = vm_main_thread();
    value h = m ? VM_INTERP(m)->signal_handlers[SIGINT] : V_NONE;
    return h.tag == T_NATIVE && strcmp(AS_NATIVE(h)->name, "default_int_handler") == 0;
}

int vm_signals_run(vm_thread *t)
{
    if (!rt_signals_can_handle(&t->base)) {
        rt_breaker_clear(&t->base.eval_breaker, RT_SIGNALS_PENDING);
        /* The main thread's stand-in in another interpreter: Ctrl-C interrupts it. */
        if (rt_signals_is_standin(&t->base) && sigint_is_default() && rt_signal_take(SIGINT))
            return vm_raise_value(t, vm_exc_new(t, EXC(t)->keyboard_interrupt, V_NONE));
        return 0;
    }
    rt_sched_note_uncontrolled("signal");
    return rt_signals_handle(&t->base, run_handler, NULL);
}

/* Runs a pass of t's pending calls; -1 with the exception of the first that failed. */
static int run_pending_calls(vm_thread *t)
{
    if (rt_pending_run(&t->base) == 0)
        return 0;
    if (t->exc.tag != T_EXC)        /* a C pending call failed without raising */
        vm_raise(t, VM_INTERP(t)->exc.runtime_error, "pending call failed");
    return -1;
}

/* Ends `t` if another thread finalizes the runtime (rt_gil_yield's re-take does it). */
static void handle_stop(vm_thread *t)
{
    rt_breaker_clear(&t->base.eval_breaker, RT_EVAL_PLEASE_STOP);
    if (rt_thread_must_exit(&t->base))
        rt_gil_yield(&t->base);
}

/* Counts what `t` ran since its last count toward its interpreter's instruction limit;
 * -1 with LimitExceeded once a limit is exceeded. */
static int check_limits(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    in->limits.executed += t->base.stats.bytecodes - t->limits_counted;
    t->limits_counted = t->base.stats.bytecodes;
    if (in->limits.max_instructions && in->limits.executed > in->limits.max_instructions) {
        int none = VM_LIMIT_NONE;
        atomic_compare_exchange_strong(&in->limits.exceeded, &none, VM_LIMIT_INSTRUCTIONS);
    }
    switch (atomic_load(&in->limits.exceeded)) {
    case VM_LIMIT_INSTRUCTIONS:
        return vm_raise(t, in->exc.limit_exceeded, "instruction limit of %" PRIu64 " exceeded",
                        in->limits.max_instructions);
    case VM_LIMIT_TIME:
        return vm_raise(t, in->exc.limit_exceeded, "time limit of %" PRIu64 " ms exceeded",
                        in->limits.timeout_ms);
    case VM_LIMIT_INTERRUPT:
        return vm_raise(t, in->exc.limit_exceeded, "interrupted");
    default:
        return 0;
    }
}

int vm_handle_pending(vm_thread *t)
{
    rt_breaker *b = &t->base.eval_breaker;
    uint32_t bits = rt_breaker_load(b);
    if (bits & RT_EVAL_PLEASE_STOP)
        handle_stop(t);
    if ((bits & RT_LIMITS) && check_limits(t))
        return -1;
    if ((bits & RT_SIGNALS_PENDING) && vm_signals_run(t))
        return -1;
    if ((bits & RT_CALLS_TO_DO) && run_pending_calls(t))
        return -1;
    if (bits & RT_GC_SCHEDULED) {
        rt_breaker_clear(b, RT_GC_SCHEDULED);
        vm_gc_collect(t);
        if (vm_heap_check(t))
            return -1;
    }
    if (bits & RT_GIL_DROP_REQUEST)
        rt_gil_yield(&t->base);     /* clears the bit; the release runs deferred calls */
    else if (bits & RT_GIL_DEFERRED)
        rt_gil_defer_poll(&t->base);
    if (bits & RT_SCHED)
        rt_sched_poll(&t->base);
    if (bits & RT_ASYNC_EXCEPTION) {
        rt_breaker_clear(b, RT_ASYNC_EXCEPTION);
        void *e = atomic_exchange(&t->base.async_exc, NULL);
        if (e)
            return vm_raise_value(t, V_OBJ(T_EXC, e));
    }
    return 0;
}

int vm_poll_in_wait(vm_thread *t)
{
    uint32_t bits = rt_breaker_load(&t->base.eval_breaker);
    if (bits & RT_EVAL_PLEASE_STOP)
        handle_stop(t);
    if ((bits & RT_LIMITS) && check_limits(t))
        return -1;
    if ((bits & RT_SIGNALS_PENDING) && vm_signals_run(t))
        return -1;
    if (bits & RT_ASYNC_EXCEPTION) {
        rt_breaker_clear(&t->base.eval_breaker, RT_ASYNC_EXCEPTION);
        void *e = atomic_exchange(&t->base.async_exc, NULL);
        if (e)
            return vm_raise_value(t, V_OBJ(T_EXC, e));
    }
    return 0;
}

void vm_pending_finish(vm_thread *t)
{
    /* Bounded: a call that queues itself again must not keep the process alive forever. */
    for (int pass = 0; pass < 10000 && rt_pending_count(&t->base) > 0; pass++)
        if (run_pending_calls(t))
            vm_report_ignored(t, "pending call", V_UNDEF);
}
