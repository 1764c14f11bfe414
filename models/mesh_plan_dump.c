/*
 * Prints a monitor mesh plan (monitor/mesh_plan.c) as Promela, for
 * models/mesh.pml: tools/atoll_models.py compiles this with the monitor's
 * own mesh_plan.c, so the model routes exactly as the monitors do.
 *
 *     mesh_plan_dump NCORES KIND CLUSTER NODE_OF_CORE0 NODE_OF_CORE1 ...
 *
 * A node written dN (core on node N that never came up) marks the core down.
 */
#include <stdio.h>
#include <stdlib.h>
#include "mesh_plan.h"

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    uint32_t n = (uint32_t)atoi(argv[1]);
    static uint16_t node_of[MESH_MAX_CORES];
    static bool down[MESH_MAX_CORES];
    uint32_t up = 0;
    for (uint32_t c = 0; c < n && 4 + (int)c < argc; c++) {
        const char *a = argv[4 + c];
        down[c] = a[0] == 'd';
        node_of[c] = (uint16_t)atoi(a + down[c]);
        up += !down[c];
    }
    static struct mesh_plan p;
    if (argc != 4 + (int)n || !mesh_plan_init(&p, n, node_of, (enum mesh_kind)atoi(argv[2]),
                                              (uint32_t)atoi(argv[3]), down))
        return 1;
    printf("/* monitor/mesh_plan.c: %u cores, %s, clusters of %u */\n", n, mesh_kind_name(p.kind), p.cluster);
    printf("#define NCORES %u\n#define PLAN_INIT ", n);
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = 0; b < n; b++)
            printf("linked[%u] = %d; hop[%u] = %u; ", a * n + b, mesh_linked(&p, a, b), a * n + b,
                   mesh_next_hop(&p, a, b));
    printf("skip\n#define PLAN_LINKS %u\n#define NUP %u\n#define DOWN_INIT ", mesh_channel_count(&p), up);
    for (uint32_t c = 0; c < n; c++)
        printf("down[%u] = %d; ", c, down[c]);
    printf("skip\n");
    /* One receive option per possible peer (a select would commit to one). */
    printf("#define RECV_ANY(me) ");
    for (uint32_t c = 0; c < n; c++)
        printf(":: atomic { attached[L(me, %u)] && nempty(chans[L(%u, me)]) -> chans[L(%u, me)] ? t, dst, src } ",
               c, c, c);
    printf("\n");
    return 0;
}
