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

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

#endif
