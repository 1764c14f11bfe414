/*
 * fuzz: random system calls with random arguments.
 *
 *   fuzz SEED COUNT
 *
 * Every call must come back with an error or a success; the kernel must
 * survive all of them. The domain keeps itself alive: it never deletes,
 * revokes or moves its own root CNode, VSpace, dispatcher or the loader's
 * slots (its code and stack), never blocks (receives are non-blocking, no
 * calls), and prints only from kernel addresses (which must fail). Anything
 * else goes. At the end it prints how often each error came back.
 */
#include <atoll/lib.h>

static uint64_t state;

static uint64_t rnd(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

/* A slot argument: mostly small (where things are), sometimes anything. */
static uint64_t slot_arg(void)
{
    switch (rnd() % 10) {
    case 0: return rnd();
    case 1: case 2: return rnd() % 5000;
    default: return rnd() % 48;
    }
}

static bool vital(uint64_t s)
{
    return s == SLOT_ROOT_CNODE || s == SLOT_PML4 || s == SLOT_DISPATCHER || s == SLOT_STARTUP ||
           s >= SLOT_LOADER_FIRST;
}

static uint64_t value_arg(void)
{
    static const uint64_t edges[] = { 0, 1, 4096, 4095, 1ull << 21, 1ull << 30, 1ull << 47, ~0ull, 1ull << 63,
                                      0xffff800000000000ull, USER_HEAP_BASE, USER_MAP_BASE, USER_STACK_TOP - 4096 };
    return rnd() % 3 ? edges[rnd() % ARRAY_SIZE(edges)] : rnd();
}

static uint64_t pointer_arg(void *local)
{
    switch (rnd() % 4) {
    case 0: return 0xffffffff80200000ull + (rnd() % 65536);
    case 1: return rnd();
    case 2: return USER_STARTUP_VA;
    default: return (uint64_t)local;
    }
}

static uint64_t number(const char *s)
{
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (uint64_t)(*s++ - '0');
    return v;
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, count = 10000;
    if (argc > 1)
        seed = number(argv[1]);
    if (argc > 2)
        count = number(argv[2]);
    state = seed * 0x9e3779b97f4a7c15ull + 1;
    unsigned core = startup()->core_id;
    static uint64_t hist[ERR__COUNT + 1];
    uint8_t local[64];
    for (uint64_t i = 0; i < count; i++) {
        struct syscall_regs r = { .rax = rnd() % (SYS_COUNT + 2), .rdi = slot_arg(), .rsi = value_arg(),
                                  .rdx = value_arg(), .r10 = value_arg(), .r8 = value_arg(), .r9 = value_arg() };
        switch (r.rax) {
        case SYS_EXIT:
            continue;
        case SYS_YIELD:
            if (rnd() % 16)
                continue;   /* harmless, and each may sleep until the next tick */
            break;
        case SYS_PRINT:
            r.rdi = 0xffffffff80200000ull;   /* must fail, prints nothing */
            break;
        case SYS_CAP_DELETE:
        case SYS_CAP_REVOKE:
        case SYS_UNMAP:
            if (vital(r.rdi))
                continue;
            break;
        case SYS_CAP_MOVE:
            r.rsi = slot_arg();
            if (vital(r.rdi) || vital(r.rsi))
                continue;
            break;
        case SYS_CAP_COPY:
        case SYS_CAP_MINT:
            r.rsi = slot_arg();
            break;
        case SYS_CAP_RETYPE:
            r.rdi = rnd() % 2 ? SLOT_RAM : slot_arg();
            r.rsi = rnd() % (CAP_TYPE_COUNT + 1);
            r.r9 = slot_arg();
            if (vital(r.r9))
                continue;
            break;
        case SYS_MAP:
            r.rdi = rnd() % 2 ? SLOT_PML4 : slot_arg();
            r.rsi = rnd() % 2 ? USER_MAP_BASE + (rnd() % 4096) * 4096 : value_arg();
            r.rdx = slot_arg();
            r.r10 = rnd() % 4;
            break;
        case SYS_LMP_RECV:
            r.rsi = LMP_RECV_NONBLOCK;
            break;
        case SYS_LMP_CALL:
            continue;   /* would wait for a reply nobody sends */
        case SYS_CAP_IDENTIFY:
        case SYS_DOMAIN_INFO:
        case SYS_CORE_INFO:
            r.rsi = pointer_arg(local);
            if (r.rax == SYS_CORE_INFO)
                r.rdi = r.rsi;
            break;
        case SYS_SPAWN:
            r.rsi = pointer_arg(local);
            r.rdx %= 300;
            break;
        default:
            break;
        }
        syscall_raw(&r);
        hist[r.rax < ERR__COUNT ? r.rax : ERR__COUNT]++;
    }
    printf("fuzz: %llu calls on core %u (seed %llu):", (unsigned long long)count, core,
           (unsigned long long)seed);
    for (unsigned e = 0; e <= ERR__COUNT; e++)
        if (hist[e])
            printf(" %s=%llu", e < ERR__COUNT ? err_name((errval_t)e) : "OTHER", (unsigned long long)hist[e]);
    printf("\nfuzz: done\n");
    return 0;
}
