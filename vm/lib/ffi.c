/* SPDX-License-Identifier: MIT */
/* Native calls through libffi [ctypes]: shared libraries, C functions bound with a signature,
 * buffers of memory, and callbacks that wrap a bytecode function as a C function pointer.
 * Installed by lib.c; the call path is reached through CALL (vm_call_hooks[T_FFI_FUNC]).
 *
 * Notes
 * -----
 * Types.  A signature names each type by a string (`"int32"`, `"double"`, `"str"`, ...;
 * lookup_type below).  It is checked once, when a function is bound or a callback made:
 * the ffi_cif that libffi calls through is prepared then and kept in the object, so a call
 * only converts its arguments (into slots on the C stack, at most FFI_MAX_ARGS) and calls.
 * Ints are range-checked against the C type before anything is called (OverflowError), never
 * truncated; a uint64 or size_t above 2**63-1 does not fit gilvm's 64-bit int and raises
 * OverflowError too.  Pointers are ints (their bit pattern), as ctypes' c_void_p results.
 *
 * The GIL.  A call releases the GIL around the foreign function (rt_thread_detach, then
 * rt_thread_attach_urgent: the convoy fix), as ctypes does for CDLL functions; a function
 * bound with release_gil=False keeps it [ctypes.PyDLL].  While the GIL is released the
 * thread is at a safe point for the collector: every value the C function may point into
 * (str and bytes data, buffers, callbacks) is an argument, and the arguments sit on the
 * caller's value stack.  A blocked foreign call cannot be interrupted; after it returns the
 * thread runs what a blocking wait runs on waking (vm_poll_in_wait: signal handlers, a stop
 * request, an exceeded limit) before it converts the result, so a handler runs as soon as
 * the call is back.  Finalization does not wait for threads inside foreign calls (it cannot
 * know when they return); one that returns later exits at its GIL take, as a daemon thread.
 *
 * Callbacks.  ffi_callback makes a C function pointer: a direct entry (below, "Direct
 * entries") when its signature allows and one is free, else a libffi closure
 * (callback_entry).  Either runs on whatever thread C calls it from, with or without the
 * GIL, and takes it through GILState [PyGILState_Ensure] (callback_dispatch): a thread
 * holding it goes on; a gilvm thread that released it for the foreign call re-attaches its
 * own state by the brief protocol (design §9 item 20; a CAS to take it back, a mark to give
 * it up again); a thread gilvm did not create gets a new state, deleted when the callback
 * returns.  The function is entered by vm_call, bounded by the recursion limit and the
 * native re-entry limit.  An exception in the bytecode function is reported as CPython
 * reports unraisable exceptions ("Exception ignored in ffi callback: ...") and the callback
 * returns zero (NULL, 0.0).  C may keep the function pointer as long as it likes, so a
 * callback is a GC root (with its function) from its creation until ffi_free releases its
 * entry; the live ones are listed in `callbacks`, under callbacks_mu, which the collector's
 * root hook walks.  The path from C to the function is one inlined function per entry kind
 * (callback_run inside callback_dispatch): arguments converted straight from where C put
 * them, by a register map computed when the callback is made, and an int result stored
 * without the general conversion.
 *
 * Memory.  A buffer (vm_ffi_buffer) owns `size` malloc'd bytes, read and written at an
 * offset with bounds checks; ffi_free releases them early.  Memory C returns (a raw
 * pointer) is read and written only by the builtins whose names end in _unchecked.
 *
 * Everything here is refused when the interpreter's ffi_disabled is set (--no-ffi,
 * gilvm_config.no_ffi), and library opens, binds and calls raise audit events
 * ("ffi.dlopen", "ffi.bind", "ffi.call") that a hook can abort. */
#include <dlfcn.h>
#include <ffi.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "runtime/sched.h"
#include "vm/core/output.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/wait.h"

/* Arguments a function or callback may take (slots on the C stack at each call). */
#define FFI_MAX_ARGS 64

/* ---- types ---- */

enum {
    FT_VOID, FT_I8, FT_I16, FT_I32, FT_I64, FT_U8, FT_U16, FT_U32, FT_U64, FT_FLOAT,
    FT_DOUBLE, FT_PTR, FT_STR, FT__COUNT
};

_Static_assert(sizeof(int) == 4 && sizeof(void *) == 8 && sizeof(size_t) == 8,
               "the type table assumes an LP64 platform");

static ffi_type *const ft_ffi[FT__COUNT] = {
    &ffi_type_void, &ffi_type_sint8, &ffi_type_sint16, &ffi_type_sint32, &ffi_type_sint64,
    &ffi_type_uint8, &ffi_type_uint16, &ffi_type_uint32, &ffi_type_uint64, &ffi_type_float,
    &ffi_type_double, &ffi_type_pointer, &ffi_type_pointer,
};
static const uint8_t ft_size[FT__COUNT] = {0, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 8, 8};
static const int64_t ft_min[FT__COUNT] = {
    [FT_I8] = INT8_MIN, [FT_I16] = INT16_MIN, [FT_I32] = INT32_MIN, [FT_I64] = INT64_MIN,
};
static const int64_t ft_max[FT__COUNT] = {
    [FT_I8] = INT8_MAX, [FT_I16] = INT16_MAX, [FT_I32] = INT32_MAX, [FT_I64] = INT64_MAX,
    [FT_U8] = UINT8_MAX, [FT_U16] = UINT16_MAX, [FT_U32] = UINT32_MAX, [FT_U64] = INT64_MAX,
};

/* Each type's name, as messages show it (lookup_type also knows the C aliases). */
static const char *const ft_names[FT__COUNT] = {
    "void", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float",
    "double", "pointer", "str",
};

static const char *ft_name(int ft)
{
    return ft_names[ft];
}

static int is_int_type(int ft)
{
    return ft >= FT_I8 && ft <= FT_U64;
}

/* The first n (< 8) bytes at s as a word, byte i in bits 8i..8i+7, for comparing short
 * names at once; NAME_WORD(literal) is the same word as a constant. */
static inline __attribute__((always_inline)) uint64_t name_word(const char *s, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, s, n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}
#define NAME_BYTE(s, i) \
    ((i) < sizeof(s) - 1 ? (uint64_t)(unsigned char)(s)[(i) < sizeof(s) - 1 ? (i) : 0] << (8 * (i)) : 0)
#define NAME_WORD(s) (NAME_BYTE(s, 0) | NAME_BYTE(s, 1) | NAME_BYTE(s, 2) | NAME_BYTE(s, 3) | \
                      NAME_BYTE(s, 4) | NAME_BYTE(s, 5) | NAME_BYTE(s, 6))

/* The FT_ type named by the n bytes at d (a type's name or a C alias), or -1; by length and
 * one word compare per candidate (inlined, calling nothing), since a memory access names
 * its type on every call. */
static inline __attribute__((always_inline)) int lookup_type(const char *d, size_t n)
{
    uint64_t w;
#define M(name, ft) if (w == NAME_WORD(name)) return ft
    switch (n) {
    case 3: w = name_word(d, 3); M("int", FT_I32); M("str", FT_STR); break;
    case 4: w = name_word(d, 4); M("int8", FT_I8); M("void", FT_VOID); M("uint", FT_U32);
        M("long", FT_I64); break;
    case 5:
        w = name_word(d, 5);
        M("int32", FT_I32); M("int64", FT_I64); M("int16", FT_I16); M("uint8", FT_U8);
        M("float", FT_FLOAT); M("ulong", FT_U64);
        break;
    case 6:
        w = name_word(d, 6);
        M("double", FT_DOUBLE); M("uint32", FT_U32); M("uint64", FT_U64); M("uint16", FT_U16);
        M("size_t", FT_U64);
        break;
    case 7: w = name_word(d, 7); M("pointer", FT_PTR); M("ssize_t", FT_I64); break;
    }
    return -1;
#undef M
}

/* The type named by `v` (a str) into *ft; TypeError naming what FN expected otherwise. */
static int want_type(vm_thread *t, const char *fn, value v, uint8_t *ft)
{
    if (v.tag != T_STR)
        return vm_raise(t, EXC(t)->type_error, "%s() type must be a str such as 'int32', not '%s'",
                        fn, vm_type_name(v));
    int found = lookup_type(AS_STR(v)->data, AS_STR(v)->len);
    if (found >= 0) {
        *ft = (uint8_t)found;
        return 0;
    }
    return vm_raise(t, EXC(t)->type_error, "%s() unknown type '%s' (types: void, int8, int16, "
                    "int32, int64, uint8, uint16, uint32, uint64, float, double, pointer, str, "
                    "and int, uint, long, ulong, size_t, ssize_t)", fn, AS_STR(v)->data);
}

/* A C value of any of the types, as libffi reads an argument and writes memory. */
typedef union {
    int8_t i8; int16_t i16; int32_t i32; int64_t i64;
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
    float f; double d; void *p;
} ffi_slot;

/* ---- objects ---- */

typedef struct {                /* T_FFI_LIB [ctypes.CDLL] */
    vm_obj h;
    void *handle;               /* dlopen's; dlclose'd when collected */
    value name;                 /* str, or None for the process itself */
} ffi_lib;

/* A checked signature: return type, argument types, how many are fixed (variadic only). */
typedef struct {
    uint8_t ret;
    uint16_t nargs, nfixed;
    int variadic;
    uint8_t ft[FFI_MAX_ARGS];
    uint8_t deref[FFI_MAX_ARGS];    /* callbacks: a "T*" argument's T, read at the call */
    ffi_type *atypes[FFI_MAX_ARGS];
} ffi_sig;

typedef struct {                /* T_FFI_FUNC [a ctypes function pointer] */
    vm_obj h;
    value lib;                  /* the library (kept alive while the function is) */
    value name;                 /* str: the symbol */
    void *fn;
    int release_gil;
    int direct;                 /* called without libffi (direct_call) */
    ffi_cif cif;                /* prepared at bind time; points into sig.atypes */
    ffi_sig sig;
} ffi_func;

/* The direct call.  On x86-64 (System V) and AArch64 a C function's integer and pointer
 * arguments go in the first 6 (8) integer registers and its doubles in the first 8 vector
 * registers, each class counted on its own, and the result comes back in the first of its
 * class.  So a function with at most 6 integer or pointer arguments and 8 doubles, no float
 * and no variadic part, receives exactly what it expects when called through one prototype
 * taking 6 int64_t then 8 doubles (the extra registers are ignored): what libffi would do,
 * without interpreting its cif.  Integer arguments are passed already extended to 64 bits
 * from their C type (as C's callers extend them), results narrowed as libffi's are.  Any
 * other signature goes through libffi. */
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(_WIN32)
#define FFI_DIRECT 1
typedef int64_t (*direct_int_fn)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                 double, double, double, double, double, double, double, double);
typedef double (*direct_double_fn)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                   double, double, double, double, double, double, double,
                                   double);
#else
#define FFI_DIRECT 0
#endif

/* Whether `sig` can be called directly (above). */
static int direct_ok(const ffi_sig *sig)
{
    if (!FFI_DIRECT || sig->variadic || sig->ret == FT_FLOAT)
        return 0;
    int nint = 0, ndouble = 0;
    for (unsigned i = 0; i < sig->nargs; i++) {
        if (sig->ft[i] == FT_FLOAT)
            return 0;
        if (sig->ft[i] == FT_DOUBLE)
            ndouble++;
        else
            nint++;
    }
    return nint <= 6 && ndouble <= 8;
}

/* A converted argument as the 64-bit register the direct call passes it in. */
static int64_t slot_reg(int ft, const ffi_slot *s)
{
    switch (ft) {
    case FT_I8: return s->i8;
    case FT_I16: return s->i16;
    case FT_I32: return s->i32;
    case FT_U8: return s->u8;
    case FT_U16: return s->u16;
    case FT_U32: return s->u32;
    case FT_PTR:
    case FT_STR: return (int64_t)(intptr_t)s->p;
    default: return s->i64;
    }
}

typedef struct ffi_cb {         /* T_FFI_CALLBACK [ctypes.CFUNCTYPE(...)(f)] */
    vm_obj h;
    value func;                 /* the bytecode function (or any callable) */
    vm_interp *in;
    ffi_closure *closure;       /* libffi's, or NULL for a direct entry (slot >= 0) */
    int slot;                   /* its direct entry (cb_slots), or -1 */
    uint8_t reg[FFI_MAX_ARGS];  /* direct entry: argument i's register (int 0-5, vector 0-7) */
    void *code;                 /* the C function pointer; NULL once freed (ffi_free) */
    struct ffi_cb *prev, *next; /* in `callbacks` while the closure lives */
    ffi_cif cif;
    ffi_sig sig;
} ffi_cb;

/* Callbacks whose closures live: GC roots of their interpreters. */
static pthread_mutex_t callbacks_mu = PTHREAD_MUTEX_INITIALIZER;
static ffi_cb *callbacks;

static void callback_unlink(ffi_cb *cb)
{
    pthread_mutex_lock(&callbacks_mu);
    if (cb->prev)
        cb->prev->next = cb->next;
    else
        callbacks = cb->next;
    if (cb->next)
        cb->next->prev = cb->prev;
    cb->prev = cb->next = NULL;
    pthread_mutex_unlock(&callbacks_mu);
}

static void slot_release(int slot);

/* Frees a callback's closure or direct entry (C must not call it any more) and stops
 * rooting it. */
static void callback_release(ffi_cb *cb)
{
    if (!cb->code)
        return;
    callback_unlink(cb);
    if (cb->closure)
        ffi_closure_free(cb->closure);
    else
        slot_release(cb->slot);
    cb->closure = NULL;
    cb->slot = -1;
    cb->code = NULL;
}

static void mark_callbacks(vm_interp *in, vm_gc_mark_fn mark, void *g)
{
    pthread_mutex_lock(&callbacks_mu);
    for (ffi_cb *cb = callbacks; cb; cb = cb->next)
        if (cb->in == in)
            mark(g, V_OBJ(T_FFI_CALLBACK, cb));
    pthread_mutex_unlock(&callbacks_mu);
}

static void lib_blacken(vm_obj *o, vm_gc_mark_fn mark, void *g)
{
    mark(g, ((ffi_lib *)o)->name);
}

static void func_blacken(vm_obj *o, vm_gc_mark_fn mark, void *g)
{
    mark(g, ((ffi_func *)o)->lib);
    mark(g, ((ffi_func *)o)->name);
}

static void callback_blacken(vm_obj *o, vm_gc_mark_fn mark, void *g)
{
    mark(g, ((ffi_cb *)o)->func);
}

static void lib_free(vm_obj *o)
{
    dlclose(((ffi_lib *)o)->handle);
}

static void buffer_free(vm_obj *o)
{
    free(((vm_ffi_buffer *)o)->data);
}

static void callback_free(vm_obj *o)
{
    callback_release((ffi_cb *)o);
}

/* ---- shared checks ---- */

/* RuntimeError if native calls are disabled in t's interpreter. */
static int check_enabled(vm_thread *t, const char *fn)
{
    if (!VM_INTERP(t)->ffi_disabled)
        return 0;
    return vm_raise(t, EXC(t)->runtime_error, "%s(): native calls are disabled (--no-ffi)", fn);
}

/* The memory of a buffer argument into *data and *size; TypeError or ValueError (freed). */
static int want_buffer(vm_thread *t, const char *fn, value v, vm_ffi_buffer **out)
{
    if (v.tag != T_FFI_BUFFER)
        return vm_type_err(t, fn, "an ffi_buffer", v);
    vm_ffi_buffer *b = (vm_ffi_buffer *)v.u.o;
    if (!b->data)
        return vm_raise(t, EXC(t)->value_error, "%s(): the buffer was freed", fn);
    *out = b;
    return 0;
}

/* Stores n, in range for the int type ft, as that C type in *s. */
static inline void int_slot(int ft, int64_t n, ffi_slot *s)
{
    switch (ft) {
    case FT_I8: s->i8 = (int8_t)n; break;
    case FT_I16: s->i16 = (int16_t)n; break;
    case FT_I32: s->i32 = (int32_t)n; break;
    case FT_U8: s->u8 = (uint8_t)n; break;
    case FT_U16: s->u16 = (uint16_t)n; break;
    case FT_U32: s->u32 = (uint32_t)n; break;
    default: s->i64 = n; break;
    }
}

/* Converts argument `i` (from 1; 0: FN is what is converted, a callback's result) of FN,
 * `v`, to C type `ft` in *s; TypeError or OverflowError.  C strings and pointers point into
 * `v`, which the caller keeps alive. */
static int to_c(vm_thread *t, const char *fn, int i, int ft, value v, ffi_slot *s)
{
    char what[160];                 /* names the value in a message: written on errors only */
#define WHAT (i ? (snprintf(what, sizeof what, "%s() argument %d", fn, i), what) : fn)
    if (is_int_type(ft)) {
        if (v.tag != T_INT && v.tag != T_BOOL)
            return vm_raise(t, EXC(t)->type_error, "%s must be int, not '%s'", WHAT,
                            vm_type_name(v));
        int64_t n = v.u.i;
        if (n < ft_min[ft] || n > ft_max[ft])
            return vm_raise(t, EXC(t)->overflow_error, "%s: %lld is out of range for %s "
                            "(%lld..%lld)", WHAT, (long long)n, ft_name(ft),
                            (long long)ft_min[ft], (long long)ft_max[ft]);
        int_slot(ft, n, s);
        return 0;
    }
    switch (ft) {
    case FT_FLOAT:
    case FT_DOUBLE: {
        double d;
        if (v.tag == T_FLOAT)
            d = v.u.f;
        else if (v.tag == T_INT || v.tag == T_BOOL)
            d = (double)v.u.i;
        else
            return vm_raise(t, EXC(t)->type_error, "%s must be a number, not '%s'", WHAT,
                            vm_type_name(v));
        if (ft == FT_FLOAT)
            s->f = (float)d;
        else
            s->d = d;
        return 0;
    }
    case FT_STR:
        if (v.tag == T_STR || v.tag == T_BYTES) {
            s->p = AS_STR(v)->data;                 /* NUL-terminated by construction */
            return 0;
        }
        if (v.tag != T_NONE && v.tag != T_FFI_BUFFER)
            return vm_raise(t, EXC(t)->type_error, "%s must be str, bytes, an ffi_buffer or "
                            "None, not '%s'", WHAT, vm_type_name(v));
        /* None and buffers as for a pointer (not ints: no string at a raw address) */
        /* fall through */
    case FT_PTR:
        switch (v.tag) {
        case T_NONE: s->p = NULL; return 0;
        case T_INT: s->p = (void *)(intptr_t)v.u.i; return 0;
        case T_FFI_BUFFER:
            if (!((vm_ffi_buffer *)v.u.o)->data)
                return vm_raise(t, EXC(t)->value_error, "%s: the buffer was freed", WHAT);
            s->p = ((vm_ffi_buffer *)v.u.o)->data;
            return 0;
        case T_FFI_CALLBACK:
            if (!((ffi_cb *)v.u.o)->code)
                return vm_raise(t, EXC(t)->value_error, "%s: the callback was freed", WHAT);
            s->p = ((ffi_cb *)v.u.o)->code;
            return 0;
        default:
            return vm_raise(t, EXC(t)->type_error, "%s must be a pointer (an int, None, an "
                            "ffi_buffer or an ffi_callback), not '%s'", WHAT, vm_type_name(v));
        }
    default:
        return vm_raise(t, EXC(t)->type_error, "%s: no value has type void", WHAT);
    }
#undef WHAT
}

/* OverflowError for an unsigned 64-bit C value above INT64_MAX; -1. */
static int u64_overflow(vm_thread *t, const char *what, uint64_t u)
{
    return vm_raise(t, EXC(t)->overflow_error, "%s: %llu does not fit in a 64-bit int", what,
                    (unsigned long long)u);
}

/* Reads a C value of type `ft` at p (any alignment) into *out; a C string ("str": a char *
 * at p) is copied into a new str, NULL gives None. */
static inline __attribute__((always_inline)) int from_c(vm_thread *t, const char *what, int ft,
                                                       const void *p, value *out)
{
#define READ(type, to) do { type x_; memcpy(&x_, p, sizeof x_); *out = to(x_); } while (0)
    switch (ft) {
    case FT_I8: READ(int8_t, V_INT); return 0;
    case FT_I16: READ(int16_t, V_INT); return 0;
    case FT_I32: READ(int32_t, V_INT); return 0;
    case FT_I64: READ(int64_t, V_INT); return 0;
    case FT_U8: READ(uint8_t, V_INT); return 0;
    case FT_U16: READ(uint16_t, V_INT); return 0;
    case FT_U32: READ(uint32_t, V_INT); return 0;
    case FT_U64: {
        uint64_t u;
        memcpy(&u, p, sizeof u);
        if (u > INT64_MAX)
            return u64_overflow(t, what, u);
        *out = V_INT((int64_t)u);
        return 0;
    }
    case FT_FLOAT: READ(float, V_FLOAT); return 0;
    case FT_DOUBLE: READ(double, V_FLOAT); return 0;
    case FT_PTR: READ(intptr_t, V_INT); return 0;
    case FT_STR: {
        const char *c;
        memcpy(&c, p, sizeof c);
        *out = c ? vm_str_c(t, c) : V_NONE;
        return 0;
    }
    default: *out = V_NONE; return 0;
    }
#undef READ
}

/* Reads a number of type `ft` at p into *out as from_c, calling nothing: 1, or 0 if it
 * cannot (void, str, a uint64 above INT64_MAX), leaving *out alone. */
static inline __attribute__((always_inline)) int read_number(int ft, const void *p, value *out)
{
#define READ(type, to) do { type x_; memcpy(&x_, p, sizeof x_); *out = to(x_); } while (0)
    switch (ft) {
    case FT_I8: READ(int8_t, V_INT); return 1;
    case FT_I16: READ(int16_t, V_INT); return 1;
    case FT_I32: READ(int32_t, V_INT); return 1;
    case FT_I64: READ(int64_t, V_INT); return 1;
    case FT_U8: READ(uint8_t, V_INT); return 1;
    case FT_U16: READ(uint16_t, V_INT); return 1;
    case FT_U32: READ(uint32_t, V_INT); return 1;
    case FT_U64: {
        uint64_t u;
        memcpy(&u, p, sizeof u);
        if (u > INT64_MAX)
            return 0;
        *out = V_INT((int64_t)u);
        return 1;
    }
    case FT_FLOAT: READ(float, V_FLOAT); return 1;
    case FT_DOUBLE: READ(double, V_FLOAT); return 1;
    case FT_PTR: READ(intptr_t, V_INT); return 1;
    default: return 0;
    }
#undef READ
}

/* Checks a signature: restype and argtypes (a tuple or list of type names; "..." once
 * marks where a C function's variadic arguments start).  Callbacks take no "...". */
static int want_sig(vm_thread *t, const char *fn, value restype, value argtypes, int callback,
                    ffi_sig *sig)
{
    memset(sig, 0, sizeof *sig);
    if (want_type(t, fn, restype, &sig->ret))
        return -1;
    if (callback && sig->ret == FT_STR)
        return vm_raise(t, EXC(t)->type_error, "%s() restype 'str' is not supported: the string "
                        "would not outlive the call (return a 'pointer' to a buffer)", fn);
    const value *items;
    size_t n;
    if (argtypes.tag == T_TUPLE) {
        items = AS_TUPLE(argtypes)->items;
        n = AS_TUPLE(argtypes)->len;
    } else if (argtypes.tag == T_LIST) {
        items = AS_LIST(argtypes)->items;
        n = AS_LIST(argtypes)->len;
    } else
        return vm_raise(t, EXC(t)->type_error, "%s() argtypes must be a tuple or list of type "
                        "names, not '%s'", fn, vm_type_name(argtypes));
    for (size_t i = 0; i < n; i++) {
        value v = items[i];
        if (v.tag == T_STR && !strcmp(AS_STR(v)->data, "...")) {
            if (callback)
                return vm_raise(t, EXC(t)->type_error, "%s() a callback cannot be variadic", fn);
            if (sig->variadic)
                return vm_raise(t, EXC(t)->type_error, "%s() argtypes has '...' twice", fn);
            if (sig->nargs == 0)
                return vm_raise(t, EXC(t)->type_error, "%s() a variadic function needs a fixed "
                                "argument before '...'", fn);
            sig->variadic = 1;
            sig->nfixed = sig->nargs;
            continue;
        }
        if (sig->nargs == FFI_MAX_ARGS)
            return vm_raise(t, EXC(t)->type_error, "%s() takes at most %d argument types", fn,
                            FFI_MAX_ARGS);
        uint8_t ft;
        size_t len = v.tag == T_STR ? AS_STR(v)->len : 0;
        if (len > 1 && AS_STR(v)->data[len - 1] == '*') {
            /* "T*": a pointer argument whose callback receives the T it points to */
            int to = lookup_type(AS_STR(v)->data, len - 1);
            if (!callback)
                return vm_raise(t, EXC(t)->type_error, "%s() type '%s' is for a callback's "
                                "arguments only (use 'pointer')", fn, AS_STR(v)->data);
            if (to <= FT_VOID || to == FT_STR)
                return vm_raise(t, EXC(t)->type_error, "%s() unknown type '%s' (a pointer "
                                "argument names the number it points to: 'int32*', "
                                "'double*', 'pointer*', ...)", fn, AS_STR(v)->data);
            sig->deref[sig->nargs] = (uint8_t)to;
            ft = FT_PTR;
        } else if (want_type(t, fn, v, &ft))
            return -1;
        if (ft == FT_VOID)
            return vm_raise(t, EXC(t)->type_error, "%s() an argument cannot have type void", fn);
        if (sig->variadic && (ft == FT_FLOAT || (is_int_type(ft) && ft_size[ft] < 4)))
            return vm_raise(t, EXC(t)->type_error, "%s() variadic argument %u cannot be %s: C "
                            "promotes it (use %s)", fn, sig->nargs + 1, ft_name(ft),
                            ft == FT_FLOAT ? "double" : "int32");
        sig->ft[sig->nargs] = ft;
        sig->atypes[sig->nargs++] = ft_ffi[ft];
    }
    if (!sig->variadic)
        sig->nfixed = sig->nargs;
    return 0;
}

/* Prepares `cif` for `sig`; TypeError if libffi refuses. */
static int prep_cif(vm_thread *t, const char *fn, ffi_sig *sig, ffi_cif *cif)
{
    ffi_status st = sig->variadic
        ? ffi_prep_cif_var(cif, FFI_DEFAULT_ABI, sig->nfixed, sig->nargs, ft_ffi[sig->ret],
                           sig->atypes)
        : ffi_prep_cif(cif, FFI_DEFAULT_ABI, sig->nargs, ft_ffi[sig->ret], sig->atypes);
    if (st != FFI_OK)
        return vm_raise(t, EXC(t)->type_error, "%s(): libffi cannot call this signature "
                        "(ffi_status %d)", fn, (int)st);
    return 0;
}

/* ---- libraries ---- */

/* ffi_open(name=None): dlopen(name), or the process itself [ctypes.CDLL(name)]. */
BUILTIN(ffi_open)
{
    if (argc > 1)
        return vm_raise(t, EXC(t)->type_error, "ffi_open expected at most 1 argument, got %d", argc);
    if (check_enabled(t, "ffi_open"))
        return -1;
    value name = argc ? argv[0] : V_NONE;
    if (name.tag != T_STR && name.tag != T_NONE)
        return vm_type_err(t, "ffi_open", "str or None", name);
    if (vm_audit(t, "ffi.dlopen", 1, &name))
        return -1;
    void *h = dlopen(name.tag == T_STR ? AS_STR(name)->data : NULL, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        return vm_raise(t, EXC(t)->os_error, "%s", e ? e : "dlopen failed");
    }
    ffi_lib *l = (ffi_lib *)vm_alloc(t, T_FFI_LIB, sizeof(ffi_lib));
    l->handle = h;
    l->name = name;
    *out = V_OBJ(T_FFI_LIB, l);
    return 0;
}

/* ---- bound functions ---- */

/* ffi_bind(lib, name, restype, argtypes, release_gil=True) [ctypes: lib.name, with
 * .restype and .argtypes set; release_gil=False as a ctypes.PyDLL function]. */
BUILTIN(ffi_bind)
{
    if (argc < 4 || argc > 5)
        return vm_raise(t, EXC(t)->type_error, "ffi_bind expected 4 or 5 arguments, got %d", argc);
    if (check_enabled(t, "ffi_bind"))
        return -1;
    if (argv[0].tag != T_FFI_LIB)
        return vm_type_err(t, "ffi_bind", "an ffi_library", argv[0]);
    if (argv[1].tag != T_STR)
        return vm_type_err(t, "ffi_bind", "str", argv[1]);
    ffi_lib *lib = (ffi_lib *)argv[0].u.o;
    ffi_sig sig;
    if (want_sig(t, "ffi_bind", argv[2], argv[3], 0, &sig))
        return -1;
    value ev[2] = {lib->name, argv[1]};
    if (vm_audit(t, "ffi.bind", 2, ev))
        return -1;
    dlerror();
    void *sym = dlsym(lib->handle, AS_STR(argv[1])->data);
    const char *e = dlerror();
    if (e || !sym)
        return vm_raise(t, EXC(t)->os_error, "%s", e ? e : "symbol is NULL");
    ffi_func *f = (ffi_func *)vm_alloc(t, T_FFI_FUNC, sizeof(ffi_func));
    f->lib = argv[0];
    f->name = argv[1];
    f->fn = sym;
    f->release_gil = argc < 5 || vm_truthy(argv[4]);
    f->sig = sig;
    if (prep_cif(t, "ffi_bind", &f->sig, &f->cif))
        return -1;                  /* the half-made object is garbage */
    f->direct = direct_ok(&f->sig);
    *out = V_OBJ(T_FFI_FUNC, f);
    return 0;
}

/* Runs what a blocking wait runs on waking (signal handlers, a stop request, an exceeded
 * limit), if anything is pending; 0, or -1 if a handler raised. */
static int after_foreign_call(vm_thread *t)
{
    uint32_t bits = rt_breaker_load(&t->base.eval_breaker);
    if (!(bits & (RT_SIGNALS_PENDING | RT_EVAL_PLEASE_STOP | RT_LIMITS)))
        return 0;
    return vm_poll_in_wait(t);
}

/* Calls a bound function (CALL reaches it through vm_call_hooks). */
static int func_call(vm_thread *t, value fv, int argc, const value *argv, value *out)
{
    ffi_func *f = (ffi_func *)fv.u.o;
    const char *name = AS_STR(f->name)->data;
    unsigned n = f->sig.nargs;
    if ((unsigned)argc != n)
        return vm_raise(t, EXC(t)->type_error, "%s() takes exactly %u argument%s (%d given)",
                        name, n, n == 1 ? "" : "s", argc);
    if (VM_INTERP(t)->audit_hooks.tag == T_LIST) {
        value ev[2] = {f->name, vm_tuple_new(t, (size_t)argc, argv)};
        if (vm_audit(t, "ffi.call", 2, ev))
            return -1;
    }
    ffi_slot slots[FFI_MAX_ARGS];
    void *avalues[FFI_MAX_ARGS];
    for (unsigned i = 0; i < n; i++) {
        if (to_c(t, name, (int)i + 1, f->sig.ft[i], argv[i], &slots[i]))
            return -1;
        avalues[i] = &slots[i];
    }
    /* Integral results narrower than a register come back widened to an ffi_arg. */
    union { ffi_slot s; ffi_arg a; } rv;
    rv.a = 0;
#if FFI_DIRECT
    if (f->direct) {
        int64_t r[6] = {0};
        double d[8] = {0};
        for (unsigned i = 0, ni = 0, nd = 0; i < n; i++) {
            if (f->sig.ft[i] == FT_DOUBLE)
                d[nd++] = slots[i].d;
            else
                r[ni++] = slot_reg(f->sig.ft[i], &slots[i]);
        }
        if (f->release_gil) {
            rt_sched_note_uncontrolled("native-call");
            rt_thread_detach_brief(&t->base);
        }
        if (f->sig.ret == FT_DOUBLE)
            rv.s.d = ((direct_double_fn)f->fn)(r[0], r[1], r[2], r[3], r[4], r[5], d[0], d[1],
                                               d[2], d[3], d[4], d[5], d[6], d[7]);
        else
            rv.a = (ffi_arg)((direct_int_fn)f->fn)(r[0], r[1], r[2], r[3], r[4], r[5], d[0],
                                                   d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
        if (f->release_gil)
            rt_thread_attach_urgent(&t->base);
    } else
#endif
    if (f->release_gil) {
        rt_sched_note_uncontrolled("native-call");
        rt_thread_detach_brief(&t->base);
        ffi_call(&f->cif, FFI_FN(f->fn), &rv, avalues);
        rt_thread_attach_urgent(&t->base);
    } else
        ffi_call(&f->cif, FFI_FN(f->fn), &rv, avalues);
    if (after_foreign_call(t))
        return -1;
    switch (f->sig.ret) {
    case FT_VOID: *out = V_NONE; return 0;
    case FT_I8: *out = V_INT((int8_t)rv.a); return 0;
    case FT_I16: *out = V_INT((int16_t)rv.a); return 0;
    case FT_I32: *out = V_INT((int32_t)rv.a); return 0;
    case FT_U8: *out = V_INT((uint8_t)rv.a); return 0;
    case FT_U16: *out = V_INT((uint16_t)rv.a); return 0;
    case FT_U32: *out = V_INT((uint32_t)rv.a); return 0;
    default: return from_c(t, name, f->sig.ret, &rv.s, out);
    }
}

/* ---- callbacks ---- */

/* Writes the bytecode function's result `v` as the callback's C result; -1 with TypeError
 * or OverflowError if it does not convert. */
static inline __attribute__((always_inline)) int callback_result(vm_thread *t, ffi_cb *cb,
                                                                  value v, void *ret)
{
    int ft = cb->sig.ret;
    if (ft == FT_VOID)
        return 0;
    if (is_int_type(ft) && v.tag == T_INT && v.u.i >= ft_min[ft] && v.u.i <= ft_max[ft]) {
        *(ffi_sarg *)ret = v.u.i;   /* in range: the narrow value, sign or zero extended */
        return 0;
    }
    ffi_slot s;
    if (to_c(t, "ffi callback result", 0, ft, v, &s))
        return -1;
    switch (ft) {               /* narrow integral results are returned widened */
    case FT_I8: *(ffi_sarg *)ret = s.i8; break;
    case FT_I16: *(ffi_sarg *)ret = s.i16; break;
    case FT_I32: *(ffi_sarg *)ret = s.i32; break;
    case FT_U8: *(ffi_arg *)ret = s.u8; break;
    case FT_U16: *(ffi_arg *)ret = s.u16; break;
    case FT_U32: *(ffi_arg *)ret = s.u32; break;
    default: memcpy(ret, &s, ft_size[ft]); break;
    }
    return 0;
}

/* Where C put a callback's arguments: libffi's pointers to them, or the registers a
 * direct entry received (below). */
typedef struct {
    void **args;                /* libffi: a pointer to each argument */
    const int64_t *r;           /* direct: the integer registers ... */
    const double *d;            /* ... and the vector registers */
} cb_args;

/* Runs the callback's function on t (attached, holding the GIL) with C's arguments, and
 * writes its result for C; an exception is reported and leaves the result zero.  Inlined
 * into each entry, `direct` constant. */
static inline __attribute__((always_inline)) void callback_run(vm_thread *t, ffi_cb *cb,
                                                               void *ret, const cb_args *a,
                                                               int direct)
{
    if (VM_INTERP(t) != cb->in) {
        vm_output_flush();
        vm_printf(VM_STDERR, "Exception ignored in ffi callback: called on a thread of another "
                  "interpreter\n");
        return;
    }
    /* Rooted while it runs: the function may ffi_free its own callback, and we (and libffi)
     * read `cb` after it returns. */
    int rooted = t->nroots < (int)(sizeof t->roots / sizeof t->roots[0]);
    if (rooted)
        t->roots[t->nroots++] = V_OBJ(T_FFI_CALLBACK, cb);
    value argv[FFI_MAX_ARGS], result;
    int rc = 0;
    unsigned n = cb->sig.nargs;
    for (unsigned i = 0; i < n; i++) {
        int ft = cb->sig.ft[i];
        if (direct) {
            int reg = cb->reg[i];
            if (ft == FT_DOUBLE) {
                argv[i] = V_FLOAT(a->d[reg]);
                continue;
            }
            ffi_slot sl = {.i64 = a->r[reg]};   /* little-endian: the C value's bytes */
            rc = from_c(t, "ffi callback argument", ft, &sl, &argv[i]);
        } else
            rc = from_c(t, "ffi callback argument", ft, a->args[i], &argv[i]);
        if (rc)
            break;
        int to = cb->sig.deref[i];
        if (to) {                   /* "T*": the T it points to (None for NULL) */
            const void *p = (const void *)(intptr_t)argv[i].u.i;
            uint64_t u;
            if (!p)
                argv[i] = V_NONE;
            else if (!read_number(to, p, &argv[i])) {   /* a uint64 above INT64_MAX */
                memcpy(&u, p, sizeof u);
                rc = u64_overflow(t, "ffi callback argument", u);
                break;
            }
        }
    }
    if (rc == 0)
        rc = vm_call(t, cb->func, (int)n, argv, &result);
    if (rc == 0)
        rc = callback_result(t, cb, result, ret);
    if (rc)
        vm_report_ignored(t, "ffi callback", cb->func);
    if (rooted)
        t->nroots--;
}

/* Runs a callback from C, on whatever thread C calls it from, with or without the GIL
 * (Notes); `ret` is already zero.  Inlined into each entry, `direct` constant. */
static inline __attribute__((always_inline)) void callback_dispatch(ffi_cb *cb, void *ret,
                                                                    const cb_args *a,
                                                                    int direct)
{
    rt_thread *cur = rt_thread_current();
    if (cur) {                      /* called while holding the GIL (release_gil=False) */
        callback_run((vm_thread *)cur, cb, ret, a, direct);
        return;
    }
    rt_thread *bound = rt_thread_bound();
    if (bound && atomic_load(&rt_main_runtime.finalizing) == NULL) {
        /* A gilvm thread in a foreign call that released the GIL: the same state again
         * [PyGILState_Ensure on a thread with a detached state], released briefly after,
         * as the call did (usually nobody took the GIL meanwhile: a CAS each way). */
        rt_thread_attach(bound);
        callback_run((vm_thread *)bound, cb, ret, a, direct);
        rt_thread_detach_brief(bound);
        return;
    }
    /* A thread gilvm did not create: a new state for the call, deleted after it. */
    int st = rt_gilstate_ensure();
    if (st == RT_GILSTATE_UNAVAILABLE)
        return;                     /* finalizing: no code runs any more */
    vm_thread *t = (vm_thread *)rt_thread_current();
    if (t->exc.tag == T_NONE)
        t->exc = V_UNDEF;           /* the state is new: zeroed, no exception */
    callback_run(t, cb, ret, a, direct);
    rt_gilstate_release(st);
}

/* The libffi closure's handler. */
static void callback_entry(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif;
    ffi_cb *cb = user;
    if (cb->sig.ret != FT_VOID)     /* what C gets if the function cannot run or fails */
        memset(ret, 0, sizeof(ffi_arg));
    cb_args a = {.args = args};
    callback_dispatch(cb, ret, &a, 0);
}

/* Direct entries: what the direct call is for calls out (above direct_ok), for calls in.
 * A libffi closure's entry decodes its cif on every call (classifying each argument: a
 * quarter of a qsort comparison's instructions).  For a signature the direct call could
 * call, a callback instead gets one of CB_SLOTS C functions compiled here, each taking 6
 * int64_t and 8 doubles (all of them registers) and returning an int64_t or a double:
 * exactly what C passes and expects for that signature, for the direct call's reason
 * (each register class counted on its own; unused registers are ignored).  The function
 * knows its slot number, the slot holds the callback; each argument is read from the
 * register the callback's map (`reg`, made with it) names, and narrowed to its C type (a
 * caller need not extend it).  No executable memory is written.  When the slots are
 * taken, or for another signature, a callback is a libffi closure. */
#if FFI_DIRECT && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CB_DIRECT 1
#define CB_SLOTS 64
static _Atomic(ffi_cb *) cb_slots[CB_SLOTS];   /* written under callbacks_mu */
static int cb_slot_hint;                        /* where the next search starts */

/* Runs the callback in `slot` with the registers C passed; the result into *ret. */
static void direct_entry(int slot, const int64_t *r, const double *d, void *ret)
{
    ffi_cb *cb = atomic_load_explicit(&cb_slots[slot], memory_order_acquire);
    if (!cb) {
        fprintf(stderr, "Exception ignored in ffi callback: called after ffi_free\n");
        return;
    }
    cb_args a = {.r = r, .d = d};
    callback_dispatch(cb, ret, &a, 1);
}

#define CB_PARAMS int64_t r0, int64_t r1, int64_t r2, int64_t r3, int64_t r4, int64_t r5, \
    double d0, double d1, double d2, double d3, double d4, double d5, double d6, double d7
#define CB_BODY(n, type) \
    { \
        int64_t r[6] = {r0, r1, r2, r3, r4, r5}; \
        double d[8] = {d0, d1, d2, d3, d4, d5, d6, d7}; \
        union { type x; ffi_arg a; } ret; \
        ret.a = 0; \
        ret.x = 0; \
        direct_entry(n, r, d, &ret); \
        return ret.x; \
    }
#define CB_DEF(id, n) \
    static int64_t cb_int_##id(CB_PARAMS) CB_BODY(n, int64_t) \
    static double cb_double_##id(CB_PARAMS) CB_BODY(n, double)
#define CB_ROW(X, b) X(b##0, b * 8 + 0) X(b##1, b * 8 + 1) X(b##2, b * 8 + 2) \
    X(b##3, b * 8 + 3) X(b##4, b * 8 + 4) X(b##5, b * 8 + 5) X(b##6, b * 8 + 6) \
    X(b##7, b * 8 + 7)
#define CB_ALL(X) CB_ROW(X, 0) CB_ROW(X, 1) CB_ROW(X, 2) CB_ROW(X, 3) CB_ROW(X, 4) \
    CB_ROW(X, 5) CB_ROW(X, 6) CB_ROW(X, 7)
CB_ALL(CB_DEF)
#define CB_INT_REF(id, n) cb_int_##id,
#define CB_DOUBLE_REF(id, n) cb_double_##id,
static direct_int_fn const cb_int_entries[CB_SLOTS] = {CB_ALL(CB_INT_REF)};
static direct_double_fn const cb_double_entries[CB_SLOTS] = {CB_ALL(CB_DOUBLE_REF)};

/* Gives `cb` a free slot and its direct entry as cb->code (under callbacks_mu); 0, or -1
 * if none is free.  Slots are taken round the table, so that a freed one is reused as late
 * as can be (C calling a freed callback calls whatever holds its slot later). */
static int slot_take(ffi_cb *cb)
{
    for (int k = 0; k < CB_SLOTS; k++) {
        int i = (cb_slot_hint + k) % CB_SLOTS;
        if (!atomic_load_explicit(&cb_slots[i], memory_order_relaxed)) {
            atomic_store_explicit(&cb_slots[i], cb, memory_order_release);
            cb_slot_hint = (i + 1) % CB_SLOTS;
            cb->slot = i;
            for (unsigned k = 0, ni = 0, nd = 0; k < cb->sig.nargs; k++)
                cb->reg[k] = (uint8_t)(cb->sig.ft[k] == FT_DOUBLE ? nd++ : ni++);
            cb->code = cb->sig.ret == FT_DOUBLE ? (void *)cb_double_entries[i]
                                                : (void *)cb_int_entries[i];
            return 0;
        }
    }
    return -1;
}

static void slot_release(int slot)
{
    pthread_mutex_lock(&callbacks_mu);
    atomic_store_explicit(&cb_slots[slot], NULL, memory_order_release);
    pthread_mutex_unlock(&callbacks_mu);
}
#else
#define CB_DIRECT 0
static int slot_take(ffi_cb *cb)
{
    (void)cb;
    return -1;
}

static void slot_release(int slot)
{
    (void)slot;
}
#endif

/* Whether a callback of signature `sig` can have a direct entry. */
static int direct_entry_ok(const ffi_sig *sig)
{
    return CB_DIRECT && direct_ok(sig);
}

/* ffi_callback(f, restype, argtypes): f as a C function pointer [ctypes.CFUNCTYPE]. */
BUILTIN(ffi_callback)
{
    if (check_enabled(t, "ffi_callback") || vm_want_callable(t, "ffi_callback", argv[0]))
        return -1;
    ffi_sig sig;
    if (want_sig(t, "ffi_callback", argv[1], argv[2], 1, &sig))
        return -1;
    if (argv[0].tag == T_FUNC && AS_FUNC(argv[0])->nparams != sig.nargs)
        return vm_raise(t, EXC(t)->type_error, "ffi_callback(): %s() takes %u argument%s, the "
                        "signature has %u", AS_FUNC(argv[0])->code->name->data,
                        AS_FUNC(argv[0])->nparams, AS_FUNC(argv[0])->nparams == 1 ? "" : "s",
                        sig.nargs);
    ffi_cb *cb = (ffi_cb *)vm_alloc(t, T_FFI_CALLBACK, sizeof(ffi_cb));
    cb->func = argv[0];
    cb->in = VM_INTERP(t);
    cb->slot = -1;
    cb->sig = sig;
    if (prep_cif(t, "ffi_callback", &cb->sig, &cb->cif))
        return -1;
    pthread_mutex_lock(&callbacks_mu);
    if (!direct_entry_ok(&cb->sig) || slot_take(cb)) {
        pthread_mutex_unlock(&callbacks_mu);
        void *code = NULL;
        ffi_closure *c = ffi_closure_alloc(sizeof(ffi_closure), &code);
        if (!c)
            return vm_raise(t, EXC(t)->memory_error, "ffi_callback(): cannot allocate a closure");
        if (ffi_prep_closure_loc(c, &cb->cif, callback_entry, cb, code) != FFI_OK) {
            ffi_closure_free(c);
            return vm_raise(t, EXC(t)->runtime_error, "ffi_callback(): libffi cannot make a "
                            "closure");
        }
        cb->closure = c;
        cb->code = code;
        pthread_mutex_lock(&callbacks_mu);
    }
    cb->next = callbacks;
    if (callbacks)
        callbacks->prev = cb;
    callbacks = cb;
    pthread_mutex_unlock(&callbacks_mu);
    vm_wait_watch_foreign();        /* a native thread may call in through it */
    *out = V_OBJ(T_FFI_CALLBACK, cb);
    return 0;
}

/* ---- memory ---- */

/* ffi_buffer(size) or ffi_buffer(data): size zero bytes, or a copy of a str or bytes and a
 * NUL [ctypes.create_string_buffer]. */
BUILTIN(ffi_buffer)
{
    if (check_enabled(t, "ffi_buffer"))
        return -1;
    value v = argv[0];
    size_t n;
    const char *init = NULL;
    if (v.tag == T_INT || v.tag == T_BOOL) {
        if (v.u.i < 0)
            return vm_raise(t, EXC(t)->value_error, "ffi_buffer() size must not be negative");
        n = (size_t)v.u.i;
    } else if (v.tag == T_STR || v.tag == T_BYTES) {
        init = AS_STR(v)->data;
        n = AS_STR(v)->len + 1;
    } else
        return vm_type_err(t, "ffi_buffer", "int, str or bytes", v);
    if (vm_heap_reserve(t, n))
        return -1;
    unsigned char *data = calloc(n ? n : 1, 1);
    if (!data)
        return vm_raise(t, EXC(t)->memory_error, "ffi_buffer(): cannot allocate %zu bytes", n);
    if (init)
        memcpy(data, init, n);
    vm_ffi_buffer *b = (vm_ffi_buffer *)vm_alloc(t, T_FFI_BUFFER, sizeof(vm_ffi_buffer));
    b->size = n;
    b->data = data;
    vm_heap_charge(t, n);
    *out = V_OBJ(T_FFI_BUFFER, b);
    return 0;
}

/* The offset argument argv[i] (0 if absent) of a `width`-byte access into *off; IndexError
 * if the access falls outside [0, size). */
static int want_range(vm_thread *t, const char *fn, int argc, value *argv, int i, size_t width,
                      size_t size, size_t *off)
{
    int64_t o = 0;
    if (i < argc && vm_want_int(t, fn, argv[i], &o))
        return -1;
    if (o < 0 || (uint64_t)o > size || width > size - (size_t)o)
        return vm_raise(t, EXC(t)->index_error, "%s(): %zu byte%s at offset %lld %s out of "
                        "range for a buffer of %zu bytes", fn, width, width == 1 ? "" : "s",
                        (long long)o, width == 1 ? "is" : "are", size);
    *off = (size_t)o;
    return 0;
}

/* A type for reading or writing memory: not void; "str" only where `str_ok`. */
static int want_mem_type(vm_thread *t, const char *fn, value v, int str_ok, uint8_t *ft)
{
    if (want_type(t, fn, v, ft))
        return -1;
    if (*ft == FT_VOID || (*ft == FT_STR && !str_ok))
        return vm_raise(t, EXC(t)->type_error, "%s() cannot access memory as %s%s", fn,
                        ft_name(*ft), *ft == FT_STR ? " (use 'pointer', or ffi_bytes)" : "");
    return 0;
}

/* ffi_read(buf, type, offset=0): the value of `type` at buf[offset], bounds-checked
 * [ctypes: c_int.from_buffer(buf, offset).value]. */
BUILTIN(ffi_read)
{
    if (argc < 2 || argc > 3)
        return vm_raise(t, EXC(t)->type_error, "ffi_read expected 2 or 3 arguments, got %d", argc);
    vm_ffi_buffer *b = NULL;
    uint8_t ft = 0;
    size_t off = 0;
    if (check_enabled(t, "ffi_read") || want_buffer(t, "ffi_read", argv[0], &b) ||
        want_mem_type(t, "ffi_read", argv[1], 0, &ft) ||
        want_range(t, "ffi_read", argc, argv, 2, ft_size[ft], b->size, &off))
        return -1;
    return from_c(t, "ffi_read()", ft, b->data + off, out);
}

/* ffi_write(buf, type, value, offset=0): stores `value` as `type` at buf[offset]. */
BUILTIN(ffi_write)
{
    if (argc < 3 || argc > 4)
        return vm_raise(t, EXC(t)->type_error, "ffi_write expected 3 or 4 arguments, got %d", argc);
    vm_ffi_buffer *b = NULL;
    uint8_t ft = 0;
    size_t off = 0;
    ffi_slot s;
    if (check_enabled(t, "ffi_write") || want_buffer(t, "ffi_write", argv[0], &b) ||
        want_mem_type(t, "ffi_write", argv[1], 0, &ft) ||
        want_range(t, "ffi_write", argc, argv, 3, ft_size[ft], b->size, &off) ||
        to_c(t, "ffi_write", 3, ft, argv[2], &s))
        return -1;
    memcpy(b->data + off, &s, ft_size[ft]);
    *out = V_NONE;
    return 0;
}

/* ffi_bytes(buf, n=-1): the first n bytes of the buffer (all with -1) as bytes
 * [ctypes: buf.raw, bytes(buf[:n])]. */
BUILTIN(ffi_bytes)
{
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "ffi_bytes expected 1 or 2 arguments, got %d", argc);
    vm_ffi_buffer *b = NULL;
    int64_t n = -1;
    if (check_enabled(t, "ffi_bytes") || want_buffer(t, "ffi_bytes", argv[0], &b) ||
        (argc == 2 && vm_want_int(t, "ffi_bytes", argv[1], &n)))
        return -1;
    if (n == -1)
        n = (int64_t)b->size;
    if (n < 0 || (uint64_t)n > b->size)
        return vm_raise(t, EXC(t)->index_error, "ffi_bytes(): %lld bytes are out of range for a "
                        "buffer of %zu bytes", (long long)n, b->size);
    *out = vm_bytes_new(t, (const char *)b->data, (size_t)n);
    return 0;
}

/* ffi_string(buf): the buffer's bytes up to its first NUL (or its end) as a str
 * [ctypes: buf.value]. */
BUILTIN(ffi_string)
{
    vm_ffi_buffer *b = NULL;
    if (check_enabled(t, "ffi_string") || want_buffer(t, "ffi_string", argv[0], &b))
        return -1;
    const unsigned char *nul = memchr(b->data, 0, b->size);
    *out = vm_str_new(t, (const char *)b->data, nul ? (size_t)(nul - b->data) : b->size);
    return 0;
}

/* The address argument of an unchecked access: an int, or a buffer's address. */
static int want_address(vm_thread *t, const char *fn, value v, unsigned char **p)
{
    if (v.tag == T_FFI_BUFFER) {
        vm_ffi_buffer *b = NULL;
        if (want_buffer(t, fn, v, &b))
            return -1;
        *p = b->data;
        return 0;
    }
    if (v.tag != T_INT)
        return vm_type_err(t, fn, "an address (int)", v);
    if (v.u.i == 0)
        return vm_raise(t, EXC(t)->value_error, "%s(): NULL pointer access", fn);
    *p = (unsigned char *)(intptr_t)v.u.i;
    return 0;
}

/* ffi_read_unchecked in full (the builtin below has the common form inline). */
static __attribute__((noinline)) int read_unchecked(vm_thread *t, int argc, value *argv,
                                                    value *out)
{
    if (argc < 2 || argc > 3)
        return vm_raise(t, EXC(t)->type_error, "ffi_read_unchecked expected 2 or 3 arguments, got %d",
                        argc);
    unsigned char *p;
    uint8_t ft;
    int64_t off = 0;
    if (check_enabled(t, "ffi_read_unchecked") ||
        want_address(t, "ffi_read_unchecked", argv[0], &p) ||
        want_mem_type(t, "ffi_read_unchecked", argv[1], 1, &ft) ||
        (argc == 3 && vm_want_int(t, "ffi_read_unchecked", argv[2], &off)))
        return -1;
    return from_c(t, "ffi_read_unchecked()", ft, p + off, out);
}

/* ffi_read_unchecked(ptr, type, offset=0): the value of `type` at address ptr + offset,
 * unchecked: a bad address crashes the process [ctypes: cast(ptr, POINTER(T))[i]]. */
BUILTIN(ffi_read_unchecked)
{
    /* The common form first, (address, type name), as a callback reads what its pointer
     * argument points at: no other check can fail for it.  Short, to stay a leaf. */
    if (argc == 2 && argv[0].tag == T_INT && argv[0].u.i != 0 && argv[1].tag == T_STR &&
        !VM_INTERP(t)->ffi_disabled) {
        int ft = lookup_type(AS_STR(argv[1])->data, AS_STR(argv[1])->len);
        if (ft >= 0 && read_number(ft, (void *)(intptr_t)argv[0].u.i, out))
            return 0;
    }
    return read_unchecked(t, argc, argv, out);
}

/* ffi_write_unchecked(ptr, type, value, offset=0): stores `value` at address ptr + offset,
 * unchecked. */
BUILTIN(ffi_write_unchecked)
{
    if (argc < 3 || argc > 4)
        return vm_raise(t, EXC(t)->type_error, "ffi_write_unchecked expected 3 or 4 arguments, "
                        "got %d", argc);
    unsigned char *p;
    uint8_t ft;
    int64_t off = 0;
    ffi_slot s;
    if (check_enabled(t, "ffi_write_unchecked") ||
        want_address(t, "ffi_write_unchecked", argv[0], &p) ||
        want_mem_type(t, "ffi_write_unchecked", argv[1], 0, &ft) ||
        (argc == 4 && vm_want_int(t, "ffi_write_unchecked", argv[3], &off)) ||
        to_c(t, "ffi_write_unchecked", 3, ft, argv[2], &s))
        return -1;
    memcpy(p + off, &s, ft_size[ft]);
    *out = V_NONE;
    return 0;
}

/* ffi_string_unchecked(ptr, n=-1): n bytes at address ptr, or up to its NUL with -1, as
 * bytes, unchecked [ctypes.string_at]. */
BUILTIN(ffi_string_unchecked)
{
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "ffi_string_unchecked expected 1 or 2 arguments, "
                        "got %d", argc);
    unsigned char *p;
    int64_t n = -1;
    if (check_enabled(t, "ffi_string_unchecked") ||
        want_address(t, "ffi_string_unchecked", argv[0], &p) ||
        (argc == 2 && vm_want_int(t, "ffi_string_unchecked", argv[1], &n)))
        return -1;
    if (n < -1)
        return vm_raise(t, EXC(t)->value_error, "ffi_string_unchecked() size must be -1 or more");
    if (vm_heap_reserve(t, n < 0 ? 0 : (size_t)n))
        return -1;
    *out = vm_bytes_new(t, (const char *)p, n < 0 ? strlen((const char *)p) : (size_t)n);
    return 0;
}

/* ffi_addr(x): the address of a buffer's memory, a callback's C function or a bound
 * function's symbol, as an int [ctypes.addressof, cast(f, c_void_p).value]. */
BUILTIN(ffi_addr)
{
    if (check_enabled(t, "ffi_addr"))
        return -1;
    value v = argv[0];
    void *p;
    if (v.tag == T_FFI_BUFFER) {
        vm_ffi_buffer *b = NULL;
        if (want_buffer(t, "ffi_addr", v, &b))
            return -1;
        p = b->data;
    } else if (v.tag == T_FFI_CALLBACK) {
        if (!(p = ((ffi_cb *)v.u.o)->code))
            return vm_raise(t, EXC(t)->value_error, "ffi_addr(): the callback was freed");
    } else if (v.tag == T_FFI_FUNC)
        p = ((ffi_func *)v.u.o)->fn;
    else
        return vm_type_err(t, "ffi_addr", "an ffi_buffer, ffi_callback or ffi_function", v);
    *out = V_INT((int64_t)(intptr_t)p);
    return 0;
}

/* ffi_sizeof(x): the size in bytes of a type (by name) or of a buffer [ctypes.sizeof]. */
BUILTIN(ffi_sizeof)
{
    if (check_enabled(t, "ffi_sizeof"))
        return -1;
    if (argv[0].tag == T_FFI_BUFFER) {
        *out = V_INT((int64_t)((vm_ffi_buffer *)argv[0].u.o)->size);
        return 0;
    }
    uint8_t ft;
    if (argv[0].tag != T_STR)
        return vm_type_err(t, "ffi_sizeof", "a type name or an ffi_buffer", argv[0]);
    if (want_type(t, "ffi_sizeof", argv[0], &ft))
        return -1;
    *out = V_INT(ft_size[ft]);
    return 0;
}

/* ffi_free(x): releases a buffer's memory or a callback's closure now; again: nothing. */
BUILTIN(ffi_free)
{
    if (check_enabled(t, "ffi_free"))
        return -1;
    value v = argv[0];
    if (v.tag == T_FFI_BUFFER) {
        vm_ffi_buffer *b = (vm_ffi_buffer *)v.u.o;
        free(b->data);
        b->data = NULL;
    } else if (v.tag == T_FFI_CALLBACK)
        callback_release((ffi_cb *)v.u.o);
    else
        return vm_type_err(t, "ffi_free", "an ffi_buffer or ffi_callback", v);
    *out = V_NONE;
    return 0;
}

void vm_ffi_install(vm_thread *t)
{
    VM_SET_HOOK(vm_gc_blacken_hooks[T_FFI_LIB], lib_blacken);
    VM_SET_HOOK(vm_gc_blacken_hooks[T_FFI_FUNC], func_blacken);
    VM_SET_HOOK(vm_gc_blacken_hooks[T_FFI_CALLBACK], callback_blacken);
    VM_SET_HOOK(vm_gc_free_hooks[T_FFI_LIB], lib_free);
    VM_SET_HOOK(vm_gc_free_hooks[T_FFI_BUFFER], buffer_free);
    VM_SET_HOOK(vm_gc_free_hooks[T_FFI_CALLBACK], callback_free);
    VM_SET_HOOK(vm_call_hooks[T_FFI_FUNC], func_call);
    vm_gc_add_root_hook(mark_callbacks);
    static const vm_native_def natives[] = {
        {"ffi_open", -1, bi_ffi_open, "ffi_open(name=None)"},
        {"ffi_bind", -1, bi_ffi_bind, "ffi_bind(lib, name, restype, argtypes, release_gil=True)"},
        {"ffi_callback", 3, bi_ffi_callback, "ffi_callback(f, restype, argtypes)"},
        {"ffi_buffer", 1, bi_ffi_buffer, "ffi_buffer(size_or_data)"},
        {"ffi_read", -1, bi_ffi_read, "ffi_read(buf, type, offset=0)"},
        {"ffi_write", -1, bi_ffi_write, "ffi_write(buf, type, value, offset=0)"},
        {"ffi_bytes", -1, bi_ffi_bytes, "ffi_bytes(buf, n=-1)"},
        {"ffi_string", 1, bi_ffi_string, "ffi_string(buf)"},
        {"ffi_read_unchecked", -1, bi_ffi_read_unchecked,
         "ffi_read_unchecked(ptr, type, offset=0)"},
        {"ffi_write_unchecked", -1, bi_ffi_write_unchecked,
         "ffi_write_unchecked(ptr, type, value, offset=0)"},
        {"ffi_string_unchecked", -1, bi_ffi_string_unchecked, "ffi_string_unchecked(ptr, n=-1)"},
        {"ffi_addr", 1, bi_ffi_addr, "ffi_addr(x)"},
        {"ffi_sizeof", 1, bi_ffi_sizeof, "ffi_sizeof(x)"},
        {"ffi_free", 1, bi_ffi_free, "ffi_free(x)"},
    };
    VM_DEF_NATIVES(t, natives);
}
