/* Threads in bytecode: thread objects, Lock, Queue, sleep, switch interval builtins.
 *
 * Notes
 * -----
 * Every blocking wait (join, lock acquire, queue get, sleep) detaches from the GIL, waits on
 * the object's own mutex and condvar, and re-attaches with rt_thread_attach_urgent (the
 * convoy fix).  Waits run in slices of at most WAIT_SLICE_NS so the main thread can run
 * signal handlers while it waits (vm_wait_interrupted) and give up if one raised.
 *
 * queue_put does not wake a waiting consumer itself: it defers the wake-up to its own
 * release of the GIL (rt_gil_defer; runtime/gil.c, "Beyond CPython 4"), so that the
 * consumer does not wake to a GIL that the producer is about to release.  queue_free
 * therefore calls rt_gil_defer_barrier before it destroys the condvar.
 *
 * Signals: the main thread runs handlers when its wait wakes with RT_SIGNALS_PENDING.  The
 * C handler cannot signal a condvar, so it writes a byte to a pipe (rt_signal_set_notify_fd)
 * read by the waker thread, which broadcasts the condvar the main thread waits on (under
 * that wait's mutex, so the wake-up cannot fall between the main thread's check of the
 * pending bit and its wait).  The waker starts with the main thread's first wait.
 *
 * Finalization: a thread blocked in a wait (vm_blocking_begin .. _end) or just started
 * (before it attaches) may belong to a daemon thread that must never run again.  Such a
 * thread checks rt_thread_must_exit after each slice and ends itself without touching its
 * thread state again; vm_threads_quiesce lets finalization wait until none is left in those
 * windows before the runtime frees thread states and the heap (with the objects' condvars).
 *
 * Object state that a waiter reads without the GIL (finished flag, lock bit, queue length)
 * is guarded by the object's mutex; values (queue items, thread results) are only touched
 * holding the GIL, so the collector never races with a waiter.  A running thread keeps its
 * thread object alive through vm_thread.self (a GC root); the thread object keeps its
 * function and arguments alive. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vm/api/api.h"
#include "vm/api/gilvm.h"
#include "vm/lib/threads.h"

#define EXC(t) (&VM_INTERP(t)->exc)
#define BUILTIN(name) static int bi_##name(vm_thread *t, int argc, value *argv, value *out)
#define WAIT_SLICE_NS 20000000ull      /* 20 ms */

enum { TH_NEW, TH_RUNNING, TH_FINISHED };

typedef struct {
    vm_obj h;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;                  /* TH_*; under mu */
    int daemon;
    uint64_t ident;             /* thread state id, 0 before start */
    vm_thread *ts;              /* while running */
    value func, args;
    struct vm_os_thread *os;    /* its OS thread's record, until the thread starts */
} vm_thread_obj;

/* The OS threads of VM threads, which are joinable: a thread that has finished with the VM
 * may still be in libc or sanitizer teardown, which allocates.  Finished ones are joined
 * before fork() (an allocator lock held by a thread that does not exist in the child would
 * deadlock it) and whenever a thread starts.  A thread the runtime ends detaches itself
 * (rt_thread_set_detach_on_exit) and its record is dropped at finalization. */
typedef struct vm_os_thread {
    pthread_t tid;
    int finished;                       /* returned from thread_main; under os_mu */
    struct vm_os_thread *next;
} vm_os_thread;

static pthread_mutex_t os_mu = PTHREAD_MUTEX_INITIALIZER;
static vm_os_thread *os_threads;

typedef struct {
    vm_obj h;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int locked;                 /* under mu */
    uint64_t owner;             /* thread id of the holder, 0 if unlocked */
} vm_lock;

typedef struct {
    vm_obj h;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t len, cap, head;      /* ring buffer; under mu, values touched only with the GIL */
    value *items;
    int nwaiters;               /* threads waiting in queue_get; under mu */
} vm_queue;

/* ---- waiting without the GIL ---- */

static void deadline_after(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ns / 1000000000u);
    ts->tv_nsec += (long)(ns % 1000000000u);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

vm_wait_hook_fn vm_wait_hook;

static _Atomic int nblocked;            /* threads between vm_blocking_begin and _end */
static _Atomic int nstarting;           /* threads created but not yet bound */
static _Atomic int nexiting;            /* threads reported finished, still deleting their state */

void vm_blocking_begin(vm_thread *t)
{
    atomic_fetch_add(&nblocked, 1);
    rt_thread_detach(&t->base);
}

uint32_t vm_blocking_poll(vm_thread *t, pthread_mutex_t *held)
{
    if (rt_thread_must_exit(&t->base)) {
        /* Another thread finalizes: end without touching `t`, which it may free. */
        if (held)
            pthread_mutex_unlock(held);
        atomic_fetch_sub(&nblocked, 1);
        rt_thread_exit();
    }
    return rt_breaker_load(&t->base.eval_breaker) & (RT_SIGNALS_PENDING | RT_EVAL_PLEASE_STOP);
}

void vm_blocking_end(vm_thread *t)
{
    atomic_fetch_sub(&nblocked, 1);
    rt_thread_attach_urgent(&t->base);
}

/* Takes the records of finished threads (all if `all`) off the list; under os_mu. */
static vm_os_thread *take_os_threads(int all)
{
    vm_os_thread *taken = NULL, **link = &os_threads;
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
    pthread_mutex_lock(&os_mu);
    vm_os_thread *list = take_os_threads(0);
    pthread_mutex_unlock(&os_mu);
    while (list) {
        vm_os_thread *next = list->next;
        pthread_join(list->tid, NULL);
        free(list);
        list = next;
    }
}

/* Drops every record without joining: the threads are gone (fork) or detached themselves. */
static void forget_os_threads(void)
{
    vm_os_thread *list = take_os_threads(1);
    while (list) {
        vm_os_thread *next = list->next;
        free(list);
        list = next;
    }
}

void vm_threads_before_fork(void)
{
    /* The caller holds the GIL, so no thread starts or finishes meanwhile: the ones already
     * starting or finishing (outside the GIL, perhaps inside malloc) get done, then the
     * finished ones are joined. */
    while (atomic_load(&nstarting) || atomic_load(&nexiting)) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    vm_threads_reap();
}

void vm_threads_quiesce(void)
{
    /* Waits are sliced (WAIT_SLICE_NS), so this takes one slice; the bound is a safety net. */
    uint64_t end = rt_now_ns() + 5000000000ull;
    while ((atomic_load(&nblocked) || atomic_load(&nstarting) || atomic_load(&nexiting)) &&
           rt_now_ns() < end) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

int vm_wait_interrupted(vm_thread *t)
{
    vm_wait_hook_fn hook = vm_wait_hook;
    return hook ? hook(t) : 0;
}

/* ---- the waker: wakes the main thread's waits when a signal arrives ---- */

static struct {
    pthread_mutex_t mu;             /* guards all but the fds' use by the handler */
    pthread_mutex_t *wait_mu;       /* the main thread's current wait, or NULL */
    pthread_cond_t *wait_cv;
    int fds[2];                     /* read by the waker, written by the signal handler */
    int running, stop;
    pthread_t thread;
} waker = {.mu = PTHREAD_MUTEX_INITIALIZER, .fds = {-1, -1}};

static void *waker_main(void *arg)
{
    (void)arg;
    char buf[64];
    for (;;) {
        ssize_t n = read(waker.fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        pthread_mutex_lock(&waker.mu);
        int stop = waker.stop || n <= 0;
        if (waker.wait_mu) {
            pthread_mutex_lock(waker.wait_mu);
            pthread_cond_broadcast(waker.wait_cv);
            pthread_mutex_unlock(waker.wait_mu);
        }
        pthread_mutex_unlock(&waker.mu);
        if (stop)
            return NULL;
    }
}

/* Under waker.mu: starts the waker (all signals blocked in it) if it is not running. */
static void waker_start(void)
{
    if (waker.running)
        return;
    if (waker.fds[0] < 0) {
        if (pipe(waker.fds) != 0)
            return;                 /* waits then notice signals within a slice */
        for (int i = 0; i < 2; i++)
            fcntl(waker.fds[i], F_SETFD, FD_CLOEXEC);
        fcntl(waker.fds[1], F_SETFL, O_NONBLOCK);
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    waker.stop = 0;
    waker.running = pthread_create(&waker.thread, NULL, waker_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (waker.running)
        rt_signal_set_notify_fd(waker.fds[1]);
}

static void waker_register(pthread_mutex_t *mu, pthread_cond_t *cv)
{
    pthread_mutex_lock(&waker.mu);
    if (mu)
        waker_start();
    waker.wait_mu = mu;
    waker.wait_cv = cv;
    pthread_mutex_unlock(&waker.mu);
}

void vm_threads_fini(void)
{
    vm_threads_reap();
    pthread_mutex_lock(&os_mu);
    forget_os_threads();                /* daemons the runtime ended, detached */
    pthread_mutex_unlock(&os_mu);
    rt_signal_set_notify_fd(-1);    /* no handler writes to the pipe any more */
    pthread_mutex_lock(&waker.mu);
    int running = waker.running;
    waker.stop = 1;
    waker.running = 0;
    pthread_mutex_unlock(&waker.mu);
    if (running) {
        char byte = 0;
        ssize_t r = write(waker.fds[1], &byte, 1);
        (void)r;
        pthread_join(waker.thread, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (waker.fds[i] >= 0) {
            close(waker.fds[i]);
            waker.fds[i] = -1;
        }
}

/* Waits (GIL released) until ready(obj) under mu, or until `deadline_ns` (0: forever),
 * counted in *nwaiters (under mu) if not NULL.  Returns 1 ready, 0 timed out, -1 a signal
 * handler raised (exception set). */
static int wait_for(vm_thread *t, pthread_mutex_t *mu, pthread_cond_t *cv,
                    int (*ready)(void *), void *obj, uint64_t deadline_ns, int *nwaiters)
{
    int is_main = rt_signals_can_handle(&t->base);
    for (;;) {
        int r = 0;
        vm_blocking_begin(t);
        if (is_main)
            waker_register(mu, cv);
        pthread_mutex_lock(mu);
        if (nwaiters)
            ++*nwaiters;
        for (;;) {
            if (ready(obj)) {
                r = 1;
                break;
            }
            uint64_t now = rt_now_ns();
            if (deadline_ns && now >= deadline_ns)
                break;
            uint64_t slice = WAIT_SLICE_NS;
            if (deadline_ns && deadline_ns - now < slice)
                slice = deadline_ns - now;
            struct timespec ts;
            deadline_after(&ts, slice);
            pthread_cond_timedwait(cv, mu, &ts);
            if (vm_blocking_poll(t, mu)) {
                r = 2;
                break;
            }
        }
        if (nwaiters)
            --*nwaiters;
        pthread_mutex_unlock(mu);
        if (is_main)
            waker_register(NULL, NULL);
        vm_blocking_end(t);
        if (r != 2)
            return r;
        if (vm_wait_interrupted(t))
            return -1;
    }
}

static uint64_t deadline_from(vm_thread *t, value timeout, const char *fn, int *err)
{
    double s;
    if (timeout.tag == T_NONE)
        return 0;
    if (timeout.tag == T_FLOAT)
        s = timeout.u.f;
    else if (timeout.tag == T_INT || timeout.tag == T_BOOL)
        s = (double)timeout.u.i;
    else {
        *err = vm_raise(t, EXC(t)->type_error, "%s() timeout must be a number, not '%s'", fn,
                        vm_type_name(timeout));
        return 0;
    }
    if (isnan(s) || s < 0) {
        *err = vm_raise(t, EXC(t)->value_error, "timeout value must be a non-negative number");
        return 0;
    }
    if (s > 1e9)
        return 0;
    uint64_t d = rt_now_ns() + (uint64_t)(s * 1e9);
    return d ? d : 1;
}

/* ---- threads ---- */

/* The end of a thread that fork() made the child's main thread: the child exits as a
 * program whose main thread returned, with the same status rules. */
_Noreturn static void forked_main_exit(vm_thread *t, int failed)
{
    vm_main_tstate = t;
    int status = gilvm_runtime_finalize(failed ? vm_exit_status(t) : GILVM_EXIT_OK);
    if (status == GILVM_EXIT_SIGINT) {
        fflush(NULL);
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    exit(status);
}

static void *thread_main(void *arg)
{
    vm_thread_obj *th = arg;
    vm_thread *t = th->ts;
    vm_os_thread *os = th->os;
    th->os = NULL;
    rt_thread_set_detach_on_exit();     /* nobody joins a daemon the runtime ends */
    rt_thread_bind(&t->base);
    atomic_fetch_sub(&nstarting, 1);    /* from here we touch only `t`: see vm_threads_quiesce */
    rt_thread_attach(&t->base);
    value out;
    size_t n = AS_TUPLE(th->args)->len;
    int failed = vm_call(t, th->func, (int)n, AS_TUPLE(th->args)->items, &out);
    if (rt_thread_is_main(&t->base))
        forked_main_exit(t, failed);
    if (failed) {
        value e = t->exc;
        if (e.tag == T_EXC && !vm_class_is(AS_EXC(e)->cls, EXC(t)->system_exit)) {
            fflush(stdout);
            fprintf(stderr, "Exception in thread %llu:\n", (unsigned long long)th->ident);
            vm_print_traceback(t, e);
        }
        t->exc = V_UNDEF;
    }
    /* A joiner may go on (even to finalize the runtime) as soon as it sees TH_FINISHED, while
     * this thread still deletes its state without the GIL: nexiting makes finalization wait
     * (exit_order.gasm under ASan). */
    atomic_fetch_add(&nexiting, 1);
    pthread_mutex_lock(&th->mu);
    th->state = TH_FINISHED;
    th->ts = NULL;
    pthread_cond_broadcast(&th->cv);
    pthread_mutex_unlock(&th->mu);
    t->self = V_NONE;
    rt_thread_delete_current(&t->base);
    pthread_mutex_lock(&os_mu);
    os->tid = pthread_self();
    os->finished = 1;
    pthread_mutex_unlock(&os_mu);
    atomic_fetch_sub(&nexiting, 1);     /* after `finished`: see vm_threads_before_fork */
    return NULL;
}

static int thread_finished(void *p)
{
    return ((vm_thread_obj *)p)->state == TH_FINISHED;
}

static void thread_blacken(vm_obj *o, vm_gc_mark_fn mark, void *g)
{
    vm_thread_obj *th = (vm_thread_obj *)o;
    mark(g, th->func);
    mark(g, th->args);
}

static void thread_free(vm_obj *o)
{
    vm_thread_obj *th = (vm_thread_obj *)o;
    pthread_mutex_destroy(&th->mu);
    pthread_cond_destroy(&th->cv);
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
    vm_thread_obj *th = (vm_thread_obj *)vm_alloc(t, T_THREAD, sizeof(vm_thread_obj));
    pthread_mutex_init(&th->mu, NULL);
    cond_init(&th->cv);
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
    vm_threads_reap();
    vm_os_thread *os = calloc(1, sizeof *os);
    if (!os)
        RT_FATAL("out of memory");
    th->os = os;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1u << 20);     /* joinable: see vm_os_thread */
    pthread_t tid;
    atomic_fetch_add(&nstarting, 1);
    int rc = pthread_create(&tid, &attr, thread_main, th);
    pthread_attr_destroy(&attr);
    if (rc) {
        atomic_fetch_sub(&nstarting, 1);
        th->os = NULL;
        free(os);
        th->state = TH_FINISHED;
        th->ts = NULL;
        nt->self = V_NONE;
        rt_thread_delete(&nt->base);
        return vm_raise(t, EXC(t)->runtime_error, "can't start new thread");
    }
    /* Listed once started (it may have finished already: it marks its record under os_mu);
     * we hold the GIL, so no fork or finalization reaps in between. */
    pthread_mutex_lock(&os_mu);
    os->next = os_threads;
    os_threads = os;
    pthread_mutex_unlock(&os_mu);
    *out = V_OBJ(T_THREAD, th);
    return 0;
}

static int want_thread(vm_thread *t, value v, const char *fn)
{
    if (v.tag != T_THREAD)
        return vm_raise(t, EXC(t)->type_error, "%s() argument must be a thread, not '%s'", fn,
                        vm_type_name(v));
    return 0;
}

int vm_thread_join(vm_thread *t, value thv, value timeout)
{
    int err = 0;
    uint64_t deadline = deadline_from(t, timeout, "thread_join", &err);
    if (err)
        return -1;
    vm_thread_obj *th = (vm_thread_obj *)thv.u.o;
    if (th->ts == t)
        return vm_raise(t, EXC(t)->runtime_error, "cannot join current thread");
    pthread_mutex_lock(&th->mu);
    int done = th->state == TH_FINISHED;
    pthread_mutex_unlock(&th->mu);
    if (done)
        return 0;
    if (rt_main_runtime.finalizing && th->daemon)
        return vm_raise(t, EXC(t)->finalization_error,
                        "cannot join a daemon thread during interpreter shutdown");
    return wait_for(t, &th->mu, &th->cv, thread_finished, th, deadline, NULL) < 0 ? -1 : 0;
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
    pthread_mutex_lock(&th->mu);
    *out = V_BOOL(th->state == TH_RUNNING);
    pthread_mutex_unlock(&th->mu);
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

/* Joins every non-daemon thread of t's interpreter (finalization, step 1). */
int vm_threads_join_all(vm_thread *t)
{
    for (;;) {
        while (atomic_load(&nexiting) > 0) {        /* joined, not yet gone: see thread_main */
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
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

/* ---- Lock ---- */

static void lock_free(vm_obj *o)
{
    vm_lock *l = (vm_lock *)o;
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
}

static int lock_free_p(void *p) { return !((vm_lock *)p)->locked; }

BUILTIN(Lock)
{
    vm_lock *l = (vm_lock *)vm_alloc(t, T_LOCK, sizeof(vm_lock));
    pthread_mutex_init(&l->mu, NULL);
    cond_init(&l->cv);
    *out = V_OBJ(T_LOCK, l);
    return 0;
}

static int want_lock(vm_thread *t, value v, const char *fn)
{
    if (v.tag != T_LOCK)
        return vm_raise(t, EXC(t)->type_error, "%s() argument must be a lock, not '%s'", fn,
                        vm_type_name(v));
    return 0;
}

/* Finds the thread state with `id` in t's interpreter; NULL if gone. */
static rt_thread *find_thread(vm_thread *t, uint64_t id)
{
    for (rt_thread *r = t->base.interp->threads; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

BUILTIN(lock_acquire)
{
    if (argc < 1 || argc > 3)
        return vm_raise(t, EXC(t)->type_error, "lock_acquire expected 1 to 3 arguments, got %d", argc);
    if (want_lock(t, argv[0], "lock_acquire"))
        return -1;
    vm_lock *l = (vm_lock *)argv[0].u.o;
    int blocking = argc < 2 || vm_truthy(argv[1]);
    value timeout = argc == 3 ? argv[2] : V_NONE;
    if ((timeout.tag == T_INT && timeout.u.i == -1) ||
        (timeout.tag == T_FLOAT && timeout.u.f == -1.0))     /* CPython's "no timeout" */
        timeout = V_NONE;
    if (!blocking && timeout.tag != T_NONE)
        return vm_raise(t, EXC(t)->value_error, "can't specify a timeout for a non-blocking call");
    int err = 0;
    uint64_t deadline = deadline_from(t, timeout, "lock_acquire", &err);
    if (err)
        return -1;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        int got = !l->locked;
        if (got) {
            l->locked = 1;
            l->owner = t->base.id;
        }
        pthread_mutex_unlock(&l->mu);
        if (got) {
            *out = V_BOOL(1);
            return 0;
        }
        if (!blocking) {
            *out = V_BOOL(0);
            return 0;
        }
        if (rt_main_runtime.finalizing) {
            rt_thread *owner = find_thread(t, l->owner);
            if (!owner || owner->daemon)
                return vm_raise(t, EXC(t)->finalization_error,
                                "cannot acquire a lock held by a daemon thread during shutdown");
        }
        int r = wait_for(t, &l->mu, &l->cv, lock_free_p, l, deadline, NULL);
        if (r < 0)
            return -1;
        if (r == 0) {
            *out = V_BOOL(0);
            return 0;
        }
    }
}

BUILTIN(lock_release)
{
    if (want_lock(t, argv[0], "lock_release"))
        return -1;
    vm_lock *l = (vm_lock *)argv[0].u.o;
    pthread_mutex_lock(&l->mu);
    int was = l->locked;
    uint64_t owner = l->owner;
    int released = was && owner == t->base.id;
    if (released) {
        l->locked = 0;
        l->owner = 0;
    }
    pthread_mutex_unlock(&l->mu);
    if (released)                   /* after the unlock, as in queue_put */
        pthread_cond_signal(&l->cv);
    if (!was)
        return vm_raise(t, EXC(t)->runtime_error, "release unlocked lock");
    if (owner != t->base.id)
        return vm_raise(t, EXC(t)->runtime_error, "cannot release un-acquired lock");
    *out = V_NONE;
    return 0;
}

BUILTIN(lock_locked)
{
    if (want_lock(t, argv[0], "lock_locked"))
        return -1;
    vm_lock *l = (vm_lock *)argv[0].u.o;
    pthread_mutex_lock(&l->mu);
    *out = V_BOOL(l->locked);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

/* ---- Queue ---- */

static void queue_blacken(vm_obj *o, vm_gc_mark_fn mark, void *g)
{
    vm_queue *q = (vm_queue *)o;
    for (size_t i = 0; i < q->len; i++)
        mark(g, q->items[(q->head + i) % q->cap]);
}

static void queue_free(vm_obj *o)
{
    vm_queue *q = (vm_queue *)o;
    rt_gil_defer_barrier();             /* queue_put's deferred wake-ups may signal q->cv */
    free(q->items);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

static int queue_nonempty(void *p) { return ((vm_queue *)p)->len > 0; }

static void queue_wake(void *p) { pthread_cond_signal(&((vm_queue *)p)->cv); }

BUILTIN(Queue)
{
    vm_queue *q = (vm_queue *)vm_alloc(t, T_QUEUE, sizeof(vm_queue));
    pthread_mutex_init(&q->mu, NULL);
    cond_init(&q->cv);
    *out = V_OBJ(T_QUEUE, q);
    return 0;
}

static int want_queue(vm_thread *t, value v, const char *fn)
{
    if (v.tag != T_QUEUE)
        return vm_raise(t, EXC(t)->type_error, "%s() argument must be a queue, not '%s'", fn,
                        vm_type_name(v));
    return 0;
}

BUILTIN(queue_put)
{
    if (want_queue(t, argv[0], "queue_put"))
        return -1;
    vm_queue *q = (vm_queue *)argv[0].u.o;
    pthread_mutex_lock(&q->mu);
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        value *items = malloc(cap * sizeof(value));
        if (!items)
            RT_FATAL("out of memory");
        for (size_t i = 0; i < q->len; i++)
            items[i] = q->items[(q->head + i) % q->cap];
        free(q->items);
        q->items = items;
        q->cap = cap;
        q->head = 0;
    }
    q->items[(q->head + q->len) % q->cap] = argv[1];
    q->len++;
    int waiters = q->nwaiters;
    pthread_mutex_unlock(&q->mu);
    /* A waiter woken now would find the GIL held by us, and we are often about to release
     * it (a handoff: bench/pingpong.gasm): wake it when we do (rt_gil_defer). */
    if (waiters)
        rt_gil_defer(&t->base, queue_wake, q);
    *out = V_NONE;
    return 0;
}

BUILTIN(queue_get)
{
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "queue_get expected 1 or 2 arguments, got %d", argc);
    if (want_queue(t, argv[0], "queue_get"))
        return -1;
    vm_queue *q = (vm_queue *)argv[0].u.o;
    int err = 0;
    uint64_t deadline = deadline_from(t, argc == 2 ? argv[1] : V_NONE, "queue_get", &err);
    if (err)
        return -1;
    for (;;) {
        /* Pop only while holding the GIL, so the value is never unrooted. */
        pthread_mutex_lock(&q->mu);
        int got = q->len > 0;
        if (got) {
            *out = q->items[q->head];
            q->head = (q->head + 1) % q->cap;
            q->len--;
        }
        pthread_mutex_unlock(&q->mu);
        if (got)
            return 0;
        int r = wait_for(t, &q->mu, &q->cv, queue_nonempty, q, deadline, &q->nwaiters);
        if (r < 0)
            return -1;
        if (r == 0)
            return vm_raise(t, EXC(t)->timeout_error, "queue_get() timed out");
    }
}

BUILTIN(queue_size)
{
    if (want_queue(t, argv[0], "queue_size"))
        return -1;
    vm_queue *q = (vm_queue *)argv[0].u.o;
    pthread_mutex_lock(&q->mu);
    *out = V_INT((int64_t)q->len);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* ---- sleep and the switch interval ---- */

static int never(void *p) { return 0; }

/* Sleepers wait on a condvar nobody signals: a timed wait that signals can cut short. */
static pthread_mutex_t sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cv;
static pthread_once_t sleep_once = PTHREAD_ONCE_INIT;
static void sleep_init(void) { cond_init(&sleep_cv); }

BUILTIN(sleep)
{
    value s = argv[0];
    if (s.tag != T_INT && s.tag != T_FLOAT && s.tag != T_BOOL)
        return vm_raise(t, EXC(t)->type_error, "sleep() argument must be a number, not '%s'",
                        vm_type_name(s));
    double secs = s.tag == T_FLOAT ? s.u.f : (double)s.u.i;
    if (isnan(secs) || secs < 0)
        return vm_raise(t, EXC(t)->value_error, "sleep length must be non-negative");
    pthread_once(&sleep_once, sleep_init);
    uint64_t deadline = rt_now_ns() + (uint64_t)(secs * 1e9);
    if (secs == 0) {
        /* sleep(0) yields the GIL to any waiter, as CPython's time.sleep(0) does. */
        rt_thread_detach(&t->base);
        rt_thread_attach_urgent(&t->base);
    } else if (wait_for(t, &sleep_mu, &sleep_cv, never, NULL, deadline ? deadline : 1,
                        NULL) < 0)
        return -1;
    *out = V_NONE;
    return 0;
}

BUILTIN(getswitchinterval)
{
    *out = V_FLOAT((double)rt_interp_switch_interval(t->base.interp) / 1e6);
    return 0;
}

BUILTIN(setswitchinterval)
{
    value v = argv[0];
    if (v.tag != T_INT && v.tag != T_FLOAT && v.tag != T_BOOL)
        return vm_raise(t, EXC(t)->type_error, "must be real number, not %s", vm_type_name(v));
    double s = v.tag == T_FLOAT ? v.u.f : (double)v.u.i;
    if (!(s > 0))
        return vm_raise(t, EXC(t)->value_error, "switch interval must be strictly positive");
    double us = s * 1e6;
    if (us > 1e12)
        us = 1e12;
    rt_interp_set_switch_interval(t->base.interp, us < 1 ? 1 : (uint64_t)(us + 0.5));
    *out = V_NONE;
    return 0;
}

void vm_threads_after_fork_child(vm_thread *t)
{
    atomic_store(&nblocked, 0);
    atomic_store(&nstarting, 0);
    atomic_store(&nexiting, 0);
    pthread_mutex_init(&os_mu, NULL);
    forget_os_threads();                /* none of them exists here */
    /* The waker stayed in the parent, which still reads its pipe: the child makes its own. */
    rt_signal_set_notify_fd(-1);
    pthread_mutex_init(&waker.mu, NULL);
    for (int i = 0; i < 2; i++)
        if (waker.fds[i] >= 0) {
            close(waker.fds[i]);
            waker.fds[i] = -1;
        }
    waker.running = 0;
    waker.wait_mu = NULL;
    pthread_mutex_init(&sleep_mu, NULL);
    cond_init(&sleep_cv);
    for (vm_obj *o = VM_INTERP(t)->heap; o; o = o->next) {
        pthread_mutex_t *mu = NULL;
        pthread_cond_t *cv = NULL;
        if (o->tag == T_THREAD) {
            vm_thread_obj *th = (vm_thread_obj *)o;
            mu = &th->mu, cv = &th->cv;
            if (th->state == TH_RUNNING && th->ts != t) {
                th->state = TH_FINISHED;        /* its OS thread did not survive fork() */
                th->ts = NULL;
            }
        } else if (o->tag == T_LOCK) {
            mu = &((vm_lock *)o)->mu, cv = &((vm_lock *)o)->cv;
        } else if (o->tag == T_QUEUE) {
            mu = &((vm_queue *)o)->mu, cv = &((vm_queue *)o)->cv;
            ((vm_queue *)o)->nwaiters = 0;
        }
        if (mu) {
            pthread_mutex_init(mu, NULL);
            cond_init(cv);
        }
    }
}

void vm_threads_install(vm_thread *t)
{
    vm_gc_blacken_hooks[T_THREAD] = thread_blacken;
    vm_gc_free_hooks[T_THREAD] = thread_free;
    vm_gc_free_hooks[T_LOCK] = lock_free;
    vm_gc_blacken_hooks[T_QUEUE] = queue_blacken;
    vm_gc_free_hooks[T_QUEUE] = queue_free;
    static const struct { const char *name; int arity; vm_native_fn fn; } table[] = {
        {"thread_start", -1, bi_thread_start}, {"thread_join", -1, bi_thread_join},
        {"thread_is_alive", 1, bi_thread_is_alive}, {"thread_ident", 1, bi_thread_ident},
        {"get_ident", 0, bi_get_ident}, {"main_thread_ident", 0, bi_main_thread_ident},
        {"active_count", 0, bi_active_count}, {"Lock", 0, bi_Lock},
        {"lock_acquire", -1, bi_lock_acquire}, {"lock_release", 1, bi_lock_release},
        {"lock_locked", 1, bi_lock_locked}, {"Queue", 0, bi_Queue},
        {"queue_put", 2, bi_queue_put}, {"queue_get", -1, bi_queue_get},
        {"queue_size", 1, bi_queue_size}, {"sleep", 1, bi_sleep},
        {"getswitchinterval", 0, bi_getswitchinterval},
        {"setswitchinterval", 1, bi_setswitchinterval},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        vm_def_native(t, table[i].name, table[i].arity, table[i].fn);
}
