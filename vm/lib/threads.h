/* Threads in bytecode (threads.c): starting and joining threads, and the hook blocking
 * waits use to run signal handlers. */
#ifndef VM_THREADS_H
#define VM_THREADS_H

#include "vm/core/state.h"

/* Starts a thread running func(*args); *out is the thread object.  RuntimeError at
 * shutdown or when the interpreter forbids threads. */
int vm_thread_start(vm_thread *t, value func, value args, int daemon, value *out);

/* Waits for a thread object to finish (timeout None: forever); 0, or -1 if a signal
 * handler raised while waiting or the join is refused during finalization. */
int vm_thread_join(vm_thread *t, value th, value timeout);

/* Joins every non-daemon thread of t's interpreter (finalization); 0 or -1. */
int vm_threads_join_all(vm_thread *t);

/* Registers the threading builtins and the GC hooks of thread, lock and queue objects. */
void vm_threads_install(vm_thread *t);

/* Called by a blocking wait that woke for a pending signal or stop request; runs what is
 * due (signal handlers on the main thread) and returns -1 if that raised.  NULL: none. */
typedef int (*vm_wait_hook_fn)(vm_thread *t);
extern vm_wait_hook_fn vm_wait_hook;

/* Runs vm_wait_hook if set; 0, or -1 with an exception set. */
int vm_wait_interrupted(vm_thread *t);

/* Detaches `t` for a blocking wait that finalization must be able to wait out: the wait
 * calls vm_blocking_poll at least every 20 ms and ends with vm_blocking_end. */
void vm_blocking_begin(vm_thread *t);

/* In a blocking wait (GIL released): if another thread finalizes, unlocks `held` (if not
 * NULL) and ends the OS thread; else returns t's eval-breaker bits that should interrupt the
 * wait (RT_SIGNALS_PENDING, RT_EVAL_PLEASE_STOP), 0 if none. */
uint32_t vm_blocking_poll(vm_thread *t, pthread_mutex_t *held);

/* Ends a blocking wait: re-attaches `t` (urgently: the convoy fix). */
void vm_blocking_end(vm_thread *t);

/* Finalization, after the runtime is marked finalizing: waits until no thread is inside a
 * blocking wait or starting (they end themselves within one wait slice). */
void vm_threads_quiesce(void);

/* Finalization, after vm_threads_quiesce: joins the threads that finished, forgets those
 * the runtime ended, stops the thread that wakes the main thread's waits for signals. */
void vm_threads_fini(void);

/* Joins the OS threads of VM threads that have finished (they may still be in libc or
 * sanitizer teardown); called when a thread starts, before fork and at finalization. */
void vm_threads_reap(void);

/* Before fork(), holding the GIL: waits until no thread is starting or finishing outside the
 * GIL, then joins the finished ones, so no other thread is inside the allocator. */
void vm_threads_before_fork(void);

/* In the child after fork(), before the runtime deletes the other thread states: their
 * thread objects report not alive; every thread, lock and queue object's mutex and condvar
 * is re-created (a thread that held or waited on one is gone). */
void vm_threads_after_fork_child(vm_thread *t);

#endif
