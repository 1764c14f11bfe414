"""QEMU test of live update (`svc update NAME PROGRAM`, docs/restart.md,
issue 14): the echo server (state format 1: calls answered) is replaced
under load by echo2 (format 2: calls answered and clients), its state
carried through the explicit export/import interface (lib/recover.c's
`struct updatable`); an update back to echo, which cannot read format 2,
is rolled back (the running echo2 goes on), and so is one to a program that
is not there and one to a module that is not an executable image. A client
calling in a loop through the whole sequence sees no error.

Events: update_started, echo_exported, echo_imported, service_updated,
update_rolled_back, svc_update (shell), echo_loop."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
from atoll_run import Machine  # noqa: E402


def test_live_update_carries_state_and_failed_updates_roll_back(tmp_path):
    path = tmp_path / "update.services"
    path.write_text("echo.u echo core:1 restart=3 backoff=10 serve $name 0 key=$key\n")
    m = Machine(smp=2, mem=1 << 30, accel="tcg",
                modules=atoll_run.user_modules(services=str(path), extra=("echo2",)))
    # The loop (1,000 calls, about 10 s) outlives the updates however slowly
    # the host runs them (300 calls could end before the first update ended
    # the old echo: no reconnect).
    cmds = ["run 0 echo loop echo.u 1000 0", "sleep 100", "svc update echo.u echo2", "svc update echo.u echo",
            "svc update echo.u nosuch", "svc update echo.u services", "wait", "svc"]
    r = atoll_run.boot(m, timeout=300, shell_commands=cmds)
    assert not r.timed_out, r.console[-3000:]
    assert not r.malformed, r.malformed
    assert r.events_named("panic") == [], r.console[-3000:]
    # The update: old echo (domain 2) exports format 1 at a safe point,
    # echo2 imports it before it serves, then takes the name.
    [updated] = r.events_named("service_updated")
    assert updated["name"] == "echo.u" and updated["core"] == 1 and updated["old"] == 2, updated
    assert updated["program"] == "echo2" and updated["from_version"] == 1 and updated["version"] == 2, updated
    assert updated["state_bytes"] == 8, updated
    exported = r.events_named("echo_exported")
    imported = r.events_named("echo_imported")
    assert exported[0]["domain"] == 2 and exported[0]["version"] == 1 and exported[0]["calls"] > 0, exported
    new = updated["domain"]
    assert imported[0] == {"event": "echo_imported", "core": 1, "domain": new, "version": 2, "from_version": 1,
                           "calls": exported[0]["calls"], "clients": 0, "err": "ERR_OK"}, imported
    # The state went on from there: echo2's own export (for the next
    # update) counts on from what it imported.
    assert exported[1]["domain"] == new and exported[1]["version"] == 2, exported
    assert exported[1]["calls"] >= exported[0]["calls"], exported
    # Back to echo: it cannot read format 2; echo2 goes on serving.
    shell = {e["program"]: e for e in r.events_named("svc_update")}
    assert shell["echo2"]["error"] == "ERR_OK" and shell["echo2"]["updated"] == 1 and shell["echo2"]["version"] == 2
    assert imported[1]["from_version"] == 2 and imported[1]["err"] == "ERR_NOT_SUPPORTED", imported
    rolled = {e["program"]: e for e in r.events_named("update_rolled_back")}
    assert rolled["echo"]["error"] == "ERR_NOT_SUPPORTED" and rolled["echo"]["domain"] == new, rolled
    assert shell["echo"]["error"] == "ERR_NOT_SUPPORTED" and shell["echo"]["updated"] == 0, shell
    # A program that is not there, and a module that is no executable: the
    # old version goes on.
    assert rolled["nosuch"]["error"] == "ERR_NOT_FOUND" and rolled["nosuch"]["domain"] == new, rolled
    assert rolled["services"]["error"] == "ERR_ELF_MAGIC" and rolled["services"]["domain"] == new, rolled
    assert exported[-1]["calls"] >= exported[1]["calls"], exported
    # Nothing was restarted: the update ended the old one itself.
    assert r.events_named("service_restarted") == [], r.console[-3000:]
    assert f"echo.u core:1 1 {new} running" in r.console, r.console[-2000:]
    # The client called through all of it: no error.
    [loop] = r.events_named("echo_loop")
    assert loop["calls"] == 1000 and loop["errors"] == 0 and loop["reconnects"] >= 1, loop
