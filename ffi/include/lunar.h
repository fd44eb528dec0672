/*
 * lunar.h — liblunar, the C library of the lunar storage target.
 *
 * Two services:
 *
 *  1. A control client: lunar_rpc_call() sends one JSON-RPC 2.0 request to lunard over its
 *     unix socket (one JSON object per line) and returns the result as JSON text.
 *
 *  2. Host-side map resolution: given a volume layout as JSON, in the schema of the RPC's
 *     "layout" field,
 *         {"linear": {"device": "name", "offset_bytes": N, "size_bytes": N}}
 *         {"concat": [LAYOUT, ...]}
 *     turn a virtual byte range of the volume into physical extents of its devices.
 *     "offset_bytes" defaults to 0; "size_bytes" is required here (volume_list results always
 *     carry it). Devices are numbered in the order their names first appear in the JSON
 *     (depth first, members in order); lunar_map_device_name() gives the names back.
 *
 * Conventions:
 *  - Functions that can fail return an int status: LUNAR_OK (0) or a negative LUNAR_ERR_*.
 *  - Strings returned through char ** slots are owned by the caller and freed with
 *    lunar_string_free(). A slot that receives nothing is set to NULL.
 *  - All functions are thread-safe; a lunar_map is immutable and may be shared between
 *    threads until lunar_map_free().
 *  - No function aborts or unwinds on bad input; an internal defect is LUNAR_ERR_INTERNAL.
 *
 * Link with -llunar (liblunar.so or liblunar.a; the static library also needs
 * -lpthread -ldl -lm).
 */
#ifndef LUNAR_H
#define LUNAR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes ------------------------------------------------------------------------ */

/** Success. */
#define LUNAR_OK 0
/** A required pointer was NULL, a string was not UTF-8, or params_json was not JSON. */
#define LUNAR_ERR_INVALID_ARGUMENT (-1)
/** The daemon's socket could not be reached (is lunard running?). */
#define LUNAR_ERR_CONNECT (-2)
/** Reading from or writing to the daemon failed after connecting. */
#define LUNAR_ERR_IO (-3)
/** The daemon's answer was not a JSON-RPC 2.0 response to the request. */
#define LUNAR_ERR_PROTOCOL (-4)
/** The daemon answered with a JSON-RPC error (message in *error_message). */
#define LUNAR_ERR_RPC (-5)
/** The layout JSON is malformed or does not describe a usable volume. */
#define LUNAR_ERR_LAYOUT (-6)
/** The range is not inside the volume. */
#define LUNAR_ERR_OUT_OF_RANGE (-7)
/** More extents than the caller's array holds; *count says how many are needed. */
#define LUNAR_ERR_BUFFER_TOO_SMALL (-8)
/** A defect inside the library. Nothing was written. */
#define LUNAR_ERR_INTERNAL (-9)

/* ---- Strings ----------------------------------------------------------------------------- */

/** Free a string returned by liblunar. NULL is ignored. */
void lunar_string_free(char *text);

/* ---- Control client ---------------------------------------------------------------------- */

/**
 * Call `method` (e.g. "volume_list") on the lunard listening on the unix socket `socket_path`
 * and wait for its answer. Each call uses its own connection.
 *
 * params_json:   JSON text of the parameters, e.g. "{\"name\":\"vol0\"}"; NULL sends {}.
 * result_json:   on LUNAR_OK, receives the JSON text of the result. May be NULL.
 * error_message: on any error, receives a sentence saying what went wrong (the daemon's own
 *                message for LUNAR_ERR_RPC). May be NULL.
 *
 * Returns LUNAR_OK, LUNAR_ERR_INVALID_ARGUMENT, LUNAR_ERR_CONNECT, LUNAR_ERR_IO,
 * LUNAR_ERR_PROTOCOL or LUNAR_ERR_RPC. There is no timeout: the call returns when the daemon
 * answers or closes the connection.
 */
int lunar_rpc_call(const char *socket_path, const char *method, const char *params_json,
                   char **result_json, char **error_message);

/**
 * lunar_rpc_call(), and on LUNAR_ERR_RPC *rpc_error_code receives the JSON-RPC error code
 * (-32602 invalid params, 1001 not found, ...; 0 for every other outcome). rpc_error_code may
 * be NULL.
 */
int lunar_rpc_call_ex(const char *socket_path, const char *method, const char *params_json,
                      char **result_json, char **error_message, int64_t *rpc_error_code);

/* ---- Host-side map resolution ------------------------------------------------------------ */

/** One physical piece of a resolved range. */
struct lunar_extent {
    /** Index of the device: see lunar_map_device_name(). */
    uint32_t device;
    /** Always 0. */
    uint32_t reserved;
    /** Where the piece starts on the device, in bytes. */
    uint64_t device_offset_bytes;
    /** Length of the piece in bytes; never 0. */
    uint64_t len_bytes;
    /** Where the piece starts within the resolved range (0 for the first piece). */
    uint64_t request_offset_bytes;
};

/** A parsed, validated layout. Opaque. */
typedef struct lunar_map lunar_map;

/**
 * Parse and validate a layout. On LUNAR_OK, *map_out is a handle to free with lunar_map_free().
 * On LUNAR_ERR_LAYOUT or LUNAR_ERR_INVALID_ARGUMENT, *map_out is NULL and *error_message (if
 * error_message is not NULL) says what is wrong and where, e.g.
 * "layout is not usable: layout node root[1]: concat has no members".
 */
int lunar_map_parse(const char *layout_json, lunar_map **map_out, char **error_message);

/** Free a map. NULL is ignored. */
void lunar_map_free(lunar_map *map);

/** Size of the volume in bytes (0 for NULL). */
uint64_t lunar_map_size_bytes(const lunar_map *map);

/** Number of distinct devices the layout names (0 for NULL). */
size_t lunar_map_device_count(const lunar_map *map);

/**
 * Name of device `index`, owned by the map and valid until lunar_map_free(); NULL if `index`
 * is not below lunar_map_device_count().
 */
const char *lunar_map_device_name(const lunar_map *map, size_t index);

/**
 * Resolve the virtual range [offset_bytes, offset_bytes + len_bytes) into physical extents,
 * in range order: the pieces are contiguous in the range and each lies inside one "linear"
 * member. `out` has room for `cap` extents (it may be NULL when cap is 0).
 *
 * LUNAR_OK:                   out[0 .. *count) holds the extents (*count is 0 for len 0).
 * LUNAR_ERR_BUFFER_TOO_SMALL: nothing is written to out; *count is the number needed.
 * LUNAR_ERR_OUT_OF_RANGE:     the range ends past the volume (or overflows); *count is 0.
 * LUNAR_ERR_INVALID_ARGUMENT: map or count is NULL, or out is NULL with cap > 0.
 */
int lunar_map_plan(const lunar_map *map, uint64_t offset_bytes, uint64_t len_bytes,
                   struct lunar_extent *out, size_t cap, size_t *count);

/**
 * One-shot form: parse `layout_json` as lunar_map_parse() does, resolve as lunar_map_plan()
 * does, and free the map. Device indices follow the first-appearance order described at the
 * top of this file. Returns LUNAR_ERR_LAYOUT for a bad layout (use lunar_map_parse() to learn
 * why), otherwise as lunar_map_plan().
 */
int lunar_map_resolve(const char *layout_json, uint64_t offset_bytes, uint64_t len_bytes,
                      struct lunar_extent *out, size_t cap, size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* LUNAR_H */
