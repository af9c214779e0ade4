/* SPDX-License-Identifier: MIT */
/* Exit handlers [atexit]: functions registered by bytecode, run by finalization, last
 * registered first.  The list is vm_interp.atexit (a GC root). */
#include "vm/lib/lib.h"
#include "vm/lib/native.h"

BUILTIN(atexit)
{
    if (argc < 1)
        return vm_raise(t, EXC(t)->type_error, "atexit expected at least 1 argument");
    if (vm_want_callable(t, "atexit", argv[0]))
        return -1;
    value args = vm_tuple_new(t, (size_t)argc - 1, argv + 1);
    value pair[2] = {argv[0], args};
    *out = argv[0];
    return vm_list_append(t, AS_LIST(VM_INTERP(t)->atexit), vm_tuple_new(t, 2, pair));
}

void vm_atexit_run(vm_thread *t)
{
    vm_list *l = AS_LIST(VM_INTERP(t)->atexit);
    while (l->len > 0) {
        value entry = l->items[--l->len];
        t->roots[t->nroots++] = entry;
        vm_tuple *pair = AS_TUPLE(entry);
        vm_tuple *args = AS_TUPLE(pair->items[1]);
        value result;
        if (vm_call(t, pair->items[0], (int)args->len, args->items, &result))
            vm_report_ignored(t, "atexit callback", pair->items[0]);
        t->nroots--;
    }
}

void vm_atexit_install(vm_thread *t)
{
    VM_INTERP(t)->atexit = vm_list_new(t, 0);
    static const vm_native_def natives[] = {
        {"atexit", -1, bi_atexit, "atexit(f, *args)"},
    };
    VM_DEF_NATIVES(t, natives);
}
