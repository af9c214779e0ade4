/* SPDX-License-Identifier: MIT */
/* Bytecode calls queued for later: call_soon_main and pending_call wrap a bytecode call as a
 * runtime pending call (runtime/pending.c), call_later hands it to the timer thread, which
 * queues it as a pending call when it is due.  The timer thread also runs the VM's own C
 * timers (vm_timer_add: a program's timeout).
 *
 * Rooting: a queued call is a malloc'd vm_pcall on vm_proc.calls, whose function and
 * arguments are GC roots of its interpreter (gc_roots), from the moment it is created until
 * its call has returned. */
#include <signal.h>
#include <stdlib.h>

#include "runtime/sched.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/process.h"

/* Under vm_proc.mu. */
static void list(vm_pcall *p)
{
    p->next = vm_proc.calls;
    if (vm_proc.calls)
        vm_proc.calls->prev = p;
    vm_proc.calls = p;
}

/* A listed call record; NULL with MemoryError raised if out of memory. */
static vm_pcall *pcall_new(vm_thread *t, value func, int argc, value *argv)
{
    vm_pcall *p = vm_calloc(1, sizeof *p);
    if (!p) {
        vm_raise(t, EXC(t)->memory_error, "out of memory");
        return NULL;
    }
    p->in = VM_INTERP(t);
    p->func = func;
    p->args = vm_tuple_new(t, (size_t)argc, argv);
    pthread_mutex_lock(&vm_proc.mu);
    list(p);
    pthread_mutex_unlock(&vm_proc.mu);
    return p;
}

/* Under vm_proc.mu. */
static void unlist(vm_pcall *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        vm_proc.calls = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

void vm_pcall_free(vm_pcall *p)
{
    pthread_mutex_lock(&vm_proc.mu);
    unlist(p);
    pthread_mutex_unlock(&vm_proc.mu);
    vm_free(p);
}

/* The rt_pending_fn of a bytecode call: runs on a thread of p->in, holding its GIL. */
static int run_pcall(void *arg)
{
    vm_pcall *p = arg;
    vm_thread *t = (vm_thread *)rt_thread_current();
    vm_tuple *args = AS_TUPLE(p->args);
    value result;
    int rc = vm_call(t, p->func, (int)args->len, args->items, &result);
    vm_pcall_free(p);               /* rooted until here: the call is over */
    return rc;
}

/* ---- timers: one thread queues each call when it is due ---- */

static void timer_insert(vm_pcall *p)
{
    vm_pcall **link = &vm_proc.timer.list;
    while (*link && (*link)->due_ns <= p->due_ns)
        link = &(*link)->tnext;
    p->tnext = *link;
    *link = p;
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&vm_proc.timer.mu);
    while (!vm_proc.timer.stop) {
        vm_pcall *p = vm_proc.timer.list;
        uint64_t now = rt_now_ns();
        if (p == NULL || p->due_ns > now) {
            rt_cond_wait_until(&vm_proc.timer.cv, &vm_proc.timer.mu,
                               p ? p->due_ns : now + 1000000000u);
            continue;
        }
        vm_proc.timer.list = p->tnext;
        pthread_mutex_unlock(&vm_proc.timer.mu);
        if (p->fire) {
            p->fire(p->in, p->arg);
            vm_pcall_free(p);
            pthread_mutex_lock(&vm_proc.timer.mu);
            continue;
        }
        int full = rt_pending_add(&p->in->base, run_pcall, p);
        pthread_mutex_lock(&vm_proc.timer.mu);
        if (full) {                 /* the queue is full: try again in a millisecond */
            p->due_ns = rt_now_ns() + 1000000u;
            timer_insert(p);
        }
    }
    pthread_mutex_unlock(&vm_proc.timer.mu);
    return NULL;
}

/* Under timer.mu: starts the thread with every signal blocked, so signals go to VM threads. */
static int timer_start(void)
{
    if (vm_proc.timer.running)
        return 0;
    vm_proc.timer.stop = 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&vm_proc.timer.thread, NULL, timer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return -1;
    vm_proc.timer.running = 1;
    return 0;
}

/* Starts the timer thread if needed and inserts `p`; -1 if the thread can't start. */
static int timer_add(vm_pcall *p)
{
    pthread_mutex_lock(&vm_proc.timer.mu);
    int rc = timer_start();
    if (rc == 0) {
        timer_insert(p);
        if (vm_proc.timer.list == p)
            pthread_cond_signal(&vm_proc.timer.cv);
    }
    pthread_mutex_unlock(&vm_proc.timer.mu);
    return rc;
}

int vm_timer_add(vm_interp *in, uint64_t due_ns, void (*fire)(vm_interp *in, uint64_t arg),
                 uint64_t arg)
{
    vm_pcall *p = vm_calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->in = in;
    p->due_ns = due_ns;
    p->fire = fire;
    p->arg = arg;
    pthread_mutex_lock(&vm_proc.mu);
    list(p);
    pthread_mutex_unlock(&vm_proc.mu);
    if (timer_add(p) == 0)
        return 0;
    vm_pcall_free(p);
    return -1;
}

/* Stops the timer thread and frees the timers not yet due. */
static void timer_stop(void)
{
    pthread_mutex_lock(&vm_proc.timer.mu);
    int running = vm_proc.timer.running;
    vm_proc.timer.stop = 1;
    vm_proc.timer.running = 0;
    if (running)
        pthread_cond_broadcast(&vm_proc.timer.cv);
    vm_pcall *list = vm_proc.timer.list;
    vm_proc.timer.list = NULL;
    pthread_mutex_unlock(&vm_proc.timer.mu);
    if (running)
        pthread_join(vm_proc.timer.thread, NULL);
    while (list) {
        vm_pcall *next = list->tnext;
        vm_pcall_free(list);
        list = next;
    }
}

/* ---- builtins ---- */

static int queue_call(vm_thread *t, int main_only, rt_interp *target, int argc, value *argv,
                      value *out)
{
    vm_pcall *p = pcall_new(t, argv[0], argc - 1, argv + 1);
    if (!p)
        return -1;
    int rc = main_only ? rt_pending_add_main(run_pcall, p) : rt_pending_add(target, run_pcall, p);
    if (rc)
        vm_pcall_free(p);           /* full: refused, nothing raised */
    *out = V_BOOL(rc == 0);
    rt_sched_yield(&t->base, "pending_call_add");
    return 0;
}

BUILTIN(call_soon_main)
{
    if (argc < 1)
        return vm_raise(t, EXC(t)->type_error, "call_soon_main expected at least 1 argument");
    if (vm_want_callable(t, "call_soon_main", argv[0]))
        return -1;
    if (t->base.interp != rt_interp_main())
        return vm_raise(t, EXC(t)->interpreter_error,
                        "call_soon_main: a sub-interpreter's function cannot run in the main one");
    return queue_call(t, 1, NULL, argc, argv, out);
}

BUILTIN(pending_call)
{
    int64_t id = 0;
    if (argc < 2)
        return vm_raise(t, EXC(t)->type_error, "pending_call expected at least 2 arguments");
    if (vm_want_int(t, "pending_call", argv[0], &id))
        return -1;
    if (argv[1].tag == T_STR)       /* a function of that interpreter, by name */
        return vm_interp_pending_call(t, id, argv[1], argc - 2, argv + 2, out);
    if (vm_want_callable(t, "pending_call", argv[1]))
        return -1;
    rt_interp *target = rt_interp_find(id);
    if (target == NULL)
        return vm_raise(t, EXC(t)->interpreter_error, "unrecognized interpreter ID %lld",
                        (long long)id);
    if (target != t->base.interp)   /* objects are never shared between interpreters */
        return vm_raise(t, EXC(t)->interpreter_error,
                        "pending_call: interpreter %lld cannot run a function of interpreter %lld "
                        "(pass the name of one of its own)",
                        (long long)id, (long long)t->base.interp->id);
    return queue_call(t, 0, target, argc - 1, argv + 1, out);
}

BUILTIN(call_later)
{
    double delay = 0;
    if (argc < 2)
        return vm_raise(t, EXC(t)->type_error, "call_later expected at least 2 arguments");
    if (vm_want_seconds(t, "call_later", "delay", "call_later() delay must be non-negative",
                        argv[0], &delay) ||
        vm_want_callable(t, "call_later", argv[1]))
        return -1;
    if (delay > 1e9)
        delay = 1e9;
    vm_pcall *p = pcall_new(t, argv[1], argc - 2, argv + 2);
    if (!p)
        return -1;
    rt_sched_note_uncontrolled("timer");    /* the timer thread keeps real time */
    p->due_ns = rt_now_ns() + (uint64_t)(delay * 1e9);
    if (timer_add(p)) {
        vm_pcall_free(p);
        return vm_raise(t, EXC(t)->runtime_error, "can't start the timer thread");
    }
    *out = V_NONE;
    return 0;
}

static void gc_roots(vm_interp *in, vm_gc_mark_fn mark, void *g)
{
    pthread_mutex_lock(&vm_proc.mu);
    for (vm_pcall *p = vm_proc.calls; p; p = p->next)
        if (p->in == in) {
            mark(g, p->func);
            mark(g, p->args);
        }
    pthread_mutex_unlock(&vm_proc.mu);
}

void vm_pcalls_install(vm_thread *t)
{
    vm_gc_add_root_hook(gc_roots);
    static const vm_native_def natives[] = {
        {"call_soon_main", -1, bi_call_soon_main, "call_soon_main(f, *args)"},
        {"pending_call", -1, bi_pending_call, "pending_call(interp_id, f, *args)\npending_call(interp_id, name, *args)"},
        {"call_later", -1, bi_call_later, "call_later(delay, f, *args)"},
    };
    VM_DEF_NATIVES(t, natives);
}

void vm_pcalls_fini(vm_interp *in)
{
    if (in == (vm_interp *)rt_interp_main())
        timer_stop();
    pthread_mutex_lock(&vm_proc.mu);
    for (vm_pcall *p = vm_proc.calls, *next; p; p = next) {
        next = p->next;
        if (p->in == in) {
            unlist(p);
            vm_free(p);
        }
    }
    pthread_mutex_unlock(&vm_proc.mu);
}
