/* SPDX-License-Identifier: MIT */
/* Signals [Modules/signalmodule.c]: the async-signal-safe C handler, the tripped flags and
 * delivery counters, the wakeup fd, and the consumer the VM calls at a poll.  Called by the
 * VM's signal builtins and poll handler; the handler itself by the OS, on any thread. */

/* Notes

   The handler (trip_signal) only touches atomics and calls write(2), so it is
   async-signal-safe and may run on any thread, at any instruction, also inside the runtime.
   In order it:
     1. sets the signal's tripped flag and increments its delivery counter;
     2. sets the global is_tripped flag;
     3. sets RT_SIGNALS_PENDING on the main thread state (the only one that runs handlers);
     4. beyond CPython: sets RT_GIL_DROP_REQUEST on the holder of the main interpreter's GIL
        if that is not the main thread, so a main thread waiting for the GIL gets it at the
        holder's next poll instead of after a switch interval (gil.c puts it first in the
        queue: it is the waiter whose RT_SIGNALS_PENDING is set);
     5. writes the signal number, one byte, to the wakeup fd if there is one, then to the
        notify fd, the VM's own (it wakes the main thread's blocking waits at once).
   Beyond CPython 3.14 (gh-113130, gh-137173): while the main OS thread runs in another
   interpreter (interp_exec from main, the REPL's :interp N) the state it swapped in is the
   main thread's stand-in: step 3 sets RT_SIGNALS_PENDING on it too, and its poll raises
   KeyboardInterrupt for a tripped SIGINT whose handler is the default one (rt_signal_take;
   the VM's vm_signals_run), so a long run there stays interruptible.  Other signals wait
   for the main thread to come back, as in CPython.
   So a reader of the wakeup fd always finds the pending bit already set (§9 item 14).

   Freed memory.  Steps 3 to 5 write to thread states that other threads may free and to fds
   that may be closed.  The handler counts itself in `in_handler` around those steps;
   whoever frees a thread state or closes an fd first makes it unreachable (clears `target`,
   last_holder in thread.c, or the fd) and then waits for in_handler to drop to zero
   (rt_signals_quiesce).  All of it is sequentially consistent, so either the handler sees
   the pointer gone or the freer sees the handler.

   The consumer (rt_signals_handle, at a poll of the main thread, holding the GIL) clears the
   pending bit, then is_tripped, then, signal by signal, the tripped flag before calling the
   VM's handler: a signal that arrives meanwhile sets everything again and is seen at the
   next poll.  Several deliveries of one signal before the consumer runs give one call;
   rt_signal_count still counts each delivery.  If a handler fails the consumer re-arms the
   bit and is_tripped, so the signals not yet handled run at a later poll.

   Who may call what: rt_signal_set / rt_signal_get / rt_signal_set_wakeup_fd from the main
   thread (the VM enforces it for bytecode); rt_signals_handle from the main thread holding
   the GIL; rt_signal_count and rt_signals_tripped from anywhere. */

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "internal.h"

#if ATOMIC_INT_LOCK_FREE != 2 || ATOMIC_POINTER_LOCK_FREE != 2 || ATOMIC_LONG_LOCK_FREE != 2
#error "the signal handler needs lock-free atomics"
#endif

static struct {
    _Atomic int tripped;
    _Atomic unsigned long count;
} sigs[RT_NSIG];
static _Atomic int is_tripped;
static _Atomic int wakeup_fd = -1;
static _Atomic int notify_fd = -1;
static rt_thread *_Atomic target;       /* the main thread state, or NULL */
static rt_thread *_Atomic standin;      /* its stand-in in another interpreter, or NULL */
static rt_gil *_Atomic target_gil;      /* its GIL */
static _Atomic int in_handler;          /* handlers between reading and writing a state */

/* Dispositions rt_signal_set replaced first, restored by rt_signals_fini; main thread only. */
static struct sigaction saved[RT_NSIG];
static unsigned char saved_valid[RT_NSIG];

static void write_byte(int fd, unsigned char byte)
{
    if (fd >= 0) {
        ssize_t r = write(fd, &byte, 1);        /* a full pipe loses the byte, not the signal */
        (void)r;
    }
}

static void trip_signal(int signum)
{
    int saved_errno = errno;
    if (signum <= 0 || signum >= RT_NSIG)
        return;
    atomic_store(&sigs[signum].tripped, 1);
    atomic_fetch_add(&sigs[signum].count, 1);
    atomic_store(&is_tripped, 1);

    atomic_fetch_add(&in_handler, 1);
    rt_thread *m = atomic_load(&target);
    if (m) {
        atomic_fetch_or(&m->eval_breaker, RT_SIGNALS_PENDING);
        rt_gil *gil = atomic_load(&target_gil);
        rt_thread *holder = gil ? atomic_load(&gil->last_holder) : NULL;
        if (holder && holder != m)
            atomic_fetch_or(&holder->eval_breaker, RT_GIL_DROP_REQUEST);
    }
    rt_thread *s = atomic_load(&standin);
    if (s)
        atomic_fetch_or(&s->eval_breaker, RT_SIGNALS_PENDING);
    write_byte(atomic_load(&wakeup_fd), (unsigned char)signum);
    write_byte(atomic_load(&notify_fd), (unsigned char)signum);
    atomic_fetch_sub(&in_handler, 1);
    errno = saved_errno;
}

static int check_signum(int signum)
{
    if (signum > 0 && signum < RT_NSIG)
        return 0;
    errno = EINVAL;
    return -1;
}

int rt_signal_set(int signum, int action)
{
    if (check_signum(signum))
        return -1;
    struct sigaction sa = {0}, old;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART: a write to stdout interrupted by a signal must not lose output; waits
     * notice signals by polling the eval breaker, not by EINTR. */
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    sa.sa_handler = action == RT_SIG_CATCH ? trip_signal : action == RT_SIG_IGN ? SIG_IGN : SIG_DFL;
    if (sigaction(signum, &sa, &old) < 0)
        return -1;
    if (!saved_valid[signum]) {
        saved[signum] = old;
        saved_valid[signum] = 1;
    }
    return 0;
}

int rt_signal_get(int signum)
{
    struct sigaction old;
    if (check_signum(signum) || sigaction(signum, NULL, &old) < 0)
        return -1;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
        return RT_SIG_DFL;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN)
        return RT_SIG_IGN;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == trip_signal)
        return RT_SIG_CATCH;
    return RT_SIG_OTHER;
}

int rt_signals_can_handle(const rt_thread *t)
{
    return rt_thread_is_main(t);
}

rt_thread *rt_signals_set_standin(rt_thread *t)
{
    rt_thread *old = atomic_exchange(&standin, t);
    rt_signals_quiesce();           /* the caller may free `old` now */
    return old;
}

int rt_signals_is_standin(const rt_thread *t)
{
    return t && atomic_load(&standin) == t;
}

int rt_signal_take(int signum)
{
    return check_signum(signum) == 0 && atomic_exchange(&sigs[signum].tripped, 0);
}

int rt_signals_handle(rt_thread *t, int (*run)(rt_thread *t, int signum, void *arg), void *arg)
{
    if (!rt_signals_can_handle(t))
        return 0;
    atomic_fetch_and(&t->eval_breaker, ~(uint32_t)RT_SIGNALS_PENDING);
    if (!atomic_load(&is_tripped))
        return 0;
    atomic_store(&is_tripped, 0);
    for (int signum = 1; signum < RT_NSIG; signum++) {
        if (!atomic_load(&sigs[signum].tripped))
            continue;
        atomic_store(&sigs[signum].tripped, 0);
        t->stats.signals++;
        if (rt_main_runtime.hooks.async_event)
            rt_main_runtime.hooks.async_event(t, RT_EV_SIGNAL, signum);
        if (run(t, signum, arg)) {
            atomic_store(&is_tripped, 1);
            atomic_fetch_or(&t->eval_breaker, RT_SIGNALS_PENDING);
            return -1;
        }
    }
    return 0;
}

uint64_t rt_signal_count(int signum)
{
    return check_signum(signum) ? 0 : atomic_load(&sigs[signum].count);
}

int rt_signals_tripped(void)
{
    return atomic_load_explicit(&is_tripped, memory_order_relaxed);
}

int rt_signal_set_wakeup_fd(int fd)
{
    int old = atomic_exchange(&wakeup_fd, fd < 0 ? -1 : fd);
    rt_signals_quiesce();           /* the caller may close `old` now */
    return old;
}

int rt_signal_set_notify_fd(int fd)
{
    int old = atomic_exchange(&notify_fd, fd < 0 ? -1 : fd);
    rt_signals_quiesce();
    return old;
}

static void forget_signals(void)
{
    for (int i = 0; i < RT_NSIG; i++) {
        atomic_store(&sigs[i].tripped, 0);
        atomic_store(&sigs[i].count, 0);
    }
    atomic_store(&is_tripped, 0);
}

void rt_signals_init(rt_thread *main)
{
    forget_signals();
    atomic_store(&wakeup_fd, -1);
    atomic_store(&target_gil, main->interp->gil);
    atomic_store(&target, main);
}

void rt_signals_quiesce(void)
{
    while (atomic_load(&in_handler))
        sched_yield();
}

void rt_signals_fini(void)
{
    for (int signum = 1; signum < RT_NSIG; signum++)
        if (saved_valid[signum]) {
            sigaction(signum, &saved[signum], NULL);
            saved_valid[signum] = 0;
        }
    atomic_store(&wakeup_fd, -1);
    atomic_store(&notify_fd, -1);
    atomic_store(&target, NULL);
    atomic_store(&target_gil, NULL);
    rt_signals_quiesce();
    forget_signals();
}

void rt_signals_after_fork(rt_thread *main)
{
    /* Signals that arrived before fork() belong to the parent [_PySignal_AfterFork]; a
     * handler that was running on another thread does not exist here. */
    forget_signals();
    atomic_store(&in_handler, 0);
    atomic_store(&target_gil, main->interp->gil);
    atomic_store(&target, main);
}
