/* SPDX-License-Identifier: MIT */
/* Values and heap objects: the tagged 16-byte value, the object header every heap object
 * starts with, and the object layouts.  Used by every vm/ file. */
#ifndef VM_OBJECT_H
#define VM_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "opcodes/opcodes.h"
#include "vm/core/mem.h"

typedef struct vm_thread vm_thread;
typedef struct vm_interp vm_interp;
typedef struct vm_obj vm_obj;

/* Value tags.  Tags from T_STR on are heap objects (u.o is valid). */
typedef enum {
    T_NONE = 0,     /* zeroed memory reads as None */
    T_UNDEF,        /* an unset global or local slot, or "no exception"; never visible to bytecode */
    T_BOOL, T_INT, T_FLOAT,
    T_STR, T_BYTES, T_LIST, T_TUPLE, T_DICT, T_FUNC, T_NATIVE, T_CODE, T_CLASS, T_EXC,
    T_ITER, T_THREAD, T_LOCK, T_QUEUE, T_INTERP, T_XIQUEUE,
    T_FFI_LIB, T_FFI_FUNC, T_FFI_BUFFER, T_FFI_CALLBACK,   /* native calls (vm/lib/ffi.c) */
    T__COUNT
} vm_tag;

#define T_FIRST_OBJ T_STR

/* A value: 16 bytes, passed by value.  The tag is 8 bytes wide so that a value is two 8-byte
 * words, stored and loaded as such (docs/architecture.md, "The eval loop"). */
typedef struct {
    uint64_t tag;
    union {
        int64_t i;      /* T_INT, T_BOOL */
        double f;       /* T_FLOAT */
        vm_obj *o;      /* heap objects */
    } u;
} value;

#define V_UNDEF        ((value){T_UNDEF, {.i = 0}})
#define V_NONE         ((value){T_NONE, {.i = 0}})
#define V_BOOL(b)      ((value){T_BOOL, {.i = !!(b)}})
#define V_INT(n)       ((value){T_INT, {.i = (n)}})
#define V_FLOAT(x)     ((value){T_FLOAT, {.f = (x)}})
#define V_OBJ(t, p)    ((value){(t), {.o = (vm_obj *)(p)}})
#define IS_OBJ(v)      ((v).tag >= T_FIRST_OBJ)
#define AS_STR(v)      ((vm_str *)(v).u.o)
#define AS_LIST(v)     ((vm_list *)(v).u.o)
#define AS_TUPLE(v)    ((vm_tuple *)(v).u.o)
#define AS_DICT(v)     ((vm_dict *)(v).u.o)
#define AS_FUNC(v)     ((vm_func *)(v).u.o)
#define AS_NATIVE(v)   ((vm_native *)(v).u.o)
#define AS_CODE(v)     ((vm_code *)(v).u.o)
#define AS_CLASS(v)    ((vm_class *)(v).u.o)
#define AS_EXC(v)      ((vm_exc *)(v).u.o)

/* Every heap object starts with this header; `next` chains the interpreter's heap. */
struct vm_obj {
    vm_obj *next;
    uint8_t tag;
    uint8_t marked;
    uint16_t flags;
    uint32_t size;              /* bytes allocated for the object itself */
};

typedef struct {                /* T_STR and T_BYTES: immutable */
    vm_obj h;
    size_t len;
    uint64_t hash;              /* 0 = not computed yet */
    char data[];                /* len bytes + NUL */
} vm_str;

typedef struct {                /* T_LIST */
    vm_obj h;
    size_t len, cap;
    value *items;
} vm_list;

typedef struct {                /* T_TUPLE: immutable */
    vm_obj h;
    size_t len;
    value items[];
} vm_tuple;

typedef struct {
    value key, val;
    uint64_t hash;
} vm_dict_entry;

typedef struct {                /* T_DICT: insertion-ordered, open addressing */
    vm_obj h;
    size_t len;                 /* live entries */
    size_t used;                /* entries slots used (live + deleted) */
    size_t cap;                 /* entries capacity */
    size_t mask;                /* index table size - 1 */
    vm_dict_entry *entries;
    int32_t *index;             /* -1 empty, -2 deleted, else entry number */
    size_t hint;                /* entry of the key last found or stored (dict.c) */
} vm_dict;

/* One exception-table entry: an exception raised by an instruction in [start, end) unwinds
 * the stack to `depth`, pushes the exception and jumps to `target`. */
typedef struct {
    uint32_t start, end, target, depth;
} vm_exc_entry;

/* One instruction of a code object's execution copy (quicken.c): the address of its handler
 * in the eval loop (direct threading; NULL in a build without computed goto), its opcode (a
 * superinstruction's where one was fused), its operand (sign-extended for kind IMM, a byte
 * offset from the next instruction for kind JUMP) and a pointer the loop can reach from the
 * instruction alone, without waiting for the values it works on:
 *   operand kind NAME (LOAD_GLOBAL, STORE_GLOBAL, supers starting with them): the global's
 *   cell;
 *   CALL: the function this call site called last (a guess, checked at every call, and the
 *         one field the eval loop writes; NULL at first).
 * docs/architecture.md ("The instruction set", "The eval loop") tells why. */
typedef struct {
    const void *handler;
    uint32_t op;
    int32_t arg;
    void *aux;
} vm_xinstr;

typedef struct {                /* T_CODE: a function body or module body */
    vm_obj h;
    vm_str *name;
    vm_str *file;               /* source file name, for tracebacks */
    uint32_t nparams, nlocals, maxstack, ncode, nconsts, nnames, nexc;
    instr *code;                /* as verified, saved and disassembled */
    vm_xinstr *exec;            /* execution copy with superinstructions (quicken.c) */
    uint32_t *lines;            /* source line of each instruction */
    value *consts;
    vm_str **names;             /* global names used by NAME operands */
    vm_str **localnames;        /* nlocals names (params first) */
    vm_exc_entry *exc;
    uint32_t flags;             /* CO_MODULE: a module body (may HALT, has no params) */
    uint32_t entry_depth;       /* module bodies start with this many values on the stack (REPL) */
    uint32_t framesize;         /* nlocals + maxstack: values a frame of this code uses (quicken.c) */
} vm_code;

enum { CO_MODULE = 1 };

typedef struct {                /* T_FUNC */
    vm_obj h;
    vm_code *code;
    const vm_xinstr *entry;     /* code->exec + 1: past the RESUME a call does inline */
    uint32_t nparams, nlocals, framesize;   /* code's, one load closer for CALL */
} vm_func;

typedef int (*vm_native_fn)(vm_thread *t, int argc, value *argv, value *out);

/* Natives whose common case CALL does inline (as CPython's CALL_LEN and CALL_LIST_APPEND):
 * on that case the same result as the function, which CALL calls for every other. */
typedef enum {
    VM_FAST_NONE,
    VM_FAST_GET,                /* get(dict, key[, default]): an int or hashed-str key */
    VM_FAST_LEN,                /* len(x) of a str, bytes, list, tuple or dict */
    VM_FAST_APPEND,             /* append(list, x) into spare capacity */
} vm_native_fast;

typedef struct {                /* T_NATIVE: a C function; returns 0, or -1 with an exception set */
    vm_obj h;
    const char *name;
    int arity;                  /* -1: variadic, checked by the function */
    vm_native_fast fast;        /* what CALL may do inline instead (usually VM_FAST_NONE) */
    vm_native_fn fn;
    const char *sig;            /* its signature(s), one per line, as docs/library.md shows */
} vm_native;

typedef struct vm_class {       /* T_CLASS: an exception class */
    vm_obj h;
    vm_str *name;
    struct vm_class *base;
} vm_class;

typedef struct {
    vm_code *code;
    uint32_t pc;
} vm_tb_entry;

#define VM_EXC_TB_SMALL 4
typedef struct {                /* T_EXC: an exception instance */
    vm_obj h;
    vm_class *cls;
    value arg;                  /* the message or value it was created with (None if none) */
    value context;              /* exception being handled when this one was raised, or None */
    uint32_t ntb, captb;
    vm_tb_entry *tb;            /* innermost last: tb_small, or malloc'd past VM_EXC_TB_SMALL */
    vm_tb_entry tb_small[VM_EXC_TB_SMALL];  /* so that a raise caught nearby allocates once */
} vm_exc;

typedef struct {                /* T_ITER */
    vm_obj h;
    value seq;                  /* the list, tuple, str, bytes or dict walked; None for a range */
    int64_t pos, stop, step;
} vm_iter;

typedef struct {                /* T_FFI_BUFFER: memory for native code (vm/lib/ffi.c) */
    vm_obj h;
    size_t size;
    unsigned char *data;        /* size bytes, malloc'd; NULL once freed (ffi_free) */
} vm_ffi_buffer;

/* ---- allocation (gc.c) ---- */

/* Allocates a zeroed heap object of `size` bytes with `tag` in t's interpreter heap; may
 * schedule a collection (RT_GC_SCHEDULED) but never collects, and never fails: when malloc
 * fails it frees the collector's reserve and retries, and the next poll raises MemoryError.
 * A size a program chooses must pass vm_heap_reserve first. */
vm_obj *vm_alloc(vm_thread *t, vm_tag tag, size_t size);

/* Checks that `bytes` more may be allocated in t's interpreter's heap: -1 with MemoryError
 * if that is beyond what any allocation may take, or would take the heap past its limit
 * (gilvm_limits.max_memory) by more than the headroom the limit leaves for allocations that
 * cannot fail.  For every allocation whose size a program chooses. */
int vm_heap_reserve(vm_thread *t, size_t bytes) __attribute__((warn_unused_result));

/* Counts `bytes` of payload (list items, dict tables) allocated outside vm_alloc into the
 * heap's size, scheduling a collection as vm_alloc does. */
void vm_heap_charge(vm_thread *t, size_t bytes);

/* ---- constructors and operations (object.c) ---- */

/* New empty code object (all arrays NULL, counts 0); the caller fills the malloc'd arrays,
 * which the collector frees with it. */
vm_code *vm_code_new(vm_thread *t);

/* New string from `len` bytes (copied). */
value vm_str_new(vm_thread *t, const char *s, size_t len);
/* New string from a NUL-terminated C string. */
value vm_str_c(vm_thread *t, const char *s);
/* New bytes object from `len` bytes. */
value vm_bytes_new(vm_thread *t, const char *s, size_t len);
/* New empty list with room for `cap` items. */
value vm_list_new(vm_thread *t, size_t cap);
/* Appends `v` to list `l`; 0, or -1 with MemoryError if its items cannot grow. */
int vm_list_append(vm_thread *t, vm_list *l, value v) __attribute__((warn_unused_result));
/* New tuple of `n` items copied from `items`. */
value vm_tuple_new(vm_thread *t, size_t n, const value *items);
/* New empty dict. */
value vm_dict_new(vm_thread *t);
/* Looks `key` up in `d`; 1 found (*out set), 0 absent, -1 error (unhashable key). */
int vm_dict_get(vm_thread *t, vm_dict *d, value key, value *out);
/* Sets d[key] = val; 0, or -1 with TypeError for an unhashable key. */
int vm_dict_set(vm_thread *t, vm_dict *d, value key, value val);
/* Removes key; 1 removed, 0 absent, -1 error. */
int vm_dict_del(vm_thread *t, vm_dict *d, value key);
/* Hash of an int (and of a bool, or a float with an integral value, equal to it): never 0. */
static inline uint64_t vm_hash_int(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    return x ? x : 1;
}
/* vm_hash for every type (object.c); vm_hash does ints and cached string hashes inline. */
int vm_hash_slow(vm_thread *t, value v, uint64_t *h);
/* Hash of a hashable value into *h; -1 with TypeError if unhashable. */
static inline int vm_hash(vm_thread *t, value v, uint64_t *h)
{
    if (v.tag == T_INT) {
        *h = vm_hash_int((uint64_t)v.u.i);
        return 0;
    }
    if (v.tag == T_STR && ((vm_str *)v.u.o)->hash) {
        *h = ((vm_str *)v.u.o)->hash;
        return 0;
    }
    return vm_hash_slow(t, v, h);
}
/* The same int or the same object: equal for every type a dict holds (as CPython's dict
 * compares identity first). */
static inline bool vm_dict_same_key(value a, value b)
{
    return a.tag == b.tag && (a.tag == T_INT ? a.u.i == b.u.i : IS_OBJ(a) && a.u.o == b.u.o);
}
/* d[key] without calls, for an int key or a string with its hash cached, probing by
 * identity: 1 with *out (and the hint at the entry, for the d[k] = ... that usually
 * follows), 0 if the key is absent, -1 if it cannot tell (another key type, or an entry
 * with the same hash holding another object: an equal string, True for 1), when
 * vm_dict_get must answer.  vm_dict_get's common path, and CALL's for get(). */
static inline int vm_dict_find(vm_dict *d, value key, value *out)
{
    uint64_t h;
    if (key.tag == T_INT)
        h = vm_hash_int((uint64_t)key.u.i);
    else if (key.tag == T_STR && ((vm_str *)key.u.o)->hash)
        h = ((vm_str *)key.u.o)->hash;
    else
        return -1;
    if (!d->len)
        return 0;
    size_t i = h & d->mask;
    for (size_t perturb = h;; perturb >>= 5) {
        int32_t ix = d->index[i];
        if (ix == -1)
            return 0;
        if (ix >= 0 && d->entries[ix].hash == h) {
            value k = d->entries[ix].key;   /* for an int or a str, the same bits: the same */
            if (k.u.i != key.u.i || k.tag != key.tag)
                return -1;
            d->hint = (size_t)ix;
            *out = d->entries[ix].val;
            return 1;
        }
        i = (i * 5 + perturb + 1) & d->mask;
    }
}
/* d[key] = val when key is the key last found or stored (d->hint): true, done; false if
 * vm_dict_set must do it.  Checked, so that d[k] = get(d, k, 0) + 1 probes once, not twice. */
static inline bool vm_dict_set_hinted(vm_dict *d, value key, value val)
{
    size_t ix = d->hint;        /* a deleted entry's key is T_UNDEF: never the same */
    if (ix < d->used && vm_dict_same_key(d->entries[ix].key, key)) {
        d->entries[ix].val = val;
        return true;
    }
    return false;
}
/* Three-way comparison of two numbers (int, bool, float), exact across int and float:
 * -1, 0, 1, or 2 when unordered (nan). */
int vm_num_cmp(value a, value b);
/* Value equality (==) without errors. */
bool vm_equal(value a, value b);
/* Truthiness as Python's bool(). */
bool vm_truthy(value v);
/* The items array of every list with no capacity: never NULL, so that arithmetic on a list's
 * items is defined (NULL + 0 is not, in C: `[] + []`); never written, never freed. */
extern value vm_no_items[1];

/* Copies n values; src may be NULL when n is 0 (memcpy must not see NULL even for 0 bytes). */
static inline void vm_values_copy(value *dst, const value *src, size_t n)
{
    if (n)
        memcpy(dst, src, n * sizeof(value));
}

/* True for what CALL can call: a function, a native, a class, a bound C function. */
static inline bool vm_callable(value v)
{
    return v.tag == T_FUNC || v.tag == T_NATIVE || v.tag == T_CLASS || v.tag == T_FFI_FUNC;
}
/* Type name as Python prints it ("int", "str", ...). */
const char *vm_type_name(value v);
/* str(v) as a new string value. */
value vm_to_str(vm_thread *t, value v);
/* repr(v) as a new string value. */
value vm_repr(vm_thread *t, value v);
/* repr(v) up to its first `max` (> 0) bytes (which may end inside a character): *cut tells whether
 * it was longer.  The work is bounded by `max`, not by v's size (the REPL's stack display). */
value vm_repr_prefix(vm_thread *t, value v, size_t max, bool *cut);
/* Length of the valid UTF-8 sequence at s (n > 0 bytes left; strict: no overlong forms,
 * surrogates or code points above U+10FFFF), 0 if invalid. */
size_t vm_utf8_seq(const unsigned char *s, size_t n);
/* Byte-wise hash used for strings: SipHash-1-3 keyed with vm_hash_key. */
uint64_t vm_hash_bytes(const char *s, size_t len);
/* The string hash's key, per process (hashseed.c); zero until vm_hash_seed_init. */
extern uint64_t vm_hash_key[2];
/* Sets the key once per process, before any string is hashed: from GILVM_HASHSEED (a
 * decimal number 0..4294967295 fixes it, for reproducible runs; unset or "random": random
 * bytes); 0, or -1 if GILVM_HASHSEED is malformed (the key is then random). */
int vm_hash_seed_init(void);
/* Makes vm_hash_seed_init derive the key from `seed` whatever GILVM_HASHSEED says (the
 * controlled scheduler: dict order must follow from the schedule's seed). */
void vm_hash_seed_fix(uint64_t seed);

#endif
