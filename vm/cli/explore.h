/* SPDX-License-Identifier: MIT */
/* `gilvm explore`: runs a program under the controlled scheduler with successive seeds and
 * shrinks a failing schedule (explore.c, docs/scheduling.md); called by the CLI. */
#ifndef VM_EXPLORE_H
#define VM_EXPLORE_H

/* Runs `gilvm explore [OPTIONS] FILE [ARGS]` with the arguments after "explore"; `prog` is
 * the name the user ran gilvm by (argv[0]), shown in the replay commands it prints.  Returns
 * the exit status: 0 no run failed, 1 a run failed (reported, its schedule written), 2 a
 * usage error or a run that could not start (one line on stderr). */
int vm_explore_main(const char *prog, int argc, char **argv);

#endif
