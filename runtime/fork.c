/* SPDX-License-Identifier: MIT */
/* fork() support [posixmodule.c: PyOS_BeforeFork, PyOS_AfterFork_Parent/_Child;
 * pystate.c: _PyRuntimeState_ReInitThreads].  Called by the VM's fork builtin.
 *
 * fork() copies only the calling thread.  Every lock another thread held at that moment
 * stays locked in the child, forever, and every condvar keeps waiters that do not exist.  So
 * the forking thread, holding its GIL (no other thread of its interpreter runs code), takes
 * the runtime's own locks before fork() (HEAD_LOCK, then the pending queues' mutexes): the
 * child inherits lists and queues in a consistent state and unlocks them.  The GIL itself
 * is re-created in the child, held by the forking thread, because other threads may have
 * been inside its mutex or waiting on its condvars.  The child then makes the forking thread
 * the main thread, forgets signals that were meant for the parent and deletes every other
 * thread state and every sub-interpreter. */

#include "internal.h"

static void lock_queues(void)
{
    for (rt_interp *in = rt_main_runtime.interps; in; in = in->next)
        RT_MUST(pthread_mutex_lock(&in->pending.mutex));
    RT_MUST(pthread_mutex_lock(&rt_main_runtime.pending_main.mutex));
}

static void unlock_queues(void)
{
    RT_MUST(pthread_mutex_unlock(&rt_main_runtime.pending_main.mutex));
    for (rt_interp *in = rt_main_runtime.interps; in; in = in->next)
        RT_MUST(pthread_mutex_unlock(&in->pending.mutex));
}

void rt_fork_before(rt_thread *t)
{
    (void)t;
    rt_head_lock();
    lock_queues();
}

void rt_fork_after_parent(rt_thread *t)
{
    (void)t;
    unlock_queues();
    rt_head_unlock();
}

rt_status rt_fork_after_child(rt_thread *t)
{
    rt_runtime *rt = &rt_main_runtime;
    rt_sched_after_fork();          /* the child runs uncontrolled */
    rt_breaker_clear(&t->eval_breaker, RT_SCHED);
    unlock_queues();
    rt_head_unlock();
    if (t->interp != rt->main_interp)
        return RT_STATUS_ERR("fork() is supported only from the main interpreter");

    rt->main_thread = pthread_self();
    t->os_ident = rt->main_thread;
    rt->main_tstate = t;
    rt_gil_after_fork(t->interp->gil, t);
    for (rt_interp *in = rt->interps; in; in = in->next) {
        in->pending.handling = NULL;
        if (in != rt->main_interp && in->gil == &in->own)
            rt_gil_after_fork(&in->own, NULL);
    }
    rt->pending_main.handling = NULL;
    rt_signals_after_fork(t);

    /* Sub-interpreters first (their threads are gone; a shared GIL is main's, held by us). */
    for (;;) {
        rt_interp *in = rt->interps;
        while (in && in == rt->main_interp)
            in = in->next;
        if (in == NULL)
            break;
        rt_interp_free(in);
    }
    rt_thread_delete_all_but(t->interp, t);
    return RT_STATUS_OK;
}
