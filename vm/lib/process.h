/* SPDX-License-Identifier: MIT */
/* The VM's process-wide state: everything vm/lib/ keeps outside the interpreters' heaps for
 * the whole process, in one struct with one after-fork reset (process.c).  Per-interpreter
 * state lives in vm_interp (vm/core/state.h) instead. */
#ifndef VM_PROCESS_H
#define VM_PROCESS_H

#include <pthread.h>

#include "vm/lib/wait.h"

/* A call queued for later (pcalls.c): a bytecode pending call or timer, or a C timer.  A
 * bytecode call's function and arguments are GC roots of its interpreter from creation
 * until the call has returned. */
typedef struct vm_pcall {
    struct vm_pcall *prev, *next;   /* vm_proc.calls, under vm_proc.mu */
    struct vm_pcall *tnext;         /* the timer list, under vm_proc.timer.mu */
    vm_interp *in;
    value func, args;               /* args: a tuple */
    uint64_t due_ns;                /* timers: when to queue it */
    void (*fire)(vm_interp *in, uint64_t arg);  /* a C timer: called when due, not queued */
    uint64_t arg;
} vm_pcall;

/* The OS thread of a VM thread (threading.c).  Joinable: a thread that has finished with the
 * VM may still be in libc or sanitizer teardown, which allocates.  Finished ones are joined
 * before fork() (an allocator lock held by a thread that does not exist in the child would
 * deadlock it) and whenever a thread starts.  A thread the runtime ends detaches itself
 * (rt_thread_set_detach_on_exit) and its record is dropped at finalization. */
typedef struct vm_os_thread {
    pthread_t tid;
    int finished;                   /* returned from its start routine; under vm_proc.mu */
    struct vm_os_thread *next;
} vm_os_thread;

typedef struct {
    /* Guards the lists and counters below (not timer or waker, which have their own). */
    pthread_mutex_t mu;
    /* Broadcast (under mu) when nblocked, nstarting or nexiting drops to 0. */
    pthread_cond_t quiet;
    vm_pcall *calls;                /* queued bytecode calls, all interpreters */
    vm_os_thread *os_threads;       /* VM threads' OS threads not yet joined */
    int nblocked;                   /* threads between vm_blocking_begin and _end */
    int nstarting;                  /* threads created, not yet bound to their state */
    int nexiting;                   /* threads reported finished, still deleting their state */

    /* Timers (pcalls.c): one thread queues each call as a pending call when it is due. */
    struct {
        pthread_mutex_t mu;
        pthread_cond_t cv;          /* the list's head changed, or stop */
        vm_pcall *list;             /* by due_ns */
        int running, stop;
        pthread_t thread;
    } timer;

    /* The waker (wait.c): wakes the main thread's blocking wait when a signal arrives. */
    struct {
        pthread_mutex_t mu;         /* guards all but the fds' use by the signal handler */
        pthread_mutex_t *wait_mu;   /* the main thread's current wait, or NULL */
        pthread_cond_t *wait_cv;
        int fds[2];                 /* read by the waker, written by the signal handler */
        int running, stop;
        pthread_t thread;
    } waker;

    /* Deadlock detection under the normal scheduler (wait.c, Notes "Deadlocks"). */
    struct {
        pthread_mutex_t mu;         /* guards every vm_thread's wait_ready/wait_obj; a scan
                                     * holds it throughout */
        _Atomic int on;             /* vm_wait_watch_deadlocks was called */
        _Atomic uint64_t next_ns;   /* no scan starts before then (one per slice) */
        _Atomic uint64_t handlers[2];   /* bit s of 128: the program handles signal s; bit 0:
                                         * it set a wakeup fd */
        _Atomic int foreign;        /* an FFI callback was made: native threads may call in */
        void (*describe)(rt_thread *t, int (*ready)(void *), void *obj, char *buf, size_t n);
        void (*report)(const char *report);
    } watch;

    /* What sleep() waits on: nobody signals it but the waker (time.c). */
    vm_waitq sleep;

    /* Finalizes the runtime and exits the process, for a forked child whose main thread was
     * a VM thread in the parent and has returned (threading.c); set by the embedding API,
     * which owns finalization.  Does not return. */
    void (*forked_main_exit)(vm_thread *t, int failed);

    /* Called by _exit() before the process ends without cleanup, or NULL (vm/lib/os.c; set
     * by the controlled scheduler's VM side: the --schedule-out file). */
    void (*before__exit)(void);
} vm_process;

/* The one instance.  Its mutexes are statically initialised; vm_process_init sets up the
 * condvars (CLOCK_MONOTONIC). */
extern vm_process vm_proc;

/* Sets up what cannot be initialised statically; idempotent; called by vm_lib_install. */
void vm_process_init(void);

/* Adds `delta` to one of vm_proc's counters (nblocked, nstarting, nexiting) under mu, and
 * wakes the threads waiting for quiet when it drops to 0. */
void vm_process_count(int *counter, int delta);

/* Frees a queued call and unlists it; under no lock. */
void vm_pcall_free(vm_pcall *p);

/* Marks a thread object whose OS thread did not survive fork() as finished (threading.c). */
void vm_thread_obj_forked(vm_obj *o, vm_thread *survivor);

/* In the child after fork(), from vm_process_after_fork_child: re-creates the mutexes and
 * condvars of interp.c and of every cross-interpreter queue a heap holds, and forgets the
 * sub-interpreters (which rt_fork_after_child deletes next) (interp.c). */
void vm_interps_after_fork_child(vm_thread *t);

/* In the child after fork(), holding vm_proc.mu and vm_proc.timer.mu (taken before the fork)
 * and the GIL, before the runtime deletes the other thread states: releases what belonged
 * to threads that did not survive (timers and their thread, OS thread records, the waker),
 * re-creates every mutex and condvar of vm_proc and of t's interpreter's thread, lock and
 * queue objects, and marks those threads finished. */
void vm_process_after_fork_child(vm_thread *t);

#endif
