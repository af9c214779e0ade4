/* SPDX-License-Identifier: MIT */
/* Blocking waits without the GIL (wait.c): the wait queues of thread, lock and queue
 * objects and of sleep, the slices that let the main thread run signal handlers while it
 * waits, and the bookkeeping that lets finalization and fork wait the waiters out. */
#ifndef VM_WAIT_H
#define VM_WAIT_H

#include <pthread.h>

#include "vm/core/state.h"

/* What a thread blocks on: a mutex, a condvar (CLOCK_MONOTONIC) and the number of threads
 * waiting (under mu). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int nwaiters;
} vm_waitq;

/* The head of every heap object a thread can block on (T_THREAD, T_LOCK, T_QUEUE): what
 * the after-fork reset re-creates and the collector's free hook destroys. */
typedef struct {
    vm_obj h;
    vm_waitq wq;
} vm_waitable;

/* Initialises (or, after fork, re-creates over the old memory) a wait queue. */
void vm_waitq_init(vm_waitq *q);

/* Destroys a wait queue nobody waits on. */
void vm_waitq_destroy(vm_waitq *q);

/* The collector's free hook (vm_gc_free_hooks) of a vm_waitable object: destroys its queue. */
void vm_waitable_free(vm_obj *o);

/* Waits, the GIL released, until ready(obj) (called under q->mu) or until `deadline_ns`
 * (vm_clock_ns; 0: forever).  Runs signal handlers meanwhile on the main thread.  Returns 1
 * ready, 0 timed out, -1 a signal handler raised or an asynchronous exception arrived
 * (exception set).  Under the controlled scheduler it is a scheduling point: the thread
 * blocks in the scheduler, which runs the others until ready(obj) or the virtual clock
 * reaches the deadline (runtime/sched.c). */
int vm_wait(vm_thread *t, vm_waitq *q, int (*ready)(void *), void *obj, uint64_t deadline_ns);

/* Wakes the vm_wait `t` (a vm_thread) blocks on, if any, so that it polls at once (the
 * caller keeps `t` alive and holds the GIL of t's interpreter, which keeps the waited-on
 * object alive). */
void vm_wait_wake(rt_thread *t);

/* The monotonic clock of the library in nanoseconds: virtual under the controlled scheduler
 * (rt_sched_clock_ns), else rt_now_ns(); every timeout and clock builtin reads it. */
uint64_t vm_clock_ns(void);

/* The monotonic deadline of a timeout argument of `fn` (None: 0, forever; a non-negative
 * number of seconds); *err = -1 with TypeError or ValueError set if it is neither. */
uint64_t vm_deadline_from(vm_thread *t, value timeout, const char *fn, int *err);

/* Detaches `t` for a blocking wait that finalization must be able to wait out: the wait
 * calls vm_blocking_poll at least every VM_WAIT_SLICE_NS and ends with vm_blocking_end. */
void vm_blocking_begin(vm_thread *t);

/* As vm_blocking_begin, for a wait the controlled scheduler cannot see through, named `what`
 * in --stats' uncontrolled list (vm_blocking_begin: "fd-io"); the scheduler runs other
 * threads meanwhile (rt_sched_outside_begin). */
void vm_blocking_begin_as(vm_thread *t, const char *what);

/* In a blocking wait (GIL released): if another thread finalizes, unlocks `held` (if not
 * NULL) and ends the OS thread; else returns t's eval-breaker bits that should interrupt the
 * wait (RT_SIGNALS_PENDING, RT_EVAL_PLEASE_STOP, RT_ASYNC_EXCEPTION, RT_LIMITS once a limit
 * is exceeded), 0 if none. */
uint32_t vm_blocking_poll(vm_thread *t, pthread_mutex_t *held);

/* Ends a blocking wait: re-attaches `t` (urgently: the convoy fix). */
void vm_blocking_end(vm_thread *t);

/* The longest a blocking wait sleeps between two vm_blocking_poll calls. */
#define VM_WAIT_SLICE_NS 20000000ull        /* 20 ms */

/* Finalization, after the runtime is marked finalizing: waits (at most 5 s) until no thread
 * is inside a blocking wait, starting or exiting (they end themselves within one slice). */
void vm_wait_quiesce(void);

/* Waits until no thread is starting or exiting outside the GIL (before fork, holding the
 * GIL: those are the only threads that may be inside the allocator). */
void vm_wait_settled(void);

/* Names the primitive that waits with predicate `ready` (e.g. "lock_acquire") and how a
 * deadlock report describes its object ("lock 2, held by thread 3"); at install time. */
void vm_wait_register(int (*ready)(void *), const char *what,
                      void (*describe)(void *obj, char *buf, size_t n));

/* The primitive registered for `ready`, or "wait". */
const char *vm_wait_what(int (*ready)(void *));

/* Writes "WHAT: OBJECT" for a thread waiting with (ready, obj) into buf. */
void vm_wait_describe(int (*ready)(void *), void *obj, char *buf, size_t n);

/* Turns on deadlock detection under the normal scheduler (wait.c Notes, "Deadlocks"): when
 * every thread of every interpreter waits without deadline on a condition nothing can make
 * true, report(text) is called with the deadlock report, each thread's line written by
 * describe(t, ready, obj, ...) (as rt_sched_config's); report must not return.  Called once,
 * before the program runs, by the command line for a program run (not the REPL). */
void vm_wait_watch_deadlocks(void (*describe)(rt_thread *t, int (*ready)(void *), void *obj,
                                              char *buf, size_t n),
                             void (*report)(const char *report));

/* Notes whether the program handles signal `signum` (1..63; 0: a wakeup fd is set), which
 * something the VM cannot see may then end a wait with (no deadlock is reported meanwhile). */
void vm_wait_watch_handler(int signum, int handled);

/* Notes that a native thread may call in (an FFI callback exists): from then on no deadlock
 * is reported. */
void vm_wait_watch_foreign(void);

/* Stops the waker thread and closes its pipe (finalization of the main interpreter). */
void vm_waker_stop(void);

#endif
