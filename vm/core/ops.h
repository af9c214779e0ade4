/* SPDX-License-Identifier: MIT */
/* Slow paths of the eval loop's instructions, shared with builtins: arithmetic on mixed or
 * non-int operands, comparisons, indexing, iteration, calling non-functions. */
#ifndef VM_OPS_H
#define VM_OPS_H

#include "vm/core/state.h"

/* *out = a OP b for an arithmetic, bitwise or CONTAINS opcode; 0, or -1 with an exception. */
int vm_binop(vm_thread *t, int op, value a, value b, value *out);
/* *out = a OP b for LT LE GT GE; 0, or -1 with TypeError for unorderable operands. */
int vm_compare(vm_thread *t, int op, value a, value b, value *out);
/* Three-way comparison for sorting: -1/0/1 in *cmp; -1 return with TypeError. */
int vm_order(vm_thread *t, value a, value b, int *cmp);
/* *out = c[k]; 0, or -1 (IndexError, KeyError, TypeError). */
int vm_get_item(vm_thread *t, value c, value k, value *out);
/* c[k] = v; 0, or -1. */
int vm_set_item(vm_thread *t, value c, value k, value v);
/* *out = an iterator over x; 0, or -1 with TypeError. */
int vm_get_iter(vm_thread *t, value x, value *out);
/* Next item into *out: 1 got one, 0 exhausted, -1 error. */
int vm_iter_next(vm_thread *t, vm_iter *it, value *out);
/* New iterator over range(start, stop, step) (step != 0). */
value vm_range_new(vm_thread *t, int64_t start, int64_t stop, int64_t step);
/* Calls a value that is not a bytecode function (native, class, or a tag with a call hook). */
int vm_call_other(vm_thread *t, value f, int argc, const value *argv, value *out);
/* 1 if exception `e` matches class (or tuple of classes) `cls`, 0 if not, -1 TypeError. */
int vm_exc_matches(vm_thread *t, value e, value cls);

#endif
