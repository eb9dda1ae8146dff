// TEST ONLY. MOAT_TEST_KILL_AT=<step> makes a moat process SIGKILL itself the moment it reaches
// the named step of a run (the list is in docs/architecture.md), so that the tests can kill a run at exactly
// that point and check that the next moat command leaves nothing behind. Unset (always, outside
// the tests), each call is one environment lookup.

export const TEST_KILL_ENV = "MOAT_TEST_KILL_AT";

/** Die here, at once and without cleaning up, if the test asked for this step. */
export function testKillPoint(step: string): void {
  if (process.env[TEST_KILL_ENV] === step) process.kill(process.pid, "SIGKILL");
}
