"""QEMU tests of the restart service (docs/restart.md, issue 14): servers
that end, crash or hang are started again on their core under their
manifest's policy and found by the same name; the name server is restarted
by its monitor and every service registers again; a client calling in a
loop through the reconnecting library (lib/recover.c) sees no error; a
server that crashes at start stops at its limit with a clear message.

The guest prints `@atoll` events: service_ended, service_restarted,
restart_limit and fault_injected from the starter (and service_restarted
from core 0's monitor for the name server), echo_loop from the client."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
from atoll_run import Machine  # noqa: E402

# Core 1: the echo server is domain 2 (the monitor is 1), the server that
# cannot start is 3, then 4 and 5 as it is started again.
MANIFEST = """\
echo.r echo core:1 restart=3 backoff=10 serve $name 0 key=$key
crashy echo core:1 restart=2 backoff=10 crash
"""


def boot(manifest, commands, tmp_path, smp=2, numa=0, cmdline="", timeout=300):
    path = tmp_path / "test.services"
    path.write_text(manifest)
    m = Machine(smp=smp, numa=numa, mem=1 << 30, accel="tcg", cmdline=cmdline,
                modules=atoll_run.user_modules(services=str(path)))
    r = atoll_run.boot(m, timeout=timeout, shell_commands=list(commands))
    assert not r.timed_out, r.console[-3000:]
    assert not r.malformed, r.malformed
    assert r.events_named("panic") == [], r.console[-3000:]
    return r


def restarts(r, name):
    return [e for e in r.events_named("service_restarted") if e["name"] == name]


def test_a_name_server_killed_again_and_again_comes_back_every_time(tmp_path):
    """Kills of the name server half a second apart (the campaign's pace,
    which stopped a 100,000-fault run after 36,554 faults and 385 restarts:
    5 ends within 1 s of a start counted as a crash loop): each is a
    restart, not the end of the machine; only a name server that ends
    before offering its service counts towards the crash loop. After six,
    names are found again and an echo call goes through."""
    cmds = []
    for _ in range(6):
        cmds += ["fault kill names 0", "sleep 50"]
    cmds += ["sleep 300", "run 1 echo call echo.r 3", "wait", "names"]
    r = boot(MANIFEST, cmds, tmp_path)
    assert r.events_named("boot_failed") == [], r.console[-3000:]
    names = restarts(r, "names")
    assert [e["restarts"] for e in names] == list(range(1, 7)), names
    assert len({e["domain"] for e in names}) == 6, names
    [call] = r.events_named("echo_call")
    assert call["name"] == "echo.r" and call["server_core"] == 1, call
    assert r.status == 0, r.console[-3000:]


def test_clients_see_no_error_across_restarts_and_crash_loops_stop(tmp_path):
    """A client calls echo.r 300 times (about 3 s) and looks it up every 5
    calls while the echo server, then the name server, are killed: every
    call succeeds (one reconnection each, the echo call repeated as it is
    idempotent). Both come back; the echo server re-joins its group under
    the same name. The server that faults at start is started twice more
    (restart=2) and then given up on with restart_limit."""
    cmds = ["names", "run 0 echo loop echo.r 300 5", "run 0 echo loop echo.r 300 0 plain", "sleep 60", "kill 1 2",
            "sleep 60", "kill 0 2", "wait", "svc", "names"]
    r = boot(MANIFEST, cmds, tmp_path)
    assert r.status == 0, r.console[-3000:]
    [loop] = [e for e in r.events_named("echo_loop") if not e["plain"]]
    # The same calls, not marked idempotent: the restart is one ERR_RESTARTED
    # (the call may or may not have been done), and the loop goes on.
    [plain] = [e for e in r.events_named("echo_loop") if e["plain"]]
    assert plain["errors"] == plain["reconnects"] >= 1 and plain["retries"] == 0, plain
    assert plain["first_error"] == "ERR_RESTARTED" and plain["calls"] == 300, plain
    assert loop["calls"] == 300 and loop["errors"] == 0, (loop, r.console[-3000:])
    # The loop lived through both restarts, not beside them.
    assert loop["reconnects"] >= 1 and loop["retries"] >= 1 and loop["names_reconnects"] >= 1, loop
    echo = restarts(r, "echo.r")[0]   # (a loaded host may add a restart for a late beat)
    assert echo["core"] == 1 and echo["old"] == 2 and echo["by"] == "starter" and echo["failed_in_row"] == 0, echo
    ended = [e for e in r.events_named("service_ended") if e["name"] == "echo.r"]
    assert ended and ended[0]["why"] == "ended" and ended[0]["joined"], ended
    [names] = restarts(r, "names")
    assert names["old"] == 2 and names["by"] == "monitor", names
    # After the name server's restart, every name is back (kept by lib/recover.c),
    # and the shell's `names` (its channel made before the restart) lists them.
    before, after = r.events_named("names_list")
    assert before["total"] == after["total"] == 2, (before, after)
    tail = r.console[r.console.rindex("atoll> names"):]
    assert "echo.r echo 1" in tail and "starter starter 0" in tail, tail
    assert re.search(r"echo\.r core:1 1 \d+ running restarts=\d+", r.console), r.console[-2000:]
    # The crash loop: two restarts, back-off doubling, then the limit.
    crashy = restarts(r, "crashy")
    assert [e["failed_in_row"] for e in crashy] == [1, 2], crashy
    [limit] = r.events_named("restart_limit")
    assert limit == {"event": "restart_limit", "name": "crashy", "core": 1, "failed_in_row": 3, "limit": 2}, limit
    assert "crashy on core 1 failed to start 3 times in a row (restart=2): not started again" in r.console
    assert "crashy core:1 1 5 failed ERR_TOO_MANY restarts=2" in r.console


def test_a_hung_server_is_noticed_by_its_heartbeats_and_replaced(tmp_path):
    """`fault hang` makes the echo server's event loop stop (it keeps the
    core, yielding): no more heartbeats. Within HEARTBEAT_HANG_MS (5 s) the
    starter ends it and starts it again; the client's calls made meanwhile
    are answered by the new instance. Garbled heartbeats sent before are
    counted and not taken for beats. A garbled message to the new instance
    is refused by its decoder and it keeps answering."""
    cmds = ["run 0 echo loop echo.r 400 5", "sleep 30", "fault badbeat echo.r 1 5", "sleep 20", "fault hang echo.r 1",
            "sleep 1100", "fault garble echo.r 1 7", "wait", "svc"]
    r = boot("echo.r echo core:1 restart=3 backoff=10 serve $name 0 key=$key\n", cmds, tmp_path)
    assert r.status == 0, r.console[-3000:]
    [loop] = r.events_named("echo_loop")
    assert loop["errors"] == 0 and loop["reconnects"] >= 1, (loop, r.console[-3000:])
    # Two garbled heartbeats first: counted, and not taken for beats.
    bad = r.events_named("heartbeat_garbled")
    assert [(e["domain"], e["error"], e["count"]) for e in bad] == \
        [(2, "ERR_MSG_UNKNOWN", 1), (2, "ERR_MSG_MALFORMED", 2)], bad
    taken = r.events_named("fault_taken")
    assert [(e["kind"], e["domain"]) for e in taken] == [("badbeat", 2), ("hang", 2)], taken
    ended = [e for e in r.events_named("service_ended") if e["name"] == "echo.r"]
    assert ended[0]["why"] == "hang" and ended[0]["domain"] == 2, ended
    # (A loaded host may add a restart for a late heartbeat, as above.)
    backs = restarts(r, "echo.r")
    assert backs and backs[0]["old"] == 2 and all(b["core"] == 1 for b in backs), backs
    garble = [e for e in r.events_named("fault_injected") if e["kind"] == "garble"]
    assert garble and garble[0]["domain"] in [b["domain"] for b in backs] and garble[0]["err"] == "ERR_OK", garble
    assert re.search(r"echo\.r core:1 1 %d running restarts=%d" % (backs[-1]["domain"], len(backs)), r.console), \
        r.console[-2000:]


def test_a_service_for_a_core_that_is_down_starts_on_the_nearest_live_one(tmp_path):
    """Core 3 never comes up (selftest=unlisted:3): the instance placed on
    it is started on the nearest live core, core 2 on the same node, and
    clients find it by its name there."""
    cmds = ["svc", "run 0 echo call echo.x 1", "wait"]
    r = boot("echo.x echo core:3 serve $name 0 key=$key\n", cmds, tmp_path, smp=4, numa=2,
             cmdline="selftest=unlisted:3")
    assert r.status == 0, r.console[-3000:]
    [moved] = r.events_named("service_moved")
    assert moved["name"] == "echo.x" and moved["from"] == 3 and moved["to"] == 2, moved
    assert f"echo.x core:3 2 {moved['domain']} running" in r.console, r.console[-2000:]
    [call] = r.events_named("echo_call")
    assert call["server_core"] == 2 and call["server"] == moved["domain"], call


def test_a_server_that_hangs_before_its_first_heartbeat_is_ended_and_restarted(tmp_path):
    """`echo hang` never gets going (it yields forever, before any beat).
    Its manifest line says heartbeat=yes, so the starter ends it when no
    first beat came HEARTBEAT_HANG_MS (5 s) after its start: a failed
    start, started again once (restart=1), then given up on. The healthy
    service beside it is untouched."""
    manifest = ("echo.r echo core:1 serve $name 0 key=$key\n"
                "hung echo core:1 heartbeat=yes restart=1 backoff=10 hang\n")
    # The shell's first prompt waits for the starter: hung given up on by then.
    r = boot(manifest, ["svc", "run 0 echo call echo.r 1", "wait"], tmp_path)
    assert r.status == 0, r.console[-3000:]
    hung = r.events_named("service_hung")
    assert [e["domain"] for e in hung] == [3, 4], hung
    assert all(e["name"] == "hung" and not e["first_beat"] and 5000 <= e["ms"] < 60000 for e in hung), hung
    ended = [e for e in r.events_named("service_ended") if e["name"] == "hung"]
    assert [(e["why"], e["joined"]) for e in ended] == [("hang", False), ("hang", False)], ended
    [limit] = r.events_named("restart_limit")
    assert limit["name"] == "hung" and limit["failed_in_row"] == 2 and limit["limit"] == 1, limit
    assert not [e for e in r.events_named("service_ended") if e["name"] == "echo.r"], r.console[-3000:]
    [call] = r.events_named("echo_call")
    assert call["server_core"] == 1, call


def test_a_server_started_before_its_group_is_back_joins_and_lookups_wait_for_it(tmp_path):
    """After a restart of the name server a group is back only once its
    maker (the starter) made it again; here a slow one (`echo group`: 11 s
    after it noticed the restart). An instance started meanwhile waits for
    its group (NAMES_JOIN_WAIT_MS, 20 s) and joins, instead of ending with
    `echo: join: ERR_NOT_FOUND`; a client looking the name up on every call
    waits past its own 10 s bound until the re-registration window
    (NAMES_REJOIN_MS after it reached the name server again) is over, and
    sees no error. Before lib/recover.c waited, both failed."""
    cmds = ["run 0 echo group echo.j 2a 11000 22000", "sleep 30",
            "run 1 echo serve echo.j 300 key=2a",   # j1: the loop's 300 calls (nearest: same core)
            "run 1 echo loop echo.j 300 1", "sleep 150",
            "kill 0 2",                              # the name server: echo.j is made again 11 s later
            "run 0 echo serve echo.j 1 key=2a",     # j2, started while its group is not back
            "sleep 1600", "run 0 echo call echo.j 1", "wait 3000"]
    r = boot("", cmds, tmp_path)
    assert r.status == 0, r.console[-3000:]
    assert r.events_named("echo_error") == [] and "join: ERR_NOT_FOUND" not in r.console, r.console[-3000:]
    made = r.events_named("echo_group")
    assert [e["made"] for e in made] == [1, 2], made
    [names] = restarts(r, "names")
    assert names["old"] == 2 and names["by"] == "monitor", names
    served = r.events_named("echo_served")
    assert sorted(e["core"] for e in served) == [0, 1], served
    [j2] = [e for e in served if e["core"] == 0]
    # It waited for the group (about 11 s), and joined within the bound,
    # beating all the while (an instance of the starter's waiting that long
    # without beats would be ended as hung after HEARTBEAT_HANG_MS, 5 s).
    assert 5000 <= j2["join_ms"] < 20000, j2
    assert j2["beats"] >= 10, j2
    [loop] = r.events_named("echo_loop")
    assert r.events_named("echo_loop_error") == [], r.events_named("echo_loop_error")
    assert loop["calls"] == 300 and loop["errors"] == 0 and loop["lookups"] == 300, loop
    assert loop["names_reconnects"] >= 1, loop   # its lookups lived through the restart
    [call] = r.events_named("echo_call")
    assert call["server_core"] == 0, call   # j2 serves under the name


def test_a_reconnection_looks_again_when_the_named_instance_has_ended(tmp_path):
    """The name server may name an instance that has ended before it read
    the hang-up. `echo ghost` joins echo.g on core 2 with a service its
    monitor never knew, for 4 s; the loop on core 2 finds it first (the
    nearest). Its monitor answers ERR_NOT_FOUND: the instance is gone,
    and the channel looks the name up again after NAMED_GONE_MS instead of
    waiting its whole 10 s window on it (which, when the name server was
    restarted meanwhile, ended in the fault campaign's rare ERR_NOT_FOUND,
    docs/faults.md). It connects to core 1's instance once the ghost's
    name is gone, well inside the window."""
    cmds = ["run 0 echo group echo.g 2c 0 1000", "sleep 30",
            "run 1 echo serve echo.g 100 key=2c", "run 2 echo ghost echo.g 2c 4000", "sleep 50",
            "run 2 echo loop echo.g 100 0", "wait 3000"]
    r = boot("", cmds, tmp_path, smp=3)
    assert r.status == 0, r.console[-3000:]
    [ghost] = r.events_named("echo_ghost")
    assert ghost["core"] == 2, ghost
    [loop] = r.events_named("echo_loop")
    assert loop["calls"] == 100 and loop["errors"] == 0, loop
    # It met the ghost (connected only once the ghost had gone), and did
    # not wait out its window on it.
    assert 1000 <= loop["connect_ms"] < 10000, loop
    [done] = r.events_named("echo_done")
    assert done["core"] == 1 and done["calls"] == 100, done


def test_a_slow_replica_is_ended_only_when_its_group_can_spare_it(tmp_path):
    """The store on 3 cores (a majority is 2) under the restart service.
    `fault stall` stops a replica's event loop for FAULT_STALL_MS (6 s),
    longer than the hang bound (5 s): what a vCPU starved on a loaded host
    looks like. First core 2's replica stalls while the other two hold the
    table: it is judged hung, ended and started again, and catches up.
    Then core 1's replica stalls and the leader (core 0) is killed at once:
    ending core 1's replica too would leave one replica that may vote (a
    restarted one must catch up from a leader first), so no leader for good,
    as the 10,000-fault campaign's store once lost its majority. The
    verdict is held back (service_hang_held), the replica beats again
    (service_hang_over), a leader is elected, and writes go on."""
    manifest = "kv store per-core restart=100 backoff=10 heartbeat=yes serve $name $key $cores $life\n"
    cmds = ["svc", "run 1 store put kv warm up", "wait", "sleep 1500",
            "fault stall kv 2", "sleep 8000", "run 1 store put kv second x", "wait", "sleep 1500",
            "fault stall kv 1", "fault kill kv 0", "sleep 9000",
            "run 2 store put kv after y", "wait", "run 0 store state kv", "wait", "svc"]
    r = boot(manifest, cmds, tmp_path, smp=3, timeout=400)
    (tmp_path / "console.log").write_text(r.console)
    assert r.status == 0, r.console[-3000:]
    taken = [(e["core"], e["domain"], e["kind"]) for e in r.events_named("fault_taken")]
    assert [(c, k) for c, _, k in taken] == [(2, "stall"), (1, "stall")], taken
    first, second = taken[0][1], taken[1][1]
    ended = [(e["core"], e["domain"], e["why"]) for e in r.events_named("service_ended") if e["name"] == "kv"]
    held = r.events_named("service_hang_held")
    over = r.events_named("service_hang_over")
    # Alone, with the two others holding the table: judged hung, ended (no
    # hold), started again; it caught up before the second stall.
    assert (2, first, "hang") in ended, (ended, r.console[-3000:])
    assert not [e for e in held if (e["core"], e["domain"]) == (2, first)], held
    # With the leader killed: held back, never ended, beat again. (A loaded
    # host may make another replica miss its beats for 5 s too; it is held
    # or ended by the same rule, so only the stalled one is pinned down.)
    assert (0, "injected") in [(c, w) for c, _, w in ended], ended
    assert not [x for x in ended if x[:2] == (1, second)], (ended, r.console[-3000:])
    mine = [e for e in held if (e["core"], e["domain"]) == (1, second)]
    assert len(mine) == 1 and mine[0]["silent_ms"] >= 5000, held
    assert all(e["holding"] < e["instances"] // 2 + 1 for e in held), held
    back = [e for e in over if (e["core"], e["domain"]) == (1, second)]
    assert len(back) == 1 and back[0]["silent_ms"] >= 5000, over
    elected = [e for e in r.events_named("store_elected") if e["term"] >= 2]
    assert elected and elected[-1]["core"] in (1, 2), elected
    res = [(e["op"], e["key"], e["err"]) for e in r.events_named("store_result")]
    assert res == [("put", "warm", "ERR_OK"), ("put", "second", "ERR_OK"), ("put", "after", "ERR_OK")], res
    states = r.events_named("store_state")
    assert sorted(s["core"] for s in states) == [0, 1, 2], states
    assert len({(s["digest"], s["applied"], s["keys"]) for s in states}) == 1, states
