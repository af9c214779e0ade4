/* SPDX-License-Identifier: MIT */
/* Linking a loaded module into an interpreter: each code object quickened against the
 * interpreter's globals (vm/core/quicken.c puts each global's cell in its instructions), and one
 * function object per .func bound to a global of its name. */
#include <stdlib.h>

#include "vm/toolchain/module.h"

void vm_module_free(vm_module *m)
{
    vm_free(m->codes);
    m->codes = NULL;
    m->ncodes = 0;
}

int vm_module_link(vm_thread *t, vm_module *m)
{
    vm_interp *in = VM_INTERP(t);
    for (uint32_t i = 0; i < m->ncodes; i++) {
        vm_quicken(in, m->codes[i]);
    }
    for (uint32_t i = 1; i < m->ncodes; i++) {
        vm_func *f = (vm_func *)vm_alloc(t, T_FUNC, sizeof(vm_func));
        f->code = m->codes[i];
        f->entry = f->code->exec + 1;
        f->nparams = f->code->nparams;
        f->nlocals = f->code->nlocals;
        f->framesize = f->code->framesize;
        *vm_global_cell(in, f->code->name) = V_OBJ(T_FUNC, f);
    }
    return 0;
}
