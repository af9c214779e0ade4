/* SPDX-License-Identifier: MIT */
/* The interactive REPL on GNU readline (repl.c); called by the CLI. */
#ifndef VM_REPL_H
#define VM_REPL_H

#include "vm/core/state.h"

/* Runs the REPL on stdin until :quit or end of input; returns the exit status (0, or a
 * SystemExit code).  A non-tty stdin runs as a script with no prompts and no history. */
int vm_repl_main(vm_thread *t);

#endif
