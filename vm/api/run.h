/* SPDX-License-Identifier: MIT */
/* The load-and-run path shared by the CLI, the REPL and the embedding API (run.c). */
#ifndef VM_RUN_H
#define VM_RUN_H

#include "vm/toolchain/module.h"

/* Reads a whole file into a malloc'd, NUL-terminated buffer; -1 with errno on failure. */
int vm_read_file(const char *path, char **data, size_t *len);

/* Loads .gbc (by its magic) or assembles .gasm text, then verifies; 0, or -1 with a message. */
int vm_load_source(vm_thread *t, const char *name, const char *data, size_t len, vm_module *m,
                   char *err, size_t errlen);

/* Runs the verifier over every code object; frees the module and returns -1 on rejection. */
int vm_module_verify(vm_module *m, const char *name, char *err, size_t errlen);

/* Reads and loads a file; 0, GILVM_EXIT_USAGE (cannot open) or GILVM_EXIT_DATAERR. */
int vm_load_file(vm_thread *t, const char *path, vm_module *m, char *err, size_t errlen);

/* Links and runs a loaded module's body; returns the exit status (see vm_exit_status). */
int vm_run_module(vm_thread *t, vm_module *m);

/* Consumes t's pending exception: prints the traceback (or the SystemExit message) and
 * returns the exit status it means; 0 when there is none. */
int vm_exit_status(vm_thread *t);

#endif
