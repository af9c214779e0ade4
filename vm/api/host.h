/* SPDX-License-Identifier: MIT */
/* What the embedding API's files share (api.c, embed.c, host.c): the calling thread's
 * state checked for the GIL, and the calling thread's recorded error (gilvm_error_*). */
#ifndef VM_API_HOST_H
#define VM_API_HOST_H

#include "vm/api/gilvm.h"
#include "vm/core/state.h"

/* The calling thread's attached state, or NULL having recorded and printed a RuntimeError
 * naming `api` (the thread does not hold the GIL, or the runtime is not running). */
vm_thread *vm_api_caller(const char *api);

/* Records an error for gilvm_error_* (copies of the three strings; tb NULL: ""). */
void vm_api_error_set(const char *type, const char *message, const char *tb);

/* Records exception `e` (its class name, str() and formatted traceback). */
void vm_api_error_set_exc(vm_thread *t, value e);

/* After a run or call from the host returned on t: if it was the outermost (no frame left
 * on t), an interrupt (gilvm_interrupt) is spent. */
void vm_api_returned(vm_thread *t);

/* A VM value as an owned gilvm_value (other objects as their repr); 0, or -1 with
 * MemoryError set on t. */
int vm_api_to_host(vm_thread *t, value v, gilvm_value *out);

/* A gilvm_value from the host as a VM value; 0, or -1 with TypeError set on t. */
int vm_api_from_host(vm_thread *t, const gilvm_value *v, value *out);

/* Forgets the host's audit hooks (finalization; subinterp.c). */
void vm_api_audit_hooks_clear(void);

/* Releases what gilvm_register allocated (at finalization, when no code can call it). */
void vm_api_cfunctions_free(void);

#endif
