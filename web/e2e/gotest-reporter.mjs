// A node --test reporter that writes the results as `go test -json` events, so that
// internal/cmd/testreport counts the browser tests with the Go tests in make test's closing
// line (scripts/browser-test.sh runs it with --test-reporter-destination=$ANYOPS_BROWSER_REPORT).
// Each test file is a "package" (web/e2e/console.test.mjs); its tests and subtests are tests,
// with subtest names joined by "/" as Go's are; a skipped or todo test is a skip with its reason.
import { relative, sep } from 'node:path';

const event = (e) => JSON.stringify(e) + '\n';

// packageOf names a test file as the repository path testreport prints.
const packageOf = (file) => (file ? relative(process.cwd(), file).split(sep).join('/') : 'web/e2e');

function errorText(err) {
  if (!err) return '';
  // node wraps what the test threw (or its failed hook) in ERR_TEST_FAILURE; show the cause.
  const cause = err.cause ?? err;
  return `${cause?.stack ?? cause?.message ?? String(cause)}\n`;
}

export default async function* gotestReporter(source) {
  const files = new Map(); // package -> {failed, elapsed, stderr, names: [] by nesting}
  const fileOf = (pkg) => {
    if (!files.has(pkg)) files.set(pkg, { failed: false, elapsed: 0, stderr: '', names: [] });
    return files.get(pkg);
  };
  // The package's own result follows its tests, as in `go test -json`: the files run one at
  // a time (--test-concurrency=1), so a file is done when another one's tests start.
  let current;
  function* finish(pkg) {
    const f = files.get(pkg);
    if (f.failed && f.stderr) yield event({ Action: 'output', Package: pkg, Output: f.stderr });
    yield event({ Action: f.failed ? 'fail' : 'pass', Package: pkg, Elapsed: f.elapsed });
    files.delete(pkg);
  }
  for await (const { type, data } of source) {
    if (type === 'test:stdout' || type === 'test:stderr') {
      const f = fileOf(packageOf(data.file));
      if (f.stderr.length < 64 << 10) f.stderr += data.message;
      continue;
    }
    if (type !== 'test:start' && type !== 'test:pass' && type !== 'test:fail') continue;
    const Package = packageOf(data.file);
    if (current !== undefined && current !== Package && files.has(current)) yield* finish(current);
    current = Package;
    const f = fileOf(Package);
    // A file that fails before any test starts (an import error) is reported as a test named
    // after the file itself.
    const name = data.name === data.file ? '(loading the file)' : data.name;
    if (type === 'test:start') {
      f.names[data.nesting] = name;
      f.names.length = data.nesting + 1;
      continue;
    }
    const Test = [...f.names.slice(0, data.nesting), name].join('/');
    const Elapsed = (data.details?.duration_ms ?? 0) / 1000;
    if (data.nesting === 0) f.elapsed += Elapsed;
    if (type === 'test:fail') {
      f.failed = true;
      let Output = errorText(data.details?.error);
      if (name === '(loading the file)') Output += f.stderr;
      yield event({ Action: 'output', Package, Test, Output });
      yield event({ Action: 'fail', Package, Test, Elapsed });
    } else if (data.skip !== undefined || data.todo !== undefined) {
      const why = data.skip ?? data.todo;
      const reason = typeof why === 'string' ? why : data.skip !== undefined ? 'skipped' : 'todo';
      yield event({ Action: 'output', Package, Test, Output: `${reason}\n` });
      yield event({ Action: 'skip', Package, Test, Elapsed });
    } else {
      yield event({ Action: 'pass', Package, Test, Elapsed });
    }
  }
  for (const pkg of [...files.keys()]) yield* finish(pkg);
}
