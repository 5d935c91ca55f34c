/*  zb.h - constants shared by every zbridge program.
    The wire format these constants describe is specified in docs/PROTOCOL.md. */
#ifndef ZB_H_INCLUDED
#define ZB_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifndef ZB_VERSION
#define ZB_VERSION "0.0.0"
#endif

#define ZB_DEFAULT_INGEST   "tcp://127.0.0.1:5555"
#define ZB_DEFAULT_PUBLISH  "tcp://127.0.0.1:5556"
#define ZB_DEFAULT_CONTROL  "tcp://127.0.0.1:5557"
#define ZB_DEFAULT_ACCOUNT  "000000000000"
#define ZB_DEFAULT_REGION   "local"

#define ZB_MAX_DETAIL_TYPE      128             //  bytes, EventBridge's limit
#define ZB_MAX_SOURCE           256             //  bytes
#define ZB_DEFAULT_MAX_EVENT    (256 * 1024)    //  packed envelope, bytes
#define ZB_DEFAULT_MAX_ENTRIES  100             //  entries per PUT request
#define ZB_MAX_DEPTH            32              //  nesting levels in one entry (msgpack-c's own limit)
#define ZB_MAX_CORRELATION      255             //  bytes of a correlation id
#define ZB_HEADER_SIZE          16              //  publish frame 2: seq + topic_seq, big-endian

//  Topics that start with this byte are reserved for the bus itself
//  (heartbeats, rule topics); a detail-type may not start with it.
#define ZB_RESERVED_PREFIX      '$'
#define ZB_RULE_TOPIC_PREFIX    "$rule/"        //  a broker rule's topic: "$rule/NAME"
#define ZB_RULE_NAME_MAX        64              //  characters of a rule name (EventBridge's limit)

//  Protocol command and status frames
#define ZB_CMD_PUT      "PUT"
#define ZB_CMD_PING     "PING"
#define ZB_CMD_STATS    "STATS"
#define ZB_STATUS_OK    "OK"
#define ZB_STATUS_ERROR "ERROR"

//  A string view into a buffer we do not own (msgpack zone, zmq message).
typedef struct {
    const char *ptr;
    size_t len;
} zb_str_t;

#define ZB_STR(lit) ((zb_str_t) { (lit), sizeof (lit) - 1 })

#endif
