/* SPDX-License-Identifier: MIT */
/* GNU readline for the REPL (repl.c), loaded with dlopen when a REPL on a terminal starts,
 * so that a gilvm running a program never loads it (start-up: docs/performance.md). */
#ifndef VM_RL_H
#define VM_RL_H

#include <stdio.h>

#include <readline/history.h>
#include <readline/readline.h>

/* Every readline function and variable the REPL uses, each X(name) once. */
#define CLI_RL_SYMBOLS(X)                                                                     \
    X(rl_prep_terminal) X(rl_deprep_terminal) X(rl_callback_handler_install)                 \
    X(rl_callback_handler_remove) X(rl_callback_read_char) X(rl_callback_sigcleanup)         \
    X(rl_cleanup_after_signal) X(rl_free_line_state) X(rl_redisplay) X(rl_resize_terminal)   \
    X(rl_completion_matches) X(rl_filename_completion_function)                              \
    X(using_history) X(stifle_history) X(read_history) X(write_history) X(append_history)   \
    X(history_truncate_file) X(history_get) X(add_history) X(clear_history)                  \
    X(rl_instream) X(rl_outstream) X(rl_line_buffer) X(rl_point) X(rl_end)                   \
    X(rl_readline_name) X(rl_catch_signals) X(rl_catch_sigwinch) X(rl_change_environment)   \
    X(rl_getc_function) X(rl_prep_term_function) X(rl_deprep_term_function)                  \
    X(rl_attempted_completion_function) X(rl_attempted_completion_over)                      \
    X(rl_basic_word_break_characters) X(rl_filename_completion_desired)                      \
    X(history_length) X(history_base) X(tilde_expand)

/* The address of each symbol in the loaded library (the types are the headers'). */
typedef struct {
#define CLI_RL_FIELD(name) __typeof__(&name) name;
    CLI_RL_SYMBOLS(CLI_RL_FIELD)
#undef CLI_RL_FIELD
} cli_readline;

/* Filled by cli_rl_load. */
extern cli_readline cli_rl;

/* A readline function or variable of the loaded library, used as the name itself would be:
 * RL(rl_point) = 0, RL(add_history)(line). */
#define RL(name) (*cli_rl.name)

/* Loads GNU readline and fills cli_rl (once; later calls return at once); 0, or -1 with a
 * one-line reason in `err`. */
int cli_rl_load(char *err, size_t len);

#endif
