/* Asynchronous events on the VM side (async.c): the eval-breaker handler for stop requests,
 * signals and pending calls; builtins for signals, pending calls, timers, async exceptions,
 * atexit and fork; the steps of finalization that run bytecode.  Used by interp.c (install),
 * api.c (finalization) and embed.c (the public C API). */
#ifndef VM_ASYNC_H
#define VM_ASYNC_H

#include "vm/core/state.h"

/* Registers the builtins, the poll handler, the blocking-wait hook and the GC root hook. */
void vm_async_install(vm_thread *t);

/* Makes SIGINT raise KeyboardInterrupt in the main thread, unless SIGINT is not at its
 * default disposition (a process started with it ignored keeps it ignored). */
void vm_signals_install_default(vm_thread *t);

/* Runs the pending calls left for `t` until none is left [_Py_FinishPendingCalls]; a call
 * that fails is reported on stderr and the rest still run. */
void vm_pending_finish(vm_thread *t);

/* Runs t's interpreter's atexit functions, last registered first; one that raises is
 * reported on stderr ("Exception ignored in atexit callback") and the rest still run. */
void vm_atexit_run(vm_thread *t);

/* After the runtime is marked finalizing: stops the timer thread, waits until no thread is
 * in a blocking wait, and drops what the VM keeps for t's interpreter outside its heap
 * (queued bytecode calls, timers, signal handlers, atexit functions). */
void vm_async_fini(vm_thread *t);

/* Runs the handlers of signals that arrived, if `t` is the main thread; 0, or -1 with the
 * exception of the handler that raised (the remaining signals run at a later poll). */
int vm_signals_run(vm_thread *t);

#endif
