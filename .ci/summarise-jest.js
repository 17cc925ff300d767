// Reads every jest JSON report in a folder and prints one plain closing line for CI.
const fs = require('node:fs');
const path = require('node:path');
const dir = process.argv[2] || '.test-results';
let passed = 0, failed = 0, skipped = 0, suitesFailed = 0;
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
for (const f of files) {
  const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  passed += r.numPassedTests; failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests || 0);
  suitesFailed += r.numRuntimeErrorTestSuites || 0;
  console.log(`${path.basename(f, '.json')}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
}
// A suite that failed to load counts as a failure even though it ran no test.
failed += suitesFailed;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(files.length === 0 || failed > 0 ? 1 : 0);
