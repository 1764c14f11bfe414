/*
 * hello: the smallest useful user program. Greets with its domain id, core
 * and arguments, exercises malloc (small and large blocks, calloc, realloc,
 * free, checking every byte), and exits 0 when all is well (1 if not).
 *
 *   module line: hello [words...]
 */
#include <atoll/lib.h>

static int failures;

static void expect(int ok, const char *what)
{
    if (!ok) {
        printf("hello: FAILED: %s\n", what);
        failures++;
    }
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 31);
}

static int intact(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 31))
            return 0;
    return 1;
}

static void test_malloc(void)
{
    static const size_t sizes[] = { 1, 8, 16, 24, 100, 1000, 4096, 10000, 70000, 300000, 3 << 20 };
    unsigned char *blocks[ARRAY_SIZE(sizes)];
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        blocks[i] = malloc(sizes[i]);
        expect(blocks[i] != NULL, "malloc returned NULL");
        expect(((uintptr_t)blocks[i] & 15) == 0, "malloc: 16-byte alignment");
        if (blocks[i])
            fill(blocks[i], sizes[i], (unsigned)i);
    }
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
        if (blocks[i])
            expect(intact(blocks[i], sizes[i], (unsigned)i), "malloc: a block was overwritten");
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i += 2)
        free(blocks[i]);

    unsigned *z = calloc(1000, sizeof *z);
    expect(z != NULL, "calloc returned NULL");
    if (z) {
        int zero = 1;
        for (int i = 0; i < 1000; i++)
            zero &= z[i] == 0;
        expect(zero, "calloc: memory not zeroed");
    }
    unsigned char *r = malloc(10);
    if (r) {
        fill(r, 10, 7);
        r = realloc(r, 50000);
        expect(r && intact(r, 10, 7), "realloc lost the contents");
    }
    free(r);
    free(z);
    for (size_t i = 1; i < ARRAY_SIZE(sizes); i += 2) {
        if (blocks[i])
            expect(intact(blocks[i], sizes[i], (unsigned)i), "malloc: a block was overwritten");
        free(blocks[i]);
    }
    const char *bad = heap_check(malloc_heap());
    expect(bad == NULL, bad ? bad : "");
    struct heap *h = malloc_heap();
    expect(h->chunks_in_use == 0, "malloc: blocks left in use after freeing all");
}

int main(int argc, char **argv)
{
    const struct startup_info *si = startup();
    printf("hello from domain %u on core %u", si->domain_id, si->core_id);
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    test_malloc();
    struct heap *h = malloc_heap();
    printf("hello: malloc %s (%zu KiB from the system, %u region%s); %s exits %d\n",
           failures ? "FAILED" : "ok", h->bytes_from_core / 1024, h->regions, h->regions == 1 ? "" : "s",
           argv[0], failures ? 1 : 0);
    return failures ? 1 : 0;
}
