/* SPDX-License-Identifier: MIT */
/* Threads in bytecode: thread objects, starting and joining them, thread identities and
 * asynchronous exceptions [Modules/_threadmodule.c, PyThreadState_SetAsyncExc].
 *
 * A running thread keeps its thread object alive through vm_thread.self (a GC root); the
 * thread object keeps its function and arguments alive.  Its `state` is read without the
 * GIL by joiners, so it is guarded by the object's wait queue mutex.
 *
 * A thread is counted in vm_proc.nstarting from its creation until it is bound to its thread
 * state, and in vm_proc.nexiting from when a joiner may see it finished until its state is
 * deleted: in those windows it runs without the GIL, perhaps inside the allocator, so fork
 * and finalization wait them out (vm_wait_settled, vm_wait_quiesce). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/sched.h"
#include "vm/core/output.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/process.h"

enum { TH_NEW, TH_RUNNING, TH_FINISHED };

typedef struct {
    vm_waitable base;           /* wq guards state */
    int state;                  /* TH_* */
    int daemon;
    uint64_t ident;             /* thread state id, 0 before start */
    vm_thread *ts;              /* while running */
    value func, args;
    vm_os_thread *os;           /* its OS thread's record, until the thread starts */
} vm_thread_obj;

/* Takes the records of finished threads (all if `all`) off the list; under vm_proc.mu. */
static vm_os_thread *take_os_threads(int all)
{
    vm_os_thread *taken = NULL, **link = &vm_proc.os_threads;
    while (*link) {
        vm_os_thread *r = *link;
        if (all || r->finished) {
            *link = r->next;
            r->next = taken;
            taken = r;
        } else {
            link = &r->next;
        }
    }
    return taken;
}

void vm_threads_reap(void)
{
    pthread_mutex_lock(&vm_proc.mu);
    vm_os_thread *list = take_os_threads(0);
    pthread_mutex_unlock(&vm_proc.mu);
    while (list) {
        vm_os_thread *next = list->next;
        pthread_join(list->tid, NULL);
        vm_free(list);
        list = next;
    }
}

void vm_threads_fini(void)
{
    vm_threads_reap();
    pthread_mutex_lock(&vm_proc.mu);
    vm_os_thread *list = take_os_threads(1);     /* daemons the runtime ended, detached */
    pthread_mutex_unlock(&vm_proc.mu);
    while (list) {
        vm_os_thread *next = list->next;
        vm_free(list);
        list = next;
    }
}

static void *thread_main(void *arg)
{
    vm_thread_obj *th = arg;
    vm_thread *t = th->ts;
    vm_os_thread *os = th->os;
    th->os = NULL;
    rt_thread_set_detach_on_exit();     /* nobody joins a daemon the runtime ends */
    rt_thread_bind(&t->base);
    vm_process_count(&vm_proc.nstarting, -1);   /* from here we touch only `t` */
    rt_thread_attach(&t->base);
    value out;
    size_t n = AS_TUPLE(th->args)->len;
    int failed = vm_call(t, th->func, (int)n, AS_TUPLE(th->args)->items, &out);
    if (rt_thread_is_main(&t->base))    /* forked from this thread: the child's main */
        vm_proc.forked_main_exit(t, failed);
    if (failed) {
        value e = t->exc;
        if (e.tag == T_EXC && !vm_class_is(AS_EXC(e)->cls, EXC(t)->system_exit)) {
            vm_output_flush();
            vm_printf(VM_STDERR, "Exception in thread %llu:\n", (unsigned long long)th->ident);
            vm_print_traceback(t, e);
        }
        t->exc = V_UNDEF;
    }
    /* A joiner may go on (even to finalize the runtime) as soon as it sees TH_FINISHED, while
     * this thread still deletes its state without the GIL: nexiting makes finalization wait
     * (exit_order.gasm under ASan). */
    vm_process_count(&vm_proc.nexiting, 1);
    pthread_mutex_lock(&th->base.wq.mu);
    th->state = TH_FINISHED;
    th->ts = NULL;
    pthread_cond_broadcast(&th->base.wq.cv);
    pthread_mutex_unlock(&th->base.wq.mu);
    t->self = V_NONE;
    rt_thread_delete_current(&t->base);
    pthread_mutex_lock(&vm_proc.mu);
    os->tid = pthread_self();
    os->finished = 1;
    pthread_mutex_unlock(&vm_proc.mu);
    vm_process_count(&vm_proc.nexiting, -1);    /* after `finished`: see vm_lib_before_fork */
    return NULL;
}

static int thread_finished(void *p)
{
    return ((vm_thread_obj *)p)->state == TH_FINISHED;
}

static void thread_describe(void *p, char *buf, size_t n)
{
    snprintf(buf, n, "thread %" PRIu64, ((vm_thread_obj *)p)->ident);
}

static void thread_blacken(vm_obj *o, vm_gc_mark_fn mark, void *g)
{
    vm_thread_obj *th = (vm_thread_obj *)o;
    mark(g, th->func);
    mark(g, th->args);
}

void vm_thread_obj_forked(vm_obj *o, vm_thread *survivor)
{
    vm_thread_obj *th = (vm_thread_obj *)o;
    if (th->state == TH_RUNNING && th->ts != survivor) {
        th->state = TH_FINISHED;        /* its OS thread did not survive fork() */
        th->ts = NULL;
    }
}

int vm_thread_start(vm_thread *t, value func, value args, int daemon, value *out)
{
    rt_interp *in = t->base.interp;
    if (rt_main_runtime.finalizing || atomic_load(&in->finalizing))
        return vm_raise(t, EXC(t)->runtime_error, "can't create new thread at interpreter shutdown");
    if (!in->config.allow_threads)
        return vm_raise(t, EXC(t)->runtime_error, "thread is not supported for isolated subinterpreters");
    if (daemon && !in->config.allow_daemon_threads)
        return vm_raise(t, EXC(t)->runtime_error, "daemon threads are disabled in this (sub)interpreter");
    if (func.tag != T_FUNC && func.tag != T_NATIVE)
        return vm_raise(t, EXC(t)->type_error, "thread_start() target must be callable, not '%s'",
                        vm_type_name(func));
    if (args.tag == T_LIST)
        args = vm_tuple_new(t, AS_LIST(args)->len, AS_LIST(args)->items);
    if (args.tag != T_TUPLE)
        return vm_raise(t, EXC(t)->type_error, "thread_start() args must be a tuple, not '%s'",
                        vm_type_name(args));
    value ev[2] = {func, args};
    if (vm_audit(t, "_thread.start_new_thread", 2, ev))
        return -1;
    vm_thread_obj *th = (vm_thread_obj *)vm_alloc(t, T_THREAD, sizeof(vm_thread_obj));
    vm_waitq_init(&th->base.wq);
    th->func = func;
    th->args = args;
    th->daemon = daemon;
    vm_thread *nt = (vm_thread *)rt_thread_new(in, RT_WHENCE_THREADING);
    if (!nt)
        return vm_raise(t, EXC(t)->memory_error, "can't allocate a thread state");
    nt->base.daemon = daemon;
    nt->handled = V_NONE;
    nt->self = V_OBJ(T_THREAD, th);
    th->ts = nt;
    th->ident = nt->base.id;
    th->state = TH_RUNNING;
    if (rt_sched_add(&nt->base)) {
        th->state = TH_FINISHED;
        th->ts = NULL;
        nt->self = V_NONE;
        rt_thread_delete(&nt->base);
        return vm_raise(t, EXC(t)->memory_error, "can't allocate a thread's scheduler slot");
    }
    vm_threads_reap();
    vm_os_thread *os = vm_calloc(1, sizeof *os);
    int rc = -1;
    th->os = os;
    pthread_t tid;
    if (os) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1u << 20);     /* joinable: see vm_os_thread */
        vm_process_count(&vm_proc.nstarting, 1);
        rc = pthread_create(&tid, &attr, thread_main, th);
        pthread_attr_destroy(&attr);
        if (rc)
            vm_process_count(&vm_proc.nstarting, -1);
    }
    if (rc) {
        th->os = NULL;
        vm_free(os);
        th->state = TH_FINISHED;
        th->ts = NULL;
        nt->self = V_NONE;
        rt_thread_delete(&nt->base);
        if (!os)
            return vm_raise(t, EXC(t)->memory_error, "can't allocate a thread");
        return vm_raise(t, EXC(t)->runtime_error, "can't start new thread");
    }
    /* Listed once started (it may have finished already: it marks its record under mu);
     * we hold the GIL, so no fork or finalization reaps in between. */
    pthread_mutex_lock(&vm_proc.mu);
    os->next = vm_proc.os_threads;
    vm_proc.os_threads = os;
    pthread_mutex_unlock(&vm_proc.mu);
    *out = V_OBJ(T_THREAD, th);
    t->roots[t->nroots++] = *out;       /* the new thread may run first (and collect) */
    rt_sched_yield(&t->base, "thread_start");
    t->nroots--;
    return 0;
}

static int want_thread(vm_thread *t, value v, const char *fn)
{
    return v.tag == T_THREAD ? 0 : vm_type_err(t, fn, "a thread", v);
}

int vm_thread_join(vm_thread *t, value thv, value timeout)
{
    int err = 0;
    uint64_t deadline = vm_deadline_from(t, timeout, "thread_join", &err);
    if (err)
        return -1;
    vm_thread_obj *th = (vm_thread_obj *)thv.u.o;
    if (th->ts == t)
        return vm_raise(t, EXC(t)->runtime_error, "cannot join current thread");
    rt_sched_yield(&t->base, "thread_join");
    pthread_mutex_lock(&th->base.wq.mu);
    int done = th->state == TH_FINISHED;
    pthread_mutex_unlock(&th->base.wq.mu);
    if (done)
        return 0;
    if (rt_main_runtime.finalizing && th->daemon)
        return vm_raise(t, EXC(t)->finalization_error,
                        "cannot join a daemon thread during interpreter shutdown");
    return vm_wait(t, &th->base.wq, thread_finished, th, deadline) < 0 ? -1 : 0;
}

int vm_threads_join_all(vm_thread *t)
{
    for (;;) {
        pthread_mutex_lock(&vm_proc.mu);       /* joined, not yet gone: see thread_main */
        while (vm_proc.nexiting > 0)
            pthread_cond_wait(&vm_proc.quiet, &vm_proc.mu);
        pthread_mutex_unlock(&vm_proc.mu);
        value th = V_NONE;
        for (rt_thread *r = t->base.interp->threads; r; r = r->next) {
            vm_thread *vt = (vm_thread *)r;
            if (vt != t && vt->self.tag == T_THREAD && !r->daemon) {
                th = vt->self;
                break;
            }
        }
        if (th.tag != T_THREAD)
            return 0;
        t->roots[t->nroots++] = th;
        int rc = vm_thread_join(t, th, V_NONE);
        t->nroots--;
        if (rc)
            return -1;
    }
}

BUILTIN(thread_start)
{
    if (argc < 1 || argc > 3)
        return vm_raise(t, EXC(t)->type_error, "thread_start expected 1 to 3 arguments, got %d", argc);
    value args = argc >= 2 ? argv[1] : vm_tuple_new(t, 0, NULL);
    int daemon = argc == 3 && vm_truthy(argv[2]);
    return vm_thread_start(t, argv[0], args, daemon, out);
}

BUILTIN(thread_join)
{
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "thread_join expected 1 or 2 arguments, got %d", argc);
    if (want_thread(t, argv[0], "thread_join"))
        return -1;
    *out = V_NONE;
    return vm_thread_join(t, argv[0], argc == 2 ? argv[1] : V_NONE);
}

BUILTIN(thread_is_alive)
{
    if (want_thread(t, argv[0], "thread_is_alive"))
        return -1;
    vm_thread_obj *th = (vm_thread_obj *)argv[0].u.o;
    pthread_mutex_lock(&th->base.wq.mu);
    *out = V_BOOL(th->state == TH_RUNNING);
    pthread_mutex_unlock(&th->base.wq.mu);
    return 0;
}

BUILTIN(thread_ident)
{
    if (want_thread(t, argv[0], "thread_ident"))
        return -1;
    *out = V_INT((int64_t)((vm_thread_obj *)argv[0].u.o)->ident);
    return 0;
}

BUILTIN(get_ident) { *out = V_INT((int64_t)t->base.id); return 0; }

BUILTIN(main_thread_ident)
{
    rt_thread *m = rt_main_runtime.main_tstate;
    *out = V_INT(m && m->interp == t->base.interp ? (int64_t)m->id : 1);
    return 0;
}

BUILTIN(active_count)
{
    int64_t n = 0;
    for (rt_thread *r = t->base.interp->threads; r; r = r->next)
        if (((vm_thread *)r)->self.tag == T_THREAD || r == &t->base || r == rt_main_runtime.main_tstate)
            n++;
    *out = V_INT(n);
    return 0;
}

BUILTIN(set_async_exc)
{
    int64_t id = 0;
    if (vm_want_int(t, "set_async_exc", argv[0], &id))
        return -1;
    value e = argv[1];
    if (e.tag == T_CLASS && vm_class_is(AS_CLASS(e), EXC(t)->base_exception))
        e = vm_exc_new(t, AS_CLASS(e), V_NONE);
    else if (e.tag != T_EXC && e.tag != T_NONE)
        return vm_raise(t, EXC(t)->type_error,
                        "set_async_exc() exception must derive from BaseException, not '%s'",
                        vm_type_name(e));
    void *old = NULL;
    int n = id > 0 && rt_thread_set_async_exc(t->base.interp, (uint64_t)id,
                                              e.tag == T_EXC ? e.u.o : NULL, &old,
                                              vm_wait_wake);
    *out = V_INT(n);                /* `old` is garbage now: the collector takes it */
    rt_sched_yield(&t->base, "set_async_exc");
    return 0;
}

void vm_threading_install(vm_thread *t)
{
    VM_SET_HOOK(vm_gc_blacken_hooks[T_THREAD], thread_blacken);
    VM_SET_HOOK(vm_gc_free_hooks[T_THREAD], vm_waitable_free);
    vm_wait_register(thread_finished, "thread_join", thread_describe);
    static const vm_native_def natives[] = {
        {"thread_start", -1, bi_thread_start, "thread_start(f, args=(), daemon=False)"},
        {"thread_join", -1, bi_thread_join, "thread_join(th, timeout=None)"},
        {"thread_is_alive", 1, bi_thread_is_alive, "thread_is_alive(th)"},
        {"thread_ident", 1, bi_thread_ident, "thread_ident(th)"},
        {"get_ident", 0, bi_get_ident, "get_ident()"},
        {"main_thread_ident", 0, bi_main_thread_ident, "main_thread_ident()"},
        {"active_count", 0, bi_active_count, "active_count()"},
        {"set_async_exc", 2, bi_set_async_exc, "set_async_exc(thread_id, exc)"},
    };
    VM_DEF_NATIVES(t, natives);
}
