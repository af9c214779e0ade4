/* SPDX-License-Identifier: MIT */
/* Blocking waits without the GIL: thread join, lock acquire, queue get and sleep all wait
 * here (vm_wait), and waitpid and fd reads use the same begin/poll/end bracket.
 *
 * Notes
 * -----
 * A wait detaches from the GIL, waits on its object's wait queue (mutex + condvar), and
 * re-attaches with rt_thread_attach_urgent (the convoy fix).  It sleeps in slices of at most
 * VM_WAIT_SLICE_NS, so that it notices a finalizing runtime, and so that the main thread
 * can run signal handlers while it waits (vm_poll_in_wait) and give up if one raised.
 *
 * Signals: the C handler cannot signal a condvar, so it writes a byte to a pipe
 * (rt_signal_set_notify_fd) read by the waker thread, which broadcasts the condvar the main
 * thread waits on (under that wait's mutex, so the wake-up cannot fall between the main
 * thread's check of the pending bit and its wait).  The waker starts with the main thread's
 * first wait.
 *
 * Finalization: a thread blocked in a wait (vm_blocking_begin .. _end) may belong to a
 * daemon thread that must never run again.  It checks rt_thread_must_exit after each slice
 * and ends itself without touching its thread state again.  vm_proc.nblocked counts these
 * threads (threading.c counts those starting and exiting likewise), so that
 * vm_wait_quiesce lets finalization wait until none is left before the runtime frees thread
 * states and the heap (with the objects' condvars).
 *
 * Deadlocks (under the normal scheduler, once vm_wait_watch_deadlocks is called: CLI
 * program runs).  A thread in a wait without deadline (not a sleep) whose first slice timed
 * out publishes its (ready, obj) in its vm_thread under vm_proc.watch.mu, and unpublishes
 * it under that mutex before it leaves the wait: a wait shorter than a slice pays nothing,
 * a longer one two uncontended lock pairs.  After each slice timeout of such a wait, at
 * most once per slice in the process (watch.next_ns), the waiter scans: holding watch.mu,
 * it walks every thread state of every interpreter (rt_threads_foreach, under HEAD_LOCK)
 * and requires each to be published with ready(obj) false under the object's q->mu; then
 * that no thread is starting or exiting (vm_proc.mu).  Why a report is never wrong: a
 * thread publishes only under watch.mu, so every thread the scan finds published published
 * before the scan began, and it cannot unpublish, hence leave its wait, until the scan
 * ends; inside its wait it changes nothing (ready is a pure test).  HEAD_LOCK keeps the
 * list whole, and a thread off the list does nothing a waiter sees (a starting thread is
 * listed from rt_thread_new, an exiting one until after it marks itself finished; nstarting
 * and nexiting are checked all the same).  So from the scan's start no thread that could
 * make a ready() true runs: each false ready() stays false, the snapshot is exact rather
 * than merely consistent, and no epoch is needed.  Published also means obj stays alive
 * (the waiter's frame holds it and the waiter cannot return to bytecode), so the scan may
 * lock its q->mu and describe it.  Lock order: watch.mu, HEAD_LOCK, q->mu; vm_proc.mu only
 * after HEAD_LOCK is released (fork takes vm_proc.mu, then HEAD_LOCK).  What the VM cannot
 * see may still end a wait, so no scan runs while: the program handles a signal or set a
 * wakeup fd (watch.handlers; not the default SIGINT handler: Ctrl-C ends a deadlocked
 * program as ever), an FFI callback exists (a native thread may call in through GILState),
 * the controlled scheduler runs (it detects deadlocks itself), or the runtime is
 * finalizing.  A queued call (call_later's timers, pending_call, call_soon_main) does not
 * count: it runs only at a poll, and a thread in a wait runs none (vm_blocking_poll leaves
 * out RT_CALLS_TO_DO), so while every thread waits none can run; were waits to run them,
 * vm_proc.calls would join the list above.  A state swapped out by interp_call is not
 * published: no report then.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/sched.h"
#include "vm/lib/native.h"
#include "vm/lib/process.h"

/* What each wait predicate waits for (vm_wait_register), for the scheduler's records and
 * its deadlock report; written at install time, before any thread starts. */
static struct {
    int (*ready)(void *);
    const char *what;
    void (*describe)(void *obj, char *buf, size_t n);
} kinds[16];
static int nkinds;

void vm_wait_register(int (*ready)(void *), const char *what,
                      void (*describe)(void *obj, char *buf, size_t n))
{
    for (int i = 0; i < nkinds; i++)
        if (kinds[i].ready == ready)
            return;
    if (nkinds < (int)(sizeof kinds / sizeof kinds[0]))
    {
        kinds[nkinds].ready = ready;
        kinds[nkinds].what = what;
        kinds[nkinds++].describe = describe;
    }
}

const char *vm_wait_what(int (*ready)(void *))
{
    for (int i = 0; i < nkinds; i++)
        if (kinds[i].ready == ready)
            return kinds[i].what;
    return "wait";
}

void vm_wait_describe(int (*ready)(void *), void *obj, char *buf, size_t n)
{
    for (int i = 0; i < nkinds; i++)
        if (kinds[i].ready == ready) {
            size_t k = (size_t)snprintf(buf, n, "%s", kinds[i].what);
            if (kinds[i].describe && k + 2 < n) {
                snprintf(buf + k, n - k, " of ");
                kinds[i].describe(obj, buf + k + 4, n - k - 4);
            }
            return;
        }
    snprintf(buf, n, "wait");
}

uint64_t vm_clock_ns(void)
{
    return rt_sched_clock_ns();
}

void vm_waitq_init(vm_waitq *q)
{
    pthread_mutex_init(&q->mu, NULL);
    rt_cond_init(&q->cv);
    q->nwaiters = 0;
}

void vm_waitq_destroy(vm_waitq *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

void vm_waitable_free(vm_obj *o)
{
    vm_waitq_destroy(&((vm_waitable *)o)->wq);
}

void vm_blocking_begin_as(vm_thread *t, const char *what)
{
    vm_process_count(&vm_proc.nblocked, 1);
    rt_thread_detach(&t->base);
    rt_sched_outside_begin(&t->base, what);
}

void vm_blocking_begin(vm_thread *t)
{
    vm_blocking_begin_as(t, "fd-io");
}

uint32_t vm_blocking_poll(vm_thread *t, pthread_mutex_t *held)
{
    if (rt_thread_must_exit(&t->base)) {
        /* Another thread finalizes: end without touching `t`, which it may free. */
        if (held)
            pthread_mutex_unlock(held);
        vm_process_count(&vm_proc.nblocked, -1);
        rt_thread_exit();
    }
    uint32_t bits = rt_breaker_load(&t->base.eval_breaker);
    if ((bits & RT_LIMITS) && !atomic_load(&VM_INTERP(t)->limits.exceeded))
        bits &= ~(uint32_t)RT_LIMITS;           /* a limit applies, but none is exceeded */
    return bits & (RT_SIGNALS_PENDING | RT_EVAL_PLEASE_STOP | RT_ASYNC_EXCEPTION | RT_LIMITS);
}

void vm_blocking_end(vm_thread *t)
{
    rt_sched_outside_end(&t->base);
    vm_process_count(&vm_proc.nblocked, -1);
    rt_thread_attach_urgent(&t->base);
}

void vm_wait_quiesce(void)
{
    /* Waits are sliced, so this takes one slice; the bound is a safety net. */
    uint64_t end = rt_now_ns() + 5000000000ull;
    pthread_mutex_lock(&vm_proc.mu);
    while ((vm_proc.nblocked || vm_proc.nstarting || vm_proc.nexiting) &&
           !rt_cond_wait_until(&vm_proc.quiet, &vm_proc.mu, end))
        ;
    pthread_mutex_unlock(&vm_proc.mu);
}

void vm_wait_settled(void)
{
    pthread_mutex_lock(&vm_proc.mu);
    while (vm_proc.nstarting || vm_proc.nexiting)
        pthread_cond_wait(&vm_proc.quiet, &vm_proc.mu);
    pthread_mutex_unlock(&vm_proc.mu);
}

/* ---- the waker: wakes the main thread's waits when a signal arrives ---- */

static void *waker_main(void *arg)
{
    (void)arg;
    char buf[64];
    for (;;) {
        ssize_t n = read(vm_proc.waker.fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        pthread_mutex_lock(&vm_proc.waker.mu);
        int stop = vm_proc.waker.stop || n <= 0;
        if (vm_proc.waker.wait_mu) {
            pthread_mutex_lock(vm_proc.waker.wait_mu);
            pthread_cond_broadcast(vm_proc.waker.wait_cv);
            pthread_mutex_unlock(vm_proc.waker.wait_mu);
        }
        pthread_mutex_unlock(&vm_proc.waker.mu);
        if (stop)
            return NULL;
    }
}

/* Under waker.mu: starts the waker (all signals blocked in it) if it is not running. */
static void waker_start(void)
{
    if (vm_proc.waker.running)
        return;
    int *fds = vm_proc.waker.fds;
    if (fds[0] < 0) {
        if (pipe(fds) != 0)
            return;                 /* waits then notice signals within a slice */
        for (int i = 0; i < 2; i++)
            fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        fcntl(fds[1], F_SETFL, O_NONBLOCK);
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    vm_proc.waker.stop = 0;
    vm_proc.waker.running = pthread_create(&vm_proc.waker.thread, NULL, waker_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (vm_proc.waker.running)
        rt_signal_set_notify_fd(fds[1]);
}

/* Makes the waker broadcast `q` (NULL: nothing) when a signal arrives. */
static void waker_register(vm_waitq *q)
{
    pthread_mutex_lock(&vm_proc.waker.mu);
    if (q)
        waker_start();
    vm_proc.waker.wait_mu = q ? &q->mu : NULL;
    vm_proc.waker.wait_cv = q ? &q->cv : NULL;
    pthread_mutex_unlock(&vm_proc.waker.mu);
}

void vm_waker_stop(void)
{
    rt_signal_set_notify_fd(-1);    /* no handler writes to the pipe any more */
    pthread_mutex_lock(&vm_proc.waker.mu);
    int running = vm_proc.waker.running;
    vm_proc.waker.stop = 1;
    vm_proc.waker.running = 0;
    pthread_mutex_unlock(&vm_proc.waker.mu);
    if (running) {
        char byte = 0;
        ssize_t r = write(vm_proc.waker.fds[1], &byte, 1);
        (void)r;
        pthread_join(vm_proc.waker.thread, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (vm_proc.waker.fds[i] >= 0) {
            close(vm_proc.waker.fds[i]);
            vm_proc.waker.fds[i] = -1;
        }
}

/* ---- waiting ---- */

void vm_wait_wake(rt_thread *rt)
{
    /* Under q->mu: the waiter is either before its poll (it sees the bit) or in the wait. */
    vm_waitq *q = atomic_load(&((vm_thread *)rt)->waitq);
    if (q) {
        pthread_mutex_lock(&q->mu);
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
    }
}

/* ---- deadlock detection under the normal scheduler (Notes, "Deadlocks") ---- */

void vm_wait_watch_deadlocks(void (*describe)(rt_thread *t, int (*ready)(void *), void *obj,
                                              char *buf, size_t n),
                             void (*report)(const char *report))
{
    vm_proc.watch.describe = describe;
    vm_proc.watch.report = report;
    atomic_store(&vm_proc.watch.on, 1);
}

void vm_wait_watch_handler(int signum, int handled)
{
    uint64_t bit = (uint64_t)1 << (signum % 64);
    if (handled)
        atomic_fetch_or(&vm_proc.watch.handlers[signum / 64], bit);
    else
        atomic_fetch_and(&vm_proc.watch.handlers[signum / 64], ~bit);
}

void vm_wait_watch_foreign(void)
{
    atomic_store(&vm_proc.watch.foreign, 1);
}

/* Publishes (ready, obj) of t's wait without deadline (NULL: unpublishes). */
static void watch_publish(vm_thread *t, int (*ready)(void *), void *obj)
{
    pthread_mutex_lock(&vm_proc.watch.mu);
    t->wait_ready = ready;
    t->wait_obj = obj;
    pthread_mutex_unlock(&vm_proc.watch.mu);
}

/* rt_threads_foreach: 0 if `rt` waits without deadline on a condition that is false (and
 * counts it in *arg), else 1 (stops the walk). */
static int watch_blocked(void *arg, rt_thread *rt)
{
    vm_thread *t = (vm_thread *)rt;
    if (!t->wait_ready)
        return 1;
    vm_waitq *q = atomic_load(&t->waitq);
    pthread_mutex_lock(&q->mu);
    int ready = t->wait_ready(t->wait_obj);
    pthread_mutex_unlock(&q->mu);
    ++*(size_t *)arg;
    return ready;
}

typedef struct {
    rt_deadlock_line *lines;
    size_t n, cap;
} watch_lines;

/* rt_threads_foreach: adds a report line for the blocked `rt`. */
static int watch_line(void *arg, rt_thread *rt)
{
    watch_lines *w = arg;
    vm_thread *t = (vm_thread *)rt;
    if (w->n == w->cap)
        return 1;
    rt_deadlock_line *l = &w->lines[w->n++];
    l->interp = rt->interp->id;
    l->id = rt->id;
    vm_waitq *q = atomic_load(&t->waitq);
    pthread_mutex_lock(&q->mu);
    vm_proc.watch.describe(rt, t->wait_ready, t->wait_obj, l->desc, sizeof l->desc);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* 1 if nothing the VM cannot see may end a wait (Notes, "Deadlocks"). */
static int watch_applies(void)
{
    return !atomic_load(&vm_proc.watch.handlers[0]) && !atomic_load(&vm_proc.watch.handlers[1]) &&
           !atomic_load(&vm_proc.watch.foreign) &&
           !rt_sched_active() && !atomic_load(&rt_main_runtime.finalizing);
}

/* A waiter without deadline whose slice timed out: at most once per slice in the process,
 * scans for a deadlock and, if every thread is blocked for good, reports it (the callback
 * does not return). */
static void watch_scan(void)
{
    uint64_t now = rt_now_ns(), due = atomic_load(&vm_proc.watch.next_ns);
    if (now < due || !atomic_compare_exchange_strong(&vm_proc.watch.next_ns, &due,
                                                     now + VM_WAIT_SLICE_NS))
        return;
    if (!watch_applies())
        return;
    pthread_mutex_lock(&vm_proc.watch.mu);
    size_t n = 0;
    int stuck = rt_threads_foreach(watch_blocked, &n) == 0 && n > 0;
    if (stuck) {
        pthread_mutex_lock(&vm_proc.mu);
        stuck = !vm_proc.nstarting && !vm_proc.nexiting;
        pthread_mutex_unlock(&vm_proc.mu);
    }
    if (stuck && watch_applies()) {
        watch_lines w = {calloc(n, sizeof *w.lines), 0, n};
        if (w.lines) {
            rt_threads_foreach(watch_line, &w);
            char *rep = rt_deadlock_report(w.lines, w.n);
            vm_proc.watch.report(rep ? rep : "gilvm: deadlock\n");
        }
    }
    pthread_mutex_unlock(&vm_proc.watch.mu);
}

/* vm_wait under the controlled scheduler: blocks in it; 2 if the scheduler stopped
 * (finalization) and t should wait as usual (if it may still run at all). */
static int wait_controlled(vm_thread *t, vm_waitq *q, int (*ready)(void *), void *obj,
                           uint64_t deadline_ns)
{
    for (;;) {
        int r = rt_sched_block(&t->base, &q->mu, ready, obj, deadline_ns, vm_wait_what(ready));
        if (r == RT_SCHED_STOPPED)
            return 2;
        if (r != RT_SCHED_INTERRUPTED)
            return r;
        if (vm_poll_in_wait(t))
            return -1;
    }
}

int vm_wait(vm_thread *t, vm_waitq *q, int (*ready)(void *), void *obj, uint64_t deadline_ns)
{
    if (rt_sched_controls(&t->base)) {
        int r = wait_controlled(t, q, ready, obj, deadline_ns);
        if (r != 2)
            return r;
    }
    int is_main = rt_signals_can_handle(&t->base);
    /* A sleep has a deadline, however long: never part of a deadlock. */
    int watched = !deadline_ns && q != &vm_proc.sleep && atomic_load(&vm_proc.watch.on);
    for (;;) {
        int r = 0;
        vm_blocking_begin(t);
        if (is_main)
            waker_register(q);
        atomic_store(&t->waitq, q);
        int published = 0;
        pthread_mutex_lock(&q->mu);
        q->nwaiters++;
        for (;;) {
            if (ready(obj)) {
                r = 1;
                break;
            }
            uint64_t now = rt_now_ns();
            if (deadline_ns && now >= deadline_ns)
                break;
            uint64_t until = now + VM_WAIT_SLICE_NS;
            int slice = rt_cond_wait_until(&q->cv, &q->mu,
                                           deadline_ns && deadline_ns < until ? deadline_ns : until);
            if (vm_blocking_poll(t, &q->mu)) {
                r = 2;
                break;
            }
            if (watched && slice) {
                pthread_mutex_unlock(&q->mu);      /* the scan locks every q->mu */
                if (!published)
                    watch_publish(t, ready, obj);
                published = 1;
                watch_scan();
                pthread_mutex_lock(&q->mu);
            }
        }
        q->nwaiters--;
        pthread_mutex_unlock(&q->mu);
        if (published)
            watch_publish(t, NULL, NULL);
        atomic_store(&t->waitq, NULL);
        if (is_main)
            waker_register(NULL);
        vm_blocking_end(t);
        if (r != 2)
            return r;
        if (vm_poll_in_wait(t))
            return -1;
    }
}

uint64_t vm_deadline_from(vm_thread *t, value timeout, const char *fn, int *err)
{
    double s;
    if (timeout.tag == T_NONE)
        return 0;
    if (vm_want_seconds(t, fn, "timeout", "timeout value must be a non-negative number",
                        timeout, &s)) {
        *err = -1;
        return 0;
    }
    if (s > 1e9)
        return 0;
    uint64_t d = vm_clock_ns() + (uint64_t)(s * 1e9);
    return d ? d : 1;
}
