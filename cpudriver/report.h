/*
 * Machine-readable events: one console line per event, "@atoll " followed by
 * one JSON object with an "event" member. docs/boot-report.md lists them.
 *
 *   struct event e;
 *   event_begin(&e, "core_up");
 *   event_u64(&e, "core", 3);
 *   event_end(&e);          // prints: @atoll {"event":"core_up","core":3}
 */
#ifndef ATOLL_REPORT_H
#define ATOLL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event {
    char buf[2040];   /* one console line (console.c holds 2048) */
    size_t len;
    bool overflow;
};

void event_begin(struct event *e, const char *name);
void event_u64(struct event *e, const char *key, uint64_t v);
void event_hex(struct event *e, const char *key, uint64_t v);  /* "0x..." string */
void event_bool(struct event *e, const char *key, bool v);
void event_str(struct event *e, const char *key, const char *s);
void event_strn(struct event *e, const char *key, const char *s, size_t n);
void event_fixed3(struct event *e, const char *key, uint64_t thousandths); /* 12.345 */
/* Arrays: event_array_begin, then event_elem_u64 / nested arrays, then _end. */
void event_array_begin(struct event *e, const char *key); /* key NULL: nested */
void event_elem_u64(struct event *e, uint64_t v);
void event_array_end(struct event *e);
void event_end(struct event *e);

#endif
