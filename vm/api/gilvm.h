/* SPDX-License-Identifier: MIT */
/* gilvm's public embedding API: start the runtime, load and run programs, pass values in
 * and out, call bytecode functions, register C functions, read errors, hand the GIL to other
 * threads, interrupt, redirect output, finalize.  A C or C++ program that embeds gilvm
 * includes only this header and links libgilvm (`pkg-config --cflags --libs gilvm`).
 * Each declaration names its CPython or Lua counterpart in brackets; docs/embedding.md is
 * the guide. */
#ifndef GILVM_H
#define GILVM_H

#include <stddef.h>
#include <stdint.h>

/* The library's version: 0.MINOR.PATCH while the API may still change between minors; the
 * shared library's soname is libgilvm.so.MAJOR.  [LUA_VERSION_NUM, PY_VERSION_HEX] */
#define GILVM_VERSION_MAJOR 0
#define GILVM_VERSION_MINOR 1
#define GILVM_VERSION_PATCH 0
#define GILVM_VERSION_STRING "0.1.0"
#define GILVM_VERSION GILVM_VERSION_STRING
#define GILVM_VERSION_NUM (GILVM_VERSION_MAJOR * 10000 + GILVM_VERSION_MINOR * 100 + \
                           GILVM_VERSION_PATCH)

/* Marks what the shared library exports; everything else in it is hidden. */
#if defined(GILVM_BUILDING) && defined(__GNUC__)
#define GILVM_API __attribute__((visibility("default")))
#else
#define GILVM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* [Py_GetVersion] The version of the library the program runs with (GILVM_VERSION_STRING
 * of the build), which may differ from the header it was compiled against. */
GILVM_API const char *gilvm_version(void);

/* Exit statuses of gilvm_run_file, _string and _buffer, and of the gilvm executable. */
enum {
    GILVM_EXIT_OK = 0,          /* ran to completion */
    GILVM_EXIT_EXCEPTION = 1,   /* uncaught exception (traceback printed and recorded) */
    GILVM_EXIT_USAGE = 2,       /* bad command line, or a file that cannot be opened */
    GILVM_EXIT_LIMIT = 124,     /* a limit of gilvm_set_limits was exceeded, or gilvm_interrupt
                                 * (as timeout(1)) */
    GILVM_EXIT_DATAERR = 65,    /* malformed .gasm or rejected .gbc */
    GILVM_EXIT_SIGINT = 130,    /* uncaught KeyboardInterrupt (the process re-raises SIGINT) */
};

/* ---- memory: the allocator hook (docs/embedding.md, "Memory") ---- */

/* [PyMemAllocatorEx, lua_Alloc] A host's allocator, through which every allocation of the
 * VM goes (objects, tables, code, stacks; the runtime's own small structs, libffi's closures
 * and the strings of owned gilvm_values stay libc's).  realloc(data, NULL, n) must act as
 * malloc(n); n is never 0; free is never passed NULL; all three must be thread-safe (threads
 * of gilvm call them without the GIL).  A NULL result is an allocation failure: the program
 * gets MemoryError (an API call -1 with MemoryError recorded, gilvm_runtime_init -1), never
 * an abort, except as the guide's "Memory" section says. */
typedef struct {
    void *(*malloc)(void *data, size_t n);
    void *(*realloc)(void *data, void *p, size_t n);
    void (*free)(void *data, void *p);
    void *data;                         /* passed to each of the three */
} gilvm_allocator;

/* [PyConfig] How gilvm_runtime_init sets the runtime up; all zeros are the defaults. */
typedef struct {
    unsigned long switch_interval_us;   /* 0: default 5000 */
    int recursion_limit;                /* 0: default 1000 */
    int no_signal_handlers;             /* 1: leave SIGINT alone (else: KeyboardInterrupt) */
    int no_ffi;                         /* 1: native calls (the ffi_* builtins) refused */
    unsigned exclude;                   /* GILVM_LIB_* groups of builtins not installed */
    const gilvm_allocator *allocator;   /* NULL: libc's; used until the next init (copied) */
} gilvm_config;

/* Groups of builtins a host can leave out of the interpreter (gilvm_config.exclude), for a
 * script it does not trust; a left-out builtin is not defined (NameError). */
enum {
    GILVM_LIB_THREADS = 1,      /* thread_*, lock_*, queue_*, set_async_exc, ... */
    GILVM_LIB_SIGNAL = 2,       /* signal, kill, alarm, raise_signal, set_wakeup_fd, ... */
    GILVM_LIB_OS = 4,           /* fork, waitpid, _exit, getpid, pipe, fd_* */
    GILVM_LIB_FFI = 8,          /* ffi_*: native calls, raw memory */
    GILVM_LIB_UNSAFE = GILVM_LIB_SIGNAL | GILVM_LIB_OS | GILVM_LIB_FFI,
};

/* [Py_InitializeFromConfig, luaL_newstate] Starts the runtime and the main interpreter on
 * the calling (main) thread, which then holds the GIL; config may be NULL (defaults).  Seeds
 * the string hash (GILVM_HASHSEED, docs/embedding.md).  0, or -1 with a message on stderr. */
GILVM_API int gilvm_runtime_init(const gilvm_config *config);

/* [PySys_SetArgv] Sets the program arguments (argv[0] is the program file) seen by the
 * `argv` builtin; call it holding the GIL. */
GILVM_API void gilvm_set_argv(int argc, char **argv);

/* Running code: the calling thread must hold the GIL (the main thread after init, or a
 * thread between gilvm_gilstate_ensure and release, or after gilvm_restore_thread).  A call
 * from a thread that does not fails at once: it prints and records (gilvm_error_*) a
 * RuntimeError, runs nothing, and returns GILVM_EXIT_USAGE or -1. */

/* [PyRun_SimpleFile, luaL_dofile] Loads (.gasm or .gbc, by content) and runs a file in the
 * main interpreter; returns a GILVM_EXIT_* status or a SystemExit code.  An uncaught
 * exception is printed (through the output hook) and also kept for gilvm_error_*. */
GILVM_API int gilvm_run_file(const char *path);

/* [PyRun_SimpleString, luaL_dostring] Assembles and runs source text as a module named
 * `name`; same statuses as run_file. */
GILVM_API int gilvm_run_string(const char *name, const char *source);

/* [luaL_loadbufferx + lua_pcall] Runs `len` bytes of `data`, a .gbc image (verified first)
 * or .gasm text (which need not end in NUL), as a module named `name`; same statuses. */
GILVM_API int gilvm_run_buffer(const char *name, const void *data, size_t len);

/* Limits on what the main interpreter's program may use, for running code one does not
 * trust; 0 means no limit (docs/embedding.md). */
typedef struct {
    unsigned long long max_instructions;    /* bytecode instructions run, all threads */
    unsigned long long timeout_ms;          /* wall-clock milliseconds */
    unsigned long long max_memory;          /* bytes of the interpreter's heap */
} gilvm_limits;

/* [lua_sethook with LUA_MASKCOUNT; no CPython counterpart] Applies `limits` from now on, restarting the instruction count and the clock; call it
 * holding the GIL (from the main thread, or between gilvm_gilstate_ensure and release).
 * A program that runs past the instruction count or the time gets LimitExceeded at its
 * next poll (function entry, backward jump), which no `try` catches: the run returns
 * GILVM_EXIT_LIMIT.  One whose heap would grow past max_memory gets MemoryError, which it
 * may catch.  Returns 0, or -1 if the runtime is not running or a timer cannot start. */
GILVM_API int gilvm_set_limits(const gilvm_limits *limits);

/* [Py_FinalizeEx, lua_close] Joins non-daemon threads, runs exit handlers and tears the
 * runtime down; call it from the thread that called init, holding the GIL.  Registered C
 * functions are forgotten and the calling thread's recorded error cleared.  Returns the
 * status to exit with (normally `status` itself). */
GILVM_API int gilvm_runtime_finalize(int status);

/* ---- pending calls: C functions run later by the VM, at a poll, holding the GIL ---- */

/* [Py_AddPendingCall] Queues fn(arg) to run on the main thread at its next poll; callable
 * from any thread, with or without the GIL (not from a signal handler).  fn returns 0, or
 * non-zero to make the poll raise RuntimeError("pending call failed").  Returns 0, or -1 if
 * the queue (32 calls) is full or the runtime is not running.  Calls still queued at
 * finalization run then, before the atexit functions. */
GILVM_API int gilvm_pending_add(int (*fn)(void *arg), void *arg);

/* As gilvm_pending_add, for any thread of interpreter `interp_id` (queue of 300; 0 is the
 * main interpreter); -1 also if there is no such interpreter. */
GILVM_API int gilvm_pending_add_interp(long long interp_id, int (*fn)(void *arg), void *arg);

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
GILVM_API int gilvm_gilstate_ensure(void);

/* [PyGILState_Release] Undoes the matching ensure: releases the GIL if ensure took it; the
 * outermost release deletes the thread state if ensure created it (never one it did not). */
GILVM_API void gilvm_gilstate_release(int state);

/* [PyGILState_Check] Returns 1 if the calling thread holds the GIL, else 0. */
GILVM_API int gilvm_gilstate_check(void);

/* ---- the GIL from the host's own threads ---- */

/* A thread state saved by gilvm_save_thread; opaque. */
typedef struct gilvm_thread gilvm_thread;

/* [PyEval_SaveThread] Releases the GIL held by the calling thread and returns its state, so
 * that other threads (gilvm's, or the host's through gilvm_gilstate_ensure) can run code
 * while this one waits or works in C; the thread must run no code until it calls
 * gilvm_restore_thread with the returned value.  NULL if it held no GIL. */
GILVM_API gilvm_thread *gilvm_save_thread(void);

/* [PyEval_RestoreThread] Takes the GIL back for the state gilvm_save_thread returned
 * (waiting for it); NULL does nothing.  During finalization by another thread, a thread
 * that tries to take the GIL back ends instead, as CPython's do. */
GILVM_API void gilvm_restore_thread(gilvm_thread *state);

/* ---- interrupting a running program ---- */

/* [PyErr_SetInterrupt, lua_sethook from another thread] Stops the program running in the
 * main interpreter: every thread of it gets LimitExceeded("interrupted") at its next poll,
 * which no `try` catches, so the run returns GILVM_EXIT_LIMIT (gilvm_call: -1).  Callable
 * from any thread, with or without the GIL (not from a signal handler).  With no program
 * running, the next run stops at its first poll; the interrupt is spent when a run or call
 * started from the host returns.  0, or -1 if the runtime is not running. */
GILVM_API int gilvm_interrupt(void);

/* ---- values in and out ---- */

/* The kind of a value crossing the API. */
typedef enum {
    GILVM_NONE = 0,     /* None */
    GILVM_BOOL,         /* u.i: 0 or 1 */
    GILVM_INT,          /* u.i */
    GILVM_FLOAT,        /* u.f */
    GILVM_STR,          /* u.s: UTF-8 text, len bytes, NUL-terminated */
    GILVM_BYTES,        /* u.s: len bytes (NUL-terminated too) */
    GILVM_OTHER,        /* out only: a function, a class...; u.s holds its repr */
    GILVM_LIST,         /* u.seq: len items */
    GILVM_TUPLE,        /* u.seq: len items */
    GILVM_DICT,         /* u.seq: len (key, value) pairs, items[2k] and items[2k + 1] */
} gilvm_type;

/* How deep lists, tuples and dicts may nest to cross the API: one nested deeper (or a list
 * that contains itself) is refused, ValueError. */
#define GILVM_MAX_DEPTH 100

/* A value crossing the API, by copy: no pointer into gilvm's heap ever reaches the host.
 * Ownership: a value gilvm hands out (a call's result, a global) has owned = 1 and its
 * string or items (recursively) are freed by gilvm_value_clear; values gilvm lends to a C
 * function (its arguments) have owned = 0 and live until it returns; values the host passes
 * in are copied, and stay the host's (a C function's result with owned = 1 is cleared by
 * gilvm after the copy). */
typedef struct gilvm_value gilvm_value;
struct gilvm_value {
    gilvm_type type;
    int owned;                          /* 1: u.s.data or u.seq.items is malloc'd (libc's),
                                         * and gilvm_value_clear frees it */
    union {
        int64_t i;
        double f;
        struct {
            const char *data;
            size_t len;
        } s;
        struct {
            gilvm_value *items;         /* GILVM_DICT: 2 * len values */
            size_t len;
        } seq;
    } u;
};

/* Builders for values passed in (nothing is allocated; strings are borrowed until copied). */
static inline gilvm_value gilvm_none(void) { gilvm_value v; v.type = GILVM_NONE; v.owned = 0; v.u.i = 0; return v; }
static inline gilvm_value gilvm_bool(int b) { gilvm_value v = gilvm_none(); v.type = GILVM_BOOL; v.u.i = !!b; return v; }
static inline gilvm_value gilvm_int(int64_t i) { gilvm_value v = gilvm_none(); v.type = GILVM_INT; v.u.i = i; return v; }
static inline gilvm_value gilvm_float(double f) { gilvm_value v = gilvm_none(); v.type = GILVM_FLOAT; v.u.f = f; return v; }
static inline gilvm_value gilvm_strn(const char *s, size_t len) { gilvm_value v = gilvm_none(); v.type = GILVM_STR; v.u.s.data = s; v.u.s.len = len; return v; }
static inline gilvm_value gilvm_str(const char *s) { size_t n = 0; while (s[n]) n++; return gilvm_strn(s, n); }
static inline gilvm_value gilvm_bytes(const void *p, size_t len) { gilvm_value v = gilvm_strn((const char *)p, len); v.type = GILVM_BYTES; return v; }
/* Containers passed in: `items` (len values; for a dict 2 * len, key then value) is
 * borrowed until copied. */
static inline gilvm_value gilvm_list(gilvm_value *items, size_t len) { gilvm_value v = gilvm_none(); v.type = GILVM_LIST; v.u.seq.items = items; v.u.seq.len = len; return v; }
static inline gilvm_value gilvm_tuple(gilvm_value *items, size_t len) { gilvm_value v = gilvm_list(items, len); v.type = GILVM_TUPLE; return v; }
static inline gilvm_value gilvm_dict(gilvm_value *pairs, size_t len) { gilvm_value v = gilvm_list(pairs, len); v.type = GILVM_DICT; return v; }

/* [Py_DECREF] Frees what an owned value holds (a container's items with it) and makes it
 * None; a value that is not owned is only reset to None. */
GILVM_API void gilvm_value_clear(gilvm_value *v);

/* [lua_setglobal, PyDict_SetItemString(globals)] Sets global `name` of the main interpreter
 * to a copy of *v (GILVM_OTHER is refused, TypeError; an unhashable dict key, TypeError).
 * 0, or -1 with the error recorded. */
GILVM_API int gilvm_set_global(const char *name, const gilvm_value *v);

/* [lua_getglobal] Stores a copy of global `name` in *out (owned: clear it).  0, or -1 with
 * NameError recorded if it is not set. */
GILVM_API int gilvm_get_global(const char *name, gilvm_value *out);

/* [lua_pcall, PyObject_CallFunction] Calls global `name` (a bytecode function, a builtin or
 * a registered C function) with argc arguments; on success stores its result in *result
 * (owned; NULL: dropped) and returns 0.  An exception it raises is not printed: the call
 * returns -1 with it recorded (gilvm_error_*), as is a LimitExceeded or an interrupt. */
GILVM_API int gilvm_call(const char *name, int argc, const gilvm_value *argv, gilvm_value *result);

/* ---- C functions callable from bytecode ---- */

/* [lua_CFunction, PyCFunction] A C function bytecode can call: argc arguments (lent, valid
 * until it returns; containers are copies gilvm frees then: never clear an argument) and
 * the `data` it was registered with; it stores its result in *result (preset to None) and
 * returns 0, or returns -1 having called gilvm_raise (a -1 without it raises RuntimeError).
 * It runs holding the GIL and may call gilvm_call (re-entrantly). */
typedef int (*gilvm_cfunction)(void *data, int argc, const gilvm_value *argv, gilvm_value *result);

/* [lua_register, PyModule_AddFunctions] Binds `fn` to global `name` of the main interpreter;
 * arity is the argument count bytecode must pass (-1: any, fn checks).  Call it holding the
 * GIL, after init.  0, or -1 (no runtime, or out of memory). */
GILVM_API int gilvm_register(const char *name, int arity, gilvm_cfunction fn, void *data);

/* [PyErr_Format, luaL_error] From a gilvm_cfunction: makes the call raise an exception of
 * the builtin class named `exc_class` ("ValueError"; an unknown name: RuntimeError) with a
 * printf-formatted message.  Returns -1, for `return gilvm_raise(...)`; outside a C
 * function it does nothing but return -1. */
GILVM_API int gilvm_raise(const char *exc_class, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- errors as data ---- */

/* [PyErr_Fetch + traceback.format_exception, lua_tostring(L, -1)] The last error of the
 * calling OS thread, recorded by a failing gilvm_run_*, gilvm_call, gilvm_set/get_global:
 * the exception class's name ("ValueError"; "SyntaxError" for a .gasm the assembler
 * rejects, "BytecodeError" for a rejected .gbc, "OSError" for a file that cannot be read),
 * its message (str of the exception), and the traceback as the runtime prints it ("" when
 * there is none).  NULL when no error is recorded.  The strings stay valid until the next
 * failing call on this thread or gilvm_error_clear. */
GILVM_API const char *gilvm_error_type(void);
GILVM_API const char *gilvm_error_message(void);
GILVM_API const char *gilvm_error_traceback(void);

/* [PyErr_Clear] Forgets the calling thread's recorded error and frees its strings (which a
 * thread's end also does). */
GILVM_API void gilvm_error_clear(void);

/* ---- hooks ---- */

/* Where output goes: stream 1 is what `print` writes, stream 2 tracebacks and warnings. */
typedef void (*gilvm_write_fn)(void *data, int stream, const char *text, size_t len);

/* [PySys_SetObject("stdout"), lua_writestring] Sends everything the runtime writes for the
 * program (print, tracebacks, "Exception ignored" reports) to fn(data, stream, text, len)
 * instead of stdout and stderr; fn runs holding the GIL, on the thread that writes.  NULL
 * restores the default.  Any thread, any time; --stats and --trace output is not affected. */
GILVM_API void gilvm_set_output(gilvm_write_fn fn, void *data);

/* ---- sub-interpreters [Py_NewInterpreterFromConfig, PEP 684, PEP 734] ---- */

/* How gilvm_interp_create sets an interpreter up; all zeros: isolated, as CPython's
 * default (its own GIL, threads allowed, daemon threads and fork refused). */
typedef struct {
    int shared_gil;             /* 1: share the main interpreter's GIL (legacy) */
    int no_threads;             /* 1: thread_start refused */
    int allow_daemon_threads;   /* 1: daemon threads allowed */
} gilvm_interp_config;

/* [Py_NewInterpreterFromConfig] Creates an interpreter with its own heap, globals and
 * builtins (config NULL: isolated); call it holding a GIL.  Returns its id (1, 2, ...;
 * never reused), or -1 with the error recorded. */
GILVM_API long long gilvm_interp_create(const gilvm_interp_config *config);

/* [Py_EndInterpreter] Destroys interpreter `id`: refused (-1, InterpreterError recorded)
 * for main, the caller's own, one running code or with live threads.  0 on success. */
GILVM_API int gilvm_interp_destroy(long long id);

/* [PyRun_StringFlags in another interpreter] Runs `source` (.gasm text) as a module named
 * `name` in interpreter `id`, on the calling thread (it swaps to a thread state of `id` and
 * back).  0, or -1 with the error recorded: an exception in the target is recorded as
 * InterpreterError naming the interpreter, the original type and message. */
GILVM_API int gilvm_interp_run_string(long long id, const char *name, const char *source);

/* As gilvm_call, for global `name` of interpreter `id`: the arguments and the result are
 * copied (None, bool, int, float, str, bytes); 0, or -1 with the error recorded. */
GILVM_API int gilvm_interp_call(long long id, const char *name, int argc, const gilvm_value *argv,
                                gilvm_value *result);

/* [Py_NewInterpreter's swap, PyThreadState_Swap] Makes the calling thread, which holds a
 * GIL, run in interpreter `id` from now on: it gets a new thread state there (the old one
 * released, its GIL too), so gilvm_run_string, gilvm_call and the globals functions work
 * on that interpreter.  Returns the old state, to pass to gilvm_interp_leave; NULL with
 * the error recorded if there is no such interpreter.  Interpreter `id` counts as running
 * (it cannot be destroyed) until then. */
GILVM_API gilvm_thread *gilvm_interp_enter(long long id);

/* Undoes gilvm_interp_enter: deletes the thread state it made (which must be current) and
 * takes `prev` back, with its GIL. */
GILVM_API void gilvm_interp_leave(gilvm_thread *prev);

/* ---- audit hooks [PySys_AddAuditHook, PEP 578] ---- */

/* A runtime-wide audit hook: sees every event (docs/runtime.md has the table) of every
 * interpreter, with its arguments (lent; GILVM_OTHER for values that are not plain data),
 * on the thread that raised it, holding its GIL.  Returns 0 to let the operation go on,
 * non-zero to abort it (it fails with RuntimeError "EVENT: refused by an audit hook"). */
typedef int (*gilvm_audit_hook)(void *data, const char *event, int argc, const gilvm_value *argv);

/* [PySys_AddAuditHook] Adds a hook, before gilvm_runtime_init (it then sees every event
 * from the start) or after, holding the GIL (hooks already there see "sys.addaudithook"
 * and may refuse it).  Hooks are forgotten at gilvm_runtime_finalize.  0, or -1 if refused
 * or if 16 hooks are set already. */
GILVM_API int gilvm_audit_hook_add(gilvm_audit_hook fn, void *data);

/* [PySys_Audit] Raises audit event `event` with argc arguments from the host, holding the
 * GIL; 0, or -1 if a hook refused it (the error recorded). */
GILVM_API int gilvm_audit(const char *event, int argc, const gilvm_value *argv);

#ifdef __cplusplus
}
#endif

#endif
