# Runs one module of CPython's regression tests (Debian's libpython3.X-testsuite, package
# `test`) with unittest and prints one JSON line: tests run, passed, failed, errors, skipped,
# and the ids of the tests that failed or erred (to compare two runs). Expected failures
# count as passed. Usage: python3 regrtest_counts.py os
import io
import json
import os
import sys
import tempfile
import time
import unittest

name = sys.argv[1]
# The tests write their TESTFN files into the current directory.
os.chdir(tempfile.mkdtemp(prefix="regrtest-"))
t0 = time.monotonic()
out = {"module": name}
try:
    suite = unittest.defaultTestLoader.loadTestsFromName("test.test_" + name)
except Exception as e:  # an import that fails is the module's result
    out["import_error"] = repr(e)
    print(json.dumps(out))
    sys.exit(0)
res = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
bad = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
out.update(
    run=res.testsRun,
    passed=res.testsRun - bad - len(res.skipped),
    failed=len(res.failures) + len(res.unexpectedSuccesses),
    errors=len(res.errors),
    skipped=len(res.skipped),
    seconds=round(time.monotonic() - t0, 1),
    failing=sorted(t.id() for t, _ in res.failures + res.errors) + sorted(t.id() for t in res.unexpectedSuccesses),
)
sys.stdout.flush()
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)  # a test's leftover thread or child must not keep the run alive
