/* Asynchronous events on the VM side: the eval-breaker handler for stop requests, signals
 * and pending calls; bytecode calls queued for later (pending calls, timers); signal,
 * async-exception, atexit and fork builtins.  The runtime (runtime/pending.c, signals.c,
 * fork.c) keeps C function pointers and flags; this file wraps bytecode around them.
 *
 * Rooting: a queued bytecode call is a malloc'd vm_pcall on a registry (its function and
 * arguments are GC roots of its interpreter) from the moment it is created until its call
 * has returned.  Signal handlers, atexit functions and pending async exceptions are roots
 * too (gc_roots). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vm/api/api.h"
#include "vm/lib/async.h"
#include "vm/lib/threads.h"

#define EXC(t) (&VM_INTERP(t)->exc)
#define BUILTIN(name) static int bi_##name(vm_thread *t, int argc, value *argv, value *out)

/* ---- queued bytecode calls ---- */

typedef struct vm_pcall {
    struct vm_pcall *prev, *next;   /* the registry, under reg_mu */
    struct vm_pcall *tnext;         /* the timer list, under timer.mu */
    vm_interp *in;
    value func, args;               /* args: a tuple */
    uint64_t due_ns;                /* timers: when to queue it */
} vm_pcall;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static vm_pcall *registry;

static vm_pcall *pcall_new(vm_thread *t, value func, int argc, value *argv)
{
    vm_pcall *p = calloc(1, sizeof *p);
    if (!p)
        RT_FATAL("out of memory");
    p->in = VM_INTERP(t);
    p->func = func;
    p->args = vm_tuple_new(t, (size_t)argc, argv);
    pthread_mutex_lock(&reg_mu);
    p->next = registry;
    if (registry)
        registry->prev = p;
    registry = p;
    pthread_mutex_unlock(&reg_mu);
    return p;
}

static void pcall_free(vm_pcall *p)
{
    pthread_mutex_lock(&reg_mu);
    if (p->prev)
        p->prev->next = p->next;
    else
        registry = p->next;
    if (p->next)
        p->next->prev = p->prev;
    pthread_mutex_unlock(&reg_mu);
    free(p);
}

/* The rt_pending_fn of a bytecode call: runs on a thread of p->in, holding its GIL. */
static int run_pcall(void *arg)
{
    vm_pcall *p = arg;
    vm_thread *t = (vm_thread *)rt_thread_current();
    vm_tuple *args = AS_TUPLE(p->args);
    value result;
    int rc = vm_call(t, p->func, (int)args->len, args->items, &result);
    pcall_free(p);                  /* rooted until here: the call is over */
    return rc;
}

static int want_callable(vm_thread *t, value f, const char *fn)
{
    if (f.tag == T_FUNC || f.tag == T_NATIVE || f.tag == T_CLASS)
        return 0;
    return vm_raise(t, EXC(t)->type_error, "%s() argument must be callable, not '%s'", fn,
                    vm_type_name(f));
}

static int want_int(vm_thread *t, value v, const char *fn, int64_t *out)
{
    if (v.tag != T_INT && v.tag != T_BOOL)
        return vm_raise(t, EXC(t)->type_error, "%s() argument must be int, not '%s'", fn,
                        vm_type_name(v));
    *out = v.u.i;
    return 0;
}

static int want_seconds(vm_thread *t, value v, const char *fn, double *out)
{
    if (v.tag == T_FLOAT)
        *out = v.u.f;
    else if (v.tag == T_INT || v.tag == T_BOOL)
        *out = (double)v.u.i;
    else
        return vm_raise(t, EXC(t)->type_error, "%s() delay must be a number, not '%s'", fn,
                        vm_type_name(v));
    if (!(*out >= 0))
        return vm_raise(t, EXC(t)->value_error, "%s() delay must be non-negative", fn);
    return 0;
}

/* ---- timers: one thread queues each call when it is due ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* the list's head changed, or stop */
    vm_pcall *list;                 /* by due_ns */
    vm_pcall *current;              /* being queued by the thread, outside mu */
    int running, stop;
    pthread_t thread;
} timer = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static void timer_insert(vm_pcall *p)
{
    vm_pcall **link = &timer.list;
    while (*link && (*link)->due_ns <= p->due_ns)
        link = &(*link)->tnext;
    p->tnext = *link;
    *link = p;
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&timer.mu);
    while (!timer.stop) {
        vm_pcall *p = timer.list;
        uint64_t now = rt_now_ns();
        if (p == NULL || p->due_ns > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = p ? p->due_ns - now : 1000000000u;
            ts.tv_sec += (time_t)(wait / 1000000000u);
            ts.tv_nsec += (long)(wait % 1000000000u);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&timer.cv, &timer.mu, &ts);
            continue;
        }
        timer.list = p->tnext;
        timer.current = p;
        pthread_mutex_unlock(&timer.mu);
        int full = rt_pending_add(&p->in->base, run_pcall, p);
        pthread_mutex_lock(&timer.mu);
        timer.current = NULL;
        if (full) {                 /* the queue is full: try again in a millisecond */
            p->due_ns = rt_now_ns() + 1000000u;
            timer_insert(p);
        }
    }
    pthread_mutex_unlock(&timer.mu);
    return NULL;
}

/* Under timer.mu: starts the thread with every signal blocked, so signals go to VM threads. */
static int timer_start(void)
{
    if (timer.running)
        return 0;
    cond_init_monotonic(&timer.cv);
    timer.stop = 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&timer.thread, NULL, timer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pthread_cond_destroy(&timer.cv);
        return -1;
    }
    timer.running = 1;
    return 0;
}

/* Stops the timer thread and frees the timers not yet due. */
static void timer_stop(void)
{
    pthread_mutex_lock(&timer.mu);
    int running = timer.running;
    timer.stop = 1;
    timer.running = 0;
    if (running)
        pthread_cond_broadcast(&timer.cv);
    vm_pcall *list = timer.list;
    timer.list = NULL;
    pthread_mutex_unlock(&timer.mu);
    if (running) {
        pthread_join(timer.thread, NULL);
        pthread_cond_destroy(&timer.cv);
    }
    while (list) {
        vm_pcall *next = list->tnext;
        pcall_free(list);
        list = next;
    }
}

/* ---- per-interpreter state kept outside the heap: the atexit list ---- */

typedef struct async_interp {
    struct async_interp *next;
    vm_interp *in;
    value atexit;                   /* list of (func, args) tuples */
} async_interp;

static async_interp *interps;       /* under reg_mu */

static async_interp *interp_state(vm_interp *in)
{
    pthread_mutex_lock(&reg_mu);
    async_interp *a = interps;
    while (a && a->in != in)
        a = a->next;
    pthread_mutex_unlock(&reg_mu);
    return a;
}

/* ---- signals ---- */

/* Handlers set by bytecode, main interpreter only: a callable, SIG_DFL (0), SIG_IGN (1), or
 * T_UNDEF (never set: getsignal reports the OS disposition). */
static value handlers[RT_NSIG];
static vm_interp *handlers_in;      /* the interpreter they belong to */

static int can_handle_signals(vm_thread *t)
{
    return rt_signals_can_handle(&t->base);
}

static int run_handler(rt_thread *rt, int signum, void *arg)
{
    (void)arg;
    vm_thread *t = (vm_thread *)rt;
    value h = handlers[signum];
    if (h.tag != T_FUNC && h.tag != T_NATIVE && h.tag != T_CLASS)
        return 0;                   /* reset to SIG_DFL/SIG_IGN after it tripped */
    value sig = V_INT(signum), result;
    t->roots[t->nroots++] = h;      /* signal() inside the handler may drop the last ref */
    int rc = vm_call(t, h, 1, &sig, &result);
    t->nroots--;
    return rc;
}

int vm_signals_run(vm_thread *t)
{
    if (!can_handle_signals(t)) {
        rt_breaker_clear(&t->base.eval_breaker, RT_SIGNALS_PENDING);
        return 0;
    }
    return rt_signals_handle(&t->base, run_handler, NULL);
}

static int signal_range(vm_thread *t, value v, const char *fn, int *signum)
{
    int64_t n = 0;
    if (want_int(t, v, fn, &n))
        return -1;
    if (n < 1 || n >= RT_NSIG)
        return vm_raise(t, EXC(t)->value_error, "signal number out of range");
    *signum = (int)n;
    return 0;
}

static int os_error(vm_thread *t, int err)
{
    return vm_raise(t, EXC(t)->os_error, "[Errno %d] %s", err, strerror(err));
}

static value get_handler(int signum)
{
    if (handlers[signum].tag != T_UNDEF)
        return handlers[signum];
    switch (rt_signal_get(signum)) {
    case RT_SIG_DFL: return V_INT(RT_SIG_DFL);
    case RT_SIG_IGN: return V_INT(RT_SIG_IGN);
    default: return V_NONE;
    }
}

BUILTIN(signal)
{
    int signum = 0;
    if (!can_handle_signals(t))
        return vm_raise(t, EXC(t)->value_error,
                        "signal only works in main thread of the main interpreter");
    if (signal_range(t, argv[0], "signal", &signum))
        return -1;
    value h = argv[1];
    int action;
    if (h.tag == T_FUNC || h.tag == T_NATIVE || h.tag == T_CLASS)
        action = RT_SIG_CATCH;
    else if (h.tag == T_INT && (h.u.i == RT_SIG_DFL || h.u.i == RT_SIG_IGN))
        action = (int)h.u.i;
    else
        return vm_raise(t, EXC(t)->type_error,
                        "signal handler must be SIG_IGN, SIG_DFL, or a callable object");
    if (vm_signals_run(t))          /* signals that arrived before the change [CPython] */
        return -1;
    if (rt_signal_set(signum, action))
        return os_error(t, errno);
    *out = get_handler(signum);
    handlers[signum] = h;
    handlers_in = VM_INTERP(t);
    return 0;
}

BUILTIN(getsignal)
{
    int signum = 0;
    if (signal_range(t, argv[0], "getsignal", &signum))
        return -1;
    *out = get_handler(signum);
    return 0;
}

BUILTIN(default_int_handler)
{
    return vm_raise_value(t, vm_exc_new(t, EXC(t)->keyboard_interrupt, V_NONE));
}

BUILTIN(raise_signal)
{
    int signum = 0;
    if (signal_range(t, argv[0], "raise_signal", &signum))
        return -1;
    if (raise(signum) != 0)
        return os_error(t, errno);
    *out = V_NONE;
    return vm_signals_run(t);       /* the handler runs now if this is the main thread */
}

BUILTIN(kill)
{
    int64_t pid = 0, sig = 0;
    if (want_int(t, argv[0], "kill", &pid) || want_int(t, argv[1], "kill", &sig))
        return -1;
    if (kill((pid_t)pid, (int)sig) != 0)
        return os_error(t, errno);
    *out = V_NONE;
    return vm_signals_run(t);       /* it may have been for us [os.kill] */
}

BUILTIN(alarm)
{
    int64_t secs = 0;
    if (want_int(t, argv[0], "alarm", &secs))
        return -1;
    if (secs < 0)
        return vm_raise(t, EXC(t)->value_error, "alarm() argument must be non-negative");
    *out = V_INT((int64_t)alarm((unsigned)secs));
    return 0;
}

BUILTIN(getpid) { *out = V_INT((int64_t)getpid()); return 0; }
BUILTIN(getppid) { *out = V_INT((int64_t)getppid()); return 0; }

BUILTIN(set_wakeup_fd)
{
    int64_t fd = 0;
    if (want_int(t, argv[0], "set_wakeup_fd", &fd))
        return -1;
    if (!can_handle_signals(t))
        return vm_raise(t, EXC(t)->value_error,
                        "set_wakeup_fd only works in main thread of the main interpreter");
    if (fd != -1) {
        struct stat st;
        if (fd < 0 || fd > INT32_MAX || fstat((int)fd, &st) != 0)
            return os_error(t, fd < 0 || fd > INT32_MAX ? EBADF : errno);
        int fl = fcntl((int)fd, F_GETFL);
        if (fl < 0)
            return os_error(t, errno);
        if (!(fl & O_NONBLOCK))
            return vm_raise(t, EXC(t)->value_error, "the fd %d must be in non-blocking mode",
                            (int)fd);
    }
    *out = V_INT(rt_signal_set_wakeup_fd((int)fd));
    return 0;
}

BUILTIN(signal_count)
{
    int signum = 0;
    if (signal_range(t, argv[0], "signal_count", &signum))
        return -1;
    *out = V_INT((int64_t)rt_signal_count(signum));
    return 0;
}

/* ---- pending calls and timers ---- */

static int queue_call(vm_thread *t, int main_only, rt_interp *target, int argc, value *argv,
                      value *out)
{
    vm_pcall *p = pcall_new(t, argv[0], argc - 1, argv + 1);
    int rc = main_only ? rt_pending_add_main(run_pcall, p) : rt_pending_add(target, run_pcall, p);
    if (rc)
        pcall_free(p);              /* full: refused, nothing raised */
    *out = V_BOOL(rc == 0);
    return 0;
}

BUILTIN(call_soon_main)
{
    if (argc < 1)
        return vm_raise(t, EXC(t)->type_error, "call_soon_main expected at least 1 argument");
    if (want_callable(t, argv[0], "call_soon_main"))
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
    if (want_int(t, argv[0], "pending_call", &id) || want_callable(t, argv[1], "pending_call"))
        return -1;
    rt_interp *target = rt_interp_find(id);
    if (target == NULL)
        return vm_raise(t, EXC(t)->interpreter_error, "unrecognized interpreter ID %lld",
                        (long long)id);
    if (target != t->base.interp)   /* objects are never shared between interpreters */
        return vm_raise(t, EXC(t)->interpreter_error,
                        "pending_call: interpreter %lld cannot run a function of interpreter %lld",
                        (long long)id, (long long)t->base.interp->id);
    return queue_call(t, 0, target, argc - 1, argv + 1, out);
}

BUILTIN(call_later)
{
    double delay = 0;
    if (argc < 2)
        return vm_raise(t, EXC(t)->type_error, "call_later expected at least 2 arguments");
    if (want_seconds(t, argv[0], "call_later", &delay) || want_callable(t, argv[1], "call_later"))
        return -1;
    if (delay > 1e9)
        delay = 1e9;
    vm_pcall *p = pcall_new(t, argv[1], argc - 2, argv + 2);
    p->due_ns = rt_now_ns() + (uint64_t)(delay * 1e9);
    pthread_mutex_lock(&timer.mu);
    int rc = timer_start();
    if (rc == 0) {
        timer_insert(p);
        if (timer.list == p)
            pthread_cond_signal(&timer.cv);
    }
    pthread_mutex_unlock(&timer.mu);
    if (rc) {
        pcall_free(p);
        return vm_raise(t, EXC(t)->runtime_error, "can't start the timer thread");
    }
    *out = V_NONE;
    return 0;
}

/* ---- async exceptions ---- */

BUILTIN(set_async_exc)
{
    int64_t id = 0;
    if (want_int(t, argv[0], "set_async_exc", &id))
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
                                              e.tag == T_EXC ? e.u.o : NULL, &old);
    *out = V_INT(n);                /* `old` is garbage now: the collector takes it */
    return 0;
}

/* ---- atexit ---- */

BUILTIN(atexit)
{
    if (argc < 1)
        return vm_raise(t, EXC(t)->type_error, "atexit expected at least 1 argument");
    if (want_callable(t, argv[0], "atexit"))
        return -1;
    async_interp *a = interp_state(VM_INTERP(t));
    value args = vm_tuple_new(t, (size_t)argc - 1, argv + 1);
    value pair[2] = {argv[0], args};
    vm_list_append(t, AS_LIST(a->atexit), vm_tuple_new(t, 2, pair));
    *out = argv[0];
    return 0;
}

static void report_ignored(vm_thread *t, const char *what, value func)
{
    value e = t->exc;
    t->exc = V_UNDEF;
    fflush(stdout);
    if (func.tag != T_UNDEF)
        fprintf(stderr, "Exception ignored in %s: %s\n", what, AS_STR(vm_repr(t, func))->data);
    else
        fprintf(stderr, "Exception ignored in %s:\n", what);
    vm_print_traceback(t, e);
}

void vm_atexit_run(vm_thread *t)
{
    async_interp *a = interp_state(VM_INTERP(t));
    if (!a)
        return;
    vm_list *l = AS_LIST(a->atexit);
    while (l->len > 0) {
        value entry = l->items[--l->len];
        t->roots[t->nroots++] = entry;
        vm_tuple *pair = AS_TUPLE(entry);
        vm_tuple *args = AS_TUPLE(pair->items[1]);
        value result;
        if (vm_call(t, pair->items[0], (int)args->len, args->items, &result))
            report_ignored(t, "atexit callback", pair->items[0]);
        t->nroots--;
    }
}

void vm_pending_finish(vm_thread *t)
{
    /* Bounded: a call that queues itself again must not keep the process alive forever. */
    for (int pass = 0; pass < 10000 && rt_pending_count(&t->base) > 0; pass++)
        if (rt_pending_run(&t->base)) {
            if (t->exc.tag != T_EXC)
                vm_raise(t, EXC(t)->runtime_error, "pending call failed");
            report_ignored(t, "pending call", V_UNDEF);
        }
}

/* ---- fork ---- */

static void fork_before(vm_thread *t)
{
    vm_threads_before_fork();
    pthread_mutex_lock(&timer.mu);
    pthread_mutex_lock(&reg_mu);
    rt_fork_before(&t->base);
}

static void fork_parent(vm_thread *t)
{
    rt_fork_after_parent(&t->base);
    pthread_mutex_unlock(&reg_mu);
    pthread_mutex_unlock(&timer.mu);
}

#ifdef GILVM_SANITIZE
/* LeakSanitizer in a forked child still lists the parent's threads and cannot stop them
 * ("Running thread N was not suspended. False leaks are possible."): children skip the
 * exit-time leak check (the parent keeps it); stdio is flushed as exit() would. */
static void exit_without_leak_check(int status, void *arg)
{
    (void)arg;
    fflush(NULL);
    _exit(status);
}
#endif

static void fork_child(vm_thread *t)
{
#ifdef GILVM_SANITIZE
    on_exit(exit_without_leak_check, NULL);
#endif
    vm_threads_after_fork_child(t);             /* thread objects first: states go next */
    rt_status st = rt_fork_after_child(&t->base);
    if (st.failed)
        rt_fatal(st.func, st.msg);
    vm_main_tstate = t;
    pthread_mutex_unlock(&reg_mu);
    /* The timer thread stayed in the parent, and so do its timers; the condvar, which may
     * show its wait, is re-created when a timer starts a new thread. */
    vm_pcall *list = timer.list;
    timer.list = timer.current = NULL;
    timer.running = 0;
    pthread_mutex_unlock(&timer.mu);
    while (list) {
        vm_pcall *next = list->tnext;
        pcall_free(list);
        list = next;
    }
}

BUILTIN(fork)
{
    rt_interp *in = t->base.interp;
    if (in != rt_interp_main() || !in->config.allow_fork)
        return vm_raise(t, EXC(t)->runtime_error, "fork not supported for subinterpreters");
    if (atomic_load(&rt_main_runtime.finalizing) || atomic_load(&in->finalizing))
        return vm_raise(t, EXC(t)->finalization_error, "can't fork at interpreter shutdown");
    fflush(NULL);                   /* else the child writes the parent's buffered output too */
    fork_before(t);
    pid_t pid = fork();
    int err = errno;
    if (pid == 0) {
        fork_child(t);
        *out = V_INT(0);
        return 0;
    }
    fork_parent(t);
    if (pid < 0)
        return os_error(t, err);
    *out = V_INT((int64_t)pid);
    return 0;
}

BUILTIN(waitpid)
{
    int64_t pid = 0;
    if (want_int(t, argv[0], "waitpid", &pid))
        return -1;
    for (;;) {
        int status = 0, err = 0, interrupted = 0;
        pid_t r;
        long pause_ns = 50000;
        vm_blocking_begin(t);
        while ((r = waitpid((pid_t)pid, &status, WNOHANG)) == 0 || (r < 0 && errno == EINTR)) {
            if (vm_blocking_poll(t, NULL)) {
                interrupted = 1;
                break;
            }
            struct timespec ts = {0, pause_ns};
            nanosleep(&ts, NULL);
            if (pause_ns < 5000000)
                pause_ns *= 2;
        }
        err = errno;
        vm_blocking_end(t);
        if (interrupted) {
            if (vm_wait_interrupted(t))
                return -1;
            continue;
        }
        if (r < 0)
            return os_error(t, err);
        /* As os.waitstatus_to_exitcode: the exit code, or minus the signal that ended it. */
        *out = V_INT(WIFSIGNALED(status) ? -(int64_t)WTERMSIG(status) : WEXITSTATUS(status));
        return 0;
    }
}

BUILTIN(_exit)
{
    int64_t code = 0;
    if (want_int(t, argv[0], "_exit", &code))
        return -1;
    _exit((int)(code & 0xff));
}

/* ---- file descriptors, enough for wakeup fds and talking to a forked child ---- */

BUILTIN(pipe)
{
    int fds[2];
    if (pipe(fds) != 0)
        return os_error(t, errno);
    value v[2] = {V_INT(fds[0]), V_INT(fds[1])};
    *out = vm_tuple_new(t, 2, v);
    return 0;
}

static int want_fd(vm_thread *t, value v, const char *fn, int *fd)
{
    int64_t n = 0;
    if (want_int(t, v, fn, &n))
        return -1;
    if (n < 0 || n > INT32_MAX)
        return os_error(t, EBADF);
    *fd = (int)n;
    return 0;
}

BUILTIN(set_blocking)
{
    int fd = 0;
    if (want_fd(t, argv[0], "set_blocking", &fd))
        return -1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, vm_truthy(argv[1]) ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) < 0)
        return os_error(t, errno);
    *out = V_NONE;
    return 0;
}

/* Reads up to n bytes: at once from a non-blocking fd, else waiting with the GIL released
 * (and running signal handlers meanwhile, on the main thread). */
BUILTIN(fd_read)
{
    int fd = 0;
    int64_t n = 0;
    if (want_fd(t, argv[0], "fd_read", &fd) || want_int(t, argv[1], "fd_read", &n))
        return -1;
    if (n < 0 || n > (1 << 24))
        return vm_raise(t, EXC(t)->value_error, "fd_read() size out of range");
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return os_error(t, errno);
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        RT_FATAL("out of memory");
    ssize_t got;
    int err;
    for (;;) {
        int interrupted = 0;
        if (!(fl & O_NONBLOCK)) {
            vm_blocking_begin(t);
            struct pollfd p = {.fd = fd, .events = POLLIN};
            for (;;) {
                int r = poll(&p, 1, 20);
                if (r > 0 || (r < 0 && errno != EINTR))
                    break;
                if (vm_blocking_poll(t, NULL)) {
                    interrupted = 1;
                    break;
                }
            }
            got = interrupted ? -1 : read(fd, buf, (size_t)n);
            err = errno;
            vm_blocking_end(t);
        } else {
            got = read(fd, buf, (size_t)n);
            err = errno;
        }
        if (interrupted) {
            if (vm_wait_interrupted(t)) {
                free(buf);
                return -1;
            }
            continue;
        }
        break;
    }
    if (got < 0) {
        free(buf);
        return os_error(t, err);
    }
    *out = vm_bytes_new(t, buf, (size_t)got);
    free(buf);
    return 0;
}

BUILTIN(fd_write)
{
    int fd = 0;
    if (want_fd(t, argv[0], "fd_write", &fd))
        return -1;
    value d = argv[1];
    if (d.tag != T_BYTES && d.tag != T_STR)
        return vm_raise(t, EXC(t)->type_error, "fd_write() data must be bytes or str, not '%s'",
                        vm_type_name(d));
    ssize_t n = write(fd, AS_STR(d)->data, AS_STR(d)->len);
    if (n < 0)
        return os_error(t, errno);
    *out = V_INT((int64_t)n);
    return 0;
}

BUILTIN(fd_close)
{
    int fd = 0;
    if (want_fd(t, argv[0], "fd_close", &fd))
        return -1;
    if (close(fd) != 0)
        return os_error(t, errno);
    *out = V_NONE;
    return 0;
}

/* ---- hooks: the poll, blocking waits, the collector ---- */

/* Stop requests, signals, pending calls: the first three steps of _Py_HandlePending. */
static int async_poll(vm_thread *t, uint32_t bits)
{
    if (bits & RT_EVAL_PLEASE_STOP)     /* for a thread that must exit, call.c has ended it */
        rt_breaker_clear(&t->base.eval_breaker, RT_EVAL_PLEASE_STOP);
    if ((bits & RT_SIGNALS_PENDING) && vm_signals_run(t))
        return -1;
    if ((bits & RT_CALLS_TO_DO) && rt_pending_run(&t->base)) {
        if (t->exc.tag != T_EXC)        /* a C pending call failed without raising */
            vm_raise(t, EXC(t)->runtime_error, "pending call failed");
        return -1;
    }
    return 0;
}

/* A blocking wait woke up for RT_SIGNALS_PENDING or RT_EVAL_PLEASE_STOP, holding the GIL. */
static int wait_hook(vm_thread *t)
{
    uint32_t bits = rt_breaker_load(&t->base.eval_breaker);
    if ((bits & RT_EVAL_PLEASE_STOP) && rt_thread_must_exit(&t->base))
        rt_gil_yield(&t->base);         /* the re-take ends this thread */
    return async_poll(t, bits & (RT_EVAL_PLEASE_STOP | RT_SIGNALS_PENDING));
}

static void gc_roots(vm_interp *in, vm_gc_mark_fn mark, void *g)
{
    pthread_mutex_lock(&reg_mu);
    for (vm_pcall *p = registry; p; p = p->next)
        if (p->in == in) {
            mark(g, p->func);
            mark(g, p->args);
        }
    for (async_interp *a = interps; a; a = a->next)
        if (a->in == in)
            mark(g, a->atexit);
    pthread_mutex_unlock(&reg_mu);
    if (handlers_in == in)
        for (int i = 0; i < RT_NSIG; i++)
            mark(g, handlers[i]);
    for (rt_thread *r = in->base.threads; r; r = r->next) {
        void *e = atomic_load(&r->async_exc);
        if (e)
            mark(g, V_OBJ(T_EXC, e));
    }
}

static void add_hook(void **slots, int n, void *fn)
{
    for (int i = 0; i < n; i++)
        if (slots[i] == fn)
            return;
    for (int i = 0; i < n; i++)
        if (slots[i] == NULL) {
            slots[i] = fn;
            return;
        }
    RT_FATAL("no free hook slot");
}

void vm_async_install(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    add_hook((void **)vm_pending_hooks, VM_PENDING_MAX_HOOKS, (void *)async_poll);
    add_hook((void **)vm_gc_root_hooks, VM_GC_MAX_ROOT_HOOKS, (void *)gc_roots);
    vm_wait_hook = wait_hook;

    async_interp *a = calloc(1, sizeof *a);
    if (!a)
        RT_FATAL("out of memory");
    a->in = in;
    a->atexit = vm_list_new(t, 0);
    pthread_mutex_lock(&reg_mu);
    a->next = interps;
    interps = a;
    pthread_mutex_unlock(&reg_mu);

    static const struct { const char *name; int arity; vm_native_fn fn; } table[] = {
        {"signal", 2, bi_signal}, {"getsignal", 1, bi_getsignal},
        {"default_int_handler", -1, bi_default_int_handler},
        {"raise_signal", 1, bi_raise_signal}, {"kill", 2, bi_kill}, {"alarm", 1, bi_alarm},
        {"getpid", 0, bi_getpid}, {"getppid", 0, bi_getppid},
        {"set_wakeup_fd", 1, bi_set_wakeup_fd}, {"signal_count", 1, bi_signal_count},
        {"call_soon_main", -1, bi_call_soon_main}, {"pending_call", -1, bi_pending_call},
        {"call_later", -1, bi_call_later}, {"set_async_exc", 2, bi_set_async_exc},
        {"atexit", -1, bi_atexit}, {"fork", 0, bi_fork}, {"waitpid", 1, bi_waitpid},
        {"_exit", 1, bi__exit}, {"pipe", 0, bi_pipe}, {"set_blocking", 2, bi_set_blocking},
        {"fd_read", 2, bi_fd_read}, {"fd_write", 2, bi_fd_write}, {"fd_close", 1, bi_fd_close},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        vm_def_native(t, table[i].name, table[i].arity, table[i].fn);

    static const struct { const char *name; int value; } consts[] = {
        {"SIG_DFL", RT_SIG_DFL}, {"SIG_IGN", RT_SIG_IGN}, {"NSIG", RT_NSIG},
        {"SIGHUP", SIGHUP}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT}, {"SIGABRT", SIGABRT},
        {"SIGKILL", SIGKILL}, {"SIGUSR1", SIGUSR1}, {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},
        {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM}, {"SIGCHLD", SIGCHLD},
        {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP}, {"SIGWINCH", SIGWINCH},
    };
    for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
        vm_global_set(t, consts[i].name, V_INT(consts[i].value));

    if (rt_signals_can_handle(&t->base)) {
        for (int i = 0; i < RT_NSIG; i++)
            handlers[i] = V_UNDEF;
        handlers_in = in;
    }
}

void vm_signals_install_default(vm_thread *t)
{
    /* Not if the process was started with SIGINT ignored (a background job) [CPython]. */
    if (can_handle_signals(t) && rt_signal_get(SIGINT) == RT_SIG_DFL &&
        rt_signal_set(SIGINT, RT_SIG_CATCH) == 0)
        handlers[SIGINT] = vm_global_get(VM_INTERP(t), "default_int_handler");
}

void vm_async_fini(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    vm_threads_quiesce();
    if (in == (vm_interp *)rt_interp_main()) {
        timer_stop();
        vm_threads_fini();
    }
    pthread_mutex_lock(&reg_mu);
    vm_pcall **link = &registry;
    while (*link) {
        vm_pcall *p = *link;
        if (p->in == in) {
            *link = p->next;
            if (p->next)
                p->next->prev = p->prev;
            free(p);
        } else {
            link = &p->next;
        }
    }
    async_interp **ap = &interps;
    while (*ap && (*ap)->in != in)
        ap = &(*ap)->next;
    if (*ap) {
        async_interp *a = *ap;
        *ap = a->next;
        free(a);
    }
    pthread_mutex_unlock(&reg_mu);
    if (handlers_in == in) {
        for (int i = 0; i < RT_NSIG; i++)
            handlers[i] = V_UNDEF;
        handlers_in = NULL;
    }
}
