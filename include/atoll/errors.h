/*
 * The one error type of Atoll, shared by the CPU driver, user space and host
 * tools. Every fallible function returns an errval_t; ERR_OK is zero so
 * `if (err)` reads naturally. Add new codes to ATOLL_ERRORS only: the enum and
 * the readable names are both generated from that one list, so they can never
 * disagree.
 *
 * This header includes nothing above it (only <stdint.h>), so both sides of
 * every interface can use it.
 */
#ifndef ATOLL_ERRORS_H
#define ATOLL_ERRORS_H

#include <stdint.h>

#define ATOLL_ERRORS(X)                                                       \
    X(ERR_OK,                  "no error")                                    \
    X(ERR_INVALID_ARG,         "invalid argument")                            \
    X(ERR_NO_MEMORY,           "out of memory")                               \
    X(ERR_NOT_FOUND,           "not found")                                   \
    X(ERR_TOO_MANY,            "more entries than the fixed table holds")     \
    X(ERR_TRUNCATED,           "structure extends past the end of its data")  \
    X(ERR_BAD_ALIGNMENT,       "misaligned structure")                        \
    X(ERR_BAD_CHECKSUM,        "checksum does not sum to zero")               \
    X(ERR_BAD_SIGNATURE,       "wrong signature")                             \
    X(ERR_BAD_LENGTH,          "length field is impossible")                  \
    X(ERR_BAD_VERSION,         "unsupported version or revision")             \
    X(ERR_OVERLAP,             "ranges overlap")                              \
    X(ERR_DUPLICATE,           "duplicate entry")                             \
    X(ERR_INCONSISTENT,        "tables disagree with each other")             \
    X(ERR_UNTERMINATED,        "string is not NUL-terminated")                \
    X(ERR_MB2_NO_END_TAG,      "multiboot2: no end tag")                      \
    X(ERR_MB2_NO_MMAP,         "multiboot2: no memory map tag")               \
    X(ERR_ACPI_NO_RSDP,        "ACPI: no RSDP")                               \
    X(ERR_ACPI_NO_MADT,        "ACPI: no MADT")                               \
    X(ERR_ACPI_UNMAPPED,       "ACPI: table lies outside mapped memory")      \
    X(ERR_ACPI_NO_ROOT,        "ACPI: RSDP names neither RSDT nor XSDT")      \
    X(ERR_TOPO_NO_CPUS,        "topology: MADT lists no enabled CPU")         \
    X(ERR_TOPO_NO_BOOT_CPU,    "topology: boot CPU not enabled in MADT")      \
    X(ERR_TIMEOUT,             "timed out")                                   \
    X(ERR_NOT_SUPPORTED,       "not supported on this machine")

typedef enum {
#define ATOLL_ERR_ENUM(name, text) name,
    ATOLL_ERRORS(ATOLL_ERR_ENUM)
#undef ATOLL_ERR_ENUM
    ERR__COUNT
} errval_t;

/* "ERR_TRUNCATED" */
static inline const char *err_name(errval_t e)
{
    static const char *const names[] = {
#define ATOLL_ERR_NAME(name, text) #name,
        ATOLL_ERRORS(ATOLL_ERR_NAME)
#undef ATOLL_ERR_NAME
    };
    return (unsigned)e < ERR__COUNT ? names[e] : "ERR_UNKNOWN";
}

/* "structure extends past the end of its data" */
static inline const char *err_text(errval_t e)
{
    static const char *const texts[] = {
#define ATOLL_ERR_TEXT(name, text) text,
        ATOLL_ERRORS(ATOLL_ERR_TEXT)
#undef ATOLL_ERR_TEXT
    };
    return (unsigned)e < ERR__COUNT ? texts[e] : "unknown error";
}

#endif
