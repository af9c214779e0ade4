/* SPDX-License-Identifier: MIT */
/* Thread states [pystate.c]: creation, the interpreter's thread list, the current thread
 * state in TLS, attach/detach/swap, deletion.  Called by the VM and by lifecycle.c. */
#include <stdlib.h>

#include "internal.h"
#include "sched.h"

/* The attached thread state of this OS thread [_Py_tss_tstate]. */
static _Thread_local rt_thread *tss_current;
/* The state this OS thread left in a brief detach (rt_thread_detach_brief), until it attaches
 * again: only then does attach look at the state's `brief` word, so that a thread coming
 * back from an ordinary wait never reads a state that finalization may be freeing. */
static _Thread_local rt_thread *tss_brief;
/* The thread state bound to this OS thread, attached or not [the gilstate TSS], and the
 * runtime epoch it was bound in: a binding left over from before a re-init is stale. */
static _Thread_local rt_thread *tss_bound;
static _Thread_local uint64_t tss_bound_epoch;
/* Set by rt_thread_set_detach_on_exit: the thread is joinable but nobody joins it if the
 * runtime ends it. */
static _Thread_local int tss_detach_on_exit;

rt_thread *rt_thread_new(rt_interp *in, int whence)
{
    rt_thread *t = calloc(1, in->thread_size);
    if (t == NULL)
        return NULL;
    t->interp = in;
    t->whence = whence;
    atomic_init(&t->state, RT_DETACHED);
    t->recursion_limit = in->recursion_limit;
    t->c_recursion_remaining = RT_C_RECURSION_LIMIT;
    t->gilstate_counter = 1;        /* not GILState's to delete: see gilstate.c */
    t->stats.rng = (uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15u;

    rt_head_lock();
    atomic_init(&t->eval_breaker, atomic_load(&in->sticky_breaker));
    t->id = ++in->next_thread_id;
    t->next = in->threads;
    if (in->threads)
        in->threads->prev = t;
    in->threads = t;
    rt_head_unlock();
    return t;
}

void rt_thread_bind(rt_thread *t)
{
    t->os_ident = pthread_self();
    t->bound = 1;
    rt_sched_bind(t);
    if (rt_thread_bound() == NULL) {
        tss_bound = t;
        tss_bound_epoch = atomic_load(&rt_main_runtime.epoch);
    }
}

rt_thread *rt_thread_bound(void)
{
    if (tss_bound && tss_bound_epoch != atomic_load(&rt_main_runtime.epoch))
        tss_bound = NULL;
    return tss_bound;
}

int rt_threads_foreach(int (*fn)(void *arg, rt_thread *t), void *arg)
{
    int r = 0;
    rt_head_lock();
    for (rt_interp *in = rt_main_runtime.interps; in && !r; in = in->next)
        for (rt_thread *t = in->threads; t && !r; t = t->next)
            r = fn(arg, t);
    rt_head_unlock();
    return r;
}

int rt_thread_is_main(const rt_thread *t)
{
    return t != NULL && t == atomic_load(&rt_main_runtime.main_tstate);
}

rt_thread *rt_thread_current(void)
{
    return tss_current;
}

void rt_thread_set_detach_on_exit(void)
{
    tss_detach_on_exit = 1;
}

_Noreturn void rt_thread_exit(void)
{
    if (tss_detach_on_exit)
        pthread_detach(pthread_self());
    pthread_exit(NULL);
}

int rt_thread_must_exit(rt_thread *t)
{
    rt_thread *f = atomic_load_explicit(&rt_main_runtime.finalizing, memory_order_acquire);
    return f != NULL && f != t;
}

/* Runs the hook, retires the stats and frees `t`, already unlinked. */
static void thread_free(rt_thread *t)
{
    rt_interp *in = t->interp;
    if (rt_main_runtime.hooks.thread_clear)
        rt_main_runtime.hooks.thread_clear(t);
    rt_head_lock();
    rt_stats_retire(in, t);
    rt_head_unlock();
    /* A later state allocated at the same address must count as a switch. */
    rt_thread *expected = t;
    atomic_compare_exchange_strong(&in->gil->last_holder, &expected, NULL);
    rt_signals_quiesce();           /* a signal handler may have read last_holder just before */
    if (tss_bound == t)
        tss_bound = NULL;
    free(t);
}

static void unlink_thread(rt_thread *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->interp->threads = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

void rt_thread_delete(rt_thread *t)
{
    if (atomic_load(&t->state) == RT_ATTACHED)
        RT_FATAL("thread state is attached");
    rt_sched_forget(t);
    rt_head_lock();
    unlink_thread(t);
    rt_head_unlock();
    thread_free(t);
}

void rt_thread_delete_all_but(rt_interp *in, rt_thread *keep)
{
    /* Unlink everything under the lock, free outside it, as _PyThreadState_DeleteExcept. */
    rt_head_lock();
    if (keep)
        unlink_thread(keep);        /* first: when `keep` was the head, the rest follow it */
    rt_thread *list = in->threads;
    in->threads = keep;
    rt_head_unlock();
    while (list) {                  /* test_fork_from_worker: keep is the newest state */
        rt_thread *next = list->next;
        thread_free(list);
        list = next;
    }
}

int rt_thread_set_async_exc(rt_interp *in, uint64_t id, void *exc, void **old,
                            void (*wake)(rt_thread *t))
{
    /* Under HEAD_LOCK: threads without the GIL may be deleting states [SetAsyncExc]. */
    rt_head_lock();
    rt_thread *t = in->threads;
    while (t && t->id != id)
        t = t->next;
    if (t) {
        *old = atomic_exchange(&t->async_exc, exc);
        rt_breaker_set(&t->eval_breaker, RT_ASYNC_EXCEPTION);
        if (wake)
            wake(t);
    }
    rt_head_unlock();
    return t != NULL;
}

static void attach(rt_thread *t, int urgent)
{
    if (tss_current != NULL)
        RT_FATAL("a thread state is already current on this OS thread");
    int brief = tss_brief == t;
    tss_brief = NULL;
    /* must_exit first: then `t` may be freed, and rt_gil_take only compares it. */
    if (brief && !rt_thread_must_exit(t) && rt_gil_end_brief(t)) {
        tss_current = t;            /* nobody took the GIL: it is still ours, attached */
        return;
    }
    rt_sched_wait_turn(t);          /* under control: the token first, then a free GIL */
    rt_gil_take(t, urgent);
    tss_current = t;
    atomic_store(&t->state, RT_ATTACHED);
}

/* Everything written to `t` happens before the release: see rt_gil_drop. */
static int detach(rt_thread *t, int asked)
{
    if (tss_current != t)
        RT_FATAL("thread state is not current");
    atomic_store(&t->state, RT_DETACHED);
    tss_current = NULL;
    return rt_gil_drop(t, asked);
}

void rt_thread_delete_current(rt_thread *t)
{
    /* Unlinked while still holding the GIL, so a thread that walks the list holding the GIL
     * (the collector) never sees it half-deleted [PyThreadState_DeleteCurrent]. */
    rt_head_lock();
    unlink_thread(t);
    rt_head_unlock();
    rt_sched_reclaim(t);            /* a swapped-in state gives its lender's slot back */
    struct rt_sched_slot *next = rt_sched_leave(t);    /* picked while we hold the GIL */
    detach(t, 0);
    if (next)
        rt_sched_hand(next);
    thread_free(t);
}

void rt_thread_attach(rt_thread *t)
{
    attach(t, 0);
}

void rt_thread_attach_urgent(rt_thread *t)
{
    attach(t, 1);
}

void rt_thread_detach(rt_thread *t)
{
    detach(t, 0);
}

void rt_thread_detach_brief(rt_thread *t)
{
    if (tss_current != t)
        RT_FATAL("thread state is not current");
    if (rt_gil_hold_briefly(t)) {
        tss_current = NULL;         /* still attached: a waiter detaches it if it must */
        tss_brief = t;
    } else
        detach(t, 0);
}

rt_thread *rt_thread_swap(rt_thread *t)
{
    rt_thread *old = tss_current;
    if (old)
        detach(old, 0);
    if (old && t)
        rt_sched_lend(old, t);      /* under control, t runs in old's turns */
    if (t)
        attach(t, 0);
    return old;
}

void rt_gil_yield(rt_thread *t)
{
    uint64_t dropped_ns = rt_now_ns();
    int forced = detach(t, 1);
    attach(t, 0);
    if (forced) {
        t->stats.forced_switches++;
        if (rt_main_runtime.hooks.gil_event)
            rt_main_runtime.hooks.gil_event(t, RT_GIL_EV_FORCED_SWITCH, dropped_ns, dropped_ns);
    }
}
