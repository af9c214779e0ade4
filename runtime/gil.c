/* SPDX-License-Identifier: MIT */
/* The GIL: CPython 3.14's "new GIL" (Python/ceval_gil.c, FORCE_SWITCHING) with a FIFO
 * queue of waiters, a convoy fix and wake-ups deferred to the release.  Called by thread.c
 * (attach, detach, yield), interp.c (create, destroy) and the VM's blocking objects
 * (rt_gil_defer); the eval loop only ever sees RT_GIL_DROP_REQUEST. */

/* Notes

   The GIL is a boolean, `locked`, guarded by `mutex`.  A thread holds it between
   rt_gil_take and rt_gil_drop; `last_holder` names the holder while `locked` is set, and
   the last one after.  `switch_number` counts takes by a thread other than last_holder.

   Timed handoff, as CPython.  A thread that finds the GIL locked waits one switch interval.
   If the wait timed out, the GIL is still locked and switch_number did not move, the holder
   has had a whole interval: the waiter sets RT_GIL_DROP_REQUEST in the holder's
   eval_breaker.  The holder sees the bit at its next poll (RESUME, JUMP_BACKWARD) and calls
   rt_gil_yield.  The interval is a target, not a bound: a holder that does not poll is
   never interrupted.

   Forced switching, as CPython.  A holder that drops *because it was asked* waits on
   switch_cond until last_holder changed, i.e. until another thread really took the GIL,
   and counts a forced switch.  A voluntary drop (detach before a blocking call) never
   waits.

   Beyond CPython 1: FIFO.  In CPython every waiter sleeps on the one `cond` and whoever
   wins the mutex after a release gets the GIL; that can be the thread that just released
   it, or any waiter, with no bound on how long one thread starves.  Here each waiter
   queues a node (struct rt_gil_waiter, on its own stack, with its own condvar) and only the
   head of the queue may take the GIL.  A newcomer takes it at once only when it is free and
   nobody queues; otherwise it joins the tail, so a thread that releases and re-takes
   cannot jump ahead of threads already waiting.  Only the head does the timed wait and
   sets drop requests, so each holder gets one interval from the moment the next thread
   starts waiting for it; the others sleep untimed until they become head.  A release
   signals only the head (no thundering herd); a take signals the new head so that its
   interval starts.  With N busy threads this is round robin: each gets 1/N.  The GIL's
   own `cond` is left to teardown: releases and departures signal it while `closing`.

   Beyond CPython 2: the convoy fix (bpo-7946).  A thread coming back from a blocking call
   or a sleep (rt_thread_attach_urgent) is urgent if it was detached at least as long as
   its last hold: it queues ahead of non-urgent waiters (behind earlier urgent ones) and,
   once head, sets the drop request at once instead of after an interval.  An I/O thread
   that sleeps 1 ms thus runs within one poll of the CPU thread instead of 5 ms later.  The
   condition keeps the priority for threads that use at most half of their wall time: a
   busy thread that blocks briefly between long holds stays in FIFO order and cannot
   starve the others.

   Invariants (under `mutex`):
   - locked => last_holder is the holder, which is attached, so it cannot be freed;
   - only the queue head takes the GIL once someone queues; the queue is urgent-first,
     FIFO within each class; nwaiting == length of queue;
   - the drop-request bit is cleared by its owner when it takes or drops the GIL; a
     request is counted by the waiter that set the bit, not by those that found it set.
   Lock order: mutex, then switch_mutex.  A dropper waits on switch_cond while
   last_holder == itself and nwaiting > 0; takes (which change last_holder) and waiters that
   leave the queue to exit (which change nwaiting) broadcast switch_cond under
   switch_mutex, so the dropper cannot miss its wake-up.

   Who may call what:
   - rt_gil_take: a thread without the GIL, with a thread state of the GIL's interpreter
     that no other OS thread uses.  It ends the OS thread (rt_thread_exit) when another is
     finalizing the runtime (CPython's tstate_must_exit); it then touches neither `t` nor
     its interpreter, which may already be freed, and leaves the queue first.
   - rt_gil_drop: the holder only; once it has released, it touches only the GIL (whose
     teardown waits for droppers in the forced-switch wait: nswitching) and runs the
     deferred calls it copied out of `t` before, never `t`, so the caller must write t's
     fields before calling it.  Hold statistics and the hook run
     before the release; wait statistics, switch and drop-request counts and the hook run
     after the take; so a thread writes its stats only while holding the GIL.
   - eval_breaker bits may be set by anyone at any time; a waiter sets the holder's bit
     under `mutex` while `locked`, which is when the holder cannot go away.
   - rt_gil_defer: the holder, for itself (its calls are thread-local); the calls must not
     take the GIL.  rt_gil_defer_barrier: any thread, with or without a GIL.
   - rt_gil_evict (finalization, caller may hold the GIL) and rt_gil_fini (caller does
     not hold it): only when every thread that may wait must exit; both return once the
     queue is empty, fini also once the holder released.  Finalization evicts before it
     frees thread states, so the states' last readers are ordered before the free by
     `mutex`.  A thread that passed the entry check of rt_gil_take just before finalization
     began and is preempted before it reads t->interp may still read freed memory; CPython
     has the same window (bpo-39877).

   Beyond CPython 3: signals.  A main thread with RT_SIGNALS_PENDING set is urgent when it
   comes to take the GIL, and once head it asks the holder to drop at once.  The signal
   handler itself asks the holder to drop (signals.c); the drop then moves the waiter whose
   RT_SIGNALS_PENDING is set (only the main thread's can be) to the head of the queue, and a
   thread taking the GIL while such a waiter queues asks itself to drop at its next poll.
   So the main thread runs its handler one poll of the holder after the signal, not one
   interval or a whole queue later (bench/signal_latency).

   Beyond CPython 4: wake-ups deferred to the release.  In a handoff (bench/pingpong: put
   on a queue, then block on another) the consumer woken by the put finds the GIL still
   held by the producer, which is a microsecond from releasing it.  When both threads share
   a CPU the woken consumer preempts the producer, queues, and, being urgent, asks for a
   drop, which the producer obeys at its next poll with a forced switch: 5.5 context
   switches a round trip where 2 would do.  So the VM defers such a wake-up with
   rt_gil_defer (to a small thread-local list of the holder's) and rt_gil_drop runs them
   right after the release, after unlocking `mutex` (a thread woken under it would block on
   it at once): the consumer finds the GIL free.  A producer that keeps the GIL instead is
   reminded by its own RT_GIL_DEFERRED bit: at each poll rt_gil_defer_poll checks the clock,
   and the first poll RT_GIL_DEFER_US (50 us, at most one interval) after the first
   deferral runs the calls, holding the GIL; the consumer then asks for a drop as any
   urgent waiter.  A drop (asked for or not) runs them at the release and clears the bit.
   The calls run without the GIL, so what they touch (a queue's condvar) could be
   freed by the next holder meanwhile: the dropper counts itself in `nflushing` before the
   release, and rt_gil_defer_barrier, called before such a free, waits until it is zero.
   Measured alternatives (docs/performance.md): a short timed grace before an urgent waiter
   asks costs a timer reprogramming per wait (~6 us in this KVM guest), and spinning or
   yielding for the GIL leaves the early wake-up and its preemption in place.

   Beyond CPython 5: brief detaches.  A native call through FFI releases the GIL around the
   C function, as ctypes does, but most such calls are short (abs, strlen), and a release
   and take cost two lock round trips and three clock reads (~230 ns in this KVM guest,
   where a clock read is ~40 ns): three times the call itself.  So a holder about to call C
   (rt_thread_detach_brief) that sees nobody waiting keeps the GIL and marks itself
   RT_BRIEF_HELD (its `brief` word), with no lock and no clock.  A thread that then comes to
   take the GIL and becomes head of the queue releases it *on the holder's behalf*
   (release_brief_holder, under `mutex`: it claims the holder by a CAS of `brief` to
   RT_BRIEF_RELEASING, closes its hold in the holder's stats, marks it detached, then
   publishes that with RT_BRIEF_RELEASED, which the holder waits for) and takes
   it at once, without an interval or a drop request: for other threads the GIL was
   released when the call began.  Returning, the holder CASes RT_BRIEF_HELD back to
   RT_BRIEF_NONE: if that works, it never lost the GIL; if a waiter released it, it takes
   the GIL as any thread (rt_gil_end_brief).  The holder stores its mark before it reads
   `nwaiting`, and a waiter counts itself in `nwaiting` before it reads the mark (both
   sequentially consistent), so either the holder sees the waiter and releases for real,
   or the waiter sees the mark.  What differs from a release: a hold counts until the GIL
   is taken from the holder rather than until its call began. */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Threads between a release that had deferred calls and the end of those calls, all GILs:
 * rt_gil_defer_barrier waits for none to be left. */
static _Atomic int nflushing;

/* The calling OS thread's deferred calls (rt_gil_defer): only a GIL holder has any, and it
 * runs them when it releases its GIL or at a poll from due_ns on.  Thread-local rather than
 * in rt_thread, whose layout the VM's thread state (and the eval loop) builds on. */
struct rt_deferred {
    void (*fn)(void *);
    void *arg;
};
static _Thread_local struct {
    int n;
    uint64_t due_ns;
    struct rt_deferred calls[RT_GIL_DEFER_MAX];
} deferred;

struct rt_gil_waiter {
    pthread_cond_t cond;            /* signalled when this waiter may have become head */
    struct rt_gil_waiter *next;
    rt_thread *t;                   /* the waiting thread state */
    int urgent;
};

static int is_locked(rt_gil *gil)
{
    return atomic_load_explicit(&gil->locked, memory_order_relaxed);
}

void rt_gil_init(rt_gil *gil)
{
    RT_MUST(pthread_mutex_init(&gil->mutex, NULL));
    RT_MUST(pthread_mutex_init(&gil->switch_mutex, NULL));
    rt_cond_init(&gil->cond);
    rt_cond_init(&gil->switch_cond);
    atomic_init(&gil->locked, 0);
    atomic_init(&gil->last_holder, NULL);
    atomic_init(&gil->switch_number, 0);
    atomic_init(&gil->interval_us, RT_SWITCH_INTERVAL_US);
    atomic_init(&gil->nwaiting, 0);
    gil->queue = NULL;
    gil->closing = 0;
    gil->nswitching = 0;
    gil->initialized = 1;
}

static int release_brief_holder(rt_gil *gil);

/* Wakes the waiters until none is left (they leave only if they must exit) and, if `idle`,
 * until nobody holds the GIL or waits in a forced switch. */
static void drain(rt_gil *gil, int idle)
{
    RT_MUST(pthread_mutex_lock(&gil->mutex));
    gil->closing = 1;
    release_brief_holder(gil);      /* a holder in a foreign call holds it no longer */
    while (gil->queue || (idle && (is_locked(gil) || gil->nswitching))) {
        for (struct rt_gil_waiter *w = gil->queue; w; w = w->next)
            RT_MUST(pthread_cond_signal(&w->cond));
        RT_MUST(pthread_cond_wait(&gil->cond, &gil->mutex));
    }
    RT_MUST(pthread_mutex_unlock(&gil->mutex));
}

void rt_gil_evict(rt_gil *gil)
{
    drain(gil, 0);
}

void rt_gil_fini(rt_gil *gil)
{
    drain(gil, 1);
    RT_MUST(pthread_cond_destroy(&gil->cond));
    RT_MUST(pthread_cond_destroy(&gil->switch_cond));
    RT_MUST(pthread_mutex_destroy(&gil->mutex));
    RT_MUST(pthread_mutex_destroy(&gil->switch_mutex));
    gil->initialized = 0;
}

void rt_gil_after_fork(rt_gil *gil, rt_thread *holder)
{
    uint64_t interval = atomic_load(&gil->interval_us);
    uint64_t switches = atomic_load(&gil->switch_number);
    rt_gil_init(gil);               /* over the old memory: its waiters do not exist here */
    atomic_store(&gil->interval_us, interval);
    atomic_store(&gil->switch_number, switches);
    atomic_store(&gil->locked, holder != NULL);
    atomic_store(&gil->last_holder, holder);
    atomic_store(&nflushing, 0);    /* the threads that were running deferred calls are gone */
}

static void broadcast_switch(rt_gil *gil)
{
    RT_MUST(pthread_mutex_lock(&gil->switch_mutex));
    RT_MUST(pthread_cond_broadcast(&gil->switch_cond));
    RT_MUST(pthread_mutex_unlock(&gil->switch_mutex));
}

/* Urgent waiters go behind the urgent ones already queued; the others at the tail. */
static void enqueue(rt_gil *gil, struct rt_gil_waiter *w)
{
    struct rt_gil_waiter **p = &gil->queue;
    while (*p && (!w->urgent || (*p)->urgent))
        p = &(*p)->next;
    w->next = *p;
    *p = w;
    atomic_fetch_add_explicit(&gil->nwaiting, 1, memory_order_relaxed);
}

/* Unlinks `w`; if the head changed, wakes the new head so that its interval starts. */
static void dequeue(rt_gil *gil, struct rt_gil_waiter *w)
{
    struct rt_gil_waiter **p = &gil->queue;
    while (*p != w)
        p = &(*p)->next;
    *p = w->next;
    atomic_fetch_sub_explicit(&gil->nwaiting, 1, memory_order_relaxed);
    if (p == &gil->queue && gil->queue)
        RT_MUST(pthread_cond_signal(&gil->queue->cond));
}

static int signal_pending(rt_thread *t)
{
    return (rt_breaker_load(&t->eval_breaker) & RT_SIGNALS_PENDING) != 0;
}

/* Returns the queued waiter with a signal to handle (the main thread), or NULL; under mutex. */
static struct rt_gil_waiter *signalled_waiter(rt_gil *gil)
{
    if (!rt_signals_tripped())
        return NULL;
    struct rt_gil_waiter *w = gil->queue;
    while (w && !signal_pending(w->t))
        w = w->next;
    return w;
}

/* Moves the waiter with a signal to handle to the head of the queue; under mutex. */
static void promote_signalled(rt_gil *gil)
{
    struct rt_gil_waiter *w = signalled_waiter(gil);
    if (w == NULL || w == gil->queue)
        return;
    struct rt_gil_waiter **p = &gil->queue;
    while (*p != w)
        p = &(*p)->next;
    *p = w->next;
    w->next = gil->queue;
    w->urgent = 1;
    gil->queue = w;
}

/* Sets the drop request on the holder; counts it if no waiter had asked this holder yet. */
static void request_drop(rt_gil *gil, uint64_t *nreq, uint64_t *first_ns)
{
    rt_thread *holder = atomic_load_explicit(&gil->last_holder, memory_order_relaxed);
    if (holder == NULL)
        return;
    uint32_t old = atomic_fetch_or_explicit(&holder->eval_breaker, RT_GIL_DROP_REQUEST,
                                            memory_order_release);
    if (!(old & RT_GIL_DROP_REQUEST)) {
        if (*nreq == 0)
            *first_ns = rt_now_ns();
        ++*nreq;
    }
}

static void run_deferred(const struct rt_deferred *d, int n)
{
    for (int i = 0; i < n; i++)
        d[i].fn(d[i].arg);
}

/* Leaves the queue and ends the calling OS thread without touching its thread state. */
_Noreturn static void leave_and_exit(rt_gil *gil, struct rt_gil_waiter *w)
{
    dequeue(gil, w);
    broadcast_switch(gil);          /* a dropper may be waiting for us to take */
    if (gil->closing)
        RT_MUST(pthread_cond_signal(&gil->cond));
    RT_MUST(pthread_mutex_unlock(&gil->mutex));
    pthread_cond_destroy(&w->cond);
    rt_thread_exit();
}

/* If the holder is in a brief detach (RT_BRIEF_HELD), releases the GIL on its behalf as
 * rt_gil_drop would (Notes, "Beyond CPython 5") and returns 1; else 0.  Under mutex. */
static int release_brief_holder(rt_gil *gil)
{
    rt_thread *h = atomic_load_explicit(&gil->last_holder, memory_order_relaxed);
    int expected = RT_BRIEF_HELD;
    if (!h || !is_locked(gil) ||
        atomic_load_explicit(&h->brief, memory_order_relaxed) != RT_BRIEF_HELD ||
        !atomic_compare_exchange_strong(&h->brief, &expected, RT_BRIEF_RELEASING))
        return 0;                   /* (the plain load first: no write to h's line per wake) */
    /* `h` is in C until it takes the GIL back through us: its stats are ours to write. */
    uint64_t now = rt_now_ns();
    h->last_hold_ns = rt_stats_close_hold(h, now);
    h->detach_ns = now;
    atomic_store(&h->state, RT_DETACHED);
    rt_breaker_clear(&h->eval_breaker, RT_GIL_DROP_REQUEST);
    atomic_store_explicit(&gil->locked, 0, memory_order_relaxed);
    atomic_store(&h->brief, RT_BRIEF_RELEASED);     /* publishes the writes above to `h` */
    promote_signalled(gil);
    if (gil->queue)
        RT_MUST(pthread_cond_signal(&gil->queue->cond));
    return 1;
}

int rt_gil_hold_briefly(rt_thread *t)
{
    if (deferred.n)
        return 0;                   /* its wake-ups run at a real release */
    atomic_store(&t->brief, RT_BRIEF_HELD);
    if (atomic_load(&t->interp->gil->nwaiting) == 0)
        return 1;
    int expected = RT_BRIEF_HELD;
    if (atomic_compare_exchange_strong(&t->brief, &expected, RT_BRIEF_NONE))
        return 0;                   /* a waiter queued meanwhile: release for real */
    return 1;                       /* it saw the mark and released for us already */
}

int rt_gil_end_brief(rt_thread *t)
{
    int expected = RT_BRIEF_HELD;
    if (atomic_compare_exchange_strong(&t->brief, &expected, RT_BRIEF_NONE))
        return 1;
    /* A waiter claimed us: once it has written our stats (a few instructions under the
     * GIL's mutex), the GIL is free for us to take anew. */
    while (atomic_load(&t->brief) != RT_BRIEF_RELEASED)
        sched_yield();
    atomic_store(&t->brief, RT_BRIEF_NONE);
    return 0;
}

/* Called with gil->mutex held and the GIL busy or others queued; returns as queue head with
 * the GIL free and itself dequeued. */
static void wait_turn(rt_gil *gil, rt_thread *t, int urgent, uint64_t *nreq,
                      uint64_t *first_ns)
{
    struct rt_gil_waiter w = {.urgent = urgent, .t = t};
    rt_cond_init(&w.cond);
    enqueue(gil, &w);
    int asked_at_once = 0;
    for (;;) {
        if (rt_thread_must_exit(t))
            leave_and_exit(gil, &w);
        if (gil->queue != &w) {
            RT_MUST(pthread_cond_wait(&w.cond, &gil->mutex));
            continue;
        }
        if (!is_locked(gil))
            break;
        if (release_brief_holder(gil))
            continue;               /* the holder is in a foreign call: the GIL is free */
        if ((w.urgent && !asked_at_once) || signal_pending(t)) {
            asked_at_once = 1;
            request_drop(gil, nreq, first_ns);
        }
        uint64_t saved = atomic_load_explicit(&gil->switch_number, memory_order_relaxed);
        uint64_t interval = atomic_load_explicit(&gil->interval_us, memory_order_relaxed);
        int timed_out = rt_cond_wait_until(&w.cond, &gil->mutex, rt_now_ns() + interval * 1000);
        /* If we timed out and no switch occurred meanwhile, ask the holder to drop. */
        if (timed_out && is_locked(gil) && gil->queue == &w &&
            atomic_load_explicit(&gil->switch_number, memory_order_relaxed) == saved)
            request_drop(gil, nreq, first_ns);
    }
    dequeue(gil, &w);
    RT_MUST(pthread_cond_destroy(&w.cond));
}

void rt_gil_take(rt_thread *t, int urgent)
{
    int saved_errno = errno;
    uint64_t t0 = rt_now_ns();
    if (rt_thread_must_exit(t))
        rt_thread_exit();
    rt_gil *gil = t->interp->gil;
    if (urgent)
        urgent = t0 - t->detach_ns >= t->last_hold_ns;
    urgent |= signal_pending(t);
    uint64_t nreq = 0, first_req_ns = 0;
    int queued = 0;

    RT_MUST(pthread_mutex_lock(&gil->mutex));
    if (rt_thread_must_exit(t)) {
        RT_MUST(pthread_mutex_unlock(&gil->mutex));
        rt_thread_exit();
    }
    if (is_locked(gil) || gil->queue) {
        queued = 1;
        wait_turn(gil, t, urgent, &nreq, &first_req_ns);
    }

    /* switch_mutex must be held to change last_holder: see rt_gil_drop. */
    RT_MUST(pthread_mutex_lock(&gil->switch_mutex));
    atomic_store_explicit(&gil->locked, 1, memory_order_relaxed);
    int switched = atomic_load_explicit(&gil->last_holder, memory_order_relaxed) != t;
    if (switched) {
        atomic_store_explicit(&gil->last_holder, t, memory_order_relaxed);
        atomic_fetch_add_explicit(&gil->switch_number, 1, memory_order_relaxed);
    }
    RT_MUST(pthread_cond_broadcast(&gil->switch_cond));
    RT_MUST(pthread_mutex_unlock(&gil->switch_mutex));
    rt_breaker_clear(&t->eval_breaker, RT_GIL_DROP_REQUEST);
    if (signalled_waiter(gil))
        rt_breaker_set(&t->eval_breaker, RT_GIL_DROP_REQUEST);
    RT_MUST(pthread_mutex_unlock(&gil->mutex));
    rt_pending_note_take(t);

    /* We hold the GIL: our stats are ours to write. */
    uint64_t now = rt_now_ns();
    rt_stats_record_wait(&t->stats, now - t0);
    t->stats.switches += (uint64_t)switched;
    t->stats.drop_requests += nreq;
    t->hold_start_ns = now;
    void (*hook)(rt_thread *, int, uint64_t, uint64_t) = rt_main_runtime.hooks.gil_event;
    if (hook) {
        if (queued)
            hook(t, RT_GIL_EV_WAIT, t0, now);
        if (nreq)
            hook(t, RT_GIL_EV_DROP_REQUEST, first_req_ns, first_req_ns);
    }
    errno = saved_errno;
}

int rt_gil_drop(rt_thread *t, int asked)
{
    rt_gil *gil = t->interp->gil;
    uint64_t now = rt_now_ns();
    t->last_hold_ns = rt_stats_close_hold(t, now);
    t->detach_ns = now;
    rt_breaker_clear(&t->eval_breaker, RT_GIL_DROP_REQUEST | RT_GIL_DEFERRED);
    struct rt_deferred calls[RT_GIL_DEFER_MAX];
    int ndeferred = deferred.n;
    memcpy(calls, deferred.calls, (size_t)ndeferred * sizeof *calls);
    deferred.n = 0;

    RT_MUST(pthread_mutex_lock(&gil->mutex));
    if (!is_locked(gil) || atomic_load_explicit(&gil->last_holder, memory_order_relaxed) != t)
        RT_FATAL("GIL is not held by this thread state");
    atomic_store_explicit(&gil->locked, 0, memory_order_relaxed);
    if (ndeferred)                  /* while we hold the GIL, so nothing can be freed yet */
        atomic_fetch_add(&nflushing, 1);
    promote_signalled(gil);
    int forced = asked && gil->queue != NULL;
    if (gil->queue)
        RT_MUST(pthread_cond_signal(&gil->queue->cond));
    if (gil->closing)
        RT_MUST(pthread_cond_signal(&gil->cond));
    gil->nswitching += forced;
    RT_MUST(pthread_mutex_unlock(&gil->mutex));
    if (ndeferred) {
        /* After the unlock: a woken thread that runs at once finds the GIL free. */
        run_deferred(calls, ndeferred);
        atomic_fetch_sub_explicit(&nflushing, 1, memory_order_release);
    }
    if (!forced)
        return 0;

    /* Forced switching: do not run again before another thread has taken the GIL. */
    RT_MUST(pthread_mutex_lock(&gil->switch_mutex));
    while (atomic_load_explicit(&gil->last_holder, memory_order_relaxed) == t &&
           atomic_load_explicit(&gil->nwaiting, memory_order_relaxed) > 0)
        RT_MUST(pthread_cond_wait(&gil->switch_cond, &gil->switch_mutex));
    RT_MUST(pthread_mutex_unlock(&gil->switch_mutex));

    /* rt_gil_fini waits for this, so the GIL outlives the wait above. */
    RT_MUST(pthread_mutex_lock(&gil->mutex));
    gil->nswitching--;
    if (gil->closing)
        RT_MUST(pthread_cond_signal(&gil->cond));
    RT_MUST(pthread_mutex_unlock(&gil->mutex));
    return 1;
}

/* Runs the calling thread's deferred calls now. */
static void run_deferred_now(void)
{
    int n = deferred.n;
    deferred.n = 0;
    run_deferred(deferred.calls, n);
}

void rt_gil_defer(rt_thread *t, void (*fn)(void *), void *arg)
{
    if (deferred.n == RT_GIL_DEFER_MAX) {
        fn(arg);
        return;
    }
    if (deferred.n == 0) {
        uint64_t us = atomic_load_explicit(&t->interp->gil->interval_us, memory_order_relaxed);
        deferred.due_ns = rt_now_ns() + (us < RT_GIL_DEFER_US ? us : RT_GIL_DEFER_US) * 1000;
    }
    deferred.calls[deferred.n].fn = fn;
    deferred.calls[deferred.n++].arg = arg;
    rt_breaker_set(&t->eval_breaker, RT_GIL_DEFERRED);         /* the reminder */
}

int rt_gil_deferred_count(void)
{
    return deferred.n;
}

void rt_gil_defer_poll(rt_thread *t)
{
    if (deferred.n > 0 && rt_now_ns() < deferred.due_ns)
        return;
    rt_breaker_clear(&t->eval_breaker, RT_GIL_DEFERRED);
    run_deferred_now();
}

void rt_gil_defer_barrier(void)
{
    run_deferred_now();
    while (atomic_load_explicit(&nflushing, memory_order_acquire))
        sched_yield();
}
