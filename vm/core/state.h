/* SPDX-License-Identifier: MIT */
/* The VM's interpreter and thread states (extending the runtime's by embedding), frames, and
 * the entry points that run code or raise.  Used by every vm/ file that runs code. */
#ifndef VM_STATE_H
#define VM_STATE_H

#include "vm/core/object.h"
#include "runtime/runtime.h"

/* A frame record.  Records are kept in a list per thread and reused (next is the spare
 * record for a callee, as Lua's CallInfo); the values live in the thread's value stack: a
 * frame's nlocals locals, then its value stack (maxstack values).  A bytecode call does not
 * copy arguments: the callee's first locals are the caller's argument slots. */
typedef struct vm_frame {
    struct vm_frame *prev;      /* the caller, or NULL */
    struct vm_frame *next;      /* spare record for the next call, or NULL */
    vm_code *code;
    const vm_xinstr *ip;        /* next instruction (saved when the frame is not running) */
    value *sp;                  /* stack top (saved likewise) */
    value *locals;              /* nlocals locals, then the value stack */
    uint32_t flags;             /* FR_*: any set bit sends RETURN down its slow path */
    uint32_t depth;             /* frames up to and including this one (1: the thread's first);
                                 * fixed per record, as records are reused in order */
    value saved_exc;            /* thread's handled exception when this frame was entered,
                                 * saved by its first PUSH_EXC_INFO or POP_EXCEPT (FR_EXC_INFO) */
} vm_frame;

enum {
    FR_FROM_C = 1,              /* pushed by vm_call or vm_run_code: returning leaves vm_eval */
    FR_NEW_CHUNK = 2,           /* its values start a new stack chunk: popping returns to the old */
    FR_EXC_INFO = 4,            /* it set the handled exception: popping restores saved_exc */
};

/* The bottom of a frame's value stack. */
#define FRAME_STACK(f) ((f)->locals + (f)->code->nlocals)

/* A piece of a thread's value stack; a frame that does not fit in the current chunk starts
 * a new one (FR_NEW_CHUNK). */
typedef struct vm_chunk {
    struct vm_chunk *prev;
    value *limit;               /* end of data[] */
    value data[];
} vm_chunk;

/* Builtin exception classes, one per interpreter; X(field, name, base field), bases first;
 * the root names itself. */
#define VM_EXC_CLASSES(X) \
    X(base_exception, "BaseException", base_exception) \
    X(exception, "Exception", base_exception) \
    X(keyboard_interrupt, "KeyboardInterrupt", base_exception) \
    X(system_exit, "SystemExit", base_exception) \
    X(type_error, "TypeError", exception) \
    X(value_error, "ValueError", exception) \
    X(arithmetic_error, "ArithmeticError", exception) \
    X(zero_division_error, "ZeroDivisionError", arithmetic_error) \
    X(overflow_error, "OverflowError", arithmetic_error) \
    X(lookup_error, "LookupError", exception) \
    X(index_error, "IndexError", lookup_error) \
    X(key_error, "KeyError", lookup_error) \
    X(name_error, "NameError", exception) \
    X(runtime_error, "RuntimeError", exception) \
    X(recursion_error, "RecursionError", runtime_error) \
    X(memory_error, "MemoryError", exception) \
    X(os_error, "OSError", exception) \
    X(interpreter_error, "InterpreterError", exception) \
    X(not_shareable_error, "NotShareableError", type_error) \
    X(finalization_error, "FinalizationError", runtime_error) \
    X(stop_iteration, "StopIteration", exception) \
    X(assertion_error, "AssertionError", exception) \
    X(timeout_error, "TimeoutError", os_error) \
    X(limit_exceeded, "LimitExceeded", base_exception)

typedef struct {
#define X(field, name, base) vm_class *field;
    VM_EXC_CLASSES(X)
#undef X
} vm_exc_classes;

/* Global variables: a slot table.  Each slot's value lives in a cell that never moves (cells
 * are allocated in blocks), and code objects are linked to the cells of their names when
 * loaded, so LOAD_GLOBAL is a load through the code's cell pointer. */
#define VM_GLOBAL_BLOCK 64
typedef struct {
    uint32_t n, cap;
    vm_str **names;
    value **cells;              /* slot -> its value cell */
    uint32_t *index;            /* hash index of names: slot+1, 0 = empty */
    uint32_t mask;
} vm_globals;

struct vm_interp {
    rt_interp base;
    vm_obj *heap;               /* every object of this interpreter */
    size_t allocated, threshold, ncollections;
    vm_globals globals;
    vm_exc_classes exc;
    value argv;                 /* list of program arguments */
    value atexit;               /* list of (func, args) tuples, run at finalization */
    /* Bytecode signal handlers (main interpreter only): a callable, V_INT(RT_SIG_DFL or
     * RT_SIG_IGN), or T_UNDEF (never set: getsignal reports the OS disposition). */
    value signal_handlers[RT_NSIG];
    int exiting;
    int ffi_disabled;           /* native calls refused (gilvm_config.no_ffi, --no-ffi) */
    value audit_hooks;          /* list of bytecode audit hooks (addaudithook), or None */
    struct {                    /* sub-interpreters (vm/lib/interp.c), under its lock */
        int running;            /* thread states swapped in to run code here */
        int requires_idref;     /* destroyed when its last id reference goes */
        int joining;            /* finalization joins its threads: runs still allowed */
        int destroyed;          /* being deleted: no more runs */
    } sub;
    /* The embedder's limits on this interpreter's program (vm/lib/limits.c sets them,
     * poll.c enforces them at polls while RT_LIMITS is set). */
    struct {
        uint64_t max_instructions;      /* 0: none */
        uint64_t executed;              /* instructions counted at polls since they were set */
        uint64_t timeout_ms;            /* 0: none */
        size_t max_memory;              /* bytes of heap (vm_interp.allocated); 0: none */
        _Atomic uint64_t generation;    /* counts settings: a timer of an older one is stale */
        _Atomic int exceeded;           /* VM_LIMIT_*: stays until the limits are set again */
    } limits;
};

/* Which limit a program ran out of (vm_interp.limits.exceeded). */
enum { VM_LIMIT_NONE, VM_LIMIT_INSTRUCTIONS, VM_LIMIT_TIME, VM_LIMIT_INTERRUPT };

struct vm_thread {
    rt_thread base;
    vm_frame *frame;            /* innermost frame, or NULL */
    vm_frame *frames;           /* first frame record (the list of records, linked by next) */
    vm_chunk *chunk;            /* value stack: current chunk */
    vm_chunk *spare_chunk;      /* a free chunk kept for the next overflow, or NULL */
    value *stack_limit;         /* end of the current chunk (NULL when there is none) */
    size_t stack_bytes;         /* bytes of the chunks held, the spare included */
    value exc;                  /* exception being raised (T_UNDEF when none) */
    value handled;              /* exception being handled (exc_info), None when none */
    int c_depth;                /* nested vm_eval activations */
    value self;                 /* the thread object running on this state, or None */
    uint64_t limits_counted;    /* base.stats.bytecodes already added to limits.executed */
    void *_Atomic waitq;        /* the vm_waitq a vm_wait blocks on (set_async_exc wakes it) */
    int (*wait_ready)(void *);  /* a vm_wait without deadline: its condition and object, for */
    void *wait_obj;             /* deadlock detection (vm/lib/wait.c); under vm_proc.watch.mu */
    int nroots;                 /* values C code keeps alive across calls into bytecode */
    value roots[16];
};

#define VM_INTERP(t) ((vm_interp *)(t)->base.interp)

/* The exception classes of t's interpreter. */
#define EXC(t) (&VM_INTERP(t)->exc)

/* The main thread's state (that of the main interpreter), NULL before init and after
 * finalization. */
static inline vm_thread *vm_main_thread(void)
{
    return (vm_thread *)atomic_load(&rt_main_runtime.main_tstate);
}

/* ---- raising (exc.c) ---- */

/* Sets the thread's exception to a new instance of `cls` with a formatted message; returns
 * -1 so callers can `return vm_raise(...)`. */
int vm_raise(vm_thread *t, vm_class *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets the thread's exception to `exc` (an instance, or a class to instantiate); -1. */
int vm_raise_value(vm_thread *t, value exc);
/* New exception instance of `cls` with argument `arg`. */
value vm_exc_new(vm_thread *t, vm_class *cls, value arg);
/* True if t's exception is one no handler may catch: LimitExceeded, which ends a program
 * that ran out of an embedder's limit. */
static inline bool vm_exc_uncatchable(vm_thread *t)
{
    return VM_INTERP(t)->limits.exceeded && t->exc.tag == T_EXC &&
           AS_EXC(t->exc)->cls == VM_INTERP(t)->exc.limit_exceeded;
}
/* True if class `c` is `base` or derives from it. */
bool vm_class_is(vm_class *c, vm_class *base);
/* Prints "Traceback ..." and the exception line for `exc` to stderr (vm_write). */
void vm_print_traceback(vm_thread *t, value exc);
/* The same text as vm_print_traceback prints, malloc'd ("" for a non-exception), or NULL if
 * out of memory. */
char *vm_format_traceback(vm_thread *t, value exc);
/* Appends (code, pc) to the exception's traceback. */
void vm_exc_add_tb(vm_thread *t, vm_exc *e, vm_code *code, uint32_t pc);
/* The exception message line ("ValueError: msg") as a new string. */
value vm_exc_format(vm_thread *t, value exc);
/* Consumes t's exception and reports it on stderr as "Exception ignored in WHAT: REPR(func)"
 * (func T_UNDEF: no repr) with its traceback [PyErr_FormatUnraisable]. */
void vm_report_ignored(vm_thread *t, const char *what, value func);

/* ---- globals (globals.c) ---- */

/* The value cell of global `name`, created (unset) if new; it never moves. */
value *vm_global_cell(vm_interp *in, vm_str *name);
/* Sets global `name` (a C string) to v. */
void vm_global_set(vm_thread *t, const char *name, value v);
/* Looks a global up by C string; T_UNDEF if unset. */
value vm_global_get(vm_interp *in, const char *name);
/* Releases the slot table. */
void vm_globals_free(vm_globals *g);

/* ---- running code (eval.c, call.c, poll.c) ---- */

/* Runs frames from t->frame until the frame entered from C returns; 0 with *result, or -1. */
int vm_eval(vm_thread *t, value *result);
/* The eval loop's handler address for each opcode (OP__ALL of them), which quickening
 * writes into execution copies; NULL in a build without computed goto. */
const void *const *vm_eval_handlers(void);
/* Calls a callable with argc arguments from C; 0 with *out, or -1 with the exception set. */
int vm_call(vm_thread *t, value f, int argc, const value *argv, value *out);
/* Per-tag call hooks for callable object types defined outside core (a bound C function,
 * vm/lib/ffi.c): CALL and vm_call reach them for a value of that tag (vm_call_other). */
typedef int (*vm_call_fn)(vm_thread *t, value f, int argc, const value *argv, value *out);
extern vm_call_fn vm_call_hooks[T__COUNT];
/* Pushes a frame entered from C (FR_FROM_C) for `code`, its first `argc` locals copied from
 * `args`, above everything the innermost frame may use; NULL with RecursionError set. */
vm_frame *vm_frame_push(vm_thread *t, vm_code *code, const value *args, uint32_t argc);
/* Pops the innermost frame. */
void vm_frame_pop(vm_thread *t);
/* Frees a thread's frame records and value stack (the thread runs no code any more). */
void vm_frames_free(vm_thread *t);
/* Runs a module body code object (linked already) in a new frame; stack results (REPL) are
 * copied to `stack_io` if not NULL (in: initial values, count *depth_io; out likewise). */
int vm_run_code(vm_thread *t, vm_code *code, value *stack_io, uint32_t *depth_io, uint32_t cap);
/* Handles the eval breaker's bits at a poll, in CPython's order (poll.c: stop, signals,
 * pending calls, GC, GIL, async exception); 0, or -1 with an exception set. */
int vm_handle_pending(vm_thread *t);
/* A blocking wait woke for RT_SIGNALS_PENDING, RT_EVAL_PLEASE_STOP, RT_ASYNC_EXCEPTION or
 * an exceeded limit (RT_LIMITS); holding the GIL, handles those as a poll would; 0, or -1 if
 * a signal handler raised, an asynchronous exception arrived or a limit was exceeded. */
int vm_poll_in_wait(vm_thread *t);
/* Runs the handlers of signals that arrived, if `t` is the main thread; 0, or -1 with the
 * exception of the handler that raised (the remaining signals run at a later poll). */
int vm_signals_run(vm_thread *t);
/* Runs the pending calls left for `t` until none is left [_Py_FinishPendingCalls]; a call
 * that fails is reported on stderr and the rest still run. */
void vm_pending_finish(vm_thread *t);

/* Builds code->exec, the execution copy with superinstructions, its globals resolved to
 * `in`'s cells (quicken.c). */
void vm_quicken(vm_interp *in, vm_code *c);

/* ---- interpreter setup (setup.c) ---- */

/* Runtime hooks that release the VM's part of thread and interpreter states. */
extern const rt_hooks vm_rt_hooks;
/* Fills a new interpreter's core state: heap threshold, exception classes (as globals),
 * argv; the library's builtins come next (vm_lib_install, vm/lib/lib.h). */
void vm_interp_setup(vm_thread *t);

/* ---- GC (gc.c) ---- */

typedef void (*vm_gc_mark_fn)(void *g, value v);
typedef void (*vm_gc_blacken_fn)(vm_obj *o, vm_gc_mark_fn mark, void *g);
typedef void (*vm_gc_free_fn)(vm_obj *o);
typedef void (*vm_gc_root_fn)(vm_interp *in, vm_gc_mark_fn mark, void *g);
#define VM_GC_MAX_ROOT_HOOKS 8

/* Per-tag hooks for object types defined outside gc.c (threads, locks, queues): mark what
 * the object references, and release what it owns before it is freed. */
extern vm_gc_blacken_fn vm_gc_blacken_hooks[T__COUNT];
extern vm_gc_free_fn vm_gc_free_hooks[T__COUNT];
/* Adds a root set (queued calls, the REPL's stack) that every collection of every
 * interpreter marks; adding one twice adds it once.  At most VM_GC_MAX_ROOT_HOOKS. */
void vm_gc_add_root_hook(vm_gc_root_fn fn);
/* Removes a root set added by vm_gc_add_root_hook. */
void vm_gc_remove_root_hook(vm_gc_root_fn fn);

/* Frees one object and what it owns. */
void vm_obj_free(vm_interp *in, vm_obj *o);

/* Collects the interpreter's heap now; caller holds the GIL with all threads at safe points. */
void vm_gc_collect(vm_thread *t);
/* After a collection: -1 with MemoryError if malloc failed since the last one (the
 * reserve went), or if the heap is still larger than its limit (gilvm_limits.max_memory);
 * takes the reserve back (and at setup, takes it first). */
int vm_heap_check(vm_thread *t);
/* Frees every object of the interpreter (at teardown). */
void vm_heap_free(vm_interp *in);

#endif
