/* gilvm's public embedding API: start the runtime, load and run programs, finalize.  A C
 * program that embeds gilvm includes only this header and links libgilvm.a. */
#ifndef GILVM_H
#define GILVM_H

#define GILVM_VERSION "0.1.0"

/* Exit statuses of gilvm_run_file and the gilvm executable. */
enum {
    GILVM_EXIT_OK = 0,          /* ran to completion */
    GILVM_EXIT_EXCEPTION = 1,   /* uncaught exception (traceback printed) */
    GILVM_EXIT_USAGE = 2,       /* bad command line, or a file that cannot be opened */
    GILVM_EXIT_LIMIT = 124,     /* a limit of gilvm_set_limits was exceeded (as timeout(1)) */
    GILVM_EXIT_DATAERR = 65,    /* malformed .gasm or rejected .gbc */
    GILVM_EXIT_SIGINT = 130,    /* uncaught KeyboardInterrupt (the process re-raises SIGINT) */
};

typedef struct {
    unsigned long switch_interval_us;   /* 0: default 5000 */
    int recursion_limit;                /* 0: default 1000 */
    int no_signal_handlers;             /* 1: leave SIGINT alone (else: KeyboardInterrupt) */
    int no_ffi;                         /* 1: native calls (the ffi_* builtins) refused */
} gilvm_config;

/* Starts the runtime and the main interpreter on the calling (main) thread; 0 or -1. */
int gilvm_runtime_init(const gilvm_config *config);

/* Sets the program arguments (argv[0] is the program file) seen by the `argv` builtin. */
void gilvm_set_argv(int argc, char **argv);

/* Loads (.gasm or .gbc, by content) and runs a file in the main interpreter; returns a
 * GILVM_EXIT_* status or a SystemExit code.  Errors are reported on stderr. */
int gilvm_run_file(const char *path);

/* Assembles and runs source text as a module named `name`; same statuses as run_file. */
int gilvm_run_string(const char *name, const char *source);

/* Limits on what the main interpreter's program may use, for running code one does not
 * trust; 0 means no limit (docs/embedding.md). */
typedef struct {
    unsigned long long max_instructions;    /* bytecode instructions run, all threads */
    unsigned long long timeout_ms;          /* wall-clock milliseconds */
    unsigned long long max_memory;          /* bytes of the interpreter's heap */
} gilvm_limits;

/* Applies `limits` from now on, restarting the instruction count and the clock; call it
 * holding the GIL (from the main thread, or between gilvm_gilstate_ensure and release).
 * A program that runs past the instruction count or the time gets LimitExceeded at its
 * next poll (function entry, backward jump), which no `try` catches: the run returns
 * GILVM_EXIT_LIMIT.  One whose heap would grow past max_memory gets MemoryError, which it
 * may catch.  Returns 0, or -1 if the runtime is not running or a timer cannot start. */
int gilvm_set_limits(const gilvm_limits *limits);

/* Joins non-daemon threads, runs exit handlers and tears the runtime down; returns the
 * status to exit with (normally `status` itself). */
int gilvm_runtime_finalize(int status);

/* ---- pending calls: C functions run later by the VM, at a poll, holding the GIL ---- */

/* [Py_AddPendingCall] Queues fn(arg) to run on the main thread at its next poll; callable
 * from any thread, with or without the GIL (not from a signal handler).  fn returns 0, or
 * non-zero to make the poll raise RuntimeError("pending call failed").  Returns 0, or -1 if
 * the queue (32 calls) is full or the runtime is not running.  Calls still queued at
 * finalization run then, before the atexit functions. */
int gilvm_pending_add(int (*fn)(void *arg), void *arg);

/* As gilvm_pending_add, for any thread of interpreter `interp_id` (queue of 300; 0 is the
 * main interpreter); -1 also if there is no such interpreter. */
int gilvm_pending_add_interp(long long interp_id, int (*fn)(void *arg), void *arg);

/* ---- GILState: running code from threads gilvm did not create ---- */

enum {
    GILVM_GILSTATE_LOCKED = 0,          /* the thread already held the GIL */
    GILVM_GILSTATE_UNLOCKED = 1,        /* gilvm_gilstate_ensure took it */
    GILVM_GILSTATE_UNAVAILABLE = -1,    /* runtime not running or finalizing: run no code */
};

/* [PyGILState_Ensure] Makes the calling thread, of any origin, able to run code of the main
 * interpreter (gilvm_run_string runs on the calling thread's state): gives the thread a
 * thread state if it has none and takes the GIL if it does not hold it; nests.  Returns the
 * value to pass to gilvm_gilstate_release.  Once finalization has started (and before init
 * or after finalize) it does nothing and returns GILVM_GILSTATE_UNAVAILABLE: the thread must
 * not run code, and releasing that value does nothing.  A thread still waiting for the GIL
 * when finalization starts never returns from this call: it ends, as daemon threads do. */
int gilvm_gilstate_ensure(void);

/* [PyGILState_Release] Undoes the matching ensure: releases the GIL if ensure took it; the
 * outermost release deletes the thread state if ensure created it (never one it did not). */
void gilvm_gilstate_release(int state);

/* [PyGILState_Check] Returns 1 if the calling thread holds the GIL, else 0. */
int gilvm_gilstate_check(void);

#endif
