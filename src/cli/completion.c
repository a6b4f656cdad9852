/*
 * completion.c - `skiff completion bash`: a bash completion script for skiff.
 *
 * The script completes commands, subcommands and each command's options from the tables below,
 * and app names by asking the server (`skiff app list --json`, quietly: no server, no names).
 * tests/integration/cli_docs.sh checks that every command of `skiff --help` is here, in
 * docs/cli.md and in the man page.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] = "usage: skiff completion bash\n"
                            "\n"
                            "Prints a bash completion script. Load it with\n"
                            "  source <(skiff completion bash)\n"
                            "or install it as /usr/share/bash-completion/completions/skiff.\n"
                            "Exit status: 0 success; 2 usage.\n";

/* Each command, what follows it, and its options. Words that take app names: "@app". */
static const struct {
    const char *cmd;
    const char *words; /* subcommands, or "@app" when the first argument is an app */
    const char *opts;
} table[] = {
    {"deploy", "", "--name-check --name"},
    {"run", "", "--entrypoint --kwarg --param --"},
    {"call", "@app", "--kwarg --param --"},
    {"spawn", "@app", "--kwarg --param --"},
    {"get", "", "--timeout --index"},
    {"cancel", "", "--terminate-containers"},
    {"map", "@app", "--unordered --return-exceptions --window --kwarg --param"},
    {"stats", "@app", ""},
    {"graph", "", ""},
    {"logs", "@app", "--follow --tail"},
    {"url", "@app", ""},
    {"app", "list stop", ""},
    {"container", "list", ""},
    {"token", "new list revoke", "--scope --expires"},
    {"secret", "create list delete", "--from-env --force"},
    {"volume", "create list delete put get ls", ""},
    {"dashboard", "", "--url"},
    {"completion", "bash", ""},
};

int cmd_completion(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    if (argc == 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (argc != 1 || strcmp(argv[0], "bash"))
        return cli_usage_error(usage, "completion takes one shell: bash");
    printf("# bash completion for skiff (skiff completion bash)\n"
           "_skiff_apps() {\n"
           "    skiff app list --json 2>/dev/null | grep -o '\"name\":\"[^\"]*\"' | "
           "cut -d'\"' -f4\n"
           "}\n"
           "_skiff() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} words='' opts=''\n"
           "    if [[ $COMP_CWORD -eq 1 ]]; then\n"
           "        COMPREPLY=($(compgen -W '");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        printf("%s%s", i ? " " : "", table[i].cmd);
    printf(" --server --help --version' -- \"$cur\"))\n"
           "        return\n"
           "    fi\n"
           "    case $cmd in\n");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        printf("    %s) words='%s' opts='%s --json --help --server' ;;\n", table[i].cmd,
               table[i].words, table[i].opts);
    printf("    esac\n"
           "    if [[ $cur == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
           "    elif [[ $COMP_CWORD -eq 2 && $words == @app ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$(_skiff_apps)\" -- \"$cur\"))\n"
           "    elif [[ $COMP_CWORD -eq 2 && -n $words ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
           "    elif [[ $cmd == deploy || $cmd == run ]]; then\n"
           "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "    fi\n"
           "}\n"
           "complete -F _skiff skiff\n");
    return CLI_OK;
}
