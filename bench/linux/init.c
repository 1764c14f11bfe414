/* /init of the Linux benchmark guest (tools/bench builds the initramfs).
 *
 * Reads the kernel command line from /proc/cmdline:
 *   bench=boot,pingpong,unmap   the programs to run, in order (/bin/NAME)
 *   NAME.key=value              passed to /bin/NAME as the argument key=value
 * and runs each one with the console as its stdout; they print one
 * `@bench {json}` line per result. /init itself prints
 *   @bench {"event":"start","benchmark":"init","system":"linux",...}
 *   @bench {"event":"done","benchmark":NAME,"status":S,"wall_ns":T}  (after each program)
 *   @bench {"event":"error","benchmark":NAME,"reason":...}   (a program failed)
 *   @bench {"event":"end","benchmark":"init","status":S}
 * and then exits QEMU through isa-debug-exit (port 0xf4) with status S:
 * 0 when every program exited 0, 1 otherwise. Should that port be missing it
 * powers off (the runner then sees "no status").
 *
 * It never returns: the kernel panics when init exits. */
#define _GNU_SOURCE
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORDS 256
#define DEBUG_EXIT_PORT 0xf4

static void mount_fs(const char *src, const char *dir, const char *type)
{
    mkdir(dir, 0755);
    if (mount(src, dir, type, 0, NULL) != 0 && errno != EBUSY)
        fprintf(stderr, "init: mount %s on %s: %s\n", type, dir, strerror(errno));
}

static int count_nodes(void)
{
    DIR *d = opendir("/sys/devices/system/node");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "node", 4) && e->d_name[4] >= '0' && e->d_name[4] <= '9')
            n++;
    closedir(d);
    return n;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) > 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static __attribute__((noreturn)) void finish(int status)
{
    char fields[64];
    snprintf(fields, sizeof fields, "\"status\":%d", status);
    emit_event("end", "init", fields);
    sync();
    /* write(2) to the serial console returns once the bytes are in the tty's
     * buffer; the UART sends them later, by interrupt. Exiting QEMU now would
     * drop the last lines (seen on a loaded host: a result missing from an
     * "ok" point), so wait until the console has sent everything. */
    tcdrain(1);
    if (ioperm(DEBUG_EXIT_PORT, 4, 1) == 0)
        outl((unsigned)status, DEBUG_EXIT_PORT);
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
}

int main(void)
{
    /* The cost model's boot region: from reset to here (docs/costmodel.md). */
    cpu_set_t online;
    CPU_ZERO(&online);
    int cores = sched_getaffinity(0, sizeof online, &online) == 0 ? CPU_COUNT(&online) : 0;
    cm_arg(cores, cores);
    cm_arg(ops, cores);           /* counts per core brought up */
    cm_end(boot);
    uint64_t tsc0 = tsc_begin();
    struct timespec bt;
    clock_gettime(CLOCK_BOOTTIME, &bt);

    mount_fs("proc", "/proc", "proc");
    mount_fs("sysfs", "/sys", "sysfs");
    mount_fs("devtmpfs", "/dev", "devtmpfs");
    if (fcntl(1, F_GETFD) < 0) {      /* no console from the kernel: open it */
        int fd = open("/dev/console", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
    }

    static char cmdline[8192];
    int fd = open("/proc/cmdline", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, cmdline, sizeof cmdline - 1) : -1;
    if (fd >= 0)
        close(fd);
    cmdline[n > 0 ? n : 0] = 0;

    char *words[MAX_WORDS];
    int nwords = 0;
    const char *list = "";
    for (char *save, *w = strtok_r(cmdline, " \t\n", &save); w;
         w = strtok_r(NULL, " \t\n", &save)) {
        if (!strncmp(w, "bench=", 6))
            list = w + 6;
        else if (strchr(w, '.') && strchr(w, '=') && nwords < MAX_WORDS)
            words[nwords++] = w;
    }

    struct utsname u;
    uname(&u);
    char fields[600];
    snprintf(fields, sizeof fields,
             "\"system\":\"linux\",\"kernel\":\"%.64s\",\"cpus\":%d,\"nodes\":%d,"
             "\"benchmarks\":\"%.300s\"",
             u.release, online_cpus(), count_nodes(), list);
    emit_event("start", "init", fields);

    int status = 0;
    static char listcopy[1024];
    snprintf(listcopy, sizeof listcopy, "%s", list);
    for (char *save, *name = strtok_r(listcopy, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        if (!valid_name(name)) {
            emit_error("init", "bad benchmark name in bench=: %.40s", name);
            status = 1;
            continue;
        }
        char path[64];
        snprintf(path, sizeof path, "/bin/%s", name);
        if (access(path, X_OK) != 0) {
            emit_error(name, "no such benchmark program %s in the initramfs", path);
            status = 1;
            continue;
        }
        char *args[MAX_WORDS + 4];
        static char extra[2][64];
        int na = 0;
        args[na++] = name;
        size_t len = strlen(name);
        for (int i = 0; i < nwords; i++)
            if (!strncmp(words[i], name, len) && words[i][len] == '.')
                args[na++] = words[i] + len + 1;
        if (!strcmp(name, "boot")) {
            snprintf(extra[0], sizeof extra[0], "init_tsc=%llu", (unsigned long long)tsc0);
            snprintf(extra[1], sizeof extra[1], "init_boottime_ns=%llu",
                     (unsigned long long)bt.tv_sec * 1000000000ull + (unsigned long long)bt.tv_nsec);
            args[na++] = extra[0];
            args[na++] = extra[1];
        }
        args[na] = NULL;
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0) {
            execv(path, args);
            _exit(127);
        }
        int ws = 0;
        if (pid < 0) {
            emit_error(name, "fork: %s", strerror(errno));
            status = 1;
            continue;
        }
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
        uint64_t t1 = now_ns();
        if (WIFSIGNALED(ws)) {
            emit_error(name, "killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
            status = 1;
        } else if (WEXITSTATUS(ws) != 0) {
            emit_error(name, "exited with status %d", WEXITSTATUS(ws));
            status = 1;
        }
        char done[96];
        snprintf(done, sizeof done, "\"status\":%d,\"wall_ns\":%llu",
                 WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws),
                 (unsigned long long)(t1 - t0));
        emit_event("done", name, done);
    }
    finish(status);
}
