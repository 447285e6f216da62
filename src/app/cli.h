/* cli.h — the glimpse command-line tool: one function per subcommand (cmd_<name>.c). Each
 * returns the process exit status: 0 ok, 1 runtime error, 2 usage error. */
#ifndef GL_CLI_H
#define GL_CLI_H

#include <stdio.h>

#include "glimpse.h"

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_cmd;

/* Prints "glimpse NAME: message" to stderr (one line) and returns 1. */
int cli_fail(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

/* True when option a is one of the space-separated names in list (options that take a value). */
int cli_takes_value(const char *a, const char *list);
/* Threads to use by default: the online CPU count. */
int cli_default_threads(void);

int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_caption(int argc, char **argv); /* also `ask` */
int cmd_chat(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
/* `glimpse tokenize --clip-vocab FILE | --qwen2-dir DIR`: no model needed */
int cmd_tokenize_vocab(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_index(int argc, char **argv);  /* photo album: cmd_index.c */
int cmd_search(int argc, char **argv); /* cmd_search.c */
int cmd_dupes(int argc, char **argv);  /* cmd_search.c */

#endif
