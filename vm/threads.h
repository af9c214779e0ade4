/* Threads in bytecode (threads.c): starting and joining threads, and the hook blocking
 * waits use to run signal handlers. */
#ifndef VM_THREADS_H
#define VM_THREADS_H

#include "state.h"

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

#endif
