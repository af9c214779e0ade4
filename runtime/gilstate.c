/* SPDX-License-Identifier: MIT */
/* GILState [pystate.c: PyGILState_Ensure / PyGILState_Release]: lets threads the VM did not
 * create (native threads, FFI callbacks) run code.  Called by the embedding API (vm/api/embed.c).
 *
 * The thread state a thread uses is the one bound to it (rt_thread_bound).  Its
 * gilstate_counter counts ensures not yet released, plus one for a state that ensure did not
 * create (rt_thread_new starts every state at 1, as CPython's new_threadstate): so only a
 * state made here ever drops to 0, and that is when it is deleted.
 *
 * After finalization has started (or before init), ensure does nothing and returns
 * RT_GILSTATE_UNAVAILABLE: attaching could only end the thread (rt_thread_must_exit).  If
 * finalization starts while ensure waits for the GIL, the thread exits inside the wait, as
 * any thread that attaches late (runtime.h, rt_thread_attach). */

#include "internal.h"
#include "sched.h"

int rt_gilstate_ensure(void)
{
    rt_runtime *rt = &rt_main_runtime;
    rt_thread *t = rt_thread_bound();
    if (t && rt_thread_current() == t) {
        /* Already attached: the runtime cannot be finalized under our feet. */
        t->gilstate_counter++;
        return RT_GILSTATE_LOCKED;
    }
    /* finalizing first: it stays set after finalization, when `initialized` changes. */
    if (atomic_load(&rt->finalizing) != NULL || !rt->initialized)
        return RT_GILSTATE_UNAVAILABLE;
    if (t == NULL) {
        rt_interp *in = rt_interp_main();
        if (in == NULL || (t = rt_thread_new(in, RT_WHENCE_GILSTATE)) == NULL)
            return RT_GILSTATE_UNAVAILABLE;
        rt_thread_bind(t);
        t->gilstate_counter = 0;            /* ours: deleted at the outermost release */
    }
    if (rt_sched_active() && !rt_sched_controls(t))
        rt_sched_foreign(1);            /* counted until its release: see sched.c */
    rt_thread_attach(t);
    t->gilstate_counter++;
    return RT_GILSTATE_UNLOCKED;
}

void rt_gilstate_release(int state)
{
    if (state == RT_GILSTATE_UNAVAILABLE)
        return;
    rt_thread *t = rt_thread_bound();
    if (t == NULL)
        RT_FATAL("releasing a GILState, but this thread has no thread state");
    if (rt_thread_current() != t)
        RT_FATAL("releasing a GILState, but this thread's state is not attached");
    if (--t->gilstate_counter < 0)
        RT_FATAL("GILState released more often than ensured");
    if (state == RT_GILSTATE_UNLOCKED && rt_sched_active() && !rt_sched_controls(t))
        rt_sched_foreign(-1);
    if (t->gilstate_counter == 0)
        rt_thread_delete_current(t);        /* releases the GIL; unbinds */
    else if (state == RT_GILSTATE_UNLOCKED)
        rt_thread_detach(t);
}

int rt_gilstate_check(void)
{
    rt_thread *t = rt_thread_bound();
    return t != NULL && rt_thread_current() == t;
}
