/* SPDX-License-Identifier: MIT */
/* Host test: sub-interpreters and audit hooks through the API: a hook added before init sees
 * the runtime's events (a file load, interpreter creation) and can refuse one; code runs in
 * an isolated interpreter whose globals main does not see; values cross by copy; an error
 * in the target is recorded as InterpreterError; destroying main or an unknown id fails.
 * Built by tests/embed/run against the installed library. */
#include <gilvm.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

static int ncreate, nload, refuse_create;
static char last_event[64];

static int hook(void *data, const char *event, int argc, const gilvm_value *argv)
{
    (void)data;
    snprintf(last_event, sizeof last_event, "%s", event);
    if (strcmp(event, "gilvm.run_file") == 0 && argc == 1 && argv[0].type == GILVM_STR)
        nload++;
    if (strcmp(event, "interpreters.create") == 0) {
        ncreate++;
        return refuse_create;
    }
    return 0;
}

int main(int argc, char **argv)
{
    CHECK(gilvm_audit_hook_add(hook, NULL) == 0, "hook added before init");
    CHECK(gilvm_runtime_init(NULL) == 0, "init");
    if (argc > 1)
        CHECK(gilvm_run_file(argv[1]) == 0 && nload == 1, "a file load is an audit event");

    long long id = gilvm_interp_create(NULL);
    CHECK(id >= 1 && ncreate == 1, "interpreter created, event seen");
    CHECK(gilvm_interp_run_string(id, "sub", "LOAD_INT 40\nSTORE_GLOBAL base\n"
                                  ".func add(x)\n LOAD_GLOBAL base\n LOAD_LOCAL x\n ADD\n RETURN\n.end\n") == 0,
          "run a string in it");
    gilvm_value args[1] = {gilvm_int(2)}, r;
    CHECK(gilvm_interp_call(id, "add", 1, args, &r) == 0 && r.type == GILVM_INT && r.u.i == 42,
          "call a function there");
    gilvm_value g;
    CHECK(gilvm_get_global("base", &g) == -1 && strcmp(gilvm_error_type(), "NameError") == 0,
          "main does not see its globals");
    args[0] = gilvm_str("x");
    CHECK(gilvm_interp_call(id, "add", 1, args, &r) == -1 &&
              strcmp(gilvm_error_type(), "InterpreterError") == 0 &&
              strstr(gilvm_error_message(), "TypeError") != NULL,
          "an error there is an InterpreterError here");
    CHECK(gilvm_interp_run_string(id, "bad", "NOSUCH\n") == -1 &&
              strstr(gilvm_error_message(), "SyntaxError") != NULL,
          "a bad source is reported");
    CHECK(gilvm_interp_destroy(0) == -1, "main cannot be destroyed");
    CHECK(gilvm_interp_destroy(id) == 0, "destroyed");
    CHECK(gilvm_interp_destroy(id) == -1, "not twice");

    gilvm_interp_config legacy = {.shared_gil = 1};
    long long id2 = gilvm_interp_create(&legacy);
    CHECK(id2 == id + 1, "ids grow, never reused");
    refuse_create = 1;
    CHECK(gilvm_interp_create(NULL) == -1 && strcmp(gilvm_error_type(), "RuntimeError") == 0,
          "a hook can refuse an interpreter");
    refuse_create = 0;
    gilvm_value ev[2] = {gilvm_int(1), gilvm_str("two")};
    CHECK(gilvm_audit("host.event", 2, ev) == 0 && strcmp(last_event, "host.event") == 0,
          "the host raises its own events");
    /* id2 is left for finalization to destroy. */
    CHECK(gilvm_runtime_finalize(0) == 0, "finalize");
    printf("host_interp ok\n");
    return 0;
}
