/* SPDX-License-Identifier: MIT */
/* A loaded program: its code objects, and the entry points that make, save, check, print
 * and link them (asm.c, bcfile.c, verify.c, dis.c, load.c).  Used by the CLI, REPL, API. */
#ifndef VM_MODULE_H
#define VM_MODULE_H

#include <stdio.h>

#include "vm/core/state.h"

/* codes[0] is the module body (flags CO_MODULE); the rest are functions, in definition
 * order.  The array is malloc'd; the code objects live on the interpreter heap. */
typedef struct {
    uint32_t ncodes;
    vm_code **codes;
} vm_module;

/* Frees the codes array (not the code objects, which the collector owns). */
void vm_module_free(vm_module *m);

/* Assembles .gasm source text.  The module body starts with `entry_depth` values on the
 * stack (0 for files; the REPL passes its stack depth).  0 on success; -1 with a one-line
 * "FILE:LINE:COL: expected ..." message in err. */
int asm_assemble(vm_thread *t, const char *filename, const char *src, size_t len,
                 uint32_t entry_depth, vm_module *out, char *err, size_t errlen);

/* The source line that an asm_assemble message "NAME:LINE:COL: ..." of `src` points at, with
 * a caret under its column, as "    TEXT\n    ^" (tabs kept, so the caret lines up), as
 * python shows a SyntaxError; "" if the message has no position, or the line is too long
 * for `out`. */
void asm_error_context(const char *name, const char *src, size_t len, const char *err,
                       char *out, size_t outlen);

/* Writes `m` as assembly that re-assembles to identical bytecode; 0, or -1 on I/O error. */
int dis_module(FILE *out, const vm_module *m);

/* Writes one code object's listing (used by the REPL's :dis). */
int dis_code(FILE *out, const vm_code *c);

/* Serialises `m` to a .gbc image (malloc'd, *len bytes); NULL on allocation failure. */
uint8_t *vm_bc_write(const vm_module *m, size_t *len);

/* Reads and verifies a .gbc image.  0 on success; -1 with a one-line message in err naming
 * the file, function and offset ("FILE: function f, offset 12: ...") for exit status 65. */
int vm_bc_read(vm_thread *t, const char *filename, const uint8_t *data, size_t len,
               vm_module *out, char *err, size_t errlen);

/* Proves that `c` cannot read or write out of bounds (see docs/bytecode.md); 0, or -1 with
 * "function NAME, offset N: reason" in err. */
int vm_verify_code(const vm_code *c, char *err, size_t errlen);

/* Links the module into t's interpreter: resolves global slots of every code object and
 * binds each function to a global of its name.  0, or -1 with an exception set. */
int vm_module_link(vm_thread *t, vm_module *m);

#endif
