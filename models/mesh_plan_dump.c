/*
 * Prints a monitor mesh plan (monitor/mesh_plan.c) as Promela, for
 * models/mesh.pml: tools/atoll_models.py compiles this with the monitor's
 * own mesh_plan.c, so the model routes exactly as the monitors do.
 *
 *     mesh_plan_dump NCORES KIND CLUSTER NODE_OF_CORE0 NODE_OF_CORE1 ...
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
    for (uint32_t c = 0; c < n && 4 + (int)c < argc; c++)
        node_of[c] = (uint16_t)atoi(argv[4 + c]);
    static struct mesh_plan p;
    if (argc != 4 + (int)n || !mesh_plan_init(&p, n, node_of, (enum mesh_kind)atoi(argv[2]),
                                              (uint32_t)atoi(argv[3])))
        return 1;
    printf("/* monitor/mesh_plan.c: %u cores, %s, clusters of %u */\n", n, mesh_kind_name(p.kind), p.cluster);
    printf("#define NCORES %u\n#define PLAN_INIT ", n);
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = 0; b < n; b++)
            printf("linked[%u] = %d; hop[%u] = %u; ", a * n + b, mesh_linked(&p, a, b), a * n + b,
                   mesh_next_hop(&p, a, b));
    printf("skip\n#define PLAN_LINKS %u\n", mesh_channel_count(&p));
    /* One receive option per possible peer (a select would commit to one). */
    printf("#define RECV_ANY(me) ");
    for (uint32_t c = 0; c < n; c++)
        printf(":: atomic { attached[L(me, %u)] && nempty(chans[L(%u, me)]) -> chans[L(%u, me)] ? t, dst, src } ",
               c, c, c);
    printf("\n");
    return 0;
}
