/*
 * Host unit tests of the boot manifest (servers/starter/manifest.c): every
 * placement on a machine of four nodes, dependency order, and every way a
 * line can be wrong (each refused with its line, its dependents with it,
 * the rest kept).
 */
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "manifest.h"

static struct machine_shape m16;

/* 16 cores on 4 nodes, and node 3 has none: cores 12-15 are on node 2. */
static void shape(void)
{
    m16.ncores = 16;
    m16.nnodes = 4;
    for (uint32_t c = 0; c < 16; c++)
        m16.core_node[c] = (uint16_t)(c < 12 ? c / 4 : 2);
}

static struct manifest mf;

static void parse(const char *text) { manifest_parse(text, strlen(text), &m16, &mf); }

static const struct manifest_service *svc(const char *name)
{
    for (unsigned i = 0; i < mf.n; i++)
        if (!strcmp(mf.svc[i].name, name))
            return &mf.svc[i];
    return NULL;
}

static void test_placements(void)
{
    parse("# services\n"
          "\n"
          "topo   topo  core:0\n"
          "echo.n echo  per-node  after=topo serve $name 0 key=$key\n"
          "every  hello per-core\n"
          "some   hello nodes:0,2-2   hi from $core\n"
          "st     store per-node serve $name $key $cores $life\n"
          "st.c   store per-core serve $cores\n"
          "late   mem   per-node:last serve $name $key $cores\n"
          "spare  mem   per-node:spare serve $cores\n"
          "bad    mem   per-node:first\n");
    CHECK_EQ(mf.n, 9);
    CHECK(svc("bad")->refused && strstr(svc("bad")->why, "per-node:last"));
    /* per-node:last: the last core of every node with cores (node 2's is 15). */
    uint32_t lasts[32];
    unsigned nl = manifest_cores(svc("late"), &m16, lasts, 32);
    CHECK(nl == 3 && lasts[0] == 3 && lasts[1] == 7 && lasts[2] == 15);
    char late[160];
    CHECK_ERR(manifest_command(svc("late"), &m16, 7, 0x1, 0, late, sizeof late), ERR_OK);
    CHECK(!strcmp(late, "mem serve late 1 3,7,15"));
    /* per-node:spare: every node of m16 has 4 cores or more, so its last... */
    nl = manifest_cores(svc("spare"), &m16, lasts, 32);
    CHECK(nl == 3 && lasts[0] == 3 && lasts[1] == 7 && lasts[2] == 15);
    /* ...but on 5 cores, node 0 of 2 and node 1 of 3 keep their first core. */
    struct machine_shape m5 = { .ncores = 5, .nnodes = 2, .core_node = { 0, 0, 1, 1, 1 } };
    nl = manifest_cores(svc("spare"), &m5, lasts, 32);
    CHECK(nl == 2 && lasts[0] == 0 && lasts[1] == 2);
    m5.core_node[4] = 0;   /* now node 0 has cores 0, 1 and 4: still 3 */
    nl = manifest_cores(svc("spare"), &m5, lasts, 32);
    CHECK(nl == 2 && lasts[0] == 0 && lasts[1] == 2);
    CHECK_EQ(mf.refused, 1);   /* "bad" */
    uint32_t cores[32];
    CHECK_EQ(manifest_cores(svc("topo"), &m16, cores, 32), 1);
    CHECK_EQ(cores[0], 0);
    unsigned n = manifest_cores(svc("echo.n"), &m16, cores, 32);
    CHECK_EQ(n, 3);   /* node 3 has no cores */
    CHECK(cores[0] == 0 && cores[1] == 4 && cores[2] == 8);
    CHECK_EQ(manifest_cores(svc("every"), &m16, cores, 32), 16);
    CHECK_EQ(manifest_cores(svc("every"), &m16, cores, 5), 5);
    n = manifest_cores(svc("some"), &m16, cores, 32);
    CHECK(n == 2 && cores[0] == 0 && cores[1] == 8);
    /* Dependencies first. */
    unsigned at_topo = 99, at_echo = 99;
    for (unsigned i = 0; i < mf.norder; i++) {
        if (!strcmp(mf.svc[mf.order[i]].name, "topo"))
            at_topo = i;
        if (!strcmp(mf.svc[mf.order[i]].name, "echo.n"))
            at_echo = i;
    }
    CHECK(at_topo < at_echo);
    CHECK_EQ(mf.norder, 8);
    char cmd[160];
    CHECK_ERR(manifest_command(svc("echo.n"), &m16, 4, 0xabc, 0, cmd, sizeof cmd), ERR_OK);
    CHECK(!strcmp(cmd, "echo serve echo.n 0 key=abc"));
    CHECK_ERR(manifest_command(svc("some"), &m16, 8, 0, 0, cmd, sizeof cmd), ERR_OK);
    CHECK(!strcmp(cmd, "hello hi from 8"));
    CHECK_ERR(manifest_command(svc("topo"), &m16, 0, 0, 0, cmd, sizeof cmd), ERR_OK);
    CHECK(!strcmp(cmd, "topo"));
    CHECK_ERR(manifest_command(svc("echo.n"), &m16, 4, 0xabc, 0, cmd, 10), ERR_MSG_TOO_LONG);
    /* $cores: every member of the placement, as runs. */
    CHECK_ERR(manifest_command(svc("st"), &m16, 4, 0xabc, 0, cmd, sizeof cmd), ERR_OK);
    CHECK(!strcmp(cmd, "store serve st abc 0,4,8 0"));
    /* $life: how many times the instance was started before. */
    CHECK_ERR(manifest_command(svc("st"), &m16, 4, 0xabc, 3, cmd, sizeof cmd), ERR_OK);
    CHECK(!strcmp(cmd, "store serve st abc 0,4,8 3"));
    CHECK_ERR(manifest_command(svc("st.c"), &m16, 4, 0, 0, cmd, sizeof cmd), ERR_OK);
    CHECK(!strcmp(cmd, "store serve 0-15"));
}

static void expect_refused(const char *name, unsigned line, const char *words)
{
    const struct manifest_service *s = svc(name);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(s->refused);
    char want[32];
    snprintf(want, sizeof want, "line %u:", line);
    if (strncmp(s->why, want, strlen(want)) || !strstr(s->why, words)) {
        CHECK(!"refused for the wrong reason");
        fprintf(stderr, "    %s: '%s' (wanted line %u, '%s')\n", name, s->why, line, words);
    }
}

static void test_refusals(void)
{
    /* At most MANIFEST_MAX_SERVICES lines a manifest: the refusals in two. */
    parse("good   hello core:1\n"                           /* 1 */
          "short  hello\n"                                  /* 2: too few words */
          "bad!   hello core:1\n"                           /* 3: not a plain word */
          "good   hello core:2\n"                           /* 4: duplicate */
          "where  hello somewhere\n"                        /* 5: unknown placement */
          "far    hello core:16\n"                          /* 6: no such core */
          "nodes  hello nodes:4\n"                          /* 7: no such node */
          "empty  hello nodes:3\n"                          /* 8: node without cores */
          "list   hello nodes:2-1\n"                        /* 9: bad list */
          "orphan hello core:0 after=nobody\n"              /* 10: unknown dependency */
          "f      hello core:0 after=good\n");              /* 11: fine */
    expect_refused("short", 2, "expected NAME PROGRAM PLACEMENT");
    expect_refused("bad!", 3, "plain words");
    expect_refused("where", 5, "unknown placement");
    expect_refused("far", 6, "core 16 does not exist");
    expect_refused("nodes", 7, "node 4 does not exist");
    expect_refused("empty", 8, "node 3 has no cores");
    expect_refused("list", 9, "bad node list");
    expect_refused("orphan", 10, "does not name");
    /* The duplicate is the second 'good' (line 4). */
    unsigned dups = 0;
    for (unsigned i = 0; i < mf.n; i++)
        if (!strcmp(mf.svc[i].name, "good") && mf.svc[i].refused) {
            dups++;
            CHECK(strstr(mf.svc[i].why, "line 4:") && strstr(mf.svc[i].why, "line 1 already"));
        }
    CHECK_EQ(dups, 1);
    /* What is left starts: good (line 1) before f. */
    CHECK_EQ(mf.norder, 2);
    CHECK(!strcmp(mf.svc[mf.order[0]].name, "good") && !strcmp(mf.svc[mf.order[1]].name, "f"));
    CHECK_EQ(mf.beyond, 0);
    parse("where  hello somewhere\n"                        /* 1: unknown placement */
          "a      hello core:0 after=b\n"                   /* 2: a cycle */
          "b      hello core:0 after=c\n"                   /* 3 */
          "c      hello core:0 after=a\n"                   /* 4 */
          "d      hello core:0 after=a\n"                   /* 5: needs one on the cycle */
          "e      hello core:0 after=where\n"               /* 6: needs a refused one */
          "g      hello core:0\n");                         /* 7: fine */
    expect_refused("a", 2, "circle");
    expect_refused("b", 3, "circle");
    expect_refused("c", 4, "circle");
    expect_refused("d", 5, "which was refused");
    expect_refused("e", 6, "which was refused");
    CHECK_EQ(mf.norder, 1);
    CHECK(!strcmp(mf.svc[mf.order[0]].name, "g"));
    /* Limits: too many services, long lines and words, NULs. */
    static char big[8192];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "s%d hello core:0\n", i);
    parse(big);
    CHECK_EQ(mf.n, MANIFEST_MAX_SERVICES);
    CHECK_EQ(mf.norder, MANIFEST_MAX_SERVICES);
    CHECK_EQ(mf.beyond, 40u - MANIFEST_MAX_SERVICES);
    CHECK_EQ(mf.first_beyond, MANIFEST_MAX_SERVICES + 1u);
    memset(big, 'x', 400);
    memcpy(big, "long hello core:0 ", 18);
    big[400] = '\n';
    big[401] = 0;
    parse(big);
    CHECK(mf.n == 1 && mf.svc[0].refused && strstr(mf.svc[0].why, "line too long"));
    static const char nul[] = "zero hel\0lo core:0\n";
    manifest_parse(nul, sizeof nul - 1, &m16, &mf);
    CHECK(mf.n == 1 && mf.svc[0].refused);
    parse("");
    CHECK(mf.n == 0 && mf.norder == 0);
}

/* The restart policy: restart= and backoff= in any order with after=,
 * defaults when absent, out-of-range values refused. */
static void test_restart_policy(void)
{
    parse("a hello core:0\n"
          "b hello core:1 restart=0 after=a backoff=250 hi $core\n"
          "c hello core:1 backoff=5 restart=100\n"
          "d hello core:1 restart=101\n"
          "e hello core:1 backoff=x\n"
          "f hello core:1 restart=\n");
    CHECK_EQ(svc("a")->restart_limit, MANIFEST_RESTART_DEFAULT);
    CHECK_EQ(svc("a")->backoff_ms, MANIFEST_BACKOFF_DEFAULT_MS);
    CHECK(!svc("b")->refused);
    CHECK_EQ(svc("b")->restart_limit, 0);
    CHECK_EQ(svc("b")->backoff_ms, 250);
    CHECK_EQ(svc("b")->ndeps, 1);
    CHECK(!strcmp(svc("b")->args, "hi $core"));
    CHECK(!svc("c")->refused && svc("c")->restart_limit == 100 && svc("c")->backoff_ms == 5);
    CHECK(svc("d")->refused && strstr(svc("d")->why, "restart="));
    CHECK(svc("e")->refused && strstr(svc("e")->why, "backoff="));
    CHECK(svc("f")->refused);
    CHECK_EQ(mf.refused, 3);
}

/* heartbeat=yes|no among the options; any other value is an argument. */
static void test_heartbeat_option(void)
{
    parse("a hello core:0\n"
          "b hello core:1 restart=1 heartbeat=yes backoff=10 hang\n"
          "c hello core:1 heartbeat=no\n"
          "d hello core:1 heartbeat=maybe\n");
    CHECK(!svc("a")->heartbeat && !svc("c")->heartbeat);
    CHECK(svc("b")->heartbeat && svc("b")->restart_limit == 1 && svc("b")->backoff_ms == 10);
    CHECK(!strcmp(svc("b")->args, "hang"));
    CHECK(!svc("d")->refused && !svc("d")->heartbeat && !strcmp(svc("d")->args, "heartbeat=maybe"));
}

int main(void)
{
    shape();
    test_restart_policy();
    test_heartbeat_option();
    test_placements();
    test_refusals();
    return check_done();
}
