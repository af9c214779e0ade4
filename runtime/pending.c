/* SPDX-License-Identifier: MIT */
/* Pending calls [ceval_gil.c: _PyEval_AddPendingCall, make_pending_calls]: C functions
 * queued from any thread to run at a poll of an interpreter's thread.  Called by the VM (its
 * poll handler and builtins), by the embedding API, and by gil.c when a thread takes the GIL. */

/* Notes

   Two kinds of queue, both rt_pending rings of (function, argument) pairs:
   - one per interpreter (in->pending, capacity 300): any thread of that interpreter runs
     it, at most 100 calls per pass, so a call that queues another cannot keep a thread in
     its poll forever; what is left re-arms RT_CALLS_TO_DO for the next poll;
   - one for the whole runtime (rt_main_runtime.pending_main, capacity 32), which only the
     main thread of the main interpreter runs, draining it completely.
   The runtime stores a C function pointer and an opaque argument, nothing else: the VM
   wraps a bytecode function and its arguments in an argument of its own (and roots it).

   Adding.  rt_pending_add and rt_pending_add_main work from any thread, holding a GIL or
   not (the queue has its own mutex), and return -1 when the queue is full; they raise
   nothing and never block for long.  They must not be called from a signal handler (the
   mutex is not async-signal-safe); signals have their own path (signals.c).  After queueing
   they set RT_CALLS_TO_DO where it will be seen: for the main-thread queue, on the main
   thread state; for an interpreter's queue, on the GIL holder if it belongs to that
   interpreter (read under the GIL's mutex, so the holder cannot go away).  If nobody of the
   interpreter holds the GIL, the next thread of it that takes the GIL sets its own bit
   (rt_pending_note_take), as CPython's update_eval_breaker_for_thread.

   Running.  rt_pending_run is the RT_CALLS_TO_DO handler; it runs holding the GIL.  One
   thread per interpreter at a time: `handling` names it.  A second thread that comes by
   moves the bit to the handling thread and returns; a call that polls (it runs bytecode)
   finds itself handling and returns too, so calls never nest.  The bit is cleared before
   the first call, so a call queued meanwhile re-arms it.  Each call is popped under the
   mutex and run without it.  The first call that fails stops the pass: the poll raises its
   exception and the bit stays set, so the calls behind it run at a later poll.

   Invariants: 0 <= npending <= cap; calls[(first + i) % cap] for i < npending are queued
   in order; handling != NULL only while that thread is inside rt_pending_run.  Lock order:
   a queue's mutex is never held while taking another lock, except by fork.c, which takes
   HEAD_LOCK, then every interpreter's queue mutex, then the main-thread queue's. */

#include "internal.h"

void rt_pending_init(rt_pending *p, int32_t cap, int32_t maxloop)
{
    RT_MUST(pthread_mutex_init(&p->mutex, NULL));
    p->handling = NULL;
    atomic_init(&p->npending, 0);
    p->cap = cap;
    p->maxloop = maxloop;
    p->first = 0;
}

void rt_pending_fini(rt_pending *p)
{
    RT_MUST(pthread_mutex_destroy(&p->mutex));
    atomic_store(&p->npending, 0);
}

static int npending(const rt_pending *p)
{
    return atomic_load_explicit(&p->npending, memory_order_relaxed);
}

static int push(rt_pending *p, rt_pending_fn fn, void *arg)
{
    RT_MUST(pthread_mutex_lock(&p->mutex));
    int32_t n = npending(p);
    int ok = n < p->cap;
    if (ok) {
        int32_t i = (p->first + n) % p->cap;
        p->calls[i].fn = fn;
        p->calls[i].arg = arg;
        atomic_store_explicit(&p->npending, n + 1, memory_order_relaxed);
    }
    RT_MUST(pthread_mutex_unlock(&p->mutex));
    return ok ? 0 : -1;
}

/* Pops the oldest call into *fn, *arg; returns 0, or -1 if the queue is empty. */
static int pop(rt_pending *p, rt_pending_fn *fn, void **arg)
{
    RT_MUST(pthread_mutex_lock(&p->mutex));
    int32_t n = npending(p);
    if (n > 0) {
        *fn = p->calls[p->first].fn;
        *arg = p->calls[p->first].arg;
        p->first = (p->first + 1) % p->cap;
        atomic_store_explicit(&p->npending, n - 1, memory_order_relaxed);
    }
    RT_MUST(pthread_mutex_unlock(&p->mutex));
    return n > 0 ? 0 : -1;
}

/* Sets `bit` on the GIL holder if it is a thread of `in` [signal_active_thread]. */
static void signal_active_thread(rt_interp *in, uint32_t bit)
{
    rt_gil *gil = in->gil;
    RT_MUST(pthread_mutex_lock(&gil->mutex));
    if (atomic_load_explicit(&gil->locked, memory_order_relaxed)) {
        rt_thread *holder = atomic_load_explicit(&gil->last_holder, memory_order_relaxed);
        if (holder && holder->interp == in)
            rt_breaker_set(&holder->eval_breaker, bit);
    }
    RT_MUST(pthread_mutex_unlock(&gil->mutex));
}

int rt_pending_add(rt_interp *in, rt_pending_fn fn, void *arg)
{
    if (push(&in->pending, fn, arg))
        return -1;
    signal_active_thread(in, RT_CALLS_TO_DO);
    return 0;
}

int rt_pending_add_main(rt_pending_fn fn, void *arg)
{
    if (push(&rt_main_runtime.pending_main, fn, arg))
        return -1;
    rt_thread *m = atomic_load(&rt_main_runtime.main_tstate);
    if (m)
        rt_breaker_set(&m->eval_breaker, RT_CALLS_TO_DO);
    return 0;
}

int rt_pending_count(const rt_thread *t)
{
    int n = npending(&t->interp->pending);
    if (rt_thread_is_main(t))
        n += npending(&rt_main_runtime.pending_main);
    return n;
}

void rt_pending_note_take(rt_thread *t)
{
    if (rt_pending_count(t) > 0)
        rt_breaker_set(&t->eval_breaker, RT_CALLS_TO_DO);
}

/* Runs up to `maxloop` calls (all if 0) on `t`; -1 at the first failure. */
static int run_queue(rt_thread *t, rt_pending *p)
{
    int32_t max = p->maxloop ? p->maxloop : p->cap;
    for (int32_t i = 0; i < max; i++) {
        rt_pending_fn fn;
        void *arg;
        if (pop(p, &fn, &arg))
            return 0;
        t->stats.pending_calls++;
        if (rt_main_runtime.hooks.async_event)
            rt_main_runtime.hooks.async_event(t, RT_EV_PENDING_CALL, 0);
        if (fn(arg) != 0)
            return -1;
    }
    return 0;
}

int rt_pending_run(rt_thread *t)
{
    rt_pending *p = &t->interp->pending;
    RT_MUST(pthread_mutex_lock(&p->mutex));
    if (p->handling) {
        /* Someone (maybe `t` itself, further out) is running the calls: leave it to them. */
        rt_breaker_set(&p->handling->eval_breaker, RT_CALLS_TO_DO);
        rt_breaker_clear(&t->eval_breaker, RT_CALLS_TO_DO);
        RT_MUST(pthread_mutex_unlock(&p->mutex));
        return 0;
    }
    p->handling = t;
    RT_MUST(pthread_mutex_unlock(&p->mutex));

    rt_breaker_clear(&t->eval_breaker, RT_CALLS_TO_DO);
    int rc = run_queue(t, p);
    if (rc == 0 && rt_thread_is_main(t))
        rc = run_queue(t, &rt_main_runtime.pending_main);
    if (rc != 0 || rt_pending_count(t) > 0)
        rt_breaker_set(&t->eval_breaker, RT_CALLS_TO_DO);

    RT_MUST(pthread_mutex_lock(&p->mutex));
    p->handling = NULL;
    RT_MUST(pthread_mutex_unlock(&p->mutex));
    return rc;
}
