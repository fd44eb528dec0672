/* Exercises liblunar through its header, as a C client would: map resolution, then one RPC
 * call against the socket given as argv[1]. Prints what it saw; the Rust test checks it. */
#include <stdio.h>
#include <string.h>

#include "lunar.h"

_Static_assert(sizeof(struct lunar_extent) == 32, "struct lunar_extent is 32 bytes");

static const char *LAYOUT =
    "{\"concat\":[{\"linear\":{\"device\":\"disk-a\",\"offset_bytes\":4096,\"size_bytes\":1000}},"
    "{\"linear\":{\"device\":\"disk-b\",\"size_bytes\":500}}]}";

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: smoke SOCKET\n");
        return 2;
    }

    lunar_map *map = NULL;
    char *error = NULL;
    int status = lunar_map_parse(LAYOUT, &map, &error);
    if (status != LUNAR_OK) {
        printf("parse failed %d: %s\n", status, error ? error : "?");
        lunar_string_free(error);
        return 1;
    }
    printf("size %llu devices %zu\n", (unsigned long long)lunar_map_size_bytes(map),
           lunar_map_device_count(map));

    size_t count = 0;
    status = lunar_map_plan(map, 900, 200, NULL, 0, &count);
    printf("ask status %d count %zu\n", status, count);

    struct lunar_extent extents[4];
    memset(extents, 0, sizeof extents);
    status = lunar_map_plan(map, 900, 200, extents, 4, &count);
    printf("plan status %d count %zu\n", status, count);
    for (size_t i = 0; i < count; i++) {
        printf("extent %s %llu %llu %llu\n", lunar_map_device_name(map, extents[i].device),
               (unsigned long long)extents[i].device_offset_bytes,
               (unsigned long long)extents[i].len_bytes,
               (unsigned long long)extents[i].request_offset_bytes);
    }
    lunar_map_free(map);

    status = lunar_map_parse("{\"concat\":[]}", &map, &error);
    printf("bad layout %d: %s\n", status, error);
    lunar_string_free(error);

    char *result = NULL;
    status = lunar_rpc_call(argv[1], "daemon_info", NULL, &result, &error);
    printf("rpc status %d result %s\n", status, result ? result : "(null)");
    lunar_string_free(result);
    lunar_string_free(error);

    int64_t code = 0;
    status = lunar_rpc_call_ex(argv[1], "volume_delete", "{\"name\":\"v\"}", &result, &error, &code);
    printf("rpc status %d code %lld error %s\n", status, (long long)code, error ? error : "(null)");
    lunar_string_free(result);
    lunar_string_free(error);
    return 0;
}
