/* main.c — `glimpse SUBCOMMAND ...`: dispatch, --version, --help. */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Subcommands in the order `glimpse --help` lists them. Add a row per cmd_<name>.c. */
static const cli_cmd g_cmds[] = {
    {"caption", "describe an image with FastVLM (streamed)", cmd_caption},
    {"ask", "ask FastVLM a question about an image", cmd_caption},
    {"chat", "interactive questions about an image (FastVLM)", cmd_chat},
    {"embed", "image and text embeddings (MobileCLIP / MobileCLIP2)", cmd_embed},
    {"classify", "zero-shot labels for images (MobileCLIP / MobileCLIP2)", cmd_classify},
    {"index", "add photo folders to the album (incremental, MobileCLIP2 embeddings in SQLite)", cmd_index},
    {"search", "search the album by words, by an example photo, or a mix", cmd_search},
    {"dupes", "groups of near-duplicate photos in the album", cmd_dupes},
    {"tokenize", "the token ids a model sees for a text", cmd_tokenize},
    {"convert", "write a model as one GGUF file (f32, f16, q8_0, q4_0)", cmd_convert},
    {"info", "show what a model folder or weights file holds (format, tensors, dtypes)", cmd_info},
};

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "glimpse %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_takes_value(const char *a, const char *list) {
    size_t n = strlen(a);
    for (const char *p = list; (p = strstr(p, a)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

int cli_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "glimpse %s — Apple's FastVLM and MobileCLIP2 on your CPU, offline\n\n"
            "usage: glimpse COMMAND [options]   (glimpse COMMAND --help for its options)\n\n"
            "commands:\n",
            glimpse_version());
    for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++)
        fprintf(f, "  %-10s %s\n", g_cmds[i].name, g_cmds[i].summary);
    fprintf(f, "\n  --version  print the version and the kernel ISA in use\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("glimpse %s (kernels: %s)\n", glimpse_version(), glimpse_isa());
        return 0;
    }
    for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++)
        if (!strcmp(argv[1], g_cmds[i].name)) return g_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "glimpse: unknown command '%s' (see glimpse --help)\n", argv[1]);
    return 2;
}
