/**
 * A bound on every test file's process (loaded with --import by the test scripts).
 *
 * node:test's --test-timeout bounds each test, not the file's process: a file whose tests all
 * finished but which keeps a server or thread alive never exits, and the run waits for it without
 * end. This timer is unref'd, so it never keeps a process alive itself; if a file's process is
 * still running after FILE_LIMIT_MS it names the file and its live handles, and exits non-zero, so
 * the run fails in minutes and says where, instead of at the CI's time limit.
 * The limit counts from the moment the file's process loads this module, i.e. from the file's start.
 * Only child test processes arm it (the runner sets NODE_TEST_CONTEXT for them), not the runner.
 * The scripts name it relative to the package root, which is where npm runs them.
 */
const FILE_LIMIT_MS = Number(process.env['PINPOINT_TEST_FILE_LIMIT_MS'] ?? 300_000);

if (process.env['NODE_TEST_CONTEXT'] !== undefined) {
  setTimeout(() => {
    const handles = process.getActiveResourcesInfo().join(', ');
    process.stderr.write(`test file ${process.argv[1] ?? '?'} still running after ${FILE_LIMIT_MS} ms; live: ${handles}\n`);
    process.exit(70);
  }, FILE_LIMIT_MS).unref();
}
