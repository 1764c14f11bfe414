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
#ifndef ATOLL_ABI_ERRORS_H
#define ATOLL_ABI_ERRORS_H

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
    X(ERR_NOT_SUPPORTED,       "not supported on this machine")               \
    X(ERR_BAD_SYSCALL,         "no such system call")                         \
    X(ERR_CAP_SLOT_RANGE,      "capability slot outside the CNode")           \
    X(ERR_CAP_EMPTY,           "capability slot is empty")                    \
    X(ERR_CAP_OCCUPIED,        "destination slot is not empty")               \
    X(ERR_CAP_TYPE,            "wrong capability type for this operation")    \
    X(ERR_CAP_RIGHTS,          "capability lacks the rights for this")        \
    X(ERR_CAP_HAS_CHILDREN,    "capability has descendants: revoke first")    \
    X(ERR_CAP_SAME_SLOT,       "source and destination are the same slot")    \
    X(ERR_RETYPE_SIZE,         "retype: object size invalid for the type")    \
    X(ERR_RETYPE_OVERFLOW,     "retype: objects do not fit in the source")    \
    X(ERR_BAD_ADDRESS,         "address is not a valid user address")         \
    X(ERR_MAP_PRESENT,         "page-table entry already present")            \
    X(ERR_MAP_NO_TABLE,        "an intermediate page table is missing")       \
    X(ERR_NOT_MAPPED,          "nothing mapped there")                        \
    X(ERR_ALREADY_MAPPED,      "capability is already mapped elsewhere")      \
    X(ERR_WOULD_BLOCK,         "receiver not ready: try again")               \
    X(ERR_NO_RECV_SLOT,        "receiver takes no capability now")            \
    X(ERR_PORT_RANGE,          "I/O port outside the capability's range")    \
    X(ERR_DISP_STATE,          "dispatcher is in the wrong state")            \
    X(ERR_ELF_MAGIC,           "ELF: not an ELF file")                        \
    X(ERR_ELF_CLASS,           "ELF: not a 64-bit little-endian x86-64 file") \
    X(ERR_ELF_TYPE,            "ELF: not an executable (ET_EXEC)")            \
    X(ERR_ELF_HEADER,          "ELF: header field out of range")              \
    X(ERR_ELF_SEGMENT,         "ELF: segment out of bounds or overlapping")   \
    X(ERR_ELF_ENTRY,           "ELF: entry point outside executable segments") \
    X(ERR_MSG_TOO_LONG,        "message longer than the channel or buffer takes") \
    X(ERR_URPC_CORRUPT,        "URPC: peer wrote an impossible slot or ack")  \
    X(ERR_URPC_BROKEN,         "URPC: channel broken by earlier corruption")  \
    X(ERR_MSG_UNKNOWN,         "message: unknown type for this interface")    \
    X(ERR_MSG_MALFORMED,       "message: arguments do not decode")            \
    X(ERR_NO_ROUTE,            "no channel leads to that core")               \
    X(ERR_NAME_TAKEN,          "name already registered")                     \
    X(ERR_CAP_NOT_TRANSFERABLE, "capability type cannot move between cores") \
    X(ERR_CHAN_CLOSED,         "channel closed: the peer hung up or ended")   \
    X(ERR_QUOTA,               "over this domain's limit (docs/limits.md)")   \
    X(ERR_NOT_PERMITTED,       "not permitted for this domain")               \
    X(ERR_CORE_DOWN,           "that core is not running")                    \
    X(ERR_DOMAIN_ENDED,        "the domain has ended")                        \
    X(ERR_NO_SUCH_CORE,        "no such core on this machine")                \
    X(ERR_NO_SUCH_NODE,        "no such NUMA node on this machine")           \
    X(ERR_DEADLOCK,            "every thread of the domain waits: none can wake") \
    X(ERR_STORE_KEY,           "store: key empty, too long or not printable") \
    X(ERR_STORE_VALUE,         "store: value longer than the store takes")    \
    X(ERR_CAS_FAILED,          "compare-and-swap: key does not hold the expected value") \
    X(ERR_NO_LEADER,           "store: the leader cannot be reached")         \
    X(ERR_NOT_LEADER,          "store: writes go to the leader (ask `leader`)") \
    X(ERR_CAP_REMOTE,          "capability has copies on other cores: the monitors must agree") \
    X(ERR_CAP_FOREIGN,         "the object belongs to another core's kernel")  \
    X(ERR_CAP_LOCKED,          "the object is being revoked, retyped or moved: try again") \
    X(ERR_RESTARTED,           "the server was restarted during the call: it may or may not have been done")

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
