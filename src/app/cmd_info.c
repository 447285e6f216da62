/* cmd_info.c — `glimpse info PATH`: what a weights file or model folder holds. */
#include "cli.h"

int cmd_info(int argc, char **argv) {
    if (cli_wants_help(argc, argv) || argc != 2) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: glimpse info PATH\n\n"
                "Lists the tensors (name, dtype, shape) of a .safetensors, sharded safetensors folder,\n"
                "PyTorch .pt/.bin zip checkpoint or .gguf file, and the format it was read as.\n");
        return argc == 2 ? 0 : 2;
    }
    return cli_fail("info", "%s: reading weights is not built yet", argv[1]);
}
