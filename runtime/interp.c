/* SPDX-License-Identifier: MIT */
/* Interpreter states [pystate.c, PyInterpreterState]: creation with the next id, own or
 * shared GIL, switch interval, deletion.  Called by the VM and by lifecycle.c. */
#include <stdlib.h>

#include "internal.h"

rt_interp *rt_interp_create(const rt_interp_config *config, size_t interp_size,
                            size_t thread_size)
{
    if (interp_size < sizeof(rt_interp) || thread_size < sizeof(rt_thread))
        return NULL;
    rt_interp *in = calloc(1, interp_size);
    if (in == NULL)
        return NULL;
    in->config = config ? *config : RT_INTERP_CONFIG_ISOLATED;
    in->thread_size = thread_size;
    in->recursion_limit = RT_RECURSION_LIMIT;
    rt_pending_init(&in->pending, RT_PENDING_CAP, RT_PENDING_MAXLOOP);

    rt_runtime *rt = &rt_main_runtime;
    rt_head_lock();
    if (rt->main_interp == NULL)
        in->config.own_gil = 1;             /* the first interpreter is main */
    if (in->config.own_gil) {
        rt_gil_init(&in->own);
        in->gil = &in->own;
    } else {
        in->gil = rt->main_interp->gil;
    }
    in->id = rt->next_interp_id++;
    in->next = rt->interps;
    rt->interps = in;
    if (rt->main_interp == NULL)
        rt->main_interp = in;
    rt_head_unlock();
    return in;
}

rt_interp *rt_interp_new(const rt_interp_config *config, size_t interp_size, size_t thread_size)
{
    if (!rt_main_runtime.initialized)
        return NULL;
    return rt_interp_create(config, interp_size, thread_size);
}

void rt_interp_free(rt_interp *in)
{
    rt_runtime *rt = &rt_main_runtime;
    atomic_store(&in->finalizing, 1);
    if (in->gil == &in->own)
        rt_gil_fini(&in->own);
    rt_thread_delete_all_but(in, NULL);
    if (rt->hooks.interp_clear)
        rt->hooks.interp_clear(in);

    rt_head_lock();
    rt_interp **p = &rt->interps;
    while (*p != in)
        p = &(*p)->next;
    *p = in->next;
    if (rt->main_interp == in)
        rt->main_interp = NULL;
    rt_stats_free_retired(in);
    rt_head_unlock();
    rt_pending_fini(&in->pending);
    free(in);
}

void rt_interp_delete(rt_interp *in)
{
    if (in == rt_main_runtime.main_interp)
        RT_FATAL("cannot delete the main interpreter");
    rt_thread *cur = rt_thread_current();
    if (cur && cur->interp == in)
        RT_FATAL("cannot delete the current interpreter");
    rt_interp_free(in);
}

rt_interp *rt_interp_main(void)
{
    return rt_main_runtime.main_interp;
}

rt_interp *rt_interp_find(int64_t id)
{
    rt_head_lock();
    rt_interp *in = rt_main_runtime.interps;
    while (in && in->id != id)
        in = in->next;
    rt_head_unlock();
    return in;
}

int rt_interp_has_threads(rt_interp *in)
{
    rt_head_lock();
    int has = in->threads != NULL;
    rt_head_unlock();
    return has;
}

void rt_interp_id_incref(rt_interp *in)
{
    atomic_fetch_add(&in->id_refcount, 1);
}

int64_t rt_interp_id_decref(rt_interp *in)
{
    return atomic_fetch_sub(&in->id_refcount, 1) - 1;
}

int rt_interp_set_switch_interval(rt_interp *in, uint64_t us)
{
    if (us == 0)
        return -1;
    atomic_store_explicit(&in->gil->interval_us, us, memory_order_relaxed);
    return 0;
}

uint64_t rt_interp_switch_interval(rt_interp *in)
{
    return atomic_load_explicit(&in->gil->interval_us, memory_order_relaxed);
}

void rt_interp_set_breaker(rt_interp *in, uint32_t bits)
{
    rt_head_lock();                 /* the thread list, and no thread created meanwhile */
    atomic_fetch_or(&in->sticky_breaker, bits);
    for (rt_thread *t = in->threads; t; t = t->next)
        rt_breaker_set(&t->eval_breaker, bits);
    rt_head_unlock();
}

void rt_interp_clear_breaker(rt_interp *in, uint32_t bits)
{
    rt_head_lock();
    atomic_fetch_and(&in->sticky_breaker, ~bits);
    for (rt_thread *t = in->threads; t; t = t->next)
        rt_breaker_clear(&t->eval_breaker, bits);
    rt_head_unlock();
}
