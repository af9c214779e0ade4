/* SPDX-License-Identifier: MIT */
/* The library that bytecode calls (vm/lib/): what the rest of the VM needs of it.
 * vm/core/setup.c installs it into each new interpreter, the embedding API (vm/api/) runs
 * its finalization steps; each module's natives are documented in docs/builtins.md. */
#ifndef VM_LIB_H
#define VM_LIB_H

#include "vm/core/state.h"

/* Groups of natives an embedder can leave out (gilvm_config.exclude; the same values as
 * GILVM_LIB_*). */
enum { VM_LIB_THREADS = 1, VM_LIB_SIGNAL = 2, VM_LIB_OS = 4, VM_LIB_FFI = 8 };

/* Installs every module's natives, constants and collector hooks into t's (new)
 * interpreter: builtins.c, sys.c, time.c, threading.c, lock.c, queue.c, pcalls.c,
 * signalmod.c, atexit.c, os.c, audit.c, ffi.c; the natives of the VM_LIB_* groups in
 * `exclude` are not defined. */
void vm_lib_install(vm_thread *t, unsigned exclude);

/* Set while vm_lib_install installs a module of an excluded group: vm_def_natives defines
 * nothing then. */
extern int vm_lib_natives_off;

/* Interrupts the program of `in` (gilvm_interrupt): LimitExceeded("interrupted") at every
 * thread's next poll, unless a limit was exceeded already.  Any thread, no GIL needed. */
void vm_limits_interrupt(vm_interp *in);

/* Ends an interrupt once the run it stopped has returned to the host: the next run starts
 * clean (the limits the host set stay). */
void vm_limits_interrupt_spent(vm_interp *in);

/* One install function per module, called by vm_lib_install in that order. */
void vm_builtins_install(vm_thread *t);
void vm_sys_install(vm_thread *t);
void vm_time_install(vm_thread *t);
void vm_threading_install(vm_thread *t);
void vm_lock_install(vm_thread *t);
void vm_queue_install(vm_thread *t);
void vm_pcalls_install(vm_thread *t);
void vm_signalmod_install(vm_thread *t);
void vm_atexit_install(vm_thread *t);
void vm_os_install(vm_thread *t);
void vm_audit_install(vm_thread *t);
void vm_ffi_install(vm_thread *t);
void vm_interp_install(vm_thread *t);
void vm_xiqueue_install(vm_thread *t);

/* Loads `len` bytes of `data` (.gbc by its magic, else .gasm) as a module named `name`, or,
 * data NULL, the file at path `name`, links it into t's interpreter and runs its body on t.
 * 0; -1 with t's exception set; -2 if it did not load, with the message in err and the
 * error's type name ("SyntaxError", "BytecodeError", "OSError") in *type.  Set by the
 * embedding API, since lib/ does not call the toolchain. */
typedef int (*vm_interp_loader_fn)(vm_thread *t, const char *name, const char *data, size_t len,
                                   char *err, size_t errlen, const char **type);

/* Sets the loader interp_exec and interp_run_file use (interp.c). */
void vm_interp_set_loader(vm_interp_loader_fn fn);

/* Remembers the groups of natives the main interpreter left out: sub-interpreters leave
 * out the same (interp.c). */
void vm_interp_note_main_exclude(unsigned exclude);

/* The embedding API's interpreters (interp.c; the builtins interp_* are these):
 * creates one with `config` (reqrefs: destroyed with its last id reference) and stores its
 * id; destroys one; calls its global `name` with copies of argc shareable arguments (the
 * result copied back into *out); runs source text (.gasm or .gbc bytes) as a module named
 * `name` in it.  0, or -1 with t's exception set (InterpreterError for what failed in the
 * target). */
int vm_interp_create(vm_thread *t, const rt_interp_config *config, int reqrefs, int64_t *id);
int vm_interp_destroy(vm_thread *t, int64_t id);
int vm_interp_call(vm_thread *t, int64_t id, const char *name, int argc, value *argv,
                   value *out);
int vm_interp_exec(vm_thread *t, int64_t id, const char *name, const char *src, size_t len);

/* Makes the calling thread, attached as `t`, run in interpreter `id` from now on: a new
 * thread state there, swapped in (t detached), which it returns; NULL with t's exception
 * set if there is no such interpreter.  The interpreter counts as running until
 * vm_interp_leave(new state, t) deletes the state and re-attaches `t`. */
vm_thread *vm_interp_enter(vm_thread *t, int64_t id);
void vm_interp_leave(vm_thread *nt, vm_thread *back);

/* pending_call(id, name, *args) for another interpreter: queues a call of its global
 * `name` (a str) with copies of the (shareable) args, run at a poll of one of its threads;
 * *out is True, or False if its queue is full (interp.c). */
int vm_interp_pending_call(vm_thread *t, int64_t id, value name, int argc, value *argv,
                           value *out);

/* Finalization, main thread, before the main interpreter's instruments finish: in each
 * sub-interpreter (oldest first) joins its non-daemon threads, runs its pending calls and
 * its atexit functions; new runs and threads there are refused from then on. */
void vm_interps_join(vm_thread *t);

/* Finalization, after vm_interps_join: destroys every sub-interpreter that no thread runs
 * in (those that a daemon thread still runs in the runtime frees later). */
void vm_interps_destroy_idle(vm_thread *t);

/* Finalization (vm_lib_fini): drops what the library keeps for the sub-interpreters left,
 * which the runtime frees next. */
void vm_interps_fini(void);

/* Calls t's interpreter's audit hooks with (event, args) (audit.c) [PySys_Audit]; 0, or -1
 * with the exception of the hook that raised: the caller then abandons the operation. */
int vm_audit_run(vm_thread *t, const char *event, int argc, const value *argv);

/* The number of runtime-wide C audit hooks (audit.c). */
extern _Atomic int vm_audit_nc;

/* vm_audit_run if there are C hooks or t's interpreter has hooks: with none, a branch. */
static inline int vm_audit(vm_thread *t, const char *event, int argc, const value *argv)
{
    return VM_INTERP(t)->audit_hooks.tag == T_LIST ||
                   atomic_load_explicit(&vm_audit_nc, memory_order_relaxed)
               ? vm_audit_run(t, event, argc, argv)
               : 0;
}

/* A runtime-wide C audit hook: sees every event of every interpreter, on the thread `t`
 * that raised it, holding its GIL; returns 0 to allow the operation, non-zero to abort it
 * (with t's exception set, or RuntimeError "EVENT: refused by an audit hook"). */
typedef int (*vm_audit_c_fn)(void *data, vm_thread *t, const char *event, int argc,
                             const value *argv);

/* At most this many C hooks. */
#define VM_AUDIT_MAX_C_HOOKS 16

/* [PySys_AddAuditHook] Adds a C hook, before the runtime starts (t NULL) or holding a GIL
 * (t: the caller, whose hooks see "sys.addaudithook" first and may refuse it); 0, or -1 if
 * refused or if there are VM_AUDIT_MAX_C_HOOKS already. */
int vm_audit_add_c_hook(vm_thread *t, vm_audit_c_fn fn, void *data);

/* Forgets every C hook (gilvm_runtime_finalize: a later init starts without them). */
void vm_audit_clear_c_hooks(void);

/* Sets the function that finalizes and exits a forked child whose main thread was a VM
 * thread in the parent (see vm_process.forked_main_exit); the embedding API's. */
void vm_lib_set_forked_main_exit(void (*fn)(vm_thread *t, int failed));

/* Sets the function _exit() calls before it ends the process without cleanup (writes what
 * any exit must write: the --schedule-out file); NULL: none. */
void vm_lib_set_before__exit(void (*fn)(void));

/* Calls fire(in, arg) on the timer thread (without the GIL) at monotonic time `due_ns`,
 * unless `in` is finalized first; 0, or -1 if the timer thread cannot start. */
int vm_timer_add(vm_interp *in, uint64_t due_ns, void (*fire)(vm_interp *in, uint64_t arg),
                 uint64_t arg);

/* Sets the limits on t's interpreter's program from now on (0: none), restarting the count
 * and the clock (limits.c); 0, or -1 with RuntimeError if the timer cannot start. */
int vm_limits_set(vm_thread *t, uint64_t max_instructions, uint64_t timeout_ms,
                  size_t max_memory);

/* Makes SIGINT raise KeyboardInterrupt in the main thread, unless SIGINT is not at its
 * default disposition (a process started with it ignored keeps it ignored). */
void vm_signals_install_default(vm_thread *t);

/* Starts a thread running func(*args); *out is the thread object.  RuntimeError at
 * shutdown or when the interpreter forbids threads. */
int vm_thread_start(vm_thread *t, value func, value args, int daemon, value *out);

/* Waits for a thread object to finish (timeout None: forever); 0, or -1 if a signal
 * handler raised while waiting or the join is refused during finalization. */
int vm_thread_join(vm_thread *t, value th, value timeout);

/* Joins every non-daemon thread of t's interpreter (finalization, step 1); 0 or -1. */
int vm_threads_join_all(vm_thread *t);

/* Joins the OS threads of VM threads that have finished (they may still be in libc or
 * sanitizer teardown); called when a thread starts, before fork and at finalization. */
void vm_threads_reap(void);

/* Runs t's interpreter's atexit functions, last registered first; one that raises is
 * reported on stderr ("Exception ignored in atexit callback") and the rest still run. */
void vm_atexit_run(vm_thread *t);

/* Finalization, after the runtime is marked finalizing: waits until no thread is in a
 * blocking wait, starting or exiting, then drops what the library keeps for t's
 * interpreter outside its heap (queued calls; for the main interpreter also the timer and
 * waker threads and the OS thread records). */
void vm_lib_fini(vm_thread *t);

/* vm_lib_fini's steps: stops the timer thread (main interpreter) and drops the calls queued
 * for `in` (pcalls.c); joins the finished VM threads and forgets the rest (threading.c). */
void vm_pcalls_fini(vm_interp *in);
void vm_threads_fini(void);

#endif
