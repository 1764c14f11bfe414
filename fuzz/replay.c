/*
 * Replays a fuzz target's seed corpus (or the files and folders named on
 * the command line) through its harness, each input in a heap block of
 * exactly its size: built with ASan and UBSan, so any out-of-bounds read,
 * overflow or undefined behaviour fails it. make test runs it with no
 * arguments (tests/test_host_units.py, from the repository root); to
 * reproduce a crash that make fuzz found:
 *
 *     build/host/fuzz/replay_elf build/fuzz/out/elf/default/crashes/id:000000*
 */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"

#ifndef FUZZ_NAME
#error "build with -DFUZZ_NAME=\"target\""
#endif

static long inputs, accepted, bytes;

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf)
        return 1;
    /* Exactly its size (at least one byte to allocate). */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    accepted += fuzz_one(exact, n) == 1;
    free(exact);
    inputs++;
    bytes += (long)n;
    return 0;
}

static int replay(const char *path)
{
    struct stat st;
    if (stat(path, &st)) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path);
    struct dirent **names;
    int n = scandir(path, &names, 0, alphasort);   /* sorted: the same order every run */
    if (n < 0) {
        perror(path);
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, names[i]->d_name);
            bad |= replay(sub);
        }
        free(names[i]);
    }
    free(names);
    return bad;
}

#ifdef FUZZ_MAKE_CORPUS
int fuzz_make_corpus(const char *dir);   /* the harness's own seed maker */
#endif

int main(int argc, char **argv)
{
#ifdef FUZZ_MAKE_CORPUS
    if (argc == 3 && !strcmp(argv[1], "--make-corpus"))
        return fuzz_make_corpus(argv[2]);
#endif
    int bad = 0;
    if (argc < 2)
        bad = replay("fuzz/corpus/" FUZZ_NAME);
    for (int i = 1; i < argc; i++)
        bad |= replay(argv[i]);
    printf("replay_%s: %ld inputs, %ld accepted, %ld bytes\n", FUZZ_NAME, inputs, accepted, bytes);
    if (!inputs) {
        fprintf(stderr, "replay_%s: no inputs (run from the repository root)\n", FUZZ_NAME);
        return 1;
    }
    return bad;
}
