/* SPDX-License-Identifier: MIT */
/* The runtime singleton [_PyRuntime] and its lifecycle: init, finalize, the finalizing
 * thread; plus rt_fatal and the clock.  Called by the VM's init and exit paths. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

rt_runtime rt_main_runtime;

_Noreturn void rt_fatal(const char *func, const char *msg)
{
    fprintf(stderr, "gilvm: fatal error in %s: %s\n", func, msg);
    fflush(stderr);
    abort();
}

void rt_head_lock(void)
{
    RT_MUST(pthread_mutex_lock(&rt_main_runtime.mutex));
}

void rt_head_unlock(void)
{
    RT_MUST(pthread_mutex_unlock(&rt_main_runtime.mutex));
}

rt_status rt_runtime_init(size_t interp_size, size_t thread_size, const rt_hooks *hooks)
{
    rt_runtime *rt = &rt_main_runtime;
    if (rt->initialized)
        return RT_STATUS_ERR("runtime is already initialized");
    if (interp_size < sizeof(rt_interp) || thread_size < sizeof(rt_thread))
        return RT_STATUS_ERR("interpreter or thread size smaller than the runtime's");
    if (rt_thread_current() != NULL)
        return RT_STATUS_ERR("a thread state is current on this thread");

    if (pthread_mutex_init(&rt->mutex, NULL) != 0)
        return RT_STATUS_ERR("cannot create the runtime mutex");
    rt->hooks = hooks ? *hooks : (rt_hooks){0};
    rt->interps = rt->main_interp = NULL;
    rt->next_interp_id = 0;
    rt->main_thread = pthread_self();
    rt->main_tstate = NULL;
    atomic_fetch_add(&rt->epoch, 1);        /* bindings from an earlier run are stale */
    atomic_store(&rt->finalizing, NULL);
    rt_pending_init(&rt->pending_main, RT_PENDING_MAIN_CAP, 0);

    rt_interp_config config = RT_INTERP_CONFIG_MAIN;
    rt_interp *in = rt_interp_create(&config, interp_size, thread_size);
    rt_thread *t = in ? rt_thread_new(in, RT_WHENCE_INIT) : NULL;
    if (t == NULL) {
        if (in)
            rt_interp_free(in);
        rt_pending_fini(&rt->pending_main);
        pthread_mutex_destroy(&rt->mutex);
        return RT_STATUS_ERR("out of memory");
    }
    rt_thread_bind(t);
    rt->main_tstate = t;
    rt->initialized = 1;
    rt_signals_init(t);
    rt_thread_attach(t);
    return RT_STATUS_OK;
}

int rt_runtime_set_finalizing(rt_thread *t)
{
    rt_thread *expected = NULL;
    if (atomic_compare_exchange_strong(&rt_main_runtime.finalizing, &expected, t))
        return 0;
    return expected == t ? 0 : -1;
}

/* Asks every thread but `keep` to stop at its next poll. */
static void stop_other_threads(rt_thread *keep)
{
    rt_head_lock();
    for (rt_interp *in = rt_main_runtime.interps; in; in = in->next)
        for (rt_thread *t = in->threads; t; t = t->next)
            if (t != keep)
                rt_breaker_set(&t->eval_breaker, RT_EVAL_PLEASE_STOP);
    rt_head_unlock();
}

/* Returns the newest interpreter other than main, or NULL. */
static rt_interp *some_subinterp(void)
{
    rt_head_lock();
    rt_interp *in = rt_main_runtime.interps;
    while (in && in == rt_main_runtime.main_interp)
        in = in->next;
    rt_head_unlock();
    return in;
}

rt_status rt_runtime_finalize(void)
{
    rt_runtime *rt = &rt_main_runtime;
    if (!rt->initialized)
        return RT_STATUS_ERR("runtime is not initialized");
    rt_thread *t = rt_thread_current();
    if (t == NULL || t->interp != rt->main_interp)
        return RT_STATUS_ERR("caller must be attached to the main interpreter");
    if (rt_runtime_set_finalizing(t) < 0)
        return RT_STATUS_ERR("another thread is finalizing the runtime");

    /* From here the signal handler touches no thread state; dispositions are restored. */
    rt_signals_fini();
    stop_other_threads(t);
    /* Before any thread state is freed: waiters of main's GIL (also those of sub-interpreters
     * sharing it) leave and exit, ordered before the frees by the GIL's mutex. */
    rt_gil_evict(rt->main_interp->gil);
    for (rt_interp *in; (in = some_subinterp()) != NULL;)
        rt_interp_free(in);

    rt_interp *main_interp = rt->main_interp;
    rt_thread_delete_all_but(main_interp, t);
    rt_thread_detach(t);
    rt_thread_delete(t);
    rt->main_tstate = NULL;
    rt_interp_free(main_interp);            /* the GIL last: waits for its waiters to exit */

    rt->initialized = 0;
    rt_pending_fini(&rt->pending_main);
    RT_MUST(pthread_mutex_destroy(&rt->mutex));
    /* rt->finalizing stays set: a daemon thread that wakes up later must still exit. */
    return RT_STATUS_OK;
}
