/*
 * badboy: tries what a domain must not be able to do.
 *
 *   badboy checks      every forbidden system call: each must fail with its
 *                      own error; prints one line per check and a summary
 *   badboy MODE        one forbidden instruction or access that must get the
 *                      domain stopped (the kernel reports it): kernel-read,
 *                      kernel-write, null, unmapped, cli, hlt, cr3, wrmsr,
 *                      port, ud2, div0, exec-stack, write-code
 */
#include <atoll/lib.h>

static int checks, unexpected;

static void expect(const char *what, errval_t got, errval_t want)
{
    checks++;
    if (got != want)
        unexpected++;
    printf("check %-28s %-22s %s\n", what, err_name(got), got == want ? "ok" : "UNEXPECTED");
}

static uint64_t raw_syscall(uint64_t nr, uint64_t a, uint64_t b)
{
    struct syscall_regs r = { .rax = nr, .rdi = a, .rsi = b };
    syscall_raw(&r);
    return r.rax;
}

static int run_checks(void)
{
    capslot_t s, frame, ro;
    struct cap_identity id;
    uint32_t v;
    if (slot_alloc(&s) || frame_alloc(4096, &frame) || slot_alloc(&ro))
        return printf("badboy: no slots or memory\n"), 1;
    expect("retype from an empty slot", sys_cap_retype(s, CAP_FRAME, 4096, 0, 1, s), ERR_CAP_EMPTY);
    expect("slot outside the CNode", sys_cap_retype(5000, CAP_FRAME, 4096, 0, 1, s), ERR_CAP_SLOT_RANGE);
    expect("retype a Frame (not RAM)", sys_cap_retype(frame, CAP_FRAME, 4096, 0, 1, s), ERR_CAP_TYPE);
    expect("retype into an occupied slot", sys_cap_retype(SLOT_RAM, CAP_FRAME, 4096, 0, 1, SLOT_PML4),
           ERR_CAP_OCCUPIED);
    expect("retype past the RAM's end", sys_cap_retype(SLOT_RAM, CAP_FRAME, 4096, 1ull << 40, 1, s),
           ERR_RETYPE_OVERFLOW);
    expect("retype a huge count", sys_cap_retype(SLOT_RAM, CAP_FRAME, 1ull << 62, 0, 4, s), ERR_RETYPE_OVERFLOW);
    expect("retype device memory from RAM", sys_cap_retype(SLOT_RAM, CAP_DEVFRAME, 4096, 0, 1, s), ERR_CAP_TYPE);
    expect("retype a 3 KiB frame", sys_cap_retype(SLOT_RAM, CAP_FRAME, 3072, 0, 1, s), ERR_RETYPE_SIZE);
    expect("copy into an occupied slot", sys_cap_copy(frame, SLOT_RAM), ERR_CAP_OCCUPIED);
    expect("map RAM as if a frame", sys_map(SLOT_PML4, USER_MAP_BASE + (64ull << 20), SLOT_RAM, 0, 0), ERR_CAP_TYPE);
    expect("map into the kernel half", sys_map(SLOT_PML4, 0xffff800000000000ull, frame, 0, 0), ERR_BAD_ADDRESS);
    expect("map at a misaligned address", sys_map(SLOT_PML4, USER_MAP_BASE + 123, frame, 0, 0), ERR_BAD_ALIGNMENT);
    expect("map over a present page", sys_map(SLOT_PML4, USER_STARTUP_VA, frame, 0, 0), ERR_MAP_PRESENT);
    expect("map with a non-PML4", sys_map(frame, USER_MAP_BASE, frame, 0, 0), ERR_CAP_TYPE);
    expect("mint a read-only copy", sys_cap_mint(frame, ro, CAP_RIGHT_READ, 0, 0, 0), ERR_OK);
    expect("map read-only frame writable", vspace_map(USER_MAP_BASE + (80ull << 20), ro, MAP_WRITE), ERR_CAP_RIGHTS);
    expect("map read-only frame executable", vspace_map(USER_MAP_BASE + (80ull << 20), ro, MAP_EXEC),
           ERR_CAP_RIGHTS);
    expect("unmap what is not mapped", sys_unmap(ro), ERR_NOT_MAPPED);
    expect("spawn without the Kernel cap", sys_spawn(SLOT_KERNEL, "hello", 5, SLOT_RAM, LMP_NO_CAP, 0),
           ERR_CAP_EMPTY);
    expect("spawn with a Frame as Kernel", sys_spawn(frame, "hello", 5, SLOT_RAM, LMP_NO_CAP, 0), ERR_CAP_TYPE);
    expect("poweroff without the Kernel cap", sys_poweroff(SLOT_KERNEL, 0), ERR_CAP_EMPTY);
    struct cap_identity any_frame = { .type = CAP_FRAME, .rights = CAP_RIGHTS_ALL, .base = 0, .bytes = 4096 };
    expect("re-create a capability without the Kernel cap", sys_cap_create(SLOT_KERNEL, &any_frame, s),
           ERR_CAP_EMPTY);
    expect("re-create with a Frame as Kernel", sys_cap_create(frame, &any_frame, s), ERR_CAP_TYPE);
    expect("notify with a Frame", sys_notify(frame), ERR_CAP_TYPE);
    expect("notify through an empty slot", sys_notify(s), ERR_CAP_EMPTY);
    uint64_t gen = sys_notify_gen(), gen2 = 0;
    expect("wait with a stale token returns at once", sys_notify_wait(gen + 1, 0, &gen2), ERR_OK);
    /* Any notification to this core wakes every waiter (the monitors'
     * traffic too): try many short waits, each until the next tick, so that
     * one quiet tick is enough. */
    errval_t waited = ERR_OK;
    for (int i = 0; i < 200 && waited == ERR_OK; i++)
        waited = sys_notify_wait(gen2, 1, &gen2);
    expect("wait times out", waited, ERR_TIMEOUT);
    expect("wait with a huge timeout and a stale token", sys_notify_wait(~0ull - 5, ~0ull, 0), ERR_OK);
    expect("port I/O without a capability", sys_io_in(SLOT_IO, 0x60, 1, &v), ERR_CAP_EMPTY);
    expect("port I/O with a Frame", sys_io_in(frame, 0x60, 1, &v), ERR_CAP_TYPE);
    expect("send on a Frame", sys_lmp_send(frame, 0, 0, 0, 0, LMP_NO_CAP), ERR_CAP_TYPE);
    expect("print from a kernel address", sys_print((const char *)0xffffffff80200000ull, 16), ERR_BAD_ADDRESS);
    expect("print from an unmapped address", sys_print((const char *)0x10000, 16), ERR_BAD_ADDRESS);
    expect("print an absurd length", sys_print("x", 1ull << 40), ERR_INVALID_ARG);
    expect("identify into read-only memory", sys_cap_identify(SLOT_RAM, (struct cap_identity *)USER_STARTUP_VA),
           ERR_BAD_ADDRESS);
    expect("identify into kernel memory",
           sys_cap_identify(SLOT_RAM, (struct cap_identity *)0xffffffff80200000ull), ERR_BAD_ADDRESS);
    expect("unknown system call", (errval_t)raw_syscall(9999, 0, 0), ERR_BAD_SYSCALL);
    expect("set an impossible priority", sys_set_priority(SLOT_DISPATCHER, 0), ERR_INVALID_ARG);
    expect("raise its own priority", sys_set_priority(SLOT_DISPATCHER, 100), ERR_CAP_RIGHTS);
    expect("lower its own priority", sys_set_priority(SLOT_DISPATCHER, 5), ERR_OK);
    expect("identify an empty slot", sys_cap_identify(s, &id), ERR_CAP_EMPTY);
    expect("delete an empty slot", sys_cap_delete(s), ERR_CAP_EMPTY);
    expect("move onto itself", sys_cap_move(frame, frame), ERR_CAP_SAME_SLOT);
    {
        /* A type with high bits set must not pass as the low 32 bits. */
        struct syscall_regs r = { .rax = SYS_CAP_RETYPE, .rdi = SLOT_RAM, .rsi = (1ull << 32) | CAP_DISPATCHER,
                                  .r8 = 1, .r9 = s };
        syscall_raw(&r);
        expect("retype a type out of range", (errval_t)r.rax, ERR_CAP_TYPE);
    }
    {
        /* NT set in RFLAGS across a system call: the kernel must not try a
         * task return on its way back. */
        struct syscall_regs r = { .rax = SYS_YIELD };
        __asm__ volatile("pushfq; orq $0x4000, (%%rsp); popfq" ::: "memory", "cc");
        syscall_raw(&r);
        expect("system call with NT set", (errval_t)r.rax, ERR_OK);
    }
    printf("badboy: %d checks, %d unexpected\n", checks, unexpected);
    return unexpected ? 1 : 0;
}


static void (*volatile jump)(void);

int main(int argc, char **argv)
{
    if (argc < 2)
        return printf("usage: badboy checks|MODE\n"), 2;
    const char *m = argv[1];
    printf("badboy: %s\n", m);
    stdout_flush();
    if (!strcmp(m, "checks"))
        return run_checks();
    volatile uint64_t *kernel = (volatile uint64_t *)0xffffffff80200000ull;
    if (!strcmp(m, "kernel-read"))
        return (int)*kernel;
    if (!strcmp(m, "kernel-write"))
        *kernel = 1;
    else if (!strcmp(m, "null"))
        return (int)*(volatile uint64_t *)0;
    else if (!strcmp(m, "unmapped"))   /* where another domain's heap would be */
        return (int)*(volatile uint64_t *)(USER_HEAP_BASE + (512ull << 20));
    else if (!strcmp(m, "cli"))
        __asm__ volatile("cli");
    else if (!strcmp(m, "hlt"))
        __asm__ volatile("hlt");
    else if (!strcmp(m, "cr3"))
        __asm__ volatile("mov %0, %%cr3" ::"r"(0ull));
    else if (!strcmp(m, "wrmsr"))
        __asm__ volatile("wrmsr" ::"c"(0x1b), "a"(0), "d"(0));
    else if (!strcmp(m, "port"))
        __asm__ volatile("outb %%al, $0x64" ::"a"(0xfe));   /* would reset the machine */
    else if (!strcmp(m, "compat")) {
        /* Far jump to the 32-bit code selector: it is kernel-only. */
        static const struct { uint32_t off; uint16_t sel; } __attribute__((packed)) far = { 0x1000, 0x1b };
        __asm__ volatile("ljmpl *%0" ::"m"(far));
    } else if (!strcmp(m, "edge-syscall")) {
        /* `syscall` in the last bytes below the canonical hole: it would
         * return to 0x800000000000, which faults in ring 0 on real CPUs. */
        capslot_t f;
        uint64_t va = USER_MAX - 4096;
        if (frame_alloc(4096, &f) || vspace_map(va, f, MAP_EXEC))
            return printf("badboy: cannot map the last page\n"), 4;
        printf("badboy: mapped the last page; the kernel must refuse to return past it\n");
        stdout_flush();
        /* The page is not writable here: ask for a writable alias. */
        uint8_t *alias;
        capslot_t f2;
        if (slot_alloc(&f2) || sys_cap_copy(f, f2) || vspace_map_frame(f2, MAP_WRITE, (void **)&alias))
            return printf("badboy: no alias\n"), 4;
        alias[4094] = 0x0f;   /* syscall */
        alias[4095] = 0x05;
        jump = (void (*)(void))(va + 4094);
        struct syscall_regs r = { .rax = SYS_YIELD };
        (void)r;
        __asm__ volatile("movq $0, %%rax; jmp *%0" ::"r"(jump) : "rax", "rcx", "r11", "memory");
    } else if (!strcmp(m, "ud2"))
        __asm__ volatile("ud2");
    else if (!strcmp(m, "div0"))   /* in assembly: gcc turns 1/x into a compare */
        __asm__ volatile("xorl %%edx, %%edx\n\tdivl %1" ::"a"(1), "r"(0) : "rdx"); else if (!strcmp(m, "exec-stack")) {
        uint8_t code[16] = { 0xc3 };   /* ret, on the (non-executable) stack */
        jump = (void (*)(void))code;
        jump();
    } else if (!strcmp(m, "write-code")) {
        *(volatile uint8_t *)(uintptr_t)main = 0xcc;
    } else {
        return printf("badboy: unknown mode %s\n", m), 2;
    }
    printf("badboy: %s did not fault\n", m);
    return 3;
}
