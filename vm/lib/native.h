/* SPDX-License-Identifier: MIT */
/* What every native function of the library uses: its signature (BUILTIN), its install
 * table, and the argument checks and errors it shares with the others.  Included by
 * vm/lib/ only. */
#ifndef VM_NATIVE_H
#define VM_NATIVE_H

#include "vm/core/state.h"

/* Defines the native `bi_NAME`: argc arguments in argv (already checked against the
 * table's arity), the result in *out; 0, or -1 with an exception set. */
#define BUILTIN(name) static int bi_##name(vm_thread *t, int argc, value *argv, value *out)

/* One row of a module's table of natives: name, arity (-1: any), function, and signature:
 * one or more lines `name(params)`, which the REPL's :help shows and docs/library.md must
 * show the same (tests/check-library-docs). */
typedef struct {
    const char *name;
    int arity;
    vm_native_fn fn;
    const char *sig;
} vm_native_def;

/* Binds each native of the table `defs` (of `n` rows) to a global of t's interpreter. */
void vm_def_natives(vm_thread *t, const vm_native_def *defs, size_t n);
#define VM_DEF_NATIVES(t, defs) vm_def_natives((t), (defs), sizeof(defs) / sizeof (defs)[0])

/* Lets CALL do the common case of the native bound to global `name` inline (object.h,
 * vm_native_fast); after vm_def_natives, in the same install. */
void vm_native_set_fast(vm_thread *t, const char *name, vm_native_fast fast);

/* Sets a process-wide hook table slot (vm_gc_blacken_hooks, vm_gc_free_hooks,
 * vm_call_hooks) in an install function: written only the first time, since every
 * interpreter's install sets the same value while other interpreters' threads read it. */
#define VM_SET_HOOK(slot, fn) do { if ((slot) != (fn)) (slot) = (fn); } while (0)

/* Raises TypeError "FN() argument must be WANT, not 'TYPE'"; returns -1. */
int vm_type_err(vm_thread *t, const char *fn, const char *want, value got);

/* Stores an int (or bool) argument in *out; TypeError otherwise. */
int vm_want_int(vm_thread *t, const char *fn, value v, int64_t *out);

/* Checks that `f` is callable; TypeError "FN() argument must be callable" otherwise. */
int vm_want_callable(vm_thread *t, const char *fn, value f);

/* Stores a file descriptor (an int in 0..INT32_MAX) in *fd; OSError EBADF if out of range. */
int vm_want_fd(vm_thread *t, const char *fn, value v, int *fd);

/* Stores a number of seconds (int, bool or float) in *out: TypeError "FN() WHAT must be a
 * number, not 'TYPE'" for another type, ValueError NEGATIVE for a negative number or NaN. */
int vm_want_seconds(vm_thread *t, const char *fn, const char *what, const char *negative,
                    value v, double *out);

/* Raises OSError "[Errno N] strerror(N)"; returns -1. */
int vm_os_error(vm_thread *t, int err);

#endif
