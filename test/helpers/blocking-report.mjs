/**
 * `npm test` loads this in every test process (`--import ./test/helpers/blocking-report.mjs`):
 * it makes the process's stdout blocking when it is a pipe, so no report is lost on exit.
 *
 * Each test file runs in a child process that sends its results to the runner over its stdout,
 * a pipe, which Node writes asynchronously on Linux. With `--test-force-exit` the child calls
 * `process.exit()` once its last test ends, and whatever was still queued for the pipe is
 * dropped: the runner never hears of the file's last tests, counts fewer and still exits 0
 * (nodejs/node#64833, open; the Node fix proposed there does what this file does). A blocking
 * pipe writes each report before the write returns, so nothing is queued at exit.
 */
if (
  process.stdout._handle &&
  typeof process.stdout._handle.setBlocking === 'function' &&
  !process.stdout.isTTY
) {
  process.stdout._handle.setBlocking(true);
}
