/* Runs the credlineage Fluent Bit filter on WAMR the way Fluent Bit 5.1
 * (src/wasm/flb_wasm.c) does: one instance, then per record dup the tag and
 * the NUL-terminated JSON with the module's malloc, call
 * (tag, tag_len, time_sec, time_nsec, record, record_len), check and copy the
 * returned NUL-terminated string, free the inputs, never the result.
 *
 * usage: flbhost MODULE.wasm FUNCTION STACK_SIZE HEAP_SIZE [DIR...] < records.jsonl
 * Prints one line per record: the result, or "<<SKIPPED: why>>" where Fluent
 * Bit would drop the record. time_sec of record i is 1722500000 + i. */
#include "wasm_export.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char err[128];
    RuntimeInitArgs init;
    FILE *f;
    long size;
    uint8_t *bytes;
    wasm_module_t module;
    wasm_module_inst_t inst;
    wasm_exec_env_t env;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long i = 0;

    if (argc < 5) {
        fprintf(stderr, "usage: flbhost MODULE FUNCTION STACK HEAP [DIR...]\n");
        return 2;
    }
    memset(&init, 0, sizeof init);
    init.mem_alloc_type = Alloc_With_Allocator;
    init.mem_alloc_option.allocator.malloc_func = malloc;
    init.mem_alloc_option.allocator.realloc_func = realloc;
    init.mem_alloc_option.allocator.free_func = free;
    if (!wasm_runtime_full_init(&init)) {
        return 3;
    }
    f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 4;
    }
    rewind(f);
    bytes = malloc(size);
    if (!bytes || fread(bytes, 1, size, f) != (size_t) size) {
        return 4;
    }
    fclose(f);
    module = wasm_runtime_load(bytes, (uint32_t) size, err, sizeof err);
    if (!module) {
        fprintf(stderr, "load: %s\n", err);
        return 5;
    }
    /* Accessible_Paths: preopened under their own names; no env, no argv. */
    wasm_runtime_set_wasi_args_ex(module, (const char **) &argv[5], argc - 5,
                                  NULL, 0, NULL, 0, NULL, 0, 0, 1, 2);
    inst = wasm_runtime_instantiate(module, atoi(argv[3]), atoi(argv[4]),
                                    err, sizeof err);
    if (!inst) {
        fprintf(stderr, "instantiate: %s\n", err);
        return 6;
    }
    env = wasm_runtime_create_exec_env(inst, atoi(argv[3]));
    if (!env) {
        return 7;
    }
    while ((len = getline(&line, &cap, stdin)) > 0) {
        const char *tag = "cloudtrail";
        uint32_t args[6];
        uint32_t tag_buf, rec_buf;
        wasm_function_inst_t func;

        if (line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        func = wasm_runtime_lookup_function(inst, argv[2]);
        if (!func) {
            printf("<<SKIPPED: function not found>>\n");
            continue;
        }
        tag_buf = (uint32_t) wasm_runtime_module_dup_data(inst, tag, strlen(tag) + 1);
        rec_buf = (uint32_t) wasm_runtime_module_dup_data(inst, line, strlen(line) + 1);
        args[0] = tag_buf;
        args[1] = (uint32_t) strlen(tag);
        args[2] = (uint32_t) (1722500000 + i++);
        args[3] = 0;
        args[4] = rec_buf;
        args[5] = (uint32_t) strlen(line);
        if (!wasm_runtime_call_wasm(env, func, 6, args)) {
            printf("<<SKIPPED: %s>>\n", wasm_runtime_get_exception(inst));
            wasm_runtime_clear_exception(inst);
        }
        else if (!wasm_runtime_validate_app_str_addr(inst, args[0])) {
            printf("<<SKIPPED: returned value is invalid>>\n");
        }
        else {
            char *copy = strdup(wasm_runtime_addr_app_to_native(inst, args[0]));
            printf("%s\n", copy);
            free(copy);
        }
        if (tag_buf) {
            wasm_runtime_module_free(inst, tag_buf);
        }
        if (rec_buf) {
            wasm_runtime_module_free(inst, rec_buf);
        }
    }
    free(line);
    wasm_runtime_destroy_exec_env(env);
    wasm_runtime_deinstantiate(inst);
    wasm_runtime_unload(module);
    wasm_runtime_destroy();
    free(bytes);
    return 0;
}
