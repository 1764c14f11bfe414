/*
 * Memory and string routines shared by the CPU driver and user domains
 * (common/string.c). Freestanding: only <stddef.h>. The names and meanings
 * are the C library's, so code reads the same on either side.
 */
#ifndef ATOLL_STRING_H
#define ATOLL_STRING_H

#include <stddef.h>

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);      /* must not overlap */
void *memmove(void *d, const void *s, size_t n);     /* may overlap */
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strstr(const char *haystack, const char *needle);

#endif
